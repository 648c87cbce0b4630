//! The access reviews of `authorization.k8s.io/v1`: SelfSubjectAccessReview (what the requester
//! may do), SubjectAccessReview (what anyone may do) and LocalSubjectAccessReview (the same,
//! within the request's namespace), answered by the RBAC the sandbox enforces with `--rbac`
//! and checked as kube-apiserver checks them.

use super::*;
use crate::rbac::{Attributes, UserInfo};

/// Go's rendering of an internal struct in a field error (`%#v`), for the non-resource
/// attributes kube-apiserver reports as a bad value; `"null"` when they are absent.
fn go_non_resource(attributes: Option<&Value>) -> String {
    match attributes {
        None => "\"null\"".into(),
        Some(a) => {
            let field = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            format!(
                "authorization.NonResourceAttributes{{Path:{:?}, Verb:{:?}}}",
                field("path"),
                field("verb")
            )
        }
    }
}

/// Go's `%#v` of a `metav1.ObjectMeta`, as kube-apiserver prints the metadata of a review it
/// refuses. Pointers print as Go prints nil ones or, when set, with a placeholder address (Go
/// prints the memory address, which means nothing here).
fn go_object_meta(meta: &Value) -> String {
    let quoted = |v: &Value, k: &str| format!("{:?}", v.get(k).and_then(Value::as_str).unwrap_or_default());
    let text = |k: &str| quoted(meta, k);
    let string_map = |k: &str| match meta.get(k).and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                .collect();
            entries.sort();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    };
    let time = |k: &str| {
        let t = meta.get(k).and_then(Value::as_str)?.parse::<jiff::Timestamp>().ok()?;
        Some(
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .strftime("time.Date(%Y, time.%B, %-d, %-H, %-M, %-S, 0, time.Local)")
                .to_string(),
        )
    };
    // A Go slice of `ty` (nil when absent), each item as `item` prints it.
    let slice = |k: &str, ty: &str, item: &dyn Fn(&Value) -> String| match meta.get(k).and_then(Value::as_array) {
        None => format!("[]{ty}(nil)"),
        Some(list) => format!("[]{ty}{{{}}}", list.iter().map(item).collect::<Vec<_>>().join(", ")),
    };
    // A set pointer: Go prints its address, which means nothing here.
    let pointer = |v: Option<&Value>, ty: &str| match v {
        Some(v) if !v.is_null() => format!("(*{ty})(0xc000000000)"),
        _ => format!("(*{ty})(nil)"),
    };
    let finalizers = slice("finalizers", "string", &|f| {
        format!("{:?}", f.as_str().unwrap_or_default())
    });
    let owners = slice("ownerReferences", "v1.OwnerReference", &|o| {
        format!(
            "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
            quoted(o, "apiVersion"),
            quoted(o, "kind"),
            quoted(o, "name"),
            quoted(o, "uid"),
            pointer(o.get("controller"), "bool"),
            pointer(o.get("blockOwnerDeletion"), "bool")
        )
    });
    let managed = slice("managedFields", "v1.ManagedFieldsEntry", &|e| {
        format!(
            "v1.ManagedFieldsEntry{{Manager:{}, Operation:{}, APIVersion:{}, Time:{}, FieldsType:{}, FieldsV1:{}, Subresource:{}}}",
            quoted(e, "manager"),
            quoted(e, "operation"),
            quoted(e, "apiVersion"),
            pointer(e.get("time"), "v1.Time"),
            quoted(e, "fieldsType"),
            pointer(e.get("fieldsV1"), "v1.FieldsV1"),
            quoted(e, "subresource")
        )
    });
    format!(
        "v1.ObjectMeta{{Name:{}, GenerateName:{}, Namespace:{}, SelfLink:{}, UID:{}, ResourceVersion:{}, \
         Generation:{}, CreationTimestamp:{}, DeletionTimestamp:{}, DeletionGracePeriodSeconds:{}, Labels:{}, \
         Annotations:{}, OwnerReferences:{owners}, Finalizers:{finalizers}, ManagedFields:{managed}}}",
        text("name"),
        text("generateName"),
        text("namespace"),
        text("selfLink"),
        text("uid"),
        text("resourceVersion"),
        meta.get("generation").and_then(Value::as_i64).unwrap_or(0),
        time("creationTimestamp").unwrap_or_else(|| "time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)".into()),
        time("deletionTimestamp").unwrap_or_else(|| "<nil>".into()),
        pointer(meta.get("deletionGracePeriodSeconds"), "int64"),
        string_map("labels"),
        string_map("annotations"),
    )
}

