//! The reconcilers: one kube-runtime `Controller` per kind, each writing only its own
//! objects' status. They share one watch per kind ([`reflectors`]) and are triggered through
//! named mappings over the shared stores ([`triggers`]), so that a change re-reconciles exactly
//! the objects it affects. This file only wires them.
//!
//! - [`customer`], [`restriction`], [`delegation`], [`partner`]: one reconciler per kind.
//! - [`freeze`]: what a customer's reconcile does to its resources (R8, R9), with one watch
//!   per guarded kind.
//! - [`audit`]: which of a customer's resources are out of line, in its status and in policy
//!   reports.
//! - [`status`]: the statuses they write, computed by pure functions.
//! - [`write`]: status patches and events; [`retry`]: spans, timers, backoff.
//! - [`context`]: what reconciles share, and the error type; [`metrics`].

pub mod audit;
pub mod context;
pub mod customer;
pub mod delegation;
pub mod freeze;
pub mod gate;
pub mod metrics;
pub mod partner;
pub mod reflectors;
pub mod restriction;
pub mod retry;
pub mod status;
pub mod triggers;
pub mod write;

pub use context::{Context, Error, MANAGER};
pub use metrics::{Kind, Metrics};

use crate::api::{CustomerAccount, Partner, PurchaseRestriction, ResellerDelegation};
use crate::index::{self, Stores};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};
use reflectors::Reflector;
use std::future::Future;
use std::sync::Arc;

/// What the controllers are configured with besides the cluster.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub freeze: freeze::Settings,
    pub audit: audit::Settings,
}

/// The customers to reconcile for a change of a guarded kind: those claiming its namespace
/// whose freeze or audit is in play (frozen, being frozen or unfrozen, restricted, with
/// findings, or the object carries a freeze record), or all such customers when a watch
/// (re)synced.
fn customers_of_change(stores: &Stores, changed: &freeze::kinds::Changed) -> Vec<ObjectRef<CustomerAccount>> {
    let in_play = |c: &CustomerAccount| {
        c.status.as_ref().is_some_and(|s| {
            s.freeze.as_ref().is_some_and(|f| f.unfrozen.is_none() || f.failed > 0)
                || s.decision
                    .as_ref()
                    .is_some_and(|d| purchase_guard_policy::RestrictionState::from(d.state).restricts_purchases())
                || s.audit.as_ref().is_some_and(|a| a.failures + a.warnings > 0)
        })
    };
    match changed {
        freeze::kinds::Changed::All => stores
            .customers
            .state()
            .iter()
            .filter(|c| in_play(c))
            .map(|c| triggers::key(c.as_ref()))
            .collect(),
        freeze::kinds::Changed::Namespace { namespace, frozen } => stores
            .customers_in_namespace(namespace)
            .iter()
            .filter(|c| *frozen || in_play(c))
            .map(|c| triggers::key(c.as_ref()))
            .collect(),
    }
}

/// Bounded concurrency: a cold start with thousands of objects queues reconciles instead of
/// running them all at once (memory, and fairness to fresh changes).
fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(16)
}

/// The reconcile requests a trigger mapping over the stores makes of a stream of changes.
///
/// Requests go in through `reconcile_on` (behind a [`gate::Gate`]), not
/// `watches_shared_stream`: kube-runtime records the cause of a related-object request as a
/// boxed reference to the related object with its whole API resource (group, version, kind,
/// plural, each a string), and nothing reads it.
fn mapped<T, R, I>(
    changes: impl futures::Stream<Item = Arc<T>> + Send + 'static,
    stores: &Stores,
    map: fn(&Stores, &T) -> I,
) -> Trigger<R>
where
    T: Send + Sync + 'static,
    R: Resource + Send + 'static,
    I: IntoIterator<Item = ObjectRef<R>> + 'static,
    I::IntoIter: Send,
{
    let stores = stores.clone();
    changes
        .flat_map(move |obj| futures::stream::iter(map(&stores, &obj)))
        .boxed()
}

/// A stream of reconcile requests.
type Trigger<K> = futures::stream::BoxStream<'static, ObjectRef<K>>;

/// Every object of the store, each time `on` yields: what kube-runtime's `reconcile_all_on`
/// does, through the gate.
fn everything_on<K>(on: impl futures::Stream<Item = ()> + Send + 'static, store: &Store<K>) -> Trigger<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let store = store.clone();
    on.flat_map(move |()| futures::stream::iter(triggers::refs(store.state())))
        .boxed()
}

