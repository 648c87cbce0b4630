//! The generated ValidatingAdmissionPolicies (`webhook::policies::purchases`), evaluated by the
//! sandbox as kube-apiserver evaluates them, and the purchase webhook agree on allow or deny
//! for thousands of generated requests: every guarded kind, CREATE, UPDATE, DELETE and the
//! scale subresource, every billing mode (and invalid ones), the three customer states, field
//! changes of every role (capacity up and down, rename, renewal, use, other specification
//! changes, metadata, status, the billing-mode label), freeze records and tampering with them,
//! and the exempt users. A disagreement prints the request and both answers.

mod support;
use purchase_guard::api::{CustomerAccount, Partner, PurchaseRestriction};
use purchase_guard::index::Stores;
use purchase_guard::webhook::server::{Which, review_body};
use purchase_guard::webhook::{Metrics, Settings, Webhooks, policies};
use purchase_guard_policy as policy;
use serde_json::{Value, json};
use support::rng::Rng;

const CONTROLLER: &str = "system:serviceaccount:purchase-guard:purchase-guard";
const WORKLOAD_CONTROLLER: &str = "system:serviceaccount:kube-system:replicaset-controller";
/// Namespaces of no customer, in strict mode: one exempt, one not.
const OUTSIDE: [&str; 2] = ["exempt-ns", "loose"];
/// (namespace, customer, decision state).
const CUSTOMERS: [(&str, &str, &str); 3] = [
    ("acme", "acme", "Restricted"),
    ("globex", "globex", "RestrictedAndFrozen"),
    ("initech", "initech", "Unrestricted"),
];

fn from<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("a valid fixture")
}

fn stores() -> Stores {
    let partners = vec![
        from::<Partner>(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner",
            "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}})),
        from::<Partner>(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner",
            "metadata": {"name": "res"}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": "res"}})),
    ];
    let customers = CUSTOMERS
        .iter()
        .map(|(ns, name, _)| {
            from::<CustomerAccount>(
                json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
                "metadata": {"name": name, "generation": 1},
                "spec": {"associationModel": "Reseller", "reseller": "res", "namespaces": [ns]}}),
            )
        })
        .collect();
    let decisions = CUSTOMERS
        .iter()
        .map(|(_, name, state)| {
            from::<PurchaseRestriction>(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
                "metadata": {"name": name, "namespace": "dist", "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"customer": name, "state": state, "reason": "case 1", "agreementAccepted": true}}))
        })
        .collect();
    Stores::from_objects(partners, customers, vec![], decisions)
}

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        "statefulsets" => "StatefulSet",
        "daemonsets" => "DaemonSet",
        "jobs" => "Job",
        "cronjobs" => "CronJob",
        "pods" => "Pod",
        "virtualmachines" => "VirtualMachine",
        other => panic!("no kind for {other}"),
    }
}

/// Sets `value` at `pointer`, creating objects on the way.
fn set(target: &mut Value, pointer: &str, value: Value) {
    let keys: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut at = target;
    for (i, key) in keys.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().expect("an object");
        if i == keys.len() - 1 {
            map.insert(key.clone(), value);
            return;
        }
        at = map.entry(key.clone()).or_insert(json!({}));
    }
}

fn remove(target: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    if let Some(map) = target.pointer_mut(parent).and_then(Value::as_object_mut) {
        map.remove(&key.replace("~1", "/").replace("~0", "~"));
    }
}

const MODES: [Option<&str>; 5] = [
    None,
    Some("yearly-monthly"),
    Some("pay-per-use"),
    Some("spot"),
    Some("bogus"),
];

