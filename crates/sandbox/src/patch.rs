//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch for the
//! built-in kinds served here, and a simplified server-side apply.

use crate::status::ApiError;
use serde_json::{Map, Value};

/// The patch types of the `Content-Type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        match ct {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Applies a JSON patch or a JSON merge patch.
pub fn apply_json_or_merge(kind: PatchType, target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: invalid JSON patch: {e}"
                ))
            })?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        _ => json_patch::merge(&mut doc, patch),
    }
    Ok(doc)
}

/// The merge key of a list field in the built-in kinds, by field name. Lists not named here
/// are replaced as a whole (atomic), like lists without `patchStrategy: merge`.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "webhooks" => Some("name"),
        "volumeMounts" | "volumeDevices" => Some("mountPath"),
        "ports" => Some("containerPort"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "tolerations" => None,
        _ => None,
    }
}

fn primitive_merge_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch: maps merge, `null` deletes, lists with a known merge key
/// merge by key, `$patch: delete|replace` and `$setElementOrder`, `$deleteFromPrimitiveList`
/// and `$retainKeys` directives are honoured.
pub fn apply_strategic(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    Ok(strategic(target, patch, ""))
}

fn strategic(target: &Value, patch: &Value, field: &str) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut out = p.clone();
                out.remove("$patch");
                return Value::Object(out);
            }
            let mut out = t.clone();
            if let Some(retain) = p.get("$retainKeys").and_then(Value::as_array) {
                let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
                out.retain(|k, _| keep.contains(&k.as_str()));
            }
            for (k, v) in p {
                if k == "$retainKeys" || k == "$patch" || k.starts_with("$setElementOrder/") {
                    continue;
                }
                if let Some(list_field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Some(remove)) = (out.get_mut(list_field), v.as_array()) {
                        items.retain(|i| !remove.contains(i));
                    }
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match out.get(k) {
                    Some(existing) => strategic(existing, v, k),
                    None => strip_directives(v),
                };
                out.insert(k.clone(), merged);
            }
            // Reorder merged lists as `$setElementOrder` says.
            for (k, order) in p
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("$setElementOrder/").map(|f| (f, v)))
            {
                if let (Some(Value::Array(items)), Some(order)) = (out.get_mut(k), order.as_array()) {
                    reorder(items, order, merge_key(k));
                }
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(p)) => {
            if let Some(key) = merge_key(field) {
                let mut out = t.clone();
                for item in p {
                    let id = item.get(key);
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    let pos = out.iter().position(|o| o.get(key) == id && id.is_some());
                    match (pos, delete) {
                        (Some(i), true) => {
                            out.remove(i);
                        }
                        (Some(i), false) => out[i] = strategic(&out[i], item, ""),
                        (None, false) => out.push(strip_directives(item)),
                        (None, true) => {}
                    }
                }
                Value::Array(out)
            } else if primitive_merge_list(field) {
                let mut out = t.clone();
                for item in p {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            } else {
                Value::Array(p.iter().map(strip_directives).collect())
            }
        }
        (_, p) => strip_directives(p),
    }
}

fn reorder(items: &mut [Value], order: &[Value], key: Option<&str>) {
    let position = |item: &Value| {
        order.iter().position(|o| match key {
            Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
            None => o == item,
        })
    };
    items.sort_by_key(|i| position(i).unwrap_or(usize::MAX));
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// The set of leaf field paths an object sets, as managedFields `fieldsV1` records them
/// (`f:spec: {f:replicas: {}}`). List items with a merge key are keyed `k:{...}`; other
/// lists are owned whole.
pub fn fields_of(value: &Value, field: &str) -> Value {
    match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(format!("f:{k}"), fields_of(v, k));
            }
            Value::Object(out)
        }
        Value::Array(items) => match merge_key(field) {
            Some(key) => {
                let mut out = Map::new();
                for item in items {
                    if let Some(id) = item.get(key) {
                        let k = format!("k:{}", serde_json::json!({ key: id }));
                        out.insert(k, fields_of(item, ""));
                    }
                }
                Value::Object(out)
            }
            None => Value::Object(Map::new()),
        },
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name_and_honours_directives() {
        let target = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]}}}, "metadata": {"finalizers": ["f1"], "labels": {"x": "1", "y": "2"}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "a:2"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "c:1"}]}}},
            "metadata": {"finalizers": ["f2"], "labels": {"y": null}}});
        let out = apply_strategic(&target, &patch).unwrap();
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 2);
        assert_eq!(containers[0]["image"], "a:2");
        assert_eq!(containers[0]["env"][0]["value"], "1");
        assert_eq!(containers[1]["name"], "c");
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
        assert_eq!(out["metadata"]["labels"], json!({"x": "1"}));
    }

    #[test]
    fn json_patch_test_operation_fails_the_patch() {
        let target = json!({"a": 1});
        let ok = apply_json_or_merge(
            PatchType::Json,
            &target,
            &json!([{"op": "test", "path": "/a", "value": 1}, {"op": "replace", "path": "/a", "value": 2}]),
        );
        assert_eq!(ok.unwrap(), json!({"a": 2}));
        let failed = apply_json_or_merge(
            PatchType::Json,
            &target,
            &json!([{"op": "test", "path": "/a", "value": 5}]),
        );
        assert_eq!(failed.unwrap_err().code, 422);
    }

    #[test]
    fn fields_and_paths() {
        let f = fields_of(&json!({"spec": {"replicas": 2, "template": {"x": 1}}}), "");
        let mut paths = crate::managed::paths(&f);
        paths.sort();
        assert_eq!(paths, [".spec.replicas", ".spec.template.x"]);
    }
}
