//! What follows a write: serving and establishing CRDs, and garbage collection.

use super::*;

impl ApiServer {
    pub(super) fn after_write(&self, rt: &ResourceType, key: &Key) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.establish_crd(&key.name);
        }
        if rt.group == "admissionregistration.k8s.io" && rt.plural == "validatingadmissionpolicies" {
            self.observe_policy(key);
        }
        // Only deletions start garbage collection: an update of a live object cannot orphan
        // anything. (A removed object went through `after_delete`.)
        let deleting = self
            .store
            .lock()
            .get(key)
            .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
        if deleting {
            self.collect_garbage();
        }
    }

    /// A ValidatingAdmissionPolicy's status, as kube-apiserver's type-checking controller
    /// writes it once it has looked at a generation: `observedGeneration`, and `typeChecking`
    /// with no warnings (the sandbox does not type-check expressions against schemas).
    pub(super) fn observe_policy(&self, key: &Key) {
        let Some(policy) = self.store.lock().get(key).cloned() else {
            return;
        };
        let generation = policy.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
        let status = json!({"observedGeneration": generation, "typeChecking": {}});
        if policy.get("status") == Some(&status) {
            return;
        }
        let mut updated = (*policy).clone();
        updated["status"] = status;
        if let Some(rt) = self.find("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies") {
            let _ = self.commit_update(&rt, key, &policy, updated, false);
        }
    }

    pub(super) fn after_delete(&self, rt: &ResourceType, key: &Key) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.unserve_crd(&key.name);
        }
        self.collect_garbage();
    }

    pub(super) fn serve_crd(&self, crd: &Value) {
        let versions: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        let group = str_field(crd, "/spec/group").unwrap_or_default().to_string();
        let plural = str_field(crd, "/spec/names/plural").unwrap_or_default().to_string();
        types.retain(|t| !(t.custom && t.group == group && t.plural == plural));
        for v in versions
            .iter()
            .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        {
            if let Some(rt) = ResourceType::from_crd(crd, v) {
                types.push(rt);
            }
        }
        drop(types);
        let mut validator = self.validator.write().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = validator.add_crd(crd) {
            tracing::warn!(crd = %str_field(crd, "/metadata/name").unwrap_or_default(), error = %e, "CRD schema not usable for validation");
        }
    }

    pub(super) fn unserve_crd(&self, name: &str) {
        let Some((plural, group)) = name.split_once('.') else {
            return;
        };
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        types.retain(|t| !(t.custom && t.group == group && t.plural == plural));
        drop(types);
        // Delete every object of the resource.
        let resource = format!("{group}/{plural}");
        let mut inner = self.store.lock();
        let keys: Vec<Key> = inner.list(&resource, None).map(|(k, _)| k.clone()).collect();
        for k in keys {
            inner.remove(&self.store, &k);
        }
    }

    /// Serves a CRD and sets its `NamesAccepted` and `Established` conditions.
    pub(super) fn establish_crd(&self, name: &str) {
        let key = Key::new("apiextensions.k8s.io/customresourcedefinitions", "", name);
        let Some(crd) = self.store.lock().get(&key).cloned() else {
            return;
        };
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        self.serve_crd(&crd);
        let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let generation = crd.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
        let previous = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let condition = |type_: &str, reason: &str, message: &str| {
            let since = previous
                .iter()
                .find(|c| c["type"] == type_ && c["status"] == "True")
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or(json!(now()));
            json!({"type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": since, "observedGeneration": generation})
        };
        let status = json!({
            "acceptedNames": names,
            "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ]
        });
        if crd.get("status") == Some(&status) {
            return;
        }
        let mut updated = (*crd).clone();
        updated["status"] = status;
        if let Some(rt) = self.find("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
            // A concurrent change of the CRD re-runs this on its own write.
            let _ = self.commit_update(&rt, &key, &crd, updated, false);
        }
    }

    /// Garbage collection until nothing changes: objects whose owners are all gone are
    /// deleted; owners in foreground deletion go once their dependents are gone; terminating
    /// namespaces are emptied and then removed.
    pub(super) fn collect_garbage(&self) {
        for _round in 0..64 {
            let mut changed = false;
            let mut inner = self.store.lock();
            let uids: std::collections::HashSet<String> = inner
                .keys()
                .filter_map(|k| {
                    inner
                        .get(k)
                        .and_then(|v| str_field(v, "/metadata/uid").map(str::to_string))
                })
                .collect();
            let keys: Vec<Key> = inner.keys().cloned().collect();
            let mut to_delete: Vec<Key> = Vec::new();
            let mut dependents_of: HashMap<String, usize> = HashMap::new();
            let mut terminating_ns: Vec<String> = Vec::new();
            for k in &keys {
                let Some(v) = inner.get(k) else { continue };
                if k.resource == "/namespaces" && v.pointer("/metadata/deletionTimestamp").is_some() {
                    terminating_ns.push(k.name.clone());
                }
                if let Some(owners) = v.pointer("/metadata/ownerReferences").and_then(Value::as_array)
                    && !owners.is_empty()
                {
                    let live: Vec<&str> = owners
                        .iter()
                        .filter_map(|o| o["uid"].as_str())
                        .filter(|u| uids.contains(*u))
                        .collect();
                    if live.is_empty() {
                        to_delete.push(k.clone());
                    }
                    for u in live {
                        *dependents_of.entry(u.to_string()).or_default() += 1;
                    }
                }
            }
            // Owners in foreground deletion: delete their dependents; finish when none left.
            for k in &keys {
                let Some(v) = inner.get(k).cloned() else { continue };
                let foreground = v
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.contains(&json!("foregroundDeletion")));
                if !foreground || v.pointer("/metadata/deletionTimestamp").is_none() {
                    continue;
                }
                let uid = str_field(&v, "/metadata/uid").unwrap_or_default().to_string();
                if dependents_of.get(&uid).copied().unwrap_or(0) == 0 {
                    let mut done = (*v).clone();
                    if let Some(f) = done.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                        f.retain(|x| x != "foregroundDeletion");
                    }
                    let rv = inner.next_rv();
                    if let Some(m) = meta_mut(&mut done) {
                        m.insert("resourceVersion".into(), json!(rv.to_string()));
                    }
                    let empty = done
                        .pointer("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .is_none_or(|f| f.is_empty());
                    inner.put(&self.store, k.clone(), done);
                    if empty {
                        inner.remove(&self.store, k);
                    }
                    changed = true;
                } else {
                    for dk in &keys {
                        let Some(d) = inner.get(dk) else { continue };
                        let owned = d
                            .pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|o| o.iter().any(|o| o["uid"] == uid.as_str()));
                        if owned && d.pointer("/metadata/deletionTimestamp").is_none() {
                            to_delete.push(dk.clone());
                        }
                    }
                }
            }
            for ns in &terminating_ns {
                let contents: Vec<Key> = keys
                    .iter()
                    .filter(|k| {
                        k.namespace == *ns
                            && inner
                                .get(k)
                                .is_some_and(|v| v.pointer("/metadata/deletionTimestamp").is_none())
                    })
                    .cloned()
                    .collect();
                let remaining = keys
                    .iter()
                    .filter(|k| k.namespace == *ns && inner.get(k).is_some())
                    .count();
                if remaining == 0 {
                    inner.remove(&self.store, &Key::new("/namespaces", "", ns));
                    changed = true;
                }
                to_delete.extend(contents);
            }
            to_delete.sort();
            to_delete.dedup();
            for k in to_delete {
                let Some(v) = inner.get(&k).cloned() else { continue };
                let has_finalizers = v
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                if has_finalizers {
                    if v.pointer("/metadata/deletionTimestamp").is_none() {
                        let mut marked = (*v).clone();
                        let rv = inner.next_rv();
                        if let Some(m) = meta_mut(&mut marked) {
                            m.insert("deletionTimestamp".into(), json!(now()));
                            m.insert("resourceVersion".into(), json!(rv.to_string()));
                        }
                        inner.put(&self.store, k, marked);
                        changed = true;
                    }
                } else {
                    inner.remove(&self.store, &k);
                    changed = true;
                }
            }
            drop(inner);
            if !changed {
                return;
            }
        }
    }
}
