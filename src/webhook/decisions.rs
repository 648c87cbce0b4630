//! The decision webhook: PurchaseRestriction and ResellerDelegation, CREATE, UPDATE and DELETE
//! (R2, R3, R4, R6 at admission). The rules are the policy core's; this file translates the
//! review into its types and its answer into an outcome.

use super::Webhooks;
use super::review::{Outcome, Request, parse_object, unexpected_kind};
use crate::api::{GROUP, PurchaseRestriction, ResellerDelegation};
use crate::index::{self, Stores};
use kube::ResourceExt;
use purchase_guard_policy as policy;

impl Webhooks {
    /// The decision webhook.
    pub fn decisions(&self, req: &Request) -> Outcome {
        if req.group != GROUP || !matches!(req.kind.as_str(), "PurchaseRestriction" | "ResellerDelegation") {
            return unexpected_kind(req, "judges PurchaseRestriction and ResellerDelegation");
        }
        if req.sub_resource.is_none()
            && req
                .object
                .as_ref()
                .and_then(|o| o.pointer("/metadata/annotations"))
                .and_then(|a| a.get(policy::verification::CODE_ANNOTATION))
                .is_some()
        {
            // The verification webhook removes every code before validation; one that got
            // here would be stored.
            return Outcome::deny(
                500,
                "VerificationWebhookMissing",
                format!(
                    "R5: the annotation {} reached validation: purchase-guard's verification webhook (MutatingWebhookConfiguration) did not run, and a code is never stored; reinstall purchase-guard's webhook configurations",
                    policy::verification::CODE_ANNOTATION
                ),
            )
            .rule("R5");
        }
        self.judge_decision(req)
    }

    /// The decision webhook's judgement, without the check that no code is left in the object
    /// (the verification webhook asks it before it spends a code).
    pub(super) fn judge_decision(&self, req: &Request) -> Outcome {
        if req.sub_resource.is_some() {
            return Outcome::allow("Subresource");
        }
        let (stores, namespace) = match self.synced_and_namespaced(req) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        match (req.kind.as_str(), req.operation.as_str()) {
            ("PurchaseRestriction", "CREATE" | "UPDATE") => restriction_write(stores, namespace, req),
            ("PurchaseRestriction", "DELETE") => restriction_delete(stores, namespace, req, (self.clock)()),
            ("ResellerDelegation", "CREATE" | "UPDATE") => self.delegation_write(stores, namespace, req),
            ("ResellerDelegation", "DELETE") => delegation_delete(stores, namespace, req),
            _ => Outcome::allow("OperationNotJudged"),
        }
    }

    fn delegation_write(&self, stores: &Stores, namespace: &str, req: &Request) -> Outcome {
        let new: ResellerDelegation = match parse_object(req.object.as_ref(), namespace) {
            Ok(d) => d,
            Err(e) => return e,
        };
        if new.spec.revocation.is_some() {
            // Revoking is the delegating distributor's right: RBAC limits who acts in its
            // namespace; a revocation cannot be undone (CRD validation).
            return Outcome::allow("Revoked");
        }
        let mut delegation = index::delegation(&new);
        delegation.key = policy::ObjectKey::new(namespace, &new.name_any());
        if req.operation == "CREATE" {
            delegation.created = policy::Timestamp((self.clock)().as_microsecond());
        }
        let mut hierarchy = (*stores.hierarchy()).clone();
        hierarchy.delegations.retain(|d| d.key != delegation.key);
        hierarchy.delegations.push(delegation.clone());
        match policy::evaluate_delegation(&hierarchy, &delegation) {
            Ok(()) => Outcome::allow("Authorized"),
            Err(rejection) => Outcome::deny(403, rejection.reason(), rejection.to_string()).rule("R2"),
        }
    }
}

/// A decision as the policy core sees a write of it.
fn write_of<'a>(namespace: &str, d: &'a PurchaseRestriction) -> policy::DecisionWrite<'a> {
    policy::DecisionWrite {
        key: policy::ObjectKey::new(namespace, &d.name_any()),
        customer: &d.spec.customer,
        content: policy::DecisionContent {
            state: d.spec.state.into(),
            reason: &d.spec.reason,
            agreement_accepted: d.spec.agreement_accepted,
            withdrawal: d.spec.withdrawal.as_ref().map(|w| w.reason.as_str()),
        },
        owned: d.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty()),
    }
}

