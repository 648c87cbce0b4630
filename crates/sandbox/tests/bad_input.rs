//! Bad input gets the Status error kube-apiserver sends, never a panic, a hang or a
//! half-written object.

mod support;

use purchase_guard_sandbox::{Config, MAX_BODY, Sandbox};
use serde_json::{Value, json};

async fn call(sandbox: &Sandbox, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .expect("request");
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("a response");
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A sandbox with the default configuration, and a kube-rs client of it.
async fn started() -> (Sandbox, kube::Client) {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    (sandbox, client)
}

/// What kubectl prints when `kubectl create -f` of `manifest` is refused (it must be).
fn kubectl_create_refused(sandbox: &Sandbox, manifest: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sandbox-refused-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let file = dir.join("manifest.yaml");
    std::fs::write(&file, manifest).expect("write");
    let out = std::process::Command::new("kubectl")
        .args(["create", "-f"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .expect("kubectl runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "created: {manifest}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// kubectl against `sandbox`, with its kubeconfig in a directory of its own (removed by the
/// caller when done).
fn kubectl_of(sandbox: &Sandbox, tag: &str) -> (support::Kubectl, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sandbox-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubectl = support::Kubectl {
        bin: support::kubectl(None),
        kubeconfig,
    };
    (kubectl, dir)
}

fn cm(name: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}),
    )
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_kube_apiserver_status_errors() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let cms = "/api/v1/namespaces/default/configmaps";
    let json_ct = "application/json";
    // (method, path, content type, body, expected code, reason, part of the message)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            cms,
            json_ct,
            b"{not json".to_vec(),
            400,
            "BadRequest",
            "json parse error",
        ),
        (
            "POST",
            cms,
            "application/yaml",
            b"a: [unclosed".to_vec(),
            400,
            "BadRequest",
            "error decoding YAML",
        ),
        (
            "POST",
            cms,
            json_ct,
            b"[1, 2]".to_vec(),
            400,
            "BadRequest",
            "must be a JSON or YAML object",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets",
            json_ct,
            vec![],
            404,
            "NotFound",
            "could not find the requested resource",
        ),
        (
            "GET",
            "/apis/apps/v9/deployments",
            json_ct,
            vec![],
            404,
            "NotFound",
            "could not find the requested resource",
        ),
        (
            "PUT",
            cms,
            json_ct,
            cm("x"),
            405,
            "MethodNotAllowed",
            "does not allow this method",
        ),
        (
            "POST",
            cms,
            json_ct,
            cm("Not_A_Name"),
            422,
            "Invalid",
            "a lowercase RFC 1123 subdomain",
        ),
        (
            "POST",
            cms,
            json_ct,
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
                .expect("json"),
            400,
            "BadRequest",
            "the kind in the data (Secret) does not match the expected kind (ConfigMap)",
        ),
        (
            "POST",
            cms,
            json_ct,
            serde_json::to_vec(&json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "s"}}))
                .expect("json"),
            400,
            "BadRequest",
            "does not match the expected API version (v1)",
        ),
        (
            "POST",
            "/api/v1/namespaces/missing/configmaps",
            json_ct,
            cm("x"),
            404,
            "NotFound",
            "namespaces \"missing\" not found",
        ),
        (
            "POST",
            cms,
            json_ct,
            vec![b' '; MAX_BODY + 1],
            413,
            "RequestEntityTooLarge",
            "Request entity too large",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/none",
            "application/merge-patch+json",
            b"{}".to_vec(),
            404,
            "NotFound",
            "configmaps \"none\" not found",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/none",
            "text/plain",
            b"{}".to_vec(),
            415,
            "UnsupportedMediaType",
            "unknown format",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b",
            json_ct,
            vec![],
            400,
            "BadRequest",
            "unable to parse requirement",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?fieldSelector=data.a%3D1",
            json_ct,
            vec![],
            400,
            "BadRequest",
            "field label not supported: data.a",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?continue=%%%",
            json_ct,
            vec![],
            400,
            "BadRequest",
            "continue key is not valid",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps?dryRun=Maybe",
            json_ct,
            cm("x"),
            400,
            "BadRequest",
            "unsupported dryRun value",
        ),
    ];
    for (method, path, ct, body, code, reason, message) in cases {
        let (status, status_object) = call(&sandbox, method, path, ct, body).await;
        assert_eq!(status, code, "{method} {path}: {status_object}");
        assert_eq!(status_object["kind"], "Status", "{method} {path}");
        assert_eq!(status_object["reason"], reason, "{method} {path}: {status_object}");
        assert!(
            status_object["message"].as_str().is_some_and(|m| m.contains(message)),
            "{method} {path}: {status_object}"
        );
    }

    // Conflicts: a duplicate create, and an update with a stale resourceVersion.
    assert_eq!(call(&sandbox, "POST", cms, json_ct, cm("dup")).await.0, 201);
    let (code, dup) = call(&sandbox, "POST", cms, json_ct, cm("dup")).await;
    assert_eq!((code, dup["reason"].as_str()), (409, Some("AlreadyExists")));
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup", "resourceVersion": "1"}, "data": {"a": "2"}});
    let (code, conflict) = call(
        &sandbox,
        "PUT",
        &format!("{cms}/dup"),
        json_ct,
        serde_json::to_vec(&stale).expect("json"),
    )
    .await;
    assert_eq!((code, conflict["reason"].as_str()), (409, Some("Conflict")));

    // Nothing half-written: the rejected objects do not exist, dry runs store nothing (besides
    // the root CA ConfigMap every namespace has).
    let (_, list) = call(&sandbox, "GET", cms, json_ct, vec![]).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["dup", "kube-root-ca.crt"]);
    assert_eq!(
        call(&sandbox, "POST", &format!("{cms}?dryRun=All"), json_ct, cm("dry"))
            .await
            .0,
        201
    );
    assert_eq!(
        call(&sandbox, "GET", &format!("{cms}/dry"), json_ct, vec![]).await.0,
        404
    );
    sandbox.shutdown().await;
}

