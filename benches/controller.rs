//! Controller benchmark against the sandbox: cold-start convergence with 10,000 customers,
//! 2 distributors, 50 resellers and 10,000 decisions; the latency from a decision write to the
//! customer's condition flip next to the raw watch latency of the same sandbox, measured in
//! the same run; the controller's peak RSS.
//!
//! Run: `cargo bench --bench controller` (`CONTROLLER_BENCH_CUSTOMERS` changes the count).

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use purchase_guard::api::{CustomerAccount, Partner, PurchaseRestriction};
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A raw HTTP watch; every event line goes to `f` with its arrival time.
async fn raw_watch(addr: std::net::SocketAddr, path: String, tx: tokio::sync::mpsc::UnboundedSender<(Instant, Value)>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut lines = tokio::io::BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let now = Instant::now();
        if line.starts_with('{')
            && let Ok(v) = serde_json::from_str::<Value>(&line)
            && tx.send((now, v)).is_err()
        {
            return;
        }
    }
}

fn restricted_status(customer: &Value) -> Option<String> {
    customer
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PurchaseRestricted")?["status"]
        .as_str()
        .map(str::to_string)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let customers_n: usize = std::env::var("CONTROLLER_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (distributors, resellers) = (2usize, 50usize);
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in purchase_guard::crdgen::all() {
        crds.create(&PostParams::default(), &crd).await.expect("CRD");
    }
    let pp = PostParams::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let partners: Api<Partner> = Api::all(client.clone());
    for d in 0..distributors {
        let name = format!("dist-{d}");
        namespaces
            .create(
                &pp,
                &serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns"),
            )
            .await
            .expect("ns");
        partners.create(&pp, &serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": name}, "spec": {"role": "Distributor", "namespace": name}})).expect("p")).await.expect("partner");
    }
    for r in 0..resellers {
        let name = format!("reseller-{r}");
        namespaces
            .create(
                &pp,
                &serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns"),
            )
            .await
            .expect("ns");
        partners.create(&pp, &serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": name}, "spec": {"role": "Reseller", "distributor": format!("dist-{}", r % distributors), "namespace": name}})).expect("p")).await.expect("partner");
    }
    // Customers and one decision each, by their authority holder (the distributor).
    let created = Instant::now();
    let stream = futures::stream::iter(0..customers_n).map(|i| {
        let client = client.clone();
        async move {
            let reseller = i % resellers;
            let dist = reseller % distributors;
            let customers: Api<CustomerAccount> = Api::all(client.clone());
            customers.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount", "metadata": {"name": format!("c-{i}")}, "spec": {"associationModel": "Reseller", "reseller": format!("reseller-{reseller}")}})).expect("c")).await.expect("customer");
            let decisions: Api<PurchaseRestriction> = Api::namespaced(client, &format!("dist-{dist}"));
            let state = if i.is_multiple_of(2) { "Restricted" } else { "Unrestricted" };
            decisions.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction", "metadata": {"name": format!("c-{i}"), "namespace": format!("dist-{dist}")}, "spec": {"customer": format!("c-{i}"), "state": state, "reason": "benchmark"}})).expect("d")).await.expect("decision");
        }
    });
    stream.buffer_unordered(32).collect::<Vec<_>>().await;
    println!(
        "controller benchmark: {customers_n} customers, {distributors} distributors, {resellers} resellers, {customers_n} decisions (created in {:.1} s)",
        created.elapsed().as_secs_f64()
    );

    // Cold start: the controller as the Deployment runs it, in its own process.
    let kubeconfig = std::env::temp_dir().join(format!("pg-bench-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let started = Instant::now();
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_purchase-guard"))
        .args(["run", "--leader-election=false", "--health-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the controller runs");
    let converged = |sandbox: &Sandbox| {
        let inner = sandbox.server.store.lock();
        inner.list("purchaseguard.io/customeraccounts", None).all(|(_, c)| {
            let i: usize = c["metadata"]["name"]
                .as_str()
                .and_then(|n| n.strip_prefix("c-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            restricted_status(c).as_deref() == Some(if i.is_multiple_of(2) { "True" } else { "False" })
        }) && inner
            .list("purchaseguard.io/purchaserestrictions", None)
            .all(|(_, d)| d.pointer("/status/accepted").is_some())
    };
    while !converged(&sandbox) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no convergence within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let convergence = started.elapsed();
    println!(
        "cold-start convergence: {:.2} s (target < 10 s)",
        convergence.as_secs_f64()
    );

    // Flip latency next to the raw watch latency of the same writes.
    let rv = sandbox.server.store.lock().rv();
    let (dtx, mut decisions_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ctx, mut customers_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(raw_watch(
        sandbox.addr,
        format!("/apis/purchaseguard.io/v1alpha1/purchaserestrictions?watch=true&resourceVersion={rv}"),
        dtx,
    ));
    tokio::spawn(raw_watch(
        sandbox.addr,
        format!("/apis/purchaseguard.io/v1alpha1/customeraccounts?watch=true&resourceVersion={rv}"),
        ctx,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let samples = 300;
    let mut raw = Vec::new();
    let mut flips = Vec::new();
    for s in 0..samples {
        let i = (s * 37) % customers_n;
        let dist = (i % resellers) % distributors;
        let was_restricted = sandbox
            .server
            .store
            .lock()
            .get(&purchase_guard_sandbox::Key::new(
                "purchaseguard.io/customeraccounts",
                "",
                &format!("c-{i}"),
            ))
            .and_then(|c| restricted_status(c))
            == Some("True".into());
        let (state, expect) = if was_restricted {
            ("Unrestricted", "False")
        } else {
            ("Restricted", "True")
        };
        let decisions: Api<PurchaseRestriction> = Api::namespaced(client.clone(), &format!("dist-{dist}"));
        let patch = json!({"spec": {"state": state, "reason": format!("flip {s}")}});
        let t0 = Instant::now();
        decisions
            .patch(&format!("c-{i}"), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("flip");
        let name = format!("c-{i}");
        loop {
            let (at, v) = decisions_rx.recv().await.expect("decision events");
            if v.pointer("/object/metadata/name").and_then(Value::as_str) == Some(name.as_str())
                && v.pointer("/object/spec/state").and_then(Value::as_str) == Some(state)
            {
                raw.push(at - t0);
                break;
            }
        }
        loop {
            let (at, v) = customers_rx.recv().await.expect("customer events");
            if v.pointer("/object/metadata/name").and_then(Value::as_str) == Some(name.as_str())
                && v.get("object").and_then(restricted_status).as_deref() == Some(expect)
            {
                flips.push(at - t0);
                break;
            }
        }
        // Drain what the previous sample left behind.
        while decisions_rx.try_recv().is_ok() {}
    }
    raw.sort();
    flips.sort();
    println!(
        "raw watch latency (write sent to the decision's event on a watch): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&raw, 0.5)),
        ms(percentile(&raw, 0.99))
    );
    println!(
        "flip latency (write sent to the customer's PurchaseRestricted flip on a watch): p50 {:.3} ms, p99 {:.3} ms; p99 ratio to the raw watch p99: {:.2}x (target <= 2x)",
        ms(percentile(&flips, 0.5)),
        ms(percentile(&flips, 0.99)),
        percentile(&flips, 0.99).as_secs_f64() / percentile(&raw, 0.99).as_secs_f64()
    );
    let rss = std::fs::read_to_string(format!("/proc/{}/status", controller.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        });
    match rss {
        Some(kib) => println!("controller peak RSS: {:.1} MiB (target < 100 MiB)", kib / 1024.0),
        None => println!("controller peak RSS: not readable on this system"),
    }
    let _ = controller.kill();
    let _ = controller.wait();
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}
