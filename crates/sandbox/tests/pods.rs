//! Pods on simulated nodes: the `binding` and `eviction` subresources, PodDisruptionBudgets
//! (`kubectl drain` stops at a budget and goes on once it allows), and the simulated
//! components writing through admission as who they are on a cluster.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, EvictParams, PostParams};
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::{Kubectl, kubectl};

async fn simulating() -> (Sandbox, Kubectl, kube::Client) {
    let sandbox = Sandbox::start(Config {
        simulate_workloads: true,
        ..Config::default()
    })
    .await
    .expect("sandbox");
    let kubeconfig = std::env::temp_dir().join(format!(
        "pg-pods-{}-{}.kubeconfig",
        std::process::id(),
        sandbox.url().rsplit(':').next().unwrap_or_default()
    ));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    (
        sandbox,
        Kubectl {
            bin: kubectl(None),
            kubeconfig,
        },
        client,
    )
}

/// Polls `check` until it holds (the simulation writes after the request that caused it).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn field(k: &Kubectl, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let jsonpath = format!("jsonpath={path}");
    all.extend(["-o", &jsonpath]);
    k.ok(&all)
}

fn nodes_of_web(k: &Kubectl) -> Vec<String> {
    let out = field(k, &["get", "pods", "-l", "app=web"], "{.items[*].spec.nodeName}");
    out.split_whitespace().map(str::to_string).collect()
}

/// Lowers the budget's minAvailable to `min` and waits until it allows one disruption.
async fn relax(k: &Kubectl, min: u32) {
    let patch = format!(r#"{{"spec":{{"minAvailable":{min}}}}}"#);
    k.ok(&["patch", "pdb", "web", "--type=merge", "-p", &patch]);
    eventually("the relaxed budget", || {
        field(k, &["get", "pdb", "web"], "{.status.disruptionsAllowed}") == "1"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_evicts_within_disruption_budgets() {
    let (sandbox, k, client) = simulating().await;
    k.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]);
    k.ok(&["wait", "--for=condition=Available", "deployment/web", "--timeout=20s"]);
    k.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=3",
    ]);
    eventually("the budget's status", || {
        field(
            &k,
            &["get", "pdb", "web"],
            "{.status.currentHealthy}/{.status.disruptionsAllowed}",
        ) == "3/0"
    })
    .await;
    let table = k.ok(&["get", "pdb", "web"]);
    assert_eq!(
        table
            .lines()
            .nth(1)
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>()),
        Some(vec!["web", "3", "N/A", "0"]),
        "{table}"
    );

    // An eviction the budget forbids is 429 with the budget's cause (kube-rs retries 429s for
    // minutes, as it would against a cluster, so this one is posted by kubectl).
    let name = field(&k, &["get", "pods", "-l", "app=web"], "{.items[0].metadata.name}");
    let eviction = std::env::temp_dir().join(format!("pg-pods-eviction-{}.json", std::process::id()));
    std::fs::write(
        &eviction,
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}})
            .to_string(),
    )
    .expect("eviction file");
    let out = Command::new(&k.bin)
        .args([
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{name}/eviction"),
            "-f",
        ])
        .arg(&eviction)
        .env("KUBECONFIG", &k.kubeconfig)
        .output()
        .expect("kubectl runs");
    let _ = std::fs::remove_file(&eviction);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget."
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(pods.get_opt(&name).await.expect("get").is_some(), "the Pod stays");

    // One Pod at a time once the budget allows it: kube-rs evicts one, the ReplicaSet replaces it.
    relax(&k, 2).await;
    pods.evict(&name, &EvictParams::default())
        .await
        .expect("an eviction the budget allows");
    assert!(
        pods.get_opt(&name).await.expect("get").is_none(),
        "the evicted Pod is gone"
    );
    eventually("the replacement", || {
        field(
            &k,
            &["get", "pdb", "web"],
            "{.status.currentHealthy}/{.status.disruptionsAllowed}",
        ) == "3/1"
    })
    .await;
    k.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":3}}"#,
    ]);
    eventually("the budget restored", || {
        field(&k, &["get", "pdb", "web"], "{.status.disruptionsAllowed}") == "0"
    })
    .await;

    // kubectl drain stops at the budget...
    let node = nodes_of_web(&k).first().cloned().expect("a node");
    let out = Command::new(&k.bin)
        .args(["drain", &node, "--ignore-daemonsets", "--timeout=3s"])
        .env("KUBECONFIG", &k.kubeconfig)
        .output()
        .expect("kubectl drain runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "drain succeeded against the budget");
    assert!(
        said.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{said}"
    );

    // ...and goes through once the budget allows one Pod to go at a time.
    relax(&k, 2).await;
    let drained = k.ok(&["drain", &node, "--ignore-daemonsets", "--timeout=20s"]);
    assert!(drained.contains(&format!("node/{node} drained")), "{drained}");
    assert_eq!(field(&k, &["get", "node", &node], "{.spec.unschedulable}"), "true");
    eventually("the replacement Pods elsewhere", || {
        let nodes = nodes_of_web(&k);
        nodes.len() == 3 && !nodes.contains(&node)
    })
    .await;
    k.ok(&["wait", "--for=condition=Available", "deployment/web", "--timeout=20s"]);

    let _ = std::fs::remove_file(&k.kubeconfig);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_puts_a_pod_of_another_scheduler_on_its_node() {
    let (sandbox, k, client) = simulating().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "manual"},
        "spec": {"schedulerName": "manual", "containers": [{"name": "c", "image": "busybox"}]}}))
    .expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("create");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = pods.get("manual").await.expect("get");
    assert_eq!(
        waiting.spec.as_ref().and_then(|s| s.node_name.clone()),
        None,
        "the default scheduler leaves another scheduler's Pod alone"
    );

    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "manual"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "sandbox-worker2"}});
    let status: Value = pods
        .create_subresource("binding", "manual", &PostParams::default(), &binding)
        .await
        .expect("binding");
    assert_eq!(
        (status["kind"].as_str(), status["status"].as_str()),
        (Some("Status"), Some("Success"))
    );
    eventually("the bound Pod running", || {
        field(&k, &["get", "pod", "manual"], "{.spec.nodeName}/{.status.phase}") == "sandbox-worker2/Running"
    })
    .await;
    let scheduled = field(
        &k,
        &["get", "pod", "manual"],
        r#"{.status.conditions[?(@.type=="PodScheduled")].status}"#,
    );
    assert_eq!(scheduled, "True");
    match pods
        .create_subresource::<_, Value>("binding", "manual", &PostParams::default(), &binding)
        .await
    {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 409);
            assert_eq!(
                e.message,
                r#"Operation cannot be fulfilled on pods/binding "manual": pod manual is already assigned to node "sandbox-worker2""#
            );
        }
        other => panic!("a second binding: {other:?}"),
    }

    // Discovery lists the subresources.
    let core = k.ok(&["get", "--raw", "/api/v1"]);
    let core: Value = serde_json::from_str(&core).expect("json");
    let names: Vec<&str> = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for sub in ["pods/binding", "pods/eviction", "serviceaccounts/token"] {
        assert!(names.contains(&sub), "{sub} in {names:?}");
    }

    let _ = std::fs::remove_file(&k.kubeconfig);
    sandbox.shutdown().await;
}