/// A random object of a guarded kind in `namespace`, with a value for each of its fields' roles.
fn object(rng: &mut Rng, g: &purchase_guard::webhook::Guarded, namespace: &str, name: &str) -> Value {
    let api_version = if g.group.is_empty() {
        g.version.clone()
    } else {
        format!("{}/{}", g.group, g.version)
    };
    let mut o = json!({"apiVersion": api_version, "kind": kind_of(&g.resource),
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"image": "nginx:1.27"}, "status": {"phase": "Running"}});
    if let Some(mode) = rng.pick(&MODES) {
        set(&mut o, "/metadata/labels/purchaseguard.io~1billing-mode", json!(mode));
    }
    for p in &g.classify.capacity_paths {
        if rng.chance(85) {
            set(&mut o, p, json!(rng.below(4)));
        }
    }
    for p in &g.classify.use_paths {
        if rng.chance(50) {
            let v = if p.ends_with("restartedAt") {
                json!("2026-01-01T00:00:00Z")
            } else {
                json!(rng.chance(50))
            };
            set(&mut o, p, v);
        }
    }
    if rng.chance(50) {
        set(&mut o, "/spec/displayName", json!(format!("{name} display")));
    }
    if rng.chance(40) {
        set(
            &mut o,
            "/spec/subscription",
            json!({"renewedUntil": "2027-06-30", "autoRenew": false}),
        );
    }
    if g.resource == "virtualmachines" {
        set(&mut o, "/spec/running", json!(true));
    }
    o
}

