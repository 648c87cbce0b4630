//! The status webhook: the status of purchase-guard's kinds is written by purchase-guard
//! alone. A decision's status records what was accepted, and the controller builds on that
//! record (standing decisions, R3); nobody else may write it, whatever RBAC grants.

use super::Webhooks;
use super::review::{Outcome, Request, unexpected_kind};
use crate::api::GROUP;

/// The kinds whose status is purchase-guard's.
const KINDS: [&str; 4] = [
    "Partner",
    "CustomerAccount",
    "ResellerDelegation",
    "PurchaseRestriction",
];

impl Webhooks {
    /// Refuses writes to the status subresource of the four kinds by anyone but
    /// purchase-guard's own identity.
    pub fn status(&self, req: &Request) -> Outcome {
        if req.group != GROUP || !KINDS.contains(&req.kind.as_str()) {
            return unexpected_kind(
                req,
                "guards the status of Partner, CustomerAccount, ResellerDelegation and PurchaseRestriction",
            );
        }
        if req.sub_resource.as_deref() != Some("status") {
            return Outcome::allow("NotStatus");
        }
        let identities = &self.settings.controller_identities;
        if identities.contains(&req.username) {
            return Outcome::allow("Controller");
        }
        let object = match &req.namespace {
            Some(ns) => format!("{} {ns}/{}", req.kind, req.name),
            None => format!("{} {}", req.kind, req.name),
        };
        let message = if identities.is_empty() {
            format!(
                "the status of {object} is written by purchase-guard alone, and purchase-guard was started without --controller-identity, so nobody may write it; set --controller-identity to purchase-guard's own user"
            )
        } else {
            format!(
                "the status of {object} is written by purchase-guard alone ({}); {:?} may not write it: it records which decisions were accepted (R3)",
                identities.join(", "),
                req.username
            )
        };
        Outcome::deny(403, "StatusOwnedByController", message).rule("R3")
    }
}
