//! The namespace guard: the labels that put a namespace under the purchase webhook
//! ([`GUARDED_LABEL`]) and say what its customer may do ([`PURCHASES_LABEL`]) are
//! purchase-guard's. Nobody else sets or changes them; removing them is releasing the
//! namespace, allowed once no CustomerAccount claims it (by list or selector).

use super::Webhooks;
use super::review::{Outcome, Request};
use crate::api::{GUARDED_LABEL, OWNED_NAMESPACE_LABELS, PURCHASES_LABEL};
use kube::ResourceExt;
use serde_json::Value;

fn label<'a>(object: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    object
        .and_then(|o| o.pointer("/metadata/labels"))
        .and_then(|l| l.get(key))
}

impl Webhooks {
    /// Judges a namespace's CREATE or UPDATE that may touch purchase-guard's labels.
    pub fn namespaces(&self, req: &Request) -> Outcome {
        if !req.group.is_empty() || req.kind != "Namespace" {
            return Outcome::deny(
                400,
                "UnexpectedKind",
                format!(
                    "this webhook guards the labels {GUARDED_LABEL} and {PURCHASES_LABEL} of namespaces, not {}/{} {}; check the webhook configuration's rules",
                    req.group, req.version, req.kind
                ),
            );
        }
        let changed: Vec<(&str, bool)> = OWNED_NAMESPACE_LABELS
            .iter()
            .filter_map(|key| {
                let (old, new) = (label(req.old_object.as_ref(), key), label(req.object.as_ref(), key));
                (old != new).then_some((*key, old.is_some() && new.is_none()))
            })
            .collect();
        if changed.is_empty() {
            return Outcome::allow("LabelUnchanged");
        }
        if self.settings.controller_identities.contains(&req.username) {
            return Outcome::allow("Controller");
        }
        if changed.iter().all(|(_, removed)| *removed) {
            let Some(stores) = self.stores() else {
                return Outcome::deny(503, "NotSynced", format!("{}; retry shortly", super::NOT_SYNCED));
            };
            let listing: Vec<String> = stores
                .customers_in_namespace(&req.name)
                .iter()
                .map(|c| c.name_any())
                .collect();
            if listing.is_empty() {
                return Outcome::allow("Released");
            }
            return Outcome::deny(
                403,
                "NamespaceListed",
                format!(
                    "namespace {:?} belongs to CustomerAccount {} (spec.namespaces or spec.namespaceSelector): purchases there are judged while it does; remove it from that list, or its labels from that selector, to release it",
                    req.name,
                    listing.join(", ")
                ),
            )
            .rule("R7");
        }
        let names: Vec<&str> = changed.iter().map(|(key, _)| *key).collect();
        Outcome::deny(
            403,
            "GuardLabelOwnedByController",
            format!(
                "the label {} is set by purchase-guard alone, on the namespaces CustomerAccounts list; {:?} may not set or change it: list the namespace in a CustomerAccount's spec.namespaces instead",
                names.join(" and "),
                req.username
            ),
        )
        .rule("R7")
    }
}
