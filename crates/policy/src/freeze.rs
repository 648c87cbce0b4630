//! R8 freeze and R9 unfreeze of one billable resource, as pure functions: what a freeze
//! action changes, what is remembered on the object (so that a freeze survives restarts and is
//! applied exactly once), what a pass of the controller does to one object, how it is restored,
//! and which requests would undo a freeze.
//!
//! The remembered values live in the annotation [`FROZEN_ANNOTATION`] of the object itself (a
//! [`FrozenRecord`]). A record is written only on an object that has none, with the object's
//! resourceVersion as a precondition, and never rewritten: a second pass, a crash half-way or
//! a new leader finds it and only re-applies the action.

use crate::impact::BillingMode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The annotation that remembers what a freeze changed ([`FrozenRecord`], JSON).
pub const FROZEN_ANNOTATION: &str = "purchaseguard.io/frozen";
/// The label on every frozen object (`kubectl get deploy -l purchaseguard.io/frozen`).
pub const FROZEN_LABEL: &str = "purchaseguard.io/frozen";

fn default_replicas_path() -> String {
    "/spec/replicas".into()
}

/// How one guarded kind is frozen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum FreezeAction {
    /// The scale subresource to 0 replicas (Deployments, StatefulSets, ReplicaSets, custom
    /// resources with a scale subresource). `replicasPath` is where the object keeps its
    /// replicas (the CRD's `specReplicasPath` as a JSON pointer).
    Scale {
        #[serde(default = "default_replicas_path")]
        replicas_path: String,
    },
    /// A JSON merge patch (RFC 7386) of the object, such as `{"spec": {"running": false}}`.
    Patch { patch: Value },
    /// `spec.suspend: true` (Jobs, CronJobs).
    Suspend,
}

impl FreezeAction {
    /// The default action of a kind by its API group and resource: scale for apps/v1
    /// Deployments, ReplicaSets and StatefulSets, suspend for batch/v1 Jobs and CronJobs,
    /// `spec.running: false` for the sample VirtualMachine. Other kinds have none (DaemonSets
    /// and Pods cannot be frozen without deleting them).
    pub fn for_kind(group: &str, resource: &str) -> Option<Self> {
        match (group, resource) {
            ("apps", "deployments" | "replicasets" | "statefulsets") => Some(FreezeAction::Scale {
                replicas_path: default_replicas_path(),
            }),
            ("batch", "jobs" | "cronjobs") => Some(FreezeAction::Suspend),
            ("compute.example.com", "virtualmachines") => Some(FreezeAction::Patch {
                patch: serde_json::json!({"spec": {"running": false}}),
            }),
            _ => None,
        }
    }

    /// The merge patch the action applies to the object; `None` for scale (the scale
    /// subresource is written instead).
    pub fn merge_patch(&self) -> Option<Value> {
        match self {
            FreezeAction::Scale { .. } => None,
            FreezeAction::Patch { patch } => Some(patch.clone()),
            FreezeAction::Suspend => Some(serde_json::json!({"spec": {"suspend": true}})),
        }
    }

