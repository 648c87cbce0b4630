//! R8 freeze, retention and release, R9 unfreeze: what the CustomerAccount reconciler does to
//! a customer's resources. For every guarded kind with a freeze action, one watch of the kind
//! ([`kinds`]); each pass of a customer plans every object of those kinds in its namespaces
//! with the policy core ([`policy::plan`]) and carries the steps out here. The counts and
//! conditions it reports are computed in [`status`].
//!
//! Exactly once: a freeze writes the record of the values it changes (the annotation
//! `purchaseguard.io/frozen`) with the object's resourceVersion as a precondition, on an object
//! that has none, before (or together with) the action; a record is never rewritten. A pass
//! that finds a record re-applies the action only; a pass that read a stale object fails on the
//! precondition and is retried.

pub mod kinds;
pub mod status;

use super::context::Context;
use super::metrics::FreezeOperation;
use super::write::publish_to;
use crate::api::CustomerAccount;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use policy::{Desired, FrozenRecord, Step};
use purchase_guard_policy as policy;
use std::time::Duration;

pub use kinds::{KindSettings, Kinds};

/// How customers' resources are frozen.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The guarded kinds, watched: those with a freeze action are frozen, all are audited.
    pub kinds: Vec<KindSettings>,
    /// The guarded kinds without one (`pods`, `daemonsets.apps`): named in the status.
    pub unfreezable: Vec<String>,
    /// How long frozen resources are retained before release, unless the freezing partner
    /// says otherwise (`spec.freezeRetention`).
    pub retention: Duration,
    /// Whether frozen resources are deleted when retention ends; otherwise the customer gets
    /// `ReleaseDue` and nothing is deleted.
    pub release: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kinds: Vec::new(),
            unfreezable: Vec::new(),
            retention: DEFAULT_RETENTION,
            release: false,
        }
    }
}

/// The freeze settings and the watches of the freezable kinds.
pub struct Freezer {
    pub settings: Settings,
    kinds: Kinds,
}

impl Freezer {
    pub fn new(settings: Settings) -> Self {
        let kinds = Kinds::new(&settings.kinds);
        Freezer { settings, kinds }
    }

    /// Guarded kinds without a freeze action, as the messages name them.
    pub fn unfreezable(&self) -> &[String] {
        &self.settings.unfreezable
    }

    /// The freezable kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &kinds::Watched> {
        self.kinds.iter()
    }

    /// Runs the watches of the freezable kinds for ever, sending where objects change.
    pub async fn run(&self, client: kube::Client, changed: tokio::sync::mpsc::UnboundedSender<kinds::Changed>) {
        self.kinds.run(client, changed).await
    }

    /// The retention period of a freeze by `partner` (its `spec.freezeRetention`, else the
    /// default). A value the policy core cannot read falls back to the default, with a warning.
    pub fn retention(&self, partner: Option<&crate::api::Partner>) -> Duration {
        let Some(text) = partner.and_then(|p| p.spec.freeze_retention.as_deref()) else {
            return self.settings.retention;
        };
        match policy::parse_retention(text) {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(e) => {
                tracing::warn!(partner = %partner.map(|p| p.name_any()).unwrap_or_default(), error = %e, "spec.freezeRetention cannot be read; the default retention applies");
                self.settings.retention
            }
        }
    }
}

/// The default retention period: 15 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);

/// What one pass did to a customer's resources, and what it found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Resources frozen as their records say, after the pass.
    pub frozen: u32,
    /// Frozen resources awaiting release (retention ended, release disabled).
    pub release_due: u32,
    /// Resources deleted by this pass at the end of retention.
    pub released: u32,
    /// Resources restored by this pass.
    pub restored: u32,
    /// Resources not frozen or restored as they should be, with why.
    pub failed: Vec<String>,
    /// Why, by resource (`deployments.apps acme-dev/web`): what the audit reports.
    pub failed_on: std::collections::BTreeMap<String, String>,
    /// Kinds whose objects are not known yet (not served, or their watch not synced).
    pub pending_kinds: Vec<String>,
}

/// A resource, for events and messages: `deployments.apps acme-dev/web`.
pub(crate) fn describe(kind: &KindSettings, namespace: &str, name: &str) -> String {
    format!("{} {namespace}/{name}", kind.qualified())
}

