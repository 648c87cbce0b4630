//! What each watched change outdates, once its store applied it: the partner hierarchy and the
//! purchase webhook's prepared answers ([`super::AdmissionCache`]). A relist (its store
//! replaced whole, deletions included without events) outdates everything.

use super::Stores;
use crate::api::{CustomerAccount, PurchaseRestriction};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::watcher::Event;

/// Partners and delegations: the hierarchy every customer is judged in.
pub fn hierarchy<K>(stores: &Stores, _event: &Event<K>) {
    stores.hierarchy.changed();
    stores.admission.everything_changed();
}

/// A customer: its answers, and those of the namespaces it lists (it may be new there). A
/// customer selecting namespaces by label may claim any of them.
pub fn customer(stores: &Stores, event: &Event<CustomerAccount>) {
    match event {
        Event::Apply(c) if c.spec.namespace_selector.is_none() => {
            stores.admission.customer_changed(&c.name_any(), &c.spec.namespaces)
        }
        Event::Delete(_) => stores.admission.customer_deleted(),
        Event::InitApply(_) => {}
        _ => stores.admission.everything_changed(),
    }
}

/// A decision: its customer's answers, and its first-seen time once its status records it.
pub fn decision(stores: &Stores, event: &Event<PurchaseRestriction>) {
    match event {
        Event::Apply(d) => {
            stores.first_seen.observe(d, false);
            stores.admission.customer_changed(&d.spec.customer, &[]);
        }
        Event::Delete(d) => {
            stores.first_seen.observe(d, true);
            stores.admission.customer_changed(&d.spec.customer, &[]);
        }
        Event::InitApply(_) => {}
        Event::Init | Event::InitDone => stores.admission.everything_changed(),
    }
}

/// A namespace: its answer (its labels: guarded, or selected by a customer).
pub fn namespace(stores: &Stores, event: &Event<Namespace>) {
    match event {
        Event::Apply(n) => stores.admission.namespace_changed(&n.name_any()),
        Event::Delete(n) => stores.admission.namespace_deleted(&n.name_any()),
        Event::InitApply(_) => {}
        Event::Init | Event::InitDone => stores.admission.everything_changed(),
    }
}
