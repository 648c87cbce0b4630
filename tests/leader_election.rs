//! Two `purchase-guard run` processes against one sandbox: exactly one leader; after the
//! leader is killed, the other takes over within the lease duration and the system converges,
//! also when the leader dies half-way through freezing hundreds of resources.

mod support;
use support::{free_port, population};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, PostParams};
use purchase_guard::api::{CustomerAccount, Partner, PurchaseRestriction};
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEASE_SECONDS: u64 = 4;

struct Replica {
    child: Child,
    identity: &'static str,
    port: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(kubeconfig: &std::path::Path, identity: &'static str) -> Replica {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_purchase-guard"))
        .args([
            "run",
            "--identity",
            identity,
            "--health-addr",
            &format!("127.0.0.1:{port}"),
            "--webhook-addr",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--lease-duration", &LEASE_SECONDS.to_string(), "--lease-grace", "1"])
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("purchase-guard runs");
    Replica { child, identity, port }
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut body)
        .await
        .ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok()))
}

async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sandbox with purchase-guard's CRDs, a client and a kubeconfig file for the replicas.
async fn sandbox_with_crds(name: &str) -> (Sandbox, Client, std::path::PathBuf) {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = population::client_with_crds(&sandbox).await;
    let kubeconfig = std::env::temp_dir().join(format!("pg-{name}-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    (sandbox, client, kubeconfig)
}

/// Who holds the leader Lease now.
async fn lease_holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases.get("purchase-guard").await.ok()?.spec?.holder_identity
}

async fn restricted(api: &Api<CustomerAccount>, name: &str) -> Option<String> {
    api.get(name)
        .await
        .ok()?
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "PurchaseRestricted")
        .map(|c| c.status.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_failover_within_the_lease_duration() {
    let (sandbox, client, kubeconfig) = sandbox_with_crds("leader").await;
    let mut replicas = vec![start(&kubeconfig, "replica-a"), start(&kubeconfig, "replica-b")];

    // Exactly one leader: the lease holder, and the only replica whose leader gauge is 1.
    let holder = || lease_holder(&client);
    eventually("a replica holds the lease", Duration::from_secs(20), || async {
        holder().await.is_some_and(|h| !h.is_empty())
    })
    .await;
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    eventually("both replicas report leadership", Duration::from_secs(20), || {
        let ports = ports.clone();
        async move {
            let mut gauges = Vec::new();
            for p in ports {
                gauges.push(metric(p, "purchase_guard_leader").await);
            }
            let mut values: Vec<f64> = gauges.into_iter().flatten().collect();
            values.sort_by(f64::total_cmp);
            values == [0.0, 1.0]
        }
    })
    .await;
    let leader = holder().await.expect("a holder");

    // The system works under the leader.
    for ns in ["dist", "r1"] {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("ns");
    }
    let partners: Api<Partner> = Api::all(client.clone());
    for p in [
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}}),
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "r1"}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": "r1"}}),
    ] {
        partners
            .create(&PostParams::default(), &serde_json::from_value(p).expect("partner"))
            .await
            .expect("partner");
    }
    let customers: Api<CustomerAccount> = Api::all(client.clone());
    customers
        .create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount", "metadata": {"name": "c1"}, "spec": {"associationModel": "Reseller", "reseller": "r1"}})).expect("c"))
        .await
        .expect("customer");
    eventually("c1 is restricted by default", Duration::from_secs(20), || async {
        restricted(&customers, "c1").await.as_deref() == Some("True")
    })
    .await;

    // Kill the leader without letting it release the lease.
    let index = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("the leader is one of ours");
    let killed = replicas.remove(index);
    drop(killed);
    let killed_at = Instant::now();

    // A change while nobody leads is reconciled once the other replica takes over.
    let decisions: Api<PurchaseRestriction> = Api::namespaced(client.clone(), "dist");
    decisions
        .create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction", "metadata": {"name": "c1", "namespace": "dist"}, "spec": {"customer": "c1", "state": "Unrestricted", "reason": "paid"}})).expect("d"))
        .await
        .expect("decision");
    let survivor = replicas[0].identity;
    eventually(
        "the survivor holds the lease",
        Duration::from_secs(LEASE_SECONDS * 3),
        || async { holder().await.as_deref() == Some(survivor) },
    )
    .await;
    // The killed leader renewed at most a lease duration ago; the survivor notices the expiry
    // at its next attempt, so the takeover is bounded by two lease durations.
    let takeover = killed_at.elapsed();
    eprintln!("takeover after the leader was killed: {takeover:?} (lease duration {LEASE_SECONDS}s)");
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS * 2),
        "takeover took {takeover:?}, lease duration {LEASE_SECONDS}s"
    );
    eventually(
        "the system converges under the new leader",
        Duration::from_secs(20),
        || async { restricted(&customers, "c1").await.as_deref() == Some("False") },
    )
    .await;
    drop(replicas);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// A Lease edited by hand (a label added with a merge patch, as `kubectl label` or `kubectl
