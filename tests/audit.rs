//! The audit, as users see it: resources a restricted customer got while the purchase webhook
//! only reported (`--enforcement dryrun`) are found and listed in the namespace's policy
//! report, counted in the customer's status and metrics; the report follows what exists and the
//! customer's state, whatever the enforcement mode, and comes back when someone deletes it.
//! Each test runs on its own sandbox with RBAC, purchase-guard's webhook configurations and a
//! real `purchase-guard run` replica.

mod support;
use std::time::{Duration, Instant};
use support::platform::{Platform, vm_billed, workload_billed};

const REPORT: &str = "reports.openreports.io/purchase-guard";

/// The report kind's CRD (the minimal definition in examples/reports), then a replica that
/// finds it at start, with `extra` flags.
fn with_reports(p: &mut Platform, extra: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    p.kubectl_ok(&[
        "apply",
        "-f",
        &format!("{root}/examples/reports/reports.openreports.io.yaml"),
    ]);
    p.kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "crd/reports.openreports.io",
        "--timeout=30s",
    ]);
    restart(p, extra);
}

fn restart(p: &mut Platform, extra: &[&str]) {
    let mut args = vec!["--leader-election=false"];
    args.extend_from_slice(extra);
    p.start_replica(&args);
}

/// The names of the resources the report lists, sorted, with each result's rule and result.
fn listed(p: &Platform) -> Vec<String> {
    let text = p.get(
        REPORT,
        Some("initech"),
        r#"{range .results[*]}{.resources[0].kind}/{.resources[0].name} {.rule} {.result} {.policy}{"\n"}{end}"#,
    );
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Waits until the report lists exactly `expected` (sorted lines of [`listed`]).
fn wait_for_listed(p: &Platform, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (exists, _) = p.kubectl(&["get", REPORT, "-n", "initech"], None);
        let now = if exists { listed(p) } else { Vec::new() };
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the report lists {now:#?}, expected {expected:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// dist-emea restricts initech; returns once a resource bought now is bought after the
/// restriction took effect.
fn restrict_initech(p: &Platform) {
    p.decide("dist-op", "dist-emea", "initech", "Restricted", "Credit limit review");
    p.wait_for("customeraccount/initech", "{.status.decision.state}=Restricted");
    after_the_second_of(p, "customeraccount/initech", "{.status.history[-1:].time}");
}

/// dist-emea lifts initech's restriction.
fn unrestrict_initech(p: &Platform) {
    p.decide(
        "dist-op",
        "dist-emea",
        "initech",
        "Unrestricted",
        "Credit limit restored",
    );
}

/// The creation timestamps Kubernetes keeps are whole seconds: a resource created within the
/// second the restriction took effect cannot be told apart from one created just before, and
/// the audit does not report it. The test buys in a later second, as a user would.
fn after_the_second_of(p: &Platform, resource: &str, jsonpath: &str) {
    let at = p.get(resource, None, jsonpath);
    let at: jiff::Timestamp = at
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{resource} {jsonpath}: {at:?}: {e}"));
    while jiff::Timestamp::now() < at + jiff::SignedDuration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

const CREATED: [&str; 3] = [
    "Deployment/buy-web CreatedWhileRestricted fail purchase-guard/R7",
    "Job/buy-import CreatedWhileRestricted fail purchase-guard/R7",
    "VirtualMachine/buy-vm CreatedWhileRestricted fail purchase-guard/R7",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_dryrun_restriction_reports_exactly_what_was_bought_and_no_stale_entries() {
    let mut p = Platform::start("audit").await;
    with_reports(&mut p, &["--enforcement=dryrun"]);
    // initech is unrestricted and has resources (examples/02-resources.yaml): nothing to report.
    assert_eq!(p.get("customeraccount/initech", None, "{.status.audit.failures}"), "0");
    let (exists, _) = p.kubectl(&["get", REPORT, "-n", "initech"], None);
    assert!(!exists, "an unrestricted customer has no report");

    // dist-emea restricts initech; its tenant buys three resources, admitted in dryrun.
    restrict_initech(&p);
    for manifest in [
        workload_billed("Deployment", "initech", "buy-web", 2, "pay-per-use"),
        workload_billed("Job", "initech", "buy-import", 1, "yearly-monthly"),
        vm_billed("initech", "buy-vm", "spot"),
    ] {
        p.allowed("tenant", &["create", "-f", "-"], Some(&manifest));
    }
    // Exactly those three, as failures of R7; the older resources are not listed.
    wait_for_listed(&p, &CREATED);
    assert_eq!(p.get(REPORT, Some("initech"), "{.summary.fail} {.summary.warn}"), "3 0");
    p.wait_for("customeraccount/initech", "{.status.audit.failures}=3");
    assert_eq!(
        p.get(
            "customeraccount/initech",
            None,
            "{.status.audit.findings.CreatedWhileRestricted}"
        ),
        "3"
    );
    let message = p.get(REPORT, Some("initech"), "{.results[0].message}");
    assert!(
        message.contains("after the restriction took effect") && message.contains("customer \"initech\" is restricted"),
        "{message}"
    );
    let (_, table) = p.kubectl(&["get", "customeraccount", "initech", "-o", "wide"], None);
    assert!(table.contains("OUT OF LINE"), "{table}");
    let owner = p.get(
        REPORT,
        Some("initech"),
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, "CustomerAccount/initech");
    // kubectl purchase-guard report: the three, and exit code 2 (out of line).
    let (code, out, err) = p.plugin(None, &["report", "-n", "initech"]);
    assert_eq!(code, 2, "{out}{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("initech ")).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" fail ") && r.contains("R7 CreatedWhileRestricted")),
        "{out}"
    );
    let (code, out, _) = p.plugin(None, &["report", "-o", "json"]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let mut resources: Vec<&str> = json
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["resource"].as_str().expect("a resource"))
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        ["Deployment/buy-web", "Job/buy-import", "VirtualMachine/buy-vm"]
    );
    let (_, out, _) = p.plugin(None, &["status", "initech"]);
    assert!(out.contains("3 failures, 0 warnings"), "{out}");
    let metrics = p.replica.as_ref().expect("a replica").metrics();
    assert!(
        metrics.contains(r#"purchase_guard_audit_findings{state="Restricted",rule="R7",reason="CreatedWhileRestricted",result="fail"} 3"#),
        "{metrics}"
    );

    // Deny mode: the same three, once each (nothing new can be bought: the webhook refuses).
    restart(&mut p, &["--enforcement=deny"]);
    p.refused(
        "tenant",
        &["create", "-f", "-"],
        Some(&vm_billed("initech", "refused-vm", "pay-per-use")),
        &["customer \"initech\" is restricted"],
    );
    // Unsubscribing is allowed: the deleted resource leaves the report.
    p.allowed("tenant", &["delete", "job/buy-import", "-n", "initech"], None);
    wait_for_listed(&p, &[CREATED[0], CREATED[2]]);
    // Back to dryrun: no stale entry comes back.
    restart(&mut p, &["--enforcement=dryrun"]);
    wait_for_listed(&p, &[CREATED[0], CREATED[2]]);

    // A report deleted by someone else is written again.
    p.kubectl_ok(&["delete", REPORT, "-n", "initech"]);
    wait_for_listed(&p, &[CREATED[0], CREATED[2]]);

    // Lifting the restriction: nothing is out of line any more, the report goes.
    unrestrict_initech(&p);
    wait_for_listed(&p, &[]);
    p.wait_for("customeraccount/initech", "{.status.audit.failures}=0");
    let (code, out, err) = p.plugin(None, &["report", "-n", "initech"]);
    assert_eq!(
        (code, out.trim()),
        (0, "Nothing out of line in namespace \"initech\"."),
        "{err}"
    );
    let metrics = p.replica.as_ref().expect("a replica").metrics();
    assert!(
        metrics.contains(r#"purchase_guard_audit_findings{state="Unrestricted",rule="R7",reason="CreatedWhileRestricted",result="fail"} 0"#),
        "{metrics}"
    );
}

/// A specification written while restricted is a warning naming who wrote it; a resource
/// of a kind without a freeze action running while its customer is frozen is a failure.
#[tokio::test(flavor = "multi_thread")]
async fn changes_while_restricted_warn_and_unfreezable_resources_running_while_frozen_fail() {
    let mut p = Platform::start("audit-frozen").await;
    // Bought while unrestricted: a Deployment and a DaemonSet (no freeze action).
    for manifest in [
        workload_billed("Deployment", "initech", "web", 3, "pay-per-use"),
        workload_billed("DaemonSet", "initech", "agent", 1, "pay-per-use"),
    ] {
        p.allowed("tenant", &["create", "-f", "-"], Some(&manifest));
    }
    with_reports(&mut p, &["--enforcement=warn"]);
    restrict_initech(&p);
    // A raise admitted with a warning in warn mode.
    let out = p.allowed(
        "tenant",
        &[
            "patch",
            "deployment/web",
            "-n",
            "initech",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
        None,
    );
    assert!(out.contains("would deny"), "{out}");
    wait_for_listed(&p, &["Deployment/web ChangedWhileRestricted warn purchase-guard/R7"]);
    let message = p.get(REPORT, Some("initech"), "{.results[0].message}");
    assert!(message.contains("kubectl-patch"), "{message}");

    // Frozen: the Deployment is frozen by purchase-guard (its own writes are no finding); the
    // DaemonSet cannot be, and is reported running.
    p.decide(
        "dist-op",
        "dist-emea",
        "initech",
        "RestrictedAndFrozen",
        "Payment default",
    );
    p.wait_for_in("deployment/web", Some("initech"), "{.spec.replicas}=0");
    wait_for_listed(
        &p,
        &[
            "DaemonSet/agent RunningWhileFrozen fail purchase-guard/R8",
            "Deployment/web ChangedWhileRestricted warn purchase-guard/R7",
        ],
    );
    let message = p.get(
        REPORT,
        Some("initech"),
        "{.results[?(@.rule==\"RunningWhileFrozen\")].message}",
    );
    assert!(message.contains("no freeze action"), "{message}");
    p.wait_for("customeraccount/initech", "{.status.audit.failures}=1");
    assert_eq!(p.get("customeraccount/initech", None, "{.status.audit.warnings}"), "1");
}

/// A report the API server refuses (here its CRD requires a field purchase-guard does not
/// write; in a cluster, missing RBAC) holds up nothing else: the customer's status still counts
/// the findings, and the decision and freeze are written as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_that_cannot_be_written_does_not_hold_up_the_status() {
    let mut p = Platform::start("audit-refused").await;
    let root = env!("CARGO_MANIFEST_DIR");
    let crd = std::fs::read_to_string(format!("{root}/examples/reports/reports.openreports.io.yaml")).expect("the CRD");
    let strict = crd.replace(
        "          type: object\n          properties:\n            apiVersion:",
        "          type: object\n          required: [approvedBy]\n          properties:\n            approvedBy: {type: string}\n            apiVersion:",
    );
    assert_ne!(strict, crd, "the CRD's schema changed");
    p.kubectl_ok_with(&["apply", "-f", "-"], &strict);
    p.kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "crd/reports.openreports.io",
        "--timeout=30s",
    ]);
    restart(&mut p, &["--enforcement=dryrun"]);
    restrict_initech(&p);
    p.allowed(
        "tenant",
        &["create", "-f", "-"],
        Some(&vm_billed("initech", "buy-vm", "spot")),
    );
    p.wait_for("customeraccount/initech", "{.status.audit.failures}=1");
    let (exists, _) = p.kubectl(&["get", REPORT, "-n", "initech"], None);
    assert!(!exists, "the API server refused the report");
    // The next decision is still reconciled.
    unrestrict_initech(&p);
    p.wait_for("customeraccount/initech", "{.status.decision.state}=Unrestricted");
    p.wait_for("customeraccount/initech", "{.status.audit.failures}=0");
}

/// The sweep: with nothing changing, every customer is reconciled (and audited) again every
/// `--audit-interval`, round after round.
#[tokio::test(flavor = "multi_thread")]
async fn every_customer_is_audited_again_every_interval() {
    let mut p = Platform::start("audit-sweep").await;
    restart(&mut p, &["--audit-interval=1s"]);
    let customers = p
        .get("customeraccounts", None, "{.items[*].metadata.name}")
        .split_whitespace()
        .count();
    assert!(customers >= 3, "the examples' customers: {customers}");
    let reconciles = |p: &Platform| -> u64 {
        let metrics = p.replica.as_ref().expect("a replica").metrics();
        let line = r#"purchase_guard_reconciles_total{kind="CustomerAccount"} "#;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    // Each round of the wait sees every customer reconciled again; the start's own reconciles
    // cannot account for three rounds of them.
    let mut seen = reconciles(&p);
    for round in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = reconciles(&p);
            if now >= seen + customers as u64 {
                seen = now;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {now} customer reconciles, {seen} before; expected {customers} more within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
