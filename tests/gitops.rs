//! Status that GitOps tools understand (kstatus): `kubectl wait --for=condition=Ready` on each
//! kind, an object nobody has reconciled counts as in progress, and Helm 4's kstatus watcher
//! (helm-python-sdk, `wait="watcher"`) succeeds on a decision purchase-guard accepts and fails,
//! with the reason, on one it does not.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::platform::Platform;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_wait_for_ready_works_on_every_kind() {
    let platform = Platform::start("gitops-ready").await;
    for (resource, namespace) in [
        ("partner/dist-emea", None),
        ("partner/reseller-alpha", None),
        // Restricted and frozen, and still ready: being restricted is not a failure.
        ("customeraccount/acme", None),
        ("customeraccount/initech", None),
        ("resellerdelegation/delegate-reseller-alpha", Some("dist-emea")),
        ("purchaserestriction/acme", Some("reseller-alpha")),
        ("purchaserestriction/globex", Some("dist-emea")),
    ] {
        let mut args = vec!["wait", "--for=condition=Ready", resource, "--timeout=30s"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        platform.kubectl_ok(&args);
        let observed = platform.get(
            resource,
            namespace,
            "{.metadata.generation}={.status.observedGeneration} {.status.conditions[?(@.type==\"Reconciling\")].status} {.status.conditions[?(@.type==\"Stalled\")].status}",
        );
        let (generations, rest) = observed.split_once(' ').expect("three fields");
        let (generation, seen) = generations.split_once('=').expect("generation=observed");
        assert_eq!(
            generation, seen,
            "{resource}: the status describes the current generation"
        );
        assert_eq!(rest, "False False", "{resource}: neither reconciling nor stalled");
    }
    assert_eq!(
        platform.get("customeraccount/acme", None, "{.status.decision.state}"),
        "RestrictedAndFrozen"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_nobody_has_reconciled_is_in_progress() {
    // No purchase-guard: nobody reconciles.
    let (sandbox, kubeconfig) =
        support::examples_sandbox("gitops-unobserved", &["00-namespaces.yaml", "01-partners.yaml"]).await;
    let ok = |args: &[&str]| {
        let (ok, out) = support::kubectl(&kubeconfig, args, None);
        assert!(ok, "kubectl {args:?}: {out}");
        out
    };
    // kstatus counts an object without status as current; with an observed generation that is
    // not its own, as in progress until purchase-guard writes one.
    let seen = ok(&[
        "get",
        "partner/dist-emea",
        "-o",
        "jsonpath={.metadata.generation} {.status.observedGeneration}",
    ]);
    assert_eq!(seen, "1 -1");
    let (ready, out) = support::kubectl(
        &kubeconfig,
        &["wait", "--for=condition=Ready", "partner/dist-emea", "--timeout=1s"],
        None,
    );
    assert!(!ready, "nobody said it is ready: {out}");
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// A chart of one PurchaseRestriction of `customer` issued in `namespace`.
fn restriction_chart(dir: &Path, namespace: &str, customer: &str, reason: &str) -> PathBuf {
    let chart = dir.join(format!("{namespace}-{customer}"));
    std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: restrict-{customer}\nversion: 0.1.0\n"),
    )
    .expect("Chart.yaml");
    std::fs::write(
        chart.join("templates/restriction.yaml"),
        format!(
            "apiVersion: purchaseguard.io/v1alpha1\nkind: PurchaseRestriction\nmetadata:\n  name: {customer}\n  namespace: {namespace}\nspec:\n  customer: {customer}\n  state: Restricted\n  reason: {reason}\n"
        ),
    )
    .expect("template");
    chart
}

/// `helm install --wait=watcher --timeout SECONDS` through helm-python-sdk: the release status,
/// or the error.
fn helm_install(
    kubeconfig: &Path,
    chart: &Path,
    release: &str,
    namespace: &str,
    timeout: u32,
) -> Result<String, String> {
    let script = r#"
import sys
from helm_python import Config
config = Config(kubeconfig_path=sys.argv[1], namespace=sys.argv[4])
try:
    release = config.install(sys.argv[2], sys.argv[3], namespace=sys.argv[4], wait="watcher", timeout=int(sys.argv[5]))
    print("OK " + release["status"])
except Exception as e:
    print("ERROR " + str(e))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(kubeconfig)
        .arg(chart)
        .args([release, namespace, &timeout.to_string()])
        .output()
        .expect("python3 runs (python3 -m pip install helm-python-sdk)");
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match printed.split_once(' ') {
        Some(("OK", status)) => Ok(status.to_string()),
        Some(("ERROR", error)) => Err(error.to_string()),
        _ => panic!(
            "helm-python-sdk printed neither: {printed}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_waits_for_purchase_guards_verdict() {
    // Without the decision webhook, a decision whose issuer has no authority is admitted (as
    // during an outage with failurePolicy Ignore): the controller's verdict is what stops the
    // rollout.
    let webhook_port = support::free_port();
    let (sandbox, kubeconfig) = support::webhook_sandbox(false, webhook_port, "gitops-helm").await;
    support::install_examples(
        &kubeconfig,
        &["00-namespaces.yaml", "01-partners.yaml", "03-customers.yaml"],
    );
    let (created, out) = support::kubectl(&kubeconfig, &["create", "namespace", "purchase-guard"], None);
    assert!(created, "{out}");
    let _replica = support::Run::start(&kubeconfig, webhook_port, &[]).wait_ready();
    let dir = std::env::temp_dir().join(format!("pg-gitops-charts-{}", std::process::id()));

    // dist-emea holds authority over reseller-beta's customers: accepted, the install succeeds.
    let accepted = restriction_chart(&dir, "dist-emea", "globex", "invoice overdue");
    assert_eq!(
        helm_install(&kubeconfig, &accepted, "globex", "dist-emea", 60),
        Ok("deployed".to_string())
    );
    // reseller-beta holds none (no delegation): not accepted, the install fails with why.
    let refused = restriction_chart(&dir, "reseller-beta", "initech", "fraud suspected");
    let error = helm_install(&kubeconfig, &refused, "initech", "reseller-beta", 20).expect_err("the install fails");
    let (_, reason) = support::kubectl(
        &kubeconfig,
        &[
            "get",
            "purchaserestriction/initech",
            "-n",
            "reseller-beta",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Stalled\")].reason}",
        ],
        None,
    );
    assert!(!reason.is_empty(), "the decision is stalled with a reason");
    assert!(
        error.contains("status: Failed") && error.contains("has not delegated"),
        "Helm's error says the decision failed, and why: {error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}
