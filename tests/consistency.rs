//! How current the purchase webhook's view is: two replicas, each with its own watches and
//! caches, judging purchases right after a restriction's write returned.
//!
//! - linearizable mode: 1,000 rounds of "restrict, then buy at once from another client",
//!   alternating replicas; no purchase is admitted after the restriction's write returned;
//! - with the watches held back (a partitioned replica): cached mode admits such a purchase
//!   (the race this suite exists to catch), linearizable mode refuses it as unknown;
//! - cached mode fails closed once the caches were not confirmed current for longer than the
//!   bound, and trusts them again after a confirmation.

mod support;

use kube::api::{Api, Patch, PatchParams};
use purchase_guard::api::PurchaseRestriction;
use purchase_guard::index::Freshness;
use purchase_guard::webhook::server::{Which, review_body};
use purchase_guard::webhook::settings::Freshness as FreshnessSettings;
use purchase_guard::webhook::{Consistency, Settings, Webhooks};
use purchase_guard_sandbox::Sandbox;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A replica: its own client, watches, caches and webhooks.
struct Replica {
    webhooks: Arc<Webhooks>,
    freshness: Arc<Freshness>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// A replica in `consistency` mode; `check_timeout` bounds its confirmations.
async fn replica(
    sandbox: &Sandbox,
    consistency: Consistency,
    max_staleness: Duration,
    check_timeout: Duration,
) -> Replica {
    let client = support::sandbox_client(sandbox);
    // Not the leader: caches only, as every replica but one.
    let (stores, stop) = support::follower_caches(client.clone()).await;
    let settings = FreshnessSettings {
        consistency,
        max_staleness,
        check_interval: Duration::from_secs(3600),
        check_timeout,
    };
    let webhooks = Arc::new(Webhooks::new(Settings {
        freshness: settings,
        ..Settings::default()
    }));
    let freshness = Arc::new(Freshness::new(client, stores.clone(), settings.check_timeout));
    webhooks.set_stores(stores);
    webhooks.set_freshness(freshness.clone());
    freshness
        .check_now()
        .await
        .expect("the caches are current after the sync");
    Replica {
        webhooks,
        freshness,
        stop,
    }
}

/// The examples' partners and customers: initech is unrestricted by dist-emea's decision.
async fn platform(test: &str) -> (Sandbox, std::path::PathBuf) {
    support::examples_sandbox(
        test,
        &[
            "00-namespaces.yaml",
            "01-partners.yaml",
            "03-customers.yaml",
            "04-delegation.yaml",
            "05-restrictions.yaml",
        ],
    )
    .await
}

/// Waits until a confirmation succeeds (the watches resumed and relisted).
async fn caught_up(replica: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = replica.freshness.check_now().await {
        assert!(Instant::now() < deadline, "the caches never caught up: {e}");
    }
}

/// A tenant creating a pay-per-use VM in initech's namespace.
fn purchase(round: usize) -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": format!("uid-{round}"),
        "kind": {"group": "compute.example.com", "version": "v1", "kind": "VirtualMachine"},
        "resource": {"group": "compute.example.com", "version": "v1", "resource": "virtualmachines"},
        "name": format!("vm-{round}"), "namespace": "initech", "operation": "CREATE",
        "userInfo": {"username": "tenant", "groups": ["system:authenticated"]},
        "object": {"apiVersion": "compute.example.com/v1", "kind": "VirtualMachine",
                   "metadata": {"name": format!("vm-{round}"), "namespace": "initech",
                                "labels": {"purchaseguard.io/billing-mode": "pay-per-use"}},
                   "spec": {"displayName": "vm", "flavor": "c6.large", "cpus": 2, "memoryGiB": 4, "image": "debian-12"}},
        "oldObject": null, "dryRun": false, "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    }})
    .to_string()
    .into_bytes()
}

