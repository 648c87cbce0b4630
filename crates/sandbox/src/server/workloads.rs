//! Simulated nodes and workloads (`Config::simulate_workloads`): what kube-controller-manager,
//! the scheduler and the kubelets would write, without running any container.
//!
//! - Deployments own one ReplicaSet per pod template (`<name>-<hash>`, label
//!   `pod-template-hash`); a new template gets a new ReplicaSet at full size and the old ones go
//!   to zero at once (a rollout without surge).
//! - ReplicaSets, StatefulSets (`<name>-<ordinal>`), DaemonSets (one Pod per schedulable node)
//!   and Jobs (up to `parallelism` Pods at a time until `completions` succeeded) own their Pods.
//! - Pods without a node are bound to the schedulable node (not cordoned, `nodeSelector`
//!   matching) with the fewest Pods, then reported Running and Ready (a Job's Pods: Succeeded);
//!   each gets a `Simulated` event saying that no container runs.
//! - Statuses follow (replicas, ready and available counts, observed generations, revisions,
//!   `Available` and `Progressing` conditions, a Job's `SuccessCriteriaMet` and `Complete`), so
//!   `kubectl rollout status`, `kubectl wait --for=condition=Available` and Helm's readiness
//!   checks behave as on a cluster.
//!
//! Every change of a watched kind triggers a pass over its namespace (the node set over all);
//! a pass writes only differences, so passes triggered by its own writes write nothing.
//! Each component writes as who it is on a cluster, and its writes pass admission (webhooks and
//! ValidatingAdmissionPolicies see them): controllers as their kube-system ServiceAccounts
//! (`system:serviceaccount:kube-system:replicaset-controller`), the scheduler as
//! `system:kube-scheduler` through the `pods/binding` subresource, kubelets as
//! `system:node:<node>` through `pods/status`. A Pod creation admission refuses is reported as
//! the controller reports it: a `FailedCreate` warning event on the owner, and a ReplicaSet's
//! (and its Deployment's) `ReplicaFailure` condition until a creation passes.

use super::*;
use crate::store::EventType;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

/// The nodes a simulating sandbox adds beside `sandbox`.
const WORKERS: [&str; 2] = ["sandbox-worker", "sandbox-worker2"];

/// The resources whose changes start a pass.
const WATCHED: [&str; 9] = [
    "policy/poddisruptionbudgets",
    "batch/cronjobs",
    "apps/deployments",
    "apps/replicasets",
    "apps/statefulsets",
    "apps/daemonsets",
    "batch/jobs",
    "/pods",
    "/nodes",
];

/// kube-controller-manager's alphabet for generated name suffixes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn suffix(seed: u64, len: usize) -> String {
    let mut n = seed;
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn hash_of(value: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut h);
    h.finish()
}

/// The template hash a Deployment's ReplicaSet or a StatefulSet's revision is named by.
fn template_hash(template: &Value) -> String {
    suffix(hash_of(template), 10)
}

pub(super) fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn int(v: &Value, pointer: &str, default: i64) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

pub(super) fn deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some()
}

/// The uid of the controller owning `v`.
pub(super) fn controller_uid(v: &Value) -> Option<&str> {
    v.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid")?.as_str())
}

