//! Purchase webhook benchmark: AdmissionReviews over HTTPS with keep-alive at rising
//! concurrency, with 10,000 customers and their decisions loaded into a sandbox and watched by
//! a replica, in cached and in linearizable mode, next to an allow-all HTTPS handler (same TLS
//! server, same JSON parsing of the review, no judgement) measured in the same run.
//!
//! Then, in cached mode, the delay from a restriction's write returning to the replica
//! refusing the customer's purchases, next to the raw watch latency of the same writes (a
//! separate watch on PurchaseRestrictions).
//!
//! Run: `cargo bench --bench admission` (`ADMISSION_BENCH_SECONDS` sets each step's length).
//! Client, servers and the sandbox share the machine's cores.

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

const CUSTOMERS: usize = 10_000;

/// The partners, customers and decisions loaded: one decision per customer by its
/// distributor, accepted, half of them restrictions.
fn objects() -> (Vec<Partner>, Vec<CustomerAccount>, Vec<PurchaseRestriction>) {
    let mut partners = vec![serde_json::from_value::<Partner>(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}})).expect("partner")];
    for r in 0..50 {
        partners.push(serde_json::from_value(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": format!("res-{r}")}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": format!("res-{r}")}})).expect("partner"));
    }
    let customers: Vec<CustomerAccount> = (0..CUSTOMERS)
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
    let decisions: Vec<PurchaseRestriction> = (0..CUSTOMERS)
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
    let ns = format!("c-{}", i % CUSTOMERS);
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

/// One keep-alive HTTPS connection sending reviews back to back until `until`.
/// Sends reviews until `until`; returns each round trip and how many reviews were denied.
async fn worker(port: u16, ca: String, until: Instant, offset: usize) -> (Vec<Duration>, usize) {
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
    while Instant::now() < until {
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
        assert!(bytes.starts_with(b"{"), "a JSON review");
        let refusal = b"\"allowed\":false";
        if bytes.windows(refusal.len()).any(|w| w == refusal) {
            denied += 1;
        }
    }
    (latencies, denied)
}

async fn measure(port: u16, ca: &str, concurrency: usize, seconds: f64) -> (f64, Duration, Duration) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| tokio::spawn(worker(port, ca.to_string(), until, w * 104_729)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker").0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let p = |q: f64| all[(((all.len() - 1) as f64) * q).round() as usize];
    (all.len() as f64 / elapsed, p(0.5), p(0.99))
}

/// A sandbox holding the objects, and a replica's caches of it (not the leader: caches only).
async fn replica_of_sandbox() -> (purchase_guard_sandbox::Sandbox, kube::Client, Stores) {
    let sandbox = purchase_guard_sandbox::Sandbox::start(purchase_guard_sandbox::Config::default())
        .await
        .expect("sandbox");
    for crd in purchase_guard::crdgen::all() {
        let value = serde_json::to_value(&crd).expect("CRD");
        sandbox
            .server
            .apply_builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                None,
                value,
                "bench",
            )
            .expect("CRD installed");
    }
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
    let seconds: f64 = std::env::var("ADMISSION_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ca = tls::new_authority("bench CA", Duration::from_secs(3600)).expect("CA");
        let pair = tls::issue(&ca, &["localhost".to_string()], Duration::from_secs(3600)).expect("cert");
        let (_sandbox, client, stores) = replica_of_sandbox().await;
        let cached = webhooks(&client, &stores, Consistency::Cached).await;
        let linearizable = webhooks(&client, &stores, Consistency::Linearizable).await;
        let cached_port = serve(server::router(cached.clone(), Arc::new(Metrics::default())), &pair).await;
        let linearizable_port = serve(server::router(linearizable, Arc::new(Metrics::default())), &pair).await;
        let baseline_port = serve(Router::new().route("/validate/purchases", post(allow_all)), &pair).await;
        // Half the reviews are for restricted customers: check both modes judge them.
        for port in [cached_port, linearizable_port] {
            let (sent, denied) = worker(port, ca.cert.clone(), Instant::now() + Duration::from_millis(500), 0).await;
            let share = denied as f64 / sent.len().max(1) as f64;
            assert!(
                (0.4..=0.6).contains(&share),
                "about half the reviews are denials: {denied} of {}",
                sent.len()
            );
        }
        println!(
            "purchase webhook (cached, linearizable) vs allow-all HTTPS baseline, {CUSTOMERS} customers loaded, {seconds} s per step"
        );
        println!(
            "concurrency | baseline reviews/s | p50 ms | p99 ms | cached reviews/s | p50 ms | p99 ms | p99 vs baseline | linearizable reviews/s | p50 ms | p99 ms | p99 vs cached"
        );
        for concurrency in [1, 4, 16, 64] {
            let (b_rate, b50, b99) = measure(baseline_port, &ca.cert, concurrency, seconds).await;
            let (c_rate, c50, c99) = measure(cached_port, &ca.cert, concurrency, seconds).await;
            let (l_rate, l50, l99) = measure(linearizable_port, &ca.cert, concurrency, seconds).await;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{concurrency:>11} | {b_rate:>18.0} | {:>6.3} | {:>6.3} | {c_rate:>16.0} | {:>6.3} | {:>6.3} | {:>14.2}x | {l_rate:>22.0} | {:>6.3} | {:>6.3} | {:>12.2}x",
                ms(b50),
                ms(b99),
                ms(c50),
                ms(c99),
                c99.as_secs_f64() / b99.as_secs_f64(),
                ms(l50),
                ms(l99),
                l99.as_secs_f64() / c99.as_secs_f64()
            );
        }
        enforcement_delay(&client, &stores, &cached, 200).await;
    });
}