/// Content kube-apiserver's validation refuses, through kube-rs and kubectl: 422 Invalid with
/// one cause per field, worded as kube-apiserver words them; nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_content_of_built_in_kinds_is_refused() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let mismatched: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "other"}},
            "spec": {"containers": [{"name": "app"}]}}}
    }))
    .expect("deployment");
    let err = deployments
        .create(&PostParams::default(), &mismatched)
        .await
        .expect_err("refused");
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
    assert_eq!(
        status.message,
        "Deployment.apps \"web\" is invalid: [spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`, spec.template.spec.containers[0].image: Required value]"
    );
    let causes = status.details.expect("details").causes;
    assert_eq!(
        causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            ("spec.template.metadata.labels", "FieldValueInvalid"),
            ("spec.template.spec.containers[0].image", "FieldValueRequired")
        ]
    );
    assert!(
        deployments.get_opt("web").await.expect("read").is_none(),
        "nothing stored"
    );

    // An update is judged too, against the old object: the selector of apps/v1 is immutable.
    let good: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &good)
        .await
        .expect("created");
    let moved = json!({"spec": {"selector": {"matchLabels": {"tier": "front"}}}});
    let err = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(moved))
        .await
        .expect_err("the selector is immutable");
    assert!(err.to_string().contains("spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"), "{err}");

    // A ConfigMap made immutable keeps its data.
    let configs: Api<ConfigMap> = Api::default_namespaced(client);
    let frozen: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"a": "1"}}))
            .expect("config map");
    configs.create(&PostParams::default(), &frozen).await.expect("created");
    let err = configs
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .expect_err("immutable");
    assert!(
        err.to_string()
            .contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );

    // kubectl prints the same.
    let dir = std::env::temp_dir().join(format!("sandbox-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let manifest = dir.join("keys.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keys\ndata:\n  bad key: \"1\"\n",
    )
    .expect("write");
    // kubectl's error output for a command that must fail.
    let refused = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .expect("kubectl runs");
        assert!(!out.status.success(), "kubectl {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let printed = refused(&["create", "-f", manifest.to_str().expect("utf-8")]);
    assert!(
        printed.contains("ConfigMap \"keys\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
        "{printed}"
    );
    let printed = refused(&[
        "patch",
        "configmap",
        "frozen",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"bad key":"1"}}}"#,
    ]);
    assert!(
        printed.contains("ConfigMap \"frozen\" is invalid: metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        "{printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

/// The content rules judge the object a write would store, whatever the write: JSON patches,
/// strategic merge patches and server-side applies are refused as creates are, and leave the
/// stored object as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_content_is_refused_whatever_the_patch_type() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let good: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }))
    .expect("deployment");
    let created = deployments
        .create(&PostParams::default(), &good)
        .await
        .expect("created");
    let refused = |result: Result<Deployment, kube::Error>| match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
            status.message
        }
        other => panic!("not refused: {other:?}"),
    };
    let message = refused(
        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::<()>::Json(
                    serde_json::from_value(json!([
                        {"op": "replace", "path": "/spec/replicas", "value": -1}
                    ]))
                    .expect("json patch"),
                ),
            )
            .await,
    );
    assert_eq!(
        message,
        "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let message = refused(
        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Strategic(
                    json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": null}]}}}}),
                ),
            )
            .await,
    );
    assert_eq!(
        message,
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
    );
    let apply = PatchParams::apply("tests").force();
    let message = refused(
        deployments
            .patch(
                "web",
                &apply,
                &Patch::Apply(json!({
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                        "metadata": {"labels": {"app": "web", "-bad": "x"}},
                        "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
                })),
            )
            .await,
    );
    assert!(
        message.starts_with("Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: \"-bad\": name part must consist of alphanumeric characters"),
        "{message}"
    );
    let stored = deployments.get("web").await.expect("read");
    assert_eq!(
        stored.metadata.resource_version, created.metadata.resource_version,
        "a refused write changes nothing"
    );

    // Server-side apply creates are judged too.
    let configs: Api<ConfigMap> = Api::default_namespaced(client);
    let err = configs
        .patch(
            "keys",
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keys"}, "data": {"bad key": "1"}})),
        )
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("ConfigMap \"keys\" is invalid: data[bad key]: Invalid value: \"bad key\""),
        "{err}"
    );
    assert!(configs.get_opt("keys").await.expect("read").is_none(), "nothing stored");
    sandbox.shutdown().await;
}

