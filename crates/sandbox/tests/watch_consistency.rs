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

/// A watch with a label selector sees what enters and leaves its selection as kube-apiserver
/// shows it: an object that starts to match is ADDED, one that stops matching is DELETED (its
/// last matching content, at the resourceVersion of the change), both live and when the watch
/// resumes from an earlier resourceVersion; a reflector with the selector forgets the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_watch_sees_objects_enter_and_leave_its_selection() {
    use kube::api::{Patch, PatchParams, WatchEvent, WatchParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox starts");
    let client = client(&sandbox).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let gold = WatchParams::default().labels("tier=gold");
    let from = api
        .list(&ListParams::default())
        .await
        .expect("lists")
        .metadata
        .resource_version
        .expect("a resourceVersion");

    let (reader, writer) = reflector::store();
    let reflected = watcher(api.clone(), watcher::Config::default().labels("tier=gold"))
        .reflect(writer)
        .touched_objects();
    let reflecting = tokio::spawn(async move {
        futures::pin_mut!(reflected);
        while reflected.next().await.is_some() {}
    });
    reader.wait_until_ready().await.expect("the reflector lists");
    let live = api.watch(&gold, &from).await.expect("the watch starts").boxed();
    let labelled = |name: &str, tier: &str| {
        let mut cm = config_map(name, 1);
        cm.metadata.labels = Some(BTreeMap::from([("tier".to_string(), tier.to_string())]));
        cm
    };
    let relabel = |tier: &str| Patch::Merge(serde_json::json!({"metadata": {"labels": {"tier": tier}}}));
    let pp = PatchParams::default();
    let rv = |cm: ConfigMap| cm.metadata.resource_version.expect("a resourceVersion");

    api.create(&PostParams::default(), &labelled("a", "gold"))
        .await
        .expect("a");
    api.create(&PostParams::default(), &labelled("b", "silver"))
        .await
        .expect("b");
    api.patch("b", &pp, &relabel("gold")).await.expect("b turns gold");
    let a_leaves = rv(api.patch("a", &pp, &relabel("silver")).await.expect("a turns silver"));
    api.patch("b", &pp, &Patch::Merge(serde_json::json!({"data": {"v": "2"}})))
        .await
        .expect("b changes");
    api.patch("a", &pp, &Patch::Merge(serde_json::json!({"data": {"v": "3"}})))
        .await
        .expect("a changes outside the selection");
    let b_deleted = api.delete("b", &DeleteParams::default()).await.expect("b goes");
    assert!(b_deleted.is_left() || b_deleted.is_right());

    let expected = [
        ("ADDED", "a", "gold"),
        ("ADDED", "b", "gold"),
        ("DELETED", "a", "gold"),
        ("MODIFIED", "b", "gold"),
        ("DELETED", "b", "gold"),
    ];
    let seen = |stream: futures::stream::BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>| async move {
        let mut seen = Vec::new();
        let mut stream = stream;
        // One deadline for all: bookmarks keep a quiet watch talking.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < expected.len() {
            let event = tokio::time::timeout_at(deadline, stream.next())
                .await
                .unwrap_or_else(|_| panic!("the watch went quiet after {seen:?}"))
                .expect("the watch goes on")
                .expect("an event");
            let (kind, cm) = match event {
                WatchEvent::Added(cm) => ("ADDED", cm),
                WatchEvent::Modified(cm) => ("MODIFIED", cm),
                WatchEvent::Deleted(cm) => ("DELETED", cm),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("a watch error: {e:?}"),
            };
            let tier = cm.metadata.labels.as_ref().and_then(|l| l.get("tier")).cloned();
            seen.push((
                kind,
                cm.metadata.name.clone().unwrap_or_default(),
                tier.unwrap_or_default(),
                rv(cm),
            ));
        }
        seen
    };
    for (watch, events) in [
        ("live", seen(live).await),
        (
            "resumed",
            seen(api.watch(&gold, &from).await.expect("the watch resumes").boxed()).await,
        ),
    ] {
        let shape: Vec<(&str, &str, &str)> = events.iter().map(|(k, n, t, _)| (*k, n.as_str(), t.as_str())).collect();
        assert_eq!(shape, expected, "the {watch} watch");
        assert_eq!(
            events[2].3, a_leaves,
            "the {watch} watch: a's DELETED carries the resourceVersion of the change that took it out"
        );
    }
    // A marker after everything: once the reflector has it, it has had every event before.
    api.create(&PostParams::default(), &labelled("c", "gold"))
        .await
        .expect("c");
    let deadline = Instant::now() + Duration::from_secs(10);
    let names = || {
        let mut names: Vec<String> = reader.state().iter().filter_map(|c| c.metadata.name.clone()).collect();
        names.sort();
        names
    };
    while !names().contains(&"c".to_string()) {
        assert!(Instant::now() < deadline, "the reflector never got c: {:?}", names());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names(), ["c"], "the reflector forgets what left its selection");
    reflecting.abort();
}
