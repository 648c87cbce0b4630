//! RBAC objects as kube-apiserver judges them (`pkg/apis/rbac/validation`): each rule names
//! verbs and either resources (with API groups) or, in ClusterRoles only, non-resource URLs;
//! an aggregation rule has selectors; a binding refers to a role of a kind it may bind, in the
//! RBAC group, by a valid name, binds subjects of known kinds, and never changes its role.

use super::{Problem, path_segment_problems, text};
use serde_json::Value;

const GROUP: &str = "rbac.authorization.k8s.io";

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A Go `[]string` as `%#v` prints it.
fn go_strings(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// A Role's (`namespaced`) or ClusterRole's rules and aggregation rule.
pub fn role(obj: &Value, namespaced: bool, out: &mut Vec<Problem>) {
    let rules = obj
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        if strings(rule, "verbs").is_empty() {
            out.push(Problem::required_because(
                format!("{at}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = strings(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let shown = go_strings(&urls);
            if namespaced {
                out.push(Problem::invalid(
                    format!("{at}.nonResourceURLs"),
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| !strings(rule, k).is_empty())
            {
                out.push(Problem::invalid(
                    format!("{at}.nonResourceURLs"),
                    &shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if rule
            .get("apiGroups")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            out.push(Problem::required_because(
                format!("{at}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if strings(rule, "resources").is_empty() {
            out.push(Problem::required_because(
                format!("{at}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    if let Some(aggregation) = obj.get("aggregationRule").filter(|a| !a.is_null())
        && aggregation
            .get("clusterRoleSelectors")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        out.push(Problem::required_because(
            "aggregationRule.clusterRoleSelectors",
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
        ));
    }
}

/// A RoleBinding (`namespaced`) or ClusterRoleBinding, and on update (`old`) its fixed role.
pub fn binding(obj: &Value, old: Option<&Value>, namespaced: bool, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let role_ref = obj.get("roleRef").unwrap_or(&empty);
    let group = text(role_ref, "apiGroup");
    if group != GROUP {
        out.push(Problem::not_supported("roleRef.apiGroup", group, &[GROUP]));
    }
    let kind = text(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        out.push(Problem::not_supported("roleRef.kind", kind, kinds));
    }
    match text(role_ref, "name") {
        "" => out.push(Problem::required("roleRef.name")),
        name => {
            super::invalid_each("roleRef.name", name, path_segment_problems(name), out);
        }
    }
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        let at = format!("subjects[{i}]");
        let name = text(subject, "name");
        if name.is_empty() {
            out.push(Problem::required(format!("{at}.name")));
        }
        let group = text(subject, "apiGroup");
        match text(subject, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    super::subdomain(&format!("{at}.name"), name, out);
                }
                if !group.is_empty() {
                    out.push(Problem::not_supported(format!("{at}.apiGroup"), group, &[""]));
                }
                if !namespaced && text(subject, "namespace").is_empty() {
                    out.push(Problem::required(format!("{at}.namespace")));
                }
            }
            "User" | "Group" if group != GROUP => {
                out.push(Problem::not_supported(format!("{at}.apiGroup"), group, &[GROUP]))
            }
            "User" | "Group" => {}
            other => out.push(Problem::not_supported(
                format!("{at}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if let Some(old_ref) = old.and_then(|o| o.get("roleRef"))
        && ["apiGroup", "kind", "name"]
            .iter()
            .any(|k| text(old_ref, k) != text(role_ref, k))
    {
        out.push(Problem::invalid(
            "roleRef",
            &format!(
                "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
                group,
                kind,
                text(role_ref, "name")
            ),
            "cannot change roleRef",
        ));
    }
}
