//! `--enforce-with policy`: purchase-guard keeps ValidatingAdmissionPolicies that judge
//! purchases inside the API server, so that restrictions hold with every purchase-guard
//! process gone; back to `webhook`, it removes them. With `kubectl --as` on the sandbox, which
//! evaluates the policies as kube-apiserver does.

mod support;
use std::time::{Duration, Instant};
use support::platform::{Platform, vm};

fn generated(p: &Platform) -> Vec<String> {
    let names = p.get(
        "validatingadmissionpolicies",
        None,
        "{range .items[*]}{.metadata.labels.purchaseguard\\.io/policy-set} {.metadata.name}{\"\\n\"}{end}",
    );
    names
        .lines()
        .filter_map(|l| l.strip_prefix("purchases "))
        .map(str::to_string)
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_keep_restrictions_with_purchase_guard_down() {
    let mut p = Platform::start("enforce-with").await;
    p.start_replica(&["--leader-election=false", "--enforce-with=policy"]);
    wait_until("the generated policies", || generated(&p).len() == 9);
    // Policies alone: the purchase webhook is not registered (as the chart renders it).
    let hooks = p.get(
        "validatingwebhookconfiguration/purchase-guard",
        None,
        "{.webhooks[*].name}",
    );
    let index = hooks
        .split_whitespace()
        .position(|h| h == "purchases.purchaseguard.io")
        .expect("the purchase webhook is registered by the platform");
    p.kubectl_ok(&[
        "patch",
        "validatingwebhookconfiguration/purchase-guard",
        "--type=json",
        "-p",
        &format!(r#"[{{"op": "remove", "path": "/webhooks/{index}"}}]"#),
    ]);
    // Every purchase-guard process gone.
    p.replica = None;

    // acme is frozen: a new pay-per-use VM is refused inside the API server.
    p.refused(
        "tenant",
        &["create", "-f", "-"],
        Some(&vm("acme-dev", "while-down")),
        &[
            "ValidatingAdmissionPolicy 'purchase-guard-purchases-virtualmachines.compute.example.com'",
            "R7: the customer of namespace \"acme-dev\" is frozen",
            "\"purchase\" of pay-per-use resources is blocked while it is restricted",
        ],
    );
    // Its frozen Deployment stays at 0 replicas (R8), through the scale subresource too.
    p.refused(
        "tenant",
        &["scale", "deployment/worker", "-n", "acme-dev", "--replicas=3"],
        None,
        &[
            "ValidatingAdmissionPolicy 'purchase-guard-purchases-deployments.apps'",
            "R8",
        ],
    );
    // What stays allowed: renaming, deleting; and initech, unrestricted, buys.
    p.allowed(
        "tenant",
        &[
            "patch",
            "virtualmachine/web-1",
            "-n",
            "acme-prod",
            "--type=merge",
            "-p",
            r#"{"spec":{"displayName":"Web"}}"#,
        ],
        None,
    );
    p.allowed("tenant", &["create", "-f", "-"], Some(&vm("initech", "while-down")));

    // Back to the webhook: purchase-guard removes the policies it generated.
    p.start_replica(&["--leader-election=false", "--enforce-with=webhook"]);
    wait_until("the generated policies removed", || generated(&p).is_empty());
}
