//! 100,000+ random and mutated AdmissionReviews through every webhook: never a panic, and
//! every reply is a well-formed AdmissionReview answering the request's uid, or a 400 with a
//! reason when the body is unusable.

mod support;
use purchase_guard::api::{CustomerAccount, Partner, PurchaseRestriction};
use purchase_guard::index::Stores;
use purchase_guard::webhook::Metrics;
use purchase_guard::webhook::server::{Which, review_body};
use purchase_guard::webhook::{Enforcement, Settings, Webhooks};
use serde_json::{Value, json};
use support::rng::Rng;

fn from<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("a valid fixture")
}

/// Partners, customers and decisions of the fixture, with `customers` instead of the fixture's
/// own when given.
fn stores_with(customers: Option<Vec<CustomerAccount>>) -> Stores {
    let partners = vec![
        from::<Partner>(
            json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}}),
        ),
        from::<Partner>(
            json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "res"}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": "res"}}),
        ),
    ];
    let customers = customers.unwrap_or_else(|| vec![from::<CustomerAccount>(json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
        "metadata": {"name": "acme", "generation": 1},
        "spec": {"associationModel": "Reseller", "reseller": "res", "namespaces": ["acme"]},
        "status": {"observedGeneration": 1, "conditions": [], "decision": {"state": "Restricted", "reason": "R1 default"}}
    }))]);
    let decisions = vec![from::<PurchaseRestriction>(json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
        "metadata": {"name": "acme", "namespace": "dist", "generation": 1},
        "spec": {"customer": "acme", "state": "Restricted", "reason": "overdue"}
    }))];
    Stores::from_objects(partners, customers, vec![], decisions)
}

