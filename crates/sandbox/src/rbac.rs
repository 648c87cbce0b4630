//! Identities and RBAC, like kube-apiserver's RBAC authorizer: Roles, ClusterRoles (with
//! aggregation), RoleBindings and ClusterRoleBindings evaluated for verb, API group, resource,
//! subresource, namespace and resource name.

use crate::selectors::LabelSelector;
use crate::store::Inner;
use serde_json::{Value, json};

/// The user of requests that impersonate nobody: a cluster administrator.
const ADMIN_USER: &str = "admin";

/// Who makes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The identity of requests without impersonation: a cluster administrator.
    pub fn admin() -> Self {
        UserInfo {
            name: ADMIN_USER.into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// The identity of a request: the admin, or whom the `Impersonate-*` headers name.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Self {
        let Some(user) = headers.get("impersonate-user").and_then(|v| v.to_str().ok()) else {
            return UserInfo::admin();
        };
        let mut groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        let uid = headers
            .get("impersonate-uid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        UserInfo {
            name: user.to_string(),
            uid,
            groups,
        }
    }
}

/// What a request asks to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let has = |field: &str, want: &str| strings(rule.get(field)).iter().any(|x| *x == "*" || *x == want);
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resources = strings(rule.get("resources"));
    let resource_ok = resources
        .iter()
        .any(|r| *r == "*" || *r == resource || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource)));
    let names = strings(rule.get("resourceNames"));
    has("verbs", &a.verb)
        && has("apiGroups", &a.group)
        && resource_ok
        && (names.is_empty() || names.contains(&a.name.as_str()))
}

fn subject_matches(subject: &Value, user: &UserInfo) -> bool {
    let name = subject.get("name").and_then(Value::as_str).unwrap_or_default();
    match subject.get("kind").and_then(Value::as_str) {
        Some("User") => name == user.name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = subject.get("namespace").and_then(Value::as_str).unwrap_or_default();
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// The rules of a ClusterRole, aggregated from the ClusterRoles its aggregation rule selects.
fn cluster_role_rules(inner: &Inner, name: &str) -> Vec<Value> {
    let key = crate::store::Key::new("rbac.authorization.k8s.io/clusterroles", "", name);
    let Some(role) = inner.get(&key) else { return vec![] };
    let mut rules: Vec<Value> = role.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(selectors) = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    {
        for (_, other) in inner.list("rbac.authorization.k8s.io/clusterroles", None) {
            let labels = other.pointer("/metadata/labels");
            if selectors
                .iter()
                .any(|s| LabelSelector::matches_object_selector(s, labels))
            {
                rules.extend(
                    other
                        .get("rules")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    rules
}

/// Whether `user` may do `a`. Members of `system:masters` may do everything.
pub fn allowed(inner: &Inner, user: &UserInfo, a: &Attributes) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
        || bound_rules(inner, user, &a.namespace).iter().any(|r| rule_allows(r, a))
}

/// Whether `user` may `verb` the non-resource URL `path` (`/healthz`, `/apis`...): a rule's
/// `nonResourceURLs` entry matches it exactly, or as a prefix when it ends in `*`. Only
/// cluster-wide bindings give such rights.
pub fn allowed_non_resource(inner: &Inner, user: &UserInfo, path: &str, verb: &str) -> bool {
    let url_matches = |u: &&str| *u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix));
    user.groups.iter().any(|g| g == "system:masters")
        || bound_rules(inner, user, "").iter().any(|r| {
            strings(r.get("verbs")).iter().any(|v| *v == "*" || *v == verb)
                && strings(r.get("nonResourceURLs")).iter().any(url_matches)
        })
}

/// The rules of every role bound to `user`: cluster-wide, and in `namespace` (empty: none).
fn bound_rules(inner: &Inner, user: &UserInfo, namespace: &str) -> Vec<Value> {
    let binds = |binding: &Value| {
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| subject_matches(s, user)))
    };
    let mut rules = Vec::new();
    for (_, binding) in inner.list("rbac.authorization.k8s.io/clusterrolebindings", None) {
        if binds(binding)
            && let Some(role) = binding.pointer("/roleRef/name").and_then(Value::as_str)
        {
            rules.extend(cluster_role_rules(inner, role));
        }
    }
    if !namespace.is_empty() {
        for (_, binding) in inner.list("rbac.authorization.k8s.io/rolebindings", Some(namespace)) {
            if !binds(binding) {
                continue;
            }
            let role = binding
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match binding.pointer("/roleRef/kind").and_then(Value::as_str) {
                Some("ClusterRole") => rules.extend(cluster_role_rules(inner, role)),
                Some("Role") => rules.extend(
                    inner
                        .get(&crate::store::Key::new(
                            "rbac.authorization.k8s.io/roles",
                            namespace,
                            role,
                        ))
                        .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
                        .unwrap_or_default(),
                ),
                _ => {}
            }
        }
    }
    rules
}

/// What a SelfSubjectRulesReview answers without RBAC, and to `system:masters`: everything.
pub fn everything() -> (Vec<Value>, Vec<Value>) {
    (
        vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
        vec![json!({"verbs": ["*"], "nonResourceURLs": ["*"]})],
    )
}

/// The rules `user` holds in `namespace` (cluster-wide bindings included), split as a
/// SelfSubjectRulesReview reports them: resource rules, then non-resource rules.
pub fn rules_of(inner: &Inner, user: &UserInfo, namespace: &str) -> (Vec<Value>, Vec<Value>) {
    if user.groups.iter().any(|g| g == "system:masters") {
        return everything();
    }
    let rules = bound_rules(inner, user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        let verbs = rule.get("verbs").cloned().unwrap_or_else(|| json!([]));
        if let Some(urls) = rule
            .get("nonResourceURLs")
            .filter(|u| u.as_array().is_some_and(|a| !a.is_empty()))
        {
            non_resource_rules.push(json!({"verbs": verbs, "nonResourceURLs": urls}));
        }
        if rule
            .get("resources")
            .is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty()))
        {
            let mut r = json!({"verbs": verbs, "apiGroups": rule.get("apiGroups").cloned().unwrap_or_else(|| json!([])),
                               "resources": rule["resources"]});
            if let Some(names) = rule
                .get("resourceNames")
                .filter(|n| n.as_array().is_some_and(|a| !a.is_empty()))
            {
                r["resourceNames"] = names.clone();
            }
            resource_rules.push(r);
        }
    }
    (resource_rules, non_resource_rules)
}

