//! The index layer: the reflector stores of the four kinds and the indexes over them, read by
//! the controllers and the webhooks; translated into the policy core's plain data by
//! [`convert`]. Pure translation: every rule lives in the policy core.

pub mod admission;
mod by_customer;
mod by_namespace;
pub mod convert;
mod fixtures;
pub mod freshness;
mod hierarchy;
pub mod outdated;

pub use admission::AdmissionCache;
pub use by_customer::DecisionIndex;
pub use by_namespace::NamespaceIndex;
pub use convert::{customer, decision, delegation, micro_time, micros, partner, seconds};
pub use freshness::{Freshness, Stale};
pub use hierarchy::HierarchyCache;

use crate::api::{CustomerAccount, GUARDED_LABEL, Partner, PurchaseRestriction, ResellerDelegation};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use purchase_guard_policy as policy;
use std::sync::Arc;

/// The in-memory stores the controllers and the webhooks read, fed by watches.
#[derive(Clone)]
pub struct Stores {
    pub partners: Store<Partner>,
    pub customers: Store<CustomerAccount>,
    pub delegations: Store<ResellerDelegation>,
    pub decisions: Store<PurchaseRestriction>,
    /// customer → its decisions, kept by the decisions' watch.
    pub decisions_by_customer: Arc<DecisionIndex>,
    /// The customers claiming each namespace (spec.namespaces).
    pub customers_by_namespace: Arc<NamespaceIndex>,
    pub namespaces: Store<Namespace>,
    /// The hierarchy built from `partners` and `delegations`, rebuilt when they change.
    pub hierarchy: Arc<HierarchyCache>,
    /// The purchase webhook's answer per namespace, prepared once per change.
    pub admission: Arc<AdmissionCache>,
    /// When each decision generation not yet recorded was first judged.
    pub first_seen: Arc<FirstSeen>,
    /// Bumped after every event any watch applied: what [`Freshness`] waits on.
    pub progress: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Stores {
    /// Records that a watch applied an event to its store.
    pub fn advanced(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Resolves once every store holds its first full list. Await it from one task only and
    /// share the result (a watch channel): kube's store readiness wakes a single waiter, so
    /// concurrent waiters can hang.
    pub async fn wait_until_ready(&self) {
        let _ = futures::future::join5(
            self.partners.wait_until_ready(),
            self.customers.wait_until_ready(),
            self.delegations.wait_until_ready(),
            self.decisions.wait_until_ready(),
            self.namespaces.wait_until_ready(),
        )
        .await;
    }

    /// The partner hierarchy: every partner and every delegation (shared until they change).
    pub fn hierarchy(&self) -> Arc<policy::Hierarchy> {
        self.hierarchy.get(|| policy::Hierarchy {
            partners: self.partners.state().iter().map(|p| partner(p)).collect(),
            delegations: self.delegations.state().iter().map(|d| delegation(d)).collect(),
        })
    }

    /// The decisions naming a customer, in a stable order.
    pub fn decisions_of(&self, customer: &str) -> Vec<Arc<PurchaseRestriction>> {
        let mut ds: Vec<Arc<PurchaseRestriction>> = self
            .decisions_by_customer
            .refs(customer)
            .iter()
            .filter_map(|r| self.decisions.get(r))
            .filter(|d| d.spec.customer == customer)
            .collect();
        ds.sort_by_key(|d| (d.namespace().unwrap_or_default(), d.name_any()));
        ds
    }

    /// The decisions naming any of `customers`, in one pass over the decisions.
    pub fn decisions_of_customers<'a>(
        &self,
        customers: impl IntoIterator<Item = &'a Arc<CustomerAccount>>,
    ) -> Vec<Arc<PurchaseRestriction>> {
        let names: std::collections::HashSet<String> = customers.into_iter().map(|c| c.name_any()).collect();
        self.decisions
            .state()
            .into_iter()
            .filter(|d| names.contains(&d.spec.customer))
            .collect()
    }

    /// The customers claiming `namespace` (normally at most one), sorted: by spec.namespaces,
    /// or by spec.namespaceSelector on the namespace's labels as the cache has them.
    pub fn customers_in_namespace(&self, namespace: &str) -> Vec<Arc<CustomerAccount>> {
        let object = self.namespaces.get(&ObjectRef::new(namespace));
        let none = std::collections::BTreeMap::new();
        let labels = object.as_ref().map(|ns| ns.metadata.labels.as_ref().unwrap_or(&none));
        let mut found: Vec<Arc<CustomerAccount>> = self
            .customers_by_namespace
            .candidates(namespace)
            .iter()
            .filter_map(|name| self.customer(name))
            .filter(|c| claims(c, namespace, labels))
            .collect();
        found.sort_by_key(|c| c.name_any());
        found
    }

    /// Whether the namespace carries the label purchase-guard keeps on customers' namespaces.
    pub fn namespace_guarded(&self, name: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(name))
            .is_some_and(|ns| is_guarded(&ns))
    }

