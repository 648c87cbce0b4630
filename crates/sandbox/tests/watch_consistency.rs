//! kube-runtime's watcher and reflector stay consistent with the sandbox through many mixed
//! writes, a forced watch restart and a 410 Gone.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use purchase_guard_sandbox::{Config, Sandbox};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn client(sandbox: &Sandbox) -> kube::Client {
    let config = kube::Config::new(sandbox.url().parse().expect("a valid URL"));
    kube::Client::try_from(config).expect("a client")
}

fn config_map(name: &str, value: u32) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_string());
    cm.data = Some(BTreeMap::from([("v".to_string(), value.to_string())]));
    cm
}

/// A small deterministic generator, so that a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn snapshot(objects: impl Iterator<Item = (String, String, String)>) -> BTreeMap<String, (String, String)> {
    objects.map(|(name, rv, v)| (name, (rv, v))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_matches_a_fresh_list_after_mixed_writes_restart_and_gone() {
    let sandbox = Sandbox::start(Config {
        history: 200,
        ..Config::default()
    })
    .await
    .expect("sandbox starts");
    let client = client(&sandbox).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let (reader, writer) = reflector::store();
    let stream = watcher(api.clone(), watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let errors = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let errors_seen = errors.clone();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if item.is_err() {
                errors_seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    reader.wait_until_ready().await.expect("the reflector syncs");

    let mut rng = Lcg(42);
    let mut live: Vec<String> = Vec::new();
    for i in 0..1000u32 {
        if i == 300 {
            // A restart: every watch ends and resumes from its last resourceVersion.
            sandbox.server.store.close_watches();
        }
        if i == 600 {
            // A partition: the watch ends and cannot resume while writes go on.
            sandbox.server.store.pause_watches();
            sandbox.server.store.close_watches();
        }
        if i == 700 {
            // The history the watcher would resume from is gone: it gets 410 Gone and must
            // relist.
            sandbox.server.store.lock().compact();
            sandbox.server.store.resume_watches();
        }
        let op = rng.next() % 10;
        if live.is_empty() || op < 4 {
            let name = format!("cm-{i}");
            api.create(&PostParams::default(), &config_map(&name, i))
                .await
                .expect("create");
            live.push(name);
        } else if op < 8 {
            let name = live[(rng.next() as usize) % live.len()].clone();
            let mut cm = api.get(&name).await.expect("get");
            cm.data = Some(BTreeMap::from([("v".to_string(), i.to_string())]));
            api.replace(&name, &PostParams::default(), &cm).await.expect("replace");
        } else {
            let idx = (rng.next() as usize) % live.len();
            let name = live.swap_remove(idx);
            api.delete(&name, &DeleteParams::default()).await.expect("delete");
        }
    }

    let fresh = || async {
        snapshot(
            api.list(&ListParams::default())
                .await
                .expect("list")
                .items
                .into_iter()
                .map(|cm| {
                    (
                        cm.metadata.name.clone().unwrap_or_default(),
                        cm.metadata.resource_version.clone().unwrap_or_default(),
                        cm.data.and_then(|d| d.get("v").cloned()).unwrap_or_default(),
                    )
                }),
        )
    };
    let expected = fresh().await;
    // What the test left, and the root CA ConfigMap every namespace has.
    assert_eq!(expected.len(), live.len() + 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cached = snapshot(reader.state().into_iter().map(|cm| {
            (
                cm.metadata.name.clone().unwrap_or_default(),
                cm.metadata.resource_version.clone().unwrap_or_default(),
                cm.data.as_ref().and_then(|d| d.get("v").cloned()).unwrap_or_default(),
            )
        }));
        if cached == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reflector did not converge: {} cached vs {} listed",
            cached.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The 410 was seen and handled by relisting (the watcher reports it as an error item).
    assert!(
        errors.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the forced 410 reached the watcher"
    );
    task.abort();
    sandbox.shutdown().await;
}
