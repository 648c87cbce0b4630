//! The CustomerAccount reconciler: the authority holder, the decision in force, the
//! `PurchaseRestricted` and `ResourcesFrozen` conditions and the history, with an event when
//! the effective state changes; the label that puts its namespaces under the purchase webhook.

use super::context::{Context, Error};
use super::metrics::Kind;
use super::status;
use super::write::{patch_params, publish, publish_related, write_status};
use crate::api::{CustomerAccount, GUARDED_LABEL};
use crate::index::is_guarded;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use purchase_guard_policy as policy;
use std::sync::Arc;

/// CustomerAccount: authority holder, decision in force, conditions, history.
pub async fn reconcile(customer: Arc<CustomerAccount>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = ctx.now();
    let (eval, decisions) = ctx.stores.evaluate(&customer, ctx.now_micros());
    let previous = customer.status.as_ref();
    let keys: Vec<policy::ObjectKey> = eval.decisions.iter().map(|v| v.key.clone()).collect();
    let credit = status::credit_decision_user(previous, &keys);
    // The user the audit stamp recorded on a decision, when it may be credited.
    let find = |namespace: &str, name: &str| {
        decisions
            .iter()
            .find(|d| d.namespace().as_deref() == Some(namespace) && d.name_any() == name)
    };
    let user_of = |key: &policy::ObjectKey| {
        find(&key.namespace, &key.name)
            .filter(|_| credit)
            .and_then(|d| d.annotations().get(crate::api::AUDIT_USER_ANNOTATION).cloned())
    };
    let mut desired = status::customer_status(
        &customer.name_any(),
        customer.metadata.generation,
        previous,
        &eval,
        user_of,
        &now,
    );
    desired.association = Some(status::association(previous, &customer.spec, &now));
    // Labels first: the status says which namespaces are guarded only once they are.
    desired.guarded_namespaces = guard_namespaces(&ctx, &customer).await?;
    let api: Api<CustomerAccount> = Api::all(ctx.client.clone());
    let before = previous
        .and_then(|p| p.decision.as_ref())
        .map(|d| (d.state, d.restriction.clone()));
    let after = desired.decision.as_ref().map(|d| (d.state, d.restriction.clone()));
    if write_status(&ctx, Kind::CustomerAccount, &api, &customer, previous, &desired).await? && before != after {
        let condition = desired.conditions.iter().find(|c| c.type_ == "PurchaseRestricted");
        let (reason, mut message) = condition
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_default();
        // The change as the history recorded it: a decision, or the withdrawal of the one in
        // force before, and who made it, as the audit stamp recorded it.
        let entry = desired.history.last();
        let withdrawn = entry.and_then(|e| e.withdrawn.as_ref());
        if let (Some(w), Some(e)) = (withdrawn, entry) {
            message.push_str(&format!(
                ", after the withdrawal of PurchaseRestriction {}/{} (reason: {:?})",
                w.namespace, w.name, e.reason
            ));
        }
        if let Some(user) = entry.and_then(|e| e.user.as_ref()) {
            message.push_str(&format!(" (changed by {user:?})"));
        }
        // Each change its own event: related to the withdrawn decision's version, to the
        // decision version in force, or to the customer's version before this change (the R1
        // default, no decision).
        let in_force = desired.decision.as_ref().and_then(|d| d.restriction.as_ref());
        let related = match withdrawn.or(in_force) {
            Some(r) => find(&r.namespace, &r.name).map(|d| versioned_ref(d.as_ref())),
            None => Some(versioned_ref(customer.as_ref())),
        };
        publish_related(&ctx, customer.as_ref(), related, EventType::Normal, &reason, message).await;
    }
    Ok(Action::await_change())
}

/// Labels the existing namespaces the customer claims (listed or selected) with
/// [`GUARDED_LABEL`], and removes the label from those it claimed before (its status says
/// which) that no customer claims any more, with an event. Returns the namespaces now guarded
/// for it: listed ones in spec order, then selected ones by name.
async fn guard_namespaces(ctx: &Context, customer: &CustomerAccount) -> Result<Vec<String>, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let params = patch_params();
    let mut guarded = Vec::new();
    let claimed = ctx.stores.namespaces_of(customer);
    for name in &claimed {
        let Some(namespace) = ctx.stores.namespaces.get(&ObjectRef::new(name)) else {
            continue;
        };
        if !is_guarded(&namespace) {
            let patch = serde_json::json!({"metadata": {"labels": {GUARDED_LABEL: "true"}}});
            api.patch(name, &params, &Patch::Merge(&patch)).await?;
            tracing::info!(namespace = %name, "namespace guarded");
        }
        guarded.push(name.clone());
    }
    let before = customer
        .status
        .as_ref()
        .map(|s| s.guarded_namespaces.as_slice())
        .unwrap_or_default();
    for name in before.iter().filter(|n| !claimed.contains(n)) {
        let listed_elsewhere = !ctx.stores.customers_in_namespace(name).is_empty();
        let labelled = ctx
            .stores
            .namespaces
            .get(&ObjectRef::new(name))
            .is_some_and(|ns| is_guarded(&ns));
        if listed_elsewhere || !labelled {
            continue;
        }
        let patch = serde_json::json!({"metadata": {"labels": {GUARDED_LABEL: null}}});
        api.patch(name, &params, &Patch::Merge(&patch)).await?;
        publish(
            ctx,
            customer,
            EventType::Normal,
            "NamespaceReleased",
            format!("namespace {name:?} is no longer listed in spec.namespaces nor selected by spec.namespaceSelector: purchases there are no longer judged"),
        )
        .await;
    }
    Ok(guarded)
}

/// A reference to an object at its current resourceVersion (kube's `object_ref` leaves the
/// version out).
fn versioned_ref<K: Resource<DynamicType = ()>>(obj: &K) -> k8s_openapi::api::core::v1::ObjectReference {
    let mut reference = obj.object_ref(&());
    reference.resource_version = obj.meta().resource_version.clone();
    reference
}
