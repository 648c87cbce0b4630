//! Helm 4 (the engine of helm-python-sdk, as CI uses it) installs into the sandbox with its
//! default release storage (a Secret in the release namespace; it was refused with "the
//! namespace of the provided object does not match"), waits for the chart on the simulated
//! nodes, and uninstalls it (Helm sends its DeleteOptions as protobuf).

use purchase_guard_sandbox::{Config, Sandbox};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_with_secret_storage() {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let dir = std::env::temp_dir().join(format!("pg-helm-{}", std::process::id()));
    let templates = dir.join("chart/templates");
    std::fs::create_dir_all(&templates).expect("chart dir");
    std::fs::write(
        dir.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: mini\nversion: 0.1.0\n",
    )
    .expect("Chart.yaml");
    std::fs::write(
        templates.join("configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mini\ndata:\n  greeting: hello\n",
    )
    .expect("template");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let script = r#"
import sys
from helm_python import Config
config = Config(kubeconfig_path=sys.argv[1], namespace="default")
release = config.install(sys.argv[2], "mini", namespace="default")
print(release["status"])
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&kubeconfig)
        .arg(dir.join("chart"))
        .output()
        .expect("python3 runs (python3 -m pip install helm-python-sdk)");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.trim() == "deployed",
        "helm install: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(client.clone(), "default");
    let release = secrets
        .get("sh.helm.release.v1.mini.v1")
        .await
        .expect("the release Secret");
    assert_eq!(
        release
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("owner"))
            .map(String::as_str),
        Some("helm")
    );
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "default");
    assert!(maps.get("mini").await.is_ok(), "the chart's ConfigMap is installed");
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

/// `helm install --wait=watcher` (Helm 4's kstatus watcher) of purchase-guard's own chart:
/// with simulated workloads its Deployment becomes Available on the simulated nodes and the
/// release is deployed; without them nothing reports the Deployment's Pods, so the same wait
/// times out (what the simulation adds). `helm uninstall --wait` then removes what it installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_waits_for_the_chart_on_simulated_nodes() {
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/purchase-guard");
    let script = r#"
import sys
from helm_python import Config
config = Config(kubeconfig_path=sys.argv[1], namespace="pg-system")
try:
    release = config.install(sys.argv[2], "pg", namespace="pg-system", create_namespace=True, wait="watcher", timeout=int(sys.argv[3]))
    print("OK " + release["status"])
except Exception as e:
    print("ERROR " + str(e))
"#;
    let uninstall = r#"
import sys
from helm_python import Config
config = Config(kubeconfig_path=sys.argv[1], namespace="pg-system")
print(config.uninstall("pg", wait="watcher", timeout=60)["release"]["status"])
"#;
    for (simulate, timeout) in [(true, "60"), (false, "5")] {
        let sandbox = Sandbox::start(Config {
            simulate_workloads: simulate,
            ..Config::default()
        })
        .await
        .expect("sandbox");
        let dir = std::env::temp_dir().join(format!("pg-helm-chart-{}-{simulate}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let kubeconfig = dir.join("kubeconfig");
        sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&kubeconfig)
            .arg(&chart)
            .arg(timeout)
            .output()
            .expect("python3 runs (python3 -m pip install helm-python-sdk)");
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
        let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client.clone(), "pg-system");
        let status = deployments
            .get("pg-purchase-guard")
            .await
            .expect("the chart's Deployment")
            .status
            .unwrap_or_default();
        if simulate {
            assert_eq!(printed, "OK deployed", "{}", String::from_utf8_lossy(&out.stderr));
            let available = status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            assert!(available, "the Deployment is Available");
            assert_eq!(status.ready_replicas, status.replicas);

            let out = Command::new("python3")
                .args(["-c", uninstall])
                .arg(&kubeconfig)
                .output()
                .expect("python3 runs");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "uninstalled",
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let gone = deployments.get_opt("pg-purchase-guard").await.expect("get");
            assert!(gone.is_none(), "the Deployment is deleted");
            let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(client.clone(), "pg-system");
            let releases = secrets
                .list(&kube::api::ListParams::default().labels("owner=helm"))
                .await
                .expect("list");
            assert!(releases.items.is_empty(), "the release record is deleted");
            let webhooks: kube::Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
                kube::Api::all(client);
            assert!(
                webhooks.get_opt("pg-purchase-guard").await.expect("get").is_none(),
                "the cluster-scoped objects are deleted"
            );
        } else {
            assert!(printed.starts_with("ERROR"), "without simulation: {printed}");
            assert_eq!(status.ready_replicas, None, "nothing reports Pods");
        }
        let _ = std::fs::remove_dir_all(&dir);
        sandbox.shutdown().await;
    }
}
