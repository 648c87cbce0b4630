//! Managed fields (`metadata.managedFields`): which manager owns which field, recorded as
//! kube-apiserver's field manager records it. Field sets are `fieldsV1` trees (`f:name` for a
//! map key, `k:{"name":"x"}` for a list item by its merge key, `{}` for a leaf).
//!
//! - An **Update** (create, update, any patch but apply) gives its manager the fields whose
//!   value it changed or added, takes those from every other manager, and takes removed fields
//!   from everyone. Fields it wrote with their old value stay with whoever owned them.
//! - An **Apply** owns exactly the fields it applied; a field another manager owns with a
//!   different value is a conflict unless forced (then the other manager loses it); a field
//!   the applier applied before and no longer applies is removed unless someone else owns it.

use crate::meta::{meta_mut, now};
use crate::patch::fields_of;
use serde_json::{Map, Value, json};

/// A field another manager owns and an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owner as kube-apiserver prints it: `"kubectl-patch" using coordination.k8s.io/v1`.
    pub manager: String,
    /// The field: `.spec.holderIdentity`, `.spec.containers[name="web"].image`.
    pub path: String,
}

/// The 409 message of an apply refused for `conflicts`, worded as kube-apiserver words it.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.path
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        lines.extend(
            conflicts
                .iter()
                .filter(|c| c.manager == m)
                .map(|c| format!("- {}", c.path)),
        );
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// The parts of an object its owners write: everything but status and the server-set
/// metadata (or only status, for the status subresource).
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

/// The field set an object's owners write.
fn set_of(object: &Value, status_only: bool) -> Value {
    fields_of(&owned_view(object, status_only), "")
}

fn empty() -> Value {
    Value::Object(Map::new())
}

fn is_leaf(set: &Value) -> bool {
    set.as_object().is_none_or(Map::is_empty)
}

/// The node of `node` a field-set key leads to: a map entry for `f:name`, the list item whose
/// fields equal the key's for `k:{...}`.
fn child<'a>(node: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let node = node?;
    if let Some(name) = key.strip_prefix("f:") {
        return node.get(name);
    }
    let wanted: Map<String, Value> = serde_json::from_str(key.strip_prefix("k:")?).ok()?;
    node.as_array()?
        .iter()
        .find(|item| wanted.iter().all(|(f, v)| item.get(f) == Some(v)))
}

/// The leaves of `set` whose value differs between `old` and `new` (absent counts as a value).
fn changed(set: &Value, old: Option<&Value>, new: Option<&Value>) -> Value {
    let mut out = Map::new();
    if let Some(m) = set.as_object() {
        for (k, sub) in m {
            let (o, n) = (child(old, k), child(new, k));
            if is_leaf(sub) {
                if o != n {
                    out.insert(k.clone(), empty());
                }
            } else {
                let c = changed(sub, o, n);
                if !is_leaf(&c) {
                    out.insert(k.clone(), c);
                }
            }
        }
    }
    Value::Object(out)
}

/// Adds the leaves of `b` to `a`.
fn union(a: &mut Value, b: &Value) {
    let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) else {
        return;
    };
    for (k, sub) in b {
        match a.get_mut(k) {
            Some(existing) => union(existing, sub),
            None => {
                a.insert(k.clone(), sub.clone());
            }
        }
    }
}

/// Removes the leaves of `b` from `a`, and the parents left empty.
fn subtract(a: &mut Value, b: &Value) {
    let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) else {
        return;
    };
    for (k, sub) in b {
        if is_leaf(sub) {
            a.remove(k);
        } else if let Some(existing) = a.get_mut(k)
            && !is_leaf(existing)
        {
            subtract(existing, sub);
            if is_leaf(existing) {
                a.remove(k);
            }
        }
    }
}

/// The leaves both `a` and `b` hold (a leaf of one covers the other's subtree).
fn intersect(a: &Value, b: &Value) -> Value {
    let mut out = Map::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (k, x) in a {
            let Some(y) = b.get(k) else { continue };
            let both = match (is_leaf(x), is_leaf(y)) {
                (true, _) => y.clone(),
                (_, true) => x.clone(),
                _ => intersect(x, y),
            };
            if is_leaf(&both) && !(is_leaf(x) || is_leaf(y)) {
                continue;
            }
            out.insert(k.clone(), both);
        }
    }
    Value::Object(out)
}

