//! The attack suite: one test per way around a restriction, each asserting that the attack is
//! refused and that the customer's state is unchanged. Each runs on its own sandbox with RBAC,
//! purchase-guard's webhook configurations and a real `purchase-guard run` replica; attackers
//! are partner operators with a broad role in their own namespace (`resources: ["*"]` in
//! purchaseguard.io, status included), acting with `kubectl --as`.

mod support;
use support::binding;
use support::platform::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_status_cannot_lift_a_restriction() {
    let p = Platform::start("attack-status").await;
    let before = p.customer_record("acme");
    let forged = r#"{"status":{"accepted":{"generation":1,"state":"Unrestricted","reason":"forged","since":"2026-01-01T00:00:00.000000Z"}}}"#;
    let json_patch = r#"[{"op":"replace","path":"/status/accepted/state","value":"Unrestricted"}]"#;
    // The holder itself, with a merge patch and a JSON patch of the status subresource.
    for (kind, patch) in [("merge", forged), ("json", json_patch)] {
        p.refused(
            "alpha-op",
            &[
                "patch",
                "purchaserestriction",
                "acme",
                "-n",
                "reseller-alpha",
                "--subresource=status",
                &format!("--type={kind}"),
                "-p",
                patch,
            ],
            None,
            &[
                "status.purchaseguard.io",
                "written by purchase-guard alone",
                "\"alpha-op\" may not write it",
            ],
        );
    }
    // The distributor that delegated, on its own decision about globex, and on a customer.
    p.refused(
        "dist-op",
        &[
            "patch",
            "purchaserestriction",
            "globex",
            "-n",
            "dist-emea",
            "--subresource=status",
            "--type=merge",
            "-p",
            forged,
        ],
        None,
        &["written by purchase-guard alone"],
    );
    assert_eq!(
        p.get(
            "purchaserestriction/acme",
            Some("reseller-alpha"),
            "{.status.accepted.reason}"
        ),
        "Suspected fraud on the payment card, case 2026-1182",
        "the accepted record is unchanged"
    );
    assert_eq!(p.customer_record("acme"), before, "acme's state is unchanged");
    p.purchase_refused("acme-dev", "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restriction_holds_without_a_leader() {
    let mut p = Platform::start("attack-leader").await;
    // The Lease is held by a replica that is gone but whose lease has not expired: the new
    // replica syncs its caches and serves admission, but never reconciles.
    let renew = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "purchase-guard", "namespace": NAMESPACE},
        "spec": {"holderIdentity": "gone-replica", "leaseDurationSeconds": 3600,
                 "acquireTime": renew, "renewTime": renew}
    });
    let (ok, out) = p.kubectl(&["apply", "-f", "-"], Some(&lease.to_string()));
    assert!(ok, "{out}");
    p.start_replica(&[
        "--leader-election=true",
        "--lease-name=purchase-guard",
        "--lease-namespace=purchase-guard",
    ]);
    // initech is unrestricted; its distributor restricts it.
    p.allowed(
        "dist-op",
        &["apply", "-f", "-"],
        Some(&restriction("dist-emea", "initech", "Restricted", "Invoice 77 overdue")),
    );
    // Nobody reconciles: the status still says Unrestricted...
    assert_eq!(
        p.get("customeraccount/initech", None, "{.status.decision.state}"),
        "Unrestricted"
    );
    // ...and the purchase is refused all the same, at once.
    p.purchase_refused("initech", "initech");
    assert_eq!(
        p.get("lease/purchase-guard", Some(NAMESPACE), "{.spec.holderIdentity}"),
        "gone-replica",
        "the replica never led"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_reference_cannot_withdraw_a_decision() {
    let p = Platform::start("attack-owner").await;
    let before = p.customer_record("acme");
    let owner = r#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"00000000-0000-0000-0000-000000000000"}]}}"#;
    let json_patch = r#"[{"op":"add","path":"/metadata/ownerReferences","value":[{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"00000000-0000-0000-0000-000000000000"}]}]"#;
    // The holder on its own decision, and the distributor that delegated on its standing one.
    for (user, ns, name) in [
        ("alpha-op", "reseller-alpha", "acme"),
        ("dist-op", "dist-emea", "globex"),
    ] {
        for (kind, patch) in [("merge", owner), ("json", json_patch)] {
            p.refused(
                user,
                &[
                    "patch",
                    "purchaserestriction",
                    name,
                    "-n",
                    ns,
                    &format!("--type={kind}"),
                    "-p",
                    patch,
                ],
                None,
                &["decisions.purchaseguard.io", "metadata.ownerReferences: Forbidden"],
            );
        }
        assert_eq!(
            p.get(
                &format!("purchaserestriction/{name}"),
                Some(ns),
                "{.metadata.ownerReferences}"
            ),
            "",
            "{ns}/{name} has no owner"
        );
    }
    // Nor can a new decision be created with an owner.
    let mut owned: serde_json::Value =
        serde_json::from_str(&restriction("reseller-alpha", "acme", "RestrictedAndFrozen", "x")).expect("JSON");
    owned["metadata"]["name"] = "acme-owned".into();
    owned["metadata"]["ownerReferences"] =
        serde_json::from_str::<serde_json::Value>(owner).expect("JSON")["metadata"]["ownerReferences"].clone();
    p.refused(
        "alpha-op",
        &["create", "-f", "-"],
        Some(&owned.to_string()),
        &["metadata.ownerReferences: Forbidden"],
    );
    assert_eq!(p.customer_record("acme"), before, "acme's state is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invisible_or_multiline_reason_is_refused() {
    let p = Platform::start("attack-reason").await;
    let before = p.customer_record("acme");
    for (reason, expected) in [
        ("\u{200B}\u{200D}\u{FEFF}", "must not be blank"),
        ("\u{2060} \u{00AD}", "must not be blank"),
        ("Paid in full\n(changed by \"finance-lead\")", "control characters"),
    ] {
        p.refused(
            "alpha-op",
            &["apply", "-f", "-"],
            Some(&restriction("reseller-alpha", "acme", "Unrestricted", reason)),
            &[expected],
        );
    }
    assert_eq!(p.customer_record("acme"), before, "acme's state is unchanged");
    p.purchase_refused("acme-dev", "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reason_cannot_fake_who_changed_it() {
    let p = Platform::start("attack-quote").await;
    // A legitimate change by the holder, whose reason imitates the "changed by" suffix.
    let reason = r#"Paid in full" (changed by "finance-lead"#;
    p.allowed(
        "alpha-op",
        &["apply", "-f", "-"],
        Some(&restriction("reseller-alpha", "acme", "Unrestricted", reason)),
    );
    p.wait_for("customeraccount/acme", "{.status.decision.state}=Unrestricted");
    let note = p.wait_for_event("for the change", |e| e.contains("Paid in full"));
    // The reason is quoted as data; only the real user appears as "changed by".
    assert!(note.ends_with(r#"(changed by "alpha-op")"#), "{note}");
    assert_eq!(note.matches(r#"(changed by ""#).count(), 1, "{note}");
    assert!(
        note.contains(r#"\"finance-lead"#),
        "the reason's quotes are escaped: {note}"
    );
    let message = p.get(
        "customeraccount/acme",
        None,
        r#"{.status.conditions[?(@.type=="PurchaseRestricted")].message}"#,
    );
    assert!(message.contains(r#"\" (changed by \"finance-lead""#), "{message}");
    assert_eq!(
        p.get("customeraccount/acme", None, "{.status.history[-1:].user}"),
        "alpha-op"
    );
}

const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "platform-tool", "namespace": "default"},
 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "tool"}},
          "template": {"metadata": {"labels": {"app": "tool"}},
                       "spec": {"containers": [{"name": "tool", "image": "registry.example/tool:1"}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_reaches_only_customers_namespaces() {
    let mut p = Platform::start("attack-outage").await;
    // purchase-guard is down (failurePolicy Fail).
    p.replica = None;
    // A platform team's Deployment outside customers' namespaces does not depend on it...
    let (ok, out) = p.kubectl(&["create", "-f", "-"], Some(DEPLOYMENT));
    assert!(
        ok,
        "a Deployment in default was refused while purchase-guard is down: {out}"
    );
    // ...while a customer's namespace stays closed to purchases.
    p.refused(
        "tenant",
        &["create", "-f", "-"],
        Some(&vm("acme-dev", "attack-vm")),
        &["purchases.purchaseguard.io"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_label_is_purchase_guards() {
    let p = Platform::start("attack-label").await;
    // Not even a cluster administrator removes it from a listed namespace...
    let (ok, out) = p.kubectl(&["label", "namespace", "acme-dev", "purchaseguard.io/guarded-"], None);
    assert!(!ok, "the label was removed from a listed namespace: {out}");
    assert!(
        out.contains("namespace \"acme-dev\" belongs to CustomerAccount acme"),
        "{out}"
    );
    // ...changes it, or sets it elsewhere.
    for args in [
        [
            "label",
            "namespace",
            "acme-dev",
            "purchaseguard.io/guarded=false",
            "--overwrite",
        ],
        [
            "label",
            "namespace",
            "default",
            "purchaseguard.io/guarded=true",
            "--overwrite",
        ],
    ] {
        let (ok, out) = p.kubectl(&args, None);
        assert!(!ok, "{args:?} was allowed: {out}");
        assert!(out.contains("is set by purchase-guard alone"), "{out}");
    }
    assert_eq!(
        p.get(
            "namespace/acme-dev",
            None,
            r"{.metadata.labels.purchaseguard\.io/guarded}"
        ),
        "true"
    );
    p.purchase_refused("acme-dev", "acme");
    // The state label says what each customer may do, and is purchase-guard's as well.
    let state = |ns: &str| {
        p.get(
            &format!("namespace/{ns}"),
            None,
            r"{.metadata.labels.purchaseguard\.io/purchases}",
        )
    };
    assert_eq!(state("acme-dev"), "frozen");
    assert_eq!(state("globex"), "restricted");
    assert_eq!(state("initech"), "allowed");
    for args in [
        [
            "label",
            "namespace",
            "acme-dev",
            "purchaseguard.io/purchases=allowed",
            "--overwrite",
        ],
        [
            "label",
            "namespace",
            "acme-dev",
            "purchaseguard.io/purchases-",
            "--overwrite",
        ],
        [
            "label",
            "namespace",
            "default",
            "purchaseguard.io/purchases=allowed",
            "--overwrite",
        ],
    ] {
        let (ok, out) = p.kubectl(&args, None);
        assert!(!ok, "{args:?} was allowed: {out}");
        assert!(
            out.contains("is set by purchase-guard alone") || out.contains("belongs to CustomerAccount acme"),
            "{out}"
        );
    }
    assert_eq!(state("acme-dev"), "frozen");
    // It follows the customer's state.
    p.decide("dist-op", "dist-emea", "initech", "Restricted", "Credit limit review");
    p.wait_for(
        "namespace/initech",
        r"{.metadata.labels.purchaseguard\.io/purchases}=restricted",
    );
    // Releasing a namespace is removing it from the customer's list: then the controller
    // removes the labels, and says so.
    p.admin_patch("customeraccount/acme", r#"{"spec":{"namespaces":["acme-prod"]}}"#);
    p.wait_for("customeraccount/acme", "{.status.guardedNamespaces[*]}=acme-prod");
    assert_eq!(
        p.get(
            "namespace/acme-dev",
            None,
            r"{.metadata.labels.purchaseguard\.io/guarded}"
        ),
        ""
    );
    assert_eq!(state("acme-dev"), "");
    p.wait_for_event("releasing acme-dev", |e| {
        e.starts_with("NamespaceReleased") && e.contains("\"acme-dev\"")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_customer_does_not_unguard_its_namespaces() {
    let p = Platform::start("attack-delete").await;
    let (ok, out) = p.kubectl(&["delete", "customeraccount", "acme"], None);
    assert!(ok, "{out}");
    // Its namespaces stay guarded, and closed to purchases, saying why.
    p.refused(
        "tenant",
        &["create", "-f", "-"],
        Some(&vm("acme-dev", "attack-vm")),
        &["purchases.purchaseguard.io", "no CustomerAccount claims it"],
    );
    // Releasing it is an explicit act, allowed now that no customer lists it.
    let (ok, out) = p.kubectl(
        &[
            "label",
            "namespace",
            "acme-dev",
            "purchaseguard.io/guarded-",
            "purchaseguard.io/purchases-",
        ],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = p.kubectl(
        &["--as", "tenant", "create", "-f", "-"],
        Some(&vm("acme-dev", "after-release")),
    );
    assert!(ok, "{out}");
}

/// What kube-apiserver sends for `kubectl scale deployment/web --replicas=N` (or an
/// autoscaler's scale request) in a guarded namespace: the kind is autoscaling/v1 Scale, the
/// resource apps/v1 deployments, the subresource scale.
fn scale_review(from: i64, to: i64) -> Vec<u8> {
    let scale = |replicas: i64| {
        serde_json::json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                           "metadata": {"name": "web", "namespace": "acme-prod"},
                           "spec": {"replicas": replicas}})
    };
    serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-scale", "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"}, "subResource": "scale",
        "requestKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "name": "web", "namespace": "acme-prod", "operation": "UPDATE",
        "userInfo": {"username": "tenant"}, "object": scale(to), "oldObject": scale(from)
    }})
    .to_string()
    .into_bytes()
}

#[test]
fn scaling_up_through_the_scale_subresource_is_a_purchase() {
    use purchase_guard::api::{CustomerAccount, Partner};
    use purchase_guard::index::Stores;
    use purchase_guard::webhook::server::{Which, review_body};
    use purchase_guard::webhook::{Metrics, Settings, Webhooks};
    fn object<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
        serde_json::from_value(v).expect("a valid object")
    }
    let partners: Vec<Partner> = vec![
        object(
            serde_json::json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner",
            "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}}),
        ),
        object(
            serde_json::json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner",
            "metadata": {"name": "res"}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": "res"}}),
        ),
    ];
    let customer: CustomerAccount = object(serde_json::json!({"apiVersion": "purchaseguard.io/v1alpha1",
        "kind": "CustomerAccount", "metadata": {"name": "acme"},
        "spec": {"associationModel": "Reseller", "reseller": "res", "namespaces": ["acme-prod"]}}));
    // acme has no decision: restricted by default (R1).
    let webhooks = Webhooks::new(Settings::default());
    webhooks.set_stores(Stores::from_objects(partners, vec![customer], vec![], vec![]));
    let judge = |from, to| {
        let reply = futures::executor::block_on(review_body(
            &webhooks,
            &Metrics::default(),
            Which::Purchases,
            &scale_review(from, to),
        ));
        assert_eq!(reply.status, 200);
        serde_json::from_slice::<serde_json::Value>(&reply.body).expect("JSON")["response"].clone()
    };
    let up = judge(2, 10);
    assert_eq!(up["allowed"], false, "{up}");
    let message = up["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"purchase\""), "{message}");
    assert!(message.contains("customer \"acme\" is restricted"), "{message}");
    // Scaling down is use: allowed while restricted.
    assert_eq!(judge(10, 2)["allowed"], true);
    // The webhook configurations send scale requests of every guarded resource.
    let [validating, _] = purchase_guard::webhook::configurations(
        "purchase-guard",
        &purchase_guard::webhook::ServiceRef {
            namespace: NAMESPACE,
            name: "purchase-guard-webhook",
        },
        None,
        &purchase_guard::webhook::Settings::default(),
        &[],
    );
    let purchases = validating["webhooks"]
        .as_array()
        .and_then(|w| w.iter().find(|h| h["name"] == "purchases.purchaseguard.io"))
        .expect("the purchase webhook");
    let resources: Vec<&str> = purchases["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|r| r["resources"].as_array().into_iter().flatten())
        .filter_map(|r| r.as_str())
        .collect();
    assert!(resources.contains(&"deployments/scale"), "{resources:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_state_change_has_its_own_event() {
    let p = Platform::start("attack-events").await;
    for (user, state, reason) in [
        ("alpha-op", "Unrestricted", "Paid invoice 1"),
        ("alpha-op", "Restricted", "Invoice 2 overdue"),
        // The same event reason as the first change, by another user.
        ("alpha-op2", "Unrestricted", "Paid invoice 2"),
    ] {
        p.allowed(
            user,
            &["apply", "-f", "-"],
            Some(&restriction("reseller-alpha", "acme", state, reason)),
        );
        p.wait_for("customeraccount/acme", &format!("{{.status.decision.reason}}={reason}"));
        let expected = format!("(changed by {user:?})");
        p.wait_for_event(&format!("with {reason:?} by {user:?}"), |e| {
            e.contains(reason) && e.ends_with(&expected)
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_needs_a_reason_and_credits_its_user() {
    let p = Platform::start("attack-credit").await;
    // reseller-alpha restricts acme (stamped with alpha-op)...
    let reseller_reason = "Card replaced, still under review";
    p.allowed(
        "alpha-op",
        &["apply", "-f", "-"],
        Some(&restriction(
            "reseller-alpha",
            "acme",
            "RestrictedAndFrozen",
            reseller_reason,
        )),
    );
    p.wait_for(
        "customeraccount/acme",
        &format!("{{.status.decision.reason}}={reseller_reason}"),
    );
    // ...dist-emea revokes the delegation and decides itself; its decision is in force.
    p.allowed(
        "dist-op",
        &[
            "delete",
            "resellerdelegation",
            "delegate-reseller-alpha",
            "-n",
            "dist-emea",
        ],
        None,
    );
    p.wait_for("customeraccount/acme", "{.status.authority.partner}=dist-emea");
    p.allowed(
        "dist-op",
        &["apply", "-f", "-"],
        Some(&restriction("dist-emea", "acme", "Unrestricted", "Paid in full")),
    );
    p.wait_for("customeraccount/acme", "{.status.decision.reason}=Paid in full");
    assert_eq!(
        p.get("customeraccount/acme", None, "{.status.history[-1:].user}"),
        "dist-op"
    );
    // dist-emea deletes its decision in force without a word: refused, to cleanup as well
    // (namespace deletion), and nothing changes.
    let before = p.customer_record("acme");
    let delete = ["delete", "purchaserestriction", "acme", "-n", "dist-emea"];
    let expected = [
        "decisions.purchaseguard.io",
        "is the decision in force",
        "Withdraw it first",
    ];
    p.refused("dist-op", &delete, None, &expected);
    // The namespace controller (it has every right on the namespace's contents).
    let mut as_cleanup = vec![
        "--as",
        "system:serviceaccount:kube-system:namespace-controller",
        "--as-group",
        "system:masters",
    ];
    as_cleanup.extend(delete);
    let (ok, out) = p.kubectl(&as_cleanup, None);
    assert!(!ok && expected.iter().all(|e| out.contains(e)), "cleanup: {out}");
    assert_eq!(p.customer_record("acme"), before, "the customer's state is unchanged");
    // A withdrawal without a reason is refused too.
    let withdraw = |reason: &str| -> Vec<String> {
        let patch = serde_json::json!({"spec": {"withdrawal": {"reason": reason}}}).to_string();
        [
            "patch",
            "purchaserestriction",
            "acme",
            "-n",
            "dist-emea",
            "--type=merge",
            "-p",
            &patch,
        ]
        .map(String::from)
        .to_vec()
    };
    p.refused("dist-op", &args(&withdraw(" \u{200B}")), None, &["withdrawal"]);
    // dist-emea withdraws its decision with a reason: reseller-alpha's standing decision is in
    // force again, and the history credits dist-op's withdrawal, not alpha-op.
    let reason = withdraw("Handing acme back to reseller-alpha");
    p.allowed("dist-op", &args(&reason), None);
    p.wait_for(
        "customeraccount/acme",
        &format!("{{.status.decision.reason}}={reseller_reason}"),
    );
    let last = |field: &str| {
        p.get(
            "customeraccount/acme",
            None,
            &format!("{{.status.history[-1:].{field}}}"),
        )
    };
    assert_eq!(last("reason"), "Handing acme back to reseller-alpha");
    assert_eq!(last("user"), "dist-op", "the withdrawing user is credited");
    assert_eq!(last("partner"), "dist-emea");
    assert_eq!(last("withdrawn.name"), "acme");
    assert_eq!(last("state"), "RestrictedAndFrozen");
    p.wait_for_event("of the withdrawal", |e| {
        e.contains("after the withdrawal of PurchaseRestriction dist-emea/acme")
            && e.ends_with("(changed by \"dist-op\")")
    });
    p.wait_for_in(
        "purchaserestriction/acme",
        Some("dist-emea"),
        r#"{.status.conditions[?(@.type=="Effective")].reason}=Withdrawn"#,
    );
    // Withdrawn, it may be deleted: nothing changes.
    let before = p.customer_record("acme");
    p.allowed("dist-op", &delete, None);
    assert_eq!(p.customer_record("acme"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_cannot_be_created_around_a_guarded_kind() {
    let p = Platform::start("attack-workloads").await;
    // initech's tenant runs a Deployment while initech is unrestricted.
    p.allowed(
        "tenant",
        &["create", "-f", "-"],
        Some(&workload("Deployment", "initech", "web", 2)),
    );
    p.allowed(
        "dist-op",
        &["apply", "-f", "-"],
        Some(&restriction(
            "dist-emea",
            "initech",
            "Restricted",
            "Invoice 2026-77 overdue",
        )),
    );
    p.wait_for("customeraccount/initech", "{.status.decision.state}=Restricted");
    let before = p.customer_record("initech");
    let restricted = ["purchases.purchaseguard.io", "customer \"initech\" is restricted"];
    // Every other workload kind, created directly, is a purchase.
    for kind in ["Pod", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"] {
        p.refused(
            "tenant",
            &["create", "-f", "-"],
            Some(&workload(kind, "initech", "around", 1)),
            &restricted,
        );
    }
    // More replicas through the main resource is a purchase; fewer, and a rollout restart,
    // are use.
    let scale = |replicas: i64| -> Vec<String> {
        let patch = format!("{{\"spec\":{{\"replicas\":{replicas}}}}}");
        [
            "patch",
            "deployment",
            "web",
            "-n",
            "initech",
            "--type=merge",
            "-p",
            &patch,
        ]
        .map(String::from)
        .to_vec()
    };
    let (up, down) = (scale(5), scale(1));
    p.refused("tenant", &args(&up), None, &restricted);
    p.allowed("tenant", &args(&down), None);
    // The same through the scale subresource (kubectl scale, autoscalers).
    p.refused(
        "tenant",
        &["scale", "deployment/web", "-n", "initech", "--replicas=6"],
        None,
        &restricted,
    );
    p.allowed(
        "tenant",
        &["scale", "deployment/web", "-n", "initech", "--replicas=0"],
        None,
    );
    assert_eq!(p.get("deployment/web", Some("initech"), "{.spec.replicas}"), "0");
    p.allowed(
        "tenant",
        &["rollout", "restart", "deployment/web", "-n", "initech"],
        None,
    );
    assert!(
        !p.get(
            "deployment/web",
            Some("initech"),
            r"{.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}"
        )
        .is_empty(),
        "the restart was recorded"
    );
    // A Pod the ReplicaSet controller creates for a ReplicaSet it controls follows its parent;
    // the same Pod from the tenant is a purchase.
    let mut child: serde_json::Value = serde_json::from_str(&workload("Pod", "initech", "web-abc12", 1)).expect("pod");
    child["metadata"]["ownerReferences"] = serde_json::json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f", "uid": "6a1f9f0e-0000-4000-8000-000000000001",
        "controller": true, "blockOwnerDeletion": true,
    }]);
    let child = child.to_string();
    p.refused("tenant", &["create", "-f", "-"], Some(&child), &restricted);
    let (ok, out) = p.kubectl(
        &[
            "--as",
            "system:serviceaccount:kube-system:replicaset-controller",
            "--as-group",
            "system:masters",
            "create",
            "-f",
            "-",
        ],
        Some(&child),
    );
    assert!(ok, "the ReplicaSet controller creates its Pod: {out}");
    assert_eq!(
        p.customer_record("initech"),
        before,
        "the customer's state is unchanged"
    );
}

/// A restricted customer's Pods cannot grow through `pods/resize` (in-place vertical
/// scaling, kube-apiserver 1.33): the subresource is judged as the Pod is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_cannot_be_resized_around_a_restriction() {
    let p = Platform::start("attack-resize").await;
    let mut pod: serde_json::Value = serde_json::from_str(&workload("Pod", "initech", "web", 1)).expect("pod");
    pod["spec"]["containers"][0]["resources"] =
        serde_json::json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}});
    p.allowed("tenant", &["create", "-f", "-"], Some(&pod.to_string()));
    let resize = |cpu: &str| -> Vec<String> {
        let patch =
            format!(r#"{{"spec":{{"containers":[{{"name":"app","resources":{{"requests":{{"cpu":"{cpu}"}}}}}}]}}}}"#);
        [
            "patch",
            "pod",
            "web",
            "-n",
            "initech",
            "--subresource=resize",
            "-p",
            &patch,
        ]
        .map(String::from)
        .to_vec()
    };
    // Unrestricted, a resize goes through.
    p.allowed("tenant", &args(&resize("200m")), None);
    let cpu = || {
        p.get(
            "pod/web",
            Some("initech"),
            "{.spec.containers[0].resources.requests.cpu}",
        )
    };
    assert_eq!(cpu(), "200m");
    p.decide(
        "dist-op",
        "dist-emea",
        "initech",
        "Restricted",
        "Invoice 2026-78 overdue",
    );
    p.wait_for("customeraccount/initech", "{.status.decision.state}=Restricted");
    p.refused(
        "tenant",
        &args(&resize("400m")),
        None,
        &["purchases.purchaseguard.io", "customer \"initech\" is restricted"],
    );
    assert_eq!(cpu(), "200m", "the refused resize changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_association_starts_from_r1() {
    let p = Platform::start("attack-association").await;
    // initech is unrestricted by dist-emea, under reseller-beta.
    p.wait_for("customeraccount/initech", "{.status.association.number}=0");
    // The platform admin moves initech to reseller-alpha (same distributor, delegated): what
    // was decided under the old association no longer applies.
    p.admin_patch("customeraccount/initech", r#"{"spec":{"reseller":"reseller-alpha"}}"#);
    // Once the replica has numbered the new association (its caches hold the change).
    p.wait_for("customeraccount/initech", "{.status.association.number}=1");
    p.wait_for(
        "customeraccount/initech",
        r#"{.status.conditions[?(@.type=="PurchaseRestricted")].reason}=DefaultOnAssociation"#,
    );
    assert_eq!(
        p.get("customeraccount/initech", None, "{.status.association.reseller}"),
        "reseller-alpha"
    );
    p.wait_for_in(
        "purchaserestriction/initech",
        Some("dist-emea"),
        r#"{.status.conditions[?(@.type=="Accepted")].reason}=PreviousAssociation"#,
    );
    p.purchase_refused("initech", "initech");
    // The new holder lifts it: an operation under the new association.
    p.allowed(
        "alpha-op",
        &["apply", "-f", "-"],
        Some(&restriction(
            "reseller-alpha",
            "initech",
            "Unrestricted",
            "Onboarded by reseller-alpha",
        )),
    );
    p.wait_for("customeraccount/initech", "{.status.decision.state}=Unrestricted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_keeps_guarded_kinds_in_customers_namespaces() {
    let mut p = Platform::start("attack-strict").await;
    // A namespace nobody claims, and one exempt from strict mode, where the tenant may work.
    let mut setup = String::new();
    for ns in ["unclaimed", "platform-tools"] {
        setup.push_str(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n"
        ));
        setup.push_str(&binding(ns, "tenant", "tenant"));
    }
    let (ok, out) = p.kubectl(&["apply", "-f", "-"], Some(&setup));
    assert!(ok, "{out}");
    // Off by default: a VM in a namespace of no customer is not judged.
    p.allowed("tenant", &["create", "-f", "-"], Some(&vm("unclaimed", "before")));
    // Strict mode: the webhook configuration sees every namespace but the exempt ones.
    let settings = purchase_guard::webhook::Settings {
        strict: Some(vec!["platform-tools".into()]),
        ..Default::default()
    };
    let service = purchase_guard::webhook::ServiceRef {
        namespace: NAMESPACE,
        name: "purchase-guard-webhook",
    };
    let excluded = ["kube-system", NAMESPACE];
    for config in purchase_guard::webhook::configurations("purchase-guard", &service, None, &settings, &excluded) {
        let (ok, out) = p.kubectl(&["apply", "-f", "-"], Some(&config.to_string()));
        assert!(ok, "{out}");
    }
    p.start_replica(&[
        "--leader-election=false",
        "--strict=true",
        "--strict-exempt-namespace=kube-system,purchase-guard,platform-tools",
    ]);
    p.wait_for(
        "validatingwebhookconfiguration/purchase-guard",
        "{.webhooks[0].clientConfig.caBundle}",
    );
    p.refused(
        "tenant",
        &["create", "-f", "-"],
        Some(&vm("unclaimed", "after")),
        &[
            "purchases.purchaseguard.io",
            "namespace \"unclaimed\" belongs to no customer",
            "strict mode",
        ],
    );
    // What exists there keeps working; exempt namespaces and customers' own are as before.
    p.allowed(
        "tenant",
        &[
            "patch",
            "virtualmachine",
            "before",
            "-n",
            "unclaimed",
            "--type=merge",
            "-p",
            r#"{"spec":{"cpus":4}}"#,
        ],
        None,
    );
    p.allowed("tenant", &["create", "-f", "-"], Some(&vm("platform-tools", "tool")));
    p.allowed("tenant", &["create", "-f", "-"], Some(&vm("initech", "bought")));
    p.purchase_refused("acme-dev", "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_owns_namespaces_by_label() {
    let p = Platform::start("attack-selector").await;
    let mut setup = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: globex-batch\n  labels:\n    billing.example.com/customer: globex\n---\n",
    );
    setup.push_str(&binding("globex-batch", "tenant", "tenant"));
    let (ok, out) = p.kubectl(&["apply", "-f", "-"], Some(&setup));
    assert!(ok, "{out}");
    // An empty selector would claim every namespace: refused, naming the field.
    let (ok, out) = p.kubectl(
        &[
            "patch",
            "customeraccount",
            "globex",
            "--type=merge",
            "-p",
            r#"{"spec":{"namespaceSelector":{}}}"#,
        ],
        None,
    );
    assert!(
        !ok && out.contains("spec.namespaceSelector needs at least one entry"),
        "{out}"
    );
    // globex (restricted) claims its namespaces by label.
    p.admin_patch(
        "customeraccount/globex",
        r#"{"spec":{"namespaceSelector":{"matchLabels":{"billing.example.com/customer":"globex"}}}}"#,
    );
    p.wait_for(
        "namespace/globex-batch",
        r"{.metadata.labels.purchaseguard\.io/guarded}=true",
    );
    p.wait_for("customeraccount/globex", "{.status.guardedNamespaces[1]}=globex-batch");
    p.purchase_refused("globex-batch", "globex");
    let (ok, out) = p.kubectl(
        &["label", "namespace", "globex-batch", "purchaseguard.io/guarded-"],
        None,
    );
    assert!(!ok && out.contains("belongs to CustomerAccount globex"), "{out}");
    // The platform admin relabels it away from globex: released, with an event.
    let (ok, out) = p.kubectl(
        &[
            "label",
            "namespace",
            "globex-batch",
            "billing.example.com/customer=initech",
            "--overwrite",
        ],
        None,
    );
    assert!(ok, "{out}");
    p.wait_for("customeraccount/globex", "{.status.guardedNamespaces[*]}=globex");
    p.wait_for_event("of the release", |e| {
        e.starts_with("NamespaceReleased") && e.contains("\"globex-batch\"")
    });
    assert_eq!(
        p.get(
            "namespace/globex-batch",
            None,
            r"{.metadata.labels.purchaseguard\.io/guarded}"
        ),
        ""
    );
    p.allowed("tenant", &["create", "-f", "-"], Some(&vm("globex-batch", "free")));
}