    /// The name of the action, as configured.
    pub fn name(&self) -> &'static str {
        match self {
            FreezeAction::Scale { .. } => "scale",
            FreezeAction::Patch { .. } => "patch",
            FreezeAction::Suspend => "suspend",
        }
    }

    /// Checks the action: a JSON pointer for scale; for patch, an object that changes at least
    /// one field under `/spec` and nothing in `/metadata` or `/status`.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            FreezeAction::Scale { replicas_path } => {
                if !replicas_path.starts_with('/') || replicas_path.len() < 2 {
                    return Err(format!(
                        "freeze.replicasPath: {replicas_path:?} is not a JSON pointer to a field (like \"/spec/replicas\")"
                    ));
                }
                Ok(())
            }
            FreezeAction::Suspend => Ok(()),
            FreezeAction::Patch { patch } => {
                let Some(fields) = patch.as_object() else {
                    return Err(format!(
                        "freeze.patch: must be a JSON merge patch object such as {{\"spec\": {{\"running\": false}}}}, got {patch}"
                    ));
                };
                if let Some(key) = fields.keys().find(|k| *k != "spec") {
                    return Err(format!(
                        "freeze.patch: may change fields under spec only, not {key:?} (metadata belongs to purchase-guard's record, status to the kind's controller)"
                    ));
                }
                let mut leaves = Vec::new();
                leaves_of(patch, &mut String::new(), &mut leaves);
                if leaves.is_empty() {
                    return Err(
                        "freeze.patch: changes no field; name at least one, such as {\"spec\": {\"running\": false}}"
                            .into(),
                    );
                }
                if let Some((path, _)) = leaves.iter().find(|(_, v)| v.is_null()) {
                    return Err(format!(
                        "freeze.patch: {path} is null: a freeze sets fields to values, it does not remove them"
                    ));
                }
                Ok(())
            }
        }
    }
}

/// What a freeze changed, remembered on the object (the annotation [`FROZEN_ANNOTATION`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrozenRecord {
    /// The customer whose freeze this is.
    pub customer: String,
    /// When the object was frozen (RFC 3339).
    pub since: String,
    /// Why: who froze the customer, with the decision's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    #[serde(flatten)]
    pub undo: Undo,
    /// The latest write of the object's specification by someone else than purchase-guard
    /// before the freeze: the freeze takes the fields it writes from their owners (their
    /// managedFields entries may go), and the audit still reads this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<SpecWrite>,
}

/// A write of an object's specification: who (the field manager) and when (RFC 3339).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecWrite {
    pub manager: String,
    pub time: String,
}

/// The values to put back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Undo {
    /// The replicas before the object was scaled to 0, and where the object keeps them.
    Scale { replicas: i64, replicas_path: String },
    /// The merge patch applied, and the values its fields had before (`null`: absent).
    Patch { applied: Value, previous: Value },
}

impl FrozenRecord {
    /// The record for freezing `object` now with `action`: the values the action is about to
    /// change. Replicas absent from the object count as 1 (the Kubernetes default).
    pub fn new(action: &FreezeAction, customer: &str, since: &str, why: &str, object: &Value) -> Self {
        let undo = match action {
            FreezeAction::Scale { replicas_path } => Undo::Scale {
                replicas: object.pointer(replicas_path).and_then(Value::as_i64).unwrap_or(1),
                replicas_path: replicas_path.clone(),
            },
            FreezeAction::Patch { .. } | FreezeAction::Suspend => {
                let applied = action.merge_patch().unwrap_or(Value::Null);
                let previous = previous_values(&applied, object);
                Undo::Patch { applied, previous }
            }
        };
        FrozenRecord {
            customer: customer.into(),
            since: since.into(),
            why: why.into(),
            undo,
            written: None,
        }
    }

