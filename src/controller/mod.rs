//! The reconcilers: one kube-runtime `Controller` per kind, each writing only its own
//! objects' status. They share reflector stores (one watch per kind) and are triggered
//! through mappings over those stores, so that a change re-reconciles exactly the objects it
//! affects.

pub mod status;

use crate::api::{
    CustomerAccount, Partner, PartnerRole, PartnerStatus, PurchaseRestriction, ResellerDelegation,
    ResellerDelegationStatus,
};
use crate::index::{self, Stores};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use purchase_guard_policy as policy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// The field manager of the controller's status writes.
pub const MANAGER: &str = "purchase-guard";

/// Errors of a reconcile; each is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot encode a status: {0}")]
    Encode(#[from] serde_json::Error),
}

pub mod metrics;
pub use metrics::{KINDS, Metrics};

/// What every reconcile shares.
pub struct Context {
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for exponential backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Whether this replica holds the lease; only the leader writes.
    pub leader: tokio::sync::watch::Receiver<bool>,
    pub client: Client,
    pub stores: Stores,
    pub namespaces: Store<Namespace>,
    pub recorder: Recorder,
    /// The clock, replaceable in tests.
    pub now: fn() -> jiff::Timestamp,
}

impl Context {
    /// Now for the policy core (microseconds: decisions accepted within the same second stay
    /// ordered).
    fn now_micros(&self) -> policy::Timestamp {
        policy::Timestamp((self.now)().as_microsecond())
    }

    /// Now for conditions and history (seconds, as Kubernetes writes times).
    fn now(&self) -> Time {
        let now = (self.now)();
        Time(now.round(jiff::Unit::Second).unwrap_or(now))
    }
}

/// Patches an object's status when it differs from the computed one; returns whether it wrote.
async fn write_status<K, S>(api: &Api<K>, obj: &K, current: Option<&S>, desired: &S) -> Result<bool, Error>
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
    let patch = serde_json::json!({ "status": status });
    api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

/// Adds `null` for every key of `old` that `new` lacks, recursing into objects present in
/// both (lists are replaced whole by a merge patch).
fn clear_removed(new: &mut serde_json::Value, old: &serde_json::Value) {
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

/// The delay before the `failures`-th retry: 1 s, doubling up to 256 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(8))
}

/// The key of an object in the failure counts: kind, namespace, name.
fn failure_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.name_any()
    )
}

fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = failure_key(obj.as_ref());
    let failures = {
        let mut failures = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let delay = backoff(failures);
    tracing::warn!(%error, object = %key, failures, retry_in = ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

async fn publish(ctx: &Context, obj: &impl Resource<DynamicType = ()>, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "cannot publish an event");
    }
}

/// CustomerAccount: authority holder, decision in force, conditions, history.
async fn reconcile_customer_inner(customer: Arc<CustomerAccount>, ctx: Arc<Context>) -> Result<Action, Error> {
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
    if write_status(&api, &customer, previous, &desired).await? && before != after {
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
            message.push_str(&format!(" (changed by \"{user}\")"));
        }
        publish(&ctx, customer.as_ref(), EventType::Normal, &reason, message).await;
    }
    Ok(Action::await_change())
}

