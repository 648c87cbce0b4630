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

/// How often a partner's usable verification Secret is looked at again (to report one deleted
/// or broken since); admission reads it at every use regardless.
const VERIFICATION_RECHECK: std::time::Duration = std::time::Duration::from_secs(300);
/// How often a partner whose verification Secret is unusable is looked at again.
const VERIFICATION_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

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
    // R5: the verification Secret is read, never cached; a Secret created, fixed or deleted
    // later is seen at the next look.
    let verification = crate::verification::readiness(&ctx.client, &partner)
        .await
        .map(|r| r.map(|_| ()));
    let desired = status::partner_status(
        partner.metadata.generation,
        partner.status.as_ref(),
        &core.namespace,
        &readiness,
        verification.as_ref(),
        reseller,
        delegation,
        &ctx.now(),
    );
    let api: Api<Partner> = Api::all(ctx.client.clone());
    write_status(
        &ctx.metrics,
        Kind::Partner,
        &api,
        &partner,
        partner.status.as_ref(),
        &desired,
    )
    .await?;
    Ok(match verification {
        None => Action::await_change(),
        Some(Ok(())) => Action::requeue(VERIFICATION_RECHECK),
        Some(Err(_)) => Action::requeue(VERIFICATION_RETRY),
    })
}
