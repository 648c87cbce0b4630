//! The PurchaseRestriction reconciler: `Accepted` and `Effective`, the accepted content, and a
//! warning event when a decision is not accepted.

use super::context::{Context, Error};
use super::metrics::Kind;
use super::status;
use super::write::{publish, write_status};
use crate::api::PurchaseRestriction;
use crate::index;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use purchase_guard_policy as policy;
use std::sync::Arc;

/// PurchaseRestriction: Accepted and Effective, with the accepted content.
pub async fn reconcile(decision: Arc<PurchaseRestriction>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = ctx.now();
    let key = policy::ObjectKey::new(&decision.namespace().unwrap_or_default(), &decision.name_any());
    let (verdict, in_force) = match ctx.stores.customer(&decision.spec.customer) {
        Some(customer) => {
            let (eval, _) = ctx.stores.evaluate(&customer, ctx.now_micros());
            let in_force = eval.decisions.iter().find(|v| v.in_force).map(|v| v.key.clone());
            match eval.decisions.into_iter().find(|v| v.key == key) {
                Some(v) => (v, in_force),
                None => return Ok(Action::await_change()),
            }
        }
        None => (
            policy::verdict_without_customer(&ctx.stores.hierarchy(), &index::decision(&decision)),
            None,
        ),
    };
    let previous = decision.status.as_ref();
    let desired = status::decision_status(
        decision.metadata.generation,
        previous,
        &verdict,
        in_force.as_ref(),
        &now,
    );
    let api: Api<PurchaseRestriction> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let was_accepted = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == "Accepted"))
        .map(|c| c.status.clone());
    if write_status(
        &ctx.metrics,
        Kind::PurchaseRestriction,
        &api,
        &decision,
        previous,
        &desired,
    )
    .await?
    {
        let accepted = desired.conditions.iter().find(|c| c.type_ == "Accepted");
        if let Some(c) = accepted.filter(|c| c.status == "False" && was_accepted.as_deref() != Some("False")) {
            publish(
                &ctx,
                decision.as_ref(),
                EventType::Warning,
                &c.reason,
                c.message.to_string(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}