/// PurchaseRestriction: Accepted and Effective, with the accepted content.
async fn reconcile_decision_inner(decision: Arc<PurchaseRestriction>, ctx: Arc<Context>) -> Result<Action, Error> {
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
    if write_status(&api, &decision, previous, &desired).await? {
        let accepted = desired.conditions.iter().find(|c| c.type_ == "Accepted");
        if let Some(c) = accepted.filter(|c| c.status == "False" && was_accepted.as_deref() != Some("False")) {
            publish(
                &ctx,
                decision.as_ref(),
                EventType::Warning,
                &c.reason,
                c.message.clone(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

/// ResellerDelegation: Accepted and Active.
async fn reconcile_delegation_inner(delegation: Arc<ResellerDelegation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = ctx.now();
    let hierarchy = ctx.stores.hierarchy();
    let core = index::delegation(&delegation);
    let verdict = policy::evaluate_delegation(&hierarchy, &core);
    let generation = delegation.metadata.generation;
    let prev = delegation
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let (reason, message) = match &verdict {
        Ok(()) => (
            "Accepted".to_string(),
            format!(
                "reseller \"{}\" now holds restriction authority over its customers (R3)",
                core.reseller
            ),
        ),
        Err(e) => (e.reason().to_string(), e.to_string()),
    };
    let desired = ResellerDelegationStatus {
        observed_generation: generation,
        conditions: vec![
            status::condition(
                prev,
                "Accepted",
                verdict.is_ok(),
                &reason,
                message.clone(),
                generation,
                &now,
            ),
            status::condition(
                prev,
                "Active",
                verdict.is_ok(),
                if verdict.is_ok() { "Active" } else { "NotAccepted" },
                message,
                generation,
                &now,
            ),
        ],
        distributor: policy::issuer_of(&hierarchy, &core.key.namespace)
            .ok()
            .map(|p| p.name.clone()),
    };
    let api: Api<ResellerDelegation> = Api::namespaced(ctx.client.clone(), &core.key.namespace);
    write_status(&api, &delegation, delegation.status.as_ref(), &desired).await?;
    Ok(Action::await_change())
}

/// Partner: Ready, and for resellers RestrictionDelegated.
async fn reconcile_partner_inner(partner: Arc<Partner>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = ctx.now();
    let hierarchy = ctx.stores.hierarchy();
    let generation = partner.metadata.generation;
    let prev = partner
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let ns_exists = ctx.namespaces.get(&ObjectRef::new(&partner.spec.namespace)).is_some();
    let distributor_ok = match (&partner.spec.role, &partner.spec.distributor) {
        (PartnerRole::Reseller, Some(d)) => hierarchy
            .partner(d)
            .is_some_and(|p| p.role == policy::Role::Distributor),
        _ => true,
    };
    let (ready, reason, message) = match (ns_exists, distributor_ok) {
        (false, _) => (
            false,
            "NamespaceMissing",
            format!(
                "namespace \"{}\" does not exist; create it for this partner to act",
                partner.spec.namespace
            ),
        ),
        (true, false) => (
            false,
            "DistributorMissing",
            format!(
                "distributor \"{}\" has no Partner object with role Distributor",
                partner.spec.distributor.clone().unwrap_or_default()
            ),
        ),
        (true, true) => (
            true,
            "Ready",
            format!("acts in namespace \"{}\"", partner.spec.namespace),
        ),
    };
    let mut conditions = vec![status::condition(
        prev, "Ready", ready, reason, message, generation, &now,
    )];
    let mut delegation = None;
    if partner.spec.role == PartnerRole::Reseller {
        let active = policy::active_delegation(&hierarchy, &partner.name_any());
        delegation = active.map(|d| crate::api::ObjectReference {
            namespace: d.key.namespace.clone(),
            name: d.key.name.clone(),
        });
        let (reason, message) = match active {
            Some(d) => (
                "Delegated",
                format!(
                    "the distributor delegated restriction of this reseller's customers (ResellerDelegation {}); only this reseller may restrict them (R3)",
                    d.key
                ),
            ),
            None => (
                "NotDelegated",
                "the distributor holds restriction authority over this reseller's customers (R2)".to_string(),
            ),
        };
        conditions.push(status::condition(
            prev,
            "RestrictionDelegated",
            active.is_some(),
            reason,
            message,
            generation,
            &now,
        ));
    }
    let desired = PartnerStatus {
        observed_generation: generation,
        conditions,
        delegation,
    };
    let api: Api<Partner> = Api::all(ctx.client.clone());
    write_status(&api, &partner, partner.status.as_ref(), &desired).await?;
    Ok(Action::await_change())
}

macro_rules! counted {
    ($name:ident, $inner:ident, $kind:ty, $slot:expr) => {
        async fn $name(obj: Arc<$kind>, ctx: Arc<Context>) -> Result<Action, Error> {
            // Followers keep their caches warm but never write; they reconcile everything
            // when they become the leader.
            if !*ctx.leader.borrow() {
                return Ok(Action::await_change());
            }
            let label = metrics::KindLabel { kind: KINDS[$slot] };
            let failure_key_of = failure_key(obj.as_ref());
            let started = std::time::Instant::now();
            let result = $inner(obj, ctx.clone()).await;
            ctx.metrics
                .duration
                .get_or_create(&label)
                .observe(started.elapsed().as_secs_f64());
            match &result {
                Ok(_) => {
                    ctx.metrics.reconciles.get_or_create(&label).inc();
                    let key = failure_key_of;
                    ctx.failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                }
                Err(_) => {
                    ctx.metrics.errors.get_or_create(&label).inc();
                }
            };
            result
        }
    };
}
counted!(reconcile_customer, reconcile_customer_inner, CustomerAccount, 0);
counted!(reconcile_decision, reconcile_decision_inner, PurchaseRestriction, 1);
counted!(reconcile_delegation, reconcile_delegation_inner, ResellerDelegation, 2);
counted!(reconcile_partner, reconcile_partner_inner, Partner, 3);

/// A shared reflector store: one watch per kind, feeding a store and any number of
/// subscribers (the controllers' triggers see a change only after the store has it).
fn shared<K>() -> (Store<K>, reflector::store::Writer<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    reflector::store_shared(4096)
}

/// Checks that the CRDs are installed, with the command that installs them when not.
pub async fn check_crds(client: &Client) -> Result<(), String> {
    async fn probe<K>(client: &Client) -> Result<(), String>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let api: Api<K> = Api::all(client.clone());
        match api.list(&kube::api::ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Err(format!(
                "the CustomResourceDefinition {}.{} is not installed; install the CRDs with: purchase-guard crds | kubectl apply -f -",
                K::plural(&()),
                K::group(&())
            )),
            Err(e) => Err(format!("cannot reach the Kubernetes API: {e}")),
        }
    }
    probe::<Partner>(client).await?;
    probe::<CustomerAccount>(client).await?;
    probe::<ResellerDelegation>(client).await?;
    probe::<PurchaseRestriction>(client).await
}

type Gone<K> = tokio::sync::broadcast::Sender<Arc<K>>;

fn gone<K: Clone>() -> Gone<K> {
    tokio::sync::broadcast::channel(4096).0
}

/// The deleted objects of a kind, as a trigger stream.
fn deletions<K: Send + Sync + 'static>(gone: &Gone<K>) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
    futures::stream::unfold(gone.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(obj) => return Some((obj, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "deletion triggers were dropped under load");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Passes an object only when its generation changed (or it is new): what depends on another
/// object's spec need not run again when only that object's status changed.
fn spec_changes<K: Resource + Send + Sync + 'static>(
    stream: impl futures::Stream<Item = Arc<K>> + Send + 'static,
) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
    let mut seen: std::collections::HashMap<String, Option<i64>> = Default::default();
    stream.filter(move |obj| {
        let meta = obj.meta();
        let key = meta.uid.clone().or_else(|| meta.name.clone()).unwrap_or_default();
        let changed = seen.insert(key, meta.generation) != Some(meta.generation);
        futures::future::ready(changed)
    })
}

fn refs<K: Resource<DynamicType = ()>>(objs: impl IntoIterator<Item = Arc<K>>) -> Vec<ObjectRef<K>> {
    objs.into_iter().map(|o| ObjectRef::from_obj(o.as_ref())).collect()
}

/// Bounded concurrency: a cold start with thousands of objects queues reconciles instead of
/// running them all at once (memory, and fairness to fresh changes).
fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(16)
}

/// Runs every controller until `shutdown` resolves. `ready` is called once all caches synced,
/// with the caches (the admission webhooks read them).
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    leader: tokio::sync::watch::Receiver<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Stores) + Send + 'static,
) -> Result<(), Error> {
    let partners_api: Api<Partner> = Api::all(client.clone());
    let customers_api: Api<CustomerAccount> = Api::all(client.clone());
    let delegations_api: Api<ResellerDelegation> = Api::all(client.clone());
    let decisions_api: Api<PurchaseRestriction> = Api::all(client.clone());
    let namespaces_api: Api<Namespace> = Api::all(client.clone());

    let (partners, partners_w) = shared();
    let (customers, customers_w) = shared();
    let (delegations, delegations_w) = shared();
    let (decisions, decisions_w) = shared();
    let (namespaces, namespaces_w) = shared();
    // Shared stores dispatch applied objects but not deletions; deletions are broadcast
    // separately, after the store has dropped the object.
    let (partners_gone, customers_gone, delegations_gone, decisions_gone, namespaces_gone) = (
        gone::<Partner>(),
        gone::<CustomerAccount>(),
        gone::<ResellerDelegation>(),
        gone::<PurchaseRestriction>(),
        gone::<Namespace>(),
    );
    // Stores made by `store_shared` always accept subscribers.
    macro_rules! subscribe {
        ($w:expr, $gone:expr) => {
            futures::stream::select(
                $w.subscribe().expect("shared stores can be subscribed to"),
                deletions(&$gone),
            )
        };
    }
    // For triggers whose dependents read only the spec: status writes do not re-trigger.
    macro_rules! subscribe_spec {
        ($w:expr, $gone:expr) => {
            futures::stream::select(
                spec_changes($w.subscribe().expect("shared stores can be subscribed to")),
                deletions(&$gone),
            )
        };
    }
    let index = Arc::new(index::DecisionIndex::default());
    let namespace_index = Arc::new(index::NamespaceIndex::default());
    let stores = Stores {
        partners: partners.clone(),
        customers: customers.clone(),
        delegations: delegations.clone(),
        decisions: decisions.clone(),
        decisions_by_customer: index.clone(),
        customers_by_namespace: namespace_index.clone(),
    };
    let ready_stores = stores.clone();
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    metrics.set_customer_store(customers.clone());
    // Each time this replica becomes the leader, every object is reconciled.
    let elected = || {
        futures::stream::unfold(leader.clone(), |mut rx| async move {
            loop {
                rx.changed().await.ok()?;
                if *rx.borrow_and_update() {
                    return Some(((), rx));
                }
            }
        })
    };
    let ctx = Arc::new(Context {
        failures: Default::default(),
        leader: leader.clone(),
        metrics,
        client: client.clone(),
        stores: stores.clone(),
        namespaces: namespaces.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        now: jiff::Timestamp::now,
    });

    let s = stores.clone();
    let customers_ctrl = Controller::for_shared_stream(
        customers_w.subscribe().expect("shared stores can be subscribed to"),
        customers.clone(),
    )
    .with_config(controller_config())
    .watches_shared_stream(subscribe!(decisions_w, decisions_gone), {
        let s = s.clone();
        move |d: Arc<PurchaseRestriction>| s.customer(&d.spec.customer).map(|c| ObjectRef::from_obj(c.as_ref()))
    })
    .watches_shared_stream(subscribe_spec!(delegations_w, delegations_gone), {
        let s = s.clone();
        move |d: Arc<ResellerDelegation>| refs(s.customers_of_reseller(&d.spec.reseller))
    })
    .watches_shared_stream(subscribe_spec!(partners_w, partners_gone), {
        let s = s.clone();
        move |p: Arc<Partner>| refs(s.customers_of_partner(&p.name_any()))
    })
    .reconcile_all_on(elected())
    .run(reconcile_customer, error_policy, ctx.clone());

    let decisions_ctrl = Controller::for_shared_stream(
        decisions_w.subscribe().expect("shared stores can be subscribed to"),
        decisions.clone(),
    )
    .with_config(controller_config())
    .watches_shared_stream(subscribe_spec!(customers_w, customers_gone), {
        let s = s.clone();
        move |c: Arc<CustomerAccount>| refs(s.decisions_of(&c.name_any()))
    })
    .watches_shared_stream(subscribe!(decisions_w, decisions_gone), {
        let s = s.clone();
        move |d: Arc<PurchaseRestriction>| refs(s.decisions_of(&d.spec.customer))
    })
    .watches_shared_stream(subscribe_spec!(delegations_w, delegations_gone), {
        let s = s.clone();
        move |d: Arc<ResellerDelegation>| refs(s.decisions_of_customers(&s.customers_of_reseller(&d.spec.reseller)))
    })
    .watches_shared_stream(subscribe_spec!(partners_w, partners_gone), {
        let s = s.clone();
        move |p: Arc<Partner>| {
            let mut out: Vec<Arc<PurchaseRestriction>> = s
                .decisions
                .state()
                .into_iter()
                .filter(|d| d.namespace().as_deref() == Some(p.spec.namespace.as_str()))
                .collect();
            out.extend(s.decisions_of_customers(&s.customers_of_partner(&p.name_any())));
            refs(out)
        }
    })
    .reconcile_all_on(elected())
    .run(reconcile_decision, error_policy, ctx.clone());

    let delegations_ctrl = Controller::for_shared_stream(
        delegations_w.subscribe().expect("shared stores can be subscribed to"),
        delegations.clone(),
    )
    .with_config(controller_config())
    .watches_shared_stream(subscribe_spec!(delegations_w, delegations_gone), {
        let s = s.clone();
        move |d: Arc<ResellerDelegation>| {
            refs(
                s.delegations
                    .state()
                    .into_iter()
                    .filter(|o| o.spec.reseller == d.spec.reseller),
            )
        }
    })
    .watches_shared_stream(subscribe_spec!(partners_w, partners_gone), {
        let s = s.clone();
        move |_p: Arc<Partner>| refs(s.delegations.state())
    })
    .reconcile_all_on(elected())
    .run(reconcile_delegation, error_policy, ctx.clone());

    let partners_ctrl = Controller::for_shared_stream(
        partners_w.subscribe().expect("shared stores can be subscribed to"),
        partners.clone(),
    )
    .with_config(controller_config())
    .watches_shared_stream(subscribe_spec!(namespaces_w, namespaces_gone), {
        let s = s.clone();
        move |ns: Arc<Namespace>| {
            refs(
                s.partners
                    .state()
                    .into_iter()
                    .filter(|p| p.spec.namespace == ns.name_any()),
            )
        }
    })
    .watches_shared_stream(subscribe_spec!(delegations_w, delegations_gone), {
        let s = s.clone();
        move |d: Arc<ResellerDelegation>| {
            refs(
                s.partners
                    .state()
                    .into_iter()
                    .filter(|p| p.name_any() == d.spec.reseller),
            )
        }
    })
    .watches_shared_stream(subscribe_spec!(partners_w, partners_gone), {
        let s = s.clone();
        move |p: Arc<Partner>| {
            refs(
                s.partners
                    .state()
                    .into_iter()
                    .filter(|o| o.spec.distributor.as_deref() == Some(p.name_any().as_str())),
            )
        }
    })
    .reconcile_all_on(elected())
    .run(reconcile_partner, error_policy, ctx.clone());

    fn drive<K>(
        api: Api<K>,
        writer: reflector::store::Writer<K>,
        gone: Gone<K>,
        observe: impl Fn(&watcher::Event<K>) + Send + 'static,
    ) -> impl std::future::Future<Output = ()>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        watcher(api, watcher::Config::default())
            .default_backoff()
            // The caches need no managed fields: dropping them saves memory.
            .modify(|obj| obj.managed_fields_mut().clear())
            // Indexes follow the events before the store does.
            .inspect(move |event| {
                if let Ok(e) = event {
                    observe(e)
                }
            })
            .reflect_shared(writer)
            .for_each(move |event| {
                // After the reflector dropped the object from the store: mapped reconciles
                // see the store without it.
                if let Ok(watcher::Event::Delete(obj)) = event {
                    // Nobody listening is fine.
                    let _ = gone.send(Arc::new(obj));
                }
                async {}
            })
    }
    let reflectors = futures::future::join5(
        drive(partners_api, partners_w, partners_gone, |_| {}),
        drive(customers_api, customers_w, customers_gone, move |e| {
            namespace_index.observe(e)
        }),
        drive(delegations_api, delegations_w, delegations_gone, |_| {}),
        drive(decisions_api, decisions_w, decisions_gone, move |e| index.observe(e)),
        drive(namespaces_api, namespaces_w, namespaces_gone, |_| {}),
    );
    let readiness = async move {
        let _ = futures::future::join5(
            partners.wait_until_ready(),
            customers.wait_until_ready(),
            delegations.wait_until_ready(),
            decisions.wait_until_ready(),
            namespaces.wait_until_ready(),
        )
        .await;
        ready(ready_stores);
        futures::future::pending::<()>().await
    };
    let controllers = futures::future::join4(
        customers_ctrl.for_each(|_| async {}),
        decisions_ctrl.for_each(|_| async {}),
        delegations_ctrl.for_each(|_| async {}),
        partners_ctrl.for_each(|_| async {}),
    );
    tokio::select! {
        _ = shutdown => {}
        _ = reflectors => {}
        _ = controllers => {}
        _ = readiness.fuse() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 256]);
    }

    #[test]
    fn clear_removed_nulls_fields_at_every_depth() {
        let old = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let mut new = serde_json::json!({"b": {"c": 5}, "l": [1]});
        clear_removed(&mut new, &old);
        assert_eq!(new, serde_json::json!({"a": null, "b": {"c": 5, "d": null}, "l": [1]}));
    }
}
