//! Which change re-reconciles which objects: one named mapping per (watched kind, reconciled
//! kind), over the shared stores. `mod.rs` wires them; the table:
//!
//! | a change of            | re-reconciles                                                      |
//! |------------------------|--------------------------------------------------------------------|
//! | PurchaseRestriction    | its customer; the other decisions about that customer              |
//! | ResellerDelegation     | the reseller's customers and their decisions; the reseller's other delegations; the reseller |
//! | Partner                | its customers (a reseller's, or a distributor's resellers'); the decisions in its namespace and about those customers; every delegation; its resellers |
//! | CustomerAccount (spec) | its decisions                                                      |
//! | Namespace              | the partners acting in it; the customers listing it (labels included) |
//!
//! Triggers from other kinds follow spec changes and deletions only (status writes do not
//! re-trigger); a decision's own changes (status included) re-trigger its customer.

use crate::api::{CustomerAccount, Partner, PurchaseRestriction, ResellerDelegation};
use crate::index::Stores;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::sync::Arc;

/// What a reconcile request names: the object's namespace and name only. `ObjectRef::from_obj`
/// also copies its resourceVersion and uid, which nothing reads from a request and which the
/// controllers' queues hold twice per queued request (tens of thousands at a cold start).
pub fn key<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectRef<K> {
    let name = ObjectRef::new(obj.meta().name.as_deref().unwrap_or_default());
    match obj.meta().namespace.as_deref() {
        Some(namespace) => name.within(namespace),
        None => name,
    }
}

pub fn refs<K: Resource<DynamicType = ()>>(objs: impl IntoIterator<Item = Arc<K>>) -> Vec<ObjectRef<K>> {
    objs.into_iter().map(|o| key(o.as_ref())).collect()
}

/// A decision → the customer it names.
pub fn customer_of_decision(s: &Stores, d: &PurchaseRestriction) -> Option<ObjectRef<CustomerAccount>> {
    s.customer(&d.spec.customer).map(|c| key(c.as_ref()))
}

/// A delegation → the customers of its reseller (their authority holder moves).
pub fn customers_of_delegation(s: &Stores, d: &ResellerDelegation) -> Vec<ObjectRef<CustomerAccount>> {
    refs(s.customers_of_reseller(&d.spec.reseller))
}

/// A namespace → the customers listing it (it may have been created, or lost its label).
pub fn customers_of_namespace(s: &Stores, ns: &Namespace) -> Vec<ObjectRef<CustomerAccount>> {
    let name = ns.name_any();
    let mut customers = s.customers_in_namespace(&name);
    // And those that guarded it before: its labels may no longer match their selector.
    let before: Vec<_> = s
        .customers
        .state()
        .into_iter()
        .filter(|c| {
            c.status
                .as_ref()
                .is_some_and(|st| st.guarded_namespaces.contains(&name))
                && !customers.iter().any(|x| x.name_any() == c.name_any())
        })
        .collect();
    customers.extend(before);
    refs(customers)
}

/// A partner → the customers it relates to.
pub fn customers_of_partner(s: &Stores, p: &Partner) -> Vec<ObjectRef<CustomerAccount>> {
    refs(s.customers_of_partner(&p.name_any()))
}

/// A customer → its decisions.
pub fn decisions_of_customer(s: &Stores, c: &CustomerAccount) -> Vec<ObjectRef<PurchaseRestriction>> {
    refs(s.decisions_of(&c.name_any()))
}

/// A decision → every decision about the same customer (which one is in force may change).
pub fn decisions_beside(s: &Stores, d: &PurchaseRestriction) -> Vec<ObjectRef<PurchaseRestriction>> {
    refs(s.decisions_of(&d.spec.customer))
}

/// A delegation → the decisions about its reseller's customers.
pub fn decisions_of_delegation(s: &Stores, d: &ResellerDelegation) -> Vec<ObjectRef<PurchaseRestriction>> {
    refs(s.decisions_of_customers(&s.customers_of_reseller(&d.spec.reseller)))
}

/// A partner → the decisions it issued (in its namespace) and those about its customers.
pub fn decisions_of_partner(s: &Stores, p: &Partner) -> Vec<ObjectRef<PurchaseRestriction>> {
    let mut out: Vec<Arc<PurchaseRestriction>> = s
        .decisions
        .state()
        .into_iter()
        .filter(|d| d.namespace().as_deref() == Some(p.spec.namespace.as_str()))
        .collect();
    out.extend(s.decisions_of_customers(&s.customers_of_partner(&p.name_any())));
    refs(out)
}

/// A delegation → every delegation of the same reseller (which one is in force may change).
pub fn delegations_of_reseller(s: &Stores, d: &ResellerDelegation) -> Vec<ObjectRef<ResellerDelegation>> {
    refs(
        s.delegations
            .state()
            .into_iter()
            .filter(|o| o.spec.reseller == d.spec.reseller),
    )
}

/// A partner → every delegation (issuers and resellers are partners).
pub fn delegations_of_partner(s: &Stores, _p: &Partner) -> Vec<ObjectRef<ResellerDelegation>> {
    refs(s.delegations.state())
}

/// A namespace → the partners acting in it.
pub fn partners_in_namespace(s: &Stores, ns: &Namespace) -> Vec<ObjectRef<Partner>> {
    refs(
        s.partners
            .state()
            .into_iter()
            .filter(|p| p.spec.namespace == ns.name_any()),
    )
}

/// A delegation → its reseller.
pub fn reseller_of_delegation(s: &Stores, d: &ResellerDelegation) -> Vec<ObjectRef<Partner>> {
    refs(
        s.partners
            .state()
            .into_iter()
            .filter(|p| p.name_any() == d.spec.reseller),
    )
}

/// A partner → the resellers naming it as their distributor.
pub fn resellers_of_partner(s: &Stores, p: &Partner) -> Vec<ObjectRef<Partner>> {
    refs(
        s.partners
            .state()
            .into_iter()
            .filter(|o| o.spec.distributor.as_deref() == Some(p.name_any().as_str())),
    )
}

#[cfg(test)]
mod tests;
