//! Controller benchmark against the sandbox: cold-start convergence with N customers (default
//! 10,000), 2 distributors, 50 resellers and N decisions, next to the time the same sandbox
//! needs for the writes that convergence made (the same status writes and events, sent by the
//! benchmark, 16 in flight as the controller's reconciles), in alternating rounds on fresh
//! sandboxes; the latency from a decision write to the customer's condition flip next to the
//! raw watch latency of the same writes; the controller's peak RSS.
//!
//! Run: `cargo bench --bench controller` (`CONTROLLER_BENCH_CUSTOMERS` changes the count,
//! `CONTROLLER_BENCH_ROUNDS` the rounds, default 5, `CONTROLLER_BENCH_BINARY` the controller's
//! binary, default this build's).
mod common;

use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use purchase_guard::api::{CustomerAccount, PurchaseRestriction};
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

const DISTRIBUTORS: usize = 2;
const RESELLERS: usize = 50;
/// The controller's reconcile concurrency: the raw writes keep as many in flight.
const IN_FLIGHT: usize = 16;

/// A sandbox holding the population, loaded in-process (no statuses yet).
async fn populated(customers_n: usize) -> Sandbox {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let server = &sandbox.server;
    common::install_crds(&sandbox);
    let load = |v: Value| {
        server.apply_object(v, "bench").expect("object loaded");
    };
    for d in 0..DISTRIBUTORS {
        let name = format!("dist-{d}");
        load(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        load(
            json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": name}, "spec": {"role": "Distributor", "namespace": name}}),
        );
    }
    for r in 0..RESELLERS {
        let name = format!("reseller-{r}");
        load(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        load(
            json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": name}, "spec": {"role": "Reseller", "distributor": format!("dist-{}", r % DISTRIBUTORS), "namespace": name}}),
        );
    }
    // Customers and one decision each, by their authority holder (the distributor).
    for i in 0..customers_n {
        let reseller = i % RESELLERS;
        let dist = reseller % DISTRIBUTORS;
        load(
            json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount", "metadata": {"name": format!("c-{i}")}, "spec": {"associationModel": "Reseller", "reseller": format!("reseller-{reseller}")}}),
        );
        let state = if i.is_multiple_of(2) {
            "Restricted"
        } else {
            "Unrestricted"
        };
        load(
            json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction", "metadata": {"name": format!("c-{i}"), "namespace": format!("dist-{dist}")}, "spec": {"customer": format!("c-{i}"), "state": state, "reason": "benchmark"}}),
        );
    }
    sandbox
}

fn customer_index(c: &Value) -> usize {
    c["metadata"]["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("c-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether every customer's condition matches its decision and every decision is accepted.
fn converged(sandbox: &Sandbox) -> bool {
    let inner = sandbox.server.store.lock();
    inner.list("purchaseguard.io/customeraccounts", None).all(|(_, c)| {
        restricted_status(c).as_deref()
            == Some(if customer_index(c).is_multiple_of(2) {
                "True"
            } else {
                "False"
            })
    }) && inner
        .list("purchaseguard.io/purchaserestrictions", None)
        .all(|(_, d)| d.pointer("/status/accepted").is_some())
}

/// The writes a convergence made: every status it wrote and every event.
struct Writes {
    customers: Vec<(String, Value)>,
    decisions: Vec<(String, String, Value)>,
    events: Vec<Value>,
}

fn writes_of(sandbox: &Sandbox) -> Writes {
    let inner = sandbox.server.store.lock();
    let name = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    Writes {
        customers: inner
            .list("purchaseguard.io/customeraccounts", None)
            .map(|(_, c)| (name(c, "/metadata/name"), c["status"].clone()))
            .collect(),
        decisions: inner
            .list("purchaseguard.io/purchaserestrictions", None)
            .map(|(_, d)| {
                (
                    name(d, "/metadata/namespace"),
                    name(d, "/metadata/name"),
                    d["status"].clone(),
                )
            })
            .collect(),
        events: inner
            .list("events.k8s.io/events", None)
            .map(|(_, e)| {
                let mut e = (**e).clone();
                if let Some(m) = e.get_mut("metadata").and_then(Value::as_object_mut) {
                    for k in ["resourceVersion", "uid", "creationTimestamp", "managedFields"] {
                        m.remove(k);
                    }
                }
                e
            })
            .collect(),
    }
}

/// A status merge patch, as the controller sends it.
fn patch_status<'a, K>(api: Api<K>, name: &'a str, status: &Value) -> futures::future::BoxFuture<'a, ()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let patch = json!({ "status": status });
    async move {
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("status written");
    }
    .boxed()
}

/// Sends `writes` to a fresh sandbox of the same population, `IN_FLIGHT` at a time: status
/// merge patches and event creates, as the controller sends them.
async fn raw_writes(client: &Client, writes: &Writes) -> Duration {
    use k8s_openapi::api::events::v1::Event;
    let started = Instant::now();
    let customers = futures::stream::iter(writes.customers.iter())
        .map(|(name, status)| patch_status(Api::<CustomerAccount>::all(client.clone()), name, status));
    let decisions = futures::stream::iter(writes.decisions.iter()).map(|(ns, name, status)| {
        patch_status(Api::<PurchaseRestriction>::namespaced(client.clone(), ns), name, status)
    });
    let events = futures::stream::iter(writes.events.iter()).map(|e| {
        let ns = e
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let api: Api<Event> = Api::namespaced(client.clone(), ns);
        let event: Event = serde_json::from_value(e.clone()).expect("an event");
        async move {
            api.create(&PostParams::default(), &event).await.expect("event");
        }
        .boxed()
    });
    // Interleaved as a convergence interleaves them.
    futures::stream::select(futures::stream::select(customers, decisions), events)
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    started.elapsed()
}

/// A line of `/proc/<pid>/status` in MiB (`VmHWM`: the peak resident set).
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .map(|kib| kib / 1024.0)
        })
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM")
}

