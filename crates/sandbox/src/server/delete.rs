//! Deletion: finalizers, preconditions, propagation, admission; and delete-collection.

use super::*;

impl ApiServer {
    pub(super) fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &Value,
        q: &Query,
        user: Option<&UserInfo>,
    ) -> Result<Value, ApiError> {
        let dry = dry_run(q)?
            || options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "All"));
        let key = Self::key(rt, namespace, name);
        // An Event written through the other Events API is deleted there (one resource).
        if let Some((_, twin_rt, convert)) = self.held_by_the_other_api(&key.resource, &key.namespace, &key.name) {
            let deleted = self.delete(&twin_rt, namespace, name, options, q, user)?;
            return Ok(if deleted.get("kind").and_then(Value::as_str) == Some("Status") {
                deleted
            } else {
                convert(&deleted)
            });
        }
        let propagation = options
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or(q.get("propagationPolicy").map(String::as_str))
            .unwrap_or("Background")
            .to_string();
        let mut reviewed = None;
        let (mut inner, old) = loop {
            let inner = self.store.lock();
            let old = inner
                .get(&key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
            let Some(user) = user else { break (inner, old) };
            // Webhooks run without the store lock; the object must not change meanwhile.
            if reviewed.as_ref().is_some_and(|r: &Arc<Value>| rv_of(r) == rv_of(&old)) {
                break (inner, old);
            }
            drop(inner);
            let mut delete_options = options.clone();
            if let Some(o) = delete_options.as_object_mut() {
                o.insert("kind".into(), json!("DeleteOptions"));
                o.insert("apiVersion".into(), json!("meta.k8s.io/v1"));
            }
            let request = AdmissionRequest {
                rt,
                object_kind: None,
                subresource: None,
                operation: "DELETE",
                name,
                namespace,
                old: Some(&old),
                dry_run: dry,
                options: delete_options,
                user,
            };
            let mut ignored = Vec::new();
            let mut none = None;
            self.admission
                .admit(&self.store, Phase::Mutating, &request, &mut none, &mut ignored)?;
            self.validate_admission(&request, None, &mut ignored)?;
            reviewed = Some(old);
        };
        if let Some(expected) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && expected != rv_of(&old).to_string()
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        if let Some(expected) = options.pointer("/preconditions/uid").and_then(Value::as_str)
            && Some(expected) != str_field(&old, "/metadata/uid")
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        if dry {
            return Ok((*old).clone());
        }
        let mut finalizers: Vec<Value> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_namespace = rt.is_namespace();
        if propagation == "Foreground" && !finalizers.contains(&json!("foregroundDeletion")) {
            finalizers.push(json!("foregroundDeletion"));
        }
        if finalizers.is_empty() && !is_namespace {
            let gone = inner
                .remove(&self.store, &key)
                .map(|g| (*g).clone())
                .unwrap_or_default();
            drop(inner);
            self.after_delete(rt, &key);
            return Ok(gone);
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((*old).clone());
        }
        let mut marked = (*old).clone();
        let rv = inner.next_rv();
        if let Some(m) = meta_mut(&mut marked) {
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("finalizers".into(), Value::Array(finalizers));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        if is_namespace {
            marked["status"] = json!({"phase": "Terminating"});
        }
        let stored = inner.put(&self.store, key.clone(), marked);
        drop(inner);
        self.collect_garbage();
        Ok(self
            .store
            .lock()
            .get(&key)
            .map(|v| (**v).clone())
            .unwrap_or_else(|| (*stored).clone()))
    }

    pub(super) fn delete_collection(&self, t: &Target, q: &Query, user: &UserInfo) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(&t.rt, q)?;
        let names: Vec<(String, String)> = {
            let inner = self.store.lock();
            let resource = t.rt.group_resource();
            let mut names: Vec<(String, String)> = inner
                .list(&resource, t.namespace.as_deref())
                .filter(|(_, v)| labels.matches(v) && fields.matches(v))
                .map(|(k, _)| (k.namespace.clone(), k.name.clone()))
                .collect();
            // Events written through the other Events API, as this one shows them.
            if let Some((twin, convert)) = crate::events::twin(&resource) {
                names.extend(
                    inner
                        .list(twin, t.namespace.as_deref())
                        .filter(|(_, v)| {
                            let shown = convert(v);
                            labels.matches(&shown) && fields.matches(&shown)
                        })
                        .map(|(k, _)| (k.namespace.clone(), k.name.clone())),
                );
            }
            names
        };
        let mut items = Vec::new();
        for (ns, name) in names {
            let ns = if t.rt.namespaced { Some(ns.as_str()) } else { None };
            if let Ok(v) = self.delete(&t.rt, ns, &name, &json!({}), q, Some(user)) {
                items.push(v);
            }
        }
        Ok(json_response(
            200,
            &json!({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version(), "metadata": {}, "items": items}),
            &[],
        ))
    }
}
