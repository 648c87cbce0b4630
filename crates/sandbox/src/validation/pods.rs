//! What a Pod may change once it exists (`pkg/apis/core/validation`: `ValidatePodUpdate`,
//! `ValidatePodEphemeralContainersUpdate`, `ValidatePodResize`), its QoS class, and the
//! requests-within-limits rule of every container's resources.
//!
//! A Pod's spec is fixed at creation but for a few fields; ephemeral containers are added
//! only through `pods/ephemeralcontainers` (and never removed or changed), and CPU and memory
//! change only through `pods/resize`, without moving the Pod to another QoS class.

use super::Problem;
use crate::quantity::nanos;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// kube-apiserver's refusal of any other change of a Pod's spec through the Pod itself. It
/// follows that line with a Go diff of the two specs, which is not reproduced.
pub const UPDATABLE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The resources a resize may change.
const RESIZABLE: [&str; 2] = ["cpu", "memory"];

/// `v` without what Go's semantic equality cannot tell from an absent field: nulls, `false`,
/// zeros, empty strings, lists and maps (at any depth; list elements stay, in order).
pub fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

/// Whether Go's semantic equality reads `v` as its zero (at any depth).
pub fn go_zero(v: &Value) -> bool {
    is_empty(&semantic(v))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn list<'a>(spec: &'a Value, field: &str) -> &'a [Value] {
    spec.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// An update or patch of the Pod itself: only images, `activeDeadlineSeconds`, added