/// A Job is created with kube-apiserver's selector of its own Pods, and keeps its selector,
/// completions, completion mode and pod template: a Job that already ran cannot be turned
/// into another one (a suspended Job that never started may move its Pods elsewhere, an
/// elastic Indexed Job may grow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_keeps_what_it_was_created_with() {
    use k8s_openapi::api::batch::v1::Job;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let jobs: Api<Job> = Api::default_namespaced(client);
    let job = |name: &str, spec: serde_json::Value| -> Job {
        let mut full = json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox"}]}}});
        if let (Some(f), Some(s)) = (full.as_object_mut(), spec.as_object()) {
            f.extend(s.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": full})).expect("job")
    };
    let created = jobs
        .create(&PostParams::default(), &job("work", json!({"completions": 2})))
        .await
        .expect("created");
    let uid = created.metadata.uid.clone().expect("uid");
    let spec = created.spec.clone().expect("spec");
    assert_eq!(
        serde_json::to_value(&spec.selector).expect("json"),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = spec.template.metadata.and_then(|m| m.labels).unwrap_or_default();
    assert_eq!(
        labels.get("batch.kubernetes.io/job-name").map(String::as_str),
        Some("work")
    );
    assert_eq!(labels.get("controller-uid"), Some(&uid));

    let refused = |result: Result<Job, kube::Error>| match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
            status.message
        }
        other => panic!("not refused: {other:?}"),
    };
    let params = PatchParams::default();
    assert_eq!(
        refused(
            jobs.patch("work", &params, &Patch::Merge(json!({"spec": {"completions": 5}})))
                .await
        ),
        "Job.batch \"work\" is invalid: spec.completions: Invalid value: 5: field is immutable"
    );
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "work", "image": "alpine"}]}}}});
    assert_eq!(
        refused(jobs.patch("work", &params, &Patch::Strategic(image.clone())).await),
        "Job.batch \"work\" is invalid: spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"
    );
    assert!(
        refused(
            jobs.patch(
                "work",
                &params,
                &Patch::Merge(json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}}))
            )
            .await
        )
        .ends_with(&format!("spec.selector: Invalid value: v1.LabelSelector{{MatchLabels:map[string]string{{\"app\":\"other\", \"batch.kubernetes.io/controller-uid\":\"{uid}\"}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: field is immutable")),
        "the selector"
    );
    jobs.patch(
        "work",
        &params,
        &Patch::Merge(json!({"metadata": {"labels": {"team": "billing"}}})),
    )
    .await
    .expect("the Job's own labels may change");

    // Suspended and never started: its Pods may be sent elsewhere, not changed.
    jobs.create(&PostParams::default(), &job("later", json!({"suspend": true})))
        .await
        .expect("created");
    let placed = json!({"spec": {"template": {"spec": {"nodeSelector": {"zone": "b"}}}}});
    jobs.patch("later", &params, &Patch::Strategic(placed))
        .await
        .expect("a suspended Job's scheduling directives may change");
    refused(jobs.patch("later", &params, &Patch::Strategic(image)).await);

    // An elastic Indexed Job grows with its parallelism.
    jobs.create(
        &PostParams::default(),
        &job(
            "indexed",
            json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2}),
        ),
    )
    .await
    .expect("created");
    jobs.patch(
        "indexed",
        &params,
        &Patch::Merge(json!({"spec": {"completions": 3, "parallelism": 3}})),
    )
    .await
    .expect("elastic");
    assert!(
        refused(
            jobs.patch("indexed", &params, &Patch::Merge(json!({"spec": {"completions": 4}})))
                .await
        )
        .contains("spec.completions: Invalid value: 4: field is immutable")
    );
    sandbox.shutdown().await;
}

/// A pod spec's volumes, volume mounts and probes are judged as kube-apiserver judges them,
/// after its defaults (a volume without a source is an empty directory; probes get their
/// timings, HTTP probes their path and scheme), which clients read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_volumes_mounts_and_probes_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {
            "volumes": [
                {"name": "data", "configMap": {}},
                {"name": "cache"},
                {"name": "cache", "emptyDir": {}},
                {"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}}
            ],
            "containers": [{
                "name": "app", "image": "nginx",
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "cache", "mountPath": "/data"},
                    {"name": "cache", "mountPath": "/up", "subPath": "../up"}
                ],
                "livenessProbe": {},
                "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
                "startupProbe": {"httpGet": {"port": 0}, "periodSeconds": -1, "successThreshold": 2}
            }],
            "initContainers": [{
                "name": "app", "image": "busybox",
                "readinessProbe": {"exec": {"command": ["true"]}}
            }]
        }
    }))
    .expect("pod");
    let err = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
    let causes: Vec<(String, String)> = status
        .details
        .expect("details")
        .causes
        .into_iter()
        .map(|c| (c.field, c.message))
        .collect();
    let expected = [
        ("spec.volumes[0].configMap.name", "Required value"),
        ("spec.volumes[2].name", "Duplicate value: \"cache\""),
        (
            "spec.volumes[3].secret",
            "Forbidden: may not specify more than 1 volume type",
        ),
        ("spec.containers[0].volumeMounts[0].name", "Not found: \"data\""),
        (
            "spec.containers[0].volumeMounts[1].mountPath",
            "Invalid value: \"/data\": must be unique",
        ),
        (
            "spec.containers[0].volumeMounts[2].subPath",
            "Invalid value: \"../up\": must not contain '..'",
        ),
        (
            "spec.containers[0].livenessProbe",
            "Required value: must specify a handler type",
        ),
        (
            "spec.containers[0].readinessProbe.tcpSocket",
            "Forbidden: may not specify more than 1 handler type",
        ),
        (
            "spec.containers[0].startupProbe.httpGet.port",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            "spec.containers[0].startupProbe.periodSeconds",
            "Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "spec.containers[0].startupProbe.successThreshold",
            "Invalid value: 2: must be 1",
        ),
        ("spec.initContainers[0].name", "Duplicate value: \"app\""),
        (
            "spec.initContainers[0].readinessProbe",
            "Forbidden: may not be set for init containers without restartPolicy=Always",
        ),
    ];
    assert_eq!(
        causes,
        expected.map(|(f, m)| (f.to_string(), m.to_string())),
        "{}",
        status.message
    );
    assert!(pods.get_opt("bad").await.expect("read").is_none(), "nothing stored");

    // A valid one is stored with the defaults.
    let good: Pod = serde_json::from_value(json!({
        "metadata": {"name": "good"},
        "spec": {
            "volumes": [{"name": "scratch"}, {"name": "settings", "configMap": {"name": "settings"}}],
            "containers": [{
                "name": "app", "image": "nginx",
                "ports": [{"name": "http", "containerPort": 80}],
                "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}, {"name": "settings", "mountPath": "/etc/app"}],
                "readinessProbe": {"httpGet": {"port": "http"}}
            }]
        }
    }))
    .expect("pod");
    let stored =
        serde_json::to_value(pods.create(&PostParams::default(), &good).await.expect("created")).expect("json");
    assert_eq!(stored.pointer("/spec/volumes/0/emptyDir"), Some(&json!({})));
    assert_eq!(
        stored.pointer("/spec/volumes/1/configMap/defaultMode"),
        Some(&json!(420))
    );
    assert_eq!(
        stored.pointer("/spec/containers/0/readinessProbe"),
        Some(&json!({"httpGet": {"port": "http", "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}))
    );

    // kubectl prints kube-apiserver's refusal of a template's mount of no volume.
    let printed = kubectl_create_refused(
        &sandbox,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: app\n        image: nginx\n        volumeMounts:\n        - {name: missing, mountPath: /data}\n",
    );
    assert!(
        printed.contains(
            "The Deployment \"web\" is invalid: spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"missing\""
        ),
        "{printed}"
    );
    // Pods that run until replaced take no deadline (met on clusters when a Job's template
    // moves into a Deployment).
    let printed = kubectl_create_refused(
        &sandbox,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\nspec:\n  selector:\n    matchLabels: {app: worker}\n  template:\n    metadata:\n      labels: {app: worker}\n    spec:\n      activeDeadlineSeconds: 600\n      containers:\n      - {name: app, image: busybox}\n",
    );
    assert!(
        printed.contains(
            "The Deployment \"worker\" is invalid: spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"
        ),
        "{printed}"
    );
    sandbox.shutdown().await;
}

/// Ingresses and containers' environments are judged as kube-apiserver judges them: paths
/// need a type that suits them, backends a Service port or a resource; hosts are DNS names;
/// environment variables have printable names and one source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_and_environments_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::networking::v1::Ingress;
    use kube::api::{Api, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let causes = support::field_causes;
    let ingresses: Api<Ingress> = Api::default_namespaced(client.clone());
    let bad: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"rules": [
            {"host": "10.0.0.1", "http": {"paths": [
                {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}},
            {"host": "*.example.com", "http": {"paths": [
                {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "Web", "port": {"number": 80}}}},
                {"path": "/a//b", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {}}}},
                {"path": "/", "pathType": "Regex", "backend": {}}
            ]}}
        ]}
    }))
    .expect("ingress");
    let e = ingresses
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("refused");
    assert_eq!(
        causes(e),
        [
            "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
            // k8s-openapi always writes the path type; Go reads "" as a type given empty.
            "spec.rules[0].http.paths[0].pathType: Unsupported value: \"\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            "spec.rules[1].http.paths[0].path: Invalid value: \"api\": must be an absolute path",
            "spec.rules[1].http.paths[0].backend.service.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
            "spec.rules[1].http.paths[1].path: Invalid value: \"/a//b\": must not contain '//'",
            "spec.rules[1].http.paths[1].backend: Required value: port name or number is required",
            "spec.rules[1].http.paths[2].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            "spec.rules[1].http.paths[2].backend: Invalid value: \"\": resource or service backend is required",
        ]
    );
    let e = ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {}})).expect("ingress"),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        causes(e),
        ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
    );
    let good: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "good"},
        "spec": {"rules": [{"host": "*.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}
        ]}}]}
    }))
    .expect("ingress");
    ingresses.create(&PostParams::default(), &good).await.expect("created");
    // A manifest without a path type, through kubectl.
    let printed = kubectl_create_refused(
        &sandbox,
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: untyped\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /\n        backend:\n          service: {name: web, port: {number: 80}}\n",
    );
    assert!(
        printed.contains(
            "The Ingress \"untyped\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
        ),
        "{printed}"
    );

    let pods: Api<Pod> = Api::default_namespaced(client);
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "env"},
        "spec": {"containers": [{"name": "app", "image": "nginx", "env": [
            {"name": "A=B", "value": "1"},
            {"name": "FROM", "value": "x", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}},
            {"name": "NOWHERE", "valueFrom": {}},
            {"name": "KEYLESS", "valueFrom": {"secretKeyRef": {"name": "creds"}}},
            {"name": "SPACED OUT", "value": "fine"}
        ]}]}
    }))
    .expect("pod");
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    assert_eq!(
        causes(e),
        [
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            "spec.containers[0].env[3].valueFrom.secretKeyRef.key: Required value",
        ]
    );
    sandbox.shutdown().await;
}