/// A JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match patch.as_object() {
        Some(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().expect("an object");
            for (k, v) in fields {
                if v.is_null() {
                    map.remove(k);
                } else {
                    merge(map.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        None => *target = patch.clone(),
    }
}

/// Freezes `o` as purchase-guard does: the record, the label and the action's values.
fn freeze(g: &purchase_guard::webhook::Guarded, o: &mut Value) {
    let Some(action) = &g.freeze else { return };
    let record = policy::FrozenRecord::new(action, "globex", "2026-01-01T00:00:00Z", "frozen by distributor", o);
    let patch = record.freeze_patch("1");
    merge(o, &patch);
    remove(o, "/metadata/resourceVersion");
    if let policy::FreezeAction::Scale { replicas_path } = action {
        set(o, replicas_path, json!(0));
    }
}

/// One random change of an existing object.
fn mutate(rng: &mut Rng, g: &purchase_guard::webhook::Guarded, o: &mut Value) {
    let rules = &g.classify;
    match rng.below(13) {
        0 | 1 if !rules.capacity_paths.is_empty() => {
            let p = rng.pick(&rules.capacity_paths).clone();
            let now = o.pointer(&p).and_then(Value::as_i64).unwrap_or(0);
            let v = match rng.below(4) {
                0 => json!(now + 1 + rng.below(3) as i64),
                1 => json!((now - 1).max(0)),
                2 => json!(2.5),
                _ => json!(now),
            };
            set(o, &p, v);
        }
        2 => set(o, "/spec/displayName", json!(format!("renamed {}", rng.below(100)))),
        3 => set(o, "/spec/subscription/renewedUntil", json!("2028-06-30")),
        4 if !rules.use_paths.is_empty() => {
            let p = rng.pick(&rules.use_paths).clone();
            let v = if p.ends_with("restartedAt") {
                json!("2026-02-02T00:00:00Z")
            } else {
                json!(rng.chance(50))
            };
            set(o, &p, v);
        }
        5 => set(o, "/spec/image", json!(format!("nginx:1.{}", rng.below(30)))),
        6 => set(o, "/metadata/labels/team", json!(format!("t{}", rng.below(5)))),
        7 => set(o, "/status/phase", json!("Pending")),
        8 => match rng.pick(&MODES) {
            Some(mode) => set(o, "/metadata/labels/purchaseguard.io~1billing-mode", json!(mode)),
            None => remove(o, "/metadata/labels/purchaseguard.io~1billing-mode"),
        },
        9 => {
            // Tampering with a freeze record, or moving a frozen field.
            match rng.below(4) {
                0 => remove(o, "/metadata/annotations/purchaseguard.io~1frozen"),
                1 => remove(o, "/metadata/labels/purchaseguard.io~1frozen"),
                2 => set(o, "/metadata/annotations/purchaseguard.io~1frozen", json!("{}")),
                _ => match &g.freeze {
                    Some(policy::FreezeAction::Scale { replicas_path }) => set(o, replicas_path, json!(3)),
                    Some(action) => {
                        if let Some(patch) = action.merge_patch() {
                            let mut leaves = Vec::new();
                            fn walk(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
                                match v.as_object() {
                                    Some(m) => m.iter().for_each(|(k, v)| walk(v, format!("{at}/{k}"), out)),
                                    None => out.push((at, v.clone())),
                                }
                            }
                            walk(&patch, String::new(), &mut leaves);
                            for (p, v) in leaves {
                                set(o, &p, json!(!v.as_bool().unwrap_or(false)));
                            }
                        }
                    }
                    None => {}
                },
            }
        }
        10 => set(o, "/spec/extra", json!({"nested": rng.below(3)})),
        11 => set(o, "/topLevel", json!(rng.below(3))),
        _ => set(o, "/spec/displayName", json!("same")),
    }
}

struct Case {
    request: Value,
}

fn case(rng: &mut Rng, settings: &Settings, i: usize) -> Case {
    let g = rng.pick(&settings.guarded).clone();
    let namespace = if rng.chance(10) {
        *rng.pick(&OUTSIDE)
    } else {
        rng.pick(&CUSTOMERS).0
    };
    let name = format!("obj-{i}");
    let user = match rng.below(20) {
        0 => CONTROLLER,
        1 | 2 => WORKLOAD_CONTROLLER,
        _ => "tenant",
    };
    let scalable = g.subresources.iter().any(|s| s == "scale");
    let mut request = json!({
        "uid": format!("u-{i}"),
        "kind": {"group": g.group, "version": g.version, "kind": kind_of(&g.resource)},
        "resource": {"group": g.group, "version": g.version, "resource": g.resource},
        "requestKind": {"group": g.group, "version": g.version, "kind": kind_of(&g.resource)},
        "requestResource": {"group": g.group, "version": g.version, "resource": g.resource},
        "name": name, "namespace": namespace,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "dryRun": false,
    });
    let mut old = object(rng, &g, namespace, &name);
    if g.freeze.is_some() && rng.chance(25) {
        freeze(&g, &mut old);
    }
    if rng.chance(15) {
        set(
            &mut old,
            "/metadata/ownerReferences",
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "owner", "uid": "u", "controller": true}]),
        );
    }
    match rng.below(10) {
        0..=1 => {
            request["operation"] = json!("CREATE");
            request["object"] = old;
            request["options"] = json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"});
        }
        2 => {
            request["operation"] = json!("DELETE");
            request["oldObject"] = old;
            request["options"] = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"});
        }
        3..=4 if scalable => {
            let replicas = |rng: &mut Rng| {
                if rng.chance(10) {
                    json!(2.5)
                } else {
                    json!(rng.below(5))
                }
            };
            let scale = |r: Value| {
                json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": r}})
            };
            request["operation"] = json!("UPDATE");
            request["subResource"] = json!("scale");
            request["requestSubResource"] = json!("scale");
            request["kind"] = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
            request["requestKind"] = request["kind"].clone();
            let before = replicas(rng);
            let after = replicas(rng);
            request["oldObject"] = scale(before);
            request["object"] = scale(after);
            request["options"] = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"});
        }
        _ => {
            let mut new = old.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(rng, &g, &mut new);
            }
            request["operation"] = json!("UPDATE");
            request["oldObject"] = old;
            request["object"] = new;
            request["options"] = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"});
        }
    }
    Case { request }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_policies_and_the_purchase_webhook_agree() {
    agree(Settings {
        controller_identities: vec![CONTROLLER.to_string()],
        ..Settings::default()
    })
    .await;
}

