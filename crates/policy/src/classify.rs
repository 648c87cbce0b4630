//! What an admission request does to a billable resource: CREATE is a purchase, DELETE an
//! unsubscribe, and an UPDATE is classified by comparing the old and new objects (R7).

use crate::impact::{BillingMode, Operation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The label that carries a resource's billing mode.
pub const BILLING_MODE_LABEL: &str = "purchaseguard.io/billing-mode";

/// How updates of one guarded kind are classified: what its fields mean. Paths are JSON
/// pointers (RFC 6901) into the object; a change at or below a path counts for it. A change
/// under `/spec` that no path names is a modification of specifications; `/metadata` (but the
/// named paths and the billing-mode label) and `/status` are never billable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassifyRules {
    /// Fields whose change is a rename.
    #[serde(default)]
    pub rename_paths: Vec<String>,
    /// Fields whose change is a renewal.
    #[serde(default)]
    pub renew_paths: Vec<String>,
    /// Whole numbers that measure capacity (replicas, parallelism, CPUs): raising one is a
    /// purchase, lowering it is use. A value that is not a whole number is a modification.
    #[serde(default)]
    pub capacity_paths: Vec<String>,
    /// Fields whose change is plain use (a rollout restart, pausing, suspending).
    #[serde(default)]
    pub use_paths: Vec<String>,
    /// The billing mode of resources without a valid billing-mode label.
    #[serde(default = "default_mode")]
    pub default_billing_mode: BillingMode,
}

fn default_mode() -> BillingMode {
    BillingMode::PayPerUse
}

/// The annotation `kubectl rollout restart` sets on a workload's pod template.
pub const RESTARTED_AT: &str = "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt";

impl Default for ClassifyRules {
    /// The rules of a kind nothing more is known of: a display name is a rename, a
    /// subscription a renewal.
    fn default() -> Self {
        ClassifyRules {
            rename_paths: vec![
                "/spec/displayName".into(),
                "/metadata/annotations/purchaseguard.io~1display-name".into(),
            ],
            renew_paths: vec!["/spec/subscription".into()],
            capacity_paths: vec![],
            use_paths: vec![],
            default_billing_mode: BillingMode::PayPerUse,
        }
    }
}

impl ClassifyRules {
    /// The rules of a kind by its API group and resource: apps/v1 and batch/v1 workloads,
    /// Pods, and the sample VirtualMachine have theirs; any other kind gets [`Default`].
    pub fn for_kind(group: &str, resource: &str) -> Self {
        let base = ClassifyRules::default();
        let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match (group, resource) {
            ("apps", "deployments") => ClassifyRules {
                capacity_paths: paths(&["/spec/replicas"]),
                use_paths: paths(&[RESTARTED_AT, "/spec/paused"]),
                ..base
            },
            ("apps", "replicasets" | "statefulsets") => ClassifyRules {
                capacity_paths: paths(&["/spec/replicas"]),
                use_paths: paths(&[RESTARTED_AT]),
                ..base
            },
            ("apps", "daemonsets") => ClassifyRules {
                use_paths: paths(&[RESTARTED_AT]),
                ..base
            },
            ("batch", "jobs") => ClassifyRules {
                capacity_paths: paths(&["/spec/parallelism", "/spec/completions"]),
                use_paths: paths(&["/spec/suspend"]),
                ..base
            },
            ("batch", "cronjobs") => ClassifyRules {
                capacity_paths: paths(&[
                    "/spec/jobTemplate/spec/parallelism",
                    "/spec/jobTemplate/spec/completions",
                ]),
                use_paths: paths(&[
                    "/spec/suspend",
                    RESTARTED_AT
                        .replace("/spec/template", "/spec/jobTemplate/spec/template")
                        .as_str(),
                ]),
                ..base
            },
            ("compute.example.com", "virtualmachines") => ClassifyRules {
                capacity_paths: paths(&["/spec/cpus", "/spec/memoryGiB"]),
                use_paths: paths(&["/spec/running"]),
                ..base
            },
            _ => base,
        }
    }

