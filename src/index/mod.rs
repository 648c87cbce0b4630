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
        let core: Vec<policy::Decision> = decisions.iter().map(|d| decision(d)).collect();
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