    /// The record of an object, if it has one; an annotation that cannot be read is an error
    /// that says so (it was written by someone else than purchase-guard).
    pub fn of(object: &Value) -> Result<Option<Self>, String> {
        let Some(text) = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(FROZEN_ANNOTATION))
        else {
            return Ok(None);
        };
        let Some(text) = text.as_str() else {
            return Err(format!(
                "metadata.annotations[\"{FROZEN_ANNOTATION}\"]: must be a string"
            ));
        };
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| format!("metadata.annotations[\"{FROZEN_ANNOTATION}\"]: not a freeze record: {e}"))
    }

    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        // A record is plain data: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether `object` is frozen as this record says (its frozen fields at their frozen values).
    pub fn holds(&self, object: &Value) -> bool {
        match &self.undo {
            Undo::Scale { replicas_path, .. } => object.pointer(replicas_path).and_then(Value::as_i64) == Some(0),
            Undo::Patch { applied, .. } => is_applied(applied, object),
        }
    }

    /// The merge patch that writes this record (annotation and label) onto an object at
    /// `resource_version` (the precondition: the write fails if the object changed since it
    /// was read), together with the action's own patch when it has one: one atomic write.
    pub fn freeze_patch(&self, resource_version: &str) -> Value {
        let mut patch = match &self.undo {
            Undo::Patch { applied, .. } => applied.clone(),
            Undo::Scale { .. } => Value::Object(Map::new()),
        };
        let metadata = serde_json::json!({
            "resourceVersion": resource_version,
            "annotations": {FROZEN_ANNOTATION: self.to_annotation()},
            "labels": {FROZEN_LABEL: "true"},
        });
        if let Some(p) = patch.as_object_mut() {
            p.insert("metadata".into(), metadata);
        }
        patch
    }

    /// The unfreeze of `object`: the merge patch that puts back the remembered values of the
    /// fields still at their frozen values (a field someone changed since is left as it is) and
    /// removes the record, and for scale, the replicas to set through the scale subresource
    /// first (none when the object is no longer at 0).
    pub fn restore(&self, object: &Value, resource_version: &str) -> Restore {
        let metadata = serde_json::json!({
            "resourceVersion": resource_version,
            "annotations": {FROZEN_ANNOTATION: null},
            "labels": {FROZEN_LABEL: null},
        });
        match &self.undo {
            Undo::Scale {
                replicas,
                replicas_path,
            } => {
                let at_zero = object.pointer(replicas_path).and_then(Value::as_i64) == Some(0);
                Restore {
                    scale_to: (at_zero && *replicas != 0).then_some(*replicas),
                    patch: serde_json::json!({"metadata": metadata}),
                }
            }
            Undo::Patch { applied, previous } => {
                let mut leaves = Vec::new();
                leaves_of(applied, &mut String::new(), &mut leaves);
                let still = |p: &str| object.pointer(p) == leaves.iter().find(|(l, _)| l == p).map(|(_, v)| v);
                let mut patch = Value::Object(Map::new());
                for (path, _) in leaves.iter().filter(|(p, _)| still(p)) {
                    // Where the previous value was recorded: the leaf, or the ancestor that was
                    // absent (or not an object) before the freeze created it.
                    let (at, before) = recorded_at(previous, path);
                    let whole = leaves.iter().filter(|(l, _)| is_under(l, &at)).all(|(l, _)| still(l));
                    if whole {
                        set_path_once(&mut patch, &at, before);
                    } else {
                        // Someone changed a field beside it: remove only what the freeze set.
                        set_path_once(&mut patch, path, Value::Null);
                    }
                }
                if let Some(p) = patch.as_object_mut() {
                    p.insert("metadata".into(), metadata);
                }
                Restore { scale_to: None, patch }
            }
        }
    }
}

/// An unfreeze of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restore {
    /// Replicas to set through the scale subresource before the patch.
    pub scale_to: Option<i64>,
    /// The merge patch: the remembered fields and the removal of the record.
    pub patch: Value,
}

/// Whether resources of this billing mode are frozen (R8: pay-per-use and spot, never prepaid).
pub fn freezes(mode: BillingMode) -> bool {
    !matches!(mode, BillingMode::YearlyMonthly)
}

/// What the customer's state asks of its resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// Frozen (R8) since `since`, for the reason `why`; `release_due`: the retention period
    /// has ended.
    Frozen {
        since: String,
        why: String,
        release_due: bool,
    },
    /// Not frozen: anything frozen is restored (R9).
    Thawed,
}

/// What one pass of the controller does to one object of a kind with a freeze action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing: the object is as it should be.
    Nothing(Settled),
    /// Write the new record (with the precondition), then apply the action.
    Freeze(FrozenRecord),
    /// The record is there but the object was changed back: apply the action again, keeping
    /// the record (drift correction).
    Reapply(FrozenRecord),
    /// Put the remembered values back and remove the record.
    Restore(FrozenRecord),
    /// The retention period ended and release is enabled: delete the object.
    Release,
    /// The record cannot be read: nothing is written, the object is reported.
    Unreadable(String),
}