/// The resident set now, split into the heap and stacks (anonymous) and the mapped binary and
/// libraries (file): what the peak is made of.
fn rss_parts(pid: u32) -> String {
    match (status_mib(pid, "RssAnon"), status_mib(pid, "RssFile")) {
        (Some(anon), Some(file)) => format!("now {anon:.1} MiB anonymous, {file:.1} MiB mapped files"),
        _ => "now not readable".to_string(),
    }
}

fn client_of(sandbox: &Sandbox) -> Client {
    Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client")
}

/// The binary the controller runs from: this build's, or `CONTROLLER_BENCH_BINARY` (for
/// example the container image's build: `cargo build --profile image --no-default-features
/// --bin purchase-guard`, whose mapped pages are fewer).
fn controller_binary() -> std::path::PathBuf {
    std::env::var_os("CONTROLLER_BENCH_BINARY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_purchase-guard").into())
}

/// The controller as the Deployment runs it, in its own process, against `sandbox`.
fn start_controller(sandbox: &Sandbox, kubeconfig: &std::path::Path) -> std::process::Child {
    sandbox.write_kubeconfig(kubeconfig).expect("kubeconfig");
    std::process::Command::new(controller_binary())
        .args(["run", "--leader-election=false", "--health-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the controller runs")
}

/// Polls until converged: at most every 20 ms, and no more than a tenth of the time (each
/// look holds the store's lock over every customer and decision).
async fn wait_converged(sandbox: &Sandbox, started: Instant) {
    loop {
        let look = Instant::now();
        if converged(sandbox) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "no convergence within 30 minutes"
        );
        tokio::time::sleep((look.elapsed() * 10).max(Duration::from_millis(20))).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let customers_n: usize = common::env_or("CONTROLLER_BENCH_CUSTOMERS", 10_000);
    let rounds: usize = common::env_or::<usize>("CONTROLLER_BENCH_ROUNDS", 5).max(1);
    let kubeconfig = std::env::temp_dir().join(format!("pg-bench-{}.kubeconfig", std::process::id()));
    println!(
        "controller benchmark: {customers_n} customers, {DISTRIBUTORS} distributors, {RESELLERS} resellers, {customers_n} decisions; {rounds} rounds of a cold start and of its writes sent raw, alternating, each on a fresh sandbox; controller binary {}",
        controller_binary().display()
    );
    let (mut convergences, mut raws, mut ratios, mut rss) = (vec![], vec![], vec![], vec![]);
    let mut flip_sandbox = None;
    for round in 0..rounds {
        // Cold start.
        let loading = Instant::now();
        let sandbox = populated(customers_n).await;
        let loaded = loading.elapsed();
        let before = sandbox.server.store.lock().rv();
        let started = Instant::now();
        let mut controller = start_controller(&sandbox, &kubeconfig);
        wait_converged(&sandbox, started).await;
        let convergence = started.elapsed();
        // Every write the sandbox applied meanwhile (each takes a resourceVersion): statuses,
        // events, namespace labels, retried writes.
        let made = sandbox.server.store.lock().rv() - before;
        let writes = writes_of(&sandbox);
        let peak = peak_rss_mib(controller.id());
        let parts = rss_parts(controller.id());
        // Its writes, raw, on a fresh sandbox of the same population.
        let fresh = populated(customers_n).await;
        let raw = raw_writes(&client_of(&fresh), &writes).await;
        fresh.shutdown().await;
        println!(
            "round {round}: loaded in {:.1} s; cold-start convergence {:.2} s ({made} writes applied); the {} writes it left ({} customer statuses, {} decision statuses, {} events) sent raw in {:.2} s; ratio {:.2}x; controller peak RSS {} ({parts})",
            loaded.as_secs_f64(),
            convergence.as_secs_f64(),
            writes.customers.len() + writes.decisions.len() + writes.events.len(),
            writes.customers.len(),
            writes.decisions.len(),
            writes.events.len(),
            raw.as_secs_f64(),
            convergence.as_secs_f64() / raw.as_secs_f64(),
            peak.map_or("not readable".to_string(), |m| format!("{m:.1} MiB")),
        );
        convergences.push(convergence.as_secs_f64());
        raws.push(raw.as_secs_f64());
        ratios.push(convergence.as_secs_f64() / raw.as_secs_f64());
        if let Some(m) = peak {
            rss.push(m);
        }
        if round + 1 == rounds {
            flip_sandbox = Some((sandbox, controller));
        } else {
            let _ = controller.kill();
            let _ = controller.wait();
            sandbox.shutdown().await;
        }
    }
    let (conv, conv_lo, conv_hi) = common::spread(&mut convergences);
    let (raw, raw_lo, raw_hi) = common::spread(&mut raws);
    let (ratio, ratio_lo, ratio_hi) = common::spread(&mut ratios);
    println!(
        "cold-start convergence: median {conv:.2} s [{conv_lo:.2}-{conv_hi:.2}]; the same writes raw: median {raw:.2} s [{raw_lo:.2}-{raw_hi:.2}]; ratio median {ratio:.2}x [{ratio_lo:.2}-{ratio_hi:.2}] (target <= 1.5x: {})",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
    if !rss.is_empty() {
        let (m, lo, hi) = common::spread(&mut rss);
        println!(
            "controller peak RSS after convergence: median {m:.1} MiB [{lo:.1}-{hi:.1}] with {customers_n} customers and {customers_n} decisions"
        );
    }
    let (sandbox, mut controller) = flip_sandbox.expect("a last round");
    let client = client_of(&sandbox);

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
        let dist = (i % RESELLERS) % DISTRIBUTORS;
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
    if let Some(m) = peak_rss_mib(controller.id()) {
        println!("controller peak RSS after the flips: {m:.1} MiB");
    }
    let _ = controller.kill();
    let _ = controller.wait();
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}
