//! Audit benchmark against the sandbox: 10,000 guarded objects (100 pay-per-use Deployments in
//! each of 100 customers' namespaces, all bought after the customers were restricted) audited
//! by `purchase-guard run` from a cold start, next to a plain list of the same objects measured
//! in the same run.
//!
//! - **list** (the baseline): `GET /apis/apps/v1/deployments` of the 10,000 objects, the median
//!   of 5;
//! - **judgement**: the policy core's audit of the 10,000 objects in this process
//!   (`policy::audit::audit_object`, from the objects as JSON), the median of 5;
//! - **cold audit**: `purchase-guard run` started on the populated sandbox, until every
//!   customer's status counts its 100 findings and every namespace's OpenReports Report lists
//!   them (its watches' lists, 100 reconciles, 100 report writes, 100 status writes).
//!
//! Run: `cargo bench --bench audit` (`AUDIT_BENCH_CUSTOMERS` and `AUDIT_BENCH_PER_CUSTOMER`
//! change the counts: default 100 and 100).

mod common;

#[path = "../tests/support/population.rs"]
#[allow(dead_code)] // shared with the freeze benchmark and tests; not all of it is used here
mod population;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use purchase_guard_policy as policy;
use purchase_guard_sandbox::{Config, Sandbox};
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// How many customers' statuses count `per_customer` failures (0: audited, none).
async fn audited(client: &kube::Client, per_customer: u32) -> usize {
    population::customers_where(client, |s| s.audit.as_ref().is_some_and(|a| a.failures == per_customer)).await
}

/// How many reports list `per_customer` failures.
async fn reports_with(client: &kube::Client, per_customer: u64) -> usize {
    let resource = ApiResource {
        group: "openreports.io".into(),
        version: "v1alpha1".into(),
        api_version: "openreports.io/v1alpha1".into(),
        kind: "Report".into(),
        plural: "reports".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let Ok(list) = api.list(&Default::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|r| r.data["summary"]["fail"].as_u64() == Some(per_customer))
        .count()
}

async fn until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

fn controller(kubeconfig: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_purchase-guard"))
        .args(["run", "--leader-election=false", "--health-addr", "127.0.0.1:0"])
        .args(["--webhook-addr", "127.0.0.1:0", "--reports", "openreports"])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the controller runs")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let customers: usize = common::env_or("AUDIT_BENCH_CUSTOMERS", 100);
    let per_customer: usize = common::env_or("AUDIT_BENCH_PER_CUSTOMER", 100);
    let total = customers * per_customer;
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = population::client_with_crds(&sandbox).await;
    let crd: CustomResourceDefinition =
        serde_yaml_ng::from_str(include_str!("../examples/reports/reports.openreports.io.yaml"))
            .expect("the report CRD");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("the report CRD is created");
    // Customers of a reseller: restricted by default (R1) from their first evaluation.
    let names = population::populate(&client, customers, 0, |_| 0).await;
    let kubeconfig = std::env::temp_dir().join(format!("pg-audit-bench-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut first = controller(&kubeconfig);
    until("every customer audited", Duration::from_secs(300), async || {
        audited(&client, 0).await == customers
    })
    .await;
    let _ = first.kill();
    let _ = first.wait();
    // Bought in a later second than the restrictions took effect (timestamps are whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bought = Instant::now();
    population::create_deployments(&client, &names, per_customer, |_| 1).await;
    let created = bought.elapsed();

    let all: Api<Deployment> = Api::all(client.clone());
    let mut lists = Vec::new();
    let mut objects = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let list = all.list(&Default::default()).await.expect("list");
        lists.push(started.elapsed());
        assert_eq!(list.items.len(), total);
        objects = list.items;
    }
    let list = median(lists);

    // The policy core's judgement of the same objects, as the controller makes it.
    let values: Vec<serde_json::Value> = objects.iter().map(|d| serde_json::to_value(d).expect("JSON")).collect();
    let state = policy::CustomerState::Known {
        state: policy::RestrictionState::Restricted,
        source: Some(policy::RestrictionSource::Default {
            holder: Some("dist".into()),
        }),
    };
    let matrix = policy::ImpactMatrix::default();
    let since = policy::audit::Shown {
        at: policy::Timestamp(0),
        text: "1970-01-01T00:00:00Z",
    };
    let mut judgements = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut found = 0;
        for (d, v) in objects.iter().zip(&values) {
            let created = d.metadata.creation_timestamp.as_ref().expect("created");
            let text = created.0.to_string();
            let audited = policy::audit::Audited {
                object: v,
                default_mode: policy::BillingMode::PayPerUse,
                created: Some(policy::audit::Shown {
                    at: policy::Timestamp(created.0.as_microsecond()),
                    text: &text,
                }),
                spec_written: None,
                freezable: true,
                freeze_failed: None,
            };
            let scope = policy::audit::Scope {
                matrix: &matrix,
                customer: "c000",
                state: &state,
                restricted_since: Some(since),
                frozen_since: None,
            };
            found += usize::from(policy::audit::audit_object(&scope, &audited).is_some());
        }
        judgements.push(started.elapsed());
        assert_eq!(found, total);
    }
    let judgement = median(judgements);

    let started = Instant::now();
    let mut second = controller(&kubeconfig);
    let per = per_customer as u32;
    until(
        "every customer's status counts its findings",
        Duration::from_secs(600),
        async || audited(&client, per).await == customers,
    )
    .await;
    until(
        "every report lists its findings",
        Duration::from_secs(600),
        async || reports_with(&client, per_customer as u64).await == customers,
    )
    .await;
    let cold = started.elapsed();
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_file(&kubeconfig);

    println!(
        "audit benchmark: {total} pay-per-use Deployments across {customers} customers, all bought while restricted"
    );
    println!(
        "created: {total} objects in {:.2} s ({} in flight)",
        created.as_secs_f64(),
        population::IN_FLIGHT
    );
    println!(
        "list (baseline): one list of the {total} objects: {:.3} s (median of 5)",
        list.as_secs_f64()
    );
    println!(
        "judgement: the policy core's audit of the {total} objects in-process: {:.3} s (median of 5) = {:.2}x the list",
        judgement.as_secs_f64(),
        judgement.as_secs_f64() / list.as_secs_f64()
    );
    println!(
        "cold audit: purchase-guard run started until every status and report says {per_customer} findings: {:.2} s = {:.1}x the list",
        cold.as_secs_f64(),
        cold.as_secs_f64() / list.as_secs_f64()
    );
    sandbox.shutdown().await;
}