/// Security contexts of Pods and containers are judged as kube-apiserver judges them: ids in
/// range, known policies and seccomp types, a local seccomp profile exactly with type
/// Localhost, no privileged container that forbids privilege escalation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_contexts_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {
            "securityContext": {"runAsUser": -1, "fsGroupChangePolicy": "Sometimes", "seccompProfile": {"type": "Localhost"}},
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "runAsGroup": 2147483648_i64, "allowPrivilegeEscalation": false, "privileged": true,
                "seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "profile.json"}
            }}]
        }
    }))
    .expect("pod");
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let causes = support::field_causes(e);
    assert_eq!(causes.len(), 6, "{causes:#?}");
    assert_eq!(
        causes[..2],
        [
            "spec.containers[0].securityContext.runAsGroup: Invalid value: 2147483648: must be between 0 and 2147483647, inclusive",
            "spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: core.SeccompProfile{Type:\"RuntimeDefault\", LocalhostProfile:(*string)(0xc000000000)}: can only be set when seccomp type is Localhost",
        ]
    );
    assert!(
        causes[2].starts_with("spec.containers[0].securityContext: Invalid value: core.SecurityContext{")
            && causes[2].ends_with("}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true"),
        "{}",
        causes[2]
    );
    assert_eq!(
        causes[3..],
        [
            "spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            "spec.securityContext.fsGroupChangePolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnRootMismatch\"",
            "spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost",
        ]
    );
    sandbox.shutdown().await;
}