fn restriction_write(stores: &Stores, namespace: &str, req: &Request) -> Outcome {
    let new: PurchaseRestriction = match parse_object(req.object.as_ref(), namespace) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let old: Option<PurchaseRestriction> = match req.old_object.as_ref() {
        Some(_) => match parse_object(req.old_object.as_ref(), namespace) {
            Ok(d) => Some(d),
            Err(e) => return e,
        },
        None => None,
    };
    let customer = stores.customer(&new.spec.customer).map(|c| index::customer(&c));
    // Only a creation can add a duplicate: the customer's decisions are read for it alone.
    let existing: Vec<policy::Decision> = match old {
        None => stores
            .decisions_of(&new.spec.customer)
            .iter()
            .map(|d| index::decision(d))
            .collect(),
        Some(_) => Vec::new(),
    };
    let old_write = old.as_ref().map(|o| write_of(namespace, o));
    match policy::check_decision_write(
        &stores.hierarchy(),
        customer.as_ref(),
        old_write.as_ref(),
        &write_of(namespace, &new),
        &existing,
    ) {
        Ok(policy::WriteAllowed::SpecUnchanged) => Outcome::allow("SpecUnchanged"),
        Ok(policy::WriteAllowed::Authorized(_)) => Outcome::allow("Authorized"),
        Err(denied) => {
            let code = match denied {
                policy::WriteDenied::Content(_) => 422,
                policy::WriteDenied::Authority(_) => 403,
                policy::WriteDenied::Duplicate { .. } => 409,
                policy::WriteDenied::Owned => 422,
            };
            Outcome::deny(code, denied.reason(), denied.to_string()).rule(denied.rule())
        }
    }
}

fn restriction_delete(stores: &Stores, namespace: &str, req: &Request, now: jiff::Timestamp) -> Outcome {
    let Some(old) = req.old_object.as_ref() else {
        // kube-apiserver always sends the old object of a DELETE.
        return Outcome::deny(400, "NoOldObject", "request.oldObject is missing for DELETE");
    };
    let old: PurchaseRestriction = match parse_object(Some(old), namespace) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let withdrawal = policy::Withdrawal {
        user: &req.username,
        key: policy::ObjectKey::new(namespace, &old.name_any()),
        customer: &old.spec.customer,
    };
    let customer = stores.customer(withdrawal.customer);
    // In force as evaluated from the caches now, as the purchase webhook judges: a withdrawn
    // decision is out of force as soon as its withdrawal is in the caches.
    let in_force: Vec<policy::ObjectKey> = customer
        .as_ref()
        .and_then(|c| {
            let (eval, _) = stores.evaluate(c, policy::Timestamp(now.as_microsecond()));
            match eval.effective.basis {
                policy::Basis::Decision { key, .. } => Some(key),
                _ => None,
            }
        })
        .into_iter()
        .collect();
    let withdrawn_from = customer.as_ref().map(|_| policy::WithdrawnFrom { in_force: &in_force });
    match policy::check_withdrawal(&withdrawal, withdrawn_from.as_ref()) {
        Ok(allowed) => Outcome::allow(allowed.reason()),
        Err(denied) => Outcome::deny(403, denied.reason(), denied.to_string()).rule(denied.rule()),
    }
}

/// Revoking is the delegating distributor's right: RBAC limits who acts in its namespace. A
/// partner with verification codes revokes through spec.revocation, with a code (a DELETE
/// cannot carry one); then the revoked delegation may be deleted.
fn delegation_delete(stores: &Stores, namespace: &str, req: &Request) -> Outcome {
    let Some(old) = req.old_object.as_ref() else {
        return Outcome::deny(400, "NoOldObject", "request.oldObject is missing for DELETE");
    };
    let old: ResellerDelegation = match parse_object(Some(old), namespace) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if old.spec.revocation.is_some() || policy::is_cleanup_user(&req.username) {
        return Outcome::allow("Revoked");
    }
    match stores.verification_of_namespace(namespace).map(|p| p.name_any()) {
        Some(partner) => Outcome::deny(
            403,
            "RevokeWithCode",
            format!(
                "R5: partner \"{partner}\" requires a verification code to revoke a delegation, and a DELETE cannot carry one: set spec.revocation.reason with the code in the annotation {}, then delete the revoked delegation",
                policy::verification::CODE_ANNOTATION
            ),
        )
        .rule("R5"),
        None => Outcome::allow("Revoked"),
    }
}

impl Webhooks {
    /// The caches and the request's namespace, for the webhooks of the namespaced kinds of the
    /// API; a denial when either is missing.
    pub(super) fn synced_and_namespaced<'a>(&'a self, req: &'a Request) -> Result<(&'a Stores, &'a str), Outcome> {
        let Some(stores) = self.stores() else {
            return Err(Outcome::deny(
                503,
                "NotSynced",
                format!("{}; retry shortly", super::NOT_SYNCED),
            ));
        };
        let Some(namespace) = req.namespace.as_deref() else {
            return Err(Outcome::deny(
                400,
                "NoNamespace",
                "the request has no namespace; these kinds are namespaced",
            ));
        };
        Ok((stores, namespace))
    }
}
