//! The sandbox calls admission webhooks as kube-apiserver does, shown with the real kubectl
//! and a small HTTPS webhook defined here: allow, deny, mutation, warnings, selectors,
//! failurePolicy, dry run, DELETE reviews, broken webhooks, configuration changes.

mod support;
use support::kubectl;

use axum::{Json, Router, extract::State, routing::post};
use base64::Engine;
use purchase_guard::webhook::tls;
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Reviews = Arc<Mutex<Vec<Value>>>;

fn labels(review: &Value) -> Value {
    review
        .pointer("/request/object/metadata/labels")
        .cloned()
        .unwrap_or(json!({}))
}

fn respond(review: &Value, response: Value) -> Json<Value> {
    let mut r = response;
    r["uid"] = review.pointer("/request/uid").cloned().unwrap_or(Value::Null);
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r}))
}

async fn validate(State(reviews): State<Reviews>, Json(review): Json<Value>) -> Json<Value> {
    reviews.lock().unwrap().push(review.clone());
    let l = labels(&review);
    if l.get("deny").is_some() {
        return respond(
            &review,
            json!({"allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "configmaps labelled deny are refused"}}),
        );
    }
    if l.get("warn").is_some() {
        return respond(
            &review,
            json!({"allowed": true, "warnings": ["the test webhook warns about this configmap"]}),
        );
    }
    respond(&review, json!({"allowed": true}))
}

async fn mutate(State(reviews): State<Reviews>, Json(review): Json<Value>) -> Json<Value> {
    reviews.lock().unwrap().push(review.clone());
    let has_labels = review.pointer("/request/object/metadata/labels").is_some();
    let ops = if has_labels {
        json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "true"}])
    } else {
        json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "true"}}])
    };
    let patch = base64::engine::general_purpose::STANDARD.encode(ops.to_string());
    respond(
        &review,
        json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}),
    )
}

async fn bad_json() -> &'static str {
    "{this is not json"
}

async fn wrong_uid(Json(_review): Json<Value>) -> Json<Value> {
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "not-the-request-uid", "allowed": true}}),
    )
}

async fn slow(Json(review): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(4)).await;
    respond(&review, json!({"allowed": true}))
}

struct Webhook {
    port: u16,
    ca: tls::Pair,
    reviews: Reviews,
}

