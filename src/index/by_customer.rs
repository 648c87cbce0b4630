//! The decisions of each customer, fed by the decisions' watch.

use crate::api::PurchaseRestriction;
use kube::runtime::reflector::ObjectRef;
use std::collections::HashMap;

/// The decisions of each customer. Updated from the watch events *before* the store, so that
/// whoever is triggered by the store finds the entry; lookups go through the store, so an
/// entry the store does not hold (yet, or any more) is skipped. Each decision is held as its
/// namespace and name only (a customer has one or two): an `ObjectRef` in a set per customer
/// cost about 500 bytes per decision.
#[derive(Debug, Default)]
pub struct DecisionIndex(std::sync::RwLock<HashMap<String, Vec<DecisionKey>>>);

/// A decision's namespace and name.
type DecisionKey = (Box<str>, Box<str>);

impl DecisionIndex {
    /// Follows one watch event.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<PurchaseRestriction>) {
        use kube::runtime::watcher::Event;
        let key = |d: &PurchaseRestriction| -> DecisionKey {
            (
                d.metadata.namespace.as_deref().unwrap_or_default().into(),
                d.metadata.name.as_deref().unwrap_or_default().into(),
            )
        };
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Apply(d) | Event::InitApply(d) => {
                let refs = map.entry(d.spec.customer.clone()).or_default();
                let k = key(d);
                if !refs.contains(&k) {
                    // Most customers have one or two decisions: room for what they have, not
                    // the four a first push makes room for.
                    if refs.len() < 4 {
                        refs.reserve_exact(1);
                    }
                    refs.push(k);
                }
            }
            Event::Delete(d) => {
                if let Some(refs) = map.get_mut(&d.spec.customer) {
                    let k = key(d);
                    refs.retain(|r| *r != k);
                    if refs.is_empty() {
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
            .map(|refs| {
                refs.iter()
                    .map(|(namespace, name)| ObjectRef::new(name).within(namespace))
                    .collect()
            })
            .unwrap_or_default()
    }
}
