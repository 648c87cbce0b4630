//! Purchase webhook benchmark: AdmissionReviews over HTTPS with keep-alive at rising
//! concurrency, with the customers and their decisions loaded into a sandbox and watched by a
//! replica, in cached mode, next to an allow-all HTTPS handler (same TLS server, same JSON
//! parsing of the review, no judgement). At each concurrency the two are measured in
//! alternating steps, several rounds of each (the order swapped every round), and each round
//! gives a ratio; the median ratio and its spread are reported, so that one noisy step decides
//! nothing. Each step lasts until it has both its length and 10,000 samples (for a p99).
//! Linearizable mode is measured once per concurrency, for its order of magnitude.
//!
//! Then, in cached mode, the delay from a restriction's write returning to the replica
//! refusing the customer's purchases, next to the raw watch latency of the same writes (a
//! separate watch on PurchaseRestrictions).
//!
//! Run: `cargo bench --bench admission`. `ADMISSION_BENCH_CUSTOMERS` (default 10,000),
//! `ADMISSION_BENCH_ROUNDS` (default 5), `ADMISSION_BENCH_SECONDS` (each step's least length,
//! default 2), `ADMISSION_BENCH_LINEARIZABLE=0` skips linearizable mode. Client, servers and the sandbox share the machine's cores.

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use kube::api::{Api, Patch, PatchParams};
use purchase_guard::api::{CustomerAccount, Partner, PurchaseRestriction};
use purchase_guard::index::{Freshness, Stores};
use purchase_guard::webhook::Metrics;
use purchase_guard::webhook::server::Which;
use purchase_guard::webhook::settings::Freshness as FreshnessSettings;
use purchase_guard::webhook::{Consistency, Settings, Webhooks};
use purchase_guard::webhook::{server, tls};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fewest round trips a step measures: enough for a p99 of 100 samples above it.
const MIN_SAMPLES: usize = 10_000;
/// The longest a step runs when the samples come slowly (linearizable mode).
const MAX_STEP: Duration = Duration::from_secs(30);

/// How many customers are loaded (each with its namespace and one decision).
fn customer_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| common::env_or("ADMISSION_BENCH_CUSTOMERS", 10_000))
}

/// The partners, customers and decisions loaded: one decision per customer by its
/// distributor, accepted, half of them restrictions.
fn objects() -> (Vec<Partner>, Vec<CustomerAccount>, Vec<PurchaseRestriction>) {
    let mut partners = vec![serde_json::from_value::<Partner>(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}})).expect("partner")];
    for r in 0..50 {
        partners.push(serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": format!("res-{r}")}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": format!("res-{r}")}})).expect("partner"));
    }
    let customers: Vec<CustomerAccount> = (0..customer_count())
        .map(|i| {
            let state = if i % 2 == 0 { "Restricted" } else { "Unrestricted" };
            serde_json::from_value(json!({
                "apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
                "metadata": {"name": format!("c-{i}"), "generation": 1},
                "spec": {"associationModel": "Reseller", "reseller": format!("res-{}", i % 50), "namespaces": [format!("c-{i}")]},
                "status": {"observedGeneration": 1, "conditions": [], "authority": {"partner": "dist", "role": "Distributor"},
                           "decision": {"restriction": {"namespace": "dist", "name": format!("c-{i}")}, "partner": "dist", "state": state, "reason": "invoice overdue"}}
            }))
            .expect("customer")
        })
        .collect();
    let decisions: Vec<PurchaseRestriction> = (0..customer_count())
        .map(|i| {
            let state = if i % 2 == 0 { "Restricted" } else { "Unrestricted" };
            serde_json::from_value(json!({
                "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
                "metadata": {"name": format!("c-{i}"), "namespace": "dist", "generation": 1,
                             "creationTimestamp": "2026-11-01T00:00:00Z"},
                "spec": {"customer": format!("c-{i}"), "state": state, "reason": "invoice overdue"},
                "status": {"accepted": {"generation": 1, "state": state, "reason": "invoice overdue",
                                        "since": "2026-11-01T00:00:00.000000Z"}}
            }))
            .expect("decision")
        })
        .collect();
    (partners, customers, decisions)
}