    /// Checks the paths are JSON pointers, naming the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        let lists = [
            ("renamePaths", &self.rename_paths),
            ("renewPaths", &self.renew_paths),
            ("capacityPaths", &self.capacity_paths),
            ("usePaths", &self.use_paths),
        ];
        for (field, paths) in lists {
            for (i, p) in paths.iter().enumerate() {
                if !p.starts_with('/') || p.len() < 2 {
                    return Err(format!(
                        "{field}[{i}]: {p:?} is not a JSON pointer to a field (like \"/spec/replicas\"; \"~1\" stands for \"/\" in a key)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The admission operation of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOperation {
    Create,
    Update,
    Delete,
}

/// The billing mode of an object: its label, or the default when the label is missing.
/// A label with an unsupported value is an error naming the allowed values.
pub fn billing_mode_of(object: &Value, default: BillingMode) -> Result<BillingMode, String> {
    match object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(BILLING_MODE_LABEL))
    {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => {
            BillingMode::parse(s).map_err(|e| format!("metadata.labels[\"{BILLING_MODE_LABEL}\"]: {e}"))
        }
        Some(other) => Err(format!(
            "metadata.labels[\"{BILLING_MODE_LABEL}\"]: must be a string, got {other}"
        )),
    }
}

/// The operations an UPDATE performs. Empty when nothing billable changed: status-only and
/// metadata-only updates (labels, annotations, finalizers, owner references).
pub fn classify_update(rules: &ClassifyRules, old: &Value, new: &Value) -> BTreeSet<Operation> {
    let mut operations = BTreeSet::new();
    let old_mode = billing_mode_of(old, rules.default_billing_mode);
    let new_mode = billing_mode_of(new, rules.default_billing_mode);
    if old_mode != new_mode {
        operations.insert(Operation::ChangeBillingMode);
    }
    let mut changed = Vec::new();
    diff(old, new, &mut String::new(), &mut changed);
    for path in changed {
        if let Some(capacity) = rules.capacity_paths.iter().find(|p| under(&path, p)) {
            match (whole(old.pointer(capacity)), whole(new.pointer(capacity))) {
                (Some(before), Some(after)) if after > before => {
                    operations.insert(Operation::Purchase);
                }
                // Less or as much capacity: use.
                (Some(_), Some(_)) => {}
                _ => {
                    operations.insert(Operation::ModifySpecifications);
                }
            }
            continue;
        }
        if let Some(op) = classify_path(rules, &path) {
            operations.insert(op);
        }
    }
    operations
}

/// A capacity: a whole number, or 0 when the field is absent.
fn whole(value: Option<&Value>) -> Option<i64> {
    match value {
        None | Some(Value::Null) => Some(0),
        Some(v) => v.as_i64(),
    }
}

/// The operations a request performs: CREATE is a purchase, DELETE an unsubscribe.
pub fn classify_request(
    rules: &ClassifyRules,
    operation: RequestOperation,
    old: Option<&Value>,
    new: Option<&Value>,
) -> BTreeSet<Operation> {
    match (operation, old, new) {
        (RequestOperation::Create, _, _) => BTreeSet::from([Operation::Purchase]),
        (RequestOperation::Delete, _, _) => BTreeSet::from([Operation::Delete]),
        (RequestOperation::Update, Some(old), Some(new)) => classify_update(rules, old, new),
        // An update without both objects cannot be classified: treat it as a change.
        (RequestOperation::Update, _, _) => BTreeSet::from([Operation::Other]),
    }
}

/// The operations of a request on a `scale` subresource (autoscaling/v1 Scale objects): more
/// replicas is a purchase of capacity; fewer or as many is use (nothing billable). Replicas
/// that are not a whole number are "any other change".
pub fn classify_scale(operation: RequestOperation, old: Option<&Value>, new: Option<&Value>) -> BTreeSet<Operation> {
    let replicas = |o: Option<&Value>| whole(o.and_then(|o| o.pointer("/spec/replicas")));
    match (operation, replicas(old), replicas(new)) {
        (RequestOperation::Update, Some(before), Some(after)) if after > before => {
            BTreeSet::from([Operation::Purchase])
        }
        (RequestOperation::Update, Some(_), Some(_)) => BTreeSet::new(),
        _ => BTreeSet::from([Operation::Other]),
    }
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

fn classify_path(rules: &ClassifyRules, path: &str) -> Option<Operation> {
    let billing_label = format!("/metadata/labels/{}", BILLING_MODE_LABEL.replace('/', "~1"));
    if under(path, "/status") || under(path, "/apiVersion") || under(path, "/kind") || path == billing_label {
        return None;
    }
    if rules.rename_paths.iter().any(|p| under(path, p)) {
        return Some(Operation::Rename);
    }
    if rules.renew_paths.iter().any(|p| under(path, p)) {
        return Some(Operation::Renew);
    }
    if rules.use_paths.iter().any(|p| under(path, p)) {
        return None;
    }
    if under(path, "/metadata") {
        return None;
    }
    if under(path, "/spec") {
        return Some(Operation::ModifySpecifications);
    }
    Some(Operation::Other)
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Collects the JSON pointers of changed leaves. Objects are compared key by key (a missing
/// key is null, and null against an object compares with an empty object); anything else,
/// arrays included, is a leaf.
fn diff(old: &Value, new: &Value, path: &mut String, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    let empty = serde_json::Map::new();
    let (a, b) = match (old, new) {
        (Value::Object(a), Value::Object(b)) => (a, b),
        (Value::Object(a), Value::Null) => (a, &empty),
        (Value::Null, Value::Object(b)) => (&empty, b),
        _ => {
            out.push(path.clone());
            return;
        }
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let len = path.len();
        path.push('/');
        path.push_str(&escape(key));
        diff(
            a.get(key).unwrap_or(&Value::Null),
            b.get(key).unwrap_or(&Value::Null),
            path,
            out,
        );
        path.truncate(len);
    }
}
