//! Freeze benchmark against the sandbox: R8 freeze and R9 unfreeze of 1,000 pay-per-use
//! Deployments across 100 customers by `purchase-guard run`, next to the sandbox's raw rate
//! for the same writes measured in the same run.
//!
//! A freeze of a Deployment is two writes (the record with the resourceVersion precondition,
//! then the scale subresource to 0) and an event; an unfreeze is two writes (the scale back,
//! then the record's removal) and an event. The baseline makes the same two writes per
//! Deployment from this process, 16 in flight (the controller's reconcile concurrency).
//!
//! Run: `cargo bench --bench freeze` (`FREEZE_BENCH_CUSTOMERS` changes the count of customers;
//! 10 Deployments each).

mod common;

#[path = "../tests/support/population.rs"]
mod population;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::json;
use std::time::{Duration, Instant};

const PER_CUSTOMER: usize = 10;
const REPLICAS: i32 = 2;

/// Waits until every customer's `ResourcesFrozen` has `reason`; returns how long it took.
async fn until_all(client: &kube::Client, n: usize, reason: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let done = population::customers_with(client, reason).await;
        if done == n {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{done} of {n} customers reached {reason} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let customers: usize = common::env_or("FREEZE_BENCH_CUSTOMERS", 100);
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = population::client_with_crds(&sandbox).await;
    let names = population::populate(&client, customers, PER_CUSTOMER, |_| REPLICAS).await;
    let total = customers * PER_CUSTOMER;

    // Baseline: the two writes per Deployment that a freeze makes, from this process.
    let raw_started = Instant::now();
    let params = PatchParams::default();
    let keys: Vec<(String, usize)> = names
        .iter()
        .flat_map(|n| (0..PER_CUSTOMER).map(move |i| (n.clone(), i)))
        .collect();
    futures::stream::iter(keys)
        .for_each_concurrent(population::IN_FLIGHT, |(ns, i)| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
            let params = params.clone();
            async move {
                let name = format!("app-{i}");
                let record = json!({"metadata": {"annotations": {"bench/baseline": "1"}}});
                api.patch(&name, &params, &Patch::Merge(&record)).await.expect("patch");
                let scale = json!({"spec": {"replicas": REPLICAS}});
                api.patch_scale(&name, &params, &Patch::Merge(&scale))
                    .await
                    .expect("scale");
            }
        })
        .await;
    let raw = raw_started.elapsed();

    let kubeconfig = std::env::temp_dir().join(format!("pg-freeze-bench-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_purchase-guard"))
        .args(["run", "--leader-election=false", "--health-addr", "127.0.0.1:0"])
        .args(["--webhook-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the controller runs");
    until_all(&client, customers, "NotFrozen", Duration::from_secs(300)).await;

    let freeze_started = Instant::now();
    population::decide_all(&client, &names, "RestrictedAndFrozen", "Payment default").await;
    until_all(&client, customers, "FrozenByDistributor", Duration::from_secs(600)).await;
    let freeze = freeze_started.elapsed();

    let unfreeze_started = Instant::now();
    population::decide_all(&client, &names, "Unrestricted", "Paid in full").await;
    until_all(&client, customers, "Unfrozen", Duration::from_secs(600)).await;
    let unfreeze = unfreeze_started.elapsed();
    let _ = controller.kill();
    let _ = controller.wait();
    let _ = std::fs::remove_file(&kubeconfig);

    let all: Api<Deployment> = Api::all(client.clone());
    let restored = all
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter(|d| d.spec.as_ref().and_then(|s| s.replicas) == Some(REPLICAS))
        .count();
    assert_eq!(restored, total, "every Deployment is back at {REPLICAS} replicas");

    let writes = 2 * total;
    println!("freeze benchmark: {total} pay-per-use Deployments across {customers} customers");
    println!(
        "raw: {writes} writes (merge patch and scale, {} in flight) in {:.2} s = {:.0} writes/s",
        population::IN_FLIGHT,
        raw.as_secs_f64(),
        writes as f64 / raw.as_secs_f64()
    );
    for (what, took) in [("freeze", freeze), ("unfreeze", unfreeze)] {
        println!(
            "{what}: from the first decision write until every customer's condition says it is done: {:.2} s = {:.0} resources/s, {:.2}x the raw time",
            took.as_secs_f64(),
            total as f64 / took.as_secs_f64(),
            took.as_secs_f64() / raw.as_secs_f64()
        );
    }
    sandbox.shutdown().await;
}
