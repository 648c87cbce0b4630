//! Admission webhooks, called as kube-apiserver calls them: MutatingWebhookConfigurations
//! first, then schema validation (in the server), then ValidatingAdmissionPolicies
//! ([`policy`]), then ValidatingWebhookConfigurations.
//!
//! Webhooks are read from the store at every request, so configuration changes take effect
//! at once. Calls are HTTPS only, verified against the webhook's `caBundle`; a webhook given as
//! a Service reference is reached through the sandbox's service mapping, since nothing runs
//! inside the sandbox, while the certificate is still checked against the Service's DNS name
//! (`NAME.NAMESPACE.svc`).

mod call;
mod matching;
pub mod policy;
mod tls;

use call::*;
use matching::*;

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
    /// The kind of the objects sent, when not the resource's own (`scale`: autoscaling/v1
    /// Scale), as (group, version, kind).
    pub object_kind: Option<(&'static str, &'static str, &'static str)>,
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
                if let Some(conditions) = hook
                    .get("matchConditions")
                    .filter(|c| c.as_array().is_some_and(|c| !c.is_empty()))
                {
                    let ctx = policy::request_context(object.as_ref(), req);
                    match policy::match_conditions(&ctx, Some(conditions)) {
                        policy::Matched::Yes => {}
                        policy::Matched::No => continue,
                        policy::Matched::Failed(errors) if ignore => {
                            tracing::warn!(webhook = %name, ?errors, "match conditions failed; failurePolicy Ignore skips the webhook");
                            continue;
                        }
                        // kube-apiserver: Forbidden, with the errors aggregated.
                        policy::Matched::Failed(errors) => {
                            let mut texts: Vec<String> = errors.into_iter().map(|(_, e)| e).collect();
                            let why = if texts.len() == 1 {
                                texts.remove(0)
                            } else {
                                format!("[{}]", texts.join(", "))
                            };
                            return Err(ApiError::forbidden(format!(
                                "{} {:?} is forbidden: {why}",
                                ApiError::qualified(&req.rt.group, &req.rt.plural),
                                req.name
                            )));
                        }
                    }
                }
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
}
