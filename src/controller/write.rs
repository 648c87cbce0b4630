//! The controllers' writes: status patches (only when the status differs, only over the
//! version they were computed from, with the named field manager, a timeout and metrics per
//! outcome) and events.

use super::context::{Context, Error, MANAGER};
use super::metrics::{Kind, Metrics, WriteOutcome};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// How long a status write may take before it is retried with backoff.
pub const STATUS_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Patches an object's status when it differs from the computed one; returns whether it wrote.
#[tracing::instrument(level = "debug", skip_all, fields(kind = kind.name(), name = %obj.name_any()))]
pub async fn write_status<K, S>(
    metrics: &Metrics,
    kind: Kind,
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    desired: &S,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(false);
    }
    let mut status = serde_json::to_value(desired)?;
    // A merge patch keeps what it does not mention: clear, at every depth, what is no longer set.
    if let Some(old) = current.map(serde_json::to_value).transpose()? {
        clear_removed(&mut status, &old);
    }
    // The status is computed from `obj` (counts that add up, history, first-seen times): it
    // is written only over that version. A reconcile started from a cache that had not yet
    // seen a newer write gets a conflict instead of overwriting it with older counts.
    let patch = match obj.resource_version() {
        Some(version) => serde_json::json!({ "metadata": { "resourceVersion": version }, "status": status }),
        None => serde_json::json!({ "status": status }),
    };
    let params = patch_params();
    let name = obj.name_any();
    let patch = Patch::Merge(&patch);
    let write = api.patch_status(&name, &params, &patch);
    let (outcome, result) = match tokio::time::timeout(STATUS_WRITE_TIMEOUT, write).await {
        Ok(Ok(_)) => (WriteOutcome::Written, Ok(true)),
        Ok(Err(kube::Error::Api(e))) if e.code == 409 => (WriteOutcome::Conflict, Err(Error::Conflict)),
        Ok(Err(e)) => (WriteOutcome::Failed, Err(Error::Kube(e))),
        Err(_) => (WriteOutcome::TimedOut, Err(Error::Timeout(STATUS_WRITE_TIMEOUT))),
    };
    metrics.status_write(kind, outcome);
    tracing::debug!(outcome = ?outcome, "status write");
    result
}

/// The parameters of every patch the controllers send: purchase-guard's field manager.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Adds `null` for every key of `old` that `new` lacks, recursing into objects present in
/// both (lists are replaced whole by a merge patch).
pub fn clear_removed(new: &mut serde_json::Value, old: &serde_json::Value) {
    if let (Some(n), Some(o)) = (new.as_object_mut(), old.as_object()) {
        for (key, old_value) in o {
            match n.get_mut(key) {
                None => {
                    n.insert(key.clone(), serde_json::Value::Null);
                }
                Some(new_value) => clear_removed(new_value, old_value),
            }
        }
    }
}

/// Publishes an event about `obj`; a failure is logged, never retried.
pub async fn publish(
    ctx: &Context,
    obj: &impl Resource<DynamicType = ()>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    publish_related(ctx, obj, None, type_, reason, note).await
}

/// Publishes an event about `obj` related to another object. Events with the same reason and
/// the same related object (resourceVersion included) form one series whose note is not
/// updated: relate each distinct change to the object version that caused it.
pub async fn publish_related(
    ctx: &Context,
    obj: &impl Resource<DynamicType = ()>,
    related: Option<k8s_openapi::api::core::v1::ObjectReference>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    publish_to(ctx, &obj.object_ref(&()), related, "Reconcile", type_, reason, note).await
}

/// Publishes an event about the object `target` refers to (any kind), for `action`; a failure
/// is logged, never retried.
pub async fn publish_to(
    ctx: &Context,
    target: &k8s_openapi::api::core::v1::ObjectReference,
    related: Option<k8s_openapi::api::core::v1::ObjectReference>,
    action: &str,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: related,
    };
    if let Err(e) = ctx.recorder.publish(&event, target).await {
        tracing::warn!(error = %e, "cannot publish an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_removed_nulls_fields_at_every_depth() {
        let old = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let mut new = serde_json::json!({"b": {"c": 5}, "l": [1]});
        clear_removed(&mut new, &old);
        assert_eq!(new, serde_json::json!({"a": null, "b": {"c": 5, "d": null}, "l": [1]}));
    }
}
