//! Every kind kube-apiserver 1.33 serves by default, from the k8s-openapi catalogue: served,
//! discovered, described by OpenAPI, and decoded as kube-apiserver decodes built-in objects
//! (a field of the wrong type refused, unknown fields dropped with a warning, or refused under
//! `fieldValidation=Strict`).

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use purchase_guard_sandbox::{Config, Sandbox};
use std::process::Command;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const KINDS: &str = "\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: example.com/fast
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: default}
spec: {hard: {pods: \"10\"}}
";

const UNKNOWN_FIELDS: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: odd, namespace: default}
spec:
  replicas: 1
  colour: blue
  selector: {matchLabels: {app: odd}}
  template:
    metadata: {labels: {app: odd}}
    spec:
      containers: [{name: c, image: busybox, shoeSize: 42}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_kind_is_served_and_decoded_like_kube_apiserver() {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let dir = std::env::temp_dir().join(format!("pg-catalogue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("manifest");
        path.to_string_lossy().into_owned()
    };
    let k = |args: &[&str]| kubectl(&kubeconfig, args);

    // Kinds that were 404 before, through kubectl apply, get and the short names.
    let kinds = file("kinds.yaml", KINDS);
    let (ok, out, err) = k(&["apply", "-f", &kinds]);
    assert!(ok, "{out}{err}");
    for short in ["pvc/data", "sc/fast", "pc/high", "hpa/web", "ing/web", "quota/quota"] {
        let (ok, _, err) = k(&["get", short]);
        assert!(ok, "{short}: {err}");
    }
    // Printer columns, as kube-apiserver prints them.
    let table = |args: &[&str]| -> Vec<Vec<String>> {
        let (ok, out, err) = k(args);
        assert!(ok, "{args:?}: {err}");
        out.lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    };
    for (args, header, row) in [
        (
            vec!["get", "pvc", "data"],
            vec![
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
            ],
            // A new claim is Pending until something binds it (nothing does here).
            vec!["data", "Pending"],
        ),
        (
            vec!["get", "sc", "fast"],
            vec![
                "NAME",
                "PROVISIONER",
                "RECLAIMPOLICY",
                "VOLUMEBINDINGMODE",
                "ALLOWVOLUMEEXPANSION",
                "AGE",
            ],
            vec!["fast", "example.com/fast", "Delete", "Immediate", "false"],
        ),
        (
            vec!["get", "pc", "high"],
            vec!["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
            vec!["high", "1000", "false"],
        ),
        (
            vec!["get", "hpa", "web"],
            vec!["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
            // No metric given: autoscaling/v2's default CPU target, not yet measured.
            vec!["web", "Deployment/web", "cpu: <unknown>/80%", "1", "5", "0"],
        ),
        (
            vec!["get", "ing", "web"],
            vec!["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
            vec!["web", "<none>", "web.example.com"],
        ),
        (
            vec!["get", "svc", "kubernetes"],
            vec!["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
            vec!["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"],
        ),
        (
            vec!["get", "cm", "kube-root-ca.crt"],
            vec!["NAME", "DATA", "AGE"],
            vec!["kube-root-ca.crt", "1"],
        ),
        (
            vec!["get", "ns", "default"],
            vec!["NAME", "STATUS", "AGE"],
            vec!["default", "Active"],
        ),
        (
            vec!["get", "sa", "default"],
            vec!["NAME", "SECRETS", "AGE"],
            vec!["default", "0"],
        ),
    ] {
        let rows = table(&args);
        assert_eq!(rows[0], header, "{args:?}");
        assert_eq!(rows[1][..row.len()], row[..], "{args:?}");
    }

    let (_, resources, _) = k(&["api-resources", "--no-headers"]);
    for (name, short, version, namespaced, kind) in [
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler",
        ),
        ("persistentvolumes", "pv", "v1", "false", "PersistentVolume"),
        ("endpointslices", "", "discovery.k8s.io/v1", "true", "EndpointSlice"),
        ("runtimeclasses", "", "node.k8s.io/v1", "false", "RuntimeClass"),
        (
            "flowschemas",
            "",
            "flowcontrol.apiserver.k8s.io/v1",
            "false",
            "FlowSchema",
        ),
    ] {
        let wanted: Vec<&str> = [name, short, version, namespaced, kind]
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect();
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == wanted),
            "{wanted:?} in:\n{resources}"
        );
    }
    let (ok, explained, err) = k(&["explain", "pvc.spec.accessModes"]);
    assert!(ok && explained.contains("accessModes"), "{explained}{err}");

    // Unknown fields: refused by kubectl's default (Strict), dropped with warnings otherwise.
    let odd = file("odd.yaml", UNKNOWN_FIELDS);
    let (ok, _, err) = k(&["apply", "-f", &odd]);
    assert!(!ok);
    assert!(
        err.contains(
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.colour\", unknown field \"spec.template.spec.containers[0].shoeSize\""
        ),
        "{err}"
    );
    let (ok, _, err) = k(&["apply", "-f", &odd, "--validate=warn"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("Warning: unknown field \"spec.colour\"")
            && err.contains("Warning: unknown field \"spec.template.spec.containers[0].shoeSize\""),
        "{err}"
    );
    let (_, spec, _) = k(&["get", "deployment", "odd", "-o", "jsonpath={.spec}"]);
    assert!(
        !spec.contains("colour") && !spec.contains("shoeSize"),
        "dropped: {spec}"
    );

    // A field of the wrong type is refused whatever the validation.
    let wrong = file(
        "wrong.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wrong, namespace: default}\ndata: {a: 1}\n",
    );
    let (ok, _, err) = k(&["apply", "-f", &wrong, "--validate=false"]);
    assert!(!ok);
    assert!(
        err.contains("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field data.a of type string"),
        "{err}"
    );

    // kube-rs: typed APIs of the new kinds, their status subresource, aggregated discovery.
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let classes: Api<PriorityClass> = Api::all(client.clone());
    let mut class: PriorityClass =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "low"}, "value": -5})).expect("class");
    class = classes.create(&PostParams::default(), &class).await.expect("create");
    assert_eq!(classes.get("low").await.expect("get").value, -5);
    assert!(class.metadata.uid.is_some());
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    hpas.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"currentReplicas": 2, "desiredReplicas": 3}})),
    )
    .await
    .expect("status");
    let hpa = hpas.get("web").await.expect("hpa");
    assert_eq!(hpa.status.expect("status").desired_replicas, 3);
    let discovery = kube::Discovery::new(client).run_aggregated().await.expect("discovery");
    for group in [
        "storage.k8s.io",
        "scheduling.k8s.io",
        "autoscaling",
        "node.k8s.io",
        "discovery.k8s.io",
    ] {
        assert!(discovery.has_group(group), "{group}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}
