//! Kinds every cluster serves, as kubectl shows them: APIService objects (one per served group
//! version, `v1.` for the core group, a CRD's appearing when it is served and going with it);
//! a Node that can be cordoned; ComponentStatuses; CertificateSigningRequests.

use purchase_guard_sandbox::{Config, Sandbox};
use std::process::Command;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_group_version_has_its_apiservice() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-apiservices-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let table = kubectl(&kubeconfig, &["get", "apiservices"]);
    let first = table.lines().next().unwrap_or_default();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    );
    for name in ["v1.", "v1.apps", "v1.batch", "v1.rbac.authorization.k8s.io"] {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no APIService {name} in:\n{table}"));
        assert_eq!(
            row.split_whitespace().skip(1).take(2).collect::<Vec<_>>(),
            ["Local", "True"],
            "{row}"
        );
    }
    let apps = kubectl(
        &kubeconfig,
        &[
            "get",
            "apiservice",
            "v1.apps",
            "-o",
            "jsonpath={.spec.group} {.spec.version} {.metadata.labels}",
        ],
    );
    assert_eq!(
        apps,
        r#"apps v1 {"kube-aggregator.kubernetes.io/automanaged":"onstart"}"#
    );

    // A CRD's group version: registered once it is served, gone with the CRD.
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/reports/reports.openreports.io.yaml"
    );
    kubectl(&kubeconfig, &["apply", "-f", root]);
    kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=established",
            "crd/reports.openreports.io",
            "--timeout=30s",
        ],
    );
    let crd = kubectl(
        &kubeconfig,
        &[
            "get",
            "apiservice",
            "v1alpha1.openreports.io",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert_eq!(crd, r#"{"kube-aggregator.kubernetes.io/automanaged":"true"}"#);
    kubectl(&kubeconfig, &["delete", "crd", "reports.openreports.io"]);
    let names = kubectl(&kubeconfig, &["get", "apiservices", "-o", "name"]);
    assert!(!names.contains("openreports"), "{names}");
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// The header of a `kubectl get` table, as words.
fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_component_statuses_and_certificate_signing_requests() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-cluster-kinds-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let nodes = kubectl(&kubeconfig, &["get", "nodes"]);
    assert_eq!(header(&nodes), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let row: Vec<&str> = nodes.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[2], row[4]),
        ("sandbox", "Ready", "control-plane", "v1.33.0"),
        "{nodes}"
    );
    kubectl(&kubeconfig, &["cordon", "sandbox"]);
    let nodes = kubectl(&kubeconfig, &["get", "node", "sandbox", "--no-headers"]);
    assert!(nodes.contains("Ready,SchedulingDisabled"), "{nodes}");
    kubectl(&kubeconfig, &["uncordon", "sandbox"]);

    let cs = kubectl(&kubeconfig, &["get", "componentstatuses"]);
    for component in ["scheduler", "controller-manager", "etcd-0"] {
        assert!(
            cs.lines().any(|l| l.starts_with(component) && l.contains("Healthy")),
            "{component} in:\n{cs}"
        );
    }

    let csr = r#"{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "alice"},
        "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"], "username": "alice", "expirationSeconds": 86400}}"#;
    let file = std::env::temp_dir().join(format!("pg-csr-{}.json", std::process::id()));
    std::fs::write(&file, csr).expect("writes");
    // The requester is who sent it, as kube-apiserver records it, not what spec.username says:
    // alice asks, naming someone else.
    let claimed = std::fs::read_to_string(&file)
        .expect("reads")
        .replace(r#""username": "alice""#, r#""username": "mallory""#);
    std::fs::write(&file, claimed).expect("writes");
    kubectl(
        &kubeconfig,
        &[
            "--as",
            "alice",
            "--as-group",
            "system:masters",
            "create",
            "-f",
            file.to_str().expect("UTF-8"),
        ],
    );
    let listed = kubectl(&kubeconfig, &["get", "csr"]);
    assert_eq!(
        header(&listed),
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        (row[0], row[2], row[3], row[4], row[5]),
        (
            "alice",
            "kubernetes.io/kube-apiserver-client",
            "alice",
            "24h",
            "Pending"
        ),
        "{listed}"
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// With `simulate_workloads`, workloads get their Pods on simulated nodes and report what
/// `kubectl rollout status`, `kubectl wait` and kube-rs clients wait for; no container runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_run_on_simulated_nodes() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::wait::{await_condition, conditions};

    let sandbox = Sandbox::start(Config {
        simulate_workloads: true,
        ..Config::default()
    })
    .await
    .expect("sandbox");
    let dir = std::env::temp_dir().join(format!("pg-workloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let k = |args: &[&str]| kubectl(&kubeconfig, args);
    let nodes = k(&["get", "nodes", "--no-headers", "-o", "custom-columns=N:.metadata.name"]);
    assert_eq!(
        nodes.split_whitespace().collect::<Vec<_>>(),
        ["sandbox", "sandbox-worker", "sandbox-worker2"]
    );

    let manifest = dir.join("workloads.yaml");
    let template = |app: &str, image: &str| {
        format!(
            "  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      containers:\n      - name: {app}\n        image: {image}\n"
        )
    };
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 3\n{}---\n\
             apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: default\nspec:\n  replicas: 2\n  serviceName: db\n{}---\n\
             apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: default\nspec:\n{}---\n\
             apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n  namespace: default\nspec:\n  completions: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: once\n        image: busybox\n",
            template("web", "nginx:1.27"),
            template("db", "postgres:16"),
            template("agent", "busybox")
        ),
    )
    .expect("manifest");
    k(&["apply", "-f", manifest.to_str().expect("UTF-8 path")]);
    for workload in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        let out = k(&["rollout", "status", workload, "--timeout=30s"]);
        assert!(
            // A StatefulSet with the default partition (0) reads as a partitioned roll out.
            out.contains("successfully rolled out") || out.contains("partitioned roll out complete: 2 new pods"),
            "{workload}: {out}"
        );
    }
    k(&["wait", "--for=condition=Available", "deployment/web", "--timeout=30s"]);
    k(&["wait", "--for=condition=complete", "job/once", "--timeout=30s"]);
    let jobs = k(&["get", "job", "once", "--no-headers"]);
    assert!(jobs.contains("Complete") && jobs.contains("2/2"), "{jobs}");
    let daemons = k(&["get", "daemonset", "agent", "--no-headers"]);
    assert_eq!(
        daemons.split_whitespace().skip(1).take(5).collect::<Vec<_>>(),
        ["3"; 5],
        "{daemons}"
    );

    // kube-rs: the Pods are Running on the nodes, one DaemonSet Pod per node.
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "default");
    let web = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("pods");
    assert_eq!(web.items.len(), 3);
    for pod in &web.items {
        let name = pod.metadata.name.clone().expect("name");
        let running = await_condition(pods.clone(), &name, conditions::is_pod_running());
        tokio::time::timeout(std::time::Duration::from_secs(10), running)
            .await
            .expect("running in time")
            .expect("watch");
        assert!(
            pod.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o[0].kind == "ReplicaSet")
        );
    }
    let agents = pods
        .list(&kube::api::ListParams::default().labels("app=agent"))
        .await
        .expect("pods");
    let mut agent_nodes: Vec<String> = agents
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    agent_nodes.sort();
    assert_eq!(agent_nodes, ["sandbox", "sandbox-worker", "sandbox-worker2"]);
    let wide = k(&["get", "pod", "db-0", "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ],
        "{wide}"
    );
    let row: Vec<&str> = wide.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!((row[1], row[2], row[3]), ("1/1", "Running", "0"), "{wide}");
    assert!(row[5].starts_with("10.244.") && row[6].starts_with("sandbox"), "{wide}");
    let describe = k(&["describe", "pod", "db-0"]);
    assert!(
        describe.contains("Simulated") && describe.contains("no container runs"),
        "{describe}"
    );

    // A new template rolls out a new ReplicaSet; the old one goes to zero.
    k(&["set", "image", "deployment/web", "web=nginx:1.28"]);
    k(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    let sets = k(&["get", "replicasets", "-l", "app=web", "--no-headers"]);
    let desired: Vec<&str> = sets
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default())
        .collect();
    assert_eq!(desired.iter().filter(|d| **d == "0").count(), 1, "{sets}");
    assert_eq!(desired.iter().filter(|d| **d == "3").count(), 1, "{sets}");

    // A cordoned node gets no new Pods; scaling through the scale subresource.
    k(&["cordon", "sandbox-worker"]);
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), "default");
    deployments
        .patch_scale(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("scale");
    k(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    let placed = k(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "--no-headers",
        "-o",
        "custom-columns=N:.spec.nodeName",
    ]);
    let on_cordoned = placed.lines().filter(|n| n.trim() == "sandbox-worker").count();
    assert!(on_cordoned <= 3, "only Pods placed before the cordon: {placed}");
    assert_eq!(placed.lines().count(), 7, "{placed}");
    assert_eq!(
        deployments
            .get_scale("web")
            .await
            .expect("scale")
            .status
            .expect("status")
            .replicas,
        7
    );

    // Deleting the Deployment takes its ReplicaSets and Pods with it.
    k(&["delete", "deployment", "web"]);
    let left = k(&["get", "replicasets,pods", "-l", "app=web", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

/// HorizontalPodAutoscalers are served at autoscaling/v2 (preferred) and autoscaling/v1, one
/// resource: an object written through either is read through both, converted as
/// kube-apiserver converts it; every verb works at v1 (create, get, list, watch, merge patch,
/// server-side apply, update, delete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn horizontal_pod_autoscalers_are_served_at_v1_and_v2() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::autoscaling::{v1, v2};
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
    use serde_json::json;
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let old: Api<v1::HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let new: Api<v2::HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());

    // Discovery: both versions, v2 preferred.
    let group = client.list_api_groups().await.expect("groups");
    let autoscaling = group
        .groups
        .iter()
        .find(|g| g.name == "autoscaling")
        .expect("autoscaling");
    let versions: Vec<&str> = autoscaling.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v2", "v1"]);
    assert_eq!(
        autoscaling.preferred_version.as_ref().map(|v| v.version.as_str()),
        Some("v2")
    );

    let mut events = old
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch at v1")
        .boxed();
    let hpa: v1::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}
    }))
    .expect("hpa");
    let created = old.create(&PostParams::default(), &hpa).await.expect("created at v1");
    let spec = created.spec.clone().expect("spec");
    assert_eq!(
        (spec.min_replicas, spec.target_cpu_utilization_percentage),
        (Some(1), Some(60))
    );
    match events.try_next().await.expect("event") {
        Some(WatchEvent::Added(seen)) => {
            assert_eq!(seen.spec.and_then(|s| s.target_cpu_utilization_percentage), Some(60))
        }
        other => panic!("expected the creation at v1, got {other:?}"),
    }
    // Read at v2: the CPU target is a Resource metric.
    let stored = new.get("web").await.expect("read at v2");
    let metric = &stored.spec.as_ref().expect("spec").metrics.as_ref().expect("metrics")[0];
    assert_eq!(
        metric.resource.as_ref().and_then(|r| r.target.average_utilization),
        Some(60)
    );

    // A second metric written at v2 travels in v1's annotation, and comes back.
    let pods = json!({"spec": {"metrics": [
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}
    ]}});
    new.patch("web", &PatchParams::default(), &Patch::Merge(pods))
        .await
        .expect("patched at v2");
    let seen = old.get("web").await.expect("read at v1");
    let annotation = seen
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("autoscaling.alpha.kubernetes.io/metrics"))
        .expect("the metric v1 cannot express");
    assert!(annotation.contains("\"metricName\":\"qps\""), "{annotation}");

    // A merge patch of v1 fields: only the CPU target changes; the other metric stays.
    let cpu = json!({"spec": {"targetCPUUtilizationPercentage": 75}});
    let patched = old
        .patch("web", &PatchParams::default(), &Patch::Merge(cpu))
        .await
        .expect("patched at v1");
    assert_eq!(patched.spec.and_then(|s| s.target_cpu_utilization_percentage), Some(75));
    let metrics = new
        .get("web")
        .await
        .expect("read")
        .spec
        .and_then(|s| s.metrics)
        .expect("metrics");
    assert_eq!(metrics.len(), 2, "{metrics:?}");
    assert_eq!(metrics[0].type_, "Pods");
    assert_eq!(
        metrics[1].resource.as_ref().and_then(|r| r.target.average_utilization),
        Some(75)
    );

    // Server-side apply at v1.
    let applied = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"}, "spec": {"maxReplicas": 9}});
    let result = old
        .patch(
            "web",
            &PatchParams::apply("sandbox-test").force(),
            &Patch::Apply(applied),
        )
        .await
        .expect("applied at v1");
    assert_eq!(result.spec.map(|s| s.max_replicas), Some(9));

    // Listed at v1; deleted at v1, gone at v2.
    let listed = old.list(&Default::default()).await.expect("list at v1");
    assert_eq!(listed.items.len(), 1);
    old.delete("web", &DeleteParams::default()).await.expect("deleted");
    assert!(new.get_opt("web").await.expect("read").is_none());

    // kubectl reads either version.
    let kubeconfig = std::env::temp_dir().join(format!("pg-hpa-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    kubectl(&kubeconfig, &["create", "deployment", "app", "--image=nginx"]);
    kubectl(
        &kubeconfig,
        &["autoscale", "deployment", "app", "--max=4", "--cpu-percent=70"],
    );
    let target = kubectl(
        &kubeconfig,
        &[
            "get",
            "horizontalpodautoscalers.v1.autoscaling",
            "app",
            "-o",
            "jsonpath={.spec.targetCPUUtilizationPercentage}",
        ],
    );
    assert_eq!(target, "70");
    // Fields are judged by the v1 type (kubectl asks for strict validation).
    let manifest = kubeconfig.with_extension("hpa.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: coloured\nspec:\n  colour: red\n  maxReplicas: 2\n  scaleTargetRef: {kind: Deployment, name: app}\n",
    )
    .expect("write");
    let out = Command::new("kubectl")
        .args(["create", "-f"])
        .arg(&manifest)
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl runs");
    let printed = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown v1 field is refused");
    assert!(
        printed.contains("HorizontalPodAutoscaler in version \"v1\" cannot be handled as a HorizontalPodAutoscaler: strict decoding error: unknown field \"spec.colour\""),
        "{printed}"
    );
    let _ = std::fs::remove_file(&manifest);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// Services get what kube-apiserver's registry gives them: a cluster IP from the service range
/// and node ports from 30000-32767, each held by one Service; kept by updates that leave them
/// out, fixed once set, dropped with the type that needed them, free again once the Service
/// is gone. Taking another Service's address or port is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_cluster_ips_and_node_ports() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-services-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let services: Api<Service> = Api::default_namespaced(client);
    kubectl(&kubeconfig, &["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let web = services.get("web").await.expect("web");
    let spec = web.spec.clone().expect("spec");
    let ip: std::net::Ipv4Addr = spec
        .cluster_ip
        .clone()
        .expect("a cluster IP")
        .parse()
        .expect("an IPv4 address");
    assert_eq!(
        u32::from(ip) >> 20,
        u32::from(std::net::Ipv4Addr::new(10, 96, 0, 0)) >> 20,
        "{ip} in 10.96.0.0/12"
    );
    assert_eq!(spec.cluster_ips, Some(vec![ip.to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(
        (
            spec.session_affinity.as_deref(),
            spec.internal_traffic_policy.as_deref()
        ),
        (Some("None"), Some("Cluster"))
    );
    let row = kubectl(&kubeconfig, &["get", "service", "web", "--no-headers"]);
    assert_eq!(
        row.split_whitespace().take(5).collect::<Vec<_>>(),
        ["web", "ClusterIP", ip.to_string().as_str(), "<none>", "80/TCP"]
    );

    kubectl(&kubeconfig, &["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    let np = services.get("np").await.expect("np");
    let node_port = np.spec.as_ref().expect("spec").ports.as_ref().expect("ports")[0]
        .node_port
        .expect("a node port");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    assert_eq!(
        np.spec.as_ref().and_then(|s| s.external_traffic_policy.as_deref()),
        Some("Cluster")
    );

    // Another Service's address or node port is refused.
    let refused = |result: Result<Service, kube::Error>| match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        other => panic!("not refused: {other:?}"),
    };
    let taking_ip: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "thief"}, "spec": {"clusterIP": ip.to_string(), "ports": [{"port": 80}]}
    }))
    .expect("service");
    assert_eq!(
        refused(services.create(&PostParams::default(), &taking_ip).await),
        format!(
            "Service \"thief\" is invalid: spec.clusterIPs[0]: Invalid value: \"{ip}\": failed to allocate IP {ip}: provided IP is already allocated"
        )
    );
    let taking_port: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "thief"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}
    }))
    .expect("service");
    assert_eq!(
        refused(services.create(&PostParams::default(), &taking_port).await),
        format!(
            "Service \"thief\" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
        )
    );

    // An update that leaves them out keeps them (kubectl replace of the manifest as written).
    let manifest = std::env::temp_dir().join(format!("pg-services-{}.yaml", std::process::id()));
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: np\nspec:\n  type: NodePort\n  selector:\n    app: np\n  ports:\n  - port: 80\n    targetPort: 8080\n",
    )
    .expect("manifest");
    kubectl(&kubeconfig, &["replace", "-f", manifest.to_str().expect("utf-8")]);
    let replaced = services.get("np").await.expect("np");
    assert_eq!(
        replaced.spec.as_ref().and_then(|s| s.cluster_ip.clone()),
        np.spec.as_ref().and_then(|s| s.cluster_ip.clone())
    );
    assert_eq!(
        replaced
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|p| p[0].node_port),
        Some(Some(node_port))
    );
    // Fixed once set.
    let message = refused(
        services
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}})),
            )
            .await,
    );
    assert_eq!(
        message,
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"None\"}: may not change once set"
    );
    // Dropped with the type that needed them.
    let clustered = services
        .patch(
            "np",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .expect("now ClusterIP");
    assert_eq!(
        clustered
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|p| p[0].node_port),
        Some(None)
    );

    // Free again once the Service is gone.
    services.delete("web", &DeleteParams::default()).await.expect("deleted");
    services
        .create(&PostParams::default(), &taking_ip)
        .await
        .expect("the released address can be asked for");
    // Headless and ExternalName Services.
    kubectl(
        &kubeconfig,
        &["create", "service", "clusterip", "headless", "--clusterip=None"],
    );
    let headless = services.get("headless").await.expect("headless");
    assert_eq!(
        headless.spec.and_then(|s| s.cluster_ips),
        Some(vec!["None".to_string()])
    );
    kubectl(
        &kubeconfig,
        &[
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=example.com",
        ],
    );
    let ext = services.get("ext").await.expect("ext");
    assert_eq!(ext.spec.and_then(|s| s.cluster_ip), None);
    let _ = std::fs::remove_file(&manifest);
    sandbox.shutdown().await;
}