/// Why an object needs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Frozen as its record says.
    Frozen,
    /// Frozen, retention ended, release not enabled: awaiting release.
    ReleaseDue,
    /// Prepaid, or the customer is not frozen and the object carries no record.
    NotFrozen,
}

/// The step for one object of `customer` under `desired`. `mode` is the object's billing mode
/// (an object whose label cannot be read counts as pay-per-use: it is frozen, not spared).
pub fn plan(
    action: &FreezeAction,
    customer: &str,
    desired: &Desired,
    release_enabled: bool,
    mode: BillingMode,
    object: &Value,
) -> Step {
    let record = match FrozenRecord::of(object) {
        Ok(r) => r,
        Err(e) => return Step::Unreadable(e),
    };
    match (desired, record) {
        // Prepaid resources are never frozen; one that carries a record (its label was changed
        // by someone allowed to) is restored.
        (_, Some(r)) if !freezes(mode) => Step::Restore(r),
        (_, None) if !freezes(mode) => Step::Nothing(Settled::NotFrozen),
        (Desired::Thawed, Some(r)) => Step::Restore(r),
        (Desired::Thawed, None) => Step::Nothing(Settled::NotFrozen),
        (Desired::Frozen { release_due: true, .. }, Some(_)) if release_enabled => Step::Release,
        (Desired::Frozen { since, why, .. }, None) => {
            Step::Freeze(FrozenRecord::new(action, customer, since, why, object))
        }
        (Desired::Frozen { release_due, .. }, Some(r)) => {
            if !r.holds(object) {
                Step::Reapply(r)
            } else if *release_due {
                Step::Nothing(Settled::ReleaseDue)
            } else {
                Step::Nothing(Settled::Frozen)
            }
        }
    }
}

/// A request that would undo a freeze, refused for anyone but purchase-guard: for an update of
/// the object, changing or removing its record or label, or moving a frozen field away from
/// its frozen value; for a create, carrying a record (a forged one would be "restored" at
/// unfreeze). `None`: the request undoes nothing.
pub fn undoes_freeze(old: Option<&Value>, new: Option<&Value>) -> Option<String> {
    fn annotation(o: Option<&Value>) -> Option<&Value> {
        o?.get("metadata")?.get("annotations")?.get(FROZEN_ANNOTATION)
    }
    fn label(o: Option<&Value>) -> Option<&Value> {
        o?.get("metadata")?.get("labels")?.get(FROZEN_LABEL)
    }
    let new = new?;
    if annotation(old) != annotation(Some(new)) || label(old) != label(Some(new)) {
        return Some(format!(
            "the annotation and label {FROZEN_ANNOTATION} are written by purchase-guard alone: they remember what a freeze changed and are removed when the customer is unfrozen (R9)"
        ));
    }
    let record = FrozenRecord::of(old?).ok()??;
    match &record.undo {
        Undo::Scale { replicas_path, .. } => {
            let replicas = new.pointer(replicas_path).and_then(Value::as_i64).unwrap_or(0);
            (replicas > 0).then(|| {
                format!(
                    "it is frozen: {} stays 0 until the customer is unfrozen (R9)",
                    dotted(replicas_path)
                )
            })
        }
        Undo::Patch { applied, .. } => {
            let mut leaves = Vec::new();
            leaves_of(applied, &mut String::new(), &mut leaves);
            let moved: Vec<String> = leaves
                .iter()
                .filter(|(path, frozen)| new.pointer(path) != Some(frozen))
                .map(|(path, frozen)| format!("{} stays {frozen}", dotted(path)))
                .collect();
            (!moved.is_empty())
                .then(|| format!("it is frozen: {} until the customer is unfrozen (R9)", moved.join(", ")))
        }
    }
}

