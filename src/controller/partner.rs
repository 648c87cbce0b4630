//! The Partner reconciler: `Ready` (its namespace exists; a reseller's distributor is known)
//! and, for resellers, `RestrictionDelegated` (R2, R3).

use super::context::{Context, Error};
use super::metrics::Kind;
use super::status;
use super::write::write_status;
use crate::api::Partner;
use crate::index;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use purchase_guard_policy as policy;
use std::sync::Arc;

pub async fn reconcile(partner: Arc<Partner>, ctx: Arc<Context>) -> Result<Action, Error> {
    let hierarchy = ctx.stores.hierarchy();
    let core = index::partner(&partner);
    let namespace_exists = ctx.stores.namespaces.get(&ObjectRef::new(&core.namespace)).is_some();
    let readiness = policy::partner_readiness(&hierarchy, &core, namespace_exists);
    let reseller = core.role == policy::Role::Reseller;
    let delegation = reseller
        .then(|| policy::active_delegation(&hierarchy, &core.name))
        .flatten()
        .map(|d| &d.key);
    let desired = status::partner_status(
        partner.metadata.generation,
        partner.status.as_ref(),
        &core.namespace,
        &readiness,
        reseller,
        delegation,
        &ctx.now(),
    );
    let api: Api<Partner> = Api::all(ctx.client.clone());
    write_status(&ctx, Kind::Partner, &api, &partner, partner.status.as_ref(), &desired).await?;
    Ok(Action::await_change())
}