/// Well-formed reviews the mutations start from.
fn seeds() -> Vec<Value> {
    let review = |kind: Value, resource: Value, ns: &str, op: &str, object: Value, old: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-1", "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
            "name": "x", "namespace": ns, "operation": op, "userInfo": {"username": "alice", "groups": ["g"]},
            "object": object, "oldObject": old, "dryRun": false, "options": {}
        }})
    };
    let pr_kind = json!({"group": "purchaseguard.io", "version": "v1alpha1", "kind": "PurchaseRestriction"});
    let pr_res = json!({"group": "purchaseguard.io", "version": "v1alpha1", "resource": "purchaserestrictions"});
    let pr = json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction", "metadata": {"name": "x", "namespace": "dist", "annotations": {"a": "b"}}, "spec": {"customer": "acme", "state": "Restricted", "reason": "late"}});
    let del_kind = json!({"group": "purchaseguard.io", "version": "v1alpha1", "kind": "ResellerDelegation"});
    let del_res = json!({"group": "purchaseguard.io", "version": "v1alpha1", "resource": "resellerdelegations"});
    let del = json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "ResellerDelegation", "metadata": {"name": "d", "namespace": "dist"}, "spec": {"reseller": "res"}});
    let vm_kind = json!({"group": "compute.example.com", "version": "v1", "kind": "VirtualMachine"});
    let vm_res = json!({"group": "compute.example.com", "version": "v1", "resource": "virtualmachines"});
    let vm = json!({"apiVersion": "compute.example.com/v1", "kind": "VirtualMachine", "metadata": {"name": "x", "namespace": "acme", "labels": {"purchaseguard.io/billing-mode": "yearly-monthly"}}, "spec": {"cpus": 2, "subscription": {"renewedUntil": "2027-01-01"}}});
    let mut vm2 = vm.clone();
    vm2["spec"]["cpus"] = json!(4);
    vec![
        review(
            pr_kind.clone(),
            pr_res.clone(),
            "dist",
            "CREATE",
            pr.clone(),
            Value::Null,
        ),
        review(
            pr_kind.clone(),
            pr_res.clone(),
            "dist",
            "UPDATE",
            pr.clone(),
            pr.clone(),
        ),
        review(pr_kind, pr_res, "dist", "DELETE", Value::Null, pr),
        review(
            del_kind.clone(),
            del_res.clone(),
            "dist",
            "CREATE",
            del.clone(),
            Value::Null,
        ),
        review(del_kind, del_res, "dist", "DELETE", Value::Null, del),
        review(
            vm_kind.clone(),
            vm_res.clone(),
            "acme",
            "CREATE",
            vm.clone(),
            Value::Null,
        ),
        review(vm_kind.clone(), vm_res.clone(), "acme", "UPDATE", vm2, vm.clone()),
        review(vm_kind, vm_res, "acme", "DELETE", Value::Null, vm),
    ]
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!((rng.next() % 1000) as f64 / 7.0),
        4 => json!(
            rng.pick(&[
                "",
                "CREATE",
                "UPDATE",
                "DELETE",
                "acme",
                "dist",
                "Restricted",
                "RestrictedAndFrozen",
                "Unrestricted",
                "pay-per-use",
                "spot",
                "yearly-monthly",
                "\u{0}",
                "é",
                "purchaseguard.io",
                "v1alpha1"
            ])
            .to_string()
        ),
        5 => json!("x".repeat(rng.below(300))),
        6 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let keys = [
                "apiVersion",
                "kind",
                "request",
                "uid",
                "object",
                "oldObject",
                "spec",
                "metadata",
                "labels",
                "state",
                "reason",
                "customer",
                "namespace",
                "operation",
                "subResource",
                "annotations",
                "status",
            ];
            Value::Object(
                (0..rng.below(5))
                    .map(|_| (rng.pick(&keys).to_string(), random_value(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

/// Replaces or removes a random node of `v`.
fn mutate(rng: &mut Rng, v: &mut Value, depth: usize) {
    let descend = depth < 6 && rng.below(4) != 0;
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, random_value(rng, depth));
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate(rng, child, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            mutate(rng, &mut items[i], depth + 1);
        }
        _ => *v = random_value(rng, depth),
    }
}

fn check_reply(which: Which, body: &[u8], status: u16, reply: &[u8]) {
    let sent: Option<Value> = serde_json::from_slice(body).ok();
    match status {
        200 => {
            let review: Value = serde_json::from_slice(reply).expect("a 200 reply is JSON");
            assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(review["kind"], "AdmissionReview");
            let uid = sent.as_ref().and_then(|s| s.pointer("/request/uid")).cloned();
            assert_eq!(review.pointer("/response/uid").cloned(), uid, "{which:?}");
            let allowed = review.pointer("/response/allowed").and_then(Value::as_bool);
            assert!(allowed.is_some(), "{review}");
            if allowed == Some(false) {
                let message = review.pointer("/response/status/message").and_then(Value::as_str);
                assert!(message.is_some_and(|m| !m.is_empty()), "a denial says why: {review}");
            }
        }
        400 => assert!(!reply.is_empty(), "a 400 says why"),
        other => panic!("unexpected status {other}"),
    }
}

#[test]
fn random_and_mutated_reviews_never_panic() {
    let metrics = Metrics::default();
    let unsynced = Webhooks::new(Settings::default());
    let synced = Webhooks::new(Settings {
        enforcement: Enforcement::Warn,
        ..Settings::default()
    });
    synced.set_stores(stores_with(None));
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut judged = 0usize;
    let total = 120_000;
    for i in 0..total {
        let body: Vec<u8> = match i % 10 {
            // Raw bytes.
            0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            // Random JSON.
            1 => random_value(&mut rng, 0).to_string().into_bytes(),
            // Truncated valid reviews.
            2 => {
                let s = rng.pick(&seeds).to_string();
                s.as_bytes()[..rng.below(s.len())].to_vec()
            }
            // Mutated reviews, one to four mutations.
            _ => {
                let mut v = rng.pick(&seeds).clone();
                for _ in 0..=rng.below(2) {
                    // Mostly inside the objects, so that many reach the webhooks' logic.
                    let target = *rng.pick(&["/request/object", "/request/oldObject", "/request", ""]);
                    match v.pointer_mut(target) {
                        Some(node) => mutate(&mut rng, node, 1),
                        None => mutate(&mut rng, &mut v, 0),
                    }
                }
                v.to_string().into_bytes()
            }
        };
        let which = *rng.pick(&Which::ALL);
        let webhooks = if rng.below(4) == 0 { &unsynced } else { &synced };
        let reply = futures::executor::block_on(review_body(webhooks, &metrics, which, &body));
        check_reply(which, &body, reply.status, &reply.body);
        judged += usize::from(reply.status == 200 && !String::from_utf8_lossy(&reply.body).contains("MalformedReview"));
    }
    // The unmutated seeds are judged too, and the mutations reach the webhooks' logic.
    for seed in &seeds {
        for which in Which::ALL {
            let body = seed.to_string();
            let reply = futures::executor::block_on(review_body(&synced, &metrics, which, body.as_bytes()));
            assert_eq!(reply.status, 200, "{seed}");
            check_reply(which, body.as_bytes(), reply.status, &reply.body);
        }
    }
    assert!(judged > total / 4, "only {judged} of {total} bodies reached a webhook");
    eprintln!("{judged} of {total} bodies reached a webhook's logic");
}

fn purchase(namespace: &str, operation: &str, sub_resource: Option<&str>) -> Vec<u8> {
    let vm = json!({"apiVersion": "compute.example.com/v1", "kind": "VirtualMachine", "metadata": {"name": "x", "namespace": namespace}, "spec": {"cpus": 2}});
    let mut request = json!({
        "uid": "u-2",
        "kind": {"group": "compute.example.com", "version": "v1", "kind": "VirtualMachine"},
        "resource": {"group": "compute.example.com", "version": "v1", "resource": "virtualmachines"},
        "name": "x", "namespace": namespace, "operation": operation,
        "userInfo": {"username": "tenant"}, "object": vm, "oldObject": if operation == "CREATE" { Value::Null } else { vm.clone() }
    });
    if let Some(s) = sub_resource {
        request["subResource"] = json!(s);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        .to_string()
        .into_bytes()
}

fn response(webhooks: &Webhooks, body: &[u8]) -> Value {
    let reply = futures::executor::block_on(review_body(webhooks, &Metrics::default(), Which::Purchases, body));
    assert_eq!(reply.status, 200);
    serde_json::from_slice::<Value>(&reply.body).expect("JSON")["response"].clone()
}

#[test]
fn purchases_fail_closed_while_the_state_is_unknown_and_never_trust_a_status() {
    // Caches not synced: refused, saying so.
    let unsynced = Webhooks::new(Settings::default());
    let r = response(&unsynced, &purchase("acme", "CREATE", None));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("caches are not synced"),
        "{r}"
    );

    // The purchase webhook evaluates customers itself: what a status says (stale, missing, or
    // claiming Unrestricted) does not decide. Both customers have no decision, so R1 applies.
    let stale: CustomerAccount = from(json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
        "metadata": {"name": "stale", "generation": 3},
        "spec": {"associationModel": "Reseller", "reseller": "res", "namespaces": ["stale"]},
        "status": {"observedGeneration": 2, "conditions": [], "decision": {"state": "Unrestricted", "reason": "paid"}}
    }));
    let missing: CustomerAccount = from(json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
        "metadata": {"name": "new", "generation": 1},
        "spec": {"associationModel": "Reseller", "reseller": "res", "namespaces": ["new"]}
    }));
    let synced = Webhooks::new(Settings::default());
    synced.set_stores(stores_with(Some(vec![stale, missing])));
    for namespace in ["stale", "new"] {
        let r = response(&synced, &purchase(namespace, "CREATE", None));
        assert_eq!(r["allowed"], false, "{r}");
        let message = r["status"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("by default since its association"), "{r}");
        assert!(message.contains("only \"dist\" can lift it"), "{r}");
    }

    // What passes anyway: deletion, status-only updates, namespaces of no customer.
    assert_eq!(response(&synced, &purchase("stale", "DELETE", None))["allowed"], true);
    assert_eq!(
        response(&synced, &purchase("stale", "UPDATE", Some("status")))["allowed"],
        true
    );
    assert_eq!(
        response(&synced, &purchase("elsewhere", "CREATE", None))["allowed"],
        true
    );
}
