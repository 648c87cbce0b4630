//! Purchase webhook benchmark: AdmissionReviews over HTTPS with keep-alive at rising
//! concurrency, with 10,000 customers and their decisions loaded, next to an allow-all HTTPS
//! handler (same TLS server, same JSON parsing of the review, no judgement) measured in the
//! same run.
//!
//! Run: `cargo bench --bench admission` (`ADMISSION_BENCH_SECONDS` sets each step's length).
//! Client and servers share the machine's cores.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use http_body_util::{BodyExt, Full};
use purchase_guard::api::{CustomerAccount, Partner, PurchaseRestriction};
use purchase_guard::index::Stores;
use purchase_guard::webhook::Metrics;
use purchase_guard::webhook::{Settings, Webhooks};
use purchase_guard::webhook::{server, tls};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CUSTOMERS: usize = 10_000;

fn loaded_stores() -> Stores {
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
    // The purchase webhook evaluates each customer from the caches: one decision per customer
    // by its distributor, accepted as the controller records it, half of them restrictions.
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
    Stores::from_objects(partners, customers, vec![], decisions)
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
        let webhooks = Arc::new(Webhooks::new(Settings::default()));
        webhooks.set_stores(loaded_stores());
        let purchase_port = serve(server::router(webhooks, Arc::new(Metrics::default())), &pair).await;
        let baseline_port = serve(Router::new().route("/validate/purchases", post(allow_all)), &pair).await;
        // Half the reviews are for restricted customers: check the webhook judges them.
        let (sent, denied) = worker(
            purchase_port,
            ca.cert.clone(),
            Instant::now() + Duration::from_millis(200),
            0,
        )
        .await;
        let share = denied as f64 / sent.len().max(1) as f64;
        assert!(
            (0.4..=0.6).contains(&share),
            "about half the reviews are denials: {denied} of {}",
            sent.len()
        );
        println!("purchase webhook vs allow-all HTTPS baseline, {CUSTOMERS} customers loaded, {seconds} s per step");
        println!(
            "concurrency | webhook reviews/s | p50 ms | p99 ms | baseline reviews/s | p50 ms | p99 ms | p99 ratio"
        );
        for concurrency in [1, 4, 16, 64] {
            let (b_rate, b50, b99) = measure(baseline_port, &ca.cert, concurrency, seconds).await;
            let (w_rate, w50, w99) = measure(purchase_port, &ca.cert, concurrency, seconds).await;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{concurrency:>11} | {w_rate:>17.0} | {:>6.3} | {:>6.3} | {b_rate:>18.0} | {:>6.3} | {:>6.3} | {:.2}x",
                ms(w50),
                ms(w99),
                ms(b50),
                ms(b99),
                w99.as_secs_f64() / b99.as_secs_f64()
            );
        }
    });
}
