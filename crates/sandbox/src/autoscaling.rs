//! HorizontalPodAutoscalers are one resource served at `autoscaling/v2` and `autoscaling/v1`,
//! stored as v2. These are kube-apiserver's conversions between the two
//! (`pkg/apis/autoscaling/v1/conversion.go`): v1 has only a CPU utilization target; the v2
//! metrics it cannot express, the behavior, the current metrics and the conditions travel in
//! annotations of the v1 object, and come back from them.

use serde_json::{Map, Value, json};

pub const GROUP: &str = "autoscaling";
pub const PLURAL: &str = "horizontalpodautoscalers";
const KIND: &str = "HorizontalPodAutoscaler";
const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// Whether a v2 metric is the CPU utilization target that v1 expresses itself.
fn is_cpu_utilization(metric: &Value, target: &str) -> bool {
    metric["type"] == "Resource" && metric.pointer("/resource/name") == Some(&json!("cpu")) && {
        let t = metric.pointer(&format!("/resource/{target}"));
        match target {
            "target" => t.is_some_and(|t| t["type"] == "Utilization" && t.get("averageUtilization").is_some()),
            _ => t.is_some_and(|t| t.get("averageUtilization").is_some()),
        }
    }
}

fn annotations(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"].as_object_mut().expect("set above")
}

/// Drops an empty annotations map (kube-apiserver stores none).
fn tidy(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && meta
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        meta.remove("annotations");
    }
}

/// A v2 metric target (`type` with `value`, `averageValue` or `averageUtilization`) as the
/// v1 annotation's fields, whose names start with `prefix` (`target` or `current`).
fn flat_target(target: &Value, prefix: &str, out: &mut Map<String, Value>) {
    let name = |suffix: &str| format!("{prefix}{suffix}");
    for (v2, v1) in [
        ("value", "Value"),
        ("averageValue", "AverageValue"),
        ("averageUtilization", "AverageUtilization"),
    ] {
        if let Some(v) = target.get(v2) {
            out.insert(name(v1), v.clone());
        }
    }
}

/// The v2 target of a v1 annotation's metric: the reverse of [`flat_target`]; `kind` is the
/// target type the v1 fields stand for.
fn nested_target(metric: &Value, prefix: &str, status: bool) -> Value {
    let mut target = Map::new();
    for (v2, v1, kind) in [
        ("value", "Value", "Value"),
        ("averageValue", "AverageValue", "AverageValue"),
        ("averageUtilization", "AverageUtilization", "Utilization"),
    ] {
        if let Some(v) = metric.get(format!("{prefix}{v1}")) {
            target.insert(v2.into(), v.clone());
            if !status {
                target.insert("type".into(), json!(kind));
            }
        }
    }
    Value::Object(target)
}

/// What both directions of a metric's conversion share: its type, the key of its source,
/// the source, and for resource metrics the names that keep their keys (`name`, `container`).
fn parts(metric: &Value) -> Option<(&str, &'static str, &Value, Map<String, Value>)> {
    let kind = metric["type"].as_str()?;
    let key = match kind {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        _ => return None,
    };
    let source = &metric[key];
    let mut names = Map::new();
    if matches!(kind, "Resource" | "ContainerResource") {
        for name in ["name", "container"] {
            if let Some(v) = source.get(name) {
                names.insert(name.into(), v.clone());
            }
        }
    }
    Some((kind, key, source, names))
}

/// A v2 metric (spec when `status` is false, else a current metric) as the v1 annotation
/// holds it.
fn metric_to_v1(metric: &Value, status: bool) -> Value {
    let Some((kind, key, source, mut out)) = parts(metric) else {
        return metric.clone();
    };
    let word = if status { "current" } else { "target" };
    if out.is_empty() {
        out.insert(
            "metricName".into(),
            source.pointer("/metric/name").cloned().unwrap_or(Value::Null),
        );
        if let Some(s) = source.pointer("/metric/selector") {
            let selector = if kind == "External" {
                "metricSelector"
            } else {
                "selector"
            };
            out.insert(selector.into(), s.clone());
        }
        if let Some(r) = source.get("describedObject") {
            out.insert("target".into(), r.clone());
        }
    }
    let mut flat = Map::new();
    flat_target(&source[word], word, &mut flat);
    if kind == "Object" {
        // v1's Object metric names its average `averageValue`, without the prefix.
        if let Some(v) = flat.remove(&format!("{word}AverageValue")) {
            flat.insert("averageValue".into(), v);
        }
    }
    out.extend(flat);
    json!({"type": kind, key: out})
}

