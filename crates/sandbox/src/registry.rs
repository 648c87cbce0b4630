//! The resource types the sandbox serves: built-in kinds and those of established CRDs.

use serde_json::Value;

/// A printer column of a Table response.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// A JSONPath, or `None` for the built-in Name and Age columns.
    pub json_path: Option<String>,
    /// A cell kube-apiserver's printer computes (a built-in's `READY 2/3`), in place of the
    /// JSONPath.
    pub computed: Option<fn(&Value) -> Value>,
}

/// Columns are equal by what they show; a computed cell by its presence (function addresses
/// are not comparable).
impl PartialEq for Column {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            &self.type_,
            &self.format,
            &self.description,
            self.priority,
            &self.json_path,
        ) == (
            &other.name,
            &other.type_,
            &other.format,
            &other.description,
            other.priority,
            &other.json_path,
        ) && self.computed.is_some() == other.computed.is_some()
    }
}

impl Column {
    /// A column kube-apiserver prints for a built-in kind.
    pub(crate) fn printed(name: &str, type_: &str, description: &str, cell: fn(&Value) -> Value) -> Self {
        Column {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: description.into(),
            priority: 0,
            json_path: None,
            computed: Some(cell),
        }
    }
}

impl Column {
    /// `AGE` where kube-apiserver prints it before other columns (Nodes: before `VERSION`).
    /// Shown with `-o wide` only.
    fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    pub(crate) fn age() -> Self {
        Column {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created."
                .into(),
            priority: 0,
            json_path: Some(".metadata.creationTimestamp".into()),
            computed: None,
        }
    }
}

