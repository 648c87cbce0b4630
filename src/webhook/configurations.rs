//! The ValidatingWebhookConfiguration and MutatingWebhookConfiguration of the webhooks, as the
//! Helm chart renders them (tests/e2e.rs compares the two): decisions, status ownership, the
//! namespace guard and purchases (validating), the audit stamp and verification codes
//! (mutating).

use super::Settings;

/// Where the webhook configurations send reviews: the webhook Service.
pub struct ServiceRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration named `name`, as the
/// Helm chart renders them (tests/e2e.rs compares the two): the decision and purchase webhooks,
/// and the audit stamp. `ca_bundle` is the PEM the API server trusts (none: injected later).
pub fn configurations(
    name: &str,
    service: &ServiceRef,
    ca_bundle: Option<&str>,
    settings: &Settings,
    excluded_namespaces: &[&str],
) -> [serde_json::Value; 2] {
    use base64::Engine;
    use serde_json::json;
    let client_config = |path: &str| {
        let mut c =
            json!({"service": {"namespace": service.namespace, "name": service.name, "path": path, "port": 443}});
        if let Some(pem) = ca_bundle {
            c["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
        }
        c
    };
    let hook = |webhook: &str, path: &str| {
        json!({
            "name": webhook,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "clientConfig": client_config(path),
        })
    };
    let mut decisions = hook("decisions.purchaseguard.io", "/validate/decisions");
    decisions["rules"] = json!([{
        "operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [crate::api::GROUP],
        "apiVersions": [crate::api::VERSION], "resources": ["purchaserestrictions", "resellerdelegations"],
        "scope": "Namespaced",
    }]);
    let mut status = hook("status.purchaseguard.io", "/validate/status");
    status["rules"] = json!([{
        "operations": ["UPDATE"], "apiGroups": [crate::api::GROUP], "apiVersions": [crate::api::VERSION],
        "resources": ["partners/status", "customeraccounts/status", "resellerdelegations/status", "purchaserestrictions/status"],
        "scope": "*",
    }]);
    let mut namespaces = hook("namespaces.purchaseguard.io", "/validate/namespaces");
    namespaces["objectSelector"] = json!({"matchExpressions": [
        {"key": crate::api::GUARDED_LABEL, "operator": "Exists"},
    ]});
    namespaces["rules"] = json!([{
        "operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
        "resources": ["namespaces"], "scope": "Cluster",
    }]);
    // Also namespaces that carry only the state label (set by someone else, or left behind).
    let mut namespace_state = hook("namespace-state.purchaseguard.io", "/validate/namespaces");
    namespace_state["objectSelector"] = json!({"matchExpressions": [
        {"key": crate::api::PURCHASES_LABEL, "operator": "Exists"},
    ]});
    namespace_state["rules"] = namespaces["rules"].clone();
    let mut webhooks = vec![decisions, status, namespaces, namespace_state];
    let guarded = &settings.guarded;
    // With policies alone, the API server judges purchases by itself.
    if !guarded.is_empty() && settings.enforce_with != super::EnforceWith::Policy {
        let mut purchases = hook("purchases.purchaseguard.io", "/validate/purchases");
        // With policies as the backstop, an outage of purchase-guard blocks nothing.
        if settings.enforce_with == super::EnforceWith::Both {
            purchases["failurePolicy"] = json!("Ignore");
        }
        // Every served version of a guarded kind, converted to the listed one.
        purchases["matchPolicy"] = json!("Equivalent");
        if let Some(condition) = not_a_controlled_child(&settings.workload_controllers) {
            purchases["matchConditions"] = json!([condition]);
        }
        // Only customers' namespaces: an outage of purchase-guard never reaches the others. In
        // strict mode, every namespace but the excluded and exempt ones.
        purchases["namespaceSelector"] = match &settings.strict {
            None => json!({"matchExpressions": [
                {"key": crate::api::GUARDED_LABEL, "operator": "Exists"},
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded_namespaces},
            ]}),
            Some(exempt) => {
                let mut values: Vec<&str> = excluded_namespaces.to_vec();
                values.extend(
                    exempt
                        .iter()
                        .map(String::as_str)
                        .filter(|e| !excluded_namespaces.contains(e)),
                );
                json!({"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": values},
                ]})
            }
        };
        purchases["rules"] = guarded
            .iter()
            .map(|g| {
                json!({
                    "operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [g.group],
                    "apiVersions": [g.version],
                    "resources": std::iter::once(g.resource.clone())
                        .chain(g.subresources.iter().map(|s| format!("{}/{s}", g.resource)))
                        .collect::<Vec<_>>(),
                    "scope": "Namespaced",
                })
            })
            .collect();
        webhooks.push(purchases);
    }
    let mut audit = hook("audit.purchaseguard.io", "/mutate/audit");
    audit["reinvocationPolicy"] = json!("Never");
    audit["rules"] = json!([{
        "operations": ["CREATE", "UPDATE"], "apiGroups": [crate::api::GROUP],
        "apiVersions": [crate::api::VERSION], "resources": ["purchaserestrictions"], "scope": "Namespaced",
    }]);
    // Always Fail: no restriction operation passes unverified while purchase-guard is away.
    let mut verification = hook("verification.purchaseguard.io", "/mutate/verification");
    verification["sideEffects"] = json!("NoneOnDryRun");
    verification["reinvocationPolicy"] = json!("Never");
    verification["rules"] = json!([{
        "operations": ["CREATE", "UPDATE"], "apiGroups": [crate::api::GROUP],
        "apiVersions": [crate::api::VERSION], "resources": ["purchaserestrictions", "resellerdelegations"],
        "scope": "Namespaced",
    }]);
    [
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": name}, "webhooks": webhooks}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": name}, "webhooks": [audit, verification]}),
    ]
}

/// The match condition that keeps Kubernetes' workload controllers' writes of objects they
/// control away from the purchase webhook (the webhook allows them too): decided inside the
/// API server, so that an outage of purchase-guard never stops a ReplicaSet from recreating
/// its Pods. `None` without such users.
pub(super) fn not_a_controlled_child(users: &[String]) -> Option<serde_json::Value> {
    if users.is_empty() {
        return None;
    }
    let quoted: Vec<String> = users.iter().map(|u| format!("'{u}'")).collect();
    let controlled = |o: &str| {
        format!(
            "({o} != null && has({o}.metadata.ownerReferences) && {o}.metadata.ownerReferences.exists(r, has(r.controller) && r.controller))"
        )
    };
    Some(serde_json::json!({
        "name": "not-a-workload-controllers-child",
        "expression": format!(
            "!(request.userInfo.username in [{}] && ({} || (object == null && {})))",
            quoted.join(", "),
            controlled("object"),
            controlled("oldObject")
        ),
    }))
}