/// A request on the scale subresource of a frozen customer's resource that would raise its
/// replicas (the customer's own, or a HorizontalPodAutoscaler's). `None`: it does not.
pub fn scale_undoes_freeze(old: Option<&Value>, new: Option<&Value>) -> Option<String> {
    let replicas = |o: Option<&Value>| o.and_then(|o| o.pointer("/spec/replicas")).and_then(Value::as_i64);
    let after = replicas(new)?;
    (after > replicas(old).unwrap_or(0) && after > 0).then(|| {
        "the customer's resources are frozen: scaling up is refused until the customer is unfrozen (R9)".to_string()
    })
}

/// `/spec/replicas` as `spec.replicas`.
fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The values `object` has at the leaves of `patch` (`null` where absent), as a merge patch of
/// the same shape.
/// An ancestor that is absent, or not an object, is recorded as it was (`null`: absent) in
/// place of the leaves below it, so that restoring it removes what the freeze created.
fn previous_values(patch: &Value, object: &Value) -> Value {
    let mut leaves = Vec::new();
    leaves_of(patch, &mut String::new(), &mut leaves);
    let mut out = Value::Object(Map::new());
    for (path, _) in leaves {
        let mut at = String::new();
        let mut recorded = false;
        for key in path.trim_start_matches('/').split('/') {
            at.push('/');
            at.push_str(key);
            match object.pointer(&at) {
                Some(v) if v.is_object() && at != path => continue,
                Some(v) => set_path_once(&mut out, &at, v.clone()),
                None => set_path_once(&mut out, &at, Value::Null),
            }
            recorded = true;
            break;
        }
        debug_assert!(recorded, "a leaf path has at least one key");
    }
    out
}

/// Where `previous` recorded the value for `path`: the first prefix holding something other
/// than an object, and that value (`null` when nothing was recorded).
fn recorded_at(previous: &Value, path: &str) -> (String, Value) {
    let mut at = String::new();
    for key in path.trim_start_matches('/').split('/') {
        at.push('/');
        at.push_str(key);
        match previous.pointer(&at) {
            Some(v) if v.is_object() && at != path => continue,
            Some(v) => return (at, v.clone()),
            None => return (path.to_string(), Value::Null),
        }
    }
    (path.to_string(), Value::Null)
}

/// Whether `path` is `ancestor` or below it.
fn is_under(path: &str, ancestor: &str) -> bool {
    path == ancestor || path.strip_prefix(ancestor).is_some_and(|rest| rest.starts_with('/'))
}

/// [`set_path`], unless a prefix of `pointer` already holds a value that is not an object (a
/// whole ancestor is already recorded).
fn set_path_once(target: &mut Value, pointer: &str, value: Value) {
    let mut at = String::new();
    for key in pointer.trim_start_matches('/').split('/') {
        at.push('/');
        at.push_str(key);
        if at != pointer && target.pointer(&at).is_some_and(|v| !v.is_object()) {
            return;
        }
    }
    set_path(target, pointer, value);
}

/// Whether every leaf of `patch` has its value in `object` (a `null` leaf: absent).
fn is_applied(patch: &Value, object: &Value) -> bool {
    let mut leaves = Vec::new();
    leaves_of(patch, &mut String::new(), &mut leaves);
    leaves.iter().all(|(path, value)| match value {
        Value::Null => object.pointer(path).is_none_or(Value::is_null),
        v => object.pointer(path) == Some(v),
    })
}

/// The leaves of a merge patch (values that are not objects), as JSON pointers.
/// The leaves of a merge patch, as (JSON pointer, value).
pub fn leaves_of(patch: &Value, prefix: &mut String, out: &mut Vec<(String, Value)>) {
    match patch.as_object() {
        Some(fields) => {
            for (key, value) in fields {
                let len = prefix.len();
                prefix.push('/');
                prefix.push_str(&key.replace('~', "~0").replace('/', "~1"));
                leaves_of(value, prefix, out);
                prefix.truncate(len);
            }
        }
        None if !prefix.is_empty() => out.push((prefix.clone(), patch.clone())),
        None => {}
    }
}