fn review(i: usize) -> Vec<u8> {
    let ns = format!("c-{}", i % customer_count());
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": format!("uid-{i}"),
        "kind": {"group": "compute.example.com", "version": "v1", "kind": "VirtualMachine"},
        "resource": {"group": "compute.example.com", "version": "v1", "resource": "virtualmachines"},
        "name": format!("vm-{i}"), "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "tenant", "groups": ["system:authenticated"]},
        "object": {"apiVersion": "compute.example.com/v1", "kind": "VirtualMachine",
                   "metadata": {"name": format!("vm-{i}"), "namespace": ns, "labels": {"purchaseguard.io/billing-mode": "pay-per-use"}},
                   "spec": {"displayName": "bench", "flavor": "c6.large", "cpus": 2, "memoryGiB": 4, "image": "debian-12"}},
        "oldObject": null, "dryRun": false, "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    }})
    .to_string()
    .into_bytes()
}

/// The baseline: parse the review, answer allowed.
async fn allow_all(body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let uid = v.pointer("/request/uid").cloned().unwrap_or(Value::Null);
    let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true}});
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

async fn serve(app: Router, pair: &tls::Pair) -> u16 {
    let key = tls::certified_key(pair.cert.as_bytes(), pair.key.as_bytes(), "bench").expect("key");
    let cert = tls::ServingCert::new(key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(tls::serve(listener, cert.server_config(), app, std::future::pending()));
    port
}

/// When a step ends: at `until` once `done` counts `samples` round trips, and at `limit`
/// whatever the count.
#[derive(Clone)]
struct Step {
    until: Instant,
    limit: Instant,
    samples: usize,
    done: Arc<std::sync::atomic::AtomicUsize>,
}

impl Step {
    fn new(seconds: f64, samples: usize) -> Step {
        let now = Instant::now();
        Step {
            until: now + Duration::from_secs_f64(seconds),
            limit: now + MAX_STEP.max(Duration::from_secs_f64(seconds)),
            samples,
            done: Default::default(),
        }
    }

    fn running(&self) -> bool {
        let now = Instant::now();
        now < self.limit && (now < self.until || self.done.load(std::sync::atomic::Ordering::Relaxed) < self.samples)
    }
}

/// One keep-alive HTTPS connection sending reviews back to back while the step runs; returns
/// each round trip and how many reviews were denied.
async fn worker(port: u16, ca: String, step: Step, offset: usize) -> (Vec<Duration>, usize) {
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(&ca).expect("a CA bundle"));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let stream = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut latencies = Vec::new();
    let mut denied = 0;
    let mut i = offset;
    while step.running() {
        let body = review(i);
        i += 7919;
        let request = hyper::Request::post("/validate/purchases")
            .header("content-type", "application/json")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        sender.ready().await.expect("the connection stays open");
        let start = Instant::now();
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        latencies.push(start.elapsed());
        step.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(bytes.starts_with(b"{"), "a JSON review");
        let refusal = b"\"allowed\":false";
        if bytes.windows(refusal.len()).any(|w| w == refusal) {
            denied += 1;
        }
    }
    (latencies, denied)
}

/// One step: throughput, p50, p99 and the number of samples.
struct Measured {
    rate: f64,
    p50: Duration,
    p99: Duration,
    samples: usize,
}

