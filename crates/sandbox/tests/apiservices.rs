//! APIService objects, as kube-apiserver registers its local group versions: one per served
//! group version (`v1.` for the core group), a CRD's appearing when it is served and going
//! with it; printed as `kubectl get apiservices` prints them.

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
