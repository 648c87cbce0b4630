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
        if rt.group == "rbac.authorization.k8s.io" && rt.plural == "clusterroles" {
            self.aggregate_cluster_roles();
        }
        self.keep_namespace_defaults(rt, key);
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

    /// kube-controller-manager's ClusterRole aggregation: the `rules` of every ClusterRole with
    /// an `aggregationRule` are the rules of the ClusterRoles its selectors match (in name
    /// order, without repeats), rewritten until nothing changes (aggregated roles may select
    /// each other: `edit` aggregates into `admin`).
    pub(super) fn aggregate_cluster_roles(&self) {
        const ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
        let Some(rt) = self.find("rbac.authorization.k8s.io", "v1", "clusterroles") else {
            return;
        };
        for _round in 0..8 {
            let roles: Vec<(Key, Arc<Value>)> = self
                .store
                .lock()
                .list(ROLES, None)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut changed = false;
            for (key, role) in &roles {
                let Some(selectors) = role
                    .pointer("/aggregationRule/clusterRoleSelectors")
                    .and_then(Value::as_array)
                else {
                    continue;
                };
                let mut rules: Vec<Value> = Vec::new();
                for (other_key, other) in &roles {
                    let labels = other.pointer("/metadata/labels");
                    if other_key == key
                        || !selectors
                            .iter()
                            .any(|s| crate::selectors::LabelSelector::matches_object_selector(s, labels))
                    {
                        continue;
                    }
                    for rule in other.get("rules").and_then(Value::as_array).into_iter().flatten() {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
                let rules = Value::Array(rules);
                if role.get("rules").unwrap_or(&Value::Null) == &rules
                    || (rules.as_array().is_some_and(Vec::is_empty) && role.get("rules").is_none())
                {
                    continue;
                }
                let mut updated = (**role).clone();
                updated["rules"] = rules;
                if self.commit_update(&rt, key, role, updated, false).is_ok() {
                    changed = true;
                }
            }
            if !changed {
                return;
            }
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
        if rt.group == "rbac.authorization.k8s.io" && rt.plural == "clusterroles" {
            self.aggregate_cluster_roles();
        }
        self.keep_namespace_defaults(rt, key);
        self.collect_garbage();
    }

    /// kube-controller-manager's ServiceAccount and root-CA publisher controllers: a live
    /// namespace's `default` ServiceAccount and `kube-root-ca.crt` ConfigMap are made again when
    /// deleted, and the ConfigMap's data is put back to the cluster's CA when changed.
    fn keep_namespace_defaults(&self, rt: &ResourceType, key: &Key) {
        let kept = rt.group.is_empty()
            && matches!(
                (rt.plural.as_str(), key.name.as_str()),
                ("serviceaccounts", "default") | ("configmaps", "kube-root-ca.crt")
            );
        let namespace = key.namespace.as_str();
        if !kept || namespace.is_empty() {
            return;
        }
        let live = self
            .store
            .lock()
            .get(&Key::new("/namespaces", "", namespace))
            .is_some_and(|ns| ns.pointer("/metadata/deletionTimestamp").is_none());
        if !live {
            return;
        }
        self.populate_namespace(namespace);
        if rt.plural != "configmaps" {
            return;
        }
        let Some(map) = self.store.lock().get(key).cloned() else {
            return;
        };
        let data = json!({"ca.crt": self.cluster_ca.pem});
        if map.get("data") != Some(&data) && map.pointer("/metadata/deletionTimestamp").is_none() {
            let mut updated = (*map).clone();
            updated["data"] = data;
            if let Some(binary) = updated.as_object_mut() {
                binary.remove("binaryData");
            }
            let _ = self.commit_update(rt, key, &map, updated, false);
        }
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
        drop(validator);
        self.sync_api_services();
    }

    /// One APIService per served group version, as kube-apiserver registers them (local:
    /// no service, always available): `v1.` for the core group, `v1.apps`, and those of CRDs
    /// (labelled automanaged `true`), removed when their group version is no longer served.
    pub(super) fn sync_api_services(&self) {
        const RESOURCE: &str = "apiregistration.k8s.io/apiservices";
        const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";
        let served: Vec<(String, String, bool)> = {
            let mut gvs: Vec<(String, String, bool)> = Vec::new();
            for t in self.types().iter() {
                if !gvs.iter().any(|(g, v, _)| *g == t.group && *v == t.version) {
                    gvs.push((t.group.clone(), t.version.clone(), t.custom));
                }
            }
            gvs
        };
        let names: Vec<String> = served.iter().map(|(g, v, _)| format!("{v}.{g}")).collect();
        // Those of group versions no longer served go.
        {
            let mut inner = self.store.lock();
            let gone: Vec<Key> = inner
                .list(RESOURCE, None)
                .filter(|(k, o)| {
                    o.pointer(&format!("/metadata/labels/{}", AUTOMANAGED.replace('/', "~1")))
                        .is_some()
                        && !names.contains(&k.name)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                inner.remove(&self.store, &k);
            }
        }
        for (group, version, custom) in served {
            let (group_priority, version_priority) = if custom {
                (1000, 100)
            } else {
                let group_priority = match group.as_str() {
                    "" => 18000,
                    "apps" => 17800,
                    "events.k8s.io" => 17750,
                    "authorization.k8s.io" => 17600,
                    "batch" => 17400,
                    "networking.k8s.io" => 17200,
                    "policy" => 17100,
                    "rbac.authorization.k8s.io" => 17000,
                    "admissionregistration.k8s.io" | "apiextensions.k8s.io" => 16700,
                    "coordination.k8s.io" => 16500,
                    "apiregistration.k8s.io" => 18000,
                    _ => 16000,
                };
                (group_priority, 15)
            };
            self.ensure(json!({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{version}.{group}"),
                             "labels": {AUTOMANAGED: if custom { "true" } else { "onstart" }}},
                "spec": {"group": group, "version": version,
                         "groupPriorityMinimum": group_priority, "versionPriority": version_priority},
                "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
                    "message": "Local APIServices are always available", "lastTransitionTime": now()}]},
            }));
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
        drop(inner);
        self.sync_api_services();
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
        // The deletions made through `delete` below collect garbage themselves when they end:
        // not again inside, the rounds here go on until nothing changes.
        if COLLECTING.with(std::cell::Cell::get) {
            return;
        }
        struct Collecting;
        impl Drop for Collecting {
            fn drop(&mut self) {
                COLLECTING.with(|c| c.set(false));
            }
        }
        COLLECTING.with(|c| c.set(true));
        let _collecting = Collecting;
        for _round in 0..64 {
            let mut changed = false;
            // kube-controller-manager deletes through the API: when webhooks or policies
            // judge writes, they judge its deletions too.
            let admitted = crate::admission::configured(&self.store)
                || self
                    .store
                    .lock()
                    .list(crate::admission::policy::BINDINGS, None)
                    .next()
                    .is_some();
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
            let mut namespace_content: std::collections::HashSet<Key> = std::collections::HashSet::new();
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
                    let empty = finalized(&done);
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
                let key = Key::new("/namespaces", "", ns);
                if remaining == 0
                    && let Some(namespace) = inner.get(&key).cloned()
                {
                    // The namespace controller's part: once the content is gone, its finalizer
                    // goes; the namespace goes with the last finalizer.
                    let mut done = (*namespace).clone();
                    if let Some(f) = done.pointer_mut("/spec/finalizers").and_then(Value::as_array_mut) {
                        f.retain(|x| x != NAMESPACE_FINALIZER);
                    }
                    if finalized(&done) {
                        inner.remove(&self.store, &key);
                        changed = true;
                    } else if done != *namespace {
                        let rv = inner.next_rv();
                        if let Some(m) = meta_mut(&mut done) {
                            m.insert("resourceVersion".into(), json!(rv.to_string()));
                        }
                        inner.put(&self.store, key, done);
                        changed = true;
                    }
                }
                namespace_content.extend(contents.iter().cloned());
                to_delete.extend(contents);
            }
            to_delete.sort();
            to_delete.dedup();
            if admitted {
                drop(inner);
                for k in to_delete {
                    let user = if namespace_content.contains(&k) {
                        NAMESPACE_CONTROLLER
                    } else {
                        GARBAGE_COLLECTOR
                    };
                    changed |= self.delete_as(&k, user);
                }
                if !changed {
                    return;
                }
                continue;
            }
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

    /// Deletes an object as one of kube-controller-manager's controllers does, through the
    /// API (admission included); whether something changed (a denied deletion changes nothing
    /// and is tried again after a backoff, or at the next collection if that comes first).
    fn delete_as(&self, key: &Key, controller: &str) -> bool {
        let Some(rt) = self
            .types()
            .iter()
            .find(|t| t.group_resource() == key.resource)
            .cloned()
        else {
            return false;
        };
        let marked = self.store.lock().get(key).is_none_or(|o| super::workloads::deleting(o));
        if marked {
            return false;
        }
        let user = super::workloads::component_user(controller, "");
        let namespace = rt.namespaced.then_some(key.namespace.as_str());
        let options = json!({"propagationPolicy": "Background"});
        match self.delete(&rt, namespace, &key.name, &options, &Query::new(), Some(&user)) {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(object = %key.name, resource = %key.resource, reason = %e.message, "a controller's deletion was refused; tried again after a backoff");
                self.collection_refused.set();
                false
            }
        }
    }
}

