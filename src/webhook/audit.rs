//! The audit stamp: the requesting user and the time of each decision, in annotations of the
//! PurchaseRestriction (a mutating webhook).

use super::Webhooks;
use super::review::{Outcome, Request, unexpected_kind};
use crate::api::{AUDIT_USER_ANNOTATION, GROUP};
use serde_json::{Value, json};

/// The annotation in which the audit stamp records when a decision was made or changed.
pub const AUDIT_TIME_ANNOTATION: &str = "purchaseguard.io/changed-at";

impl Webhooks {
    /// The audit stamp: on create, on each state change and on each withdrawal (or its undoing)
    /// of a PurchaseRestriction, records
    /// the requesting user and the time in annotations, overwriting values the user supplied;
    /// other updates keep the previous stamp.
    pub fn audit(&self, req: &Request) -> Outcome {
        if req.group != GROUP || req.kind != "PurchaseRestriction" {
            return unexpected_kind(req, "stamps PurchaseRestriction");
        }
        let Some(object) = req.object.as_ref().filter(|_| req.sub_resource.is_none()) else {
            return Outcome::allow("NothingToStamp");
        };
        let operation = |o: &Value| {
            (
                o.pointer("/spec/state").cloned(),
                o.pointer("/spec/withdrawal").cloned(),
            )
        };
        let wanted: [(&str, Option<String>); 2] = match (req.operation.as_str(), req.old_object.as_ref()) {
            ("CREATE", _) => [
                (AUDIT_USER_ANNOTATION, Some(req.username.clone())),
                (AUDIT_TIME_ANNOTATION, Some((self.clock)().to_string())),
            ],
            ("UPDATE", Some(old)) if operation(old) != operation(object) => [
                (AUDIT_USER_ANNOTATION, Some(req.username.clone())),
                (AUDIT_TIME_ANNOTATION, Some((self.clock)().to_string())),
            ],
            ("UPDATE", Some(old)) => {
                let previous = |key: &str| {
                    old.pointer("/metadata/annotations")
                        .and_then(|a| a.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                [
                    (AUDIT_USER_ANNOTATION, previous(AUDIT_USER_ANNOTATION)),
                    (AUDIT_TIME_ANNOTATION, previous(AUDIT_TIME_ANNOTATION)),
                ]
            }
            _ => return Outcome::allow("NothingToStamp"),
        };
        let annotations = object.pointer("/metadata/annotations").and_then(Value::as_object);
        let mut ops = Vec::new();
        if annotations.is_none() {
            let map: serde_json::Map<String, Value> = wanted
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), json!(v))))
                .collect();
            if !map.is_empty() {
                ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": map}));
            }
        } else {
            for (key, value) in &wanted {
                let path = format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"));
                let current = annotations.and_then(|a| a.get(*key)).and_then(Value::as_str);
                match (value, current) {
                    (Some(v), Some(c)) if v == c => {}
                    (Some(v), _) => ops.push(json!({"op": "add", "path": path, "value": v})),
                    (None, Some(_)) => ops.push(json!({"op": "remove", "path": path})),
                    (None, None) => {}
                }
            }
        }
        let mut outcome = Outcome::allow("Stamped");
        if !ops.is_empty() {
            outcome.patch = Some(Value::Array(ops));
        }
        outcome
    }
}
