//! ValidatingAdmissionPolicies: what the API server enforces by itself, with no call to
//! purchase-guard, so that it holds while every purchase-guard pod is down. The Helm chart
//! renders the same objects (tests/e2e.rs compares them); `purchase-guard sandbox` installs
//! them.

use crate::api::{GUARDED_LABEL, PURCHASES_LABEL};
use serde_json::{Value, json};

/// The policy and binding named `<name>-namespace-labels`: [`GUARDED_LABEL`] and
/// [`PURCHASES_LABEL`] are set and changed by `controller` (purchase-guard's user) alone.
/// Removing them (releasing a namespace) is left to the namespaces webhook, which knows
/// whether a customer still claims the namespace.
pub fn namespace_labels(name: &str, controller: &str) -> [Value; 2] {
    let policy = format!("{name}-namespace-labels");
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["namespaces"],
                }]},
                "matchConditions": [{
                    "name": "not-purchase-guard",
                    "expression": format!("request.userInfo.username != '{controller}'"),
                }],
                "variables": [
                    {"name": "before", "expression": "oldObject != null && has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}"},
                    {"name": "after", "expression": "has(object.metadata.labels) ? object.metadata.labels : {}"},
                    {"name": "set", "expression": format!(
                        "['{GUARDED_LABEL}', '{PURCHASES_LABEL}'].filter(k, k in variables.after && (!(k in variables.before) || variables.before[k] != variables.after[k]))"
                    )},
                ],
                "validations": [{
                    "expression": "size(variables.set) == 0",
                    "messageExpression": "'the label ' + variables.set.join(' and ') + ' is set by purchase-guard alone, on the namespaces CustomerAccounts list; ' + request.userInfo.username + ' may not set or change it'",
                    "reason": "Forbidden",
                }],
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": ["Deny"]},
        }),
    ]
}