/// A pod's node selector, affinity and tolerations are judged as kube-apiserver judges them,
/// in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selectors_affinity_and_tolerations_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {
            "tolerations": [
                {"operator": "Equal", "value": "x"},
                {"key": "gpu", "operator": "Exists", "value": "yes", "effect": "NoSchedule"},
                {"key": "zone", "operator": "In", "effect": "Sometimes"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []},
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {"matchExpressions": [
                        {"key": "disk", "operator": "Like"},
                        {"key": "zone", "operator": "In"},
                        {"key": "ssd", "operator": "Exists", "values": ["true"]}
                    ]}}]
                },
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": ""}
                ]}
            },
            "nodeSelector": {"disk type": "ssd"},
            "containers": [{"name": "app", "image": "nginx"}]
        }
    }))
    .expect("pod");
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let qualified = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let affinity = "spec.affinity.nodeAffinity";
    let preferred = format!("{affinity}.preferredDuringSchedulingIgnoredDuringExecution[0]");
    let anti = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";
    assert_eq!(
        support::field_causes(e),
        [
            format!("spec.nodeSelector: Invalid value: \"disk type\": name part {qualified}"),
            format!("{affinity}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"),
            format!("{preferred}.weight: Invalid value: 0: must be in the range 1-100"),
            format!("{preferred}.preference.matchExpressions[0].operator: Invalid value: \"Like\": not a valid selector operator"),
            format!("{preferred}.preference.matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
            format!("{preferred}.preference.matchExpressions[2].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
            format!("{anti}.topologyKey: Required value: can not be empty"),
            format!("{anti}.topologyKey: Invalid value: \"\": name part must be non-empty"),
            format!("{anti}.topologyKey: Invalid value: \"\": name part {qualified}"),
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"".to_string(),
            "spec.tolerations[1].operator: Invalid value: core.Toleration{Key:\"gpu\", Operator:\"Exists\", Value:\"yes\", Effect:\"NoSchedule\", TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'".to_string(),
            "spec.tolerations[2].operator: Unsupported value: \"In\": supported values: \"Equal\", \"Exists\"".to_string(),
            "spec.tolerations[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string(),
            "spec.tolerations[3].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set".to_string(),
        ]
    );
    sandbox.shutdown().await;
}

/// Node field selectors, the label and namespace selectors of pod affinity terms with their
/// label keys, and topology spread constraints are judged as kube-apiserver 1.33 judges them;
/// a new Pod's `matchLabelKeys` join its affinity terms' selectors before that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_constraints_field_selectors_and_affinity_selectors_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bad", "labels": {"app": "web"}},
        "spec": {
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["node-a", "node-b"]},
                    {"key": "spec.unschedulable", "operator": "Exists"},
                    {"key": "metadata.name", "operator": "NotIn", "values": ["Node_A"]}
                ]}]}},
                "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Has", "values": ["x y"]}]},
                    "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]},
                    "namespaces": ["Bad_NS"],
                    "matchLabelKeys": ["app", "release"],
                    "mismatchLabelKeys": ["release"],
                    "topologyKey": "zone"
                }]},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "podAffinityTerm": {"matchLabelKeys": ["app"], "topologyKey": "zone"}}
                ]}
            },
            "topologySpreadConstraints": [
                {"maxSkew": 0, "topologyKey": "", "whenUnsatisfiable": "Sometimes", "minDomains": 0, "nodeAffinityPolicy": "Maybe", "matchLabelKeys": ["app"]},
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2,
                 "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["app"]},
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
            ],
            "containers": [{"name": "app", "image": "nginx"}]
        }
    }))
    .expect("pod");
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let fields =
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields";
    let term = "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";
    let subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let label = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    let value = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let spread = "spec.topologySpreadConstraints";
    assert_eq!(
        support::field_causes(e),
        [
            format!("{fields}[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"),
            format!("{fields}[1].operator: Invalid value: \"Exists\": not a valid selector operator"),
            format!("{fields}[1].key: Invalid value: \"spec.unschedulable\": not a valid field selector key"),
            format!("{fields}[2].values[0]: Invalid value: \"Node_A\": {subdomain}"),
            format!("{term}.labelSelector.matchExpressions[0].operator: Invalid value: \"Has\": not a valid selector operator"),
            format!("{term}.labelSelector.matchExpressions[0].values[0]: Invalid value: \"x y\": {value}"),
            format!("{term}.namespaceSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
            format!("{term}.namespace: Invalid value: \"Bad_NS\": {label}"),
            // The Pod's label `app` joined the selector, which already named it.
            format!("{term}[0]: Invalid value: \"app\": exists in both matchLabelKeys and labelSelector"),
            format!("{term}.matchLabelKeys[1]: Invalid value: \"release\": exists in both matchLabelKeys and mismatchLabelKeys"),
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.matchLabelKeys: Forbidden: must not be specified when labelSelector is not set".to_string(),
            format!("{spread}[0].maxSkew: Invalid value: 0: must be greater than zero"),
            format!("{spread}[0].topologyKey: Required value: can not be empty"),
            format!("{spread}[0].whenUnsatisfiable: Unsupported value: \"Sometimes\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\""),
            format!("{spread}[0].minDomains: Invalid value: 0: must be greater than zero"),
            format!("{spread}[0].minDomains: Invalid value: 0: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not Sometimes"),
            format!("{spread}[0].nodeAffinityPolicy: Unsupported value: \"Maybe\": supported values: \"Honor\", \"Ignore\""),
            format!("{spread}[0].matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"),
            format!("{spread}[1].{{topologyKey, whenUnsatisfiable}}: Duplicate value: \"{{zone, ScheduleAnyway}}\""),
            format!("{spread}[1].minDomains: Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"),
            format!("{spread}[1].matchLabelKeys[0]: Invalid value: \"app\": exists in both matchLabelKeys and labelSelector"),
        ]
    );

    // Valid: kubectl creates it, and the Pod's label joined the term's selector as `In`, the
    // missing one as nothing.
    let (kubectl, dir) = kubectl_of(&sandbox, "label-keys");
    let manifest = dir.join("pod.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: v1
kind: Pod
metadata: {name: spread, labels: {app: web, release: r1}}
spec:
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {tier: front}}
        matchLabelKeys: [app, missing]
        mismatchLabelKeys: [release]
        topologyKey: kubernetes.io/hostname
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, minDomains: 2, nodeAffinityPolicy: Honor, labelSelector: {matchLabels: {tier: front}}, matchLabelKeys: [app]}
  containers: [{name: app, image: nginx}]