/// Services created at the same time asking for the same address or node port: one gets it,
/// the others are refused, as kube-apiserver's allocators hand out each value once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_services_never_share_an_address_or_a_port() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, ListParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let services: Api<Service> = Api::default_namespaced(client);
    const RACERS: usize = 24;
    const ROUNDS: usize = 10;
    for (round, spec) in (0..ROUNDS)
        .flat_map(|round| {
            [
                serde_json::json!({"clusterIP": format!("10.96.50.{round}"), "ports": [{"port": 80}]}),
                serde_json::json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30500 + round}]}),
            ]
        })
        .enumerate()
    {
        let creates = (0..RACERS).map(|i| {
            let services = services.clone();
            let svc: Service = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("racer-{round}-{i}")}, "spec": spec
            }))
            .expect("service");
            tokio::spawn(async move { services.create(&PostParams::default(), &svc).await })
        });
        let results = futures::future::join_all(creates).await;
        let mut won = 0;
        for result in results {
            match result.expect("joined") {
                Ok(_) => won += 1,
                Err(kube::Error::Api(status)) => {
                    assert_eq!(status.code, 422, "{status:?}");
                    assert!(status.message.contains("already allocated"), "{}", status.message);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won, 1, "round {round}: one Service gets {spec}");
    }
    // Services left to allocate by themselves, all at once: no two share anything.
    let creates = (0..RACERS).map(|i| {
        let services = services.clone();
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("free-{i}")}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}
        }))
        .expect("service");
        tokio::spawn(async move { services.create(&PostParams::default(), &svc).await })
    });
    for result in futures::future::join_all(creates).await {
        result.expect("joined").expect("allocated");
    }
    let all = services.list(&ListParams::default()).await.expect("list").items;
    let ips: Vec<String> = all.iter().filter_map(|s| s.spec.as_ref()?.cluster_ip.clone()).collect();
    let ports: Vec<i32> = all
        .iter()
        .flat_map(|s| s.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default())
        .filter_map(|p| p.node_port)
        .collect();
    let distinct = |v: &[String]| v.iter().collect::<std::collections::HashSet<_>>().len();
    assert_eq!(distinct(&ips), ips.len(), "{ips:?}");
    assert_eq!(
        ports.iter().collect::<std::collections::HashSet<_>>().len(),
        ports.len(),
        "{ports:?}"
    );
    assert_eq!(
        ips.len(),
        2 * ROUNDS + RACERS + 1,
        "the winners, the free ones and kubernetes in default"
    );
}

