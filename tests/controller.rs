//! The controller against the sandbox: a partner hierarchy from manifests, and the rules R1,
//! R2, R3 made true in status conditions and events.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use purchase_guard::api::*;
use purchase_guard::controller::{self, Kind, Metrics};
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits until `check` holds, polling; fails with `what` after 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs `f` when dropped during a panic: shows the state behind a failed wait.
struct Guard<F: FnMut()>(F);
impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}
fn scopeguard<F: FnMut()>(f: F) -> Guard<F> {
    Guard(f)
}

struct Env {
    sandbox: Sandbox,
    client: Client,
    metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), controller::Error>>>,
}

impl Env {
    async fn start() -> Env {
        let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
        let client = Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in purchase_guard::crdgen::all() {
            crds.create(&PostParams::default(), &crd).await.expect("CRD created");
        }
        for crd in purchase_guard::crdgen::all() {
            let name = crd.name_any();
            eventually(&format!("{name} is established"), || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    crds.get(&name)
                        .await
                        .ok()
                        .and_then(|c| c.status)
                        .and_then(|s| s.conditions)
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
                }
            })
            .await;
        }
        let mut env = Env {
            sandbox,
            client,
            metrics: Arc::new(Metrics::default()),
            stop: None,
            task: None,
        };
        env.start_controller();
        env
    }

    fn start_controller(&mut self) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        self.task = Some(tokio::spawn(controller::run(
            client,
            metrics,
            controller::Settings {
                freeze: purchase_guard::runtime::freeze_settings(
                    &purchase_guard::webhook::Settings::default(),
                    purchase_guard::controller::freeze::DEFAULT_RETENTION,
                    false,
                ),
                ..Default::default()
            },
            tokio::sync::watch::channel(true).1,
            async move {
                let _ = stopped.await;
            },
            |_| {},
        )));
        self.stop = Some(stop);
    }

    async fn namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        api.create(&PostParams::default(), &ns).await.expect("namespace");
    }

    async fn apply<K>(&self, api: &Api<K>, value: serde_json::Value)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let obj: K = serde_json::from_value(value).expect("a valid object");
        api.create(&PostParams::default(), &obj).await.expect("created");
    }

    fn customers(&self) -> Api<CustomerAccount> {
        Api::all(self.client.clone())
    }

    fn decisions(&self, ns: &str) -> Api<PurchaseRestriction> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Waits for a customer's PurchaseRestricted condition with the given status and reason.
    async fn restricted(&self, customer: &str, status: &str, reason: &str) -> CustomerAccount {
        let api = self.customers();
        let debug = api.clone();
        let name = customer.to_string();
        let _guard = scopeguard(move || {
            let debug = debug.clone();
            let name = name.clone();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    if let Ok(c) = debug.get(&name).await {
                        eprintln!(
                            "customer {name} at failure: {}",
                            serde_json::to_string_pretty(&c.status).unwrap_or_default()
                        );
                    }
                })
            });
        });
        eventually(&format!("{customer} PurchaseRestricted={status} ({reason})"), || {
            let api = api.clone();
            async move {
                api.get(customer).await.ok().and_then(|c| c.status).is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "PurchaseRestricted" && c.status == status && c.reason == reason)
                })
            }
        })
        .await;
        api.get(customer).await.expect("customer")
    }

    async fn authority(&self, customer: &str, partner: &str) {
        let api = self.customers();
        eventually(&format!("{partner} holds authority over {customer}"), || {
            let api = api.clone();
            async move {
                api.get(customer)
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .and_then(|s| s.authority)
                    .is_some_and(|a| a.partner == partner)
            }
        })
        .await;
    }

    async fn accepted(&self, ns: &str, name: &str, status: &str, reason: &str) {
        let api = self.decisions(ns);
        eventually(&format!("{ns}/{name} Accepted={status} ({reason})"), || {
            let api = api.clone();
            async move {
                api.get(name).await.ok().and_then(|d| d.status).is_some_and(|s| {
                    s.observed_generation == s.conditions.first().and_then(|c| c.observed_generation)
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Accepted" && c.status == status && c.reason == reason)
                })
            }
        })
        .await;
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.sandbox.shutdown().await;
    }
}

fn decision(name: &str, ns: &str, customer: &str, state: &str, reason: &str) -> serde_json::Value {
    json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"customer": customer, "state": state, "reason": reason}})
}

