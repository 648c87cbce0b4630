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

/// How a strategic merge patch treats a list of a built-in kind, from the Go types'
/// `patchStrategy` and `patchMergeKey` tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListStrategy {
    /// Items merge by this key.
    Key(&'static str),
    /// A list of scalars: the patch's items are added to those there.
    Primitive,
    /// Replaced whole: lists without a patch strategy.
    Atomic,
}

/// The kinds whose `status.conditions` merge by type in a strategic merge patch.
const CONDITIONS_MERGED_BY_TYPE: &[&str] = &[
    "APIService",
    "DaemonSet",
    "Deployment",
    "FlowSchema",
    "HorizontalPodAutoscaler",
    "Job",
    "Namespace",
    "Node",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "Pod",
    "PriorityLevelConfiguration",
    "ReplicaSet",
    "ReplicationController",
    "ServiceCIDR",
    "Service",
    "StatefulSet",
];

/// The strategy of the list at `path` (field names from the object's root; list items add
/// nothing) in an object of `kind`. A field name alone does not decide: a Container's `ports`
/// merge by `containerPort`, a Service's by `port`, a NetworkPolicy's are atomic.
fn list_strategy(kind: &str, path: &[&str]) -> ListStrategy {
    use ListStrategy::{Atomic, Key, Primitive};
    let Some((&field, parents)) = path.split_last() else {
        return Atomic;
    };
    let parent = parents.last().copied().unwrap_or_default();
    let container = matches!(parent, "containers" | "initContainers" | "ephemeralContainers");
    let container_status = matches!(
        parent,
        "containerStatuses" | "initContainerStatuses" | "ephemeralContainerStatuses"
    );
    // PodSpec: a Pod's spec, or a template's anywhere in a workload.
    let pod_spec = parent == "spec" && (kind == "Pod" || parents.contains(&"template"));
    let pod_status = kind == "Pod" && parents == ["status"];
    match field {
        // The status conditions of the kinds whose Go types give them a patch strategy
        // (ComponentStatus's are at the top); the others' (CSRs', CRDs') are atomic.
        "conditions" if parents == ["status"] && CONDITIONS_MERGED_BY_TYPE.contains(&kind) => Key("type"),
        "conditions" if kind == "ComponentStatus" && parents.is_empty() => Key("type"),
        "ownerReferences" if parent == "metadata" => Key("uid"),
        "finalizers" if parent == "metadata" => Primitive,
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "imagePullSecrets"
        | "volumes"
        | "schedulingGates"
        | "resourceClaims"
            if pod_spec =>
        {
            Key("name")
        }
        "hostAliases" if pod_spec => Key("ip"),
        "topologySpreadConstraints" if pod_spec => Key("topologyKey"),
        "env" if container => Key("name"),
        "ports" if container => Key("containerPort"),
        "volumeMounts" if container || container_status => Key("mountPath"),
        "volumeDevices" if container => Key("devicePath"),
        "allocatedResourcesStatus" if container_status => Key("name"),
        "podIPs" | "hostIPs" if pod_status => Key("ip"),
        "resourceClaimStatuses" if pod_status => Key("name"),
        "ports" if kind == "Service" && parents == ["spec"] => Key("port"),
        "addresses" if kind == "Node" && parents == ["status"] => Key("type"),
        "podCIDRs" if kind == "Node" && parents == ["spec"] => Primitive,
        "secrets" if kind == "ServiceAccount" && parents.is_empty() => Key("name"),
        "webhooks" if kind.ends_with("WebhookConfiguration") && parents.is_empty() => Key("name"),
        "matchConditions" if parent == "webhooks" => Key("name"),
        "matchConditions" | "variables" if kind == "ValidatingAdmissionPolicy" && parents == ["spec"] => Key("name"),
        "drivers" if kind == "CSINode" && parents == ["spec"] => Key("name"),
        "reservedFor" if kind == "ResourceClaim" && parents == ["status"] => Key("uid"),
        "x-kubernetes-validations" if kind == "CustomResourceDefinition" => Key("rule"),
        _ => Atomic,
    }
}

/// The merge key of a list field in the built-in kinds, by field name, for field ownership
/// (`k:{...}` entries). Lists not named here are owned whole.
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
        _ => None,
    }
}

/// Applies a strategic merge patch: maps merge, `null` deletes, lists merge by the merge key
/// of their place in the kind (see [`list_strategy`]) or are replaced, `$patch:
/// delete|replace` (on maps and list items), `$setElementOrder`, `$deleteFromPrimitiveList`
/// and `$retainKeys` directives are honoured. An item of a keyed list without its key is
/// refused as kube-apiserver refuses it (500, `map: map[...] does not contain declared merge
/// key: name`).
pub fn apply_strategic(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut path = Vec::new();
    strategic(target, patch, kind, &mut path)
}