    /// The existing namespaces `customer` claims: those it lists, in spec order, then those its
    /// selector matches, by name.
    pub fn namespaces_of(&self, customer: &CustomerAccount) -> Vec<String> {
        let mut names: Vec<String> = customer
            .spec
            .namespaces
            .iter()
            .filter(|n| self.namespaces.get(&ObjectRef::new(n)).is_some())
            .cloned()
            .collect();
        if let Some(selector) = &customer.spec.namespace_selector {
            let none = std::collections::BTreeMap::new();
            let mut selected: Vec<String> = self
                .namespaces
                .state()
                .iter()
                .filter(|ns| selector.matches(ns.metadata.labels.as_ref().unwrap_or(&none)))
                .map(|ns| ns.name_any())
                .filter(|n| !names.contains(n))
                .collect();
            selected.sort();
            names.extend(selected);
        }
        names
    }

    pub fn customer(&self, name: &str) -> Option<Arc<CustomerAccount>> {
        self.customers.get(&ObjectRef::new(name))
    }

    /// A partner that claims `namespace` and requires verification codes: when two Partners
    /// claim one namespace (a misconfiguration the decision webhook refuses to act on), codes
    /// are still required if either requires them.
    pub fn verification_of_namespace(&self, namespace: &str) -> Option<Arc<Partner>> {
        let mut claiming: Vec<Arc<Partner>> = self
            .partners
            .state()
            .into_iter()
            .filter(|p| p.spec.namespace == namespace && p.spec.verification.is_some())
            .collect();
        claiming.sort_by_key(|p| p.name_any());
        claiming.into_iter().next()
    }

    /// Evaluates a customer with the policy core: the hierarchy, its decisions, the time.
    pub fn evaluate(
        &self,
        customer: &CustomerAccount,
        now: policy::Timestamp,
    ) -> (policy::CustomerEvaluation, Vec<Arc<PurchaseRestriction>>) {
        let decisions = self.decisions_of(&customer.name_any());
        let mut core: Vec<policy::Decision> = decisions.iter().map(|d| decision(d)).collect();
        // A generation whose acceptance is not recorded yet is stamped with the time it was
        // first judged, by every evaluation until the record is written: the customer's status
        // computed before the decision's own status is written already holds the time that
        // will be recorded, and is not written a second time.
        for (d, c) in decisions.iter().zip(core.iter_mut()) {
            if c.accepted.as_ref().is_none_or(|a| a.generation != c.generation) {
                c.first_seen = Some(self.first_seen.at(d, now));
            }
        }
        (
            policy::evaluate_customer(&self.hierarchy(), &self::customer(customer), &core, now),
            decisions,
        )
    }

    /// The customers of a reseller.
    pub fn customers_of_reseller(&self, reseller: &str) -> Vec<Arc<CustomerAccount>> {
        self.customers
            .state()
            .into_iter()
            .filter(|c| c.spec.reseller.as_deref() == Some(reseller))
            .collect()
    }

