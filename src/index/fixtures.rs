//! Stores filled from a list of objects, without watches: for the tests and benchmarks of
//! what reads the caches.

use super::{DecisionIndex, NamespaceIndex, Stores};
use crate::api::{CustomerAccount, Partner, PurchaseRestriction, ResellerDelegation};
use kube::runtime::reflector::Store;
use std::sync::Arc;

/// A reader over `objects`, as a reflector holds them after a list.
fn store_of<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = kube::runtime::reflector::store::<K>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    reader
}

impl Stores {
    /// Stores and indexes holding these objects, without watches (for tests and benchmarks of
    /// what reads the caches).
    pub fn from_objects(
        partners: Vec<Partner>,
        customers: Vec<CustomerAccount>,
        delegations: Vec<ResellerDelegation>,
        decisions: Vec<PurchaseRestriction>,
    ) -> Self {
        use kube::runtime::watcher::Event;
        let decisions_by_customer = Arc::new(DecisionIndex::default());
        for d in &decisions {
            decisions_by_customer.observe(&Event::InitApply(d.clone()));
        }
        let customers_by_namespace = Arc::new(NamespaceIndex::default());
        for c in &customers {
            customers_by_namespace.observe(&Event::InitApply(c.clone()));
        }
        Stores {
            partners: store_of(partners),
            customers: store_of(customers),
            delegations: store_of(delegations),
            decisions: store_of(decisions),
            decisions_by_customer,
            customers_by_namespace,
            namespaces: store_of(Vec::<k8s_openapi::api::core::v1::Namespace>::new()),
            hierarchy: Default::default(),
            admission: Default::default(),
            first_seen: Default::default(),
            progress: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}