/// The leaf paths of a field set as kube-apiserver prints them (`.spec.replicas`,
/// `.spec.containers[name="web"].image`).
pub fn paths(set: &Value) -> Vec<String> {
    fn go(set: &Value, prefix: &str, out: &mut Vec<String>) {
        let Some(m) = set.as_object() else { return };
        if m.is_empty() && !prefix.is_empty() {
            out.push(prefix.to_string());
        }
        for (k, v) in m {
            let segment = match k.strip_prefix("f:") {
                Some(name) => format!(".{name}"),
                None => {
                    let key = k.trim_start_matches("k:");
                    match serde_json::from_str::<Map<String, Value>>(key) {
                        Ok(fields) => {
                            let parts: Vec<String> = fields.iter().map(|(f, v)| format!("{f}={v}")).collect();
                            format!("[{}]", parts.join(","))
                        }
                        Err(_) => format!("[{key}]"),
                    }
                }
            };
            go(v, &format!("{prefix}{segment}"), out);
        }
    }
    let mut out = Vec::new();
    go(set, "", &mut out);
    out
}

/// Removes from `object` the fields of `set`; a list item goes whole when its key fields are
/// in the set (its owner no longer writes the item).
fn remove_fields(object: &mut Value, set: &Value) {
    let Some(m) = set.as_object() else { return };
    for (k, sub) in m {
        if let Some(name) = k.strip_prefix("f:") {
            let Some(map) = object.as_object_mut() else { continue };
            if is_leaf(sub) {
                map.remove(name);
            } else if let Some(next) = map.get_mut(name) {
                remove_fields(next, sub);
            }
        } else if let Some(key) = k.strip_prefix("k:")
            && let Ok(wanted) = serde_json::from_str::<Map<String, Value>>(key)
            && let Some(items) = object.as_array_mut()
            && let Some(i) = items
                .iter()
                .position(|item| wanted.iter().all(|(f, v)| item.get(f) == Some(v)))
        {
            let whole = is_leaf(sub) || wanted.keys().all(|f| sub.get(format!("f:{f}")).is_some());
            if whole {
                items.remove(i);
            } else {
                remove_fields(&mut items[i], sub);
            }
        }
    }
}

fn is_entry(e: &Value, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
    e.get("manager").and_then(Value::as_str) == Some(manager)
        && e.get("operation").and_then(Value::as_str) == Some(operation)
        && e.get("subresource").and_then(Value::as_str) == subresource
}

/// The field set of the entry of `manager` for `operation` on `subresource`.
fn entry_set(entries: &[Value], manager: &str, operation: &str, subresource: Option<&str>) -> Value {
    entries
        .iter()
        .find(|e| is_entry(e, manager, operation, subresource))
        .and_then(|e| e.get("fieldsV1").cloned())
        .unwrap_or_else(empty)
}

/// An entry's owner as kube-apiserver names it in conflicts.
fn owner_name(entry: &Value) -> String {
    let mut name = format!("{:?}", entry.get("manager").and_then(Value::as_str).unwrap_or_default());
    if let Some(sub) = entry.get("subresource").and_then(Value::as_str) {
        name = format!("{name} with subresource {sub:?}");
    }
    if entry.get("operation").and_then(Value::as_str) == Some("Update") {
        let version = entry.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        name = format!("{name} using {version}");
    }
    name
}

/// Records an Update (a create when `old` is `None`) by `manager`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let status_only = subresource == Some("status");
    let now_set = set_of(new, status_only);
    let modified = changed(&now_set, old, Some(new));
    let removed = match old {
        Some(o) => {
            let mut gone = set_of(o, status_only);
            subtract(&mut gone, &now_set);
            gone
        }
        None => empty(),
    };
    let mut entries = managed_entries(old.unwrap_or(&Value::Null));
    let mut mine = entry_set(&entries, manager, "Update", subresource);
    for e in entries.iter_mut() {
        if let Some(f) = e.get_mut("fieldsV1") {
            subtract(f, &modified);
            subtract(f, &removed);
        }
    }
    union(&mut mine, &modified);
    subtract(&mut mine, &removed);
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

/// Writes `entries` as the object's managed fields, without the ones that own nothing.
pub fn set_managed(object: &mut Value, mut entries: Vec<Value>) {
    entries.retain(|e| e.get("fieldsV1").is_some_and(|f| !is_leaf(f)));
    if let Some(m) = meta_mut(object) {
        m.insert("managedFields".into(), Value::Array(entries));
    }
}

