//! R8 freeze, retention and release, R9 unfreeze, as users see them: a customer's tenant with
//! resources of every billing mode, its distributor freezing it with `kubectl --as`, every
//! route back to running refused, drift corrected, and the unfreeze restoring exactly what was
//! there. Each test runs on its own sandbox with RBAC, purchase-guard's webhook configurations
//! and a real `purchase-guard run` replica.

mod support;
use support::platform::{Platform, restriction, vm_billed, workload_billed};

/// The resources initech's tenant buys while it may: (kind, name, replicas, billing mode).
const BOUGHT: [(&str, &str, i64, &str); 5] = [
    ("Deployment", "web", 3, "pay-per-use"),
    ("Deployment", "prepaid", 2, "yearly-monthly"),
    ("StatefulSet", "db", 2, "spot"),
    ("CronJob", "report", 0, "pay-per-use"),
    ("Job", "import", 2, "pay-per-use"),
];

/// initech buys [`BOUGHT`] and two VMs (pay-per-use and prepaid); then dist-emea, which
/// holds authority over it, restricts and freezes it.
fn buy_and_freeze(p: &Platform) {
    for (kind, name, replicas, mode) in BOUGHT {
        p.allowed(
            "tenant",
            &["create", "-f", "-"],
            Some(&workload_billed(kind, "initech", name, replicas, mode)),
        );
    }
    for (name, mode) in [("vm-ppu", "pay-per-use"), ("vm-prepaid", "yearly-monthly")] {
        p.allowed(
            "tenant",
            &["create", "-f", "-"],
            Some(&vm_billed("initech", name, mode)),
        );
    }
    p.decide(
        "dist-op",
        "dist-emea",
        "initech",
        "RestrictedAndFrozen",
        "Payment default, case 2026-2201",
    );
    p.wait_for(
        "customeraccount/initech",
        r#"{.status.conditions[?(@.type=="ResourcesFrozen")].status}=True"#,
    );
}

/// dist-emea unrestricts and unfreezes initech (R6, R9); waits until the unfreeze is done.
fn unrestrict_and_unfreeze(p: &Platform) {
    p.decide(
        "dist-op",
        "dist-emea",
        "initech",
        "Unrestricted",
        "Paid in full on 2026-11-26",
    );
    p.wait_for(
        "customeraccount/initech",
        r#"{.status.conditions[?(@.type=="ResourcesFrozen")].reason}=Unfrozen"#,
    );
}

/// What `kubectl get -l purchaseguard.io/frozen` lists in initech, sorted.
fn labelled_frozen(p: &Platform) -> Vec<String> {
    let (ok, out) = p.kubectl(
        &[
            "get",
            "deployments,statefulsets,cronjobs,jobs,virtualmachines",
            "-n",
            "initech",
            "-l",
            "purchaseguard.io/frozen",
            "-o",
            "name",
        ],
        None,
    );
    assert!(ok, "{out}");
    let mut names: Vec<String> = out
        .lines()
        .filter(|l| !l.contains("No resources found"))
        .map(String::from)
        .collect();
    names.sort();
    names
}

