//! What every cluster has from its start, which clients rely on: the `default/kubernetes`
//! Service, the default ClusterRoles and their bindings (`cluster-admin`, the aggregated
//! `admin`, `edit` and `view`, and the `system:` basics every authenticated user holds), and
//! in every namespace the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap.
//! Created when missing (a state file keeps what was changed); the rules of the aggregated
//! roles are written in this file, shorter than kube-apiserver's but with the same shape.

use super::{ApiServer, Query};
use serde_json::{Value, json};

/// The label kube-apiserver puts on the objects of its bootstrap policy.
const BOOTSTRAP: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

fn cluster_role(name: &str, labels: &[&str], rules: Value, aggregate: Option<&str>) -> Value {
    let mut label_map = serde_json::Map::new();
    label_map.insert(BOOTSTRAP.0.into(), json!(BOOTSTRAP.1));
    for l in labels {
        label_map.insert(format!("rbac.authorization.k8s.io/aggregate-to-{l}"), json!("true"));
    }
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": label_map,
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules,
    });
    if let Some(to) = aggregate {
        role["aggregationRule"] = json!({"clusterRoleSelectors": [
            {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}
        ]});
    }
    role
}

fn binding(role: &str, groups: &[&str]) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role, "labels": {BOOTSTRAP.0: BOOTSTRAP.1},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": groups.iter().map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g})).collect::<Vec<_>>(),
    })
}

/// The namespaced resources the aggregated roles cover, by API group.
const WORKLOADS: [(&str, &[&str]); 6] = [
    (
        "",
        &[
            "pods",
            "services",
            "endpoints",
            "configmaps",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "serviceaccounts",
        ],
    ),
    (
        "apps",
        &[
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "deployments/scale",
            "replicasets/scale",
            "statefulsets/scale",
        ],
    ),
    ("batch", &["jobs", "cronjobs"]),
    ("autoscaling", &["horizontalpodautoscalers"]),
    ("policy", &["poddisruptionbudgets"]),
    ("networking.k8s.io", &["ingresses", "networkpolicies"]),
];

fn workload_rules(verbs: &[&str]) -> Vec<Value> {
    WORKLOADS
        .iter()
        .map(|(group, resources)| json!({"apiGroups": [group], "resources": resources, "verbs": verbs}))
        .collect()
}

fn cluster_roles() -> Vec<Value> {
    let read = ["get", "list", "watch"];
    let write = ["create", "delete", "deletecollection", "patch", "update"];
    let mut view = workload_rules(&read);
    view.push(json!({"apiGroups": [""], "resources": ["events", "namespaces", "pods/log", "pods/status", "resourcequotas", "limitranges"], "verbs": read}));
    let mut edit = workload_rules(&write);
    edit.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "delete", "deletecollection", "patch", "update"]}));
    edit.push(json!({"apiGroups": [""], "resources": ["pods/exec", "pods/attach", "pods/portforward", "pods/eviction", "serviceaccounts/token"], "verbs": ["create", "get"]}));
    let admin = vec![
        json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["get", "list", "watch", "create", "delete", "deletecollection", "patch", "update"]}),
        json!({"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]}),
    ];
    let discovery_urls = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/readyz",
        "/version",
        "/version/",
        "/openapi",
        "/openapi/*",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            None,
        ),
        cluster_role("admin", &[], json!([]), Some("admin")),
        cluster_role("edit", &["admin"], json!([]), Some("edit")),
        cluster_role("view", &["admin", "edit"], json!([]), Some("view")),
        cluster_role("system:aggregate-to-admin", &["admin"], json!(admin), None),
        cluster_role("system:aggregate-to-edit", &["admin", "edit"], json!(edit), None),
        cluster_role(
            "system:aggregate-to-view",
            &["admin", "edit", "view"],
            json!(view),
            None,
        ),
        cluster_role(
            "system:discovery",
            &[],
            json!([{"nonResourceURLs": discovery_urls, "verbs": ["get"]}]),
            None,
        ),
        cluster_role(
            "system:basic-user",
            &[],
            json!([
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ]),
            None,
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            None,
        ),
    ]
}

impl ApiServer {
    /// Creates `obj` unless an object of its kind and name exists.
    /// Creates `obj` unless an object of its kind and name exists (a kind not served: nothing).
    pub(super) fn ensure(&self, obj: Value) {
        // A kind this sandbox does not serve has nothing to ensure.
        let Ok(rt) = self.type_of(&obj) else { return };
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let key = Self::key(&rt, namespace.as_deref(), &name);
        if self.store.lock().get(&key).is_none()
            && let Err(e) = self.create(&rt, namespace.as_deref(), obj, &Query::new(), "kube-apiserver")
        {
            tracing::error!(kind = %rt.kind, name = %name, error = ?e, "cannot create a default object");
        }
    }

    /// The cluster-wide objects every cluster starts with.
    pub(super) fn bootstrap_defaults(&self) {
        self.ensure(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        }));
        for role in cluster_roles() {
            self.ensure(role);
        }
        self.aggregate_cluster_roles();
        self.sync_api_services();
        // One node, as a single-node cluster has (nothing runs on it), and the components
        // `kubectl get componentstatuses` reports.
        let version = format!("v{}.{}.0", super::KUBERNETES_VERSION.0, super::KUBERNETES_VERSION.1);
        self.ensure(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "sandbox", "labels": {
                "kubernetes.io/hostname": "sandbox", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
            "status": {
                "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": crate::meta::now(),
                    "lastTransitionTime": crate::meta::now()}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "sandbox"}],
                "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version, "operatingSystem": "linux",
                    "architecture": "amd64", "containerRuntimeVersion": "none://sandbox", "osImage": "purchase-guard sandbox",
                    "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
            },
        }));
        for component in ["scheduler", "controller-manager", "etcd-0"] {
            self.ensure(json!({
                "apiVersion": "v1", "kind": "ComponentStatus",
                "metadata": {"name": component},
                "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}],
            }));
        }
        for (role, groups) in [
            ("cluster-admin", &["system:masters"][..]),
            ("system:discovery", &["system:authenticated"][..]),
            ("system:basic-user", &["system:authenticated"][..]),
            (
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"][..],
            ),
        ] {
            self.ensure(binding(role, groups));
        }
    }

    /// What the ServiceAccount and root-CA controllers put in every namespace.
    pub(super) fn populate_namespace(&self, namespace: &str) {
        self.ensure(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace},
        }));
        self.ensure(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
            "data": {"ca.crt": self.cluster_ca.pem},
        }));
    }
}