"#,
    )
    .expect("write");
    kubectl.ok(&["create", "-f", manifest.to_str().expect("path")]);
    let selector = kubectl.ok(&[
        "get",
        "pod",
        "spread",
        "-o",
        "jsonpath={.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector}",
    ]);
    let selector: Value = serde_json::from_str(&selector).expect("a selector");
    assert_eq!(
        selector,
        json!({"matchLabels": {"tier": "front"}, "matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web"]},
            {"key": "release", "operator": "NotIn", "values": ["r1"]}
        ]})
    );
    // Topology spread constraints keep their label keys apart (1.33 does not merge them).
    let spread = kubectl.ok(&[
        "get",
        "pod",
        "spread",
        "-o",
        "jsonpath={.spec.topologySpreadConstraints[0].labelSelector}",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&spread).expect("a selector"),
        json!({"matchLabels": {"tier": "front"}})
    );
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

/// A pod's sysctls are judged as kube-apiserver judges them: named, well-formed, once each,
/// and not of a kernel namespace the pod shares with the host; `shareProcessNamespace` not
/// with `hostPID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysctls_and_shared_namespaces_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = |spec: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "tuned"}, "spec": spec})).expect("pod")
    };
    let bad = pod(json!({
        "hostNetwork": true,
        "hostIPC": true,
        "hostPID": true,
        "shareProcessNamespace": true,
        "securityContext": {"sysctls": [
            {"name": "", "value": "1"},
            {"name": "Net.Core", "value": "1"},
            {"name": "net.core.somaxconn", "value": "1024"},
            {"name": "net.core.somaxconn", "value": "2048"},
            {"name": "kernel/shm_rmid_forced", "value": "1"},
            {"name": "vm.swappiness", "value": "10"}
        ]},
        "containers": [{"name": "app", "image": "nginx"}]
    }));
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let at = "spec.securityContext";
    let regex = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";
    assert_eq!(
        support::field_causes(e),
        [
            format!(
                "{at}.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"
            ),
            format!("{at}.sysctls[0].name: Required value"),
            format!(
                "{at}.sysctls[1].name: Invalid value: \"Net.Core\": must have at most 253 characters and match regex {regex}"
            ),
            format!(
                "{at}.sysctls[2].name: Invalid value: \"net.core.somaxconn\": may not be specified when 'hostNetwork' is true"
            ),
            format!("{at}.sysctls[3].name: Duplicate value: \"net.core.somaxconn\""),
            format!(
                "{at}.sysctls[3].name: Invalid value: \"net.core.somaxconn\": may not be specified when 'hostNetwork' is true"
            ),
            format!(
                "{at}.sysctls[4].name: Invalid value: \"kernel/shm_rmid_forced\": may not be specified when 'hostIPC' is true"
            ),
        ]
    );
    // The same sysctls in a pod of its own namespaces are fine.
    let good = pod(json!({
        "securityContext": {"sysctls": [
            {"name": "net.core.somaxconn", "value": "1024"},
            {"name": "kernel/shm_rmid_forced", "value": "1"}
        ]},
        "containers": [{"name": "app", "image": "nginx"}]
    }));
    pods.create(&PostParams::default(), &good).await.expect("created");
    sandbox.shutdown().await;
}

/// Environment variables read pod fields and container resources that kube-apiserver knows:
/// refusals worded as its own, and the defaults it writes (`apiVersion: v1`, `divisor: "0"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_field_references_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = |name: &str, env: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "app", "image": "nginx", "env": env}]
        }}))
        .expect("pod")
    };
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let bad = pod(
        "bad",
        json!([
            {"name": "A", "valueFrom": field("status.phase")},
            {"name": "B", "valueFrom": field("spec.containers")},
            {"name": "C", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}},
            {"name": "D", "valueFrom": field("metadata.labels['bad key']")},
            {"name": "E", "valueFrom": field("metadata.name['x']")},
            {"name": "F", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}},
            {"name": "G", "valueFrom": {"resourceFieldRef": {"resource": ""}}}
        ]),
    );
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let env = "spec.containers[0].env";
    let qualified = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    assert_eq!(
        support::field_causes(e),
        [
            format!(
                "{env}[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"status.phase\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\""
            ),
            format!(
                "{env}[1].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.containers\": error converting fieldPath: field label not supported: spec.containers"
            ),
            format!(
                "{env}[2].valueFrom.fieldRef.fieldPath: Invalid value: \"metadata.name\": error converting fieldPath: unsupported pod version: v2"
            ),
            format!("{env}[3].valueFrom.fieldRef: Invalid value: \"bad key\": name part {qualified}"),
            format!(
                "{env}[4].valueFrom.fieldRef.fieldPath: Invalid value: \"metadata.name['x']\": error converting fieldPath: field label does not support subscript: metadata.name['x']"
            ),
            format!(
                "{env}[5].valueFrom.resourceFieldRef.resource: Unsupported value: \"limits.gpu\": supported values: \"limits.cpu\", \"limits.ephemeral-storage\", \"limits.memory\", \"requests.cpu\", \"requests.ephemeral-storage\", \"requests.memory\""
            ),
            format!("{env}[6].valueFrom.resourceFieldRef.resource: Required value"),
        ]
    );
    let good = pod(
        "good",
        json!([
            {"name": "NODE", "valueFrom": field("spec.nodeName")},
            {"name": "TEAM", "valueFrom": field("metadata.labels['team']")},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
        ]),
    );
    let created = pods.create(&PostParams::default(), &good).await.expect("created");
    let created = serde_json::to_value(&created).expect("json");
    let env = &created["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0]["valueFrom"],
        json!({"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}})
    );
    assert_eq!(env[1]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        env[2]["valueFrom"],
        json!({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}})
    );
    sandbox.shutdown().await;
}