/// kube-controller-manager's ServiceAccount and root-CA publisher controllers keep the
/// `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in every namespace: deleted,
/// they are made again; the CA's data changed, it is put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_keeps_its_service_account_and_root_ca() {
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use kube::api::{Api, Patch, PatchParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-ns-defaults-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    kubectl(&kubeconfig, &["create", "namespace", "team"]);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let first = accounts.get("default").await.expect("made with the namespace");
    let ca = maps
        .get("kube-root-ca.crt")
        .await
        .expect("made with the namespace")
        .data;

    // Waits (up to 10 s) for what a controller puts back.
    async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(found) = check().await {
                return found;
            }
            assert!(std::time::Instant::now() < deadline, "{what} never came back");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    kubectl(&kubeconfig, &["delete", "serviceaccount", "default", "-n", "team"]);
    let again = eventually("the default ServiceAccount", async || {
        accounts.get_opt("default").await.expect("get")
    })
    .await;
    assert_ne!(again.metadata.uid, first.metadata.uid, "a new ServiceAccount");

    kubectl(&kubeconfig, &["delete", "configmap", "kube-root-ca.crt", "-n", "team"]);
    let map = eventually("kube-root-ca.crt", async || {
        maps.get_opt("kube-root-ca.crt").await.expect("get")
    })
    .await;
    assert_eq!(map.data, ca);

    maps.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"ca.crt": "not a CA"}})),
    )
    .await
    .expect("patched");
    eventually("the CA's data", async || {
        let now = maps.get("kube-root-ca.crt").await.expect("get");
        (now.data == ca).then_some(())
    })
    .await;
    // A namespace on its way out is not given them again.
    kubectl(&kubeconfig, &["delete", "namespace", "team", "--wait=true"]);
    assert!(accounts.get_opt("default").await.expect("get").is_none());
    assert!(maps.get_opt("kube-root-ca.crt").await.expect("get").is_none());
}