fn owner_ref(owner: &Value) -> Value {
    json!([{
        "apiVersion": text(owner, "/apiVersion"),
        "kind": text(owner, "/kind"),
        "name": text(owner, "/metadata/name"),
        "uid": text(owner, "/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn pod_ready(pod: &Value) -> bool {
    text(pod, "/status/phase") == "Running" && ready_condition(pod)
}

/// Whether a Pod's `Ready` condition is True.
pub(super) fn ready_condition(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `conditions` with `kind` set to `status`/`reason`/`message`; the transition time kept when
/// the status did not change.
fn set_condition(conditions: &mut Vec<Value>, old: &Value, kind: &str, status: &str, reason: &str, message: &str) {
    let previous = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let same = previous.is_some_and(|p| p["status"] == status && p["reason"] == reason && p["message"] == message);
    let (transition, update) = match previous {
        Some(p) if same => (p["lastTransitionTime"].clone(), p["lastUpdateTime"].clone()),
        Some(p) if p["status"] == status => (p["lastTransitionTime"].clone(), json!(now())),
        _ => (json!(now()), json!(now())),
    };
    let mut c = json!({"type": kind, "status": status, "reason": reason, "message": message,
                       "lastTransitionTime": transition});
    // Only a Deployment's conditions have an update time.
    if !update.is_null() && old["kind"] == "Deployment" {
        c["lastUpdateTime"] = update;
    }
    conditions.push(c);
}

/// The defaults kube-apiserver gives workloads that clients read: the update strategies
/// `kubectl rollout status` requires, replicas, history limits, a Job's completions.
pub(super) fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if rt.group == "autoscaling" && rt.plural == "horizontalpodautoscalers" {
        // autoscaling/v2's defaults: one replica at least, and a CPU utilization target of
        // 80% when no metric is given.
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("minReplicas").or_insert(json!(1));
            if spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                spec.insert(
                    "metrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                );
            }
        }
        return;
    }
    if rt.group.is_empty() && rt.plural == "services" {
        service_defaults(obj);
        return;
    }
    if rt.group == "networking.k8s.io" && rt.plural == "ingressclasses" {
        // `SetDefaults_IngressClass`: parameters are cluster-scoped unless they say otherwise.
        if let Some(parameters) = obj.pointer_mut("/spec/parameters").and_then(Value::as_object_mut) {
            default_to(parameters, "scope", json!("Cluster"));
        }
        return;
    }
    if rt.group == "storage.k8s.io" && rt.plural == "storageclasses" {
        // `SetDefaults_StorageClass`.
        if let Some(class) = obj.as_object_mut() {
            default_to(class, "reclaimPolicy", json!("Delete"));
            default_to(class, "volumeBindingMode", json!("Immediate"));
        }
        return;
    }
    if rt.group.is_empty() && rt.plural == "persistentvolumeclaims" {
        // `SetDefaults_PersistentVolumeClaimSpec` and the claim's first phase.
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            default_to(spec, "volumeMode", json!("Filesystem"));
        }
        if obj.pointer("/status/phase").is_none_or(Value::is_null) && obj.is_object() {
            obj["status"]["phase"] = json!("Pending");
        }
        return;
    }
    if rt.group == "rbac.authorization.k8s.io" && rt.plural.ends_with("rolebindings") {
        binding_defaults(obj);
        return;
    }
    let template = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => Some("/spec"),
        ("", "podtemplates") => Some("/template/spec"),
        ("", "replicationcontrollers") | ("apps", _) | ("batch", "jobs") => Some("/spec/template/spec"),
        ("batch", "cronjobs") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    };
    if let Some(spec) = template.and_then(|at| obj.pointer_mut(at)) {
        pod_spec_defaults(spec, rt.plural == "pods");
    }
    let defaults = match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => json!({"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}),
        ("apps", "statefulsets") => {
            json!({"replicas": 1, "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}})
        }
        ("apps", "daemonsets") => json!({"revisionHistoryLimit": 10,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}),
        ("apps", "replicasets") => json!({"replicas": 1}),
        ("batch", "cronjobs") => {
            json!({"concurrencyPolicy": "Allow", "suspend": false, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1})
        }
        ("batch", "jobs") => {
            let both_unset = obj.pointer("/spec/completions").is_none() && obj.pointer("/spec/parallelism").is_none();
            let mut d = json!({"parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": false});
            if both_unset {
                d["completions"] = json!(1);
            }
            d
        }
        _ => return,
    };
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(d) = defaults.as_object() {
        for (k, v) in d {
            let strategy = k == "strategy" || k == "updateStrategy";
            match spec.get_mut(k) {
                None | Some(Value::Null) => {
                    spec.insert(k.clone(), v.clone());
                }
                // A strategy given without its type is a RollingUpdate one.
                Some(given) if strategy && given.get("type").is_none() => {
                    given["type"] = v["type"].clone();
                }
                Some(_) => {}
            }
        }
    }
}

/// Sets `key` to `value` unless it is there already.
fn default_to(map: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.into(), value);
    }
}

/// Sets a string field Go's defaulting finds empty (absent, null or "").
fn default_when_empty(map: &mut serde_json::Map<String, Value>, key: &str, value: &str) {
    if map.get(key).and_then(Value::as_str).unwrap_or_default().is_empty() {
        map.insert(key.into(), json!(value));
    }
}

/// The `ports` of a Service's spec or of a container.
fn ports_of(map: &mut serde_json::Map<String, Value>) -> impl Iterator<Item = &mut serde_json::Map<String, Value>> {
    let ports = map.get_mut("ports").and_then(Value::as_array_mut);
    ports.into_iter().flatten().filter_map(Value::as_object_mut)
}

/// The string at `key`, or `default` when it is missing or empty.
fn text_or(map: &serde_json::Map<String, Value>, key: &str, default: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or(default)
        .to_string()
}

/// kube-apiserver's defaults of a Service (`SetDefaults_Service`): its type, session
/// affinity, traffic policies, and each port's protocol and target port.
fn service_defaults(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let kind = text_or(spec, "type", "ClusterIP");
    spec.insert("type".into(), json!(kind));
    default_to(spec, "sessionAffinity", json!("None"));
    if kind != "ExternalName" {
        default_to(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        default_to(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default_to(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    for port in ports_of(spec) {
        port.entry("protocol").or_insert(json!("TCP"));
        // No node port is 0 (Go writes the zero of this non-pointer field in protobuf).
        if port.get("nodePort").is_some_and(|n| n.is_null() || n == 0) {
            port.remove("nodePort");
        }
        if port.get("targetPort").is_none_or(|t| t.is_null() || t == 0 || t == "") {
            let target = port.get("port").cloned().unwrap_or(Value::Null);
            port.insert("targetPort".into(), target);
        }
    }
}

/// kube-apiserver's defaults of a Pod's spec and of pod templates (`SetDefaults_PodSpec`,
/// `SetDefaults_Container`; `enableServiceLinks` for Pods only). Clients read them back:
/// `kubectl debug` reads `securityContext` without looking whether it is there.
fn pod_spec_defaults(spec: &mut Value, pod: bool) {
    let Some(spec) = spec.as_object_mut() else { return };
    default_to(spec, "restartPolicy", json!("Always"));
    default_to(spec, "terminationGracePeriodSeconds", json!(30));
    default_to(spec, "dnsPolicy", json!("ClusterFirst"));
    default_to(spec, "securityContext", json!({}));
    default_to(spec, "schedulerName", json!("default-scheduler"));
    if pod {
        default_to(spec, "enableServiceLinks", json!(true));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            // The tag after the last path segment's colon, if any; a digest pins the image.
            let tag = image
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .split_once(':')
                .map(|(_, t)| t);
            let pull = if image.contains('@') || tag.is_some_and(|t| t != "latest") {
                "IfNotPresent"
            } else {
                "Always"
            };
            default_to(c, "terminationMessagePath", json!("/dev/termination-log"));
            default_to(c, "terminationMessagePolicy", json!("File"));
            default_to(c, "imagePullPolicy", json!(pull));
            if list != "ephemeralContainers" {
                default_to(c, "resources", json!({}));
            }
            for port in ports_of(c) {
                port.entry("protocol").or_insert(json!("TCP"));
            }
            probe_defaults(c);
            if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
                for from in env.iter_mut().filter_map(|v| v.get_mut("valueFrom")) {
                    selector_defaults(from);
                }
            }
        }
    }
    volume_defaults(spec);
}

/// `SetDefaults_RoleBinding`, `SetDefaults_ClusterRoleBinding` and `SetDefaults_Subject`: a
/// role reference and the subjects that are users or groups are in the RBAC group unless they
/// say otherwise.
fn binding_defaults(obj: &mut Value) {
    const GROUP: &str = "rbac.authorization.k8s.io";
    if let Some(role_ref) = obj.get_mut("roleRef").and_then(Value::as_object_mut) {
        default_when_empty(role_ref, "apiGroup", GROUP);
    }
    let subjects = obj.get_mut("subjects").and_then(Value::as_array_mut);
    for subject in subjects.into_iter().flatten().filter_map(Value::as_object_mut) {
        if matches!(subject.get("kind").and_then(Value::as_str), Some("User" | "Group")) {
            default_when_empty(subject, "apiGroup", GROUP);
        }
    }
}

/// `SetDefaults_Probe` and `SetDefaults_HTTPGetAction`: a probe's timeout 1 s, period 10 s,
/// thresholds 1 and 3 when unset or zero; an HTTP action's path `/` and scheme `HTTP`, in
/// probes and lifecycle hooks.
fn probe_defaults(c: &mut serde_json::Map<String, Value>) {
    for field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = c.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (number, default) in [
            ("timeoutSeconds", 1),
            ("periodSeconds", 10),
            ("successThreshold", 1),
            ("failureThreshold", 3),
        ] {
            if probe.get(number).and_then(Value::as_i64).unwrap_or(0) == 0 {
                probe.insert(number.into(), json!(default));
            }
        }
        http_defaults(probe);
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(hook) = lifecycle.get_mut(hook).and_then(Value::as_object_mut) {
                http_defaults(hook);
            }
        }
    }
}

fn http_defaults(handler: &mut serde_json::Map<String, Value>) {
    if let Some(http) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_when_empty(http, "path", "/");
        default_when_empty(http, "scheme", "HTTP");
    }
}

/// `SetDefaults_Volume` and the sources' defaults: a volume without a source is an empty
/// directory; Secret, ConfigMap, downward API and projected volumes get the file mode 0644.
fn volume_defaults(spec: &mut serde_json::Map<String, Value>) {
    let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) else {
        return;
    };
    for volume in volumes.iter_mut().filter_map(Value::as_object_mut) {
        if volume.iter().all(|(k, v)| k == "name" || v.is_null()) {
            volume.insert("emptyDir".into(), json!({}));
        }
        for source in ["secret", "configMap", "downwardAPI", "projected"] {
            if let Some(src) = volume.get_mut(source).and_then(Value::as_object_mut) {
                default_to(src, "defaultMode", json!(0o644));
            }
        }
        if let Some(items) = volume.get_mut("downwardAPI").and_then(|d| d.get_mut("items")) {
            items.as_array_mut().into_iter().flatten().for_each(selector_defaults);
        }
        let projected = volume.get_mut("projected").and_then(|p| p.get_mut("sources"));
        for source in projected.and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(token) = source.get_mut("serviceAccountToken").and_then(Value::as_object_mut) {
                default_to(token, "expirationSeconds", json!(3600));
            }
            if let Some(items) = source.get_mut("downwardAPI").and_then(|d| d.get_mut("items")) {
                items.as_array_mut().into_iter().flatten().for_each(selector_defaults);
            }
        }
    }
}

