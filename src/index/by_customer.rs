//! The decisions of each customer, fed by the decisions' watch.

use crate::api::PurchaseRestriction;
use kube::runtime::reflector::ObjectRef;
use std::collections::{HashMap, HashSet};

/// The decisions of each customer. Updated from the watch events *before* the store, so that
/// whoever is triggered by the store finds the entry; lookups go through the store, so an
/// entry the store does not hold (yet, or any more) is skipped.
#[derive(Debug, Default)]
pub struct DecisionIndex(std::sync::RwLock<HashMap<String, HashSet<ObjectRef<PurchaseRestriction>>>>);

impl DecisionIndex {
    /// Follows one watch event.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<PurchaseRestriction>) {
        use kube::runtime::watcher::Event;
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Apply(d) | Event::InitApply(d) => {
                map.entry(d.spec.customer.clone())
                    .or_default()
                    .insert(ObjectRef::from_obj(d));
            }
            Event::Delete(d) => {
                if let Some(set) = map.get_mut(&d.spec.customer) {
                    set.remove(&ObjectRef::from_obj(d));
                    if set.is_empty() {
                        map.remove(&d.spec.customer);
                    }
                }
            }
            Event::Init | Event::InitDone => {}
        }
    }

    pub(super) fn refs(&self, customer: &str) -> Vec<ObjectRef<PurchaseRestriction>> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        map.get(customer)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}
