//! What an admission request does to a billable resource: CREATE is a purchase, DELETE an
//! unsubscribe, and an UPDATE is classified by comparing the old and new objects (R7).

use crate::impact::{BillingMode, Operation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The label that carries a resource's billing mode.
pub const BILLING_MODE_LABEL: &str = "purchaseguard.io/billing-mode";

/// How updates are classified. Paths are JSON pointers (RFC 6901) into the object; a change
/// at or below a path counts for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassifyRules {
    /// Fields whose change is a rename.
    pub rename_paths: Vec<String>,
    /// Fields whose change is a renewal.
    pub renew_paths: Vec<String>,
    /// The billing mode of resources without a valid billing-mode label.
    pub default_billing_mode: BillingMode,
}

impl Default for ClassifyRules {
    fn default() -> Self {
        ClassifyRules {
            rename_paths: vec![
                "/spec/displayName".into(),
                "/metadata/annotations/purchaseguard.io~1display-name".into(),
            ],
            renew_paths: vec!["/spec/subscription".into()],
            default_billing_mode: BillingMode::PayPerUse,
        }
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
        if let Some(op) = classify_path(rules, &path) {
            operations.insert(op);
        }
    }
    operations
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
    let replicas = |o: Option<&Value>| match o.and_then(|o| o.pointer("/spec/replicas")) {
        None | Some(Value::Null) => Some(0),
        Some(v) => v.as_i64(),
    };
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