async fn start_webhook() -> Webhook {
    let ca = tls::new_authority("test webhook CA", Duration::from_secs(3600)).expect("CA");
    let mut names = tls::service_dns_names("test-webhook", "webhooks");
    names.push("localhost".into());
    let serving = tls::issue(&ca, &names, Duration::from_secs(3600)).expect("serving certificate");
    let cert = tls::ServingCert::new(
        tls::certified_key(serving.cert.as_bytes(), serving.key.as_bytes(), "test").expect("key pair"),
    );
    let reviews: Reviews = Arc::default();
    let app = Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/bad-json", post(bad_json))
        .route("/wrong-uid", post(wrong_uid))
        .route("/slow", post(slow))
        .with_state(reviews.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(tls::serve(listener, cert.server_config(), app, std::future::pending()));
    Webhook { port, ca, reviews }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A webhook entry reaching the test webhook through the Service mapping.
fn service_hook(name: &str, path: &str, ca: &str, extra: &str) -> String {
    format!(
        r#"- name: {name}
  admissionReviewVersions: ["v1"]
  sideEffects: None
  clientConfig:
    caBundle: {ca}
    service: {{namespace: webhooks, name: test-webhook, path: {path}, port: 443}}
{extra}"#,
        ca = b64(ca)
    )
}

fn rules(ops: &str) -> String {
    format!(
        "  rules:\n  - operations: [{ops}]\n    apiGroups: [\"\"]\n    apiVersions: [\"v1\"]\n    resources: [\"configmaps\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_called_like_kube_apiserver() {
    let webhook = start_webhook().await;
    let sandbox = Sandbox::start(Config {
        service_endpoints: [(
            "webhooks/test-webhook".to_string(),
            format!("127.0.0.1:{}", webhook.port),
        )]
        .into(),
        ..Config::default()
    })
    .await
    .expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-admission-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&kubeconfig, args, stdin);
    let ok = |args: &[&str]| {
        let (ok, text) = run(args, None);
        assert!(ok, "{args:?}: {text}");
        text
    };
    let apply = |yaml: &str| {
        let (ok, text) = run(&["apply", "-f", "-"], Some(yaml));
        assert!(ok, "apply: {text}\n{yaml}");
    };
    let reviews = webhook.reviews.clone();
    let last_review = |op: &str, name: &str| -> Value {
        reviews
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|r| {
                r.pointer("/request/operation") == Some(&json!(op)) && r.pointer("/request/name") == Some(&json!(name))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {op} review of {name}"))
    };

    let namespaces = [
        ("guarded", "admission: \"on\""),
        ("free", "other: label"),
        ("unreach-fail", "case: unreach-fail"),
        ("unreach-ignore", "case: unreach-ignore"),
        ("bad-json", "case: bad-json"),
        ("wrong-uid", "case: wrong-uid"),
        ("wrong-ca", "case: wrong-ca"),
        ("slow", "case: slow"),
        ("side-effects", "case: side-effects"),
    ];
    for (ns, label) in namespaces {
        apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    {label}\n"
        ));
    }
    let ca = &webhook.ca.cert;
    let other_ca = tls::new_authority("another CA", Duration::from_secs(3600))
        .expect("CA")
        .cert;
    let url = |path: &str| format!("https://localhost:{}{path}", webhook.port);
    let url_hook = |name: &str, url: String, ca: &str, case: &str, extra: &str| {
        format!(
            "- name: {name}\n  admissionReviewVersions: [\"v1\"]\n  sideEffects: None\n  clientConfig:\n    caBundle: {}\n    url: {url}\n  namespaceSelector:\n    matchLabels: {{case: {case}}}\n{}{extra}",
            b64(ca),
            rules("\"CREATE\"")
        )
    };
    apply(&format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: test-validating\nwebhooks:\n{}{}  namespaceSelector:\n    matchLabels: {{admission: \"on\"}}\n  objectSelector:\n    matchExpressions: [{{key: skip-webhook, operator: DoesNotExist}}]\n  failurePolicy: Fail\n{}{}{}{}{}{}",
        service_hook("validate.test.example.com", "/validate", ca, ""),
        rules("\"CREATE\", \"UPDATE\", \"DELETE\""),
        url_hook(
            "unreachable-fail.test.example.com",
            "https://localhost:1/validate".into(),
            ca,
            "unreach-fail",
            "  failurePolicy: Fail\n"
        ),
        url_hook(
            "unreachable-ignore.test.example.com",
            "https://localhost:1/validate".into(),
            ca,
            "unreach-ignore",
            "  failurePolicy: Ignore\n"
        ),
        url_hook("bad-json.test.example.com", url("/bad-json"), ca, "bad-json", ""),
        url_hook("wrong-uid.test.example.com", url("/wrong-uid"), ca, "wrong-uid", ""),
        url_hook("wrong-ca.test.example.com", url("/validate"), &other_ca, "wrong-ca", ""),
        url_hook(
            "slow.test.example.com",
            url("/slow"),
            ca,
            "slow",
            "  timeoutSeconds: 1\n"
        ),
    ));
    apply(&format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: test-side-effects\nwebhooks:\n{}{}  namespaceSelector:\n    matchLabels: {{case: side-effects}}\n",
        service_hook("side-effects.test.example.com", "/validate", ca, "")
            .replace("sideEffects: None", "sideEffects: Some"),
        rules("\"CREATE\""),
    ));
    apply(&format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: test-mutating\nwebhooks:\n{}{}  namespaceSelector:\n    matchLabels: {{admission: \"on\"}}\n",
        service_hook("mutate.test.example.com", "/mutate", ca, ""),
        rules("\"CREATE\""),
    ));

    // Allowed, mutated, and the review carries who asked.
    ok(&[
        "--as",
        "alice",
        "--as-group",
        "team-a",
        "create",
        "configmap",
        "plain",
        "-n",
        "guarded",
        "--from-literal=a=1",
    ]);
    let got = ok(&[
        "get",
        "configmap",
        "plain",
        "-n",
        "guarded",
        "-o",
        "jsonpath={.metadata.labels.mutated}",
    ]);
    assert_eq!(got, "true", "the mutating webhook's JSON patch is applied");
    let created = last_review("CREATE", "plain");
    assert_eq!(created.pointer("/request/userInfo/username"), Some(&json!("alice")));
    let groups = created.pointer("/request/userInfo/groups").cloned().unwrap_or_default();
    assert!(
        groups.as_array().is_some_and(|g| g.contains(&json!("team-a"))),
        "{groups}"
    );
    assert_eq!(created.pointer("/request/namespace"), Some(&json!("guarded")));
    assert_eq!(created.pointer("/request/kind/kind"), Some(&json!("ConfigMap")));
    assert_eq!(
        created.pointer("/request/resource/resource"),
        Some(&json!("configmaps"))
    );
    assert_eq!(created.pointer("/request/dryRun"), Some(&json!(false)));
    assert_eq!(created.pointer("/request/options/kind"), Some(&json!("CreateOptions")));
    // Validating webhooks see the mutated object: mutating webhooks run first.
    assert_eq!(
        created.pointer("/request/object/metadata/labels/mutated"),
        Some(&json!("true")),
        "{created}"
    );

    let configmap = |ns: &str, name: &str, labels: &[&str]| {
        let labels: String = labels.iter().map(|l| format!("    {l}: \"yes\"\n")).collect();
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    any: \"yes\"\n{labels}data:\n  a: \"1\"\n"
        )
    };
    let create = |ns: &str, name: &str, labels: &[&str], extra: &[&str]| {
        let mut args = vec!["create", "-f", "-"];
        args.extend_from_slice(extra);
        run(&args, Some(&configmap(ns, name, labels)))
    };

    // Denied, with kube-apiserver's wording reaching kubectl.
    let (created_ok, text) = create("guarded", "refused", &["deny"], &[]);
    assert!(!created_ok, "{text}");
    assert!(
        text.contains(
            r#"admission webhook "validate.test.example.com" denied the request: configmaps labelled deny are refused"#
        ),
        "{text}"
    );
    assert!(
        text.contains("(Forbidden)"),
        "the webhook's status reason reaches kubectl: {text}"
    );

    // Warnings are printed by kubectl.
    let (created_ok, text) = create("guarded", "warned", &["warn"], &[]);
    assert!(created_ok, "{text}");
    assert!(
        text.contains("Warning: the test webhook warns about this configmap"),
        "{text}"
    );

    // The namespaceSelector and the objectSelector scope the webhook.
    let (created_ok, text) = create("free", "refused", &["deny"], &[]);
    assert!(created_ok, "outside the selected namespaces: {text}");
    let (created_ok, text) = create("guarded", "skipped", &["deny", "skip-webhook"], &[]);
    assert!(created_ok, "excluded by the objectSelector: {text}");

    // An UPDATE carries the old object.
    ok(&["label", "configmap", "plain", "-n", "guarded", "extra=1"]);
    let updated = last_review("UPDATE", "plain");
    assert_eq!(updated.pointer("/request/oldObject/metadata/labels/extra"), None);
    assert_eq!(
        updated.pointer("/request/object/metadata/labels/extra"),
        Some(&json!("1"))
    );

    // A DELETE review carries the old object and no object.
    ok(&["delete", "configmap", "plain", "-n", "guarded"]);
    let deleted = last_review("DELETE", "plain");
    assert_eq!(
        deleted.pointer("/request/oldObject/metadata/name"),
        Some(&json!("plain"))
    );
    assert_eq!(deleted.pointer("/request/object"), Some(&Value::Null));
    assert_eq!(deleted.pointer("/request/options/kind"), Some(&json!("DeleteOptions")));

    // Dry run: reaches a webhook with sideEffects None, is refused by one with side effects.
    let (created_ok, text) = create("guarded", "dry", &[], &["--dry-run=server"]);
    assert!(created_ok, "{text}");
    assert_eq!(
        last_review("CREATE", "dry").pointer("/request/dryRun"),
        Some(&json!(true))
    );
    let (created_ok, text) = create("side-effects", "dry", &[], &["--dry-run=server"]);
    assert!(!created_ok, "{text}");
    assert!(
        text.contains(r#"admission webhook "side-effects.test.example.com" does not support dry run"#),
        "{text}"
    );
    let (created_ok, text) = create("side-effects", "real", &[], &[]);
    assert!(created_ok, "without dry run the webhook is called: {text}");

    // failurePolicy against an unreachable webhook.
    let (created_ok, text) = create("unreach-fail", "x", &[], &[]);
    assert!(!created_ok, "{text}");
    assert!(
        text.contains(r#"Internal error occurred: failed calling webhook "unreachable-fail.test.example.com": failed to call webhook: Post "https://localhost:1/validate?timeout=10s""#),
        "{text}"
    );
    let (created_ok, text) = create("unreach-ignore", "x", &[], &[]);
    assert!(created_ok, "failurePolicy Ignore: {text}");

    // Broken webhooks: the message says which webhook and why.
    for (ns, why) in [
        ("bad-json", "received invalid webhook response"),
        ("wrong-uid", r#"expected response.uid="#),
        ("wrong-ca", "certificate"),
        ("slow", "context deadline exceeded"),
    ] {
        let (created_ok, text) = create(ns, "x", &[], &[]);
        assert!(!created_ok, "{ns}: {text}");
        assert!(
            text.contains(&format!(r#"failed calling webhook "{ns}.test.example.com""#)) && text.contains(why),
            "{ns}: {text}"
        );
    }

    // Configuration changes take effect at once.
    ok(&["delete", "validatingwebhookconfiguration", "test-validating"]);
    let (created_ok, text) = create("guarded", "refused", &["deny"], &[]);
    assert!(created_ok, "the validating webhook is gone: {text}");
    let got = ok(&[
        "get",
        "configmap",
        "refused",
        "-n",
        "guarded",
        "-o",
        "jsonpath={.metadata.labels.mutated}",
    ]);
    assert_eq!(got, "true", "the mutating webhook still runs");

    sandbox.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
}

/// A self-signed certificate that is both the caBundle and the serving certificate, marked as
/// a CA as `openssl req -x509 -addext subjectAltName=DNS:...` makes it, for `names`.
fn self_signed_ca(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("names");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

/// kube-apiserver (Go's crypto/x509) trusts a serving certificate that is itself the caBundle,
/// even marked as a CA, when its subjectAltName names the Service; the sandbox does the same,
/// and still refuses one that names another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_ca_certificate_serves_a_webhook_as_on_a_cluster() {
    let mut endpoints = std::collections::HashMap::new();
    let mut bundles = Vec::new();
    for (service, name) in [
        ("self-signed", "self-signed.webhooks.svc"),
        ("misnamed", "other.webhooks.svc"),
    ] {
        let (cert, key) = self_signed_ca(&[name]);
        let serving =
            tls::ServingCert::new(tls::certified_key(cert.as_bytes(), key.as_bytes(), service).expect("key pair"));
        let reviews: Reviews = Arc::default();
        let app = Router::new().route("/validate", post(validate)).with_state(reviews);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(tls::serve(
            listener,
            serving.server_config(),
            app,
            std::future::pending(),
        ));
        endpoints.insert(format!("webhooks/{service}"), format!("127.0.0.1:{port}"));
        bundles.push((service, cert));
    }
    let sandbox = Sandbox::start(Config {
        service_endpoints: endpoints,
        ..Config::default()
    })
    .await
    .expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-self-signed-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut hooks = String::new();
    for (service, cert) in &bundles {
        hooks.push_str(&format!(
            "- name: {service}.test.example.com\n  admissionReviewVersions: [\"v1\"]\n  sideEffects: None\n  failurePolicy: Fail\n  clientConfig:\n    caBundle: {}\n    service: {{namespace: webhooks, name: {service}, path: /validate, port: 443}}\n  objectSelector:\n    matchLabels: {{hook: {service}}}\n{}",
            b64(cert),
            rules("\"CREATE\"")
        ));
    }
    let (ok, out) = kubectl(
        &kubeconfig,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: self-signed\nwebhooks:\n{hooks}"
        )),
    );
    assert!(ok, "{out}");
    let create = |name: &str, hook: &str| {
        kubectl(
            &kubeconfig,
            &["create", "-f", "-"],
            Some(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n  labels:\n    hook: {hook}\n"
            )),
        )
    };
    let (ok, out) = create("trusted", "self-signed");
    assert!(ok, "the self-signed CA certificate is trusted as the caBundle: {out}");
    let (ok, out) = create("refused", "misnamed");
    assert!(!ok, "a certificate for another host is refused: {out}");
    assert!(out.contains("failed calling webhook"), "{out}");
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// A webhook's `matchConditions` decide whether it is called, as kube-apiserver's matcher
/// decides: all true calls it, one false skips it (even beside a condition that fails), a
/// failure refuses the request under failurePolicy Fail and skips the webhook under Ignore;
/// a configuration whose condition does not compile, or names two conditions alike, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_conditions_decide_whether_a_webhook_is_called() {
    let webhook = start_webhook().await;
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-conditions-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&kubeconfig, args, stdin);
    let apply = |yaml: &str| run(&["apply", "-f", "-"], Some(yaml));
    let ca = b64(&webhook.ca.cert);
    let url = format!("https://localhost:{}/validate", webhook.port);
    let missing = "object.metadata.labels['missing'] == 'x'";
    let hook = |case: &str, policy: &str, conditions: &[(&str, &str)]| {
        let conditions: String = conditions
            .iter()
            .map(|(name, expression)| format!("  - name: {name}\n    expression: {expression:?}\n"))
            .collect();
        format!(
            "- name: {case}.test.example.com\n  admissionReviewVersions: [\"v1\"]\n  sideEffects: None\n  failurePolicy: {policy}\n  clientConfig:\n    caBundle: {ca}\n    url: {url}\n  namespaceSelector:\n    matchLabels: {{case: {case}}}\n{}  matchConditions:\n{conditions}",
            rules("\"CREATE\"")
        )
    };
    let configuration = |hooks: &[String]| {
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: conditions\nwebhooks:\n{}",
            hooks.concat()
        )
    };
    // Refused at creation: an expression that does not compile, two conditions named alike.
    let (ok, text) = apply(&configuration(&[hook(
        "broken",
        "Fail",
        &[("one", "object.metadata.name =="), ("one", "true")],
    )]));
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            "webhooks[0].matchConditions[0].expression: Invalid value: \"object.metadata.name ==\": compilation failed"
        ),
        "{text}"
    );
    assert!(
        text.contains("webhooks[0].matchConditions[1].name: Duplicate value: \"one\""),
        "{text}"
    );

    let (ok, text) = apply(&configuration(&[
        hook("labelled", "Fail", &[("labelled", "'check' in object.metadata.labels")]),
        hook("fails", "Fail", &[("missing", missing)]),
        hook(
            "false-wins",
            "Fail",
            &[("missing", missing), ("named", "object.metadata.name == 'nope'")],
        ),
        hook("ignored", "Ignore", &[("missing", missing)]),
    ]));
    assert!(ok, "{text}");
    for case in ["labelled", "fails", "false-wins", "ignored"] {
        let (ok, text) = apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {case}\n  labels:\n    case: {case}\n"
        ));
        assert!(ok, "{text}");
    }
    let create = |namespace: &str, name: &str, labels: &str| {
        run(
            &["apply", "-f", "-"],
            Some(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{{labels}}}\n"
            )),
        )
    };
    let reviewed = |name: &str| {
        webhook
            .reviews
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.pointer("/request/name") == Some(&json!(name)))
    };

    let (ok, text) = create("labelled", "plain", "other: label");
    assert!(ok && !reviewed("plain"), "a false condition skips the webhook: {text}");
    let (ok, text) = create("labelled", "checked", "check: \"1\", deny: \"1\"");
    assert!(!ok && reviewed("checked"), "a true condition calls it: {text}");
    assert!(text.contains("configmaps labelled deny are refused"), "{text}");

    let (ok, text) = create("fails", "err", "a: b");
    assert!(!ok && !reviewed("err"), "{text}");
    assert!(
        text.contains(&format!(
            "configmaps \"err\" is forbidden: expression '{missing}' resulted in error:"
        )),
        "{text}"
    );
    let (ok, text) = create("false-wins", "skipped", "a: b");
    assert!(
        ok && !reviewed("skipped"),
        "a false condition wins over a failed one: {text}"
    );
    let (ok, text) = create("ignored", "let-through", "a: b");
    assert!(
        ok && !reviewed("let-through"),
        "failurePolicy Ignore skips the webhook: {text}"
    );

    sandbox.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
}
