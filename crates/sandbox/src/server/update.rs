//! Updates and patches: merging, admission (mutating, then validating), and the commit.

use super::*;

impl ApiServer {
    /// Computes the object an update stores, from the old one and the request's object.
    pub(super) fn merge_update(&self, rt: &ResourceType, sub: Option<&str>, old: &Value, new: &Value) -> Value {
        let mut out = if sub == Some("approval") {
            // A CertificateSigningRequest's approval: its conditions, nothing else.
            let mut o = old.clone();
            o["status"]["conditions"] = new.pointer("/status/conditions").cloned().unwrap_or(Value::Null);
            o
        } else if sub == Some("finalize") {
            // A namespace's finalize: its spec's finalizers, nothing else.
            let mut o = old.clone();
            set_namespace_finalizers(&mut o, new);
            o
        } else if sub == Some("ephemeralcontainers") {
            // A Pod's ephemeral containers, nothing else.
            let mut o = old.clone();
            match (
                new.pointer("/spec/ephemeralContainers"),
                o.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                (Some(e), Some(spec)) if !e.is_null() => {
                    spec.insert("ephemeralContainers".into(), e.clone());
                }
                (_, Some(spec)) => {
                    spec.remove("ephemeralContainers");
                }
                _ => {}
            }
            o
        } else if sub == Some("resize") {
            // A Pod's containers' resources and resize policies, nothing else.
            crate::validation::merge_resize(old, new)
        } else if sub == Some("status") {
            let mut o = old.clone();
            match new.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            o
        } else {
            let mut o = new.clone();
            if rt.has_status {
                match old.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            // Labels, annotations, finalizers and owner references come from the request;
            // the rest of metadata is the server's.
            let new_meta = new.get("metadata").cloned().unwrap_or(json!({}));
            let mut m = old.get("metadata").cloned().unwrap_or(json!({}));
            for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
                match new_meta.get(key) {
                    Some(v) if !v.is_null() => m[key] = v.clone(),
                    _ => {
                        if let Some(mm) = m.as_object_mut() {
                            mm.remove(key);
                        }
                    }
                }
            }
            o["metadata"] = m;
            if rt.is_namespace() {
                // Only the finalize subresource changes a namespace's finalizers.
                set_namespace_finalizers(&mut o, old);
            }
            o
        };
        if let Some(o) = out.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
        if sub.is_none() && rt.tracks_generation() && content(&out) != content(old) {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            if let Some(m) = meta_mut(&mut out) {
                m.insert("generation".into(), json!(generation + 1));
            }
        }
        out
    }

    /// Runs mutating webhooks on a new object (CREATE or UPDATE).
    pub(super) fn mutate(
        &self,
        request: &AdmissionRequest,
        object: Value,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        let mut slot = Some(object);
        self.admission
            .admit(&self.store, Phase::Mutating, request, &mut slot, warnings)?;
        slot.ok_or_else(|| ApiError::internal("a mutating webhook removed the object"))
    }

    /// Runs ValidatingAdmissionPolicies, then validating webhooks, on the object about to be
    /// stored (`None` for a DELETE).
    pub(super) fn validate_admission(
        &self,
        request: &AdmissionRequest,
        object: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        crate::admission::policy::validate(&self.store, self, request, object, warnings)?;
        let mut slot = object.cloned();
        self.admission
            .admit(&self.store, Phase::Validating, request, &mut slot, warnings)
    }