/// Carries out `desired` on every object of the freezable kinds in `namespaces`.
pub async fn converge(
    ctx: &Context,
    customer: &CustomerAccount,
    namespaces: &[String],
    desired: &Desired,
    release: bool,
) -> Report {
    let mut report = Report::default();
    let customer_name = customer.name_any();
    // Objects controlled by an object frozen by scaling it (a Deployment's ReplicaSets) follow
    // their owner: freezing them too would fight the owner's controller.
    let scaled: Vec<(String, String)> = ctx
        .freezer
        .kinds()
        .filter(|w| matches!(w.settings.action, Some(policy::FreezeAction::Scale { .. })))
        .filter_map(|w| w.ready().map(|(r, _)| (r.api_version.clone(), r.kind.clone())))
        .collect();
    for watched in ctx.freezer.kinds() {
        let Some(action) = &watched.settings.action else {
            continue;
        };
        let Some((resource, store)) = watched.ready() else {
            // A kind the API server does not serve has no objects to freeze.
            if !watched.not_served() {
                report.pending_kinds.push(watched.settings.qualified());
            }
            continue;
        };
        let kind = &watched.settings;
        for object in store.state() {
            let Some(namespace) = object.namespace() else { continue };
            if !namespaces.contains(&namespace) || follows_owner(&object, &scaled) {
                continue;
            }
            let name = object.name_any();
            let value = match serde_json::to_value(object.as_ref()) {
                Ok(v) => v,
                Err(e) => {
                    let what = describe(kind, &namespace, &name);
                    report.failed.push(format!("{what}: {e}"));
                    report.failed_on.insert(what, e.to_string());
                    continue;
                }
            };
            let mode =
                policy::billing_mode_of(&value, kind.default_billing_mode).unwrap_or(policy::BillingMode::PayPerUse);
            let mut step = policy::plan(action, &customer_name, desired, release, mode, &value);
            if let Step::Freeze(record) = &mut step {
                // The freeze takes the fields it writes from their owners: keep the evidence
                // of the latest write of the specification for the audit.
                record.written = kinds::spec_written(&object).map(|(manager, time)| policy::SpecWrite {
                    manager: manager.to_string(),
                    time: time.0.to_string(),
                });
            }
            let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, resource);
            let rv = object.resource_version().unwrap_or_default();
            let what = describe(kind, &namespace, &name);
            let target = reference(resource, &object);
            let outcome = match &step {
                Step::Nothing(policy::Settled::Frozen) => {
                    report.frozen += 1;
                    continue;
                }
                Step::Nothing(policy::Settled::ReleaseDue) => {
                    report.frozen += 1;
                    report.release_due += 1;
                    continue;
                }
                Step::Nothing(policy::Settled::NotFrozen) => continue,
                Step::Unreadable(why) => {
                    report.failed.push(format!("{what}: {why}"));
                    report.failed_on.insert(what, why.clone());
                    continue;
                }
                Step::Freeze(record) => freeze(&api, &name, record, &rv)
                    .await
                    .map(|()| (FreezeOperation::Freeze, "Frozen", freeze_note(&customer_name, record))),
                Step::Reapply(record) => reapply(&api, &name, record).await.map(|()| {
                    (
                        FreezeOperation::DriftCorrection,
                        "FreezeReapplied",
                        format!(
                            "changed back while customer {customer_name:?} is frozen (R8): frozen again; the values restored at unfreeze are still those of {}",
                            record.since
                        ),
                    )
                }),
                Step::Restore(record) => restore(&api, &name, record, &value, &rv).await.map(|()| {
                    // Only fields still at their frozen values are put back: say so when some
                    // were changed since.
                    let note = if record.holds(&value) {
                        format!("restored as it was before the freeze of {} (R9)", record.since)
                    } else {
                        format!(
                            "unfrozen (R9): the fields still at their frozen values are back as they were before the freeze of {}; those changed since are kept",
                            record.since
                        )
                    };
                    (FreezeOperation::Restore, "Unfrozen", note)
                }),
                Step::Release => release_one(&api, &object).await.map(|()| {
                    (
                        FreezeOperation::Release,
                        "Released",
                        format!("retention of customer {customer_name:?}'s frozen resources ended: deleted (R8)"),
                    )
                }),
            };
            match outcome {
                Ok((operation, reason, note)) => {
                    ctx.metrics.freeze_operation(operation, true);
                    match operation {
                        FreezeOperation::Freeze | FreezeOperation::DriftCorrection => report.frozen += 1,
                        FreezeOperation::Restore => report.restored += 1,
                        FreezeOperation::Release => report.released += 1,
                    }
                    let type_ = match operation {
                        FreezeOperation::Release | FreezeOperation::DriftCorrection => EventType::Warning,
                        _ => EventType::Normal,
                    };
                    tracing::info!(resource = %what, customer = %customer_name, operation = operation.label(), "{note}");
                    // On the resource, and for a release (the resource is gone) on the customer.
                    publish_to(ctx, &target, None, "Freeze", type_, reason, note.clone()).await;
                    if operation == FreezeOperation::Release {
                        // Related to the resource: one event per release (events with the same
                        // reason and related object form one series).
                        let on = customer.object_ref(&());
                        publish_to(
                            ctx,
                            &on,
                            Some(target),
                            "Freeze",
                            type_,
                            reason,
                            format!("{what}: {note}"),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    let operation = match step {
                        Step::Freeze(_) => FreezeOperation::Freeze,
                        Step::Reapply(_) => FreezeOperation::DriftCorrection,
                        Step::Restore(_) => FreezeOperation::Restore,
                        _ => FreezeOperation::Release,
                    };
                    ctx.metrics.freeze_operation(operation, false);
                    tracing::warn!(resource = %what, customer = %customer_name, operation = operation.label(), error = %e, "cannot change a resource");
                    report.failed.push(format!("{what}: {} failed: {e}", operation.label()));
                    report
                        .failed_on
                        .insert(what, format!("{} failed: {e}", operation.label()));
                }
            }
        }
    }
    report
}

/// Whether `object` has a controller owner of one of `kinds` (apiVersion, kind).
fn follows_owner(object: &DynamicObject, kinds: &[(String, String)]) -> bool {
    object
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && kinds.iter().any(|(v, k)| *v == r.api_version && *k == r.kind))
}

