//! The `scale` subresource: an autoscaling/v1 Scale view of a kind's replicas (apps/v1
//! Deployments, ReplicaSets, StatefulSets, and CRDs declaring `subresources.scale`). GET shows
//! it; PUT and PATCH change the replicas of the object, through admission with Scale objects,
//! as kube-apiserver does for `kubectl scale` and autoscalers.

use super::*;
use crate::registry::ScalePaths;

/// How a request changes a Scale.
pub(super) enum ScaleChange<'a> {
    /// PUT: the new Scale.
    Replace(Value),
    /// PATCH of the Scale.
    Patch(PatchType, &'a Bytes),
}

/// A LabelSelector (`matchLabels`, `matchExpressions`) as a selector string.
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// The Scale of an object.
pub(super) fn scale_of(paths: &ScalePaths, obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut metadata = json!({});
    for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(key) {
            metadata[key] = v.clone();
        }
    }
    let replicas = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let mut status = json!({"replicas": replicas(&paths.status_replicas)});
    let selector = match &paths.label_selector {
        Some(p) => obj.pointer(p).and_then(Value::as_str).map(str::to_string),
        None => obj.pointer("/spec/selector").map(selector_string),
    };
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        status["selector"] = json!(s);
    }
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": metadata,
           "spec": {"replicas": replicas(&paths.spec_replicas)}, "status": status})
}

/// Sets the value at a JSON pointer, creating the objects on the way.
fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut node = obj;
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, segment) in segments.iter().enumerate() {
        if !node.is_object() {
            *node = json!({});
        }
        let map = node.as_object_mut().expect("made an object");
        if i + 1 == segments.len() {
            map.insert(segment.clone(), value);
            return;
        }
        node = map.entry(segment.clone()).or_insert_with(|| json!({}));
    }
}

impl ApiServer {
    /// GET of a Scale.
    pub(super) fn scale_get(&self, t: &Target, name: &str) -> Result<Value, ApiError> {
        let paths = t.rt.scale.as_ref().ok_or_else(ApiError::method_not_allowed)?;
        let obj = self.get(&t.rt, t.namespace.as_deref(), name)?;
        Ok(scale_of(paths, &obj))
    }

    /// PUT or PATCH of a Scale: the new replicas go to the object, after admission of the
    /// Scale (kind autoscaling/v1 Scale, resource `<plural>`, subresource `scale`). Returns the
    /// new Scale and the warnings.
    pub(super) fn scale_write(
        &self,
        t: &Target,
        name: &str,
        change: ScaleChange<'_>,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let rt = &t.rt;
        let paths = rt.scale.as_ref().ok_or_else(ApiError::method_not_allowed)?;
        let dry = dry_run(q)?;
        let key = Self::key(rt, t.namespace.as_deref(), name);
        for _attempt in 0..16 {
            let old = self.get(rt, t.namespace.as_deref(), name)?;
            let old_scale = scale_of(paths, &old);
            let new_scale = match &change {
                ScaleChange::Replace(v) => v.clone(),
                ScaleChange::Patch(PatchType::Apply, _) => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "apply patches of the scale subresource are not supported by the sandbox: use a merge patch or kubectl scale",
                    ));
                }
                ScaleChange::Patch(kind, body) => {
                    let doc: Value = serde_json::from_slice(body)
                        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                    if *kind == PatchType::Strategic {
                        patch::apply_strategic(&old_scale, &doc)?
                    } else {
                        patch::apply_json_or_merge(*kind, &old_scale, &doc)?
                    }
                }
            };
            let replicas = match new_scale.pointer("/spec/replicas") {
                None | Some(Value::Null) => 0,
                Some(v) => match v.as_i64().filter(|r| *r >= 0 && *r <= i64::from(i32::MAX)) {
                    Some(r) => r,
                    None => {
                        let detail = format!("Invalid value: {v}: must be a whole number greater than or equal to 0");
                        return Err(ApiError::invalid(
                            "autoscaling",
                            "Scale",
                            name,
                            format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: {detail}"),
                            vec![json!({"reason": "FieldValueInvalid", "message": detail, "field": "spec.replicas"})],
                        ));
                    }
                },
            };
            if str_field(&new_scale, "/metadata/resourceVersion")
                .filter(|r| !r.is_empty())
                .is_some_and(|r| r != rv_of(&old).to_string())
            {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
            let mut warnings = Vec::new();
            let options = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
            let request = user.map(|user| AdmissionRequest {
                rt,
                subresource: Some("scale"),
                object_kind: Some(("autoscaling", "v1", "Scale")),
                operation: "UPDATE",
                name,
                namespace: t.namespace.as_deref(),
                old: Some(&old_scale),
                dry_run: dry,
                options,
                user,
            });
            let new_scale = match &request {
                Some(r) => self.mutate(r, new_scale, &mut warnings)?,
                None => new_scale,
            };
            if let Some(r) = &request {
                self.validate_admission(r, Some(&new_scale), &mut warnings)?;
            }
            let mut candidate = old.as_ref().clone();
            set_pointer(&mut candidate, &paths.spec_replicas, json!(replicas));
            // The object changes as by an update of its spec (a new generation).
            let merged = self.merge_update(rt, None, &old, &candidate);
            let (merged, more) = self.validate_custom(rt, &merged, Some(&old), Some("scale"), q)?;
            warnings.extend(more);
            match self.finish_update(rt, &key, &old, merged, Some(manager), Some("scale"), dry) {
                Ok(stored) => return Ok((scale_of(paths, &stored), warnings)),
                Err(Some(e)) => return Err(e),
                Err(None) => continue,
            }
        }
        Err(ApiError::conflict(&rt.group, &rt.plural, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_shows_replicas_and_the_selector() {
        let paths = ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: None,
        };
        let deployment = json!({"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
            "status": {"replicas": 2}});
        let scale = scale_of(&paths, &deployment);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web,tier in (a,b)");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
        assert!(scale["metadata"].get("labels").is_none());
        let mut obj = json!({"spec": {}});
        set_pointer(&mut obj, "/spec/size/count", json!(4));
        assert_eq!(obj, json!({"spec": {"size": {"count": 4}}}));
    }
}
