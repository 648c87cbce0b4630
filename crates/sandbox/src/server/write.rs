//! Creation: identity, name and namespace checks, CRD schema and CEL validation, admission.

use super::*;

impl ApiServer {
    /// Validates a custom resource against its CRD, returning the defaulted, pruned object.
    pub(super) fn validate_custom(
        &self,
        rt: &ResourceType,
        obj: &Value,
        old: Option<&Value>,
        subresource: Option<&str>,
        q: &Query,
    ) -> Result<(Value, Vec<String>), ApiError> {
        if rt.group == "admissionregistration.k8s.io" {
            let errors = crate::admission::policy::check(&rt.kind, obj);
            if !errors.is_empty() {
                return Err(invalid(rt, obj, errors));
            }
        }
        let content = |checked: (Value, Vec<String>)| {
            let problems = crate::validation::problems(&rt.group, &rt.kind, rt.custom, &checked.0, old, subresource);
            if problems.is_empty() {
                Ok(checked)
            } else {
                let errors = problems.into_iter().map(|p| (p.field, p.reason, p.message)).collect();
                Err(invalid(rt, &checked.0, errors))
            }
        };
        if !rt.custom {
            return content(self.validate_builtin(rt, obj, q)?);
        }
        let mode = field_validation(q)?;
        let validator = self.validator.read().unwrap_or_else(|p| p.into_inner());
        match validator.validate(obj, old, mode) {
            Ok(v) => content((v.object, v.warnings)),
            Err(Rejected::Invalid(invalid)) => {
                let causes = invalid
                    .causes
                    .iter()
                    .map(|c| {
                        let text = c.to_string();
                        let message = text.strip_prefix(&format!("{}: ", c.path)).unwrap_or(&text).to_string();
                        json!({"reason": c.kind.cause_reason(), "message": message, "field": c.path})
                    })
                    .collect();
                Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    &invalid.name,
                    invalid.to_string(),
                    causes,
                ))
            }
            Err(e @ Rejected::StrictDecoding { .. }) => Err(ApiError::bad_request(e.to_string())),
            Err(e @ Rejected::UnknownKind { .. }) => Err(ApiError::internal(e.to_string())),
        }
    }

    /// Reads a built-in object as its k8s-openapi type, as kube-apiserver decodes it: a field
    /// of the wrong type is a 400; unknown fields are dropped, with a warning (`Warn`, the
    /// default), silently (`Ignore`), or refused (`Strict`).
    pub(super) fn validate_builtin(
        &self,
        rt: &ResourceType,
        obj: &Value,
        q: &Query,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let Some(entry) = crate::catalogue::find(&rt.group, &rt.version, &rt.kind) else {
            return Ok((obj.clone(), vec![]));
        };
        let mode = field_validation(q)?;
        let checked = (entry.check)(obj);
        let cannot = format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}",
            kind = rt.kind,
            v = rt.version
        );
        if let Some(e) = checked.type_error {
            return Err(ApiError::bad_request(format!("{cannot}: {e}")));
        }
        if checked.unknown.is_empty() {
            return Ok((obj.clone(), vec![]));
        }
        let names: Vec<String> = checked
            .unknown
            .iter()
            .map(|u| format!("unknown field \"{}\"", u.name))
            .collect();
        let warnings = match mode {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "{cannot}: strict decoding error: {}",
                    names.join(", ")
                )));
            }
            FieldValidation::Warn => names,
            FieldValidation::Ignore => vec![],
        };
        let mut pruned = obj.clone();
        // Deepest first, and list items from the last, so that earlier pointers stay valid.
        let mut pointers: Vec<&str> = checked.unknown.iter().map(|u| u.pointer.as_str()).collect();
        pointers.sort_unstable_by(|a, b| b.cmp(a));
        for p in pointers {
            if let Some((parent, last)) = p.rsplit_once('/') {
                let last = last.replace("~1", "/").replace("~0", "~");
                match pruned.pointer_mut(parent) {
                    Some(Value::Object(m)) => {
                        m.remove(&last);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>()
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok((pruned, warnings))
    }

    pub(super) fn check_identity(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON or YAML object"));
        }
        let api_version = str_field(obj, "/apiVersion").unwrap_or_default();
        let kind = str_field(obj, "/kind").unwrap_or_default();
        if api_version != rt.api_version() && !api_version.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
        if kind != rt.kind && !kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        if rt.namespaced
            && let (Some(body_ns), Some(url_ns)) = (str_field(obj, "/metadata/namespace"), namespace)
            // An empty namespace in the body is the request's, as kube-apiserver reads it.
            && !body_ns.is_empty()
            && body_ns != url_ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    pub(super) fn check_name(&self, rt: &ResourceType, name: &str) -> Result<(), ApiError> {
        let problems = if rt.is_namespace() {
            validate_dns1123_label(name)
        } else if rt.group == "rbac.authorization.k8s.io" || rt.group == "apiregistration.k8s.io" {
            // RBAC objects take any path segment: `system:discovery`, `edit`; APIServices are
            // named `<version>.<group>`, `v1.` for the core group.
            crate::validation::path_segment_problems(name)
        } else {
            validate_dns1123_subdomain(name)
        };
        if let Some(p) = problems.into_iter().next() {
            let cause = format!("metadata.name: Invalid value: {name:?}: {p}");
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                name,
                format!("{} \"{name}\" is invalid: {cause}", rt.kind),
                vec![
                    json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {name:?}: {p}"), "field": "metadata.name"}),
                ],
            ));
        }
        Ok(())
    }

    pub(super) fn check_namespace(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = namespace.ok_or_else(|| ApiError::bad_request("a namespace is required for this resource"))?;
        let inner = self.store.lock();
        match inner.get(&Key::new("/namespaces", "", ns)) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ApiError::qualified(&rt.group, &rt.plural),
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Creates an object (the POST handler and internal callers).
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        obj: Value,
        q: &Query,
        manager: &str,
    ) -> Result<Value, ApiError> {
        self.create_checked(rt, namespace, obj, q, manager, None)
            .map(|(v, _)| v)
    }

    /// Creates an object; `user` is the requester, whose request passes admission webhooks
    /// (`None`: the sandbox's own writes, which do not).
    pub(super) fn create_checked(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut obj: Value,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        self.check_identity(rt, namespace, &obj)?;
        super::workloads::apply_defaults(rt, &mut obj);
        let dry = dry_run(q)?;
        let name = match str_field(&obj, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match str_field(&obj, "/metadata/generateName") {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            rt.kind
                        ),
                        vec![
                            json!({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}),
                        ],
                    ));
                }
            },
        };
        self.check_name(rt, &name)?;
        self.check_namespace(rt, namespace, &name)?;
        {
            let o = obj
                .as_object_mut()
                .ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
            if rt.has_status && rt.custom {
                o.remove("status");
            }
        }
        let mut admission_warnings = Vec::new();
        let request = user.map(|user| AdmissionRequest {
            rt,
            object_kind: None,
            subresource: None,
            operation: "CREATE",
            name: &name,
            namespace,
            old: None,
            dry_run: dry,
            options: json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager}),
            user,
        });
        if rt.group.is_empty() && rt.plural == "pods" {
            // Built-in admission plugins run before mutating webhooks. The ServiceAccount
            // plugin refuses a Pod whose ServiceAccount does not exist.
            let store = self.store.lock();
            let ns = namespace.unwrap_or_default();
            let account = obj
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
                .unwrap_or("default");
            if store.get(&Key::new("/serviceaccounts", ns, account)).is_none() {
                let mut e = ApiError::forbidden(format!(
                    "pods {name:?} is forbidden: error looking up service account {ns}/{account}: serviceaccount {account:?} not found"
                ));
                e.details = Some(json!({"name": name, "kind": "pods"}));
                return Err(e);
            }
            let automounts = |account: &str| {
                let key = Key::new("/serviceaccounts", namespace.unwrap_or_default(), account);
                store
                    .get(&key)
                    .and_then(|sa| sa.get("automountServiceAccountToken").and_then(Value::as_bool))
                    != Some(false)
            };
            super::workloads::admit_new_pod(&mut obj, automounts);
        }
        if let Some(request) = &request {
            obj = self.mutate(request, obj, &mut admission_warnings)?;
        }
        if let Some(m) = meta_mut(&mut obj) {
            m.insert("name".into(), json!(name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(namespace.unwrap_or_default()));
            } else {
                m.remove("namespace");
            }
            for server_set in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            ] {
                m.remove(server_set);
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            if rt.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
            // Only what kube-apiserver writes: no empty generateName (protobuf bodies carry one).
            if m.get("generateName").is_some_and(|g| g == "") {
                m.remove("generateName");
            }
        }
        if rt.plural == "certificatesigningrequests"
            && let Some(requester) = user
            && obj.get("spec").is_some_and(Value::is_object)
        {
            // kube-apiserver records who asked, whatever the request says.
            obj["spec"]["username"] = json!(requester.name);
            obj["spec"]["groups"] = json!(requester.groups);
            if requester.uid.is_empty() {
                if let Some(spec) = obj["spec"].as_object_mut() {
                    spec.remove("uid");
                }
            } else {
                obj["spec"]["uid"] = json!(requester.uid);
            }
        }
        if rt.is_namespace() {
            // kube-apiserver labels every namespace with its name, for namespace selectors,
            // and adds its own finalizer to those asked for.
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            obj["status"] = json!({"phase": "Active"});
            let mut finalizers = obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !finalizers.contains(&json!(NAMESPACE_FINALIZER)) {
                finalizers.push(json!(NAMESPACE_FINALIZER));
            }
            obj["spec"] = json!({"finalizers": finalizers});
        }
        if rt.group == "batch" && rt.plural == "jobs" {
            super::workloads::select_own_pods(&mut obj);
        }
        if rt.group.is_empty() && rt.plural == "pods" {
            super::workloads::apply_match_label_keys(&mut obj);
            // kube-apiserver's own status of a new Pod: pending, in the QoS class its
            // containers' requests and limits make.
            let qos = crate::validation::qos_class(obj.get("spec").unwrap_or(&Value::Null));
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        // Kept until the Service is stored or refused.
        let _reserved = if rt.group.is_empty() && rt.plural == "services" {
            self.allocate_service(rt, &mut obj, None)?
        } else {
            None
        };
        let (mut obj, mut warnings) = self.validate_custom(rt, &obj, None, None, q)?;
        if let Some(request) = &request {
            self.validate_admission(request, Some(&obj), &mut warnings)?;
        }
        warnings.splice(0..0, admission_warnings);
        meta::omit_empty(&mut obj);
        crate::managed::record_update(None, &mut obj, manager, &rt.api_version(), None);
        let key = Self::key(rt, namespace, &name);
        let mut inner = self.store.lock();
        // An Event's name is taken through both Events APIs: they are one resource.
        let twin_taken = crate::events::twin(&key.resource)
            .is_some_and(|(twin, _)| inner.get(&Key::new(twin, &key.namespace, &key.name)).is_some());
        if inner.get(&key).is_some() || twin_taken {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        if dry {
            return Ok((obj, warnings));
        }
        let rv = inner.next_rv();
        if let Some(m) = meta_mut(&mut obj) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let stored = inner.put(&self.store, key, obj);
        drop(inner);
        if rt.is_namespace() {
            self.populate_namespace(&name);
        }
        if rt.group == "admissionregistration.k8s.io" && rt.plural == "validatingadmissionpolicies" {
            self.observe_policy(&Self::key(rt, None, &name));
        }
        if rt.group == "rbac.authorization.k8s.io" && rt.plural == "clusterroles" {
            self.aggregate_cluster_roles();
        }
        if rt.plural == "customresourcedefinitions" && rt.group == "apiextensions.k8s.io" {
            self.establish_crd(&name);
            // Answered with its status (accepted names, stored versions), as kube-apiserver
            // answers a CRD's creation.
            if let Some(current) = self.store.lock().get(&Self::key(rt, None, &name)) {
                return Ok(((**current).clone(), warnings));
            }
        }
        Ok(((*stored).clone(), warnings))
    }
}

/// kube-apiserver's 422 for field errors (field, cause reason, message after the field):
/// `Kind.group "name" is invalid: error` (`[error, error]` for several).
pub(super) fn invalid(rt: &ResourceType, obj: &Value, errors: Vec<(String, &'static str, String)>) -> ApiError {
    let name = str_field(obj, "/metadata/name").unwrap_or_default();
    let texts: Vec<String> = errors.iter().map(|(f, _, m)| format!("{f}: {m}")).collect();
    let detail = match texts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let causes = errors
        .into_iter()
        .map(|(f, reason, m)| json!({"reason": reason, "message": m, "field": f}))
        .collect();
    let kind = if rt.group.is_empty() {
        rt.kind.clone()
    } else {
        format!("{}.{}", rt.kind, rt.group)
    };
    ApiError::invalid(
        &rt.group,
        &rt.kind,
        name,
        format!("{kind} {name:?} is invalid: {detail}"),
        causes,
    )
}