thread_local! {
    /// Set while garbage is being collected on this thread.
    static COLLECTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The kube-controller-manager controllers that delete (their ServiceAccounts in kube-system).
const GARBAGE_COLLECTOR: &str = "generic-garbage-collector";
const NAMESPACE_CONTROLLER: &str = "namespace-controller";

/// Whether a controller's deletion was refused since the last collection, and a wake-up for
/// the task that retries.
#[derive(Default)]
pub(super) struct Refused {
    refused: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

impl Refused {
    fn set(&self) {
        self.refused.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn take(&self) -> bool {
        self.refused.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// The first wait before a refused collection is tried again, and the longest.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

impl ApiServer {
    /// kube-controller-manager's retries: after a refused deletion, garbage is collected
    /// again after 0.5 s, then twice as long each time it is refused again (30 s at most),
    /// until a collection goes through, so that a webhook or policy that stops refusing lets
    /// the deletion happen without another write to trigger it.
    pub(crate) async fn retry_refused_collections(
        self: std::sync::Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut delay = RETRY_FIRST;
        loop {
            tokio::select! {
                _ = self.collection_refused.wake.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            while self.collection_refused.take() {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                self.collect_garbage();
                delay = (delay * 2).min(RETRY_MAX);
            }
            delay = RETRY_FIRST;
        }
    }
}