/// StatefulSets and their claims as kube-apiserver and the StatefulSet controller keep them:
/// the pod template's spec is not judged (its mounts may name claim templates), only some of
/// the spec may change once created; each Pod gets a claim per template, which is kept; a
/// claim's spec is fixed once created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_sets_get_their_claims_and_keep_their_spec() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config {
        simulate_workloads: true,
        ..Config::default()
    })
    .await
    .expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-sts-claims-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let db: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{
                "name": "db", "image": "postgres:17",
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}]
            }]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}
            }}]
        }
    }))
    .expect("statefulset");
    sets.create(&PostParams::default(), &db).await.expect("created");
    kubectl(&kubeconfig, &["rollout", "status", "statefulset/db", "--timeout=60s"]);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    for i in 0..2 {
        let pod = pods.get(&format!("db-{i}")).await.expect("pod");
        let volumes = pod.spec.expect("spec").volumes.expect("volumes");
        let data = volumes.iter().find(|v| v.name == "data").expect("the claim's volume");
        assert_eq!(
            data.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()),
            Some(format!("data-db-{i}").as_str())
        );
        let claim = claims.get(&format!("data-db-{i}")).await.expect("claim");
        assert_eq!(
            claim.metadata.labels,
            Some([("app".to_string(), "db".to_string())].into())
        );
        let spec = claim.spec.expect("spec");
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    }

    let refused = |e: kube::Error| match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.message
        }
        other => panic!("not refused: {other}"),
    };
    // The template changes; the claim templates do not.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"spec": {"replicas": 3, "template": {"metadata": {"annotations": {"v": "2"}}}}}),
        ),
    )
    .await
    .expect("replicas and template change");
    let e = sets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(serde_json::json!([
                    {"op": "replace", "path": "/spec/volumeClaimTemplates/0/spec/resources/requests/storage", "value": "2Gi"}
                ]))
                .expect("patch"),
            ),
        )
        .await
        .expect_err("claim templates are fixed");
    assert_eq!(
        refused(e),
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
    // A claim's spec is fixed; one without access modes or storage is refused.
    let e = claims
        .patch(
            "data-db-0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"storageClassName": "fast"}})),
        )
        .await
        .expect_err("fixed");
    assert_eq!(
        refused(e),
        "PersistentVolumeClaim \"data-db-0\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests for bound claims"
    );
    let bare: PersistentVolumeClaim =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "bare"}, "spec": {}})).expect("claim");
    let e = claims.create(&PostParams::default(), &bare).await.expect_err("refused");
    assert_eq!(
        refused(e),
        "PersistentVolumeClaim \"bare\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
    );
    // Deleting the set leaves the claims (the default retention policy).
    kubectl(&kubeconfig, &["delete", "statefulset", "db", "--wait=true"]);
    assert!(claims.get_opt("data-db-1").await.expect("get").is_some());
}

