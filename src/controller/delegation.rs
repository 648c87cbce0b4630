//! The ResellerDelegation reconciler: `Accepted` and `Active` (R2, R3).

use super::context::{Context, Error};
use super::metrics::Kind;
use super::status;
use super::write::write_status;
use crate::api::ResellerDelegation;
use crate::index;
use kube::api::Api;
use kube::runtime::controller::Action;
use purchase_guard_policy as policy;
use std::sync::Arc;

pub async fn reconcile(delegation: Arc<ResellerDelegation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let hierarchy = ctx.stores.hierarchy();
    let core = index::delegation(&delegation);
    let verdict = policy::evaluate_delegation(&hierarchy, &core);
    let desired = status::delegation_status(
        delegation.metadata.generation,
        delegation.status.as_ref(),
        &core.reseller,
        &verdict,
        policy::issuer_of(&hierarchy, &core.key.namespace)
            .ok()
            .map(|p| p.name.clone()),
        &ctx.now(),
    );
    let api: Api<ResellerDelegation> = Api::namespaced(ctx.client.clone(), &core.key.namespace);
    write_status(
        &ctx.metrics,
        Kind::ResellerDelegation,
        &api,
        &delegation,
        delegation.status.as_ref(),
        &desired,
    )
    .await?;
    Ok(Action::await_change())
}
