//! The verification webhook (mutating): PurchaseRestriction and ResellerDelegation, CREATE and
//! UPDATE (R5). For a partner that enabled verification codes, a restriction operation
//! (a creation, or a change of the spec: withdrawals and revocations included) needs the
//! partner's current one-time code in the annotation `purchaseguard.io/verification-code`.
//! Whatever the partner, the annotation is removed from the object before it is stored.
//!
//! The operation is judged first (the decision webhook's rules, from the caches), so that a
//! code is not spent on an operation that would be refused anyway; then the code is checked
//! and spent through [`crate::verification::Verifier`], the one call to the API server on the
//! admission path.

use super::Webhooks;
use super::review::{Outcome, Request, unexpected_kind};
use crate::api::GROUP;
use purchase_guard_policy as policy;
use purchase_guard_policy::verification::{CODE_ANNOTATION, needs_code};
use serde_json::{Value, json};

/// How long a code check may take in all.
const VERIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);

impl Webhooks {
    /// The verification webhook.
    pub async fn verification(&self, req: &Request) -> Outcome {
        if req.group != GROUP || !matches!(req.kind.as_str(), "PurchaseRestriction" | "ResellerDelegation") {
            return unexpected_kind(req, "verifies PurchaseRestriction and ResellerDelegation");
        }
        let Some(object) = req.object.as_ref().filter(|_| req.sub_resource.is_none()) else {
            return Outcome::allow("NothingToVerify");
        };
        let given = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CODE_ANNOTATION));
        let code = given.and_then(Value::as_str);
        let strip = |mut outcome: Outcome| {
            let ops = without_code(object);
            if !ops.is_empty() {
                outcome.patch = Some(Value::Array(ops));
            }
            outcome
        };
        if given.is_some() && code.is_none() {
            return Outcome::deny(
                400,
                "VerificationCodeMalformed",
                format!("metadata.annotations[{CODE_ANNOTATION}]: Invalid value: the code must be a string of digits"),
            )
            .rule("R5");
        }
        let (stores, namespace) = match self.synced_and_namespaced(req) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let spec_changed = req.old_object.as_ref().and_then(|o| o.get("spec")) != object.get("spec");
        let partner = stores.verification_of_namespace(namespace);
        let Some(partner) = partner.filter(|_| needs_code(&req.operation, spec_changed)) else {
            return strip(Outcome::allow("VerificationNotRequired"));
        };
        // The rules first: a code is not spent on an operation that is refused anyway.
        let judged = self.judge_decision(req);
        if !judged.allowed {
            return judged;
        }
        let Some(verifier) = self.verifier.get() else {
            return Outcome::deny(
                503,
                "VerificationUnavailable",
                "R5: this purchase-guard process cannot check verification codes (it has no API client)",
            )
            .rule("R5");
        };
        if req.dry_run {
            // A dry run must have no side effects, so a failed code could not count towards
            // the lockout: checking codes there would let anyone guess without limit. It is
            // admitted without a check (nothing is stored), as long as a code is given.
            return match code.map(str::trim).filter(|c| !c.is_empty()) {
                None => {
                    let missing = policy::verification::Refusal::Missing;
                    Outcome::deny(403, missing.reason(), missing.to_string()).rule("R5")
                }
                Some(_) => {
                    let mut outcome = strip(Outcome::allow("VerificationNotCheckedOnDryRun"));
                    outcome
                        .warnings
                        .push("R5: a dry run does not check verification codes; the real request will".to_string());
                    outcome
                }
            };
        }
        let operation = digest(&req.kind, namespace, object);
        // Within the API server's deadline for the webhook (5 s by default). A code spent by
        // a write that then timed out authorises the same operation again (a retry).
        match tokio::time::timeout(VERIFY_DEADLINE, verifier.verify(&partner, code, &operation)).await {
            Ok(Ok(reason)) => strip(Outcome::allow(reason)),
            Ok(Err(denied)) => Outcome::deny(denied.code, denied.reason, denied.message).rule("R5"),
            Err(_) => Outcome::deny(
                503,
                "VerificationUnavailable",
                format!(
                    "R5: the verification code could not be checked within {}s; retry",
                    VERIFY_DEADLINE.as_secs()
                ),
            )
            .rule("R5"),
        }
    }
}

