//! The CustomerAccount reconciler: the authority holder, the decision in force, the
//! `PurchaseRestricted` and `ResourcesFrozen` conditions and the history, with an event when
//! the effective state changes; the label that puts its namespaces under the purchase webhook.

use super::audit;
use super::context::{Context, Error};
use super::freeze;
use super::metrics::Kind;
use super::status;
use super::write::{patch_params, publish, publish_related, write_status};
use crate::api::{CustomerAccount, GUARDED_LABEL, PURCHASES_LABEL, SharedStr};
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
        find(&key.namespace, &key.name).filter(|_| credit).and_then(|d| {
            d.annotations()
                .get(crate::api::AUDIT_USER_ANNOTATION)
                .map(SharedStr::from)
        })
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
    let purchases = crate::api::purchases_value(eval.effective.state);
    desired.guarded_namespaces = guard_namespaces(&ctx, &customer, purchases).await?;
    // Then the resources (R8, R9); the status says what was done, not what was asked.
    let by = match &eval.effective.basis {
        policy::Basis::Decision { issuer, role, .. } => Some((*role, issuer.as_str())),
        _ => None,
    };
    let partner = by.and_then(|(_, issuer)| ctx.stores.partners.get(&ObjectRef::new(issuer)));
    let retention = ctx.freezer.retention(partner.as_deref());
    let freezing = previous.and_then(|p| p.freeze.as_deref());
    let window = freeze::status::window(freezing, eval.effective.state.freezes_resources(), retention, &now);
    let why = match &eval.effective.basis {
        policy::Basis::Decision {
            issuer, role, reason, ..
        } => format!("frozen by {role} \"{issuer}\": {reason}"),
        _ => String::new(),
    };
    let wanted = window
        .as_ref()
        .map_or(policy::Desired::Thawed, |w| w.desired(&now, &why));
    let release = ctx.freezer.settings.release;
    let report = freeze::converge(&ctx, &customer, &desired.guarded_namespaces, &wanted, release).await;
    desired.freeze = freeze::status::freeze_status(freezing, window.as_ref(), &report, &now).map(Box::new);
    let unfreezable = ctx.freezer.unfreezable();
    let settings = freeze::status::Context {
        by,
        unfreezable,
        release,
    };
    let prev_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    desired.conditions.extend(freeze::status::freeze_conditions(
        prev_conditions,
        desired.freeze.as_deref(),
        window.as_ref(),
        &report,
        &settings,
        customer.metadata.generation,
        &now,
    ));
    // The audit, from the state and resources as this pass left them: the reports first, then
    // the counts in the status. While a guarded kind's watch is not synced the counts would
    // miss its objects: the previous ones stay until it is (its sync reconciles again).
    let state = policy::evaluated_state(&eval);
    let mut reports_failed = false;
    let found = audit::audit(&ctx, &customer, &state, &desired, &report.failed_on);
    if found.pending_kinds.is_empty() {
        let state_name = desired
            .decision
            .as_ref()
            .map_or("Unknown", |d| policy::RestrictionState::from(d.state).as_str());
        // A report that cannot be written (its kind's RBAC missing, the API server failing)
        // holds up nothing else: the status is written, the reports are tried again.
        if let Err(e) = audit::write_reports(&ctx, &customer, state_name, &found).await {
            tracing::warn!(customer = %customer.name_any(), error = %e, "cannot write the audit's policy reports; retried in {REPORT_RETRY:?}");
            reports_failed = true;
        }
        desired.audit = Some(Box::new(found.status()));
    } else {
        desired.audit = previous.and_then(|p| p.audit.clone());
    }
    desired.conditions.extend(status::kstatus_conditions(
        prev_conditions,
        &customer_progress(&desired),
        customer.metadata.generation,
        &now,
    ));
    let api: Api<CustomerAccount> = Api::all(ctx.client.clone());
    let before = previous
        .and_then(|p| p.decision.as_ref())
        .map(|d| (d.state, d.restriction.clone()));
    let after = desired.decision.as_ref().map(|d| (d.state, d.restriction.clone()));
    let written = write_status(&ctx.metrics, Kind::CustomerAccount, &api, &customer, previous, &desired).await?;
    if written {
        freeze_events(&ctx, &customer, previous, &desired).await;
    }
    // A customer's first evaluation is recorded in its conditions and history, not as an
    // event: it is no change anyone made, and a fresh install over many customers would
    // otherwise write one event per customer. Every later change of state is an event.
    let first_evaluation = previous.is_none_or(|p| p.history.is_empty());
    if written && before != after && !first_evaluation {
        let condition = desired.conditions.iter().find(|c| c.type_ == "PurchaseRestricted");
        let (reason, mut message) = condition
            .map(|c| (c.reason.to_string(), c.message.to_string()))
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
    // What failed is retried; kinds not listed yet reconcile the customers in play once they
    // are (`Changed::All`); a freeze is looked at again when its retention ends. The audit's
    // sweep (every customer, every interval) is one timer of the controller (`mod.rs`), not a
    // requeue of each customer.
    if !report.failed.is_empty() {
        return Ok(Action::requeue(FREEZE_RETRY));
    }
    let retention = window
        .and_then(|w| w.remaining(&now))
        .map(|left| left + std::time::Duration::from_secs(1));
    let reports = reports_failed.then_some(REPORT_RETRY);
    Ok(match retention.into_iter().chain(reports).min() {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// How soon policy reports that could not be written are tried again.
const REPORT_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// How soon resources that could not be frozen or restored are tried again.
const FREEZE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// An event when `ResourcesFrozen` or `ReleaseDue` turns True, and when an unfreeze completes.
async fn freeze_events(
    ctx: &Context,
    customer: &CustomerAccount,
    previous: Option<&crate::api::CustomerAccountStatus>,
    desired: &crate::api::CustomerAccountStatus,
) {
    use crate::api::Condition;
    let find = |s: Option<&crate::api::CustomerAccountStatus>, type_: &str| {
        s.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_)).cloned()
    };
    let is_true: fn(&Condition) -> bool = |c| c.status == "True";
    let unfrozen: fn(&Condition) -> bool = |c| c.reason == "Unfrozen";
    for (type_, holds, event_type) in [
        ("ResourcesFrozen", is_true, EventType::Normal),
        ("ReleaseDue", is_true, EventType::Warning),
        ("ResourcesFrozen", unfrozen, EventType::Normal),
    ] {
        // An event when the condition starts to hold.
        let Some(now) = find(Some(desired), type_).filter(holds) else {
            continue;
        };
        if find(previous, type_).is_some_and(|c| holds(&c)) {
            continue;
        }
        publish(ctx, customer, event_type, &now.reason, now.message.to_string()).await;
    }
}

/// Labels the existing namespaces the customer claims (listed or selected) with
/// [`GUARDED_LABEL`] and [`PURCHASES_LABEL`] (`purchases`: what the customer may do now), and
/// removes both from those it claimed before (its status says which) that no customer claims
/// any more, with an event. Returns the namespaces now guarded
/// for it: listed ones in spec order, then selected ones by name.
async fn guard_namespaces(ctx: &Context, customer: &CustomerAccount, purchases: &str) -> Result<Vec<String>, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let params = patch_params();
    let mut guarded = Vec::new();
    let claimed = ctx.stores.namespaces_of(customer);
    for name in &claimed {
        let Some(namespace) = ctx.stores.namespaces.get(&ObjectRef::new(name)) else {
            continue;
        };
        let state_label = namespace.labels().get(PURCHASES_LABEL).map(String::as_str);
        if !is_guarded(&namespace) || state_label != Some(purchases) {
            let patch =
                serde_json::json!({"metadata": {"labels": {GUARDED_LABEL: "true", PURCHASES_LABEL: purchases}}});
            api.patch(name, &params, &Patch::Merge(&patch)).await?;
            tracing::info!(namespace = %name, purchases, "namespace guarded");
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
        let patch = serde_json::json!({"metadata": {"labels": {GUARDED_LABEL: null, PURCHASES_LABEL: null}}});
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

/// How far purchase-guard got with a customer: current once its state is evaluated and its
/// resources are as that state wants them (restricted or not); in progress while a freeze or
/// an unfreeze is under way.
fn customer_progress(status: &crate::api::CustomerAccountStatus) -> status::Progress {
    let freezing = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ResourcesFrozen" && matches!(c.reason.as_str(), "Freezing" | "Unfreezing"));
    match freezing {
        Some(c) => status::Progress::in_progress(&c.reason, c.message.clone()),
        None => {
            let state = status
                .decision
                .as_ref()
                .map_or("evaluated", |d| policy::RestrictionState::from(d.state).as_str());
            status::Progress::current("Evaluated", format!("purchase-guard evaluated this customer: {state}"))
        }
    }
}
