//! Admission webhooks, called as kube-apiserver calls them: MutatingWebhookConfigurations
//! first, then schema validation (in the server), then ValidatingWebhookConfigurations.
//!
//! Webhooks are read from the store at every request, so configuration changes take effect
//! at once. Calls are HTTPS only, verified against the webhook's `caBundle`; a webhook given as
//! a Service reference is reached through the sandbox's service mapping, since nothing runs
//! inside the sandbox, while the certificate is still checked against the Service's DNS name
//! (`NAME.NAMESPACE.svc`).

use crate::rbac::UserInfo;
use crate::registry::ResourceType;
use crate::selectors::LabelSelector;
use crate::status::ApiError;
use crate::store::{Key, Store};
use base64::Engine;
use serde_json::{Value, json};
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const VALIDATING: &str = "admissionregistration.k8s.io/validatingwebhookconfigurations";
pub const MUTATING: &str = "admissionregistration.k8s.io/mutatingwebhookconfigurations";

thread_local! {
    /// Set while a request runs on a thread that may block on webhook calls.
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` marked as allowed to block on webhook calls (inside `spawn_blocking`).
pub fn blocking_section<T>(f: impl FnOnce() -> T) -> T {
    MAY_BLOCK.with(|b| b.set(true));
    let out = f();
    MAY_BLOCK.with(|b| b.set(false));
    out
}

/// The two kinds of admission webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Mutating,
    Validating,
}

/// What a write request asks, as an AdmissionReview describes it.
pub struct Request<'a> {
    pub rt: &'a ResourceType,
    pub subresource: Option<&'a str>,
    pub operation: &'static str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub old: Option<&'a Value>,
    pub dry_run: bool,
    pub options: Value,
    pub user: &'a UserInfo,
}

/// A DNS override: a Service's name and the address it is reached at.
type Resolve = Option<(String, SocketAddr)>;

/// Where a call goes: the URL kube-apiserver would call (for messages), the URL called, and
/// the DNS override.
struct Target {
    nominal: String,
    actual: String,
    resolve: Resolve,
}

/// Calls webhooks; holds the service mapping and HTTPS clients by trust and target.
#[derive(Default)]
pub struct Admission {
    /// `NAMESPACE/NAME` of a Service to the `HOST:PORT` it is reached at.
    pub service_endpoints: HashMap<String, String>,
    clients: Mutex<HashMap<(Vec<u8>, Resolve), reqwest::Client>>,
}

/// Whether any webhook configuration exists (writes then run where they may block).
pub fn configured(store: &Store) -> bool {
    let inner = store.lock();
    inner.list(VALIDATING, None).next().is_some() || inner.list(MUTATING, None).next().is_some()
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rule_matches(rule: &Value, req: &Request) -> bool {
    let has = |field: &str, wanted: &str| strings(rule.get(field)).iter().any(|x| *x == "*" || *x == wanted);
    let resource_ok = strings(rule.get("resources")).iter().any(|r| {
        let (res, sub) = r.split_once('/').map_or((*r, None), |(a, b)| (a, Some(b)));
        let res_ok = res == "*" || res == req.rt.plural;
        let sub_ok = match (sub, req.subresource) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some("*"), _) => true,
            (Some(s), Some(want)) => s == want,
            (Some(_), None) => false,
        };
        res_ok && sub_ok
    });
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !req.rt.namespaced,
        "Namespaced" => req.rt.namespaced,
        _ => true,
    };
    has("operations", req.operation)
        && has("apiGroups", &req.rt.group)
        && has("apiVersions", &req.rt.version)
        && resource_ok
        && scope_ok
}

fn labels_of(v: Option<&Value>) -> Option<&Value> {
    v.and_then(|o| o.pointer("/metadata/labels"))
}

/// Whether a webhook applies to the request. `object` is the new object (None for DELETE).
fn webhook_matches(store: &Store, hook: &Value, req: &Request, object: Option<&Value>) -> bool {
    // Webhook configurations themselves are never subject to webhooks.
    if req.rt.group == "admissionregistration.k8s.io" {
        return false;
    }
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !rules.iter().any(|r| rule_matches(r, req)) {
        return false;
    }
    // The namespace selector applies to namespaced objects (the namespace's labels) and to
    // Namespaces themselves (their own labels); other cluster-scoped objects always match.
    let is_namespace = req.rt.group.is_empty() && req.rt.plural == "namespaces";
    if let Some(selector) = hook.get("namespaceSelector").filter(|s| s.is_object())
        && (is_namespace || req.rt.namespaced)
    {
        let ns_labels = if is_namespace {
            labels_of(object.or(req.old)).cloned()
        } else {
            let ns = req.namespace.unwrap_or_default();
            store
                .lock()
                .get(&Key::new("/namespaces", "", ns))
                .and_then(|n| n.pointer("/metadata/labels").cloned())
        };
        if !LabelSelector::matches_object_selector(selector, ns_labels.as_ref()) {
            return false;
        }
    }
    if let Some(selector) = hook.get("objectSelector").filter(|s| s.is_object()) {
        let new_ok = object.is_some_and(|o| LabelSelector::matches_object_selector(selector, labels_of(Some(o))));
        let old_ok = req
            .old
            .is_some_and(|o| LabelSelector::matches_object_selector(selector, labels_of(Some(o))));
        if !new_ok && !old_ok {
            return false;
        }
    }
    true
}

/// A known StatusReason for a webhook's `status.reason`, or none.
fn status_reason(reason: &str) -> &'static str {
    const KNOWN: [&str; 17] = [
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "ServiceUnavailable",
    ];
    KNOWN.iter().find(|k| **k == reason).copied().unwrap_or("")
}

/// The error of a failed call under failurePolicy Fail, worded as kube-apiserver words it.
fn call_failed(name: &str, why: &str) -> ApiError {
    ApiError::internal(format!(
        "Internal error occurred: failed calling webhook {name:?}: {why}"
    ))
}

/// Why a call failed (failurePolicy decides what follows).
struct CallFailure(String);

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl Admission {
    /// Runs the webhooks of one phase. Mutating webhooks may change `object`; the warnings
    /// they return are appended to `warnings`.
    pub fn admit(
        &self,
        store: &Store,
        phase: Phase,
        req: &Request,
        object: &mut Option<Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let resource = match phase {
            Phase::Mutating => MUTATING,
            Phase::Validating => VALIDATING,
        };
        // Configurations in name order, webhooks in their order, as kube-apiserver sorts them.
        let configs: Vec<(String, Arc<Value>)> = store
            .lock()
            .list(resource, None)
            .map(|(k, v)| (k.name.clone(), v.clone()))
            .collect();
        for (config, value) in configs {
            let hooks = value
                .get("webhooks")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for hook in hooks {
                if !webhook_matches(store, hook, req, object.as_ref()) {
                    continue;
                }
                let name = hook.get("name").and_then(Value::as_str).unwrap_or(&config).to_string();
                if req.dry_run {
                    let side_effects = hook.get("sideEffects").and_then(Value::as_str).unwrap_or("Unknown");
                    if !matches!(side_effects, "None" | "NoneOnDryRun") {
                        return Err(ApiError::bad_request(format!(
                            "admission webhook {name:?} does not support dry run"
                        )));
                    }
                }
                let ignore = hook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
                match self.call(hook, &name, req, object.as_ref()) {
                    Ok(response) => self.apply_response(phase, &name, &response, object, warnings)?,
                    Err(CallFailure(why)) if ignore => {
                        tracing::warn!(webhook = %name, error = %why, "webhook failed; failurePolicy Ignore lets the request through");
                    }
                    Err(CallFailure(why)) => return Err(call_failed(&name, &why)),
                }
            }
        }
        Ok(())
    }

    fn apply_response(
        &self,
        phase: Phase,
        name: &str,
        response: &Value,
        object: &mut Option<Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        for w in strings(response.get("warnings")) {
            warnings.push(w.to_string());
        }
        if response.get("allowed").and_then(Value::as_bool) != Some(true) {
            let status = response.get("status").cloned().unwrap_or(json!({}));
            let message = status.get("message").and_then(Value::as_str).unwrap_or_default();
            let reason = status.get("reason").and_then(Value::as_str).unwrap_or_default();
            let code = status
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(400);
            let denied_by = format!("admission webhook {name:?} denied the request");
            let text = if !message.is_empty() {
                format!("{denied_by}: {message}")
            } else if !reason.is_empty() {
                format!("{denied_by}: {reason}")
            } else {
                format!("{denied_by} without explanation")
            };
            return Err(ApiError::new(code, status_reason(reason), text));
        }
        if phase == Phase::Mutating
            && let Some(patch) = response.get("patch").and_then(Value::as_str)
        {
            let internal = |why: String| call_failed(name, &why);
            if response.get("patchType").and_then(Value::as_str) != Some("JSONPatch") {
                return Err(internal(format!(
                    "unsupported patch type {:?}",
                    response.get("patchType").cloned().unwrap_or(Value::Null)
                )));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .map_err(|e| internal(format!("the patch is not base64: {e}")))?;
            let ops: json_patch::Patch =
                serde_json::from_slice(&bytes).map_err(|e| internal(format!("the patch is not a JSON patch: {e}")))?;
            if let Some(obj) = object.as_mut() {
                json_patch::patch(obj, &ops).map_err(|e| internal(format!("JSON patch: {e}")))?;
            }
        }
        Ok(())
    }

    /// Where a webhook is reached.
    fn target(&self, hook: &Value, timeout: u64) -> Result<Target, String> {
        let config = hook.get("clientConfig").cloned().unwrap_or(json!({}));
        let query = format!("?timeout={timeout}s");
        if let Some(url) = config.get("url").and_then(Value::as_str) {
            if !url.starts_with("https://") {
                return Err(format!("webhook URL {url:?} must use the https scheme"));
            }
            let full = format!("{url}{}", if url.contains('?') { String::new() } else { query });
            return Ok(Target {
                nominal: full.clone(),
                actual: full,
                resolve: None,
            });
        }
        let service = config
            .get("service")
            .ok_or("the webhook has neither clientConfig.url nor clientConfig.service")?;
        let ns = service.get("namespace").and_then(Value::as_str).unwrap_or_default();
        let svc = service.get("name").and_then(Value::as_str).unwrap_or_default();
        let port = service.get("port").and_then(Value::as_u64).unwrap_or(443);
        let path = service.get("path").and_then(Value::as_str).unwrap_or("/");
        let host = format!("{svc}.{ns}.svc");
        let nominal = format!("https://{host}:{port}{path}{query}");
        let endpoint = self.service_endpoints.get(&format!("{ns}/{svc}")).ok_or_else(|| {
            format!(
                "failed to call webhook: Post {nominal:?}: service {ns}/{svc} is not mapped to an address (start the sandbox with --service-endpoint {ns}/{svc}=HOST:PORT)"
            )
        })?;
        let addr = endpoint
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                format!("failed to call webhook: Post {nominal:?}: cannot resolve the service endpoint {endpoint:?}")
            })?;
        let actual = format!("https://{host}:{}{path}{query}", addr.port());
        Ok(Target {
            nominal,
            actual,
            resolve: Some((host, addr)),
        })
    }

    fn client(&self, ca: &[u8], resolve: Resolve) -> Result<reqwest::Client, String> {
        let key = (ca.to_vec(), resolve.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true)
            .no_proxy();
        if !ca.is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| format!("the caBundle is not a PEM certificate bundle: {e}"))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let Some((host, addr)) = &resolve {
            builder = builder.resolve(host, *addr);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
        if clients.len() > 64 {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Sends an AdmissionReview and returns its `response` after checking its envelope.
    fn call(&self, hook: &Value, name: &str, req: &Request, object: Option<&Value>) -> Result<Value, CallFailure> {
        let versions = strings(hook.get("admissionReviewVersions"));
        if !versions.contains(&"v1") {
            return Err(CallFailure(format!(
                "webhook {name:?} does not accept known AdmissionReview versions: it accepts {versions:?}, the sandbox sends v1"
            )));
        }
        let timeout = hook
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30);
        let Target {
            nominal,
            actual,
            resolve,
        } = self.target(hook, timeout).map_err(CallFailure)?;
        let ca = hook
            .pointer("/clientConfig/caBundle")
            .and_then(Value::as_str)
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
            .transpose()
            .map_err(|e| CallFailure(format!("clientConfig.caBundle is not base64: {e}")))?
            .unwrap_or_default();
        let client = self.client(&ca, resolve).map_err(CallFailure)?;
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review(req, &uid, object);
        let send = async move {
            let response = client
                .post(&actual)
                .timeout(Duration::from_secs(timeout))
                .json(&review)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = block_on(send).map_err(CallFailure)?.map_err(|e| {
            let why = if e.is_timeout() {
                "context deadline exceeded".to_string()
            } else {
                error_chain(&e)
            };
            CallFailure(format!("failed to call webhook: Post {nominal:?}: {why}"))
        })?;
        if !status.is_success() {
            return Err(CallFailure(format!(
                "failed to call webhook: the server responded with HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(512)])
            )));
        }
        let reply: Value = serde_json::from_slice(&body)
            .map_err(|e| CallFailure(format!("received invalid webhook response: {e}")))?;
        if reply.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
            || reply.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
        {
            return Err(CallFailure(format!(
                "received invalid webhook response: expected admission.k8s.io/v1 AdmissionReview, got apiVersion {} kind {}",
                reply.get("apiVersion").unwrap_or(&Value::Null),
                reply.get("kind").unwrap_or(&Value::Null)
            )));
        }
        let response = reply
            .get("response")
            .filter(|r| r.is_object())
            .ok_or_else(|| CallFailure("received invalid webhook response: response is missing".into()))?;
        let got = response.get("uid").and_then(Value::as_str).unwrap_or_default();
        if got != uid {
            return Err(CallFailure(format!(
                "received invalid webhook response: expected response.uid={uid:?}, got {got:?}"
            )));
        }
        Ok(response.clone())
    }
}

/// Waits for a webhook call from a request thread.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    let handle = tokio::runtime::Handle::try_current().map_err(|e| format!("no runtime for the webhook call: {e}"))?;
    if MAY_BLOCK.with(Cell::get) {
        return Ok(handle.block_on(f));
    }
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        return Ok(tokio::task::block_in_place(|| handle.block_on(f)));
    }
    Err("a webhook configuration appeared while the request ran; retry the request".into())
}

fn review(req: &Request, uid: &str, object: Option<&Value>) -> Value {
    let rt = req.rt;
    let kind = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let resource = json!({"group": rt.group, "version": rt.version, "resource": rt.plural});
    let mut user = json!({"username": req.user.name, "groups": req.user.groups});
    if !req.user.uid.is_empty() {
        user["uid"] = json!(req.user.uid);
    }
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": req.name,
        "operation": req.operation,
        "userInfo": user,
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": req.old.cloned().unwrap_or(Value::Null),
        "dryRun": req.dry_run,
        "options": req.options,
    });
    if let Some(sub) = req.subresource {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    if let Some(ns) = req.namespace.filter(|_| rt.namespaced) {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}