/// The annotation in which `kubectl apply` keeps the whole manifest it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn annotation_path(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The JSON patch that removes every copy of a code from `object`: the annotation, and the
/// annotation inside the manifest `kubectl apply` records (which would otherwise store it).
fn without_code(object: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    let annotations = object.pointer("/metadata/annotations").and_then(Value::as_object);
    if annotations.is_some_and(|a| a.contains_key(CODE_ANNOTATION)) {
        ops.push(json!({"op": "remove", "path": annotation_path(CODE_ANNOTATION)}));
    }
    let applied = annotations
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    if let Some(mut applied) = applied
        && let Some(recorded) = applied
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        && recorded.remove(CODE_ANNOTATION).is_some()
    {
        if recorded.is_empty()
            && let Some(metadata) = applied.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("annotations");
        }
        ops.push(json!({"op": "replace", "path": annotation_path(LAST_APPLIED), "value": applied.to_string()}));
    }
    ops
}

/// What a restriction operation writes, as an opaque digest for the ledger: the kind, the
/// object's namespace and name (or generateName) and its spec. A retry of the same write has
/// the same digest; any other operation has another.
fn digest(kind: &str, namespace: &str, object: &Value) -> String {
    use sha2::Digest;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .map(|g| format!("{g}*"))
        })
        .unwrap_or_default();
    // serde_json's maps are sorted: the same spec always serialises the same way.
    let spec = object.get("spec").map(Value::to_string).unwrap_or_default();
    let mut hash = sha2::Sha256::new();
    for part in [kind, namespace, &name, &spec] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Partner, PartnerRole, PartnerSpec, PartnerVerification, SecretReference};
    use crate::index::Stores;
    use crate::webhook::{Settings, Webhooks};

    fn partner(name: &str, namespace: &str, verification: bool) -> Partner {
        Partner::new(
            name,
            PartnerSpec {
                role: PartnerRole::Distributor,
                distributor: None,
                namespace: namespace.into(),
                freeze_retention: None,
                verification: verification.then(|| PartnerVerification {
                    secret_ref: SecretReference { name: "otp".into() },
                }),
                display_name: None,
            },
        )
    }

    fn request(namespace: &str, annotations: Value) -> crate::webhook::review::Request {
        let object = json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
            "metadata": {"name": "c", "namespace": namespace, "annotations": annotations},
            "spec": {"customer": "c", "state": "Restricted", "reason": "overdue"}});
        crate::webhook::review::Request {
            uid: "u".into(),
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "PurchaseRestriction".into(),
            resource_group: GROUP.into(),
            resource_version: "v1alpha1".into(),
            resource: "purchaserestrictions".into(),
            sub_resource: None,
            name: "c".into(),
            namespace: Some(namespace.into()),
            operation: "CREATE".into(),
            username: "op".into(),
            object: Some(object),
            old_object: None,
            dry_run: false,
        }
    }

    #[test]
    fn a_code_and_its_copy_in_the_applied_manifest_are_removed() {
        let applied = json!({"metadata": {"annotations": {CODE_ANNOTATION: "123456"}}}).to_string();
        let object = json!({"metadata": {"annotations": {CODE_ANNOTATION: "123456", LAST_APPLIED: applied}}});
        let ops = without_code(&object);
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!(ops[0]["op"], "remove");
        let rewritten = ops[1]["value"].as_str().expect("the manifest");
        assert!(!rewritten.contains(CODE_ANNOTATION), "{rewritten}");
        assert!(without_code(&json!({"metadata": {}})).is_empty());
    }

    #[tokio::test]
    async fn either_of_two_partners_claiming_a_namespace_can_require_codes() {
        // Two Partners claim ns-x (a misconfiguration); one requires codes: a code is required.
        let stores = Stores::from_objects(
            vec![partner("a", "ns-x", false), partner("b", "ns-x", true)],
            vec![],
            vec![],
            vec![],
        );
        let webhooks = Webhooks::new(Settings::default());
        webhooks.set_stores(stores);
        let outcome = webhooks.verification(&request("ns-x", json!({}))).await;
        assert!(!outcome.allowed, "{outcome:?}");
        // Without any verifier (no API client), a code could not be checked: refused, never
        // waved through; the decision webhook would refuse the ambiguous issuer first.
        assert!(
            matches!(outcome.reason, "VerificationUnavailable" | "AmbiguousIssuer"),
            "{outcome:?}"
        );
        // A partner without verification: the code is removed and nothing is required.
        let stores = Stores::from_objects(vec![partner("a", "ns-y", false)], vec![], vec![], vec![]);
        let webhooks = Webhooks::new(Settings::default());
        webhooks.set_stores(stores);
        let outcome = webhooks
            .verification(&request("ns-y", json!({CODE_ANNOTATION: "123456"})))
            .await;
        assert!(outcome.allowed);
        assert_eq!(outcome.reason, "VerificationNotRequired");
        assert!(outcome.patch.is_some(), "the code is removed");
    }
}
