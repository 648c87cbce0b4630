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
