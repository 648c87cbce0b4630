//! Kinds every cluster serves, as kubectl shows them: APIService objects (one per served group
//! version, `v1.` for the core group, a CRD's appearing when it is served and going with it);
//! a Node that can be cordoned; ComponentStatuses; CertificateSigningRequests.

use purchase_guard_sandbox::{Config, Sandbox};
use std::process::Command;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_group_version_has_its_apiservice() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-apiservices-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let table = kubectl(&kubeconfig, &["get", "apiservices"]);
    let first = table.lines().next().unwrap_or_default();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    );
    for name in ["v1.", "v1.apps", "v1.batch", "v1.rbac.authorization.k8s.io"] {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no APIService {name} in:\n{table}"));
        assert_eq!(
            row.split_whitespace().skip(1).take(2).collect::<Vec<_>>(),
            ["Local", "True"],
            "{row}"
        );
    }
    let apps = kubectl(
        &kubeconfig,
        &[
            "get",
            "apiservice",
            "v1.apps",
            "-o",
            "jsonpath={.spec.group} {.spec.version} {.metadata.labels}",
        ],
    );
    assert_eq!(
        apps,
        r#"apps v1 {"kube-aggregator.kubernetes.io/automanaged":"onstart"}"#
    );

    // A CRD's group version: registered once it is served, gone with the CRD.
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/reports/reports.openreports.io.yaml"
    );
    kubectl(&kubeconfig, &["apply", "-f", root]);
    kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=established",
            "crd/reports.openreports.io",
            "--timeout=30s",
        ],
    );
    let crd = kubectl(
        &kubeconfig,
        &[
            "get",
            "apiservice",
            "v1alpha1.openreports.io",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert_eq!(crd, r#"{"kube-aggregator.kubernetes.io/automanaged":"true"}"#);
    kubectl(&kubeconfig, &["delete", "crd", "reports.openreports.io"]);
    let names = kubectl(&kubeconfig, &["get", "apiservices", "-o", "name"]);
    assert!(!names.contains("openreports"), "{names}");
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// The header of a `kubectl get` table, as words.
fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_component_statuses_and_certificate_signing_requests() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-cluster-kinds-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let nodes = kubectl(&kubeconfig, &["get", "nodes"]);
    assert_eq!(header(&nodes), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let row: Vec<&str> = nodes.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[2], row[4]),
        ("sandbox", "Ready", "control-plane", "v1.33.0"),
        "{nodes}"
    );
    kubectl(&kubeconfig, &["cordon", "sandbox"]);
    let nodes = kubectl(&kubeconfig, &["get", "node", "sandbox", "--no-headers"]);
    assert!(nodes.contains("Ready,SchedulingDisabled"), "{nodes}");
    kubectl(&kubeconfig, &["uncordon", "sandbox"]);

    let cs = kubectl(&kubeconfig, &["get", "componentstatuses"]);
    for component in ["scheduler", "controller-manager", "etcd-0"] {
        assert!(
            cs.lines().any(|l| l.starts_with(component) && l.contains("Healthy")),
            "{component} in:\n{cs}"
        );
    }

    let csr = r#"{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "alice"},
        "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"], "username": "alice", "expirationSeconds": 86400}}"#;
    let file = std::env::temp_dir().join(format!("pg-csr-{}.json", std::process::id()));
    std::fs::write(&file, csr).expect("writes");
    kubectl(&kubeconfig, &["create", "-f", file.to_str().expect("UTF-8")]);
    let listed = kubectl(&kubeconfig, &["get", "csr"]);
    assert_eq!(
        header(&listed),
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        (row[0], row[2], row[3], row[4], row[5]),
        (
            "alice",
            "kubernetes.io/kube-apiserver-client",
            "alice",
            "24h",
            "Pending"
        ),
        "{listed}"
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}