/// A ValidatingAdmissionPolicy sees the Pods the simulated ReplicaSet controller creates, as
/// its ServiceAccount; a refused Pod becomes the controller's FailedCreate warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_controllers_write_through_admission() {
    let (sandbox, k, client) = simulating().await;
    let policy = std::env::temp_dir().join(format!("pg-pods-policy-{}.yaml", std::process::id()));
    std::fs::write(
        &policy,
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-blocked-pods}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"]}
  validations:
  - expression: "!has(object.metadata.labels) || !('blocked' in object.metadata.labels)"
    messageExpression: "'blocked Pods are refused to ' + request.userInfo.username"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-blocked-pods}
spec: {policyName: no-blocked-pods, validationActions: [Deny]}
"#,
    )
    .expect("policy file");
    k.ok(&["apply", "-f", &policy.to_string_lossy()]);
    let _ = std::fs::remove_file(&policy);

    k.ok(&["create", "deployment", "open", "--image=nginx", "--replicas=1"]);
    k.ok(&["create", "deployment", "shut", "--image=nginx", "--replicas=1"]);
    k.ok(&[
        "patch",
        "deployment",
        "shut",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"metadata":{"labels":{"blocked":"yes"}}}}}"#,
    ]);
    k.ok(&["wait", "--for=condition=Available", "deployment/open", "--timeout=20s"]);

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let list = events.list(&Default::default()).await.expect("events");
        if let Some(e) = list
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedCreate"))
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no FailedCreate event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.type_.as_deref(), Some("Warning"));
    assert_eq!(refused.involved_object.kind.as_deref(), Some("ReplicaSet"));
    let message = refused.message.unwrap_or_default();
    assert!(message.starts_with("Error creating: pods \"shut-"), "{message}");
    assert!(
        message.ends_with(
            "ValidatingAdmissionPolicy 'no-blocked-pods' with binding 'no-blocked-pods' denied request: blocked Pods are refused to system:serviceaccount:kube-system:replicaset-controller"
        ),
        "{message}"
    );
    let blocked = field(&k, &["get", "pods", "-l", "blocked=yes"], "{.items[*].metadata.name}");
    assert_eq!(blocked, "", "no blocked Pod was created");
    // The ReplicaSet and its Deployment say so in a ReplicaFailure condition, as
    // kube-controller-manager's controllers do, with the refusal as the API returned it.
    k.ok(&[
        "wait",
        "--for=condition=ReplicaFailure",
        "deployment/shut",
        "--timeout=20s",
    ]);
    let failure = |what: &[&str]| {
        field(
            &k,
            what,
            r#"{.status.conditions[?(@.type=="ReplicaFailure")].reason}|{.status.conditions[?(@.type=="ReplicaFailure")].message}"#,
        )
    };
    let on_deployment = failure(&["get", "deployment", "shut"]);
    let rs_name = field(&k, &["get", "rs", "-l", "blocked=yes"], "{.items[0].metadata.name}");
    let on_replica_set = failure(&["get", "rs", &rs_name]);
    for got in [&on_deployment, &on_replica_set] {
        assert!(got.starts_with("FailedCreate|pods \"shut-"), "{got}");
        assert!(
            got.ends_with(
                "denied request: blocked Pods are refused to system:serviceaccount:kube-system:replicaset-controller"
            ),
            "{got}"
        );
    }
    // Once creations pass again, the condition goes from both.
    k.ok(&["delete", "validatingadmissionpolicybinding", "no-blocked-pods"]);
    k.ok(&["wait", "--for=condition=Available", "deployment/shut", "--timeout=20s"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(failure(&["get", "deployment", "shut"]) == "|" && failure(&["get", "rs", &rs_name]) == "|") {
        assert!(
            Instant::now() < deadline,
            "ReplicaFailure stayed after creations passed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _ = std::fs::remove_file(&k.kubeconfig);
    sandbox.shutdown().await;
}

/// CronJobs start Jobs on schedule: within the next minute a CronJob scheduled every minute
/// owns a Job named after the scheduled minute, which completes on the simulated nodes; the
/// status records the run and the success; an invalid schedule or time zone is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_jobs_start_jobs_on_schedule() {
    let (sandbox, k, _client) = simulating().await;
    k.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=* * * * *",
        "--",
        "date",
    ]);
    let defaults = k.json(&["get", "cronjob", "tick"]);
    assert_eq!(defaults["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(defaults["spec"]["successfulJobsHistoryLimit"], 3);
    // The schedule's next minute comes within 60 s; the Job completes on simulated nodes.
    let deadline = Instant::now() + Duration::from_secs(75);
    let cronjob = loop {
        let cronjob = k.json(&["get", "cronjob", "tick"]);
        if cronjob.pointer("/status/lastSuccessfulTime").is_some() {
            break cronjob;
        }
        assert!(Instant::now() < deadline, "no run completed: {cronjob}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let scheduled = cronjob["status"]["lastScheduleTime"]
        .as_str()
        .expect("lastScheduleTime");
    let minute = scheduled.parse::<jiff::Timestamp>().expect("a time").as_second() / 60;
    let job = k.json(&["get", "job", &format!("tick-{minute}")]);
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(job["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        scheduled
    );
    assert_eq!(job["status"]["succeeded"], 1, "{job}");
    // Deleting the CronJob collects its Jobs.
    k.ok(&["delete", "cronjob", "tick"]);
    k.ok(&["wait", "--for=delete", &format!("job/tick-{minute}"), "--timeout=10s"]);

    let dir = std::env::temp_dir().join(format!("pg-cron-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let manifest = dir.join("bad.yaml");
    for (field, value, message) in [
        (
            "schedule",
            "61 * * * *",
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
        ),
        (
            "timeZone",
            "Mars/Olympus",
            "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
        ),
    ] {
        let schedule = if field == "schedule" { value } else { "@hourly" };
        let zone = if field == "timeZone" {
            format!("\n  timeZone: {value}")
        } else {
            String::new()
        };
        std::fs::write(
            &manifest,
            format!("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: bad\nspec:\n  schedule: \"{schedule}\"{zone}\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{{name: c, image: busybox}}]\n"),
        )
        .expect("write");
        let err = k.fails(&["create", "-f", manifest.to_str().expect("utf-8")]);
        assert!(err.contains(message), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}

/// The subresources that reach a kubelet are served and listed in discovery as on a cluster,
/// and answer that no container runs: `kubectl logs` and `exec`, kube-rs's `logs`, a missing
/// Pod still 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_exec_say_that_no_container_runs() {
    let (sandbox, k, client) = simulating().await;
    k.ok(&["create", "deployment", "web", "--image=nginx"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=20s"]);
    let pod = field(&k, &["get", "pods", "-l", "app=web"], "{.items[0].metadata.name}");
    let expected = format!(
        "pod \"{pod}\": log needs a running container, and the sandbox runs none (its containers nginx are simulated)"
    );
    let err = k.fails(&["logs", &pod]);
    assert!(err.contains(&expected), "{err}");
    let err = k.fails(&["exec", &pod, "--", "true"]);
    assert!(err.contains("exec needs a running container"), "{err}");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    match pods.logs(&pod, &Default::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.message.as_str()), (400, expected.as_str()))
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    match pods.logs("absent", &Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected a 404, got {other:?}"),
    }
    let discovered = client.list_core_api_resources("v1").await.expect("discovery");
    let verbs = |name: &str| {
        discovered
            .resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.verbs.clone())
            .unwrap_or_default()
    };
    assert_eq!(verbs("pods/log"), ["get"]);
    assert_eq!(verbs("pods/exec"), ["create", "get"]);
    assert_eq!(verbs("services/proxy"), ["create", "delete", "get", "patch", "update"]);
    sandbox.shutdown().await;
}

/// A refusal's message, for a write that must be refused with 422.
fn invalid<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
            status.message
        }
        other => panic!("not refused: {other:?}"),
    }
}

/// A Pod's spec is fixed once it exists but for images and a few fields: ephemeral containers
/// are added through `pods/ephemeralcontainers` (never removed or changed), CPU and memory
/// change through `pods/resize` without leaving the QoS class; the attacks on each refused as
/// kube-apiserver refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_change_only_through_their_subresources() {
    use kube::api::{Patch, PatchParams};
    let (sandbox, k, client) = simulating().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("created");
    k.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=20s"]);
    assert_eq!(field(&k, &["get", "pod", "web"], "{.status.qosClass}"), "Burstable");
    let merge = |patch: Value| Patch::Merge(patch);
    let params = PatchParams::default();

    // Through the Pod itself: an image changes, a port or the resources do not.
    pods.patch(
        "web",
        &params,
        &Patch::Strategic(json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})),
    )
    .await
    .expect("images may change");
    let prefix = "Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
    for attack in [
        json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80}]}]}}),
        json!({"spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "150m"}}}]}}),
        json!({"spec": {"ephemeralContainers": [{"name": "sneak", "image": "busybox"}]}}),
    ] {
        let message = invalid(pods.patch("web", &params, &Patch::Strategic(attack.clone())).await);
        assert!(message.starts_with(prefix), "{attack}: {message}");
    }
    let added = json!([{"op": "add", "path": "/spec/tolerations/-", "value": {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}}]);
    pods.patch(
        "web",
        &params,
        &Patch::<()>::Json(serde_json::from_value(added).expect("json patch")),
    )
    .await
    .expect("tolerations may be added");
    let message = invalid(
        pods.patch("web", &params, &merge(json!({"spec": {"tolerations": null}})))
            .await,
    );
    assert!(message.starts_with(prefix), "removed tolerations: {message}");
    // A deadline may be set and lowered, not raised nor removed.
    for seconds in [600, 300] {
        pods.patch(
            "web",
            &params,
            &merge(json!({"spec": {"activeDeadlineSeconds": seconds}})),
        )
        .await
        .expect("set or lowered");
    }
    assert_eq!(
        invalid(
            pods.patch("web", &params, &merge(json!({"spec": {"activeDeadlineSeconds": 900}})))
                .await
        ),
        "Pod \"web\" is invalid: spec.activeDeadlineSeconds: Invalid value: 900: must be less than or equal to previous value"
    );
    assert_eq!(
        invalid(
            pods.patch("web", &params, &merge(json!({"spec": {"activeDeadlineSeconds": null}})))
                .await
        ),
        "Pod \"web\" is invalid: spec.activeDeadlineSeconds: Invalid value: \"null\": must not update from a positive integer to nil value"
    );
    let err = k.fails(&["set", "resources", "pod", "web", "--limits=cpu=1"]);
    assert!(err.contains("pod updates may not change fields other than"), "{err}");

    // A debug container through pods/ephemeralcontainers, as `kubectl debug` adds it.
    k.ok(&[
        "debug",
        "web",
        "--image=busybox",
        "--container=debugger",
        "--target=web",
        "--",
        "sleep",
        "3600",
    ]);
    assert_eq!(
        field(
            &k,
            &["get", "pod", "web"],
            "{.spec.ephemeralContainers[0].name}/{.spec.ephemeralContainers[0].targetContainerName}"
        ),
        "debugger/web"
    );
    eventually("the debug container reported running", || {
        !field(
            &k,
            &["get", "pod", "web"],
            "{.status.ephemeralContainerStatuses[0].state.running.startedAt}",
        )
        .is_empty()
    })
    .await;
    let mut current = pods.get_subresource("ephemeralcontainers", "web").await.expect("read");
    let mut spec = current.spec.take().expect("spec");
    spec.ephemeral_containers = Some(vec![]);
    current.spec = Some(spec.clone());
    let message = invalid(
        pods.replace_subresource("ephemeralcontainers", "web", &PostParams::default(), &current)
            .await,
    );
    assert_eq!(
        message,
        "Pod \"web\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed"
    );
    let changed = json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": "alpine"}]}});
    let message = invalid(
        pods.patch_subresource("ephemeralcontainers", "web", &params, &Patch::Strategic(changed))
            .await,
    );
    assert!(
        message.contains("existing ephemeral containers \"debugger\" may not be changed"),
        "{message}"
    );
    let listening = json!({"spec": {"ephemeralContainers": [{"name": "debugger"}, {"name": "other", "image": "busybox", "targetContainerName": "nobody", "ports": [{"containerPort": 8080}]}]}});
    let message = invalid(
        pods.patch_subresource("ephemeralcontainers", "web", &params, &Patch::Strategic(listening))
            .await,
    );
    assert_eq!(
        message,
        "Pod \"web\" is invalid: [spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container, spec.ephemeralContainers[1].targetContainerName: Not found: \"nobody\"]"
    );
    let born_with: Pod = serde_json::from_value(json!({"metadata": {"name": "born"}, "spec": {
        "containers": [{"name": "app", "image": "nginx"}],
        "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]}}))
    .expect("pod");
    let message = invalid(pods.create(&PostParams::default(), &born_with).await);
    assert_eq!(
        message,
        "Pod \"born\" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create"
    );

    // CPU and memory through pods/resize; the kubelet reports the new resources.
    let resize = |patch: Value| {
        let pods = pods.clone();
        async move {
            pods.patch_subresource("resize", "web", &PatchParams::default(), &Patch::Strategic(patch))
                .await
        }
    };
    let resized = resize(json!({"spec": {"containers": [{"name": "web", "image": "httpd", "resources": {"requests": {"cpu": "150m"}}}]}}))
        .await
        .expect("resized");
    let container = &resized.spec.as_ref().expect("spec").containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("nginx:1.27"),
        "a resize changes resources only"
    );
    assert_eq!(
        serde_json::to_value(&container.resources).expect("json")["requests"]["cpu"],
        "150m"
    );
    eventually("the resized resources reported", || {
        field(
            &k,
            &["get", "pod", "web"],
            "{.status.containerStatuses[0].resources.requests.cpu}",
        ) == "150m"
    })
    .await;
    let message = invalid(
        resize(json!({"spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "200m"}}}]}})).await,
    );
    assert_eq!(
        message,
        "Pod \"web\" is invalid: spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"
    );
    let message = invalid(
        resize(
            json!({"spec": {"containers": [{"name": "web", "resources": {"limits": {"ephemeral-storage": "1Gi"}}}]}}),
        )
        .await,
    );
    assert_eq!(
        message,
        "Pod \"web\" is invalid: spec: Forbidden: only cpu and memory resources are mutable"
    );
    let message = invalid(
        resize(json!({"spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "300m"}}}]}})).await,
    );
    assert!(
        message.contains("spec.containers[0].resources.requests[cpu]: Invalid value: \"300m\": must be less than or equal to cpu limit of 200m"),
        "{message}"
    );
    let message = invalid(
        resize(json!({"spec": {"containers": [{"name": "web", "resources": {"requests": {"memory": null}}}]}})).await,
    );
    assert!(message.contains("resource requests cannot be removed"), "{message}");
    assert_eq!(
        field(
            &k,
            &["get", "pod", "web"],
            "{.spec.containers[0].resources.requests.cpu}"
        ),
        "150m",
        "refused resizes change nothing"
    );

    // Both subresources are discovered, and serve no other verb.
    let discovered = client.list_core_api_resources("v1").await.expect("discovery");
    for name in ["pods/ephemeralcontainers", "pods/resize"] {
        let verbs = discovered
            .resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.verbs.clone());
        assert_eq!(
            verbs,
            Some(vec!["get".to_string(), "patch".into(), "update".into()]),
            "{name}"
        );
    }
    let refused = k.fails(&["delete", "--raw", "/api/v1/namespaces/default/pods/web/resize"]);
    assert!(
        refused.contains("the server does not allow this method on the requested resource"),
        "{refused}"
    );
    sandbox.shutdown().await;
}

/// Every new Pod gets its ServiceAccount's token as kube-apiserver's ServiceAccount admission
/// plugin mounts it (a `kube-api-access-` projected volume in every container), unless the Pod
/// or its ServiceAccount turns automounting off; the Pod as written can then not be put back
/// over the stored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_their_service_account_token_mounted() {
    let (sandbox, k, client) = simulating().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = |name: &str, extra: Value| -> Pod {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
    };
    let mounted = |p: &Pod| {
        let spec = p.spec.as_ref().expect("spec");
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name.starts_with("kube-api-access-"))
            .map(|v| v.name.clone());
        let mount = spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount")
            .map(|m| (m.name.clone(), m.read_only));
        (volume, mount)
    };
    let created = pods
        .create(&PostParams::default(), &pod("plain", json!({})))
        .await
        .expect("created");
    let (volume, mount) = mounted(&created);
    let volume = volume.expect("the token's volume");
    assert_eq!(volume.len(), "kube-api-access-".len() + 5, "{volume}");
    assert_eq!(mount, Some((volume, Some(true))));
    assert_eq!(
        created.spec.as_ref().and_then(|s| s.service_account_name.as_deref()),
        Some("default")
    );
    let off = pods
        .create(
            &PostParams::default(),
            &pod("off", json!({"automountServiceAccountToken": false})),
        )
        .await
        .expect("created");
    assert_eq!(mounted(&off), (None, None));
    k.ok(&["create", "serviceaccount", "quiet"]);
    k.ok(&[
        "patch",
        "serviceaccount",
        "quiet",
        "--type=merge",
        "-p",
        r#"{"automountServiceAccountToken":false}"#,
    ]);
    let quiet = pods
        .create(
            &PostParams::default(),
            &pod("quiet", json!({"serviceAccountName": "quiet"})),
        )
        .await
        .expect("created");
    assert_eq!(mounted(&quiet), (None, None));
    let asked = pods
        .create(
            &PostParams::default(),
            &pod(
                "asked",
                json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true}),
            ),
        )
        .await
        .expect("created");
    assert!(mounted(&asked).0.is_some(), "the Pod's own setting wins");
    // A ServiceAccount that does not exist: the Pod is refused.
    match pods
        .create(
            &PostParams::default(),
            &pod("orphan", json!({"serviceAccountName": "ghost"})),
        )
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(
            (status.code, status.message.as_str()),
            (
                403,
                "pods \"orphan\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"
            )
        ),
        other => panic!("not refused: {other:?}"),
    }
    // The manifest as written is not the stored Pod: replacing it is refused, as on a cluster.
    let manifest = std::env::temp_dir().join(format!("pg-plain-{}.yaml", std::process::id()));
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
    )
    .expect("manifest");
    let err = k.fails(&["replace", "-f", manifest.to_str().expect("utf-8")]);
    assert!(err.contains("pod updates may not change fields other than"), "{err}");
    let _ = std::fs::remove_file(&manifest);
    sandbox.shutdown().await;
}
