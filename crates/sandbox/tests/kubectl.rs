//! The real kubectl against the sandbox: the default kubectl, 1.27 and 1.33.

use purchase_guard_sandbox::{Config, Sandbox};
use std::path::Path;

mod support;

use support::{Kubectl, kubectl, repo};

fn expected_message(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("readable");
    text.lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .expect("an expect line")
        .to_string()
}

async fn suite(version: Option<&str>) {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!(
        "pg-sandbox-{}-{}",
        std::process::id(),
        version.unwrap_or("default")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig written");
    let k = Kubectl {
        bin: kubectl(version),
        kubeconfig,
    };

    // CRDs: apply and wait until established.
    k.ok(&["apply", "-f", "crds/", "-f", "examples/billable-crd/"]);
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=20s",
        "-f",
        "crds/",
        "-f",
        "examples/billable-crd/",
    ]);
    let namespaces = k.ok(&["get", "namespaces"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(namespaces.contains(ns), "{namespaces}");
    }

    // The whole example scenario applies with kubectl's default validation.
    let applied = k.ok(&["apply", "-f", "examples/"]);
    assert!(
        applied.contains("purchaserestriction.purchaseguard.io/acme created"),
        "{applied}"
    );

    // get: printer columns, -o wide, -o yaml, the category, short names.
    let customers = k.ok(&["get", "customeraccounts"]);
    assert!(
        customers
            .lines()
            .next()
            .is_some_and(|h| h.contains("RESELLER") && h.contains("RESTRICTED") && h.contains("AGE")),
        "{customers}"
    );
    assert!(customers.contains("reseller-alpha"), "{customers}");
    let wide = k.ok(&["get", "cust", "-o", "wide"]);
    assert!(wide.lines().next().is_some_and(|h| h.contains("MODEL")), "{wide}");
    let all = k.ok(&["get", "purchaseguard", "-A"]);
    for kind in [
        "partner.purchaseguard.io/dist-emea",
        "customeraccount.purchaseguard.io/acme",
        "resellerdelegation.purchaseguard.io/delegate-reseller-alpha",
        "purchaserestriction.purchaseguard.io/globex",
    ] {
        assert!(all.contains(kind), "{kind} in {all}");
    }
    let yaml = k.ok(&["get", "pres", "globex", "-n", "dist-emea", "-o", "yaml"]);
    assert!(yaml.contains("agreementAccepted: false"), "defaults applied: {yaml}");
    assert!(
        yaml.contains("resourceVersion:") && yaml.contains("uid:") && yaml.contains("creationTimestamp:"),
        "{yaml}"
    );
    let vms = k.ok(&["get", "vm", "-A"]);
    assert!(vms.contains("yearly-monthly") && vms.contains("spot"), "{vms}");

    // label, annotate, patch (merge, json with test, status subresource), replace, delete.
    k.ok(&["label", "customeraccount", "acme", "tier=gold"]);
    assert!(k.ok(&["get", "cust", "-l", "tier=gold", "-o", "name"]).trim() == "customeraccount.purchaseguard.io/acme");
    k.ok(&["annotate", "customeraccount", "acme", "note=vip"]);
    k.ok(&[
        "patch",
        "cust",
        "acme",
        "--type=merge",
        "-p",
        r#"{"spec":{"displayName":"ACME Corp"}}"#,
    ]);
    k.ok(&["patch", "cust", "acme", "--type=json", "-p", r#"[{"op":"test","path":"/spec/displayName","value":"ACME Corp"},{"op":"replace","path":"/spec/displayName","value":"ACME"}]"#]);
    k.fails(&[
        "patch",
        "cust",
        "acme",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/displayName","value":"nope"}]"#,
    ]);
    let status = r#"{"status":{"observedGeneration":3,"conditions":[{"type":"PurchaseRestricted","status":"True","reason":"RestrictedByReseller","message":"restricted by reseller-alpha","lastTransitionTime":"2026-11-26T12:00:00Z"}]}}"#;
    k.ok(&[
        "patch",
        "cust",
        "acme",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    k.ok(&[
        "wait",
        "--for=condition=PurchaseRestricted=true",
        "customeraccount/acme",
        "--timeout=10s",
    ]);
    let generation = k.ok(&["get", "cust", "acme", "-o", "jsonpath={.metadata.generation}"]);
    assert_eq!(generation.trim(), "3", "two spec changes since creation");
    // A status write through the main resource is ignored.
    k.ok(&[
        "patch",
        "cust",
        "acme",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":99}}"#,
    ]);
    assert_eq!(
        k.ok(&["get", "cust", "acme", "-o", "jsonpath={.status.observedGeneration}"])
            .trim(),
        "3"
    );
    let yaml = k.ok(&["get", "cust", "acme", "-o", "yaml"]);
    let edited = dir.join("acme.yaml");
    std::fs::write(&edited, yaml.replace("displayName: ACME", "displayName: ACME Inc")).expect("write");
    k.ok(&["replace", "-f", edited.to_str().expect("utf-8 path")]);
    // The same replace again carries a stale resourceVersion: 409 Conflict.
    let conflict = k.fails(&["replace", "-f", edited.to_str().expect("utf-8 path")]);
    assert!(conflict.contains("the object has been modified"), "{conflict}");
    k.ok(&["delete", "customeraccount", "umbrella"]);
    k.fails(&["get", "customeraccount", "umbrella"]);

    // Server-side apply: the field kubectl replace set differently is a conflict until forced.
    let conflict = k.fails(&["apply", "--server-side", "-f", "examples/03-customers.yaml"]);
    assert!(
        conflict.contains(r#"Apply failed with 1 conflict: conflict with "kubectl-replace" using purchaseguard.io/v1alpha1: .spec.displayName"#),
        "{conflict}"
    );
    let ssa = k.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "examples/03-customers.yaml",
    ]);
    assert!(
        ssa.contains("customeraccount.purchaseguard.io/acme serverside-applied"),
        "{ssa}"
    );
    assert_eq!(
        k.ok(&["get", "cust", "acme", "-o", "jsonpath={.spec.displayName}"])
            .trim(),
        "ACME Corporation"
    );

    // Built-ins: create (protobuf bodies), finalizers, namespace deletion.
    k.ok(&["create", "namespace", "scratch"]);
    k.ok(&["create", "configmap", "held", "-n", "scratch", "--from-literal=a=1"]);
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "scratch",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    k.ok(&["delete", "configmap", "held", "-n", "scratch", "--wait=false"]);
    assert!(
        !k.ok(&[
            "get",
            "configmap",
            "held",
            "-n",
            "scratch",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .trim()
        .is_empty()
    );
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "scratch",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    k.fails(&["get", "configmap", "held", "-n", "scratch"]);
    k.ok(&["delete", "namespace", "scratch"]);
    k.fails(&["get", "namespace", "scratch"]);

    // explain of the CRDs.
    let explain = k.ok(&["explain", "purchaserestriction.spec.reason"]);
    assert!(explain.contains("Why, written by the operator (R4)"), "{explain}");

    // Schema and CEL rejections, printed as on a real cluster.
    for file in [
        "blank-reason",
        "unknown-state",
        "freeze-without-agreement",
        "bad-customer-reference",
        "customer-without-reseller",
    ] {
        let path = repo().join(format!("examples/invalid/{file}.yaml"));
        let err = k.fails(&["apply", "-f", path.to_str().expect("utf-8 path")]);
        assert!(err.contains(&expected_message(&path)), "{file}: {err}");
    }
    // The update pairs: the first document exists, the second is refused.
    let pair = repo().join("examples/invalid/state-change-without-new-reason.yaml");
    let text = std::fs::read_to_string(&pair).expect("readable");
    let mut docs = text.split("\n---\n");
    let (first, second) = (dir.join("first.yaml"), dir.join("second.yaml"));
    std::fs::write(&first, docs.next().expect("old")).expect("write");
    std::fs::write(&second, docs.next().expect("new")).expect("write");
    k.ok(&["apply", "-f", first.to_str().expect("utf-8")]);
    let err = k.fails(&["apply", "-f", second.to_str().expect("utf-8")]);
    assert!(err.contains(&expected_message(&pair)), "{err}");

    // core/v1 and events.k8s.io/v1 Events are one resource: an Event written through either
    // is listed, watched and described through both.
    k.ok(&["create", "configmap", "described"]);
    let uid = k.ok(&["get", "configmap", "described", "-o", "jsonpath={.metadata.uid}"]);
    let new_api = dir.join("event-new.yaml");
    std::fs::write(
        &new_api,
        format!(
            "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: described.new\n  namespace: default\neventTime: \"2026-11-27T00:00:00.000000Z\"\nreportingController: example.com/checker\nreportingInstance: checker-1\naction: Check\nreason: CheckedNew\ntype: Normal\nnote: seen through events.k8s.io\nregarding:\n  apiVersion: v1\n  kind: ConfigMap\n  name: described\n  namespace: default\n  uid: {uid}\n"
        ),
    )
    .expect("write");
    let core_api = dir.join("event-core.yaml");
    std::fs::write(
        &core_api,
        format!(
            "apiVersion: v1\nkind: Event\nmetadata:\n  name: described.core\n  namespace: default\nreason: CheckedCore\ntype: Normal\nmessage: seen through core/v1\nfirstTimestamp: \"2026-11-27T00:00:00Z\"\nlastTimestamp: \"2026-11-27T00:00:00Z\"\ncount: 1\nsource:\n  component: example.com/old-checker\ninvolvedObject:\n  apiVersion: v1\n  kind: ConfigMap\n  name: described\n  namespace: default\n  uid: {uid}\n"
        ),
    )
    .expect("write");
    k.ok(&["create", "-f", new_api.to_str().expect("utf-8")]);
    k.ok(&["create", "-f", core_api.to_str().expect("utf-8")]);
    let core_list = k.ok(&["get", "events", "-n", "default", "-o", "jsonpath={.items[*].message}"]);
    assert!(
        core_list.contains("seen through events.k8s.io") && core_list.contains("seen through core/v1"),
        "{core_list}"
    );
    let new_list = k.ok(&[
        "get",
        "events.events.k8s.io",
        "-n",
        "default",
        "-o",
        "jsonpath={.items[*].note}",
    ]);
    assert!(
        new_list.contains("seen through events.k8s.io") && new_list.contains("seen through core/v1"),
        "{new_list}"
    );
    let described = k.ok(&["describe", "configmap", "described"]);
    assert!(
        described.contains("CheckedNew") && described.contains("CheckedCore"),
        "{described}"
    );
    let by_reason = k.ok(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        "reason=CheckedNew",
        "-o",
        "name",
    ]);
    assert_eq!(by_reason.trim(), "event/described.new");

    // Objects carry only what kube-apiserver writes: a ConfigMap has no generation, and no
    // empty generateName (kubectl 1.33 sends one in its protobuf body).
    let stored = k.ok(&["get", "configmap", "described", "-o", "json"]);
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    for absent in ["generation", "generateName"] {
        assert!(stored["metadata"].get(absent).is_none(), "{absent}: {stored}");
    }

    // Deployments print kube-apiserver's columns (no Pods run here: none ready).
    let workload = dir.join("deployment.yaml");
    std::fs::write(
        &workload,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: printed\n  namespace: default\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: printed}\n  template:\n    metadata:\n      labels: {app: printed}\n    spec:\n      containers:\n      - {name: app, image: nginx}\n",
    )
    .expect("write");
    k.ok(&["apply", "-f", workload.to_str().expect("utf-8")]);
    let table = k.ok(&["get", "deployment", "printed"]);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], "{table}");
    assert_eq!(lines[1][..4], ["printed", "0/2", "0", "0"], "{table}");

    // An unsupported field selector, in kube-apiserver's words.
    let err = k.fails(&["get", "configmaps", "--field-selector", "data.a=1"]);
    assert!(err.contains("field label not supported: data.a"), "{err}");

    // kube-apiserver keeps kubernetes.io/metadata.name equal to the namespace's name: removing
    // or changing it succeeds and changes nothing.
    k.ok(&["create", "namespace", "labelled"]);
    for change in [
        vec!["label", "namespace", "labelled", "kubernetes.io/metadata.name-"],
        vec![
            "label",
            "namespace",
            "labelled",
            "kubernetes.io/metadata.name=other",
            "--overwrite",
        ],
        vec![
            "patch",
            "namespace",
            "labelled",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":null}}"#,
        ],
    ] {
        k.ok(&change);
        let label = k.ok(&[
            "get",
            "namespace",
            "labelled",
            "-o",
            r"jsonpath={.metadata.labels.kubernetes\.io/metadata\.name}",
        ]);
        assert_eq!(label, "labelled", "after {change:?}");
    }

    // A namespace held by a finalizer of its spec stays Terminating, emptied, until the
    // finalizer is removed through the finalize subresource (`kubectl replace --raw`).
    let held = dir.join("held.yaml");
    std::fs::write(
        &held,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: held\nspec:\n  finalizers: [example.com/hold]\n",
    )
    .expect("write");
    k.ok(&["create", "-f", held.to_str().expect("utf-8")]);
    k.ok(&["create", "configmap", "content", "-n", "held"]);
    k.ok(&["delete", "namespace", "held", "--wait=false"]);
    k.ok(&[
        "wait",
        "--for=delete",
        "configmap/content",
        "-n",
        "held",
        "--timeout=10s",
    ]);
    let mut namespace = k.json(&["get", "namespace", "held"]);
    assert_eq!(namespace["status"]["phase"], "Terminating", "{namespace}");
    assert_eq!(
        namespace["spec"]["finalizers"],
        serde_json::json!(["example.com/hold"]),
        "{namespace}"
    );
    namespace["spec"]["finalizers"] = serde_json::json!([]);
    let finalized = dir.join("finalized.json");
    std::fs::write(&finalized, namespace.to_string()).expect("write");
    k.ok(&[
        "replace",
        "--raw",
        "/api/v1/namespaces/held/finalize",
        "-f",
        finalized.to_str().expect("utf-8"),
    ]);
    let err = k.fails(&["get", "namespace", "held"]);
    assert!(err.contains("not found"), "{err}");

    field_ownership_after_updates(&k, &dir);

    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_default() {
    suite(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27() {
    suite(Some("1.27")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33() {
    suite(Some("1.33")).await;
}

/// A Lease held through server-side apply, as leader election holds it, then edited by hand:
/// kube-apiserver gives an update only the fields whose value it changed, so a label added
/// with `kubectl patch` does not make the next holder's apply conflict; a field a human
/// changed does, naming the manager and the field.
fn field_ownership_after_updates(k: &Kubectl, dir: &Path) {
    let lease = |holder: &str, renew: &str| {
        let file = dir.join(format!("lease-{holder}-{}.yaml", renew.replace(':', "")));
        std::fs::write(
            &file,
            format!(
                "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: leader\n  namespace: default\n\
                 spec:\n  holderIdentity: {holder}\n  leaseDurationSeconds: 15\n  acquireTime: \"2026-01-01T00:00:00.000000Z\"\n  renewTime: \"{renew}\"\n"
            ),
        )
        .expect("lease file");
        file
    };
    let apply = |holder: &str, renew: &str| {
        let file = lease(holder, renew);
        k.run(&[
            "apply",
            "--server-side",
            "--field-manager=elector",
            "-f",
            file.to_str().expect("UTF-8 path"),
        ])
    };
    let patch = |doc: &str| k.ok(&["patch", "lease", "leader", "--type=merge", "-p", doc]);
    let (ok, _, err) = apply("a", "2026-01-01T00:00:01.000000Z");
    assert!(ok, "{err}");
    patch(r#"{"metadata":{"labels":{"touched":"yes"}}}"#);
    let owned = |manager: &str| {
        k.ok(&[
            "get",
            "lease",
            "leader",
            "-o",
            &format!("jsonpath={{.metadata.managedFields[?(@.manager==\"{manager}\")].fieldsV1}}"),
        ])
    };
    assert_eq!(
        owned("kubectl-patch"),
        r#"{"f:metadata":{"f:labels":{"f:touched":{}}}}"#
    );
    let (ok, _, err) = apply("b", "2026-01-01T00:00:02.000000Z");
    assert!(ok, "a new holder's apply after a label edit: {err}");
    assert_eq!(
        k.ok(&["get", "lease", "leader", "-o", "jsonpath={.spec.holderIdentity}"]),
        "b"
    );

    // A human changes the holder: that field, and only that one, is theirs now.
    patch(r#"{"spec":{"holderIdentity":"human"}}"#);
    let theirs = owned("kubectl-patch");
    assert!(
        theirs.contains("f:holderIdentity") && !theirs.contains("f:renewTime"),
        "{theirs}"
    );
    let (ok, _, err) = apply("c", "2026-01-01T00:00:03.000000Z");
    assert!(!ok, "the holder was changed by another manager");
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using coordination.k8s.io/v1: .spec.holderIdentity"
        ),
        "{err}"
    );
    // Removing the holder by hand leaves it to nobody: the next apply takes it.
    patch(r#"{"spec":{"holderIdentity":null}}"#);
    let (ok, _, err) = apply("c", "2026-01-01T00:00:04.000000Z");
    assert!(ok, "{err}");
    assert!(!owned("kubectl-patch").contains("f:holderIdentity"));
}

/// `kubectl patch` (a strategic merge patch) merges each list by the key its place in the kind
/// declares, as kube-apiserver does: a Service's ports by `port`, a pod template's host
/// aliases by `ip`, containers by `name`; `$patch: replace` among a list's items replaces it;
/// an item without its list's key is refused with kube-apiserver's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_patches_merge_lists_by_the_kinds_keys() {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!("pg-sandbox-smp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig written");
    let k = Kubectl {
        bin: kubectl(None),
        kubeconfig,
    };
    let get = |what: &[&str]| -> serde_json::Value {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&k.ok(&args)).expect("JSON")
    };

    k.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:8080",
        "--tcp=443:8443",
    ]);
    k.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"ports":[{"port":80,"targetPort":9090}]}}"#,
    ]);
    let ports: Vec<(i64, i64, String)> = get(&["service", "web"])["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["port"].as_i64().unwrap_or_default(),
                p["targetPort"].as_i64().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [(80, 9090, "80-8080".to_string()), (443, 8443, "443-8443".to_string())],
        "the Service's port 80 changed in place, 443 kept"
    );

    k.ok(&["create", "deployment", "web", "--image=nginx"]);
    let template = |patch: &str| format!(r#"{{"spec":{{"template":{{"spec":{patch}}}}}}}"#);
    for (ip, host) in [("10.0.0.1", "one"), ("10.0.0.2", "two")] {
        k.ok(&[
            "patch",
            "deployment",
            "web",
            "-p",
            &template(&format!(
                r#"{{"hostAliases":[{{"ip":"{ip}","hostnames":["{host}"]}}]}}"#
            )),
        ]);
    }
    let aliases = |d: &serde_json::Value| -> Vec<String> {
        d["spec"]["template"]["spec"]["hostAliases"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h["ip"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        aliases(&get(&["deployment", "web"])),
        ["10.0.0.1", "10.0.0.2"],
        "merged by ip"
    );
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        &template(r#"{"hostAliases":[{"$patch":"replace"},{"ip":"10.0.0.3","hostnames":["three"]}]}"#),
    ]);
    assert_eq!(aliases(&get(&["deployment", "web"])), ["10.0.0.3"], "replaced");

    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        &template(r#"{"containers":[{"name":"nginx","image":"nginx:1.27"}]}"#),
    ]);
    let deployment = get(&["deployment", "web"]);
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(
        (containers.len(), containers[0]["image"].as_str()),
        (1, Some("nginx:1.27"))
    );
    let refused = k.fails(&[
        "patch",
        "deployment",
        "web",
        "-p",
        &template(r#"{"containers":[{"image":"nginx:2"}]}"#),
    ]);
    assert!(
        refused.contains("map: map[image:nginx:2] does not contain declared merge key: name"),
        "{refused}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}