fn upsert_entry(
    entries: &mut Vec<Value>,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
    fields: Value,
) {
    entries.retain(|e| !is_entry(e, manager, operation, subresource));
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

/// A server-side apply by `manager` of `config` onto `live` (`None`: the object is new).
/// Returns the object with its managed fields, or the conflicts when not forced.
pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let status_only = subresource == Some("status");
    let applied = set_of(config, status_only);
    let mut entries = live.map(managed_entries).unwrap_or_default();
    let mut object = live.cloned().unwrap_or_else(|| config.clone());

    if let Some(live) = live {
        // Conflicts: another manager owns a field the apply gives another value.
        let mut conflicts = Vec::new();
        let mut taken = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if e.get("manager").and_then(Value::as_str) == Some(manager) {
                continue;
            }
            let owned = e.get("fieldsV1").cloned().unwrap_or_else(empty);
            let differing = changed(&intersect(&owned, &applied), Some(live), Some(config));
            if is_leaf(&differing) {
                continue;
            }
            let owner = owner_name(e);
            conflicts.extend(paths(&differing).into_iter().map(|path| Conflict {
                manager: owner.clone(),
                path,
            }));
            taken.push((i, differing));
        }
        if !conflicts.is_empty() && !force {
            return Err(conflicts);
        }
        for (i, differing) in taken {
            if let Some(f) = entries[i].get_mut("fieldsV1") {
                subtract(f, &differing);
            }
        }

        // Fields this manager applied before and drops now go, unless someone else owns them.
        let mut dropped = entry_set(&entries, manager, "Apply", subresource);
        subtract(&mut dropped, &applied);
        for e in entries.iter().filter(|e| !is_entry(e, manager, "Apply", subresource)) {
            if let Some(f) = e.get("fieldsV1") {
                let shared = intersect(&dropped, f);
                subtract(&mut dropped, &shared);
            }
        }
        remove_fields(&mut object, &dropped);
        object = apply_merge(&object, &owned_view(config, status_only), "");
    }
    upsert_entry(&mut entries, manager, "Apply", api_version, subresource, applied);
    set_managed(&mut object, entries);
    Ok(object)
}

