//! Sandbox throughput and latency: create, list and watch delivery with 50,000 objects, next
//! to the round trip of a trivial request (`GET /version`) measured in the same run; then
//! custom-resource writes against ConfigMap writes, in alternating rounds.
//!
//! Run: `cargo bench -p purchase-guard-sandbox --bench throughput`
//! (`SANDBOX_BENCH_OBJECTS` sets the object count, default 50000; `SANDBOX_BENCH_ROUNDS` the
//! rounds of the write comparison, default 5).

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use purchase_guard_sandbox::{Config, Sandbox};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `n` writes, `concurrency` at a time; returns writes per second.
async fn run_writes<F, Fut>(n: usize, concurrency: usize, write: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(write)
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    n as f64 / t.elapsed().as_secs_f64()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let objects: usize = std::env::var("SANDBOX_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let namespaces = 10;
    let concurrency = 32;
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");

    // Baseline: the round trip of a trivial request.
    let mut base = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        client.apiserver_version().await.expect("version");
        base.push(t.elapsed());
    }
    base.sort();

    let ns_api: Api<Namespace> = Api::all(client.clone());
    for i in 0..namespaces {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(format!("bench-{i}"));
        ns_api.create(&PostParams::default(), &ns).await.expect("namespace");
    }

    // Create.
    let started = Instant::now();
    let latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(objects)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let latencies = latencies.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut local = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= objects {
                    break;
                }
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), &format!("bench-{}", i % namespaces));
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("cm-{i}"));
                cm.data = Some(BTreeMap::from([("payload".to_string(), "x".repeat(64))]));
                let t = Instant::now();
                api.create(&PostParams::default(), &cm).await.expect("create");
                local.push(t.elapsed());
            }
            latencies.lock().await.extend(local);
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let create_elapsed = started.elapsed();
    let mut create = std::mem::take(&mut *latencies.lock().await);
    create.sort();

    // List.
    let all: Api<ConfigMap> = Api::all(client.clone());
    let t = Instant::now();
    let listed = all.list(&ListParams::default()).await.expect("list");
    let list_elapsed = t.elapsed();
    // Besides the benchmark's, every namespace holds its kube-root-ca.crt ConfigMap.
    let ours = |items: &[ConfigMap]| {
        items
            .iter()
            .filter(|c| c.metadata.name.as_deref().is_some_and(|n| n.starts_with("cm-")))
            .count()
    };
    assert_eq!(ours(&listed.items), objects);
    let t = Instant::now();
    let mut paged = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = all.list(&lp).await.expect("page");
        paged += ours(&page.items);
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    let paged_elapsed = t.elapsed();
    assert_eq!(paged, objects);

    // Watch delivery: 10 watches on all ConfigMaps; each write carries its send time.
    let epoch = Instant::now();
    let rv = listed.metadata.resource_version.unwrap_or_default();
    let watchers = 10;
    let updates = 2000;
    let deliveries = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    // The watching clients read the raw HTTP stream and only look for the send time, so that
    // decoding does not compete with the server for the two cores.
    let mut watch_tasks = Vec::new();
    for _ in 0..watchers {
        let deliveries = deliveries.clone();
        let addr = sandbox.addr;
        let rv = rv.clone();
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /api/v1/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=60 HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n"
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
            .await
            .expect("request");
        watch_tasks.push(tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            let mut local = Vec::new();
            let needle = b"\"sent-ns\":\"";
            while local.len() < updates {
                let n = match tokio::io::AsyncReadExt::read(&mut stream, &mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let now = epoch.elapsed();
                buf.extend_from_slice(&chunk[..n]);
                // Each event is one line; take the complete ones.
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    if let Some(pos) = line.windows(needle.len()).position(|w| w == needle) {
                        let digits: String = line[pos + needle.len()..]
                            .iter()
                            .take_while(|c| c.is_ascii_digit())
                            .map(|c| *c as char)
                            .collect();
                        if let Ok(sent) = digits.parse::<u64>() {
                            local.push(now.saturating_sub(Duration::from_nanos(sent)));
                        }
                    }
                }
            }
            deliveries.lock().await.extend(local);
        }));
    }
    // Let the watches start before writing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-0");
    let mut write_rtt = Vec::new();
    for i in 0..updates {
        let name = format!("cm-{}", (i * namespaces) % objects);
        let sent = epoch.elapsed().as_nanos().to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {"sent-ns": sent}}});
        let t = Instant::now();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
        write_rtt.push(t.elapsed());
    }
    for t in watch_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let mut delivered = std::mem::take(&mut *deliveries.lock().await);
    delivered.sort();
    write_rtt.sort();

    println!("sandbox benchmark: {objects} ConfigMaps in {namespaces} namespaces, {concurrency} concurrent clients");
    println!(
        "baseline GET /version round trip: p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&base, 0.5)),
        ms(percentile(&base, 0.99))
    );
    println!(
        "create: {:.0} objects/s, p50 {:.3} ms, p99 {:.3} ms (p99 {:.2}x the baseline p99)",
        objects as f64 / create_elapsed.as_secs_f64(),
        ms(percentile(&create, 0.5)),
        ms(percentile(&create, 0.99)),
        percentile(&create, 0.99).as_secs_f64() / percentile(&base, 0.99).as_secs_f64()
    );
    println!(
        "list all: {:.1} ms ({:.0} objects/s); paginated by 500: {:.1} ms",
        ms(list_elapsed),
        objects as f64 / list_elapsed.as_secs_f64(),
        ms(paged_elapsed)
    );
    println!(
        "watch delivery ({} deliveries to {watchers} watches, measured from before the write request was sent): p50 {:.3} ms, p99 {:.3} ms; the write round trip itself: p50 {:.3} ms, p99 {:.3} ms",
        delivered.len(),
        ms(percentile(&delivered, 0.5)),
        ms(percentile(&delivered, 0.99)),
        ms(percentile(&write_rtt, 0.5)),
        ms(percentile(&write_rtt, 0.99))
    );
    // Custom resources against ConfigMaps, interleaved: per round, the same number of
    // creates of each kind, then the same number of merge patches (a ConfigMap's data, a
    // PurchaseRestriction's status subresource), the order swapped every round; each round
    // gives a ratio of rates.
    let crd_api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd_file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crds/purchaseguard.io_purchaserestrictions.yaml"
    );
    let crd = serde_yaml_ng::from_str(&std::fs::read_to_string(crd_file).expect("the CRD file")).expect("a CRD");
    crd_api.create(&PostParams::default(), &crd).await.expect("CRD created");
    let rounds: usize = std::env::var("SANDBOX_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let per_round = 3_000usize;
    let ar = kube::api::ApiResource {
        group: "purchaseguard.io".into(),
        version: "v1alpha1".into(),
        api_version: "purchaseguard.io/v1alpha1".into(),
        kind: "PurchaseRestriction".into(),
        plural: "purchaserestrictions".into(),
    };
    let mut rates: Vec<[f64; 4]> = Vec::new();
    for round in 0..rounds {
        let ns = format!("writes-{round}");
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(ns.clone());
        ns_api
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace");
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let restrictions: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let cm_create = || {
            let api = configmaps.clone();
            run_writes(per_round, concurrency, move |i| {
                let api = api.clone();
                async move {
                    let mut cm = ConfigMap::default();
                    cm.metadata.name = Some(format!("cm-{i}"));
                    cm.data = Some(BTreeMap::from([
                        ("customer".to_string(), format!("c-{i}")),
                        ("reason".to_string(), "benchmark".to_string()),
                    ]));
                    api.create(&PostParams::default(), &cm).await.expect("create");
                }
            })
        };
        let cr_create = || {
            let api = restrictions.clone();
            run_writes(per_round, concurrency, move |i| {
                let api = api.clone();
                async move {
                    let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
                        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
                        "metadata": {"name": format!("pr-{i}")},
                        "spec": {"customer": format!("c-{i}"), "state": "Restricted", "reason": "benchmark"}
                    }))
                    .expect("an object");
                    api.create(&PostParams::default(), &obj).await.expect("create");
                }
            })
        };
        let cm_patch = || {
            let api = configmaps.clone();
            run_writes(per_round, concurrency, move |i| {
                let api = api.clone();
                async move {
                    let patch = serde_json::json!({"data": {"reason": "benchmark, patched"}});
                    api.patch(&format!("cm-{i}"), &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .expect("patch");
                }
            })
        };
        let cr_patch = || {
            let api = restrictions.clone();
            run_writes(per_round, concurrency, move |i| {
                let api = api.clone();
                async move {
                    let status = serde_json::json!({"status": {"observedGeneration": 1, "issuer": "bench",
                        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "m", "lastTransitionTime": "2026-11-26T00:00:00Z"}]}});
                    api.patch_status(&format!("pr-{i}"), &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .expect("status");
                }
            })
        };
        let (cmc, crc, cmp, crp) = if round % 2 == 0 {
            let cmc = cm_create().await;
            let crc = cr_create().await;
            let cmp = cm_patch().await;
            let crp = cr_patch().await;
            (cmc, crc, cmp, crp)
        } else {
            let crc = cr_create().await;
            let cmc = cm_create().await;
            let crp = cr_patch().await;
            let cmp = cm_patch().await;
            (cmc, crc, cmp, crp)
        };
        rates.push([cmc, crc, cmp, crp]);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let m = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        (m, v[0], v[n - 1])
    };
    println!(
        "custom resources (PurchaseRestriction: schema, CEL rules, status subresource) against ConfigMaps, {rounds} rounds of {per_round} writes of each, {concurrency} concurrent clients, alternating:"
    );
    println!("write | ConfigMap writes/s (median) | PurchaseRestriction writes/s (median) | ratio median [min-max]");
    for (name, cm, cr) in [
        ("create", 0, 1),
        ("merge patch (ConfigMap data; PurchaseRestriction status)", 2, 3),
    ] {
        let (ratio, lo, hi) = median(rates.iter().map(|r| r[cr] / r[cm]).collect());
        println!(
            "{name} | {:.0} | {:.0} | {ratio:.2}x [{lo:.2}-{hi:.2}]",
            median(rates.iter().map(|r| r[cm]).collect()).0,
            median(rates.iter().map(|r| r[cr]).collect()).0,
        );
    }
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS of the benchmark process (sandbox and clients): {rss:.0} MiB");
    }
    sandbox.shutdown().await;
}