/// A resource field selector's divisor is one of the units of its resource, as
/// `Quantity.String()` writes it: `1000m` is `1`, but `1024` is not `1Ki` and `1e3` is not `1k`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_field_divisors_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = |name: &str, divisors: &[(&str, &str)]| -> Pod {
        let env: Vec<Value> = divisors
            .iter()
            .enumerate()
            .map(|(i, (resource, divisor))| {
                json!({"name": format!("V{i}"), "valueFrom": {"resourceFieldRef": {"resource": resource, "divisor": divisor}}})
            })
            .collect();
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "app", "image": "nginx", "env": env}]
        }}))
        .expect("pod")
    };
    let bad = pod(
        "bad",
        &[
            ("limits.cpu", "2"),
            ("requests.cpu", "1k"),
            ("limits.memory", "1024"),
            ("requests.memory", "1e3"),
            ("limits.ephemeral-storage", "2Mi"),
        ],
    );
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let env = "spec.containers[0].env";
    let bytes = "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the";
    assert_eq!(
        support::field_causes(e),
        [
            format!(
                "{env}[0].valueFrom.resourceFieldRef.divisor: Invalid value: \"limits.cpu\": only divisor's values 1m and 1 are supported with the cpu resource"
            ),
            format!(
                "{env}[1].valueFrom.resourceFieldRef.divisor: Invalid value: \"requests.cpu\": only divisor's values 1m and 1 are supported with the cpu resource"
            ),
            format!(
                "{env}[2].valueFrom.resourceFieldRef.divisor: Invalid value: \"limits.memory\": {bytes} memory resource"
            ),
            format!(
                "{env}[3].valueFrom.resourceFieldRef.divisor: Invalid value: \"requests.memory\": {bytes} memory resource"
            ),
            format!(
                "{env}[4].valueFrom.resourceFieldRef.divisor: Invalid value: \"limits.ephemeral-storage\": {bytes} local ephemeral storage resource"
            ),
        ]
    );
    let good = pod(
        "good",
        &[
            ("limits.cpu", "1m"),
            ("requests.cpu", "1000m"),
            ("limits.memory", "1Mi"),
            ("requests.memory", "1k"),
            ("limits.ephemeral-storage", "1Gi"),
            ("requests.ephemeral-storage", "0"),
            ("limits.hugepages-2Mi", "3"),
        ],
    );
    pods.create(&PostParams::default(), &good).await.expect("created");
    sandbox.shutdown().await;
}

/// Ingress TLS hosts and Secret names, the Ingress's class name, and IngressClasses
/// (controller, parameters, scope defaulted to Cluster, controller fixed once set) are judged
/// as kube-apiserver judges them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_tls_and_ingress_classes_are_judged() {
    use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let wildcard = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let ingresses: Api<Ingress> = Api::default_namespaced(client.clone());
    let bad: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {
            "ingressClassName": "Nginx_Class",
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
            "tls": [{"hosts": ["*.example.com", "a.*.example.com", "Bad_Host"], "secretName": "Bad_Secret"}]
        }
    }))
    .expect("ingress");
    let e = ingresses
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("refused");
    assert_eq!(
        support::field_causes(e),
        [
            format!("spec.tls[0].hosts[1]: Invalid value: \"a.*.example.com\": {wildcard}"),
            format!("spec.tls[0].hosts[2]: Invalid value: \"Bad_Host\": {subdomain}"),
            format!("spec.tls[0].secretName: Invalid value: \"Bad_Secret\": {subdomain}"),
            format!("spec.ingressClassName: Invalid value: \"Nginx_Class\": {subdomain}"),
        ]
    );

    let classes: Api<IngressClass> = Api::all(client);
    let class = |name: &str, spec: Value| -> IngressClass {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("class")
    };
    let refused = |class: IngressClass| {
        let classes = classes.clone();
        async move {
            support::field_causes(
                classes
                    .create(&PostParams::default(), &class)
                    .await
                    .expect_err("refused"),
            )
        }
    };
    assert_eq!(
        refused(class(
            "no-path",
            json!({"controller": "example.com", "parameters": {"kind": "", "name": "a/b", "scope": "Namespace"}})
        ))
        .await,
        [
            "spec.controller: Invalid value: \"example.com\": must be a domain-prefixed path (such as \"acme.io/foo\")",
            "spec.parameters.kind: Required value: kind is required",
            "spec.parameters.name: Invalid value: \"a/b\": may not contain '/'",
            "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'",
        ]
    );
    assert_eq!(
        refused(class(
            "cluster",
            json!({"controller": "Example.com/ctl ler", "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p", "namespace": "ns"}})
        ))
        .await,
        [
            format!("spec.controller: Invalid value: \"Example.com\": {subdomain}"),
            "spec.controller: Invalid value: \"ctl ler\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')".to_string(),
            "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'".to_string(),
        ]
    );
    assert_eq!(
        refused(class(
            "long",
            json!({"controller": format!("example.com/{}", "c".repeat(250))})
        ))
        .await,
        ["spec.controller: Too long: may not be more than 250 bytes"]
    );

    // A valid class: its parameters' scope defaults to Cluster, and its controller is fixed.
    let created = classes
        .create(
            &PostParams::default(),
            &class(
                "web",
                json!({"controller": "example.com/ingress", "parameters": {"kind": "Params", "name": "p"}}),
            ),
        )
        .await
        .expect("created");
    assert_eq!(
        created.spec.and_then(|s| s.parameters).and_then(|p| p.scope).as_deref(),
        Some("Cluster")
    );
    let (kubectl, dir) = kubectl_of(&sandbox, "ingress-class");
    let refusal = kubectl.fails(&[
        "patch",
        "ingressclass",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"controller":"example.com/other"}}"#,
    ]);
    assert!(
        refusal.contains("spec.controller: Invalid value: \"example.com/other\": field is immutable"),
        "{refusal}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

/// Windows options of pod and container security contexts, and host-process pods, are judged
/// as kube-apiserver judges them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_options_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = |name: &str, spec: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
    };
    let bad = pod(
        "windows",
        json!({
            "securityContext": {"windowsOptions": {
                "gmsaCredentialSpecName": "Bad_Name", "gmsaCredentialSpec": "", "runAsUserName": "a\\b\\c", "hostProcess": true
            }},
            "containers": [
                {"name": "a", "image": "img", "securityContext": {"windowsOptions": {"runAsUserName": "bad:domain\\. .", "hostProcess": false}}},
                {"name": "b", "image": "img", "securityContext": {"windowsOptions": {"runAsUserName": ""}}}
            ]
        }),
    );
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    let options = "securityContext.windowsOptions";
    assert_eq!(
        support::field_causes(e),
        [
            format!("spec.containers[0].{options}.runAsUserName: Invalid value: \"bad:domain\\\\. .\": runAsUserName's Domain doesn't match the NetBios nor the DNS format"),
            format!("spec.containers[0].{options}.runAsUserName: Invalid value: \"bad:domain\\\\. .\": runAsUserName's User cannot contain only periods or spaces"),
            format!("spec.containers[1].{options}.runAsUserName: Invalid value: \"\": runAsUserName cannot be an empty string"),
            format!("spec.{options}.gmsaCredentialSpecName: Invalid value: \"Bad_Name\": {subdomain}"),
            format!("spec.{options}.gmsaCredentialSpec: Invalid value: \"\": gmsaCredentialSpec cannot be an empty string"),
            format!("spec.{options}.runAsUserName: Invalid value: \"a\\\\b\\\\c\": runAsUserName cannot contain more than one backslash"),
            format!("spec.containers[0].{options}.hostProcess: Invalid value: false: pod hostProcess value must be identical if both are specified, was true"),
            "spec: Invalid value: \"\": If pod contains any hostProcess containers then all containers must be HostProcess containers".to_string(),
            "spec.hostNetwork: Invalid value: false: hostNetwork must be true if pod contains any hostProcess containers".to_string(),
        ]
    );
    // A host-process pod on the host's network, with a domain user, is fine.
    let good = pod(
        "host",
        json!({
            "hostNetwork": true,
            "securityContext": {"windowsOptions": {"hostProcess": true, "runAsUserName": "NT AUTHORITY\\SYSTEM"}},
            "containers": [{"name": "a", "image": "img"}]
        }),
    );
    pods.create(&PostParams::default(), &good).await.expect("created");
    sandbox.shutdown().await;
}