    /// An update's admission, in kube-apiserver's order: mutating webhooks on the requested
    /// object, the server's update rules (status, metadata, generation), schema validation,
    /// then validating webhooks. Returns the object to store, the warnings, and what a Service
    /// holds on its way to the store (to be kept until the commit).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admit_update(
        &self,
        t: &Target,
        name: &str,
        old: &Value,
        candidate: Value,
        q: &Query,
        options: Value,
        user: Option<&UserInfo>,
        keep_managed: bool,
    ) -> Result<(Value, Vec<String>, Option<super::services::Reserved>), ApiError> {
        let mut candidate = candidate;
        super::workloads::apply_defaults(&t.rt, &mut candidate);
        let rt = &t.rt;
        let mut admission_warnings = Vec::new();
        let dry = dry_run(q)?;
        let request = user.map(|user| AdmissionRequest {
            rt,
            object_kind: None,
            subresource: t.subresource.as_deref(),
            operation: "UPDATE",
            name,
            namespace: t.namespace.as_deref(),
            old: Some(old),
            dry_run: dry,
            options,
            user,
        });
        let candidate = match &request {
            Some(r) => self.mutate(r, candidate, &mut admission_warnings)?,
            None => candidate,
        };
        let mut merged = self.merge_update(rt, t.subresource.as_deref(), old, &candidate);
        let reserved = if rt.group.is_empty() && rt.plural == "services" && t.subresource.is_none() {
            self.allocate_service(rt, &mut merged, Some(old))?
        } else {
            None
        };
        if keep_managed
            && let Some(mf) = candidate.pointer("/metadata/managedFields").cloned()
            && let Some(meta) = meta_mut(&mut merged)
        {
            meta.insert("managedFields".into(), mf);
        }
        let (merged, mut warnings) = self.validate_custom(rt, &merged, Some(old), t.subresource.as_deref(), q)?;
        if let Some(r) = &request {
            self.validate_admission(r, Some(&merged), &mut warnings)?;
        }
        warnings.splice(0..0, admission_warnings);
        Ok((merged, warnings, reserved))
    }

    /// The end of an update or patch: managed fields for an updater, the commit, and what
    /// follows a write. Errors as `commit_update`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_update(
        &self,
        rt: &ResourceType,
        key: &Key,
        old: &Value,
        mut new: Value,
        updater: Option<&str>,
        subresource: Option<&str>,
        dry: bool,
    ) -> Result<Value, Option<ApiError>> {
        if rt.is_namespace() {
            // kube-apiserver keeps this label equal to the namespace's name, whatever the
            // update says.
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(key.name);
        }
        meta::omit_empty(&mut new);
        if let Some(manager) = updater {
            managed::record_update(Some(old), &mut new, manager, &rt.api_version(), subresource);
        }
        let stored = self.commit_update(rt, key, old, new, dry)?;
        self.after_write(rt, key);
        Ok(stored)
    }

    /// Stores an updated object if `old` is still current. Returns Err(None) when the
    /// object changed in between (retry), Err(Some(e)) on other errors.
    pub(super) fn commit_update(
        &self,
        rt: &ResourceType,
        key: &Key,
        old: &Value,
        mut new: Value,
        dry: bool,
    ) -> Result<Value, Option<ApiError>> {
        let mut inner = self.store.lock();
        match inner.get(key) {
            Some(current) if rv_of(current) == rv_of(old) => {}
            Some(_) => return Err(None),
            None => return Err(Some(ApiError::not_found(&rt.group, &rt.plural, &key.name))),
        }
        if dry {
            return Ok(new);
        }
        // An object being deleted goes once its last finalizer is gone (a namespace also
        // waits for the finalizers of its spec).
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let finalizers_left = !finalized(&new);
        if new == *old {
            return Ok(new);
        }
        let rv = inner.next_rv();
        if let Some(m) = meta_mut(&mut new) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let stored = inner.put(&self.store, key.clone(), new);
        if deleting && !finalizers_left {
            let gone = inner.remove(&self.store, key);
            drop(inner);
            self.after_delete(rt, key);
            return Ok(gone.map(|g| (*g).clone()).unwrap_or_default());
        }
        Ok((*stored).clone())
    }

    pub(super) fn update(
        &self,
        t: &Target,
        name: &str,
        obj: Value,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let rt = &t.rt;
        self.check_identity(rt, t.namespace.as_deref(), &obj)?;
        if str_field(&obj, "/metadata/name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                str_field(&obj, "/metadata/name").unwrap_or_default()
            )));
        }
        let dry = dry_run(q)?;
        let key = Self::key(rt, t.namespace.as_deref(), name);
        let old = self.get(rt, t.namespace.as_deref(), name)?;
        let requested_rv = str_field(&obj, "/metadata/resourceVersion")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if requested_rv.as_deref().is_some_and(|r| r != rv_of(&old).to_string()) {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        let options = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
        let (merged, warnings, _reserved) = self.admit_update(t, name, &old, obj, q, options, user, false)?;
        match self.finish_update(rt, &key, &old, merged, Some(manager), t.subresource.as_deref(), dry) {
            Ok(v) => Ok((v, warnings)),
            Err(Some(e)) => Err(e),
            Err(None) => Err(ApiError::conflict(&rt.group, &rt.plural, name)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn patch(
        &self,
        t: &Target,
        name: &str,
        kind: PatchType,
        body: &Bytes,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, u16, Vec<String>), ApiError> {
        let rt = &t.rt;
        let patch_doc: Value = if kind == PatchType::Apply {
            let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
            serde_yaml_ng::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        let dry = dry_run(q)?;
        let key = Self::key(rt, t.namespace.as_deref(), name);
        for _attempt in 0..16 {
            let current = self.store.lock().get(&key).cloned();
            let old = match current {
                Some(o) => o,
                None if kind == PatchType::Apply && t.subresource.is_none() => {
                    // Server-side apply creates.
                    self.check_identity(rt, t.namespace.as_deref(), &patch_doc)?;
                    let mut obj = patch_doc.clone();
                    if let Some(m) = meta_mut(&mut obj) {
                        m.insert("name".into(), json!(name));
                    }
                    let created = self.create_checked(rt, t.namespace.as_deref(), obj, q, manager, user)?;
                    let mut with_apply = created.0.clone();
                    managed::set_managed(&mut with_apply, vec![]);
                    let applied = managed::server_side_apply(None, &with_apply, manager, &rt.api_version(), None, true)
                        .map_err(|_| ApiError::internal("apply on create cannot conflict"))?;
                    let stored = self
                        .commit_update(rt, &key, &created.0, applied, dry)
                        .unwrap_or(created.0);
                    return Ok((stored, 201, created.1));
                }
                None => return Err(ApiError::not_found(&rt.group, &rt.plural, name)),
            };
            let candidate = match kind {
                PatchType::Json | PatchType::Merge => patch::apply_json_or_merge(kind, &old, &patch_doc)?,
                PatchType::Strategic => {
                    if rt.custom {
                        return Err(ApiError::new(
                            415,
                            "UnsupportedMediaType",
                            "strategic merge patch is not supported for custom resources: use a JSON merge patch (--type=merge) or a JSON patch",
                        ));
                    }
                    patch::apply_strategic(&old, &patch_doc)?
                }
                PatchType::Apply => {
                    self.check_identity(rt, t.namespace.as_deref(), &patch_doc)?;
                    let force = truthy(q, "force");
                    if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                        return Err(ApiError::bad_request(
                            "PATCH with apply requires a fieldManager parameter",
                        ));
                    }
                    managed::server_side_apply(
                        Some(&old),
                        &patch_doc,
                        manager,
                        &rt.api_version(),
                        t.subresource.as_deref(),
                        force,
                    )
                    .map_err(|conflicts| {
                        let causes: Vec<Value> = conflicts
                            .iter()
                            .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.path}))
                            .collect();
                        ApiError {
                            code: 409,
                            reason: "Conflict",
                            message: managed::conflict_message(&conflicts),
                            details: Some(json!({"causes": causes})),
                        }
                    })?
                }
            };
            if str_field(&candidate, "/metadata/resourceVersion").is_some_and(|r| r != rv_of(&old).to_string()) {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
            let options = json!({"kind": "PatchOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
            // Apply already recorded its own managed fields.
            let keep_managed = kind == PatchType::Apply;
            let (merged, warnings, _reserved) =
                self.admit_update(t, name, &old, candidate, q, options, user, keep_managed)?;
            // Apply recorded its own managed fields; the other patches are updates.
            let updater = (kind != PatchType::Apply).then_some(manager);
            match self.finish_update(rt, &key, &old, merged, updater, t.subresource.as_deref(), dry) {
                Ok(v) => return Ok((v, 200, warnings)),
                Err(Some(e)) => return Err(e),
                Err(None) => continue,
            }
        }
        Err(ApiError::conflict(&rt.group, &rt.plural, name))
    }
}

/// Sets a namespace's `spec.finalizers` to those of `from` (none when `from` has none).
fn set_namespace_finalizers(namespace: &mut Value, from: &Value) {
    match from.pointer("/spec/finalizers") {
        Some(f) if !f.is_null() => namespace["spec"]["finalizers"] = f.clone(),
        _ => {
            if let Some(spec) = namespace.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
    }
}