async fn set_state(api: &Api<PurchaseRestriction>, name: &str, state: &str, reason: &str) {
    let patch = json!({"spec": {"state": state, "reason": reason}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("decision changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_hold_in_status_conditions() {
    let env = Env::start().await;
    for ns in ["dist-a", "r1", "r2", "c1"] {
        env.namespace(ns).await;
    }
    let partners: Api<Partner> = Api::all(env.client.clone());
    env.apply(&partners, json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "dist-a"}, "spec": {"role": "Distributor", "namespace": "dist-a"}})).await;
    env.apply(&partners, json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "r1"}, "spec": {"role": "Reseller", "distributor": "dist-a", "namespace": "r1"}})).await;
    env.apply(&partners, json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "r2"}, "spec": {"role": "Reseller", "distributor": "dist-a", "namespace": "r2"}})).await;
    env.apply(&env.customers(), json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount", "metadata": {"name": "c1"}, "spec": {"associationModel": "Reseller", "reseller": "r1", "namespaces": ["c1"]}})).await;
    env.apply(&env.customers(), json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount", "metadata": {"name": "ref"}, "spec": {"associationModel": "Referral"}})).await;

    // R1: restricted by default on association; the distributor holds authority (R2).
    env.restricted("c1", "True", "DefaultOnAssociation").await;
    env.authority("c1", "dist-a").await;
    let c1 = env.restricted("c1", "True", "DefaultOnAssociation").await;
    let status = c1.status.expect("status");
    assert_eq!(status.observed_generation, Some(1));
    let message = &status.conditions[0].message;
    assert!(
        message.contains("(R1)") && message.contains("distributor \"dist-a\" can lift it"),
        "{message}"
    );
    env.restricted("ref", "False", "NotInResellerModel").await;

    // The real kubectl waits on the condition.
    let kubeconfig = std::env::temp_dir().join(format!("pg-controller-{}.kubeconfig", std::process::id()));
    env.sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let waited = std::process::Command::new("kubectl")
        .args([
            "wait",
            "--for=condition=PurchaseRestricted=true",
            "customeraccount/c1",
            "--timeout=20s",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(waited.status.success(), "{}", String::from_utf8_lossy(&waited.stderr));
    let _ = std::fs::remove_file(&kubeconfig);

    // The distributor lifts the restriction, then restricts again with a new reason.
    let dist = env.decisions("dist-a");
    env.apply(
        &dist,
        decision("c1", "dist-a", "c1", "Unrestricted", "credit check passed"),
    )
    .await;
    let c1 = env.restricted("c1", "False", "UnrestrictedByDistributor").await;
    let first_transition = c1.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "PurchaseRestricted")
            .map(|c| c.last_transition_time.clone())
    });
    set_state(&dist, "c1", "Restricted", "invoice 42 overdue").await;
    let c1 = env.restricted("c1", "True", "RestrictedByDistributor").await;
    let condition = c1
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "PurchaseRestricted").cloned())
        .expect("condition");
    assert!(
        condition.message.contains("dist-a") && condition.message.contains("invoice 42 overdue"),
        "{}",
        condition.message
    );
    assert!(Some(condition.last_transition_time.clone()) >= first_transition);
    let history = c1.status.as_ref().map(|s| s.history.clone()).unwrap_or_default();
    assert_eq!(
        history.iter().map(|h| h.reason.as_str()).collect::<Vec<_>>(),
        [
            "restricted by default on association (R1)",
            "credit check passed",
            "invoice 42 overdue"
        ]
    );

    // Events name the issuer and the reason.
    let events: Api<Event> = Api::all(env.client.clone());
    eventually("an event for the restriction of c1", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("RestrictedByDistributor")
                        && e.note.as_deref().is_some_and(|n| n.contains("invoice 42 overdue"))
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("c1")
                })
        }
    })
    .await;

    // R3: a delegation moves authority; the distributor's decision stays in force.
    let delegations: Api<ResellerDelegation> = Api::namespaced(env.client.clone(), "dist-a");
    env.apply(&delegations, json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "ResellerDelegation", "metadata": {"name": "to-r1", "namespace": "dist-a"}, "spec": {"reseller": "r1"}})).await;
    env.authority("c1", "r1").await;
    env.restricted("c1", "True", "RestrictedByDistributor").await;

    // A change by the distributor (bypassing admission) is not accepted and changes nothing.
    set_state(&dist, "c1", "Unrestricted", "trying after delegation").await;
    env.accepted("dist-a", "c1", "False", "AuthorityDelegated").await;
    env.restricted("c1", "True", "RestrictedByDistributor").await;
    // A decision by a reseller outside the customer's hierarchy is not accepted either.
    let r2 = env.decisions("r2");
    env.apply(&r2, decision("c1", "r2", "c1", "Unrestricted", "not mine"))
        .await;
    env.accepted("r2", "c1", "False", "OutsideHierarchy").await;
    env.restricted("c1", "True", "RestrictedByDistributor").await;

    // The reseller decides: its decision is in force.
    let r1 = env.decisions("r1");
    env.apply(&r1, decision("c1", "r1", "c1", "Unrestricted", "paid in full"))
        .await;
    env.restricted("c1", "False", "UnrestrictedByReseller").await;

    // Revoking the delegation returns authority; the reseller's decision stands.
    delegations
        .delete("to-r1", &DeleteParams::default())
        .await
        .expect("revoked");
    env.authority("c1", "dist-a").await;
    env.restricted("c1", "False", "UnrestrictedByReseller").await;

    // Deleting decisions falls back: the distributor's accepted decision, then the R1 default.
    r1.delete("c1", &DeleteParams::default()).await.expect("deleted");
    env.restricted("c1", "True", "RestrictedByDistributor").await;
    dist.delete("c1", &DeleteParams::default()).await.expect("deleted");
    env.restricted("c1", "True", "DefaultOnAssociation").await;

    // Quiet in steady state: after a forced resync (every watch relists), no writes at all.
    let resources = [
        "purchaseguard.io/customeraccounts",
        "purchaseguard.io/purchaserestrictions",
        "purchaseguard.io/resellerdelegations",
        "purchaseguard.io/partners",
    ];
    let writes = |sandbox: &Sandbox| {
        resources
            .iter()
            .map(|r| sandbox.server.store.lock().writes_of(r))
            .sum::<u64>()
    };
    let before_writes = writes(&env.sandbox);
    let before_per: Vec<(String, u64)> = resources
        .iter()
        .map(|r| (r.to_string(), env.sandbox.server.store.lock().writes_of(r)))
        .collect();
    eprintln!("before: {before_per:?}");
    let snapshot_before: Vec<String> = env
        .customers()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| serde_json::to_string(&c.status).unwrap_or_default())
        .collect();
    let before: Vec<u64> = Kind::ALL.iter().map(|&k| env.metrics.reconciles_of(k)).collect();
    env.sandbox.server.store.pause_watches();
    env.sandbox.server.store.close_watches();
    env.sandbox.server.store.lock().compact();
    env.sandbox.server.store.resume_watches();
    let expected = [2u64, 1, 0, 3]; // customers, decisions (r2's), delegations, partners
    let metrics = env.metrics.clone();
    eventually("every object is reconciled again after the relist", || {
        let metrics = metrics.clone();
        let before = before.clone();
        async move {
            Kind::ALL
                .iter()
                .enumerate()
                .all(|(i, &k)| metrics.reconciles_of(k) >= before[i] + expected[i])
        }
    })
    .await;
    let snapshot_after: Vec<String> = env
        .customers()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| serde_json::to_string(&c.status).unwrap_or_default())
        .collect();
    if snapshot_after != snapshot_before {
        eprintln!("BEFORE {snapshot_before:#?}\nAFTER {snapshot_after:#?}");
    }
    let per_resource: Vec<(String, u64)> = resources
        .iter()
        .map(|r| (r.to_string(), env.sandbox.server.store.lock().writes_of(r)))
        .collect();
    assert_eq!(
        writes(&env.sandbox),
        before_writes,
        "a settled system is written to after a resync: {per_resource:?}"
    );
    env.shutdown().await;
}