/// `SetDefaults_ObjectFieldSelector` and the zero divisor Go writes: a field selector reads
/// API version `v1` unless it says otherwise, a resource field selector's divisor is "0".
fn selector_defaults(holder: &mut Value) {
    if let Some(field) = holder.get_mut("fieldRef").and_then(Value::as_object_mut) {
        default_when_empty(field, "apiVersion", "v1");
    }
    if let Some(resource) = holder.get_mut("resourceFieldRef").and_then(Value::as_object_mut) {
        default_to(resource, "divisor", json!("0"));
    }
}

/// kube-apiserver's selector of a new Job (unless `manualSelector`): its Pods by the Job's
/// uid, with the uid and the Job's name in its template's labels.
pub(super) fn select_own_pods(job: &mut Value) {
    if job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let (uid, name) = (
        text(job, "/metadata/uid").to_string(),
        text(job, "/metadata/name").to_string(),
    );
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let template = spec.entry("template").or_insert(json!({}));
    if !template.get("metadata").is_some_and(Value::is_object) {
        template["metadata"] = json!({});
    }
    let metadata = &mut template["metadata"];
    if !metadata.get("labels").is_some_and(Value::is_object) {
        metadata["labels"] = json!({});
    }
    if let Some(labels) = metadata["labels"].as_object_mut() {
        for (key, value) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            labels.insert(key.into(), json!(value));
        }
    }
}

/// What kube-apiserver does to a new Pod's pod affinity and anti-affinity terms before
/// validating it (`MatchLabelKeysInPodAffinity`, on by default in 1.33): each key of
/// `matchLabelKeys` the Pod has as a label joins the term's label selector as `In` its value,
/// each of `mismatchLabelKeys` as `NotIn`. Terms without a label selector select nothing and
/// are left alone.
pub(super) fn apply_match_label_keys(pod: &mut Value) {
    let labels = pod.pointer("/metadata/labels").cloned().unwrap_or(Value::Null);
    let Some(affinity) = pod.pointer_mut("/spec/affinity").and_then(Value::as_object_mut) else {
        return;
    };
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(kind) = affinity.get_mut(kind).and_then(Value::as_object_mut) else {
            continue;
        };
        for (list, nested) in [
            ("requiredDuringSchedulingIgnoredDuringExecution", false),
            ("preferredDuringSchedulingIgnoredDuringExecution", true),
        ] {
            let Some(terms) = kind.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for term in terms {
                let term = if nested {
                    term.get_mut("podAffinityTerm")
                } else {
                    Some(term)
                };
                if let Some(term) = term.filter(|t| t.is_object()) {
                    apply_label_keys_to_term(term, &labels);
                }
            }
        }
    }
}

fn apply_label_keys_to_term(term: &mut Value, labels: &Value) {
    let keys = |field: &str| -> Vec<String> {
        term.get(field)
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    let (matching, mismatching) = (keys("matchLabelKeys"), keys("mismatchLabelKeys"));
    let Some(selector) = term.get_mut("labelSelector").and_then(Value::as_object_mut) else {
        return;
    };
    if matching.is_empty() && mismatching.is_empty() {
        return;
    }
    let mut added = vec![];
    for (keys, operator) in [(matching, "In"), (mismatching, "NotIn")] {
        for key in keys {
            if let Some(value) = labels.get(&key).and_then(Value::as_str) {
                added.push(json!({"key": key, "operator": operator, "values": [value]}));
            }
        }
    }
    if added.is_empty() {
        return;
    }
    let expressions = selector.entry("matchExpressions").or_insert(json!([]));
    if !expressions.is_array() {
        *expressions = json!([]);
    }
    if let Some(list) = expressions.as_array_mut() {
        list.extend(added);
    }
}

/// Where the ServiceAccount admission plugin mounts a Pod's token.
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What kube-apiserver's admission plugins add to a new Pod: its ServiceAccount and the
/// projected volume of its token, CA and namespace, mounted in every container
/// (`ServiceAccount`, unless the Pod or its ServiceAccount turns automounting off), its
/// priority (`Priority`) and the tolerations of unready and unreachable nodes
/// (`DefaultTolerationSeconds`). `account_automounts` tells whether the named ServiceAccount
/// (by name) leaves automounting on.
pub(super) fn admit_new_pod(pod: &mut Value, account_automounts: impl Fn(&str) -> bool) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let account = text_or(spec, "serviceAccountName", "default");
    spec.insert("serviceAccountName".into(), json!(account));
    spec.insert("serviceAccount".into(), json!(account));
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| account_automounts(&account));
    if automount {
        mount_token(spec);
    }
    spec.entry("priority").or_insert(json!(0));
    spec.entry("preemptionPolicy").or_insert(json!("PreemptLowerPriority"));
    let tolerations = spec.entry("tolerations").or_insert(json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            let tolerated = list
                .iter()
                .any(|t| t["key"] == key && (t["effect"] == "NoExecute" || t.get("effect").is_none_or(|e| e == "")));
            if !tolerated {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
}

/// The ServiceAccount admission plugin's `kube-api-access-<suffix>` volume and its mounts:
/// not in containers that already mount something at the token's path.
fn mount_token(spec: &mut serde_json::Map<String, Value>) {
    const LETTERS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..5]
        .iter()
        .map(|b| char::from(LETTERS[usize::from(*b) % LETTERS.len()]))
        .collect();
    let name = format!("kube-api-access-{suffix}");
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            let mounts = c.entry("volumeMounts").or_insert(json!([]));
            let Some(mounts) = mounts.as_array_mut() else { continue };
            if mounts.iter().any(|m| m["mountPath"] == TOKEN_PATH) {
                continue;
            }
            mounts.push(json!({"name": name, "mountPath": TOKEN_PATH, "readOnly": true}));
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    let volumes = spec.entry("volumes").or_insert(json!([]));
    if let Some(volumes) = volumes.as_array_mut() {
        volumes.push(json!({"name": name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}}));
    }
}