impl ApiServer {
    /// Answers an access review `t` names, asked by `requester`: the review with its status.
    pub(super) fn access_review(&self, t: &Target, mut review: Value, requester: &UserInfo) -> Result<Value, ApiError> {
        let kind = t.rt.kind.as_str();
        let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
        let present = |key: &str| spec.get(key).filter(|v| !v.is_null()).cloned();
        let (resource, non_resource) = (present("resourceAttributes"), present("nonResourceAttributes"));
        let text = |v: Option<&Value>, key: &str| {
            v.and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if kind == "LocalSubjectAccessReview" {
            // The object's namespace is the request's (a different one was refused earlier).
            review["metadata"]["namespace"] = json!(t.namespace.as_deref().unwrap_or_default());
        }
        // kube-apiserver's validation of the spec: (field, bad value as Go prints it, detail).
        let mut errors: Vec<(&str, String, &str)> = Vec::new();
        match (&resource, &non_resource) {
            (Some(_), Some(n)) => errors.push((
                "spec.nonResourceAttributes",
                go_non_resource(Some(n)),
                "cannot be specified in combination with resourceAttributes",
            )),
            (None, None) => errors.push((
                "spec.resourceAttributes",
                go_non_resource(None),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )),
            _ => {}
        }
        let subject = if kind == "SelfSubjectAccessReview" {
            requester.clone()
        } else {
            let groups: Vec<String> = spec
                .get("groups")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let user = text(Some(&spec), "user");
            if user.is_empty() && groups.is_empty() {
                errors.push((
                    "spec.user",
                    "\"\"".into(),
                    "at least one of user or group must be specified",
                ));
            }
            UserInfo {
                name: user,
                uid: text(Some(&spec), "uid"),
                groups,
            }
        };
        if kind == "LocalSubjectAccessReview" {
            let asked = text(resource.as_ref(), "namespace");
            if resource.is_some() && Some(asked.as_str()) != t.namespace.as_deref() {
                errors.push((
                    "spec.resourceAttributes.namespace",
                    format!("{asked:?}"),
                    "must match metadata.namespace",
                ));
            }
            if non_resource.is_some() {
                errors.push((
                    "spec.nonResourceAttributes",
                    go_non_resource(non_resource.as_ref()),
                    "disallowed on this kind of request",
                ));
            }
        }
        // A review is no stored object: its metadata must be empty (but for the namespace of a
        // local one, which is the request's), managed fields aside.
        let mut meta = review.get("metadata").cloned().unwrap_or(Value::Null);
        if let Some(m) = meta.as_object_mut() {
            m.remove("managedFields");
            if kind == "LocalSubjectAccessReview" {
                m.remove("namespace");
            }
        }
        if !crate::validation::go_zero(&meta) {
            errors.push((
                "metadata",
                go_object_meta(review.get("metadata").unwrap_or(&Value::Null)),
                if kind == "LocalSubjectAccessReview" {
                    "must be empty except for namespace"
                } else {
                    "must be empty"
                },
            ));
        }
        if !errors.is_empty() {
            let errors = errors
                .into_iter()
                .map(|(field, value, detail)| {
                    (
                        field.to_string(),
                        "FieldValueInvalid",
                        format!("Invalid value: {value}: {detail}"),
                    )
                })
                .collect();
            // Reviews are named by nobody: the message names the empty name.
            return Err(super::write::invalid(&t.rt, &Value::Null, errors));
        }
        let store = self.store.lock();
        let (allowed, namespace) = match &resource {
            Some(r) => {
                let asked = Attributes {
                    verb: text(Some(r), "verb"),
                    group: text(Some(r), "group"),
                    resource: text(Some(r), "resource"),
                    subresource: text(Some(r), "subresource"),
                    namespace: text(Some(r), "namespace"),
                    name: text(Some(r), "name"),
                };
                let allowed = !self.rbac || crate::rbac::allowed(&store, &subject, &asked);
                (allowed, asked.namespace)
            }
            None => {
                let (path, verb) = (text(non_resource.as_ref(), "path"), text(non_resource.as_ref(), "verb"));
                let allowed = !self.rbac || crate::rbac::allowed_non_resource(&store, &subject, &path, &verb);
                (allowed, String::new())
            }
        };
        review["status"] = if allowed {
            let reason = if self.rbac {
                "allowed by RBAC"
            } else {
                "the sandbox runs without RBAC (--rbac switches it on)"
            };
            json!({"allowed": true, "reason": reason})
        } else {
            // No rule allows it: no reason, unless a bound role is missing.
            match crate::rbac::unresolved(&store, &subject, &namespace) {
                Some(reason) => json!({"allowed": false, "reason": reason}),
                None => json!({"allowed": false}),
            }
        };
        Ok(review)
    }
}