/// A reconcile started from a cache that has not yet seen a newer status write (the
/// controller's own, or another replica's) must not overwrite it: its counts, history and
/// first-seen times were computed from the older version. The write is refused as a conflict
/// (retried, not counted as a failure) and the newer status stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_computed_from_a_stale_read_is_never_written() {
    let mut env = Env::start().await;
    let customers = env.customers();
    env.apply(
        &customers,
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
            "metadata": {"name": "stale"}, "spec": {"associationModel": "Referral"}}),
    )
    .await;
    // The controller evaluated it; then it stops, so that only the writes below happen.
    env.restricted("stale", "False", "NotInResellerModel").await;
    if let Some(stop) = env.stop.take() {
        let _ = stop.send(());
    }
    if let Some(task) = env.task.take() {
        let _ = task.await;
    }
    // The version a slow reconcile read.
    let read = customers.get("stale").await.expect("customer");
    let stale_status = read.status.clone().expect("a status");

    // Meanwhile a newer status is written (as by a reconcile that released resources).
    let newer = json!({"status": {"freeze": {"since": "2026-11-27T07:49:06Z",
        "retentionEnds": "2026-11-27T07:49:09Z", "frozen": 0, "releaseDue": 0, "released": 5,
        "restored": 0, "failed": 0}}});
    customers
        .patch_status("stale", &PatchParams::default(), &Patch::Merge(&newer))
        .await
        .expect("newer status written");

    // The slow reconcile computes from what it read and tries to write.
    let mut from_stale = stale_status.clone();
    from_stale.history.clear();
    let metrics = Metrics::default();
    let outcome = controller::write::write_status(
        &metrics,
        Kind::CustomerAccount,
        &customers,
        &read,
        Some(&stale_status),
        &from_stale,
    )
    .await;
    assert!(matches!(outcome, Err(controller::Error::Conflict)), "{outcome:?}");
    assert_eq!(
        metrics.status_writes_of(Kind::CustomerAccount, controller::metrics::WriteOutcome::Conflict),
        1
    );
    let now = customers.get("stale").await.expect("customer");
    let status = now.status.expect("a status");
    assert_eq!(
        status.freeze.map(|f| f.released),
        Some(5),
        "the newer status was overwritten"
    );
    assert_eq!(status.history, stale_status.history, "the history was overwritten");
    env.shutdown().await;
}