    /// The customers a partner relates to: its own (a reseller) or its resellers' (a distributor).
    pub fn customers_of_partner(&self, partner: &str) -> Vec<Arc<CustomerAccount>> {
        let resellers: Vec<String> = self
            .partners
            .state()
            .iter()
            .filter(|p| p.spec.distributor.as_deref() == Some(partner))
            .map(|p| p.name_any())
            .collect();
        self.customers
            .state()
            .into_iter()
            .filter(|c| {
                c.spec
                    .reseller
                    .as_deref()
                    .is_some_and(|r| r == partner || resellers.iter().any(|x| x == r))
            })
            .collect()
    }
}

/// When each decision generation whose acceptance is not recorded yet was first judged, by
/// decision (uid). An entry goes when the decision's status records its generation, or the
/// decision goes.
#[derive(Debug, Default)]
pub struct FirstSeen(std::sync::Mutex<std::collections::HashMap<String, (i64, policy::Timestamp)>>);

impl FirstSeen {
    fn key(d: &PurchaseRestriction) -> String {
        d.uid()
            .unwrap_or_else(|| format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()))
    }

    /// The time `d`'s generation was first judged (`now`, the first time).
    pub fn at(&self, d: &PurchaseRestriction, now: policy::Timestamp) -> policy::Timestamp {
        let generation = d.metadata.generation.unwrap_or(0);
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = seen.entry(Self::key(d)).or_insert((generation, now));
        if entry.0 != generation {
            *entry = (generation, now);
        }
        entry.1
    }

    /// `d` as its watch delivered it: forgotten once its status records its generation.
    pub fn observe(&self, d: &PurchaseRestriction, deleted: bool) {
        let recorded = d
            .status
            .as_ref()
            .and_then(|s| s.accepted.as_ref())
            .is_some_and(|a| Some(a.generation) == d.metadata.generation)
            || d.status.as_ref().and_then(|s| s.rejected_generation) == d.metadata.generation;
        if deleted || recorded {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&Self::key(d));
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `customer` claims the namespace `name` with `labels` (none: the namespace is not
/// known): it lists it, or its selector matches the labels.
pub fn claims(
    customer: &CustomerAccount,
    name: &str,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    customer.spec.namespaces.iter().any(|n| n == name)
        || customer
            .spec
            .namespace_selector
            .as_ref()
            .zip(labels)
            .is_some_and(|(selector, labels)| selector.matches(labels))
}

/// Whether a namespace carries [`GUARDED_LABEL`].
pub fn is_guarded(namespace: &Namespace) -> bool {
    namespace
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(GUARDED_LABEL))
}

#[cfg(test)]
mod first_seen_tests {
    use super::*;

    fn decision(generation: i64, recorded: Option<i64>) -> PurchaseRestriction {
        let mut d: PurchaseRestriction = serde_json::from_value(serde_json::json!({
            "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
            "metadata": {"name": "d", "namespace": "dist", "uid": "u-1", "generation": generation},
            "spec": {"customer": "c", "state": "Restricted", "reason": "overdue"}
        }))
        .expect("a decision");
        if let Some(g) = recorded {
            d.status = serde_json::from_value(serde_json::json!({"accepted": {"generation": g,
                "state": "Restricted", "reason": "overdue", "since": "2026-11-27T00:00:00.000001Z"}}))
            .expect("a status");
        }
        d
    }

    #[test]
    fn a_generation_keeps_its_first_time_until_its_status_records_it() {
        let seen = FirstSeen::default();
        let t = |s| policy::Timestamp(s);
        assert_eq!(seen.at(&decision(1, None), t(10)), t(10));
        assert_eq!(
            seen.at(&decision(1, None), t(20)),
            t(10),
            "the same generation: the first time"
        );
        // A record of an older generation does not forget it.
        seen.observe(&decision(1, Some(0)), false);
        assert_eq!(seen.len(), 1);
        // A new generation starts again.
        assert_eq!(seen.at(&decision(2, Some(1)), t(30)), t(30));
        seen.observe(&decision(2, Some(2)), false);
        assert!(seen.is_empty(), "recorded: forgotten");
        seen.at(&decision(3, Some(2)), t(40));
        seen.observe(&decision(3, Some(2)), true);
        assert!(seen.is_empty(), "deleted: forgotten");
    }
}