/// The reverse of [`metric_to_v1`].
fn metric_to_v2(metric: &Value, status: bool) -> Value {
    let Some((kind, key, source, mut out)) = parts(metric) else {
        return metric.clone();
    };
    let word = if status { "current" } else { "target" };
    if out.is_empty() {
        let mut id = json!({"name": source["metricName"]});
        let selector = if kind == "External" {
            "metricSelector"
        } else {
            "selector"
        };
        if let Some(s) = source.get(selector) {
            id["selector"] = s.clone();
        }
        out.insert("metric".into(), id);
        if let Some(r) = source.get("target").filter(|_| kind == "Object") {
            out.insert("describedObject".into(), r.clone());
        }
    }
    let mut flat = source.clone();
    if kind == "Object"
        && let Some(v) = flat.get("averageValue").cloned()
    {
        flat[format!("{word}AverageValue")] = v;
    }
    out.insert(word.into(), nested_target(&flat, word, status));
    json!({"type": kind, key: out})
}

/// The keys both versions share, copied.
fn copy_keys(from: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| from.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect()
}

const SPEC_KEYS: [&str; 3] = ["scaleTargetRef", "minReplicas", "maxReplicas"];
const STATUS_KEYS: [&str; 4] = [
    "observedGeneration",
    "lastScaleTime",
    "currentReplicas",
    "desiredReplicas",
];

/// Splits v2 metrics (`word`: `target` for the spec's, `current` for the status's) into v1's
/// CPU utilization field, set in `v1` under `cpu_field`, and the others, converted for the
/// annotation.
fn split_metrics(metrics: Option<&Value>, word: &str, cpu_field: &str, v1: &mut Map<String, Value>) -> Vec<Value> {
    let mut others = Vec::new();
    for m in metrics.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        if !v1.contains_key(cpu_field) && is_cpu_utilization(m, word) {
            let value = m.pointer(&format!("/resource/{word}/averageUtilization"));
            v1.insert(cpu_field.into(), value.cloned().unwrap_or(Value::Null));
        } else {
            others.push(metric_to_v1(m, word == "current"));
        }
    }
    others
}

/// An autoscaling/v2 HorizontalPodAutoscaler as autoscaling/v1 shows it.
pub fn to_v1(v2: &Value) -> Value {
    let mut out = v2.clone();
    out["apiVersion"] = json!("autoscaling/v1");
    out["kind"] = json!(KIND);
    if let Some(spec) = v2.get("spec").and_then(Value::as_object) {
        let mut s = copy_keys(spec, &SPEC_KEYS);
        let others = split_metrics(spec.get("metrics"), "target", "targetCPUUtilizationPercentage", &mut s);
        if !others.is_empty() {
            annotations(&mut out).insert(METRICS.into(), json!(Value::Array(others).to_string()));
        }
        if let Some(b) = spec.get("behavior") {
            annotations(&mut out).insert(BEHAVIOR.into(), json!(b.to_string()));
        }
        out["spec"] = Value::Object(s);
    }
    if let Some(status) = v2.get("status").and_then(Value::as_object) {
        let mut s = copy_keys(status, &STATUS_KEYS);
        s.entry("currentReplicas").or_insert(json!(0));
        s.entry("desiredReplicas").or_insert(json!(0));
        let others = split_metrics(
            status.get("currentMetrics"),
            "current",
            "currentCPUUtilizationPercentage",
            &mut s,
        );
        if !others.is_empty() {
            annotations(&mut out).insert(CURRENT_METRICS.into(), json!(Value::Array(others).to_string()));
        }
        if let Some(c) = status
            .get("conditions")
            .filter(|c| c.as_array().is_some_and(|c| !c.is_empty()))
        {
            annotations(&mut out).insert(CONDITIONS.into(), json!(c.to_string()));
        }
        out["status"] = Value::Object(s);
    }
    tidy(&mut out);
    out
}