impl ApiServer {
    /// Adds the worker nodes a simulating sandbox schedules on.
    pub(crate) fn add_worker_nodes(&self) {
        let version = format!("v{}.{}.0", super::KUBERNETES_VERSION.0, super::KUBERNETES_VERSION.1);
        for (i, name) in WORKERS.iter().enumerate() {
            let cidr = format!("10.244.{}.0/24", i + 1);
            self.ensure(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                    "annotations": {"sandbox.purchaseguard.io/simulated": "no kubelet: the sandbox reports its pods Running without running containers"}},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                "status": {
                    "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                    "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status", "lastHeartbeatTime": now(),
                        "lastTransitionTime": now()}],
                    "addresses": [{"type": "InternalIP", "address": format!("172.18.0.{}", i + 3)},
                                  {"type": "Hostname", "address": name}],
                    "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version, "operatingSystem": "linux",
                        "architecture": "amd64", "containerRuntimeVersion": "none://sandbox",
                        "osImage": "purchase-guard sandbox (simulated)", "kernelVersion": "", "machineID": "",
                        "systemUUID": "", "bootID": ""},
                },
            }));
        }
    }

    /// Runs passes on every change of a watched kind until `stop`.
    pub(crate) async fn simulate_workloads(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut events = self.store.subscribe();
        let mut all = true;
        let mut requests = true;
        let mut namespaces: BTreeSet<String> = BTreeSet::new();
        loop {
            if all {
                namespaces = self
                    .store
                    .lock()
                    .list("/namespaces", None)
                    .map(|(k, _)| k.name.clone())
                    .collect();
            }
            for ns in std::mem::take(&mut namespaces) {
                self.workload_pass(&ns);
            }
            if std::mem::take(&mut requests) {
                self.sign_approved_requests();
            }
            all = false;
            // Wait for a change, then take every change already queued.
            // Or for the next minute, when CronJobs are due.
            let first = tokio::select! {
                e = events.recv() => e,
                _ = tokio::time::sleep(super::cronjobs::until_next_minute()) => {
                    all = true;
                    continue;
                }
                _ = stop.wait_for(|s| *s) => return,
            };
            let mut next = Some(first);
            while let Some(received) = next {
                match received {
                    Ok(e) if e.key.resource == "certificates.k8s.io/certificatesigningrequests" => requests = true,
                    Ok(e) if WATCHED.contains(&e.key.resource.as_str()) => {
                        if e.key.resource == "/nodes" {
                            all = true;
                        } else if !(e.key.resource == "/pods"
                            && e.kind == EventType::Deleted
                            && controller_uid(&e.object).is_none())
                        {
                            namespaces.insert(e.key.namespace.clone());
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        all = true;
                        requests = true;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
                next = events.try_recv().ok().map(Ok);
            }
        }
    }

    pub(super) fn objects(&self, resource: &str, namespace: &str) -> Vec<Arc<Value>> {
        self.store
            .lock()
            .list(resource, Some(namespace))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Creates `obj` as the component `manager` (on `node` for a kubelet).
    pub(super) fn sim_create(
        &self,
        plural: &str,
        group: &str,
        namespace: &str,
        obj: Value,
        manager: &str,
    ) -> Result<(), ApiError> {
        let Some(rt) = self.find(group, "v1", plural) else {
            return Ok(());
        };
        let node = text(&obj, "/reportingInstance").to_string();
        let user = component_user(manager, &node);
        self.create_checked(&rt, Some(namespace), obj, &Query::new(), manager, Some(&user))
            .map(|_| ())
            .inspect_err(|e| tracing::debug!(resource = plural, error = ?e, "simulated create failed"))
    }

    pub(super) fn sim_delete(&self, plural: &str, group: &str, namespace: &str, name: &str, manager: &str) {
        let Some(rt) = self.find(group, "v1", plural) else {
            return;
        };
        let user = component_user(manager, "");
        let _ = self.delete(&rt, Some(namespace), name, &json!({}), &Query::new(), Some(&user));
    }

    /// Creates the Pods a controller wants; a refused creation becomes the controller's
    /// `FailedCreate` warning on `owner` (once per distinct message).
    fn create_pod_of(&self, owner: &Value, pod: Value, manager: &str) {
        let ns = text(owner, "/metadata/namespace").to_string();
        let Err(e) = self.sim_create("pods", "", &ns, pod, manager) else {
            return;
        };
        if owner["kind"] == "ReplicaSet" {
            self.failures().insert(failure_key(owner), e.message.clone());
        }
        let message = format!("Error creating: {}", e.message);
        let name = format!(
            "{}.{}",
            text(owner, "/metadata/name"),
            suffix(hash_of(&json!([text(owner, "/metadata/uid"), message])), 8)
        );
        let events = self.find("", "v1", "events");
        if events.is_some_and(|rt| self.get(&rt, Some(&ns), &name).is_ok()) {
            return;
        }
        self.sim_event(owner, name, "Warning", "FailedCreate", message, manager);
    }

    /// Records a core/v1 Event `name` about `involved`, reported by `component` (a kubelet
    /// from the node of the Pod it reports on).
    fn sim_event(&self, involved: &Value, name: String, kind: &str, reason: &str, message: String, component: &str) {
        let ns = text(involved, "/metadata/namespace");
        let host = if component == "kubelet" {
            text(involved, "/spec/nodeName")
        } else {
            ""
        };
        let mut source = json!({"component": component});
        if !host.is_empty() {
            source["host"] = json!(host);
        }
        let at = now();
        let _ = self.sim_create(
            "events",
            "",
            ns,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"],
                                   "name": involved["metadata"]["name"], "namespace": ns,
                                   "uid": involved["metadata"]["uid"]},
                "reason": reason, "type": kind, "message": message, "source": source,
                "firstTimestamp": at, "lastTimestamp": at, "count": 1,
                "reportingComponent": component, "reportingInstance": host,
            }),
            component,
        );
    }

    /// Writes `obj` (a changed copy of what is stored) unless it equals `old`; `status` picks
    /// the status subresource.
    fn sim_update(&self, plural: &str, group: &str, old: &Value, obj: Value, status: bool, manager: &str) {
        if *old == obj {
            return;
        }
        let Some(rt) = self.find(group, "v1", plural) else {
            return;
        };
        let name = text(old, "/metadata/name").to_string();
        let t = Target {
            rt,
            namespace: Some(text(old, "/metadata/namespace").to_string()),
            name: Some(name.clone()),
            subresource: status.then(|| "status".to_string()),
        };
        let user = component_user(manager, text(old, "/spec/nodeName"));
        if let Err(e) = self.update(&t, &name, obj, &Query::new(), manager, Some(&user)) {
            tracing::debug!(resource = plural, error = ?e, "simulated update failed");
        }
    }

    /// The scheduler's binding of a Pod to a node (`pods/binding`, as `system:kube-scheduler`).
    fn sim_bind(&self, pod: &Value, node: &str) {
        let Some(rt) = self.find("", "v1", "pods") else {
            return;
        };
        let name = text(pod, "/metadata/name").to_string();
        let t = Target {
            rt,
            namespace: Some(text(pod, "/metadata/namespace").to_string()),
            name: Some(name.clone()),
            subresource: Some("binding".into()),
        };
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": t.namespace, "uid": pod["metadata"]["uid"]},
            "target": {"kind": "Node", "name": node}});
        let user = component_user("kube-scheduler", "");
        if let Err(e) = self.bind(&t, &name, binding, &Query::new(), "kube-scheduler", &user) {
            tracing::debug!(pod = %name, error = ?e, "simulated binding failed");
        }
    }

    /// Writes `status` as the status of `old` unless it is already.
    pub(super) fn sim_status(&self, plural: &str, group: &str, old: &Value, status: Value, manager: &str) {
        let mut new = old.clone();
        new["status"] = status;
        self.sim_update(plural, group, old, new, true, manager);
    }

    /// One pass over a namespace: controllers, then scheduling and kubelets, then statuses.
    fn workload_pass(&self, ns: &str) {
        self.cronjob_pass(ns);
        for d in self.objects("apps/deployments", ns) {
            self.deployment_children(&d);
        }
        let replica_sets = self.objects("apps/replicasets", ns);
        for rs in &replica_sets {
            let replicas = int(rs, "/spec/replicas", 1).max(0) as usize;
            self.keep_pods(rs, "replicaset-controller", replicas);
        }
        // The refusals of ReplicaSets that are gone are forgotten.
        let live: BTreeSet<&str> = replica_sets.iter().map(|rs| text(rs, "/metadata/uid")).collect();
        self.failures()
            .retain(|(namespace, uid), _| namespace != ns || live.contains(uid.as_str()));
        for sts in self.objects("apps/statefulsets", ns) {
            self.statefulset_pods(&sts);
        }
        let nodes = self.schedulable_nodes();
        for ds in self.objects("apps/daemonsets", ns) {
            self.daemonset_pods(&ds, &nodes);
        }
        for job in self.objects("batch/jobs", ns) {
            self.job_pods(&job);
        }
        self.run_pods(ns, &nodes);
        self.workload_statuses(ns, &nodes);
    }

    /// The Pods a controller owns, not being deleted.
    fn owned_pods(&self, owner: &Value) -> Vec<Arc<Value>> {
        let uid = text(owner, "/metadata/uid");
        self.objects("/pods", text(owner, "/metadata/namespace"))
            .into_iter()
            .filter(|p| controller_uid(p) == Some(uid) && !deleting(p))
            .collect()
    }

    fn new_pod(owner: &Value, name: &str, extra_labels: Value, node: Option<&str>) -> Value {
        let template = owner.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
            l.extend(extra.clone());
        }
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": text(owner, "/metadata/namespace"),
                         "labels": labels, "ownerReferences": owner_ref(owner)},
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
            "status": {"phase": "Pending"},
        });
        if let Some(a) = template.pointer("/metadata/annotations") {
            pod["metadata"]["annotations"] = a.clone();
        }
        if let Some(node) = node {
            pod["spec"]["nodeName"] = json!(node);
        }
        pod
    }

    /// The ReplicaSets whose last Pod creation was refused, with the refusal.
    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.creation_failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ReplicaSet's Pods: `replicas` of them, named `<owner>-<random>`; the newest go first.
    /// A sync that creates without a refusal clears the ReplicaSet's `ReplicaFailure`.
    fn keep_pods(&self, owner: &Value, manager: &str, replicas: usize) {
        self.failures().remove(&failure_key(owner));
        if deleting(owner) {
            return;
        }
        let ns = text(owner, "/metadata/namespace");
        let mut pods = self.owned_pods(owner);
        let name = text(owner, "/metadata/name");
        let extra = owner
            .pointer("/spec/template/metadata/labels/pod-template-hash")
            .map(|h| json!({"pod-template-hash": h}))
            .unwrap_or_else(|| json!({}));
        for i in pods.len()..replicas {
            let seed = hash_of(&json!([text(owner, "/metadata/uid"), i, self.store.lock().rv()]));
            let pod = Self::new_pod(owner, &format!("{name}-{}", suffix(seed, 5)), extra.clone(), None);
            self.create_pod_of(owner, pod, manager);
        }
        pods.sort_by_key(|p| std::cmp::Reverse(text(p, "/metadata/creationTimestamp").to_string()));
        let excess = pods.len().saturating_sub(replicas);
        for p in pods.iter().take(excess) {
            self.sim_delete("pods", "", ns, text(p, "/metadata/name"), manager);
        }
    }

    fn deployment_children(&self, d: &Value) {
        if deleting(d) {
            return;
        }
        let ns = text(d, "/metadata/namespace");
        let uid = text(d, "/metadata/uid");
        let template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        let hash = template_hash(&template);
        let name = format!("{}-{hash}", text(d, "/metadata/name"));
        let replicas = int(d, "/spec/replicas", 1);
        let owned: Vec<Arc<Value>> = self
            .objects("apps/replicasets", ns)
            .into_iter()
            .filter(|rs| controller_uid(rs) == Some(uid))
            .collect();
        let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
        let revision = owned.len() as i64 + 1;
        if !paused && !owned.iter().any(|rs| text(rs, "/metadata/name") == name) {
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            labels["pod-template-hash"] = json!(hash);
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": ns, "labels": labels,
                             "annotations": {"deployment.kubernetes.io/revision": revision.to_string(),
                                             "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                             "ownerReferences": owner_ref(d)},
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            });
            let _ = self.sim_create("replicasets", "apps", ns, rs, "deployment-controller");
        }
        if paused {
            return;
        }
        for rs in &owned {
            let want = if text(rs, "/metadata/name") == name {
                replicas
            } else {
                0
            };
            if int(rs, "/spec/replicas", 1) != want {
                let mut new = (**rs).clone();
                new["spec"]["replicas"] = json!(want);
                self.sim_update("replicasets", "apps", rs, new, false, "deployment-controller");
            }
        }
    }

    /// The StatefulSet controller's claims for the Pod of ordinal `i`: one
    /// PersistentVolumeClaim per claim template, `<template>-<set>-<i>`, made if missing
    /// (labelled with the set's selector, kept when the set or Pod goes, as the default
    /// retention policy keeps them) and mounted in the Pod in place of a volume of the same
    /// name.
    fn claims_of(&self, sts: &Value, i: usize, pod: &mut Value) {
        let templates = sts
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if templates.is_empty() {
            return;
        }
        let (set, ns) = (text(sts, "/metadata/name"), text(sts, "/metadata/namespace"));
        let selected = sts
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut volumes = Vec::new();
        for template in templates {
            let volume = text(template, "/metadata/name");
            let claim_name = format!("{volume}-{set}-{i}");
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let (Some(l), Some(s)) = (labels.as_object_mut(), selected.as_object()) {
                l.extend(s.clone());
            }
            let exists = self
                .find("", "v1", "persistentvolumeclaims")
                .is_some_and(|rt| self.get(&rt, Some(ns), &claim_name).is_ok());
            if !exists {
                let mut claim = json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim_name, "namespace": ns, "labels": labels},
                    "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
                });
                if let Some(a) = template.pointer("/metadata/annotations") {
                    claim["metadata"]["annotations"] = a.clone();
                }
                let _ = self.sim_create("persistentvolumeclaims", "", ns, claim, "statefulset-controller");
            }
            volumes.push(json!({"name": volume, "persistentVolumeClaim": {"claimName": claim_name}}));
        }
        let named: BTreeSet<&str> = templates.iter().map(|t| text(t, "/metadata/name")).collect();
        let others = pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| !named.contains(text(v, "/name")))
            .cloned();
        volumes.extend(others);
        pod["spec"]["volumes"] = Value::Array(volumes);
    }

    fn statefulset_pods(&self, sts: &Value) {
        if deleting(sts) {
            return;
        }
        let name = text(sts, "/metadata/name");
        let ns = text(sts, "/metadata/namespace");
        let replicas = int(sts, "/spec/replicas", 1).max(0) as usize;
        let revision = format!(
            "{name}-{}",
            template_hash(sts.pointer("/spec/template").unwrap_or(&Value::Null))
        );
        let pods = self.owned_pods(sts);
        let mut present: HashMap<String, &Arc<Value>> = HashMap::new();
        for p in &pods {
            present.insert(text(p, "/metadata/name").to_string(), p);
        }
        for (pod_name, p) in &present {
            let ordinal = pod_name
                .strip_prefix(&format!("{name}-"))
                .and_then(|o| o.parse::<usize>().ok());
            let outdated = text(p, "/metadata/labels/controller-revision-hash") != revision;
            if ordinal.is_none_or(|o| o >= replicas) || outdated {
                self.sim_delete("pods", "", ns, pod_name, "statefulset-controller");
            }
        }
        for i in 0..replicas {
            let pod_name = format!("{name}-{i}");
            if present.contains_key(&pod_name) {
                continue;
            }
            let labels = json!({"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pod_name,
                                "apps.kubernetes.io/pod-index": i.to_string()});
            let mut pod = Self::new_pod(sts, &pod_name, labels, None);
            pod["spec"]["hostname"] = json!(pod_name);
            if let Some(service) = sts.pointer("/spec/serviceName").and_then(Value::as_str) {
                pod["spec"]["subdomain"] = json!(service);
            }
            self.claims_of(sts, i, &mut pod);
            self.create_pod_of(sts, pod, "statefulset-controller");
        }
    }

    fn daemonset_pods(&self, ds: &Value, nodes: &[Arc<Value>]) {
        if deleting(ds) {
            return;
        }
        let ns = text(ds, "/metadata/namespace");
        let selector = ds.pointer("/spec/template/spec/nodeSelector");
        let wanted: Vec<&str> = nodes
            .iter()
            .filter(|n| fits(n, selector))
            .map(|n| text(n, "/metadata/name"))
            .collect();
        let pods = self.owned_pods(ds);
        let mut covered = BTreeSet::new();
        for p in &pods {
            let node = text(p, "/spec/nodeName");
            if !wanted.contains(&node) || !covered.insert(node.to_string()) {
                self.sim_delete("pods", "", ns, text(p, "/metadata/name"), "daemon-set-controller");
            }
        }
        for node in wanted {
            if covered.contains(node) {
                continue;
            }
            let seed = hash_of(&json!([text(ds, "/metadata/uid"), node]));
            let name = format!("{}-{}", text(ds, "/metadata/name"), suffix(seed, 5));
            let pod = Self::new_pod(ds, &name, json!({}), Some(node));
            self.create_pod_of(ds, pod, "daemon-set-controller");
        }
    }

    fn job_pods(&self, job: &Value) {
        if deleting(job) || job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
            return;
        }
        let completions = int(job, "/spec/completions", 1).max(0) as usize;
        let parallelism = int(job, "/spec/parallelism", 1).max(0) as usize;
        let pods = self.owned_pods(job);
        let succeeded = pods.iter().filter(|p| text(p, "/status/phase") == "Succeeded").count();
        let active = pods.len() - succeeded;
        let to_start = completions
            .saturating_sub(succeeded + active)
            .min(parallelism.saturating_sub(active));
        let name = text(job, "/metadata/name");
        let labels = json!({"batch.kubernetes.io/job-name": name, "job-name": name,
                            "batch.kubernetes.io/controller-uid": text(job, "/metadata/uid"),
                            "controller-uid": text(job, "/metadata/uid")});
        for i in 0..to_start {
            let seed = hash_of(&json!([
                text(job, "/metadata/uid"),
                pods.len() + i,
                self.store.lock().rv()
            ]));
            let pod = Self::new_pod(job, &format!("{name}-{}", suffix(seed, 5)), labels.clone(), None);
            self.create_pod_of(job, pod, "job-controller");
        }
    }

    /// The nodes Pods may go to: Ready and not cordoned.
    fn schedulable_nodes(&self) -> Vec<Arc<Value>> {
        self.store
            .lock()
            .list("/nodes", None)
            .map(|(_, v)| v.clone())
            .filter(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true))
            .collect()
    }

    /// The scheduler and the kubelets: binds Pods to nodes, then reports them started.
    fn run_pods(&self, ns: &str, nodes: &[Arc<Value>]) {
        let pods = self.objects("/pods", ns);
        // How many Pods each node has, read only when a Pod waits for one.
        let unbound = pods
            .iter()
            .any(|p| !deleting(p) && text(p, "/spec/nodeName").is_empty());
        let mut load: BTreeMap<String, usize> = BTreeMap::new();
        if unbound {
            for p in self.store.lock().list("/pods", None) {
                let node = text(p.1, "/spec/nodeName");
                if !node.is_empty() {
                    *load.entry(node.to_string()).or_default() += 1;
                }
            }
        }
        for pod in pods {
            if deleting(&pod) {
                continue;
            }
            let node = text(&pod, "/spec/nodeName").to_string();
            if node.is_empty() && !matches!(text(&pod, "/spec/schedulerName"), "" | "default-scheduler") {
                continue; // Another scheduler's Pod: it waits for its binding.
            }
            if node.is_empty() {
                let selector = pod.pointer("/spec/nodeSelector");
                let Some(target) = nodes.iter().filter(|n| fits(n, selector)).min_by_key(|n| {
                    (
                        load.get(text(n, "/metadata/name")).copied().unwrap_or(0),
                        text(n, "/metadata/name").to_string(),
                    )
                }) else {
                    let mut status = pod.get("status").cloned().unwrap_or_else(|| json!({}));
                    status["phase"] = json!("Pending");
                    status["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": format!("0/{} nodes are available: no schedulable node matches the pod's node selector.", nodes.len()),
                        "lastTransitionTime": now(), "lastProbeTime": null}]);
                    self.sim_status("pods", "", &pod, status, "kube-scheduler");
                    continue;
                };
                let name = text(target, "/metadata/name").to_string();
                *load.entry(name.clone()).or_default() += 1;
                self.sim_bind(&pod, &name);
                continue; // Started on the pass its binding triggers.
            }
            match text(&pod, "/status/phase") {
                "Running" => self.follow_running_pod(&pod),
                "Succeeded" | "Failed" => {}
                _ => self.start_pod(&pod, &node),
            }
        }
    }

    fn start_pod(&self, pod: &Value, node: &str) {
        let completes = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "Job"))
            || text(pod, "/spec/restartPolicy") == "Never" && pod.pointer("/metadata/ownerReferences").is_none();
        let started = now();
        let uid_hash = hash_of(&json!(text(pod, "/metadata/uid")));
        let node_index = std::iter::once("sandbox")
            .chain(WORKERS)
            .position(|n| n == node)
            .unwrap_or(0);
        let pod_ip = format!("10.244.{node_index}.{}", 2 + uid_hash % 250);
        let containers: Vec<Value> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let state = if completes {
                            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}})
                        } else {
                            json!({"running": {"startedAt": started}})
                        };
                        let mut status = json!({"name": c["name"], "image": c["image"], "imageID": "", "containerID": "",
                               "ready": !completes, "started": !completes, "restartCount": 0, "state": state});
                        if let Some(resources) = running_resources(c) {
                            status["resources"] = resources.clone();
                        }
                        status
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (phase, ready, reason) = if completes {
            ("Succeeded", "False", json!("PodCompleted"))
        } else {
            ("Running", "True", Value::Null)
        };
        let condition = |kind: &str, status: &str| {
            let mut c = json!({"type": kind, "status": status, "lastTransitionTime": started, "lastProbeTime": null});
            if status == "False" {
                c["reason"] = reason.clone();
            }
            c
        };
        let status = json!({
            "phase": phase,
            "conditions": [condition("PodReadyToStartContainers", if completes { "False" } else { "True" }),
                           condition("Initialized", "True"), condition("Ready", ready),
                           condition("ContainersReady", ready), condition("PodScheduled", "True")],
            "hostIP": node_ip(node_index), "hostIPs": [{"ip": node_ip(node_index)}],
            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "startTime": started, "qosClass": crate::validation::qos_class(pod.get("spec").unwrap_or(&Value::Null)),
            "containerStatuses": containers,
        });
        self.sim_status("pods", "", pod, status, "kubelet");
        let name = format!("{}.{}", text(pod, "/metadata/name"), suffix(uid_hash, 8));
        let message = format!("Reported {phase} on node {node} by the purchase-guard sandbox: no container runs");
        self.sim_event(pod, name, "Normal", "Simulated", message, "kubelet");
    }

    /// A running Pod's kubelet: ephemeral containers added since are reported running, and
    /// containers resized since report their new resources (the resize applied at once).
    fn follow_running_pod(&self, pod: &Value) {
        let Some(status) = pod.get("status") else { return };
        let containers = items(pod, "/spec/containers");
        // Looked at first, without copying: this runs for every running Pod on every pass.
        let resized = items(status, "/containerStatuses").iter().any(|s| {
            containers
                .iter()
                .find(|c| c["name"] == s["name"])
                .is_some_and(|c| s.get("resources") != running_resources(c))
        });
        let reported = items(status, "/ephemeralContainerStatuses");
        let added: Vec<&Value> = items(pod, "/spec/ephemeralContainers")
            .iter()
            .filter(|c| !reported.iter().any(|s| s["name"] == c["name"]))
            .collect();
        if !resized && added.is_empty() {
            return;
        }
        let mut next = status.clone();
        for s in next
            .get_mut("containerStatuses")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let resources = containers
                .iter()
                .find(|c| c["name"] == s["name"])
                .and_then(running_resources);
            match (resources, s.as_object_mut()) {
                (Some(r), Some(s)) => {
                    s.insert("resources".into(), r.clone());
                }
                (None, Some(s)) => {
                    s.remove("resources");
                }
                _ => {}
            }
        }
        if !added.is_empty() {
            let mut statuses = reported.to_vec();
            statuses.extend(added.into_iter().map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "containerID": "",
                       "ready": false, "restartCount": 0, "state": {"running": {"startedAt": now()}}})
            }));
            next["ephemeralContainerStatuses"] = json!(statuses);
        }
        self.sim_status("pods", "", pod, next, "kubelet");
    }

    /// Statuses from the Pods: ReplicaSets, StatefulSets, DaemonSets and Jobs, then Deployments.
    fn workload_statuses(&self, ns: &str, nodes: &[Arc<Value>]) {
        for rs in self.objects("apps/replicasets", ns) {
            let pods = self.owned_pods(&rs);
            let ready = pods.iter().filter(|p| pod_ready(p)).count();
            let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(),
                                    "readyReplicas": ready, "availableReplicas": ready,
                                    "observedGeneration": int(&rs, "/metadata/generation", 1)});
            drop_zeros(&mut status, &["readyReplicas", "availableReplicas"]);
            // kube-controller-manager's condition for a refused creation: the API error as it
            // came back (the FailedCreate event prefixes "Error creating: ").
            let failed = self.failures().get(&failure_key(&rs)).cloned();
            if let Some(message) = failed {
                let mut conditions = Vec::new();
                set_condition(&mut conditions, &rs, "ReplicaFailure", "True", "FailedCreate", &message);
                status["conditions"] = json!(conditions);
            }
            self.sim_status("replicasets", "apps", &rs, status, "replicaset-controller");
        }
        for sts in self.objects("apps/statefulsets", ns) {
            let pods = self.owned_pods(&sts);
            let ready = pods.iter().filter(|p| pod_ready(p)).count();
            let revision = format!(
                "{}-{}",
                text(&sts, "/metadata/name"),
                template_hash(sts.pointer("/spec/template").unwrap_or(&Value::Null))
            );
            let status = json!({"replicas": pods.len(), "readyReplicas": ready, "currentReplicas": pods.len(),
                                "updatedReplicas": pods.len(), "availableReplicas": ready,
                                "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
                                "observedGeneration": int(&sts, "/metadata/generation", 1)});
            self.sim_status("statefulsets", "apps", &sts, status, "statefulset-controller");
        }
        for ds in self.objects("apps/daemonsets", ns) {
            let pods = self.owned_pods(&ds);
            let ready = pods.iter().filter(|p| pod_ready(p)).count();
            let selector = ds.pointer("/spec/template/spec/nodeSelector");
            let desired = nodes.iter().filter(|n| fits(n, selector)).count();
            let status = json!({"desiredNumberScheduled": desired, "currentNumberScheduled": pods.len(),
                                "updatedNumberScheduled": pods.len(), "numberReady": ready, "numberAvailable": ready,
                                "numberMisscheduled": 0, "observedGeneration": int(&ds, "/metadata/generation", 1)});
            self.sim_status("daemonsets", "apps", &ds, status, "daemon-set-controller");
        }
        for job in self.objects("batch/jobs", ns) {
            self.job_status(&job);
        }
        for d in self.objects("apps/deployments", ns) {
            self.deployment_status(&d);
        }
        let pdbs = self.objects("policy/poddisruptionbudgets", ns);
        if !pdbs.is_empty() {
            let pods = self.objects("/pods", ns);
            for pdb in pdbs {
                self.disruption_status(&pdb, &pods);
            }
        }
    }

    /// The disruption controller's status of a PodDisruptionBudget.
    fn disruption_status(&self, pdb: &Value, pods: &[Arc<Value>]) {
        let b = super::pods::budget(pdb, pods);
        let generation = int(pdb, "/metadata/generation", 1);
        let (allowed, reason) = if b.allowed() > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        let old = pdb
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == "DisruptionAllowed"));
        let since = old
            .filter(|c| c["status"] == allowed)
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now()));
        let status = json!({
            "observedGeneration": generation, "disruptionsAllowed": b.allowed(),
            "currentHealthy": b.healthy, "desiredHealthy": b.desired, "expectedPods": b.expected,
            "conditions": [{"type": "DisruptionAllowed", "status": allowed, "reason": reason, "message": "",
                            "observedGeneration": generation, "lastTransitionTime": since}],
        });
        self.sim_status("poddisruptionbudgets", "policy", pdb, status, "disruption-controller");
    }

    fn job_status(&self, job: &Value) {
        let pods = self.owned_pods(job);
        let succeeded = pods.iter().filter(|p| text(p, "/status/phase") == "Succeeded").count();
        let active = pods.len() - succeeded;
        let completions = int(job, "/spec/completions", 1).max(0) as usize;
        let mut status = job.get("status").cloned().unwrap_or_else(|| json!({}));
        if job.pointer("/spec/suspend").and_then(Value::as_bool) != Some(true) && status.get("startTime").is_none() {
            status["startTime"] = json!(now());
        }
        status["active"] = json!(active);
        status["succeeded"] = json!(succeeded);
        status["ready"] = json!(0);
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        drop_zeros(&mut status, &["active", "succeeded"]);
        if succeeded >= completions && status.get("completionTime").is_none() {
            let mut conditions = Vec::new();
            set_condition(
                &mut conditions,
                job,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            set_condition(
                &mut conditions,
                job,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            status["conditions"] = json!(conditions);
            status["completionTime"] = json!(now());
        }
        self.sim_status("jobs", "batch", job, status, "job-controller");
    }

    fn deployment_status(&self, d: &Value) {
        let uid = text(d, "/metadata/uid");
        let ns = text(d, "/metadata/namespace");
        let hash = template_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
        let new_name = format!("{}-{hash}", text(d, "/metadata/name"));
        let owned: Vec<Arc<Value>> = self
            .objects("apps/replicasets", ns)
            .into_iter()
            .filter(|rs| controller_uid(rs) == Some(uid))
            .collect();
        let sum = |pointer: &str| owned.iter().map(|rs| int(rs, pointer, 0)).sum::<i64>();
        let (replicas, ready, available) = (
            sum("/status/replicas"),
            sum("/status/readyReplicas"),
            sum("/status/availableReplicas"),
        );
        let new_rs = owned.iter().find(|rs| text(rs, "/metadata/name") == new_name);
        let updated = new_rs.map(|rs| int(rs, "/status/replicas", 0)).unwrap_or(0);
        let desired = int(d, "/spec/replicas", 1);
        let mut conditions = Vec::new();
        if available >= desired {
            set_condition(
                &mut conditions,
                d,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
        } else {
            set_condition(
                &mut conditions,
                d,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
        }
        let done = updated == desired && replicas == desired && available >= desired;
        match new_rs {
            Some(_) if done => set_condition(
                &mut conditions,
                d,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            ),
            Some(_) => set_condition(
                &mut conditions,
                d,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{new_name}\" is progressing."),
            ),
            None if d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) => set_condition(
                &mut conditions,
                d,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
            ),
            None => {}
        }
        // A ReplicaSet's ReplicaFailure (the new one's first) is the Deployment's too.
        let failure = new_rs.into_iter().chain(&owned).find_map(|rs| {
            rs.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "ReplicaFailure"))
        });
        if let Some(f) = failure {
            set_condition(
                &mut conditions,
                d,
                "ReplicaFailure",
                f["status"].as_str().unwrap_or("True"),
                f["reason"].as_str().unwrap_or_default(),
                f["message"].as_str().unwrap_or_default(),
            );
        }
        let mut status = json!({
            "observedGeneration": int(d, "/metadata/generation", 1),
            "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
            "availableReplicas": available, "unavailableReplicas": (desired - available).max(0),
            "conditions": conditions,
        });
        drop_zeros(
            &mut status,
            &[
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ],
        );
        self.sim_status("deployments", "apps", d, status, "deployment-controller");
    }
}