fn freeze_note(customer: &str, record: &FrozenRecord) -> String {
    let what = match &record.undo {
        policy::Undo::Scale { replicas, .. } => format!("scaled from {replicas} to 0 replicas"),
        policy::Undo::Patch { applied, .. } => format!("patched with {applied}"),
    };
    format!(
        "frozen: customer {customer:?} is RestrictedAndFrozen (R8): {what}; the previous values are kept in the annotation {} and restored at unfreeze (R9)",
        policy::FROZEN_ANNOTATION
    )
}

fn params() -> PatchParams {
    super::write::patch_params()
}

/// Writes the record (and the action's patch, atomically) on the object as it was read; for
/// scale, then sets the scale subresource to 0.
async fn freeze(api: &Api<DynamicObject>, name: &str, record: &FrozenRecord, rv: &str) -> Result<(), kube::Error> {
    api.patch(name, &params(), &Patch::Merge(record.freeze_patch(rv)))
        .await?;
    if matches!(record.undo, policy::Undo::Scale { .. }) {
        scale_to(api, name, 0).await?;
    }
    Ok(())
}

/// Applies the action again to an object that carries its record.
async fn reapply(api: &Api<DynamicObject>, name: &str, record: &FrozenRecord) -> Result<(), kube::Error> {
    match &record.undo {
        policy::Undo::Scale { .. } => scale_to(api, name, 0).await.map(|_| ()),
        policy::Undo::Patch { applied, .. } => api.patch(name, &params(), &Patch::Merge(applied)).await.map(|_| ()),
    }
}

/// Puts the remembered values back and removes the record.
async fn restore(
    api: &Api<DynamicObject>,
    name: &str,
    record: &FrozenRecord,
    object: &serde_json::Value,
    rv: &str,
) -> Result<(), kube::Error> {
    let mut plan = record.restore(object, rv);
    if let Some(replicas) = plan.scale_to {
        // The record goes in a second write, on the object as the scale left it.
        if let Some(after) = scale_to(api, name, replicas).await? {
            plan.patch["metadata"]["resourceVersion"] = after.into();
        }
    }
    api.patch(name, &params(), &Patch::Merge(&plan.patch)).await.map(|_| ())
}

/// Sets the scale subresource's replicas; returns the object's resourceVersion after.
async fn scale_to(api: &Api<DynamicObject>, name: &str, replicas: i64) -> Result<Option<String>, kube::Error> {
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    let scale = api.patch_scale(name, &params(), &Patch::Merge(&patch)).await?;
    Ok(scale.metadata.resource_version)
}

/// Deletes the object it was (uid precondition: never a new one with the same name).
async fn release_one(api: &Api<DynamicObject>, object: &DynamicObject) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&object.name_any(), &params).await {
        Ok(_) => Ok(()),
        // Gone already: released.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// A reference to a dynamic object, for its events.
fn reference(resource: &kube::api::ApiResource, object: &DynamicObject) -> ObjectReference {
    ObjectReference {
        api_version: Some(resource.api_version.clone()),
        kind: Some(resource.kind.clone()),
        name: object.metadata.name.clone(),
        namespace: object.metadata.namespace.clone(),
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployments_replicasets_follow_it_and_a_cronjobs_jobs_do_not() {
        let owned_by = |api_version: &str, kind: &str, controller: bool| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "web-5d9", "ownerReferences": [
                    {"apiVersion": api_version, "kind": kind, "name": "web", "uid": "u1", "controller": controller}]}
            }))
            .expect("an object")
        };
        let scaled = [("apps/v1".to_string(), "Deployment".to_string())];
        assert!(follows_owner(&owned_by("apps/v1", "Deployment", true), &scaled));
        assert!(!follows_owner(&owned_by("apps/v1", "Deployment", false), &scaled));
        assert!(!follows_owner(&owned_by("batch/v1", "CronJob", true), &scaled));
    }
}