/// patch` do) does not stop the next leader from taking it: the edit owns only the label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_passes_on_after_a_hand_edit_of_the_lease() {
    let (sandbox, client, kubeconfig) = sandbox_with_crds("leader-edit").await;
    let first = start(&kubeconfig, "replica-a");
    eventually("replica-a holds the lease", Duration::from_secs(20), || async {
        lease_holder(&client).await.as_deref() == Some("replica-a")
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .patch(
            "purchase-guard",
            &kube::api::PatchParams {
                field_manager: Some("kubectl-patch".into()),
                ..Default::default()
            },
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"audited": "yes"}}})),
        )
        .await
        .expect("label the lease");
    drop(first);
    let _second = start(&kubeconfig, "replica-b");
    eventually(
        "replica-b takes the lease over",
        Duration::from_secs(LEASE_SECONDS * 3),
        || async { lease_holder(&client).await.as_deref() == Some("replica-b") },
    )
    .await;
    let lease = leases.get("purchase-guard").await.expect("lease");
    assert_eq!(
        lease
            .metadata
            .labels
            .unwrap_or_default()
            .get("audited")
            .map(String::as_str),
        Some("yes"),
        "the hand edit is kept"
    );
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// Customers and resources of the failover test.
const CUSTOMERS: usize = 50;
const PER_CUSTOMER: usize = 10;

/// The replicas deployment `app-I` had when it was bought: 1 to 4.
fn bought_replicas(i: usize) -> i32 {
    (i % 4) as i32 + 1
}

/// The freeze record of a deployment, if it has one.
fn record_of(d: &Deployment) -> Option<serde_json::Value> {
    d.metadata
        .annotations
        .as_ref()?
        .get("purchaseguard.io/frozen")
        .map(|t| serde_json::from_str(t).expect("a record purchase-guard wrote"))
}

/// `app-I`'s I.
fn index_of(d: &Deployment) -> usize {
    let name = d.metadata.name.as_deref().expect("name");
    name.trim_start_matches("app-").parse().expect("app-N")
}

/// R8 exactly once: the leader is killed (SIGKILL) half-way through freezing 500 resources of
/// 50 customers; after failover every resource is frozen with its original replicas
/// remembered (a second freeze would have remembered 0), and the unfreeze restores all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_interrupted_by_a_leader_kill_completes_exactly_once_after_failover() {
    let (sandbox, client, kubeconfig) = sandbox_with_crds("freeze-failover").await;
    let names = population::populate(&client, CUSTOMERS, PER_CUSTOMER, bought_replicas).await;
    let total = CUSTOMERS * PER_CUSTOMER;

    let began = Instant::now();
    let mut replicas = vec![start(&kubeconfig, "replica-a"), start(&kubeconfig, "replica-b")];
    let holder = || lease_holder(&client);
    let all = |reason: &'static str| {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move { population::customers_with(&client, reason).await == CUSTOMERS }
        }
    };
    eventually(
        "the leader reconciled every customer",
        Duration::from_secs(60),
        all("NotFrozen"),
    )
    .await;
    let leader = holder().await.expect("a holder");
    eprintln!("{:?}: every customer reconciled", began.elapsed());

    // The distributor restricts and freezes every customer; the leader is killed as soon as
    // the first resource is frozen.
    let all_deployments: Api<Deployment> = Api::all(client.clone());
    let mut watch = kube::runtime::watcher(all_deployments.clone(), kube::runtime::watcher::Config::default()).boxed();
    population::decide_all(&client, &names, "RestrictedAndFrozen", "Payment default").await;
    let first_frozen = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = watch.next().await {
            if let Ok(kube::runtime::watcher::Event::Apply(d)) = event
                && record_of(&d).is_some()
            {
                return;
            }
        }
    })
    .await;
    assert!(first_frozen.is_ok(), "no resource was frozen within 60s");
    // An open watch would hold the sandbox's shutdown.
    drop(watch);
    let index = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("the leader is one of ours");
    drop(replicas.remove(index));
    let at_kill = all_deployments.list(&Default::default()).await.expect("list");
    let frozen_at_kill = at_kill.items.iter().filter(|d| record_of(d).is_some()).count();
    eprintln!(
        "{:?}: frozen when the leader was killed: {frozen_at_kill} of {total}",
        began.elapsed()
    );
    assert!(
        frozen_at_kill < total,
        "the leader finished before it was killed: the test did not interrupt it"
    );

    // The survivor takes over and completes the freeze; every record holds the replicas the
    // deployment was bought with.
    eventually(
        "every customer is frozen under the new leader",
        Duration::from_secs(120),
        all("FrozenByDistributor"),
    )
    .await;
    eprintln!("{:?}: every customer frozen", began.elapsed());
    let after = all_deployments.list(&Default::default()).await.expect("list");
    assert_eq!(after.items.len(), total);
    for d in &after.items {
        let at = (&d.metadata.namespace, &d.metadata.name);
        let record = record_of(d).unwrap_or_else(|| panic!("{at:?} is not frozen"));
        assert_eq!(
            record["replicas"],
            bought_replicas(index_of(d)),
            "{at:?}: the record of a second freeze would hold 0"
        );
        assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(0), "{at:?}");
    }

    // R9: the unfreeze restores all of them exactly.
    population::decide_all(&client, &names, "Unrestricted", "Paid in full").await;
    eventually("every customer is unfrozen", Duration::from_secs(120), all("Unfrozen")).await;
    eprintln!("{:?}: every customer unfrozen", began.elapsed());
    let restored = all_deployments.list(&Default::default()).await.expect("list");
    for d in &restored.items {
        let at = (&d.metadata.namespace, &d.metadata.name);
        assert_eq!(
            d.spec.as_ref().and_then(|s| s.replicas),
            Some(bought_replicas(index_of(d))),
            "{at:?}"
        );
        assert!(record_of(d).is_none(), "{at:?} keeps its record");
    }
    drop(replicas);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}