/// Why RBAC could not decide for `user`, as kube-apiserver's authorizer reports it in a
/// SubjectAccessReview: the roles that bindings of the user point at but that do not exist
/// (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`). `None` when every bound role
/// exists: a denial then carries no reason.
pub fn unresolved(inner: &Inner, user: &UserInfo, namespace: &str) -> Option<String> {
    let binds = |binding: &Value| {
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| subject_matches(s, user)))
    };
    let mut missing = Vec::new();
    let mut check = |binding: &Value, binding_namespace: &str| {
        let name = binding
            .pointer("/roleRef/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (plural, ns) = match binding.pointer("/roleRef/kind").and_then(Value::as_str) {
            Some("Role") => ("roles", binding_namespace),
            _ => ("clusterroles", ""),
        };
        let key = crate::store::Key::new(&format!("rbac.authorization.k8s.io/{plural}"), ns, name);
        if inner.get(&key).is_none() {
            let kind = &plural[..plural.len() - 1];
            missing.push(format!("{kind}.rbac.authorization.k8s.io \"{name}\" not found"));
        }
    };
    for (_, binding) in inner.list("rbac.authorization.k8s.io/clusterrolebindings", None) {
        if binds(binding) {
            check(binding, "");
        }
    }
    if !namespace.is_empty() {
        for (_, binding) in inner.list("rbac.authorization.k8s.io/rolebindings", Some(namespace)) {
            if binds(binding) {
                check(binding, namespace);
            }
        }
    }
    match missing.len() {
        0 => None,
        1 => Some(format!("RBAC: {}", missing[0])),
        _ => Some(format!("RBAC: [{}]", missing.join(", "))),
    }
}

/// The message kube-apiserver's RBAC authorizer gives for a denial.
pub fn denial(user: &UserInfo, a: &Attributes) -> String {
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let qualified = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let subject = if a.name.is_empty() {
        qualified
    } else {
        format!("{qualified} \"{}\"", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, a.verb, a.group
    )
}