/// Yields every `period`, the first time one period from now (a tick missed while the
/// consumer was busy is not made up in a burst).
fn every(period: std::time::Duration) -> impl futures::Stream<Item = ()> + Send + 'static {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    })
}

/// The controller of the objects of a shared store, run until its streams end: each object is
/// reconciled by `reconcile` (wrapped by [`with_retry`]) when the store applied a change of it,
/// when any of `triggers` names it, and, all of them, each time `elected` yields. Requests go
/// through a [`gate::Gate`] (see [`gate`] for why), which each reconcile that ended releases.
/// See [`triggers::key`] for what a request holds.
fn reconciled<K, Fut, E>(
    reflector: &Reflector<K>,
    mut triggers: Vec<Trigger<K>>,
    elected: E,
    kind: Kind,
    reconcile: fn(Arc<K>, Arc<Context>) -> Fut,
    ctx: Arc<Context>,
) -> impl Future<Output = ()> + use<K, Fut, E>
where
    E: futures::Stream<Item = ()> + Send + 'static,
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    triggers.insert(0, reflector.applied().map(|obj| triggers::key(obj.as_ref())).boxed());
    triggers.push(everything_on(elected, &reflector.store));
    let gate = gate::Gate::new();
    Controller::for_shared_stream(futures::stream::empty(), reflector.store.clone())
        .with_config(controller_config())
        .reconcile_on(gate.requests(triggers))
        .run(with_retry(kind, reconcile), retry::error_policy, ctx)
        .for_each(move |output| {
            gate.finished_with(&output);
            futures::future::ready(())
        })
}

/// A reconcile in progress.
type Reconcile = std::pin::Pin<Box<dyn Future<Output = Result<Action, Error>> + Send>>;

/// Each reconciler wrapped by [`retry::reconcile`]: leader only, a span, a timer.
fn with_retry<K, Fut>(
    kind: Kind,
    inner: fn(Arc<K>, Arc<Context>) -> Fut,
) -> impl FnMut(Arc<K>, Arc<Context>) -> Reconcile
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |obj, ctx| Box::pin(retry::reconcile(kind, obj, ctx, inner))
}

