//! The customers claiming each namespace by name, and those claiming namespaces by label
//! selector, fed by the customers' watch.

use crate::api::CustomerAccount;
use kube::ResourceExt;
use std::collections::{HashMap, HashSet};

/// The customers claiming each namespace, fed like `DecisionIndex`: from watch events before
/// the store, with lookups checked against the store.
#[derive(Debug, Default)]
pub struct NamespaceIndex(std::sync::RwLock<NamespaceMaps>);

#[derive(Debug, Default)]
struct NamespaceMaps {
    by_namespace: HashMap<String, HashSet<String>>,
    of_customer: HashMap<String, Vec<String>>,
    /// Customers with a spec.namespaceSelector.
    with_selector: HashSet<String>,
}

impl NamespaceIndex {
    /// Follows one watch event.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<CustomerAccount>) {
        use kube::runtime::watcher::Event;
        let mut maps = self.0.write().unwrap_or_else(|p| p.into_inner());
        let forget = |maps: &mut NamespaceMaps, name: &str| {
            maps.with_selector.remove(name);
            for ns in maps.of_customer.remove(name).unwrap_or_default() {
                if let Some(set) = maps.by_namespace.get_mut(&ns) {
                    set.remove(name);
                    if set.is_empty() {
                        maps.by_namespace.remove(&ns);
                    }
                }
            }
        };
        match event {
            Event::Apply(c) | Event::InitApply(c) => {
                let name = c.name_any();
                forget(&mut maps, &name);
                for ns in &c.spec.namespaces {
                    maps.by_namespace.entry(ns.clone()).or_default().insert(name.clone());
                }
                if c.spec.namespace_selector.is_some() {
                    maps.with_selector.insert(name.clone());
                }
                maps.of_customer.insert(name, c.spec.namespaces.clone());
            }
            Event::Delete(c) => forget(&mut maps, &c.name_any()),
            Event::Init | Event::InitDone => {}
        }
    }

    /// The customers that may claim `namespace`: those listing it, and those with a selector.
    pub(super) fn candidates(&self, namespace: &str) -> Vec<String> {
        let maps = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = maps
            .by_namespace
            .get(namespace)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        names.extend(
            maps.with_selector
                .iter()
                .filter(|n| !names.contains(n))
                .cloned()
                .collect::<Vec<_>>(),
        );
        names
    }
}