/// tolerations, a negative grace period set to 1 and removed scheduling gates may differ.
pub fn update(spec: &Value, old: &Value, out: &mut Vec<Problem>) {
    let mut munged = spec.clone();
    for field in ["containers", "initContainers"] {
        if let Some(new) = munged.get_mut(field).and_then(Value::as_array_mut) {
            for (c, was) in new.iter_mut().zip(list(old, field)) {
                if let (Some(c), Some(image)) = (c.as_object_mut(), was.get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    let Some(m) = munged.as_object_mut() else { return };
    let keep_old = |m: &mut Map<String, Value>, field: &str| match old.get(field) {
        Some(v) => {
            m.insert(field.into(), v.clone());
        }
        None => {
            m.remove(field);
        }
    };
    keep_old(m, "activeDeadlineSeconds");
    active_deadline(spec, old, out);
    let had = |field: &str, v: &Value| list(old, field).iter().any(|o| semantic(o) == semantic(v));
    let tolerations = list(spec, "tolerations");
    if list(old, "tolerations")
        .iter()
        .all(|o| tolerations.iter().any(|t| semantic(t) == semantic(o)))
    {
        keep_old(m, "tolerations");
    }
    let grace = |v: &Value| v.get("terminationGracePeriodSeconds").and_then(Value::as_i64);
    if grace(old).is_some_and(|g| g < 0) && grace(spec) == Some(1) {
        keep_old(m, "terminationGracePeriodSeconds");
    }
    if list(spec, "schedulingGates").iter().all(|g| had("schedulingGates", g)) {
        keep_old(m, "schedulingGates");
    }
    if semantic(&munged) != semantic(old) {
        out.push(Problem::forbidden("spec", UPDATABLE));
    }
}

/// `activeDeadlineSeconds` may be set, or lowered, never raised nor removed.
fn active_deadline(spec: &Value, old: &Value, out: &mut Vec<Problem>) {
    const FIELD: &str = "spec.activeDeadlineSeconds";
    let of = |s: &Value| s.get("activeDeadlineSeconds").and_then(Value::as_i64);
    match (of(spec), of(old)) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => out.push(Problem::invalid(
            FIELD,
            &n.to_string(),
            "must be between 0 and 2147483647, inclusive",
        )),
        (Some(n), Some(was)) if n > was => out.push(Problem::invalid(
            FIELD,
            &n.to_string(),
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => out.push(Problem::invalid(
            FIELD,
            r#""null""#,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
}

/// A Pod created with ephemeral containers: they are added to running Pods only.
pub fn create(spec: &Value, out: &mut Vec<Problem>) {
    if !list(spec, "ephemeralContainers").is_empty() {
        out.push(Problem::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
}

/// The fields an ephemeral container may not have: it runs no service and reserves nothing.
const NOT_FOR_EPHEMERAL: [&str; 6] = [
    "ports",
    "resources",
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
];

/// `pods/ephemeralcontainers`: the existing ephemeral containers unchanged, the new ones
/// valid containers with unique names and none of the fields ephemeral ones cannot have.
pub fn ephemeral_update(spec: &Value, old: &Value, volumes: &HashSet<String>, out: &mut Vec<Problem>) {
    let new = list(spec, "ephemeralContainers");
    let name = |c: &Value| c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    for was in list(old, "ephemeralContainers") {
        let n = name(was);
        match new.iter().find(|c| name(c) == n) {
            None => out.push(Problem::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {n:?} may not be removed"),
            )),
            Some(c) if semantic(c) != semantic(was) => out.push(Problem::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {n:?} may not be changed"),
            )),
            Some(_) => {}
        }
    }
    let mut names: HashSet<String> = ["initContainers", "containers"]
        .into_iter()
        .flat_map(|f| list(spec, f))
        .map(name)
        .collect();
    let targets = names.clone();
    let existing: Vec<String> = list(old, "ephemeralContainers").iter().map(name).collect();
    for (i, c) in new.iter().enumerate() {
        let at = format!("spec.ephemeralContainers[{i}]");
        if existing.contains(&name(c)) {
            names.insert(name(c));
            continue;
        }
        super::container(c, &at, volumes, out);
        if !names.insert(name(c)) {
            out.push(Problem::duplicate(format!("{at}.name"), &name(c)));
        }
        for field in NOT_FOR_EPHEMERAL {
            if c.get(field).is_some_and(|v| !is_empty(&semantic(v))) {
                out.push(Problem::forbidden(
                    format!("{at}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        if let Some(target) = c
            .get("targetContainerName")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && !targets.contains(*t))
        {
            out.push(Problem::not_found(format!("{at}.targetContainerName"), target));
        }
    }
}

/// The Pod a `pods/resize` request leaves: the old Pod with the requested `resources` and
/// `resizePolicy` of each container (by name); whatever else the request says is dropped.
pub fn merge_resize(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    for field in ["containers", "initContainers"] {
        let requested = new
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let Some(containers) = out.pointer_mut(&format!("/spec/{field}")).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut() {
            let Some(asked) = requested.iter().find(|r| r.get("name") == c.get("name")) else {
                continue;
            };
            let Some(c) = c.as_object_mut() else { continue };
            for part in ["resources", "resizePolicy"] {
                match asked.get(part) {
                    Some(v) if !v.is_null() => {
                        c.insert(part.into(), v.clone());
                    }
                    _ => {
                        c.remove(part);
                    }
                }
            }
        }
    }
    out
}

/// `pods/resize`: CPU and memory of containers and sidecars only, none removed, and the
/// QoS class the Pod was created with kept.
pub fn resize(pod: &Value, old_pod: &Value, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let spec = pod.get("spec").unwrap_or(&empty);
    let old = old_pod.get("spec").unwrap_or(&empty);
    let mut only_resizable = true;
    for field in ["containers", "initContainers"] {
        for (i, (c, was)) in list(spec, field).iter().zip(list(old, field)).enumerate() {
            let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            if field == "initContainers" && !sidecar {
                if semantic(&c["resources"]) != semantic(&was["resources"]) {
                    out.push(Problem::forbidden(
                        format!("spec.{field}[{i}].resources"),
                        "resources for non-sidecar init containers are immutable",
                    ));
                }
                continue;
            }
            for part in ["requests", "limits"] {
                let (now, before) = (section(c, part), section(was, part));
                for key in before.into_iter().chain(now).flat_map(Map::keys) {
                    let resizable = RESIZABLE.contains(&key.as_str());
                    match (before.and_then(|m| m.get(key)), now.and_then(|m| m.get(key))) {
                        (Some(_), None) if resizable => out.push(Problem::forbidden(
                            format!("spec.{field}[{i}].resources.{part}[{key}]"),
                            &format!("resource {part} cannot be removed"),
                        )),
                        (a, b) if !resizable && a != b => only_resizable = false,
                        _ => {}
                    }
                }
            }
            let other = |c: &Value| {
                let mut c = semantic(c);
                if let Some(m) = c.as_object_mut() {
                    m.remove("resources");
                }
                c
            };
            if other(c) != other(was) {
                only_resizable = false;
            }
        }
    }
    if !only_resizable {
        out.push(Problem::forbidden("spec", "only cpu and memory resources are mutable"));
    }
    let stored = old_pod
        .pointer("/status/qosClass")
        .and_then(Value::as_str)
        .unwrap_or_else(|| qos_class(old));
    if qos_class(spec) != stored {
        out.push(Problem::invalid(
            "spec",
            &format!("{stored:?}"),
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
}

/// A container's `resources.requests` or `resources.limits`.
fn section<'a>(c: &'a Value, part: &str) -> Option<&'a Map<String, Value>> {
    c.get("resources").and_then(|r| r.get(part)).and_then(Value::as_object)
}

/// A Pod's QoS class, from its containers' CPU and memory (requests default to limits):
/// `Guaranteed` when every container's requests equal its limits for both, `BestEffort`
/// when no container asks for either, else `Burstable`.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in list(spec, "initContainers").iter().chain(list(spec, "containers")) {
        for resource in RESIZABLE {
            let amount = |part: &str| {
                c.pointer(&format!("/resources/{part}/{resource}"))
                    .and_then(Value::as_str)
                    .and_then(nanos)
                    .filter(|n| *n > 0)
            };
            let limit = amount("limits");
            let request = amount("requests").or(limit);
            any |= request.is_some() || limit.is_some();
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Each request no larger than the limit of the same resource.
pub fn requests_within_limits(c: &Value, at: &str, out: &mut Vec<Problem>) {
    let (Some(requests), Some(limits)) = (section(c, "requests"), section(c, "limits")) else {
        return;
    };
    for (resource, request) in requests {
        let (Some(asked), Some(limit)) = (request.as_str(), limits.get(resource).and_then(Value::as_str)) else {
            continue;
        };
        if let (Some(a), Some(l)) = (nanos(asked), nanos(limit))
            && a > l
        {
            out.push(Problem::invalid(
                format!("{at}.resources.requests[{resource}]"),
                &format!("{asked:?}"),
                &format!("must be less than or equal to {resource} limit of {limit}"),
            ));
        }
    }
}
