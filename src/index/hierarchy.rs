//! The partner hierarchy as the policy core sees it, built from the partner and delegation
//! stores once per change rather than once per question.

use purchase_guard_policy as policy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A cached [`policy::Hierarchy`]. The partners' and delegations' reflectors call
/// [`HierarchyCache::changed`] after their store applied an event; a hierarchy built after
/// reading version `v` holds every change counted up to `v`, so a cached one is handed out
/// only while the version has not moved.
#[derive(Debug, Default)]
pub struct HierarchyCache {
    version: AtomicU64,
    cached: RwLock<Option<(u64, Arc<policy::Hierarchy>)>>,
}

impl HierarchyCache {
    /// A partner or delegation changed (after the store applied it).
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The hierarchy, built by `build` when a change came since the last build.
    pub fn get(&self, build: impl FnOnce() -> policy::Hierarchy) -> Arc<policy::Hierarchy> {
        let version = self.version.load(Ordering::Acquire);
        if let Some((built_at, hierarchy)) = &*self.cached.read().unwrap_or_else(|p| p.into_inner())
            && *built_at == version
        {
            return hierarchy.clone();
        }
        let hierarchy = Arc::new(build());
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        // Keep the newest: a slower builder must not replace a build of a later version.
        if cached.as_ref().is_none_or(|(built_at, _)| *built_at <= version) {
            *cached = Some((version, hierarchy.clone()));
        }
        hierarchy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_rebuilds_and_no_change_reuses() {
        let cache = HierarchyCache::default();
        let partners = |n: usize| policy::Hierarchy {
            partners: (0..n)
                .map(|i| policy::Partner::distributor(&format!("d{i}"), "ns"))
                .collect(),
            delegations: vec![],
        };
        let first = cache.get(|| partners(1));
        let again = cache.get(|| panic!("no change: the cached hierarchy is reused"));
        assert!(Arc::ptr_eq(&first, &again));
        cache.changed();
        let rebuilt = cache.get(|| partners(2));
        assert_eq!(rebuilt.partners.len(), 2);
        assert_eq!(cache.get(|| panic!("cached again")).partners.len(), 2);
    }
}