/// A whole number of the object at `pointer`, 0 when absent (as kube-apiserver prints it).
fn count(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `READY` of Deployments and StatefulSets: ready replicas out of `spec.replicas` (1 when
/// unset).
fn ready(object: &Value) -> Value {
    let wanted = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    Value::String(format!("{}/{wanted}", count(object, "/status/readyReplicas")))
}

/// `STATUS` of Nodes: Ready, NotReady or Unknown, and SchedulingDisabled when cordoned.
fn node_status(o: &Value) -> Value {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let mut status = match ready {
        Some(c) if c["status"] == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push_str(",SchedulingDisabled");
    }
    Value::String(status)
}

/// `ROLES` of Nodes: from the `node-role.kubernetes.io/<role>` labels.
fn node_roles(o: &Value) -> Value {
    let roles: Vec<String> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Value::String(if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    })
}

/// The columns kube-apiserver prints for Deployments, ReplicaSets and StatefulSets.
fn workload_columns(kind: &str) -> Vec<Column> {
    let desired = |o: &Value| Value::from(o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1));
    match kind {
        "Deployment" => vec![
            Column::printed("Ready", "string", "Number of the pod with ready state", ready),
            Column::printed(
                "Up-to-date",
                "integer",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                |o| Value::from(count(o, "/status/updatedReplicas")),
            ),
            Column::printed(
                "Available",
                "integer",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                |o| Value::from(count(o, "/status/availableReplicas")),
            ),
        ],
        "ReplicaSet" => vec![
            Column::printed(
                "Desired",
                "integer",
                "Replicas is the number of desired replicas.",
                desired,
            ),
            Column::printed(
                "Current",
                "integer",
                "Replicas is the most recently observed number of replicas.",
                |o| Value::from(count(o, "/status/replicas")),
            ),
            Column::printed(
                "Ready",
                "integer",
                "The number of ready replicas for this replica set.",
                |o| Value::from(count(o, "/status/readyReplicas")),
            ),
        ],
        "DaemonSet" => vec![
            Column::printed(
                "Desired",
                "integer",
                "The number of nodes that should be running the daemon pod.",
                |o| Value::from(count(o, "/status/desiredNumberScheduled")),
            ),
            Column::printed(
                "Current",
                "integer",
                "The number of nodes running at least one daemon pod.",
                |o| Value::from(count(o, "/status/currentNumberScheduled")),
            ),
            Column::printed(
                "Ready",
                "integer",
                "The number of nodes with a ready daemon pod.",
                |o| Value::from(count(o, "/status/numberReady")),
            ),
            Column::printed(
                "Up-to-date",
                "integer",
                "The number of nodes running the updated daemon pod.",
                |o| Value::from(count(o, "/status/updatedNumberScheduled")),
            ),
            Column::printed(
                "Available",
                "integer",
                "The number of nodes with an available daemon pod.",
                |o| Value::from(count(o, "/status/numberAvailable")),
            ),
        ],
        "Job" => vec![
            Column::printed("Status", "string", "Status of the job.", |o| {
                let has = |t: &str| {
                    o.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
                };
                Value::from(if has("Complete") {
                    "Complete"
                } else if has("Failed") {
                    "Failed"
                } else if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                    "Suspended"
                } else {
                    "Running"
                })
            }),
            Column::printed("Completions", "string", "The completion status of the job.", |o| {
                let wanted = o.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
                Value::from(format!("{}/{wanted}", count(o, "/status/succeeded")))
            }),
        ],
        "Pod" => vec![
            Column::printed(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
                |o| {
                    let statuses = o.pointer("/status/containerStatuses").and_then(Value::as_array);
                    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
                    let total = o
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    Value::from(format!("{ready}/{total}"))
                },
            ),
            Column::printed(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
                |o| {
                    if o.pointer("/metadata/deletionTimestamp").is_some() {
                        return Value::from("Terminating");
                    }
                    let phase = o.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
                    Value::from(if phase == "Succeeded" { "Completed" } else { phase })
                },
            ),
            Column::printed(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted.",
                |o| {
                    let restarts: i64 = o
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .map_or(0, |s| s.iter().filter_map(|c| c["restartCount"].as_i64()).sum());
                    Value::from(restarts.to_string())
                },
            ),
            Column::age(),
            Column::printed("IP", "string", "The IP address assigned to the pod", |o| {
                o.pointer("/status/podIP")
                    .cloned()
                    .unwrap_or(Value::String("<none>".into()))
            })
            .wide(),
            Column::printed("Node", "string", "The node the pod is assigned to", |o| {
                o.pointer("/spec/nodeName")
                    .cloned()
                    .unwrap_or(Value::String("<none>".into()))
            })
            .wide(),
            Column::printed("Nominated Node", "string", "The node the scheduler nominated", |o| {
                o.pointer("/status/nominatedNodeName")
                    .cloned()
                    .unwrap_or(Value::String("<none>".into()))
            })
            .wide(),
            Column::printed("Readiness Gates", "string", "The pod's readiness gates", |_| {
                Value::String("<none>".into())
            })
            .wide(),
        ],
        _ => vec![Column::printed(
            "Ready",
            "string",
            "Number of the pod with ready state",
            ready,
        )],
    }
}

/// A served resource type.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    /// Verbs served on the main resource.
    pub verbs: Vec<&'static str>,
    /// Extra printer columns (CRDs' additionalPrinterColumns).
    pub columns: Vec<Column>,
    /// Whether objects are validated against a CRD schema.
    pub custom: bool,
    /// Fields a field selector may name besides metadata.name and metadata.namespace (CRDs'
    /// selectableFields), as JSON paths such as `.spec.customer`.
    pub selectable_fields: Vec<String>,
    /// The `scale` subresource, when the kind has one.
    pub scale: Option<ScalePaths>,
}

/// Where a kind keeps what its `scale` subresource (autoscaling/v1 Scale) shows, as JSON
/// pointers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// A label selector string in the object (CRDs' labelSelectorPath); `None`: built from
    /// `/spec/selector` (a LabelSelector), as for apps/v1 workloads.
    pub label_selector: Option<String>,
}

/// A JSON path of the form `.a.b` as a JSON pointer `/a/b`.
fn pointer(path: &str) -> String {
    crate::selectors::pointer_of(path.trim_start_matches('.'))
}