/// Runs every controller until `shutdown` resolves. `ready` is called once all caches synced,
/// with the caches (the admission webhooks read them).
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    settings: Settings,
    leader: tokio::sync::watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Stores) + Send + 'static,
) -> Result<(), Error> {
    let partners = Reflector::<Partner>::default();
    let customers = Reflector::<CustomerAccount>::default();
    let delegations = Reflector::<ResellerDelegation>::default();
    let decisions = Reflector::<PurchaseRestriction>::default();
    let namespaces = Reflector::<Namespace>::default();
    let decisions_by_customer = Arc::new(index::DecisionIndex::default());
    let customers_by_namespace = Arc::new(index::NamespaceIndex::default());
    let stores = Stores {
        partners: partners.store.clone(),
        customers: customers.store.clone(),
        delegations: delegations.store.clone(),
        decisions: decisions.store.clone(),
        decisions_by_customer: decisions_by_customer.clone(),
        customers_by_namespace: customers_by_namespace.clone(),
        namespaces: namespaces.store.clone(),
        hierarchy: Default::default(),
        admission: Default::default(),
        first_seen: Default::default(),
        progress: Arc::new(tokio::sync::watch::channel(0).0),
    };
    metrics.set_customer_store(customers.store.clone());
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
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
    let (synced_tx, synced) = tokio::sync::watch::channel(false);
    let freezer = Arc::new(freeze::Freezer::new(settings.freeze));
    let auditor = Arc::new(audit::Auditor::new(settings.audit));
    // Where objects of the freezable kinds change: the customers whose freeze is in play there
    // are reconciled (drift correction, resources created while frozen, stragglers to restore).
    let (changed_tx, changed_rx) = tokio::sync::mpsc::unbounded_channel();
    let freeze_triggers = {
        let stores = stores.clone();
        futures::stream::unfold(changed_rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
            .flat_map(move |changed| futures::stream::iter(customers_of_change(&stores, &changed)))
    };
    let ctx = Arc::new(Context {
        failures: Default::default(),
        leader: leader.clone(),
        synced,
        metrics,
        client: client.clone(),
        stores: stores.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        freezer: freezer.clone(),
        auditor: auditor.clone(),
        now: jiff::Timestamp::now,
    });
    let s = &stores;
    use triggers::*;

    // The audit's sweep: every customer, every interval, through the gate. One timer rather
    // than a requeue per customer, which kube-runtime would hold as an entry of its delay queue
    // and of its map of scheduled objects for each of them (about 5 MB at 10,000 customers).
    let sweep = match auditor.settings.interval {
        Some(period) => everything_on(every(period), &customers.store),
        None => futures::stream::empty().boxed(),
    };
    let customers_ctrl = reconciled(
        &customers,
        vec![
            mapped(decisions.changes(), s, customer_of_decision),
            mapped(delegations.spec_changes(), s, customers_of_delegation),
            mapped(partners.spec_changes(), s, customers_of_partner),
            mapped(namespaces.changes(), s, customers_of_namespace),
            freeze_triggers.boxed(),
            sweep,
        ],
        elected(),
        Kind::CustomerAccount,
        customer::reconcile,
        ctx.clone(),
    );
    let decisions_ctrl = reconciled(
        &decisions,
        vec![
            // A decision is judged under its customer's association: its number is in the status.
            mapped(
                customers
                    .spec_changes_and(|c| c.status.as_ref().and_then(|s| s.association.as_ref()).map(|a| a.number)),
                s,
                decisions_of_customer,
            ),
            mapped(decisions.changes(), s, decisions_beside),
            mapped(delegations.spec_changes(), s, decisions_of_delegation),
            mapped(partners.spec_changes(), s, decisions_of_partner),
        ],
        elected(),
        Kind::PurchaseRestriction,
        restriction::reconcile,
        ctx.clone(),
    );
    let delegations_ctrl = reconciled(
        &delegations,
        vec![
            mapped(delegations.spec_changes(), s, delegations_of_reseller),
            mapped(partners.spec_changes(), s, delegations_of_partner),
        ],
        elected(),
        Kind::ResellerDelegation,
        delegation::reconcile,
        ctx.clone(),
    );
    let partners_ctrl = reconciled(
        &partners,
        vec![
            mapped(namespaces.spec_changes(), s, partners_in_namespace),
            mapped(delegations.spec_changes(), s, reseller_of_delegation),
            mapped(partners.spec_changes(), s, resellers_of_partner),
        ],
        elected(),
        Kind::Partner,
        partner::reconcile,
        ctx.clone(),
    );

    // After each event a watch applied: the hierarchy is rebuilt when partners or delegations
    // change, the purchase webhook's prepared answers that read the object are outdated, and
    // then whoever waits for the caches to catch up looks again.
    fn advanced<K: 'static>(
        stores: &Stores,
        outdated: fn(&Stores, &kube::runtime::watcher::Event<K>),
    ) -> impl Fn(&kube::runtime::watcher::Event<K>) + Send + 'static {
        let stores = stores.clone();
        move |event| {
            outdated(&stores, event);
            stores.advanced();
        }
    }
    let watches = futures::future::join5(
        partners.run(
            Api::all(client.clone()),
            |_| {},
            advanced(&stores, index::outdated::hierarchy),
        ),
        customers.run(
            Api::all(client.clone()),
            move |e| customers_by_namespace.observe(e),
            advanced(&stores, index::outdated::customer),
        ),
        delegations.run(
            Api::all(client.clone()),
            |_| {},
            advanced(&stores, index::outdated::hierarchy),
        ),
        decisions.run(
            Api::all(client.clone()),
            move |e| decisions_by_customer.observe(e),
            advanced(&stores, index::outdated::decision),
        ),
        namespaces.run(
            Api::all(client.clone()),
            |_| {},
            advanced(&stores, index::outdated::namespace),
        ),
    );
    let ready_stores = stores.clone();
    let readiness = async move {
        ready_stores.wait_until_ready().await;
        // Reconciles wait for this, not for the stores: many waiters on a store can hang.
        let _ = synced_tx.send(true);
        ready(ready_stores);
        futures::future::pending::<()>().await
    };
    let controllers = futures::future::join4(customers_ctrl, decisions_ctrl, delegations_ctrl, partners_ctrl);
    let freeze_watches = futures::future::join(
        freezer.run(client.clone(), changed_tx.clone()),
        auditor.run(client.clone(), changed_tx),
    );
    tokio::select! {
        _ = shutdown => {}
        _ = freeze_watches => {}
        _ = watches => {}
        _ = controllers => {}
        _ = readiness.fuse() => {}
    }
    Ok(())
}