/// An autoscaling/v1 HorizontalPodAutoscaler (or a part of one, such as an apply
/// configuration) as autoscaling/v2 stores it.
pub fn to_v2(v1: &Value) -> Value {
    let mut out = v1.clone();
    out["apiVersion"] = json!("autoscaling/v2");
    out["kind"] = json!(KIND);
    let mut taken = |key: &str| -> Option<Value> {
        let text = out
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)?
            .remove(key)?;
        serde_json::from_str(text.as_str()?).ok()
    };
    let other_metrics = taken(METRICS);
    let behavior = taken(BEHAVIOR);
    let current_metrics = taken(CURRENT_METRICS);
    let conditions = taken(CONDITIONS);
    if let Some(spec) = v1.get("spec").and_then(Value::as_object) {
        let mut s = copy_keys(spec, &SPEC_KEYS);
        let mut metrics: Vec<Value> = other_metrics
            .as_ref()
            .and_then(Value::as_array)
            .map(|m| m.iter().map(|m| metric_to_v2(m, false)).collect())
            .unwrap_or_default();
        if let Some(cpu) = spec.get("targetCPUUtilizationPercentage").filter(|v| !v.is_null()) {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}));
        }
        if !metrics.is_empty() {
            s.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(b) = behavior {
            s.insert("behavior".into(), b);
        }
        out["spec"] = Value::Object(s);
    }
    if let Some(status) = v1.get("status").and_then(Value::as_object) {
        let mut s = copy_keys(status, &STATUS_KEYS);
        let mut current: Vec<Value> = current_metrics
            .as_ref()
            .and_then(Value::as_array)
            .map(|m| m.iter().map(|m| metric_to_v2(m, true)).collect())
            .unwrap_or_default();
        if let Some(cpu) = status.get("currentCPUUtilizationPercentage").filter(|v| !v.is_null()) {
            current
                .push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}));
        }
        if !current.is_empty() {
            s.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(c) = conditions {
            s.insert("conditions".into(), c);
        }
        out["status"] = Value::Object(s);
    }
    tidy(&mut out);
    out
}

/// A response document of the v2 resource as a v1 client reads it: an object, a list, a
/// Table's objects, or a watch event; anything else (Status) unchanged.
pub fn response_to_v1(doc: &mut Value) {
    match doc.get("kind").and_then(Value::as_str) {
        Some(KIND) => *doc = to_v1(doc),
        // `kubectl get` asks for Tables that include the objects.
        Some("Table") => {
            if let Some(rows) = doc.get_mut("rows").and_then(Value::as_array_mut) {
                for row in rows.iter_mut() {
                    if let Some(object) = row.get_mut("object")
                        && object.get("kind").and_then(Value::as_str) == Some(KIND)
                    {
                        *object = to_v1(object);
                    }
                }
            }
        }
        Some("HorizontalPodAutoscalerList") => {
            doc["apiVersion"] = json!("autoscaling/v1");
            if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
                for item in items.iter_mut() {
                    *item = to_v1(item);
                }
            }
        }
        _ => {
            if doc.get("type").is_some()
                && let Some(object) = doc.get_mut("object")
                && object.get("kind").and_then(Value::as_str) == Some(KIND)
            {
                // Bookmarks carry only metadata: the version alone changes.
                if object.get("spec").is_some() || object.get("status").is_some() {
                    *object = to_v1(object);
                } else {
                    object["apiVersion"] = json!("autoscaling/v1");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_targets_convert_both_ways_and_other_metrics_travel_in_annotations() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": KIND, "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
                ]},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 55}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "ReadyForNewScale"}]}});
        let v1 = to_v1(&v2);
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 55);
        let others: Value =
            serde_json::from_str(v1["metadata"]["annotations"][METRICS].as_str().expect("text")).expect("json");
        assert_eq!(
            others,
            json!([{"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}}])
        );
        assert!(v1["metadata"]["annotations"][CONDITIONS].is_string());
        // And back: the same object, the annotations gone.
        assert_eq!(to_v2(&v1), v2);
    }

    #[test]
    fn a_v1_object_without_annotations_has_only_its_cpu_target() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": KIND, "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        let v2 = to_v2(&v1);
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert!(v2["metadata"].get("annotations").is_none());
        assert_eq!(to_v1(&v2), v1);
    }
}