/// Which ReplicaSet a refused creation is remembered for.
fn failure_key(rs: &Value) -> (String, String) {
    (
        text(rs, "/metadata/namespace").to_string(),
        text(rs, "/metadata/uid").to_string(),
    )
}

fn node_ip(index: usize) -> String {
    if index == 0 {
        "127.0.0.1".into()
    } else {
        format!("172.18.0.{}", index + 2)
    }
}

/// Go's `omitempty` for counts kube-controller-manager leaves out when zero.
fn drop_zeros(status: &mut Value, keys: &[&str]) {
    if let Some(m) = status.as_object_mut() {
        for k in keys {
            if m.get(*k).and_then(Value::as_i64) == Some(0) {
                m.remove(*k);
            }
        }
    }
}

/// Whether a node's labels satisfy a Pod's `nodeSelector`.
fn fits(node: &Value, selector: Option<&Value>) -> bool {
    selector.and_then(Value::as_object).is_none_or(|sel| {
        sel.iter()
            .all(|(k, v)| node.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
    })
}

/// Who a simulated component is to the API server (what admission sees as the requester).
pub(super) fn component_user(component: &str, node: &str) -> UserInfo {
    let authenticated = "system:authenticated".to_string();
    match component {
        "kubelet" => UserInfo {
            name: format!("system:node:{node}"),
            uid: String::new(),
            groups: vec!["system:nodes".into(), authenticated],
        },
        "kube-scheduler" => UserInfo {
            name: "system:kube-scheduler".into(),
            uid: String::new(),
            groups: vec![authenticated],
        },
        controller => UserInfo {
            name: format!("system:serviceaccount:kube-system:{controller}"),
            uid: String::new(),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:kube-system".into(),
                authenticated,
            ],
        },
    }
}

/// The list at `at` in `v`, or none.
fn items<'a>(v: &'a Value, at: &str) -> &'a [Value] {
    v.pointer(at)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The resources a kubelet reports a running container with: those of its spec, when it has
/// any.
fn running_resources(container: &Value) -> Option<&Value> {
    container
        .get("resources")
        .filter(|r| r.get("requests").is_some() || r.get("limits").is_some())
}
