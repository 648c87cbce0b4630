//! `kubectl purchase-guard` against the examples' platform, run by the real kubectl (which
//! finds `kubectl-purchase_guard` on the PATH), as the platform admin and as partner operators.

mod support;

use support::platform::Platform;

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_answers_who_why_and_writes_decisions() {
    let platform = Platform::start("plugin").await;

    // status: one line per customer, and one screen (or JSON) per customer.
    let (code, out, err) = platform.plugin(None, &["status"]);
    assert_eq!(code, 0, "{err}");
    let acme = out.lines().find(|l| l.starts_with("acme ")).expect("a line for acme");
    assert!(
        acme.contains("reseller-alpha") && acme.contains("RestrictedAndFrozen") && acme.contains("until "),
        "{out}"
    );
    let (code, out, err) = platform.plugin(None, &["status", "acme", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let acme: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(acme["state"], "RestrictedAndFrozen");
    assert_eq!(acme["authority"]["partner"], "reseller-alpha");
    assert_eq!(acme["decision"], "reseller-alpha/acme");
    assert!(acme["freeze"]["retentionEnds"].is_string(), "{acme}");
    let (_, screen, _) = platform.plugin(None, &["status", "globex"]);
    assert!(
        screen.contains("Authority:") && screen.contains("dist-emea (Distributor)"),
        "{screen}"
    );
    let (code, history, _) = platform.plugin(None, &["history", "acme"]);
    assert_eq!(code, 0);
    assert!(
        history
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("RestrictedAndFrozen")),
        "{history}"
    );

    // why: the operations of a frozen Deployment, and a verb with its exit code.
    let (code, out, err) = platform.plugin(None, &["why", "-n", "acme-dev", "deployment/worker"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Frozen:") && out.contains("deployments/worker (pay-per-use)"),
        "{out}"
    );
    let purchase = out.lines().find(|l| l.starts_with("purchase ")).expect("purchase");
    assert!(purchase.contains("refused") && purchase.contains("R7"), "{out}");
    let rename = out.lines().find(|l| l.starts_with("rename ")).expect("rename");
    assert!(rename.contains("allowed"), "{out}");
    let (code, out, _) = platform.plugin(
        None,
        &["why", "-n", "acme-dev", "--verb", "create", "--resource", "deployments"],
    );
    assert_eq!(code, 2, "refused: {out}");
    assert!(
        out.contains("create is refused") && out.contains("customer \"acme\""),
        "{out}"
    );
    let (code, out, _) = platform.plugin(
        None,
        &[
            "why",
            "-n",
            "initech",
            "--verb",
            "create",
            "--resource",
            "virtualmachines",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "allowed: {out}");
    let answer: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(answer["asked"]["allowed"], true);
    let (code, out, _) = platform.plugin(
        None,
        &["why", "-n", "default", "--verb", "create", "--resource", "deployments"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("belongs to no customer"), "{out}");

    // restrict: a dry run prints the manifest and writes nothing.
    let (code, manifest, err) = platform.plugin(
        Some("dist-op"),
        &[
            "restrict",
            "initech",
            "-n",
            "dist-emea",
            "--reason",
            "Card declined",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        manifest.contains("kind: PurchaseRestriction") && manifest.contains("state: Restricted"),
        "{manifest}"
    );
    assert_eq!(
        platform.get("purchaserestriction/initech", Some("dist-emea"), "{.spec.state}"),
        "Unrestricted"
    );
    // As the partner operator, with the chart's rights on its own namespace only.
    let (code, out, err) = platform.plugin(
        Some("dist-op"),
        &["restrict", "initech", "-n", "dist-emea", "--reason", "Card declined"],
    );
    assert_eq!(code, 0, "{out}{err}");
    platform.wait_for("customeraccount/initech", "{.status.decision.state}=Restricted");
    let (code, _, err) = platform.plugin(
        Some("dist-op"),
        &["unrestrict", "initech", "-n", "dist-emea", "--reason", "Paid in full"],
    );
    assert_eq!(code, 0, "{err}");
    platform.wait_for("customeraccount/initech", "{.status.decision.reason}=Paid in full");
    // A partner without authority is refused by purchase-guard, with the rule.
    let (code, _, err) = platform.plugin(
        Some("beta-op"),
        &["restrict", "initech", "-n", "reseller-beta", "--reason", "fraud"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("R2") && err.contains("has not delegated"), "{err}");
    // Without -n the plugin reads the customer's authority, which partner roles cannot.
    let (code, _, err) = platform.plugin(Some("dist-op"), &["restrict", "initech", "--reason", "x"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("customeraccounts") || err.contains("CustomerAccounts"),
        "{err}"
    );
    // Freezing needs the agreement (R6).
    let (code, _, err) = platform.plugin(
        Some("dist-op"),
        &["restrict", "initech", "-n", "dist-emea", "--reason", "x", "--freeze"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--accept-agreement"), "{err}");
}