pub const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is core/v1 Namespaces.
    pub fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.plural == "namespaces"
    }

    /// Whether kube-apiserver keeps `metadata.generation` for this kind: custom resources and
    /// the built-ins whose strategies track it; not the core group's kinds (ConfigMaps,
    /// Secrets, Namespaces, ServiceAccounts, Services, Pods...) but ReplicationControllers, nor
    /// Leases, Events and RBAC objects.
    pub fn tracks_generation(&self) -> bool {
        if self.custom {
            return true;
        }
        match self.group.as_str() {
            "" => self.plural == "replicationcontrollers",
            "coordination.k8s.io" | "events.k8s.io" | "rbac.authorization.k8s.io" => false,
            _ => true,
        }
    }

    pub fn group_resource(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool, status: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: vec![],
            categories: vec![],
            has_status: status,
            verbs: ALL_VERBS.to_vec(),
            columns: vec![],
            selectable_fields: vec![],
            scale: None,
            custom: false,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The printer columns kube-apiserver shows for a built-in kind (after Name, before Age).
    fn printed(mut self, columns: Vec<Column>) -> Self {
        self.columns = columns;
        self
    }

    /// Fields a field selector may name (JSON paths such as `.reason`).
    fn selectable(mut self, fields: Vec<String>) -> Self {
        self.selectable_fields = fields;
        self
    }

    fn categories(mut self, names: &[&str]) -> Self {
        self.categories = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The apps/v1 `scale` subresource: spec.replicas, status.replicas, spec.selector.
    fn scalable(mut self) -> Self {
        self.scale = Some(ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: None,
        });
        self
    }

    fn verbs(mut self, verbs: &[&'static str]) -> Self {
        self.verbs = verbs.to_vec();
        self
    }

    /// The resource type a CRD version defines.
    pub fn from_crd(crd: &Value, version: &Value) -> Option<Self> {
        let spec = crd.get("spec")?;
        let names = spec.get("names")?;
        let str_list = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let kind = names.get("kind")?.as_str()?.to_string();
        let columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .filter_map(|c| {
                        Some(Column {
                            name: c.get("name")?.as_str()?.to_string(),
                            type_: c.get("type").and_then(Value::as_str).unwrap_or("string").to_string(),
                            format: c.get("format").and_then(Value::as_str).unwrap_or_default().to_string(),
                            description: c
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            json_path: Some(c.get("jsonPath")?.as_str()?.to_string()),
                            computed: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(ResourceType {
            group: spec.get("group")?.as_str()?.to_string(),
            version: version.get("name")?.as_str()?.to_string(),
            list_kind: names
                .get("listKind")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(format!("{kind}List")),
            plural: names.get("plural")?.as_str()?.to_string(),
            singular: names
                .get("singular")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(kind.to_lowercase()),
            kind,
            namespaced: spec.get("scope").and_then(Value::as_str) == Some("Namespaced"),
            short_names: str_list(names.get("shortNames")),
            categories: str_list(names.get("categories")),
            has_status: version.pointer("/subresources/status").is_some(),
            verbs: ALL_VERBS.to_vec(),
            columns,
            custom: true,
            selectable_fields: version
                .get("selectableFields")
                .and_then(Value::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| f.get("jsonPath")?.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            scale: version.pointer("/subresources/scale").and_then(|s| {
                Some(ScalePaths {
                    spec_replicas: pointer(s.get("specReplicasPath")?.as_str()?),
                    status_replicas: pointer(s.get("statusReplicasPath")?.as_str()?),
                    label_selector: s.get("labelSelectorPath").and_then(Value::as_str).map(pointer),
                })
            }),
        })
    }
}

/// The built-in kinds the product and its tests need.
pub fn builtins() -> Vec<ResourceType> {
    use ResourceType as R;
    let mut types = configured();
    // Every other kind of the catalogue, with kube-apiserver's short names.
    for e in crate::catalogue::entries() {
        if types
            .iter()
            .any(|t| t.group == e.group && t.version == e.version && t.plural == e.plural)
        {
            continue;
        }
        let mut t = R::builtin(e.group, e.version, e.kind, e.plural, e.namespaced, e.has_status)
            .short(crate::catalogue::short_names(e.group, e.plural));
        if crate::catalogue::in_category_all(e.group, e.plural) {
            t = t.categories(&["all"]);
        }
        if e.group.is_empty() && e.plural == "replicationcontrollers" {
            t = t.scalable();
        }
        types.push(t);
    }
    for t in types.iter_mut().filter(|t| t.columns.is_empty()) {
        if let Some(columns) = crate::printers::columns(&t.group, &t.plural) {
            t.columns = columns;
        }
    }
    types
}

/// Field selectors kube-apiserver supports on a built-in kind, besides `metadata.name` and
/// `metadata.namespace`.
fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!(".{n}")).collect()
}

/// The kinds served with more than the catalogue says: printer columns, short names,
/// categories, scale, verbs, and the ones the catalogue does not list.
fn configured() -> Vec<ResourceType> {
    use ResourceType as R;
    vec![
        R::builtin("", "v1", "Namespace", "namespaces", false, true)
            .short(&["ns"])
            .selectable(fields(&["status.phase"])),
        R::builtin("", "v1", "ConfigMap", "configmaps", true, false).short(&["cm"]),
        R::builtin("", "v1", "Secret", "secrets", true, false).selectable(fields(&["type"])),
        R::builtin("", "v1", "ServiceAccount", "serviceaccounts", true, false).short(&["sa"]),
        R::builtin("", "v1", "Service", "services", true, true)
            .short(&["svc"])
            .categories(&["all"]),
        R::builtin("", "v1", "Event", "events", true, false)
            .short(&["ev"])
            .selectable(crate::events::selectable(true)),
        R::builtin("events.k8s.io", "v1", "Event", "events", true, false)
            .short(&["ev"])
            .selectable(crate::events::selectable(false)),
        R::builtin("coordination.k8s.io", "v1", "Lease", "leases", true, false),
        R::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        )
        .short(&["crd", "crds"]),
        R::builtin("apps", "v1", "Deployment", "deployments", true, true)
            .short(&["deploy"])
            .categories(&["all"])
            .scalable()
            .printed(workload_columns("Deployment")),
        R::builtin("apps", "v1", "ReplicaSet", "replicasets", true, true)
            .selectable(fields(&["status.replicas"]))
            .short(&["rs"])
            .categories(&["all"])
            .scalable()
            .printed(workload_columns("ReplicaSet")),
        R::builtin("apps", "v1", "StatefulSet", "statefulsets", true, true)
            .short(&["sts"])
            .categories(&["all"])
            .scalable()
            .printed(workload_columns("StatefulSet")),
        R::builtin("apps", "v1", "DaemonSet", "daemonsets", true, true)
            .short(&["ds"])
            .categories(&["all"])
            .printed(workload_columns("DaemonSet")),
        R::builtin("", "v1", "Pod", "pods", true, true)
            .short(&["po"])
            .selectable(fields(&[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ]))
            .categories(&["all"])
            .printed(workload_columns("Pod")),
        R::builtin("batch", "v1", "Job", "jobs", true, true)
            .selectable(fields(&["status.successful"]))
            .categories(&["all"])
            .printed(workload_columns("Job")),
        R::builtin("batch", "v1", "CronJob", "cronjobs", true, true)
            .short(&["cj"])
            .categories(&["all"]),
        R::builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
        )
        .short(&["pdb"]),
        R::builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false),
        R::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
        ),
        R::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
        ),
        R::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
        ),
        R::builtin(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            false,
        ),
        R::builtin(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            false,
            true,
        ),
        R::builtin(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
            false,
        ),
        R::builtin(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            false,
        ),
        R::builtin("", "v1", "Node", "nodes", false, true)
            .short(&["no"])
            .selectable(fields(&["spec.unschedulable"]))
            .printed(vec![
                Column::printed("Status", "string", "The status of the node", node_status),
                Column::printed("Roles", "string", "The roles of the node", node_roles),
                Column::age(),
                Column::printed("Version", "string", "Kubelet Version reported by the node.", |o| {
                    o.pointer("/status/nodeInfo/kubeletVersion")
                        .cloned()
                        .unwrap_or(Value::String(String::new()))
                }),
            ]),
        R::builtin("", "v1", "ComponentStatus", "componentstatuses", false, false)
            .short(&["cs"])
            .verbs(&["get", "list"])
            .printed(vec![
                Column::printed("Status", "string", "Status of the component conditions", |o| {
                    let healthy = o
                        .pointer("/conditions")
                        .and_then(Value::as_array)
                        .and_then(|c| c.iter().find(|c| c["type"] == "Healthy"));
                    Value::String(match healthy {
                        Some(c) if c["status"] == "True" => "Healthy".into(),
                        Some(_) => "Unhealthy".into(),
                        None => "Unknown".into(),
                    })
                }),
                Column::printed("Message", "string", "Message of the component conditions", |o| {
                    o.pointer("/conditions/0/message")
                        .cloned()
                        .unwrap_or(Value::String(String::new()))
                }),
                Column::printed("Error", "string", "Error of the component conditions", |o| {
                    o.pointer("/conditions/0/error")
                        .cloned()
                        .unwrap_or(Value::String(String::new()))
                }),
            ]),
        R::builtin(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            false,
            true,
        )
        .short(&["csr"])
        .printed(vec![
            Column::age(),
            Column::printed("SignerName", "string", "Name of the signer", |o| {
                o.pointer("/spec/signerName")
                    .cloned()
                    .unwrap_or(Value::String(String::new()))
            }),
            Column::printed("Requestor", "string", "Name of the requestor", |o| {
                o.pointer("/spec/username")
                    .cloned()
                    .unwrap_or(Value::String(String::new()))
            }),
            Column::printed(
                "RequestedDuration",
                "string",
                "Requested duration of the issued certificate",
                |o| match o.pointer("/spec/expirationSeconds").and_then(Value::as_i64) {
                    Some(seconds) => Value::String(crate::meta::human_duration(seconds)),
                    None => Value::String("<none>".into()),
                },
            ),
            Column::printed("Condition", "string", "The conditions of the request", |o| {
                let conditions: Vec<String> = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .map(|c| {
                        c.iter()
                            .filter_map(|c| c["type"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                Value::String(if conditions.is_empty() {
                    "Pending".into()
                } else {
                    conditions.join(",")
                })
            }),
        ]),
        R::builtin("apiregistration.k8s.io", "v1", "APIService", "apiservices", false, true).printed(vec![
            Column::printed(
                "Service",
                "string",
                "The reference to the service that hosts this API endpoint.",
                |o| match o.pointer("/spec/service") {
                    Some(s) if s.is_object() => Value::String(format!(
                        "{}/{}",
                        s["namespace"].as_str().unwrap_or_default(),
                        s["name"].as_str().unwrap_or_default()
                    )),
                    _ => Value::String("Local".into()),
                },
            ),
            Column::printed("Available", "string", "Whether this service is available.", |o| {
                let available = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|c| c.iter().find(|c| c["type"] == "Available"));
                Value::String(match available {
                    Some(c) if c["status"] == "True" => "True".into(),
                    Some(c) => format!(
                        "{} ({})",
                        c["status"].as_str().unwrap_or("Unknown"),
                        c["reason"].as_str().unwrap_or_default()
                    ),
                    None => "Unknown".into(),
                })
            }),
        ]),
        R::builtin(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            false,
        )
        .short(&["netpol"]),
    ]
    .into_iter()
    .chain(
        [
            (
                "authorization.k8s.io",
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
            ),
            (
                "authorization.k8s.io",
                "SelfSubjectRulesReview",
                "selfsubjectrulesreviews",
            ),
            ("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews"),
            ("authentication.k8s.io", "TokenReview", "tokenreviews"),
            ("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews"),
        ]
        .map(|(group, kind, plural)| R::builtin(group, "v1", kind, plural, false, false).verbs(&["create"])),
    )
    .chain(std::iter::once(
        R::builtin(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            true,
            false,
        )
        .verbs(&["create"]),
    ))
    .collect()
}