async fn measure(port: u16, ca: &str, concurrency: usize, seconds: f64, samples: usize) -> Measured {
    let step = Step::new(seconds, samples);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| tokio::spawn(worker(port, ca.to_string(), step.clone(), w * 104_729)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker").0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let p = |q: f64| all[(((all.len() - 1) as f64) * q).round() as usize];
    Measured {
        rate: all.len() as f64 / elapsed,
        p50: p(0.5),
        p99: p(0.99),
        samples: all.len(),
    }
}

/// A sandbox holding the objects, and a replica's caches of it (not the leader: caches only).
async fn replica_of_sandbox() -> (purchase_guard_sandbox::Sandbox, kube::Client, Stores) {
    let sandbox = purchase_guard_sandbox::Sandbox::start(purchase_guard_sandbox::Config::default())
        .await
        .expect("sandbox");
    common::install_crds(&sandbox);
    let (partners, customers, decisions) = objects();
    let load = |v: Value| {
        sandbox.server.apply_object(v, "bench").expect("object loaded");
    };
    // The distributor's namespace, where its decisions live.
    load(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dist"}}));
    for p in partners {
        load(serde_json::to_value(p).expect("partner"));
    }
    for c in customers {
        load(serde_json::to_value(c).expect("customer"));
    }
    for d in decisions {
        load(serde_json::to_value(d).expect("decision"));
    }
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(purchase_guard::controller::run(
        client.clone(),
        Arc::new(purchase_guard::controller::Metrics::default()),
        Default::default(),
        tokio::sync::watch::channel(false).1,
        std::future::pending(),
        move |stores| {
            let _ = tx.send(stores);
        },
    ));
    let stores = rx.await.expect("the caches sync");
    (sandbox, client, stores)
}

/// Webhooks judging from `stores` in `consistency` mode.
async fn webhooks(client: &kube::Client, stores: &Stores, consistency: Consistency) -> Arc<Webhooks> {
    let settings = FreshnessSettings {
        consistency,
        // Confirmed once here; the benchmark measures judging, not the background checks.
        max_staleness: Duration::from_secs(24 * 3600),
        // At 100,000 customers one check (every customer's and decision's metadata by pages)
        // takes longer than the default bound on 2 shared cores.
        check_timeout: Duration::from_secs(300),
        ..FreshnessSettings::default()
    };
    let webhooks = Arc::new(Webhooks::new(Settings {
        freshness: settings,
        ..Settings::default()
    }));
    let freshness = Arc::new(Freshness::new(client.clone(), stores.clone(), settings.check_timeout));
    freshness.check_now().await.expect("the caches are current");
    webhooks.set_stores(stores.clone());
    webhooks.set_freshness(freshness);
    webhooks
}

/// Whether the replica admits a purchase in customer `i`'s namespace.
async fn admits(webhooks: &Webhooks, i: usize) -> bool {
    let reply = server::review_body(webhooks, &Metrics::default(), Which::Purchases, &review(i)).await;
    let v: Value = serde_json::from_slice(&reply.body).expect("a review");
    v["response"]["allowed"].as_bool().expect("allowed")
}

/// Cached mode: the delay from a restriction's write returning to the replica refusing, and
/// the raw watch latency of the same writes.
async fn enforcement_delay(client: &kube::Client, stores: &Stores, webhooks: &Webhooks, rounds: usize) {
    let decisions: Api<PurchaseRestriction> = Api::namespaced(client.clone(), "dist");
    // A separate watch: when each write's event arrives, by resourceVersion.
    let arrivals: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> = Default::default();
    let seen = arrivals.clone();
    let (listed_tx, listed) = tokio::sync::oneshot::channel::<()>();
    let mut listed_tx = Some(listed_tx);
    let watch = tokio::spawn(
        kube::runtime::watcher(decisions.clone(), kube::runtime::watcher::Config::default()).for_each(move |e| {
            use kube::runtime::watcher::Event;
            match e {
                Ok(Event::Apply(d) | Event::InitApply(d)) => {
                    if let Some(rv) = d.metadata.resource_version {
                        seen.lock().expect("arrivals").insert(rv, Instant::now());
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(tx) = listed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                _ => {}
            }
            async {}
        }),
    );
    // The raw watch is established before the first write.
    tokio::time::timeout(Duration::from_secs(30), listed)
        .await
        .expect("the raw watch lists in time")
        .expect("the raw watch runs");
    let bound = Duration::from_secs(10);
    // Customer 1 is unrestricted: restrict it, wait for the refusal, lift, wait for admission.
    let mut enforced = Vec::with_capacity(rounds);
    let mut watched = Vec::with_capacity(rounds);
    for round in 0..rounds {
        for (state, admitted) in [("Restricted", false), ("Unrestricted", true)] {
            let patch = json!({"spec": {"state": state, "reason": format!("round {round}: {state}")}});
            let mut progress = stores.progress.subscribe();
            let written = decisions
                .patch("c-1", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("decision written");
            let returned = Instant::now();
            let enforced_in_time = tokio::time::timeout(bound, async {
                loop {
                    progress.borrow_and_update();
                    if admits(webhooks, 1).await == admitted {
                        break;
                    }
                    progress.changed().await.expect("the watches run");
                }
            })
            .await;
            assert!(
                enforced_in_time.is_ok(),
                "round {round}: the replica did not judge customer c-1 {state} within {bound:?}"
            );
            if !admitted {
                enforced.push(returned.elapsed());
                let rv = written.metadata.resource_version.expect("a resourceVersion");
                // The arrival time is taken by the watch task; this only looks it up.
                let arrived = tokio::time::timeout(bound, async {
                    loop {
                        if let Some(t) = arrivals.lock().expect("arrivals").get(&rv) {
                            break *t;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
                .await
                .unwrap_or_else(|_| panic!("round {round}: the raw watch never delivered resourceVersion {rv}"));
                watched.push(arrived.saturating_duration_since(returned));
            }
        }
    }
    watch.abort();
    enforced.sort();
    watched.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |v: &[Duration], q: f64| ms(v[(((v.len() - 1) as f64) * q).round() as usize]);
    println!("\ncached mode, {rounds} restrictions: from the write returning to ...");
    println!("                               | p50 ms | p99 ms");
    println!(
        "... the replica refusing        | {:>6.3} | {:>6.3}",
        p(&enforced, 0.5),
        p(&enforced, 0.99)
    );
    println!(
        "... a raw watch's event arriving | {:>6.3} | {:>6.3}",
        p(&watched, 0.5),
        p(&watched, 0.99)
    );
}

fn main() {
    let seconds: f64 = common::env_or("ADMISSION_BENCH_SECONDS", 2.0);
    let rounds: usize = common::env_or::<usize>("ADMISSION_BENCH_ROUNDS", 5).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ca = tls::new_authority("bench CA", Duration::from_secs(3600)).expect("CA");
        let pair = tls::issue(&ca, &["localhost".to_string()], Duration::from_secs(3600)).expect("cert");
        let loading = Instant::now();
        let (_sandbox, client, stores) = replica_of_sandbox().await;
        println!(
            "{} customers and their decisions loaded and watched in {:.1} s",
            customer_count(),
            loading.elapsed().as_secs_f64()
        );
        let cached = webhooks(&client, &stores, Consistency::Cached).await;
        let linearizable = webhooks(&client, &stores, Consistency::Linearizable).await;
        let cached_port = serve(server::router(cached.clone(), Arc::new(Metrics::default())), &pair).await;
        let linearizable_port = serve(server::router(linearizable, Arc::new(Metrics::default())), &pair).await;
        let baseline_port = serve(Router::new().route("/validate/purchases", post(allow_all)), &pair).await;
        // Half the reviews are for restricted customers: check both modes judge them.
        for port in [cached_port, linearizable_port] {
            let (sent, denied) = worker(port, ca.cert.clone(), Step::new(0.5, 0), 0).await;
            let share = denied as f64 / sent.len().max(1) as f64;
            assert!(
                (0.4..=0.6).contains(&share),
                "about half the reviews are denials: {denied} of {}",
                sent.len()
            );
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "\npurchase webhook (cached) vs allow-all HTTPS baseline, {} customers loaded; {rounds} rounds of each per concurrency, alternating, each step at least {seconds} s and {MIN_SAMPLES} samples",
            customer_count()
        );
        println!(
            "concurrency | baseline reviews/s | p99 ms | cached reviews/s | p99 ms | p99 ratio median [min-max] | throughput ratio median [min-max]"
        );
        let mut summary = Vec::new();
        for concurrency in [1, 4, 16, 64] {
            let mut p99_ratios = Vec::new();
            let mut rate_ratios = Vec::new();
            let (mut b_rates, mut b_p99s, mut c_rates, mut c_p99s) = (vec![], vec![], vec![], vec![]);
            for round in 0..rounds {
                // The order swaps every round: neither side always runs on a warmer machine.
                let (b, c) = if round % 2 == 0 {
                    let b = measure(baseline_port, &ca.cert, concurrency, seconds, MIN_SAMPLES).await;
                    let c = measure(cached_port, &ca.cert, concurrency, seconds, MIN_SAMPLES).await;
                    (b, c)
                } else {
                    let c = measure(cached_port, &ca.cert, concurrency, seconds, MIN_SAMPLES).await;
                    let b = measure(baseline_port, &ca.cert, concurrency, seconds, MIN_SAMPLES).await;
                    (b, c)
                };
                assert!(
                    b.samples >= MIN_SAMPLES && c.samples >= MIN_SAMPLES,
                    "a step ended with fewer than {MIN_SAMPLES} samples"
                );
                p99_ratios.push(c.p99.as_secs_f64() / b.p99.as_secs_f64());
                rate_ratios.push(c.rate / b.rate);
                b_rates.push(b.rate);
                b_p99s.push(ms(b.p99));
                c_rates.push(c.rate);
                c_p99s.push(ms(c.p99));
            }
            let (p99, p99_min, p99_max) = common::spread(&mut p99_ratios);
            let (rate, rate_min, rate_max) = common::spread(&mut rate_ratios);
            println!(
                "{concurrency:>11} | {:>18.0} | {:>6.3} | {:>16.0} | {:>6.3} | {p99:.2}x [{p99_min:.2}-{p99_max:.2}] | {rate:.2}x [{rate_min:.2}-{rate_max:.2}]",
                common::spread(&mut b_rates).0,
                common::spread(&mut b_p99s).0,
                common::spread(&mut c_rates).0,
                common::spread(&mut c_p99s).0,
            );
            summary.push((concurrency, p99, rate));
        }
        let p99_met = summary.iter().all(|(_, p99, _)| *p99 <= 1.10);
        let rate_met = summary.iter().all(|(_, _, rate)| *rate >= 0.90);
        println!(
            "targets (medians): p99 within 1.10x of the baseline at every concurrency: {}; throughput at least 0.90x: {}",
            if p99_met { "met" } else { "NOT met" },
            if rate_met { "met" } else { "NOT met" }
        );

        println!("\nlinearizable mode, one step per concurrency (at most {} s each)", MAX_STEP.as_secs());
        println!("concurrency | reviews/s | p50 ms | p99 ms | samples");
        let linearizable_steps: &[usize] = if common::env_or("ADMISSION_BENCH_LINEARIZABLE", 1) == 0 {
            println!("(skipped: ADMISSION_BENCH_LINEARIZABLE=0)");
            &[]
        } else {
            &[1, 4, 16, 64]
        };
        for &concurrency in linearizable_steps {
            let l = measure(linearizable_port, &ca.cert, concurrency, seconds, 0).await;
            println!(
                "{concurrency:>11} | {:>9.0} | {:>6.3} | {:>6.3} | {}",
                l.rate,
                ms(l.p50),
                ms(l.p99),
                l.samples
            );
        }
        enforcement_delay(&client, &stores, &cached, 200).await;
    });
}