/// Merges an applied configuration into a live object: maps recursively, conditions by type,
/// other lists and scalars replaced.
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
        (Value::Array(l), Value::Array(c)) if field == "conditions" => {
            crate::patch::merge_keyed(l, c, "type", crate::patch::apply_strategic)
                .map(Value::Array)
                .unwrap_or_else(|_| config.clone())
        }
        (_, c) => c.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(object: &Value) -> Vec<(String, Vec<String>)> {
        managed_entries(object)
            .iter()
            .map(|e| {
                (
                    e["manager"].as_str().unwrap_or_default().to_string(),
                    paths(&e["fieldsV1"]),
                )
            })
            .collect()
    }

    const LEASES: &str = "coordination.k8s.io/v1";

    /// `live` changed by `edit` and recorded as an update by kubectl-patch.
    fn hand_edit(live: &Value, edit: impl FnOnce(&mut Value)) -> Value {
        let mut patched = live.clone();
        edit(&mut patched);
        record_update(Some(live), &mut patched, "kubectl-patch", LEASES, None);
        patched
    }

    /// The elector's apply of a Lease held by `holder`.
    fn elect(live: Option<&Value>, holder: &str) -> Result<Value, Vec<Conflict>> {
        server_side_apply(live, &lease(holder), "elector", LEASES, None, false)
    }

    fn lease(holder: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": "t1"}})
    }

    #[test]
    fn an_update_owns_what_it_changed_and_nothing_else() {
        let mut live = elect(None, "a").expect("a create cannot conflict");
        // A label added by hand: the patch's manager owns the label, not the spec.
        let patched = hand_edit(&live, |p| {
            p["metadata"]["labels"] = json!({"touched": "yes"});
        });
        assert_eq!(
            owners(&patched),
            [
                (
                    "elector".into(),
                    vec![
                        ".spec.holderIdentity".into(),
                        ".spec.leaseDurationSeconds".into(),
                        ".spec.renewTime".into()
                    ]
                ),
                ("kubectl-patch".into(), vec![".metadata.labels.touched".into()]),
            ]
        );
        // So the elector's next apply (another holder) does not conflict.
        live = elect(Some(&patched), "b").expect("no conflict");
        assert_eq!(live["spec"]["holderIdentity"], "b");
        assert_eq!(live["metadata"]["labels"]["touched"], "yes");
    }

    #[test]
    fn a_changed_field_moves_to_the_updater_and_conflicts_name_it() {
        let live = elect(None, "a").expect("a create cannot conflict");
        let patched = hand_edit(&live, |p| {
            p["spec"]["holderIdentity"] = json!("human");
        });
        assert_eq!(
            owners(&patched)[1],
            ("kubectl-patch".into(), vec![".spec.holderIdentity".into()])
        );
        assert!(!owners(&patched)[0].1.contains(&".spec.holderIdentity".to_string()));
        let conflicts = elect(Some(&patched), "b").expect_err("the holder belongs to kubectl-patch now");
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using coordination.k8s.io/v1: .spec.holderIdentity"
        );
        // Applying the value kubectl-patch wrote is no conflict: both own it.
        let same = elect(Some(&patched), "human").expect("same value");
        assert_eq!(owners(&same)[0].1, vec![".spec.holderIdentity".to_string()]);
    }

    #[test]
    fn a_removed_field_is_owned_by_nobody() {
        let live = elect(None, "a").expect("a create cannot conflict");
        let patched = hand_edit(&live, |p| {
            p["spec"].as_object_mut().map(|s| s.remove("holderIdentity"));
        });
        let all: Vec<String> = owners(&patched).into_iter().flat_map(|(_, p)| p).collect();
        assert!(!all.contains(&".spec.holderIdentity".to_string()), "{all:?}");
        assert!(
            owners(&patched).iter().all(|(m, _)| m != "kubectl-patch"),
            "a removal owns nothing"
        );
    }

    #[test]
    fn list_items_by_key_conflict_and_go_whole() {
        let deploy = |image: &str, sidecar: bool| {
            let mut containers = vec![json!({"name": "web", "image": image})];
            if sidecar {
                containers.push(json!({"name": "log", "image": "busybox"}));
            }
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"template": {"spec": {"containers": containers}}}})
        };
        let live = server_side_apply(None, &deploy("nginx:1", true), "deployer", "apps/v1", None, false)
            .expect("a create cannot conflict");
        let mut set_image = live.clone();
        set_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        record_update(Some(&live), &mut set_image, "kubectl-set", "apps/v1", None);
        assert_eq!(
            owners(&set_image)[1],
            (
                "kubectl-set".into(),
                vec![".spec.template.spec.containers[name=\"web\"].image".into()]
            )
        );
        let conflicts = server_side_apply(
            Some(&set_image),
            &deploy("nginx:1", true),
            "deployer",
            "apps/v1",
            None,
            false,
        )
        .expect_err("the image was changed by another manager");
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].path, ".spec.template.spec.containers[name=\"web\"].image");
        // Forced, without the sidecar: the image comes back, the sidecar goes.
        let forced = server_side_apply(
            Some(&set_image),
            &deploy("nginx:1", false),
            "deployer",
            "apps/v1",
            None,
            true,
        )
        .expect("forced");
        let containers = &forced["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers, &json!([{"name": "web", "image": "nginx:1"}]));
        assert!(owners(&forced).iter().all(|(m, _)| m != "kubectl-set"));
    }

    #[test]
    fn apply_conflicts_unless_forced_and_prunes_dropped_fields() {
        let mut live =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        record_update(None, &mut live, "kubectl-create", "v1", None);
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "9"}});
        let conflicts = server_side_apply(Some(&live), &config, "me", "v1", None, false).expect_err("conflict");
        assert_eq!(
            conflicts,
            vec![Conflict {
                manager: "\"kubectl-create\" using v1".into(),
                path: ".data.a".into()
            }]
        );
        let forced = server_side_apply(Some(&live), &config, "me", "v1", None, true).expect("forced");
        assert_eq!(forced["data"], json!({"a": "9", "b": "2"}));
        // Now "me" owns data.a; applying without it removes it (nobody else owns it).
        let config2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"c": "3"}});
        let after = server_side_apply(Some(&forced), &config2, "me", "v1", None, false).expect("no conflict");
        assert_eq!(after["data"], json!({"b": "2", "c": "3"}));
    }

    #[test]
    fn messages_group_conflicts_by_manager() {
        let c = |m: &str, p: &str| Conflict {
            manager: m.into(),
            path: p.into(),
        };
        assert_eq!(
            conflict_message(&[c("\"b\"", ".x"), c("\"a\" using v1", ".y"), c("\"b\"", ".z")]),
            "Apply failed with 3 conflicts: conflicts with \"a\" using v1:\n- .y\nconflicts with \"b\":\n- .x\n- .z"
        );
    }
}