/// Strict mode: creating guarded kinds in a namespace of no customer is refused, but in the
/// exempt ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_policies_and_the_purchase_webhook_agree_in_strict_mode() {
    agree(Settings {
        controller_identities: vec![CONTROLLER.to_string()],
        strict: Some(vec![OUTSIDE[0].to_string()]),
        ..Settings::default()
    })
    .await;
}

async fn agree(settings: Settings) {
    // The webhook, judging from caches that hold the three customers and their decisions.
    let webhooks = Webhooks::new(settings.clone());
    let stores = stores();
    let now = policy::Timestamp(jiff::Timestamp::now().as_microsecond());
    let mut states = Vec::new();
    for (namespace, name, _) in CUSTOMERS {
        let customer = stores.customer(name).expect("the customer");
        let (eval, _) = stores.evaluate(&customer, now);
        states.push((namespace, purchase_guard::api::purchases_value(eval.effective.state)));
    }
    assert_eq!(
        states.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        ["restricted", "frozen", "allowed"],
        "the fixture's customers are in the three states"
    );
    webhooks.set_stores(stores);
    let metrics = Metrics::default();

    // The policies, in a sandbox whose namespaces carry the labels purchase-guard writes.
    let sandbox = purchase_guard_sandbox::Sandbox::start(purchase_guard_sandbox::Config::default())
        .await
        .expect("sandbox");
    let root = env!("CARGO_MANIFEST_DIR");
    let crd: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(format!(
            "{root}/examples/billable-crd/virtualmachines.compute.example.com.yaml"
        ))
        .expect("the VM CRD"),
    )
    .expect("YAML");
    sandbox.server.apply_object(crd, "test").expect("the VM CRD");
    for (namespace, state) in &states {
        sandbox
            .server
            .apply_object(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
                    "labels": {"purchaseguard.io/guarded": "true", "purchaseguard.io/purchases": state}}}),
                "test",
            )
            .expect("namespace");
    }
    for namespace in OUTSIDE {
        sandbox
            .server
            .apply_object(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
                "test",
            )
            .expect("namespace");
    }
    let generated = policies::purchases("purchase-guard", &settings);
    let strict = usize::from(settings.strict.is_some());
    assert_eq!(generated.len(), 2 * (settings.guarded.len() + 1 + strict));
    for p in generated {
        sandbox
            .server
            .apply_object(p, "test")
            .expect("a generated policy is valid");
    }

    let mut rng = Rng(0x005E_ED0F_D1FF);
    let cases = 4_000;
    let mut disagreements = Vec::new();
    let (mut denied, mut allowed) = (0, 0);
    for i in 0..cases {
        let Case { request } = case(&mut rng, &settings, i);
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
        let reply = review_body(&webhooks, &metrics, Which::Purchases, review.to_string().as_bytes()).await;
        let answer: Value = serde_json::from_slice(&reply.body).expect("an AdmissionReview");
        let webhook_allows = answer.pointer("/response/allowed") == Some(&json!(true));
        let webhook_says = answer
            .pointer("/response/status/message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let verdict = sandbox.server.judge_with_policies(&review["request"]);
        let policy_allows = verdict.is_ok();
        if webhook_allows {
            allowed += 1;
        } else {
            denied += 1;
        }
        if webhook_allows != policy_allows {
            disagreements.push(format!(
                "case {i}: webhook {} ({webhook_says}), policies {} ({})\n{}",
                if webhook_allows { "allows" } else { "denies" },
                if policy_allows { "allow" } else { "deny" },
                verdict.err().map(|e| e.message).unwrap_or_default(),
                serde_json::to_string_pretty(&review["request"]).unwrap_or_default()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {cases} requests judged differently; the first ones:\n{}",
        disagreements.len(),
        disagreements.iter().take(5).cloned().collect::<Vec<_>>().join("\n\n")
    );
    // Both outcomes were exercised in earnest.
    assert!(
        denied > cases / 10 && allowed > cases / 10,
        "allowed {allowed}, denied {denied}"
    );
    sandbox.shutdown().await;
}
