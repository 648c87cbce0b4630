//! Helpers for object metadata, time and managed fields.

use crate::patch::{fields_of, leaf_paths, remove_path, value_at};
use serde_json::{Map, Value, json};

/// Now, as kube-apiserver writes times: RFC 3339, seconds, UTC.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an RFC 3339 time into Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Age as kubectl prints it (`5s`, `3m20s`, `4h`, `2d3h`...).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rest = s % 60;
        return if rest == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rest}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        let rest = m % 60;
        return if rest == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rest}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    let d = h / 24;
    if h < 24 * 8 {
        let rest = h % 24;
        return if rest == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rest}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{d}d");
    }
    let y = d / 365;
    if y < 8 {
        let rest = d % 365;
        return if rest == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rest}d")
        };
    }
    format!("{y}y")
}

/// The metadata map of an object, created when missing; `None` when `object` is no object.
pub fn meta_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let m = object.as_object_mut()?.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut()
}

pub fn str_field<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// The parts of an object its owner writes, for managed fields: everything but status and
/// the server-set metadata.
fn owned_view(object: &Value, status_only: bool) -> Value {
    let mut view = Map::new();
    if let Some(o) = object.as_object() {
        for (k, v) in o {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "status" if status_only => {
                    view.insert(k.clone(), v.clone());
                }
                _ if status_only => {}
                "status" => {}
                "metadata" => {
                    let mut m = Map::new();
                    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(x) = v.get(key) {
                            m.insert(key.into(), x.clone());
                        }
                    }
                    if !m.is_empty() {
                        view.insert("metadata".into(), Value::Object(m));
                    }
                }
                _ => {
                    view.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(view)
}

fn paths_of(fields: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaf_paths(fields, "", &mut out);
    out
}

/// Drops what kube-apiserver never stores because Go's `omitempty` leaves it out: empty
/// `labels` and `annotations` maps, empty `finalizers` and `ownerReferences` lists (a JSON
/// patch removing the last annotation leaves `annotations: {}`, which a real cluster does not
/// show).
pub fn omit_empty(object: &mut Value) {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|key, value| {
            !(matches!(
                key.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            ) && (value.is_null()
                || value.as_object().is_some_and(Map::is_empty)
                || value.as_array().is_some_and(Vec::is_empty)))
        });
    }
}

/// Records an Update by `manager`: it owns every field it wrote; fields whose value changed
/// move to it from other managers.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let status_only = subresource == Some("status");
    let mine = fields_of(&owned_view(new, status_only), "");
    let changed: Vec<String> = paths_of(&mine)
        .into_iter()
        .filter(|p| old.is_none_or(|o| value_at(o, p) != value_at(new, p)))
        .collect();
    let mut entries = managed_entries(old.unwrap_or(&Value::Null));
    for e in entries.iter_mut() {
        if e.get("manager").and_then(Value::as_str) == Some(manager) {
            continue;
        }
        if let Some(f) = e.get_mut("fieldsV1") {
            for p in &changed {
                remove_field_path(f, p);
            }
        }
    }
    upsert_entry(&mut entries, manager, "Update", api_version, subresource, mine);
    set_managed(new, entries);
}

/// The managedFields entries of an object.
pub fn managed_entries(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn set_managed(object: &mut Value, mut entries: Vec<Value>) {
    entries.retain(|e| {
        e.get("fieldsV1")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    });
    if let Some(m) = meta_mut(object) {
        m.insert("managedFields".into(), Value::Array(entries));
    }
}

pub fn upsert_entry(
    entries: &mut Vec<Value>,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
    fields: Value,
) {
    entries.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some(operation)
            && e.get("subresource").and_then(Value::as_str) == subresource)
    });
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(sub) = subresource {
        entry["subresource"] = Value::String(sub.into());
    }
    entries.push(entry);
}

/// Removes one leaf path (`.a.b`) from a fieldsV1 set, pruning empty parents.
pub fn remove_field_path(fields: &mut Value, path: &str) {
    fn go(node: &mut Value, segs: &[String]) -> bool {
        let Some(m) = node.as_object_mut() else { return false };
        let Some((first, rest)) = segs.split_first() else {
            return false;
        };
        if rest.is_empty() {
            m.remove(first);
        } else if let Some(child) = m.get_mut(first)
            && go(child, rest)
        {
            m.remove(first);
        }
        m.is_empty()
    }
    let segs: Vec<String> = path
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|s| format!("f:{s}"))
        .collect();
    go(fields, &segs);
}

/// The outcome of a server-side apply.
pub struct Applied {
    pub object: Value,
}