fn strategic<'a>(target: &Value, patch: &'a Value, kind: &str, path: &mut Vec<&'a str>) -> Result<Value, ApiError> {
    Ok(match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut out = p.clone();
                out.remove("$patch");
                return Ok(strip_directives(&Value::Object(out)));
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
                // `null`, or a map saying `$patch: delete`, removes the field.
                if v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete") {
                    out.remove(k);
                    continue;
                }
                let merged = match out.get(k) {
                    Some(existing) => {
                        path.push(k);
                        let merged = strategic(existing, v, kind, path);
                        path.pop();
                        merged?
                    }
                    // Not in the object: the patch's value.
                    None => strip_directives(v),
                };
                out.insert(k.clone(), merged);
            }
            // Reorder merged lists as `$setElementOrder` says.
            for (k, order) in p
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("$setElementOrder/").map(|f| (f, v)))
            {
                path.push(k);
                let key = match list_strategy(kind, path) {
                    ListStrategy::Key(key) => Some(key),
                    _ => None,
                };
                path.pop();
                if let (Some(Value::Array(items)), Some(order)) = (out.get_mut(k), order.as_array()) {
                    reorder(items, order, key);
                }
            }
            Value::Object(out)
        }
        (Value::Array(existing), Value::Array(p)) => {
            // `{"$patch": "replace"}` among the items: the others replace the list.
            let replace = p
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
            match list_strategy(kind, path) {
                _ if replace => Value::Array(
                    p.iter()
                        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace"))
                        .map(strip_directives)
                        .collect(),
                ),
                ListStrategy::Key(key) => Value::Array(merge_keyed(existing, p, key, |live, item| {
                    strategic(live, item, kind, path)
                })?),
                ListStrategy::Primitive => {
                    let mut out = existing.clone();
                    for item in p {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                ListStrategy::Atomic => Value::Array(p.iter().map(strip_directives).collect()),
            }
        }
        (_, p) => strip_directives(p),
    })
}

/// Merges the items of a patch into a list by `key`: an item merges (with `merge`) into the
/// one with its key, or is added; `$patch: delete` removes it. An item without the key is
/// refused as kube-apiserver refuses it.
pub fn merge_keyed<'a>(
    existing: &[Value],
    patch: &'a [Value],
    key: &str,
    mut merge: impl FnMut(&Value, &'a Value) -> Result<Value, ApiError>,
) -> Result<Vec<Value>, ApiError> {
    let mut out = existing.to_vec();
    for item in patch {
        let Some(id) = item.get(key) else {
            return Err(ApiError::new(
                500,
                "",
                format!("map: {} does not contain declared merge key: {key}", go_value(item)),
            ));
        };
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (out.iter().position(|o| o.get(key) == Some(id)), delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (Some(i), false) => out[i] = merge(&out[i], item)?,
            (None, false) => out.push(strip_directives(item)),
            (None, true) => {}
        }
    }
    Ok(out)
}

/// A JSON value as Go's `%v` prints the decoded form (`map[k:v ...]` with sorted keys).
fn go_value(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect();
            format!("map[{}]", inner.join(" "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
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
    fn a_lists_key_depends_on_its_place_in_the_kind() {
        let patch = json!({"spec": {"ports": [{"port": 80, "protocol": "UDP"}]}});
        let service = json!({"kind": "Service", "spec": {"ports": [{"port": 80, "name": "web"}, {"port": 81}]}});
        let out = apply_strategic(&service, &patch).unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "name": "web", "protocol": "UDP"}, {"port": 81}])
        );
        // A NetworkPolicy's ports have no patch strategy: replaced.
        let policy = json!({"kind": "NetworkPolicy", "spec": {"ports": [{"port": 81}]}});
        let out = apply_strategic(&policy, &patch).unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 80, "protocol": "UDP"}]));
        // A container's ports merge by containerPort, in a Pod or any template.
        let ports = |kind: &str, spec: Value| {
            let target = json!({"kind": kind, "spec": spec.clone()});
            apply_strategic(&target, &json!({"spec": spec})).unwrap()
        };
        let pod = ports(
            "Pod",
            json!({"containers": [{"name": "a", "ports": [{"containerPort": 1}]}]}),
        );
        assert_eq!(pod["spec"]["containers"][0]["ports"], json!([{"containerPort": 1}]));
        let deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 1}]}]}}}});
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 2}]}]}}}});
        let out = apply_strategic(&deployment, &patch).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 1}, {"containerPort": 2}])
        );
        // Status conditions merge by type where the kind's Go type says so, and are replaced
        // where it does not (a CertificateSigningRequest's).
        let conditions = |kind: &str| {
            let target = json!({"kind": kind, "status": {"conditions": [{"type": "A", "status": "True"}]}});
            let patch = json!({"status": {"conditions": [{"type": "B", "status": "True"}]}});
            let out = apply_strategic(&target, &patch).unwrap();
            out["status"]["conditions"].as_array().map_or(0, Vec::len)
        };
        assert_eq!(
            (conditions("Deployment"), conditions("CertificateSigningRequest")),
            (2, 1)
        );
        // A map saying `$patch: delete` goes.
        let out = apply_strategic(
            &json!({"kind": "Pod", "spec": {"affinity": {"nodeAffinity": {}}, "hostname": "a"}}),
            &json!({"spec": {"affinity": {"$patch": "delete"}}}),
        )
        .unwrap();
        assert_eq!(out["spec"], json!({"hostname": "a"}));
        // An item without its list's key.
        let err = apply_strategic(
            &deployment,
            &json!({"spec": {"template": {"spec": {"containers": [{"image": "x", "env": [{"value": "1"}]}]}}}}),
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                500,
                "map: map[env:[map[value:1]] image:x] does not contain declared merge key: name"
            )
        );
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