/// Sets `value` at `pointer` in `target`, creating objects on the way.
fn set_path(target: &mut Value, pointer: &str, value: Value) {
    let keys: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut at = target;
    for (i, key) in keys.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(fields) = at.as_object_mut() else { return };
        if i + 1 == keys.len() {
            fields.insert(key.clone(), value);
            return;
        }
        at = fields.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A retention period as written in configuration and on Partners: hours, minutes and seconds
/// such as `360h`, `90m` or `1h30m`. The error names what is allowed.
pub fn parse_retention(text: &str) -> Result<u64, String> {
    let err = || {
        format!("{text:?} is not a retention period such as \"360h\", \"90m\" or \"1h30m\" (hours, minutes, seconds)")
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut seen = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(err()),
        };
        // Units in order, each once, each with a number.
        if digits.is_empty() || seen.contains(c) || seen.chars().any(|s| "hms".find(s) > "hms".find(c)) {
            return Err(err());
        }
        seen.push(c);
        let n: u64 = digits.parse().map_err(|_| err())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(err)?;
        digits.clear();
    }
    if !digits.is_empty() || seen.is_empty() {
        return Err(err());
    }
    if total == 0 {
        return Err(format!("{text:?}: the retention period must be longer than zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64) -> Value {
        json!({"metadata": {"name": "web", "resourceVersion": "7"}, "spec": {"replicas": replicas}})
    }

    fn with_record(mut object: Value, record: &FrozenRecord) -> Value {
        object["metadata"]["annotations"] = json!({FROZEN_ANNOTATION: record.to_annotation()});
        object["metadata"]["labels"] = json!({FROZEN_LABEL: "true"});
        object
    }

    fn frozen(since: &str) -> Desired {
        Desired::Frozen {
            since: since.into(),
            why: "fraud".into(),
            release_due: false,
        }
    }

    #[test]
    fn a_scale_freeze_remembers_the_replicas_once_and_restores_them() {
        let action = FreezeAction::for_kind("apps", "deployments").expect("an action");
        let step = plan(
            &action,
            "acme",
            &frozen("t0"),
            false,
            BillingMode::PayPerUse,
            &deployment(3),
        );
        let Step::Freeze(record) = step else { panic!("{step:?}") };
        assert_eq!(
            record.undo,
            Undo::Scale {
                replicas: 3,
                replicas_path: "/spec/replicas".into()
            }
        );
        // Crash after the record, before the scale: the next pass re-applies, keeping 3.
        let half = with_record(deployment(3), &record);
        assert_eq!(
            plan(&action, "acme", &frozen("t1"), false, BillingMode::PayPerUse, &half),
            Step::Reapply(record.clone())
        );
        let done = with_record(deployment(0), &record);
        assert_eq!(
            plan(&action, "acme", &frozen("t1"), false, BillingMode::PayPerUse, &done),
            Step::Nothing(Settled::Frozen)
        );
        let restore = record.restore(&done, "9");
        assert_eq!(restore.scale_to, Some(3));
        assert_eq!(
            restore.patch,
            json!({"metadata": {"resourceVersion": "9", "annotations": {FROZEN_ANNOTATION: null}, "labels": {FROZEN_LABEL: null}}})
        );
        // Already scaled back (a crash between the scale and the record's removal): only the
        // record goes.
        assert_eq!(record.restore(&half, "9").scale_to, None);
    }

    #[test]
    fn a_patch_freeze_restores_only_fields_still_frozen_and_absent_ones_as_absent() {
        let action = FreezeAction::Patch {
            patch: json!({"spec": {"running": false, "power": {"state": "Off"}}}),
        };
        let vm = json!({"metadata": {}, "spec": {"running": true, "cpus": 2}});
        let record = FrozenRecord::new(&action, "acme", "t0", "fraud", &vm);
        assert_eq!(
            record.undo,
            Undo::Patch {
                applied: json!({"spec": {"running": false, "power": {"state": "Off"}}}),
                previous: json!({"spec": {"running": true, "power": null}}),
            }
        );
        let patch = record.freeze_patch("5");
        assert_eq!(patch["spec"], json!({"running": false, "power": {"state": "Off"}}));
        assert_eq!(patch["metadata"]["resourceVersion"], "5");
        let mut frozen_vm = with_record(
            json!({"metadata": {}, "spec": {"running": false, "cpus": 2, "power": {"state": "Off"}}}),
            &record,
        );
        assert!(record.holds(&frozen_vm));
        // Untouched: what the freeze created (spec.power) goes as a whole.
        assert_eq!(
            record.restore(&frozen_vm, "6").patch["spec"],
            json!({"running": true, "power": null})
        );
        // Someone allowed to moved power.state meanwhile: it is left as it is.
        frozen_vm["spec"]["power"]["state"] = json!("Standby");
        assert!(!record.holds(&frozen_vm));
        let restore = record.restore(&frozen_vm, "6");
        assert_eq!(restore.patch["spec"], json!({"running": true}));
    }

    #[test]
    fn prepaid_resources_are_never_frozen_and_release_waits_for_its_switch() {
        let action = FreezeAction::Suspend;
        let job = json!({"metadata": {}, "spec": {"suspend": false}});
        assert_eq!(
            plan(&action, "acme", &frozen("t0"), true, BillingMode::YearlyMonthly, &job),
            Step::Nothing(Settled::NotFrozen)
        );
        let record = FrozenRecord::new(&action, "acme", "t0", "fraud", &job);
        let frozen_job = with_record(json!({"metadata": {}, "spec": {"suspend": true}}), &record);
        let due = Desired::Frozen {
            since: "t0".into(),
            why: "fraud".into(),
            release_due: true,
        };
        assert_eq!(
            plan(&action, "acme", &due, false, BillingMode::Spot, &frozen_job),
            Step::Nothing(Settled::ReleaseDue)
        );
        assert_eq!(
            plan(&action, "acme", &due, true, BillingMode::Spot, &frozen_job),
            Step::Release
        );
        assert_eq!(
            plan(&action, "acme", &Desired::Thawed, true, BillingMode::Spot, &frozen_job),
            Step::Restore(record.clone())
        );
        // Its label now says prepaid (an administrator's change): restored.
        assert_eq!(
            plan(&action, "acme", &due, true, BillingMode::YearlyMonthly, &frozen_job),
            Step::Restore(record)
        );
    }

    #[test]
    fn a_forged_or_unreadable_record_is_never_trusted() {
        let mut object = deployment(0);
        object["metadata"]["annotations"] = json!({FROZEN_ANNOTATION: "{\"replicas\": 100}"});
        assert!(matches!(
            plan(
                &FreezeAction::Suspend,
                "acme",
                &Desired::Thawed,
                false,
                BillingMode::PayPerUse,
                &object
            ),
            Step::Unreadable(_)
        ));
        // Creating an object with a record, or adding one, is refused.
        assert!(undoes_freeze(None, Some(&object)).is_some());
        assert!(undoes_freeze(Some(&deployment(0)), Some(&object)).is_some());
    }

    #[test]
    fn a_record_keeps_the_last_specification_write_and_reads_records_without_it() {
        let action = FreezeAction::for_kind("apps", "deployments").expect("an action");
        let mut record = FrozenRecord::new(&action, "acme", "t0", "fraud", &deployment(3));
        assert_eq!(record.written, None);
        let bare = record.to_annotation();
        assert!(!bare.contains("written"), "{bare}");
        record.written = Some(SpecWrite {
            manager: "kubectl-patch".into(),
            time: "2026-11-27T10:00:00Z".into(),
        });
        let read = FrozenRecord::of(&with_record(deployment(0), &record)).expect("readable");
        assert_eq!(read.as_ref(), Some(&record));
        // A record written before the field existed reads as having none.
        let mut old = with_record(deployment(0), &record);
        old["metadata"]["annotations"][FROZEN_ANNOTATION] = json!(bare);
        assert_eq!(FrozenRecord::of(&old).expect("readable").and_then(|r| r.written), None);
    }

    #[test]
    fn undoing_a_freeze_is_recognised_in_every_form() {
        let action = FreezeAction::for_kind("apps", "deployments").expect("an action");
        let record = FrozenRecord::new(&action, "acme", "t0", "fraud", &deployment(3));
        let old = with_record(deployment(0), &record);
        // Scaling up through the object.
        let up = with_record(deployment(2), &record);
        assert!(
            undoes_freeze(Some(&old), Some(&up))
                .expect("refused")
                .contains("spec.replicas stays 0")
        );
        // Removing the record.
        let mut bare = old.clone();
        bare["metadata"]["annotations"] = json!({});
        assert!(undoes_freeze(Some(&old), Some(&bare)).is_some());
        let mut unlabelled = old.clone();
        unlabelled["metadata"]["labels"] = json!({});
        assert!(undoes_freeze(Some(&old), Some(&unlabelled)).is_some());
        // A rename or any other change that leaves the freeze alone: fine.
        let mut renamed = old.clone();
        renamed["metadata"]["annotations"]["purchaseguard.io/display-name"] = json!("web");
        renamed["metadata"]["annotations"][FROZEN_ANNOTATION] =
            old["metadata"]["annotations"][FROZEN_ANNOTATION].clone();
        assert_eq!(undoes_freeze(Some(&old), Some(&renamed)), None);
        // Through the scale subresource: any raise.
        let scale = |n: i64| json!({"kind": "Scale", "spec": {"replicas": n}});
        assert!(scale_undoes_freeze(Some(&scale(0)), Some(&scale(1))).is_some());
        assert_eq!(scale_undoes_freeze(Some(&scale(2)), Some(&scale(1))), None);
        assert_eq!(scale_undoes_freeze(Some(&scale(0)), Some(&scale(0))), None);
        // The patch action: starting the VM.
        let vm_action = FreezeAction::for_kind("compute.example.com", "virtualmachines").expect("an action");
        let vm = json!({"metadata": {}, "spec": {"running": true}});
        let vm_record = FrozenRecord::new(&vm_action, "acme", "t0", "fraud", &vm);
        let stopped = with_record(json!({"metadata": {}, "spec": {"running": false}}), &vm_record);
        let started = with_record(json!({"metadata": {}, "spec": {"running": true}}), &vm_record);
        assert!(
            undoes_freeze(Some(&stopped), Some(&started))
                .expect("refused")
                .contains("spec.running stays false")
        );
    }

    #[test]
    fn actions_and_retention_periods_are_checked_with_what_is_allowed() {
        for (action, expected) in [
            (
                json!({"action": "patch", "patch": {"metadata": {"labels": {}}}}),
                "under spec only",
            ),
            (json!({"action": "patch", "patch": {"spec": {}}}), "changes no field"),
            (json!({"action": "patch", "patch": [1]}), "JSON merge patch object"),
            (
                json!({"action": "patch", "patch": {"spec": {"running": null}}}),
                "/spec/running is null",
            ),
            (
                json!({"action": "scale", "replicasPath": "spec.replicas"}),
                "not a JSON pointer",
            ),
        ] {
            let action: FreezeAction = serde_json::from_value(action).expect("parses");
            assert!(action.validate().expect_err("invalid").contains(expected));
        }
        let err = serde_json::from_value::<FreezeAction>(json!({"action": "stop"})).expect_err("unknown");
        assert!(err.to_string().contains("unknown variant `stop`"), "{err}");
        assert_eq!(parse_retention("360h"), Ok(360 * 3600));
        assert_eq!(parse_retention("1h30m5s"), Ok(5405));
        for bad in ["", "15d", "h", "30m1h", "1h1h", "0s", "10"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
