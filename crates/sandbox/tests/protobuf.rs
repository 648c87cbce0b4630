//! kubectl's typed commands send their objects as protobuf (`kubectl create deployment`,
//! `kubectl run`, `kubectl expose`, `kubectl certificate approve`...). Each must create what the
//! same command creates on kube-apiserver: checked field by field, with the real kubectl (the
//! default one and 1.33), including the values protobuf carries differently from JSON (a zero
//! replica count, ports as int-or-string, quantities, an Ingress rule's inline HTTP value).

use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::Value;

mod support;

use support::{Kubectl, kubectl};

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in {v:#}"))
}

async fn typed_commands(version: Option<&str>) {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox starts");
    let kubeconfig = std::env::temp_dir().join(format!(
        "pg-protobuf-{}-{}.kubeconfig",
        version.unwrap_or("default"),
        std::process::id()
    ));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let k = Kubectl {
        bin: kubectl(version),
        kubeconfig: kubeconfig.clone(),
    };

    // A Deployment scaled to zero: protobuf carries the pointer's zero, JSON must keep it.
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=0",
        "--port=8080",
    ]);
    let web = k.json(&["get", "deployment", "web"]);
    assert_eq!(at(&web, "/spec/replicas"), 0);
    assert_eq!(at(&web, "/spec/selector/matchLabels/app"), "web");
    assert_eq!(at(&web, "/spec/template/metadata/labels/app"), "web");
    assert_eq!(at(&web, "/spec/template/spec/containers/0/image"), "nginx:1.27");
    assert_eq!(at(&web, "/spec/template/spec/containers/0/ports/0/containerPort"), 8080);
    assert!(
        web.pointer("/metadata/generateName").is_none()
            && web.pointer("/spec/template/spec/containers/0/workingDir").is_none(),
        "empty strings protobuf always carries are not fields: {web:#}"
    );

    k.ok(&["create", "job", "once", "--image=busybox", "--", "echo", "hi"]);
    let job = k.json(&["get", "job", "once"]);
    assert_eq!(
        at(&job, "/spec/template/spec/containers/0/command"),
        &serde_json::json!(["echo", "hi"])
    );
    assert_eq!(at(&job, "/spec/template/spec/restartPolicy"), "Never");

    k.ok(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox",
        "--schedule=0 3 * * *",
    ]);
    let cron = k.json(&["get", "cronjob", "nightly"]);
    assert_eq!(at(&cron, "/spec/schedule"), "0 3 * * *");
    assert_eq!(
        at(&cron, "/spec/jobTemplate/spec/template/spec/containers/0/image"),
        "busybox"
    );

    // Ports: an int-or-string target port.
    k.ok(&["create", "service", "clusterip", "shop", "--tcp=80:8080"]);
    let shop = k.json(&["get", "service", "shop"]);
    assert_eq!(at(&shop, "/spec/ports/0/port"), 80);
    assert_eq!(at(&shop, "/spec/ports/0/targetPort"), 8080);
    assert_eq!(at(&shop, "/spec/ports/0/name"), "80-8080");

    k.ok(&["create", "serviceaccount", "robot"]);
    assert_eq!(
        at(&k.json(&["get", "serviceaccount", "robot"]), "/metadata/name"),
        "robot"
    );

    k.ok(&["create", "secret", "generic", "creds", "--from-literal=password=s3cr3t"]);
    assert_eq!(at(&k.json(&["get", "secret", "creds"]), "/data/password"), "czNjcjN0");

    // Quantities.
    k.ok(&["create", "quota", "compute", "--hard=cpu=2,memory=1Gi,pods=10"]);
    let quota = k.json(&["get", "resourcequota", "compute"]);
    assert_eq!(
        at(&quota, "/spec/hard"),
        &serde_json::json!({"cpu": "2", "memory": "1Gi", "pods": "10"})
    );

    k.ok(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=important",
    ]);
    let high = k.json(&["get", "priorityclass", "high"]);
    assert_eq!(
        (at(&high, "/value"), at(&high, "/description")),
        (&1000.into(), &"important".into())
    );

    // An Ingress rule's HTTP value is a Go struct embedded inline: its fields are the rule's.
    k.ok(&["create", "ingress", "shop", "--rule=shop.example.com/=shop:80"]);
    let ingress = k.json(&["get", "ingress", "shop"]);
    assert_eq!(at(&ingress, "/spec/rules/0/host"), "shop.example.com");
    assert_eq!(at(&ingress, "/spec/rules/0/http/paths/0/backend/service/name"), "shop");
    assert_eq!(
        at(&ingress, "/spec/rules/0/http/paths/0/backend/service/port/number"),
        80
    );
    assert_eq!(at(&ingress, "/spec/rules/0/http/paths/0/pathType"), "Exact");

    // Int-or-string, both ways.
    k.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    k.ok(&[
        "create",
        "poddisruptionbudget",
        "half",
        "--selector=app=web",
        "--max-unavailable=50%",
    ]);
    assert_eq!(at(&k.json(&["get", "pdb", "web"]), "/spec/minAvailable"), 1);
    assert_eq!(at(&k.json(&["get", "pdb", "half"]), "/spec/maxUnavailable"), "50%");

    k.ok(&[
        "run",
        "probe",
        "--image=busybox",
        "--restart=Never",
        "--labels=role=probe",
        "--",
        "sleep",
        "1",
    ]);
    let probe = k.json(&["get", "pod", "probe"]);
    assert_eq!(
        at(&probe, "/spec/containers/0/args"),
        &serde_json::json!(["sleep", "1"])
    );
    assert_eq!(at(&probe, "/metadata/labels/role"), "probe");
    assert_eq!(at(&probe, "/spec/restartPolicy"), "Never");

    k.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
        "--name=web-exposed",
    ]);
    let exposed = k.json(&["get", "service", "web-exposed"]);
    assert_eq!(at(&exposed, "/spec/selector/app"), "web");
    assert_eq!(at(&exposed, "/spec/ports/0/targetPort"), 8080);

    // Roles and bindings: the core group is an empty string in a list, which stays.
    k.ok(&[
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods,deployments.apps",
    ]);
    let reader = k.json(&["get", "role", "reader"]);
    let groups: Vec<&Value> = reader["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| &r["apiGroups"][0])
        .collect();
    assert!(
        groups.contains(&&Value::from("")) && groups.contains(&&Value::from("apps")),
        "{reader:#}"
    );

    // A certificate request approved by kubectl (an update of the approval subresource).
    let file = std::env::temp_dir().join(format!(
        "pg-protobuf-csr-{}-{}.yaml",
        version.unwrap_or("default"),
        std::process::id()
    ));
    std::fs::write(
        &file,
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: node-csr\nspec:\n  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n",
    )
    .expect("csr file");
    k.ok(&["create", "-f", &file.to_string_lossy()]);
    let _ = std::fs::remove_file(&file);
    k.ok(&["certificate", "approve", "node-csr"]);
    let approved = k.json(&["get", "csr", "node-csr"]);
    assert_eq!(at(&approved, "/status/conditions/0/type"), "Approved");
    assert_eq!(at(&approved, "/status/conditions/0/reason"), "KubectlApprove");

    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_commands_of_the_default_kubectl() {
    typed_commands(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_commands_of_kubectl_1_33() {
    typed_commands(Some("1.33")).await;
}
