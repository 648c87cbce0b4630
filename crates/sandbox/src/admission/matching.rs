//! Which webhooks a request reaches: rules, namespace and object selectors.

use super::*;

pub(super) fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(super) fn rule_matches(rule: &Value, req: &Request) -> bool {
    let has = |field: &str, wanted: &str| strings(rule.get(field)).iter().any(|x| *x == "*" || *x == wanted);
    let resource_ok = strings(rule.get("resources")).iter().any(|r| {
        let (res, sub) = r.split_once('/').map_or((*r, None), |(a, b)| (a, Some(b)));
        let res_ok = res == "*" || res == req.rt.plural;
        let sub_ok = match (sub, req.subresource) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some("*"), _) => true,
            (Some(s), Some(want)) => s == want,
            (Some(_), None) => false,
        };
        res_ok && sub_ok
    });
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !req.rt.namespaced,
        "Namespaced" => req.rt.namespaced,
        _ => true,
    };
    has("operations", req.operation)
        && has("apiGroups", &req.rt.group)
        && has("apiVersions", &req.rt.version)
        && resource_ok
        && scope_ok
}

pub(super) fn labels_of(v: Option<&Value>) -> Option<&Value> {
    v.and_then(|o| o.pointer("/metadata/labels"))
}

/// Whether a webhook applies to the request. `object` is the new object (None for DELETE).
pub(super) fn webhook_matches(store: &Store, hook: &Value, req: &Request, object: Option<&Value>) -> bool {
    // Webhook configurations themselves are never subject to webhooks.
    if req.rt.group == "admissionregistration.k8s.io" {
        return false;
    }
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !rules.iter().any(|r| rule_matches(r, req)) {
        return false;
    }
    // The namespace selector applies to namespaced objects (the namespace's labels) and to
    // Namespaces themselves (their own labels); other cluster-scoped objects always match.
    let is_namespace = req.rt.group.is_empty() && req.rt.plural == "namespaces";
    if let Some(selector) = hook.get("namespaceSelector").filter(|s| s.is_object())
        && (is_namespace || req.rt.namespaced)
    {
        let ns_labels = if is_namespace {
            labels_of(object.or(req.old)).cloned()
        } else {
            let ns = req.namespace.unwrap_or_default();
            store
                .lock()
                .get(&Key::new("/namespaces", "", ns))
                .and_then(|n| n.pointer("/metadata/labels").cloned())
        };
        if !LabelSelector::matches_object_selector(selector, ns_labels.as_ref()) {
            return false;
        }
    }
    if let Some(selector) = hook.get("objectSelector").filter(|s| s.is_object()) {
        let new_ok = object.is_some_and(|o| LabelSelector::matches_object_selector(selector, labels_of(Some(o))));
        let old_ok = req
            .old
            .is_some_and(|o| LabelSelector::matches_object_selector(selector, labels_of(Some(o))));
        if !new_ok && !old_ok {
            return false;
        }
    }
    true
}