/// The purchase webhook's answer: allowed, and the reason.
async fn judge(replica: &Replica, round: usize) -> (bool, String) {
    let reply = review_body(
        &replica.webhooks,
        &purchase_guard::webhook::Metrics::default(),
        Which::Purchases,
        &purchase(round),
    )
    .await;
    assert_eq!(reply.status, 200);
    let review: Value = serde_json::from_slice(&reply.body).expect("an AdmissionReview");
    let response = &review["response"];
    let allowed = response["allowed"].as_bool().expect("allowed is a boolean");
    let reason = response["status"]["details"]["causes"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (allowed, reason)
}

async fn set_state(api: &Api<PurchaseRestriction>, state: &str, round: usize) {
    let patch = json!({"spec": {"state": state, "reason": format!("Round {round}: {state} after the invoice check")}});
    api.patch("initech", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("dist-emea changes its decision");
}

/// Ends every watch and holds new ones back (a partition between the replicas and the API
/// server), then restricts initech: the replicas' caches do not see it until watches resume.
async fn restrict_behind_the_watches(sandbox: &Sandbox) {
    sandbox.server.store.pause_watches();
    sandbox.server.store.close_watches();
    set_state(
        &Api::namespaced(support::sandbox_client(sandbox), "dist-emea"),
        "Restricted",
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_mode_admits_no_purchase_after_a_restriction() {
    let (sandbox, _kubeconfig) = platform("race").await;
    // A generous bound: under load, a wait past it would refuse as "unknown" rather than
    // "restricted", which is still a refusal but not what this test checks.
    let linearizable = || {
        replica(
            &sandbox,
            Consistency::Linearizable,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
    };
    let replicas = [linearizable().await, linearizable().await];
    // The writer is another client than the replicas'.
    let decisions: Api<PurchaseRestriction> = Api::namespaced(support::sandbox_client(&sandbox), "dist-emea");
    let (allowed, reason) = judge(&replicas[0], 0).await;
    assert!(allowed, "initech starts unrestricted: {reason}");
    const ROUNDS: usize = 1000;
    let mut admitted = Vec::new();
    let mut waits = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        set_state(&decisions, "Restricted", round).await;
        // The restriction's write returned: buy at once, from the other side.
        let started = Instant::now();
        let (allowed, reason) = judge(&replicas[round % 2], round).await;
        waits.push(started.elapsed());
        if allowed {
            admitted.push(round);
        } else {
            assert_eq!(reason, "CustomerRestricted", "round {round}");
        }
        set_state(&decisions, "Unrestricted", round).await;
    }
    waits.sort();
    eprintln!(
        "{ROUNDS} rounds: purchases judged in p50 {:?}, p99 {:?}, max {:?} after the restriction's write returned",
        waits[ROUNDS / 2],
        waits[ROUNDS * 99 / 100],
        waits[ROUNDS - 1]
    );
    assert!(
        admitted.is_empty(),
        "purchases admitted after the restriction's write returned, in rounds {admitted:?}"
    );
    // After the last lift, a purchase is admitted again once the caches show it (a refusal
    // never waits for the caches: a replica behind may refuse until its watch delivers the
    // lift, so the test waits for that first).
    replicas[1]
        .freshness
        .ensure_for("initech", "initech")
        .await
        .expect("the replica's caches catch up");
    let (allowed, reason) = judge(&replicas[1], ROUNDS).await;
    assert!(allowed, "initech is unrestricted again: {reason}");
    for r in replicas {
        let _ = r.stop.send(());
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_replica_admits_in_cached_mode_and_refuses_in_linearizable_mode() {
    let (sandbox, _kubeconfig) = platform("partitioned").await;
    let timeout = Duration::from_millis(500);
    let cached = replica(&sandbox, Consistency::Cached, Duration::from_secs(30), timeout).await;
    let linearizable = replica(&sandbox, Consistency::Linearizable, Duration::from_secs(30), timeout).await;
    // The replicas' watches end and cannot come back: their caches stop at this point.
    restrict_behind_the_watches(&sandbox).await;

    // Cached mode trusts its confirmation of a moment ago: the purchase gets through. This is
    // the race the linearizable test above would catch.
    let (allowed, _) = judge(&cached, 1).await;
    assert!(
        allowed,
        "a cached replica cut off from its watches admits the purchase (if this fails, the test no longer shows what it guards against)"
    );
    // Linearizable mode sees the restriction in the quorum read, waits for its watches, and
    // refuses when they do not deliver in time.
    let started = Instant::now();
    let (allowed, reason) = judge(&linearizable, 2).await;
    assert!(!allowed, "the linearizable replica refuses");
    assert_eq!(reason, "CustomerStateUnknown");
    assert!(started.elapsed() >= timeout, "it waited for its watches");

    // The watches come back: both replicas refuse as restricted.
    sandbox.server.store.resume_watches();
    caught_up(&linearizable).await;
    let (allowed, reason) = judge(&linearizable, 3).await;
    assert!(!allowed);
    assert_eq!(reason, "CustomerRestricted");
    caught_up(&cached).await;
    let (allowed, reason) = judge(&cached, 4).await;
    assert!(!allowed);
    assert_eq!(reason, "CustomerRestricted");
    for r in [cached, linearizable] {
        let _ = r.stop.send(());
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_mode_fails_closed_when_its_caches_are_not_confirmed() {
    let (sandbox, _kubeconfig) = platform("staleness").await;
    let bound = Duration::from_secs(1);
    let replica = replica(&sandbox, Consistency::Cached, bound, Duration::from_millis(500)).await;
    let (allowed, reason) = judge(&replica, 0).await;
    assert!(allowed, "confirmed a moment ago: {reason}");
    assert_eq!(replica.webhooks.staleness(), None);
    // The watches go silent and confirmations fail.
    restrict_behind_the_watches(&sandbox).await;
    assert!(replica.freshness.check_now().await.is_err(), "the check sees the lag");
    // Past the bound, purchases are refused as unknown (the time passing is the subject).
    tokio::time::sleep(bound + Duration::from_millis(50)).await;
    let (allowed, reason) = judge(&replica, 1).await;
    assert!(!allowed);
    assert_eq!(reason, "CustomerStateUnknown");
    let why = replica.webhooks.staleness().expect("stale");
    assert!(why.contains("last confirmed current"), "{why}");
    // The watches resume; one confirmation and the replica judges from its caches again.
    sandbox.server.store.resume_watches();
    caught_up(&replica).await;
    assert_eq!(replica.webhooks.staleness(), None);
    let (allowed, reason) = judge(&replica, 2).await;
    assert!(!allowed);
    assert_eq!(reason, "CustomerRestricted");
    let _ = replica.stop.send(());
    sandbox.shutdown().await;
}

/// A check reads its lists by pages (so that its memory does not grow with every object's
/// metadata): a restriction the caches have not seen is found on the last of several pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_finds_a_lag_on_any_page_of_a_long_list() {
    let (sandbox, _kubeconfig) = platform("pages").await;
    // 1,200 decisions of other customers, sorted before initech's: three pages of 500.
    for i in 0..1_200 {
        sandbox
            .server
            .apply_object(
                json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
                    "metadata": {"name": format!("a-{i:04}"), "namespace": "dist-emea"},
                    "spec": {"customer": format!("other-{i}"), "state": "Restricted", "reason": "Overdue"}}),
                "test",
            )
            .expect("decision loaded");
    }
    let replica = replica(
        &sandbox,
        Consistency::Cached,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await;
    replica.freshness.check_now().await.expect("current");
    restrict_behind_the_watches(&sandbox).await;
    let lag = replica.freshness.check_now().await.expect_err("the check sees the lag");
    assert!(lag.to_string().contains("dist-emea/initech"), "{lag}");
    sandbox.server.store.resume_watches();
    caught_up(&replica).await;
    // A decision deleted behind the watches, from the middle of the second page: the caches
    // still have it, which is a lag too, until the watches deliver the deletion.
    sandbox.server.store.pause_watches();
    sandbox.server.store.close_watches();
    let decisions: Api<PurchaseRestriction> = Api::namespaced(support::sandbox_client(&sandbox), "dist-emea");
    decisions
        .delete("a-0700", &kube::api::DeleteParams::default())
        .await
        .expect("deleted");
    let lag = replica.freshness.check_now().await.expect_err("the check sees the lag");
    assert_eq!(
        lag.to_string(),
        "the caches did not catch up with the API server within 2000ms (PurchaseRestriction dist-emea/a-0700 was deleted, and the cache still has it)"
    );
    sandbox.server.store.resume_watches();
    caught_up(&replica).await;
    let _ = replica.stop.send(());
    sandbox.shutdown().await;
}