/// Downward API volumes and projected volumes are judged as kube-apiserver judges them: each
/// file's path, exactly one of a field or a resource (a volume's resource names its
/// container), the fields a volume may hold, file modes, paths not given twice in one
/// projected volume, ServiceAccount tokens living at least ten minutes (an hour when unset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downward_api_and_projected_volumes_are_judged() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let (sandbox, client) = started().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = |name: &str, volumes: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": volumes,
        }}))
        .expect("pod")
    };
    let bad = pod(
        "bad",
        json!([
            {"name": "info", "downwardAPI": {"items": [
                {"path": "", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "/abs", "fieldRef": {"fieldPath": "spec.nodeName"}},
                {"path": "..x", "resourceFieldRef": {"resource": "limits.cpu"}},
                {"path": "both", "fieldRef": {"fieldPath": "metadata.uid"},
                 "resourceFieldRef": {"containerName": "app", "resource": "limits.memory"}},
                {"path": "none"},
                {"path": "m", "fieldRef": {"fieldPath": "metadata.labels"}, "mode": 1000},
                {"path": "d", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "2"}},
            ]}},
            {"name": "all", "projected": {"sources": [
                {"secret": {"name": "s", "items": [{"key": "a", "path": "same"}]}},
                {"configMap": {"name": "c", "items": [{"key": "b", "path": "same"}]}},
                {"downwardAPI": {"items": [{"path": "same", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"serviceAccountToken": {"path": "", "expirationSeconds": 60}},
                {"configMap": {"items": [{"key": "", "path": "../up"}]}},
            ]}},
        ]),
    );
    let e = pods.create(&PostParams::default(), &bad).await.expect_err("refused");
    let d = "spec.volumes[0].downwardAPI";
    let p = "spec.volumes[1].projected";
    assert_eq!(
        support::field_causes(e),
        [
            format!("{d}.path: Required value"),
            format!("{d}.path: Invalid value: \"/abs\": must be a relative path"),
            format!(
                "{d}.fieldRef.fieldPath: Unsupported value: \"spec.nodeName\": supported values: \"metadata.annotations\", \"metadata.labels\", \"metadata.name\", \"metadata.namespace\", \"metadata.uid\""
            ),
            format!("{d}.path: Invalid value: \"..x\": must not start with '..'"),
            format!("{d}.resourceFieldRef.containerName: Required value"),
            format!(
                "{d}: Invalid value: \"resource\": fieldRef and resourceFieldRef can not be specified simultaneously"
            ),
            format!("{d}: Required value: one of fieldRef and resourceFieldRef is required"),
            format!("{d}.mode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive"),
            format!(
                "{d}.resourceFieldRef.divisor: Invalid value: \"limits.cpu\": only divisor's values 1m and 1 are supported with the cpu resource"
            ),
            format!("{p}: Invalid value: \"c\": conflicting duplicate paths"),
            format!("{p}: Invalid value: \"same\": conflicting duplicate paths"),
            format!(
                "{p}.sources[3].serviceAccountToken.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
            ),
            format!("{p}.path: Required value"),
            format!("{p}.sources[4].configMap.name: Required value"),
            format!("{p}.sources[4].configMap.items[0].key: Required value"),
            format!("{p}.sources[4].configMap.items[0].path: Invalid value: \"../up\": must not contain '..'"),
        ]
    );
    let good = pod(
        "good",
        json!([
            {"name": "info", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "team", "fieldRef": {"fieldPath": "metadata.annotations['Team']"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
            ]}},
            {"name": "all", "projected": {"sources": [
                {"configMap": {"name": "c", "items": [{"key": "b", "path": "b"}]}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"serviceAccountToken": {"path": "token"}},
            ]}},
        ]),
    );
    let created = pods.create(&PostParams::default(), &good).await.expect("created");
    let volumes = created.spec.and_then(|s| s.volumes).unwrap_or_default();
    let token = volumes
        .iter()
        .find(|v| v.name == "all")
        .and_then(|v| v.projected.as_ref())
        .and_then(|p| p.sources.as_ref())
        .and_then(|s| s.iter().find_map(|s| s.service_account_token.clone()))
        .expect("the token source");
    assert_eq!(token.expiration_seconds, Some(3600), "defaulted to an hour");
    sandbox.shutdown().await;
}
