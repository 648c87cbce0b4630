//! The CustomerAccount reconciler: the authority holder, the decision in force, the
//! `PurchaseRestricted` and `ResourcesFrozen` conditions and the history, with an event when
//! the effective state changes.

use super::context::{Context, Error};
use super::metrics::Kind;
use super::status;
use super::write::{publish, write_status};
use crate::api::CustomerAccount;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use purchase_guard_policy as policy;
use std::sync::Arc;

/// CustomerAccount: authority holder, decision in force, conditions, history.
pub async fn reconcile(customer: Arc<CustomerAccount>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = ctx.now();
    let (eval, decisions) = ctx.stores.evaluate(&customer, ctx.now_micros());
    let user_of = |key: &policy::ObjectKey| {
        decisions
            .iter()
            .find(|d| d.namespace().as_deref() == Some(key.namespace.as_str()) && d.name_any() == key.name)
            .and_then(|d| d.annotations().get(crate::api::AUDIT_USER_ANNOTATION).cloned())
    };
    let previous = customer.status.as_ref();
    let desired = status::customer_status(
        &customer.name_any(),
        customer.metadata.generation,
        previous,
        &eval,
        user_of,
        &now,
    );
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
        // Who made the change, as the audit stamp recorded it.
        let user = desired
            .decision
            .as_ref()
            .and_then(|d| d.restriction.as_ref())
            .and_then(|r| user_of(&policy::ObjectKey::new(&r.namespace, &r.name)));
        if let Some(user) = user {
            message.push_str(&format!(" (changed by {user:?})"));
        }
        publish(&ctx, customer.as_ref(), EventType::Normal, &reason, message).await;
    }
    Ok(Action::await_change())
}
