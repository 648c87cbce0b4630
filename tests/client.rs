//! The client `purchase-guard run` builds (src/runtime/client.rs), against the sandbox:
//! responses many times its connections' read-buffer cap arrive whole.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use purchase_guard::runtime::client::{MAX_READ_BUFFER, from_config};

/// A list of about 2 MB and one object of about 600 KB, twice, on connections the pool reuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_larger_than_the_read_buffer_arrive_whole() {
    let sandbox = purchase_guard_sandbox::Sandbox::start(purchase_guard_sandbox::Config::default())
        .await
        .expect("sandbox");
    let client = from_config(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let filler = "x".repeat(2_000);
    for i in 0..1_000 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("cm-{i}")},
            "data": {"filler": filler, "index": i.to_string()}
        }))
        .expect("a ConfigMap");
        api.create(&PostParams::default(), &cm).await.expect("created");
    }
    let big: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "big"},
        "data": {"filler": "y".repeat(600_000)}
    }))
    .expect("a ConfigMap");
    api.create(&PostParams::default(), &big).await.expect("created");
    for _ in 0..2 {
        let list = api.list(&ListParams::default()).await.expect("listed");
        let mut indexes: Vec<usize> = list
            .items
            .iter()
            .filter_map(|c| c.data.as_ref()?.get("index")?.parse().ok())
            .collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..1_000).collect::<Vec<_>>());
        let text = serde_json::to_string(&list).expect("json");
        assert!(text.len() > 30 * MAX_READ_BUFFER, "{} bytes", text.len());
        let read = api.get("big").await.expect("read");
        assert_eq!(read.data.expect("data")["filler"].len(), 600_000);
    }
    sandbox.shutdown().await;
}