/// StorageClasses as kube-apiserver keeps them: defaults for the reclaim policy and binding
/// mode, a provisioner required, and provisioner, parameters, reclaim policy and binding mode
/// fixed once created (what `helm upgrade` meets when a chart changes a class's parameters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_classes_keep_what_they_were_created_with() {
    use k8s_openapi::api::storage::v1::StorageClass;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let classes: Api<StorageClass> = Api::all(client);
    let fast: StorageClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "fast"}, "provisioner": "example.com/fast", "parameters": {"tier": "1"}
    }))
    .expect("class");
    let stored = classes.create(&PostParams::default(), &fast).await.expect("created");
    assert_eq!(
        (stored.reclaim_policy.as_deref(), stored.volume_binding_mode.as_deref()),
        (Some("Delete"), Some("Immediate"))
    );
    let refused = |e: kube::Error| match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.message
        }
        other => panic!("not refused: {other}"),
    };
    let e = classes
        .patch(
            "fast",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"parameters": {"tier": "2"}, "volumeBindingMode": "WaitForFirstConsumer"}),
            ),
        )
        .await
        .expect_err("fixed");
    assert_eq!(
        refused(e),
        "StorageClass.storage.k8s.io \"fast\" is invalid: [parameters: Forbidden: updates to parameters are forbidden., volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable]"
    );
    let bare: StorageClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bare"}, "provisioner": "", "reclaimPolicy": "Keep"
    }))
    .expect("class");
    let e = classes
        .create(&PostParams::default(), &bare)
        .await
        .expect_err("refused");
    assert_eq!(
        refused(e),
        "StorageClass.storage.k8s.io \"bare\" is invalid: [provisioner: Required value, reclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\"]"
    );
    // Labels and annotations still change.
    classes
        .patch(
            "fast",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}})),
        )
        .await
        .expect("metadata changes");
}