/// A simplified server-side apply: `config` (what `manager` applies) is merged into `live`.
/// A field another manager owns with a different value is a conflict unless `force`; fields
/// the manager applied before and no longer applies are removed when nobody else owns them.
pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
) -> Result<Applied, Vec<(String, String)>> {
    let status_only = subresource == Some("status");
    let applied_fields = fields_of(&owned_view(config, status_only), "");
    let applied_paths = paths_of(&applied_fields);
    let mut entries = live.map(managed_entries).unwrap_or_default();
    let mut object = live.cloned().unwrap_or_else(|| config.clone());

    // Conflicts: another manager owns a path with a different live value.
    let mut conflicts = Vec::new();
    if let Some(live) = live {
        for e in &entries {
            let other = e.get("manager").and_then(Value::as_str).unwrap_or_default();
            if other == manager {
                continue;
            }
            let owned = e.get("fieldsV1").map(paths_of).unwrap_or_default();
            for p in &applied_paths {
                if owned.contains(p) && value_at(live, p) != value_at(config, p) {
                    conflicts.push((other.to_string(), p.clone()));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for e in entries.iter_mut() {
        if e.get("manager").and_then(Value::as_str) == Some(manager) {
            continue;
        }
        if let Some(f) = e.get_mut("fieldsV1") {
            for (_, p) in conflicts.iter() {
                remove_field_path(f, p);
            }
        }
    }

    if live.is_some() {
        // Fields this manager applied before and drops now, unless someone else owns them.
        let previous: Vec<String> = entries
            .iter()
            .filter(|e| {
                e.get("manager").and_then(Value::as_str) == Some(manager)
                    && e.get("operation").and_then(Value::as_str) == Some("Apply")
            })
            .flat_map(|e| e.get("fieldsV1").map(paths_of).unwrap_or_default())
            .collect();
        let others: Vec<String> = entries
            .iter()
            .filter(|e| e.get("manager").and_then(Value::as_str) != Some(manager))
            .flat_map(|e| e.get("fieldsV1").map(paths_of).unwrap_or_default())
            .collect();
        for p in previous {
            if !applied_paths.contains(&p) && !others.contains(&p) {
                remove_path(&mut object, &p);
            }
        }
        let view = owned_view(config, status_only);
        object = apply_merge(&object, &view, "");
    }
    upsert_entry(&mut entries, manager, "Apply", api_version, subresource, applied_fields);
    set_managed(&mut object, entries);
    Ok(Applied { object })
}

/// Merges an applied configuration into a live object: maps recursively, lists with a known
/// merge key by key, other lists and scalars replaced.
fn apply_merge(live: &Value, config: &Value, field: &str) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, v) in c {
                let merged = match out.get(k) {
                    Some(existing) => apply_merge(existing, v, k),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(_), Value::Array(_)) if field == "conditions" => {
            crate::patch::apply_strategic(&json!({ "conditions": live }), &json!({ "conditions": config }))
                .ok()
                .and_then(|v| v.get("conditions").cloned())
                .unwrap_or_else(|| config.clone())
        }
        (_, c) => c.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        for (s, expected) in [
            (5, "5s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400, "3d"),
        ] {
            assert_eq!(human_duration(s), expected, "{s}");
        }
    }

    #[test]
    fn apply_conflicts_unless_forced_and_prunes_dropped_fields() {
        let created =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let mut live = created.clone();
        record_update(None, &mut live, "kubectl-create", "v1", None);
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "9"}});
        let conflicts = server_side_apply(Some(&live), &config, "me", "v1", None, false)
            .err()
            .unwrap();
        assert_eq!(conflicts, vec![("kubectl-create".to_string(), ".data.a".to_string())]);
        let forced = server_side_apply(Some(&live), &config, "me", "v1", None, true)
            .ok()
            .unwrap()
            .object;
        assert_eq!(forced["data"], json!({"a": "9", "b": "2"}));
        // Now "me" owns data.a; applying without it removes it (nobody else owns it).
        let config2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"c": "3"}});
        let after = server_side_apply(Some(&forced), &config2, "me", "v1", None, false)
            .ok()
            .unwrap()
            .object;
        assert_eq!(after["data"], json!({"b": "2", "c": "3"}));
    }
}

/// A JSON value written as kube-apiserver writes objects: in every object, `kind` then
/// `apiVersion` first (Go's field order), the other keys after them in key order.
pub struct KindFirst<'a>(pub &'a Value);

impl serde::Serialize for KindFirst<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for key in ["kind", "apiVersion"] {
                    if let Some(v) = fields.get(key) {
                        map.serialize_entry(key, &KindFirst(v))?;
                    }
                }
                for (k, v) in fields.iter().filter(|(k, _)| *k != "kind" && *k != "apiVersion") {
                    map.serialize_entry(k, &KindFirst(v))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&KindFirst(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// [`KindFirst`] as bytes.
pub fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&KindFirst(value)).unwrap_or_default()
}

#[cfg(test)]
mod kind_first_tests {
    use super::*;

    #[test]
    fn objects_start_with_kind_and_api_version_at_every_level() {
        let list = serde_json::json!({"apiVersion": "v1", "items": [
            {"apiVersion": "v1", "data": {"a": "b"}, "kind": "ConfigMap", "metadata": {"name": "x"}}
        ], "kind": "ConfigMapList", "metadata": {}});
        let text = String::from_utf8(to_json(&list)).expect("UTF-8");
        assert_eq!(
            text,
            r#"{"kind":"ConfigMapList","apiVersion":"v1","items":[{"kind":"ConfigMap","apiVersion":"v1","data":{"a":"b"},"metadata":{"name":"x"}}],"metadata":{}}"#
        );
        let back: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(back, list, "the same value");
    }
}