/// The message of initech's condition `type_`.
fn condition_message(p: &Platform, type_: &str) -> String {
    let path = format!(r#"{{.status.conditions[?(@.type=="{type_}")].message}}"#);
    p.get("customeraccount/initech", None, &path)
}

fn field(p: &Platform, resource: &str, jsonpath: &str) -> String {
    p.get(resource, Some("initech"), jsonpath)
}

/// The record purchase-guard keeps on a frozen resource.
fn record(p: &Platform, resource: &str) -> serde_json::Value {
    let text = field(p, resource, r"{.metadata.annotations.purchaseguard\.io/frozen}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{resource}: the freeze record {text:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_stops_pay_per_use_resources_holds_on_every_route_and_unfreeze_restores_them() {
    let p = Platform::start("freeze").await;
    buy_and_freeze(&p);

    // Frozen: pay-per-use and spot resources, each by its kind's action.
    assert_eq!(field(&p, "deployment/web", "{.spec.replicas}"), "0");
    assert_eq!(record(&p, "deployment/web")["replicas"], 3);
    assert_eq!(field(&p, "statefulset/db", "{.spec.replicas}"), "0");
    assert_eq!(record(&p, "statefulset/db")["replicas"], 2);
    assert_eq!(field(&p, "cronjob/report", "{.spec.suspend}"), "true");
    // What suspend was before (absent, or false where the API server defaults it).
    assert_ne!(record(&p, "cronjob/report")["previous"]["spec"]["suspend"], true);
    assert_eq!(field(&p, "job/import", "{.spec.suspend}"), "true");
    assert_eq!(field(&p, "virtualmachine/vm-ppu", "{.spec.running}"), "false");
    assert_eq!(
        record(&p, "virtualmachine/vm-ppu")["previous"],
        serde_json::json!({"spec": {"running": true}})
    );
    // Prepaid ones keep running, untouched.
    assert_eq!(field(&p, "deployment/prepaid", "{.spec.replicas}"), "2");
    assert_eq!(field(&p, "virtualmachine/vm-prepaid", "{.spec.running}"), "true");
    assert_eq!(field(&p, "virtualmachine/erp", "{.spec.running}"), "true");
    for resource in ["deployment/prepaid", "virtualmachine/vm-prepaid", "virtualmachine/erp"] {
        assert_eq!(
            field(&p, resource, r"{.metadata.labels.purchaseguard\.io/frozen}"),
            "",
            "{resource}"
        );
    }
    // What kubectl shows: the frozen ones by label, the customer's counts and retention.
    let listed = p.get(
        "deployments,statefulsets,cronjobs,jobs,virtualmachines",
        Some("initech"),
        "{range .items[*]}{.metadata.name} {end}",
    );
    assert_eq!(listed.split_whitespace().count(), 8, "{listed}");
    let frozen = labelled_frozen(&p);
    assert_eq!(
        frozen,
        [
            "cronjob.batch/report",
            "deployment.apps/web",
            "job.batch/import",
            "statefulset.apps/db",
            "virtualmachine.compute.example.com/vm-ppu"
        ]
    );
    assert_eq!(p.get("customeraccount/initech", None, "{.status.freeze.frozen}"), "5");
    let (_, table) = p.kubectl(&["get", "customeraccount", "initech"], None);
    assert!(
        table.contains("FROZEN RESOURCES") && table.contains("RETENTION ENDS"),
        "{table}"
    );
    let message = condition_message(&p, "ResourcesFrozen");
    assert!(
        message.starts_with("5 pay-per-use resources are frozen by distributor \"dist-emea\""),
        "{message}"
    );
    assert!(message.contains("not frozen: daemonsets.apps, pods"), "{message}");
    p.wait_for_event("of the frozen deployment", |e| {
        e.starts_with("Frozen ") && e.contains("scaled from 3 to 0 replicas")
    });

    // Every route back to running is refused to the tenant.
    let r8 = ["purchases.purchaseguard.io", "R8"];
    for args in [
        vec!["scale", "deployment/web", "--replicas=2"],
        vec!["scale", "statefulset/db", "--replicas=1"],
        vec![
            "patch",
            "deployment/web",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":1}}"#,
        ],
        vec![
            "patch",
            "deployment/web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ],
        vec![
            "patch",
            "virtualmachine/vm-ppu",
            "--type=merge",
            "-p",
            r#"{"spec":{"running":true}}"#,
        ],
        vec![
            "patch",
            "cronjob/report",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ],
        vec![
            "patch",
            "job/import",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ],
        vec!["annotate", "deployment/web", "purchaseguard.io/frozen-"],
        vec!["label", "deployment/web", "purchaseguard.io/frozen-"],
        // A forged record on a resource nobody froze would be "restored" at unfreeze.
        vec![
            "annotate",
            "deployment/prepaid",
            r#"purchaseguard.io/frozen={"customer":"initech","since":"2026-01-01T00:00:00Z","action":"scale","replicas":50,"replicasPath":"/spec/replicas"}"#,
        ],
    ] {
        let mut all = args.clone();
        all.extend(["-n", "initech"]);
        p.refused("tenant", &all, None, &r8);
    }
    let refusal = p.refused_output(
        "tenant",
        &[
            "patch",
            "virtualmachine/vm-ppu",
            "-n",
            "initech",
            "--type=merge",
            "-p",
            r#"{"spec":{"running":true}}"#,
        ],
    );
    assert!(
        refusal.contains("spec.running stays false until the customer is unfrozen"),
        "{refusal}"
    );
    // The HorizontalPodAutoscaler's own scale requests too.
    for kind in ["deployment/web", "statefulset/db"] {
        p.refused(
            "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            &[
                "--as-group",
                "system:masters",
                "scale",
                kind,
                "-n",
                "initech",
                "--replicas=4",
            ],
            None,
            &r8,
        );
    }
    // Use that leaves the freeze alone stays possible: a rename.
    p.allowed(
        "tenant",
        &[
            "annotate",
            "deployment/web",
            "-n",
            "initech",
            "purchaseguard.io/display-name=Web shop",
        ],
        None,
    );
    // R6: a frozen customer is unfrozen only by Unrestrict and Unfreeze.
    p.refused(
        "dist-op",
        &["apply", "-f", "-"],
        Some(&restriction(
            "dist-emea",
            "initech",
            "Restricted",
            "Keep restricted, unfreeze",
        )),
        &["RestrictedAndFrozen -> Restricted is not an operation"],
    );

    // An administrator bypasses the webhook (its configuration deleted) and starts things
    // again: purchase-guard freezes them again, keeping the values of the first freeze.
    p.kubectl_ok(&["delete", "validatingwebhookconfiguration", "purchase-guard"]);
    p.kubectl_ok(&["scale", "deployment/web", "-n", "initech", "--replicas=5"]);
    p.kubectl_ok(&[
        "patch",
        "virtualmachine/vm-ppu",
        "-n",
        "initech",
        "--type=merge",
        "-p",
        r#"{"spec":{"running":true}}"#,
    ]);
    p.kubectl_ok_with(
        &["create", "-f", "-"],
        &workload_billed("Deployment", "initech", "sneaky", 2, "pay-per-use"),
    );
    p.wait_for_in("deployment/web", Some("initech"), "{.spec.replicas}=0");
    p.wait_for_in("virtualmachine/vm-ppu", Some("initech"), "{.spec.running}=false");
    p.wait_for_in("deployment/sneaky", Some("initech"), "{.spec.replicas}=0");
    assert_eq!(
        record(&p, "deployment/web")["replicas"],
        3,
        "the first freeze's values are kept"
    );
    assert_eq!(record(&p, "deployment/sneaky")["replicas"], 2);
    p.wait_for_event("of the drift correction", |e| e.starts_with("FreezeReapplied "));
    p.wait_for("customeraccount/initech", "{.status.freeze.frozen}=6");

    // R9: Unrestrict and Unfreeze restores each resource exactly as it was, once.
    unrestrict_and_unfreeze(&p);
    assert_eq!(field(&p, "deployment/web", "{.spec.replicas}"), "3");
    assert_eq!(field(&p, "deployment/sneaky", "{.spec.replicas}"), "2");
    assert_eq!(field(&p, "statefulset/db", "{.spec.replicas}"), "2");
    assert_ne!(field(&p, "cronjob/report", "{.spec.suspend}"), "true");
    assert_ne!(field(&p, "job/import", "{.spec.suspend}"), "true");
    assert_eq!(field(&p, "virtualmachine/vm-ppu", "{.spec.running}"), "true");
    assert_eq!(field(&p, "deployment/prepaid", "{.spec.replicas}"), "2");
    assert_eq!(
        field(
            &p,
            "deployment/web",
            r"{.metadata.annotations.purchaseguard\.io/display-name}"
        ),
        "Web shop",
        "changes made while frozen are kept"
    );
    assert_eq!(labelled_frozen(&p), Vec::<String>::new());
    assert_eq!(
        p.get(
            "customeraccount/initech",
            None,
            "{.status.freeze.restored} {.status.freeze.frozen}"
        ),
        "6 0"
    );
    p.wait_for_event("of the unfreeze", |e| {
        e.starts_with("Unfrozen ") && e.contains("6 resources restored")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_ends_with_release_due_and_release_deletes_only_pay_per_use_resources() {
    let mut p = Platform::start("freeze-release").await;
    // The freezing partner's own retention: 3 seconds (purchase-guard's default is 15 days).
    p.kubectl_ok(&[
        "patch",
        "partner/dist-emea",
        "--type=merge",
        "-p",
        r#"{"spec":{"freezeRetention":"3s"}}"#,
    ]);
    buy_and_freeze(&p);
    p.wait_for(
        "customeraccount/initech",
        r#"{.status.conditions[?(@.type=="ReleaseDue")].reason}=RetentionEnded"#,
    );
    let message = condition_message(&p, "ReleaseDue");
    assert!(
        message.contains("5 frozen pay-per-use resources await release"),
        "{message}"
    );
    assert!(message.contains("nothing was deleted"), "{message}");
    p.wait_for_event("of the due release", |e| e.starts_with("RetentionEnded "));
    // Release disabled: nothing was deleted.
    let all = "deployments,statefulsets,cronjobs,jobs,virtualmachines";
    let names = |p: &Platform| {
        let mut v: Vec<String> = p
            .get(all, Some("initech"), "{range .items[*]}{.metadata.name} {end}")
            .split_whitespace()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&p).len(), 8);

    // With release enabled, the frozen pay-per-use and spot resources are deleted, each with
    // an event naming it; prepaid ones stay.
    p.start_replica(&["--leader-election=false", "--release-frozen=true"]);
    p.wait_for(
        "customeraccount/initech",
        r#"{.status.conditions[?(@.type=="ReleaseDue")].reason}=Released"#,
    );
    assert_eq!(names(&p), ["erp", "prepaid", "vm-prepaid"]);
    assert_eq!(field(&p, "deployment/prepaid", "{.spec.replicas}"), "2");
    for released in [
        "deployments.apps initech/web",
        "statefulsets.apps initech/db",
        "cronjobs.batch initech/report",
        "jobs.batch initech/import",
        "virtualmachines.compute.example.com initech/vm-ppu",
    ] {
        p.wait_for_event(released, |e| e.starts_with(&format!("Released {released}: ")));
    }
    assert_eq!(p.get("customeraccount/initech", None, "{.status.freeze.released}"), "5");

    // R9: the unfreeze reports them gone and does not recreate them.
    unrestrict_and_unfreeze(&p);
    let message = condition_message(&p, "ResourcesFrozen");
    assert!(
        message.contains("5 released at the end of retention are gone"),
        "{message}"
    );
    assert_eq!(names(&p), ["erp", "prepaid", "vm-prepaid"]);
}
