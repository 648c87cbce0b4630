//! What the purchase webhook needs to know about a namespace (who claims it and in which
//! state that customer is), prepared once per change of what it was computed from rather
//! than once per review.
//!
//! Every watched change stamps what it touched with a new tick of one clock, after the store
//! applied it: a namespace, a customer (its decisions stamp it too), or everything (partners,
//! delegations, customers with a namespace selector, relists, deletions). An answer computed
//! from the stores after reading the clock at tick `t` is served again only while nothing it
//! depends on carries a stamp after `t`; a computation racing with a change is therefore
//! never served after the change is visible in the stores.

use purchase_guard_policy as policy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Who claims a namespace, and the claiming customer's state.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// No customer claims it, and it is not labelled guarded.
    Nobody,
    /// Labelled guarded, but no customer claims it: an unknown state (fail closed).
    Orphaned { state: policy::CustomerState },
    /// One customer claims it.
    Customer { name: String, state: policy::CustomerState },
    /// Several customers claim it: an unknown state (fail closed).
    Several {
        names: String,
        state: policy::CustomerState,
    },
}

#[derive(Debug)]
struct Prepared {
    /// The clock's tick read before the stores were.
    tick: u64,
    customers: Vec<String>,
    claim: Arc<Claim>,
}

/// The prepared answers per namespace, and the stamps of the last changes.
#[derive(Debug, Default)]
pub struct AdmissionCache {
    clock: AtomicU64,
    /// The last change of everything (a change every answer may depend on).
    everything: AtomicU64,
    namespaces: RwLock<HashMap<String, u64>>,
    customers: RwLock<HashMap<String, u64>>,
    prepared: RwLock<HashMap<String, Prepared>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl AdmissionCache {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// A namespace changed (after its store applied the change).
    pub fn namespace_changed(&self, name: &str) {
        let tick = self.tick();
        write(&self.namespaces).insert(name.to_string(), tick);
    }

    /// A customer changed, or one of its decisions did, (after the store applied it), with the
    /// namespaces it lists: an answer for one of them may not have read it yet.
    pub fn customer_changed<'a>(&self, name: &str, namespaces: impl IntoIterator<Item = &'a String>) {
        let tick = self.tick();
        write(&self.customers).insert(name.to_string(), tick);
        let mut stamps = write(&self.namespaces);
        for ns in namespaces {
            stamps.insert(ns.clone(), tick);
        }
    }

    /// A change any answer may depend on; drops the answers and stamps it outdates.
    pub fn everything_changed(&self) {
        // The stamp of everything first: from then on no answer prepared before it is served.
        // Then what it outdates goes; stamps and answers of later ticks (changes stamped
        // meanwhile by other watches) stay.
        let tick = self.tick();
        self.everything.fetch_max(tick, Ordering::AcqRel);
        write(&self.prepared).retain(|_, p| p.tick >= tick);
        write(&self.namespaces).retain(|_, t| *t > tick);
        write(&self.customers).retain(|_, t| *t > tick);
    }

    /// A namespace was deleted: its answer and stamp go (a later namespace of the same name
    /// stamps itself when it is created).
    pub fn namespace_deleted(&self, name: &str) {
        self.namespace_changed(name);
        write(&self.prepared).remove(name);
    }

    /// A customer was deleted: its stamp goes, and with it every answer (they may have read
    /// it, and an answer read without a stamp to compare would be served).
    pub fn customer_deleted(&self) {
        self.everything_changed();
    }

    fn current(&self, namespace: &str, p: &Prepared) -> bool {
        if self.everything.load(Ordering::Acquire) > p.tick {
            return false;
        }
        if read(&self.namespaces).get(namespace).is_some_and(|t| *t > p.tick) {
            return false;
        }
        let customers = read(&self.customers);
        p.customers
            .iter()
            .all(|c| customers.get(c).is_none_or(|t| *t <= p.tick))
    }

    /// The answer for `namespace`: the prepared one while nothing it was computed from changed,
    /// else `compute` (which reads the stores and says which customers it read), kept for the
    /// next review.
    pub fn claim(&self, namespace: &str, compute: impl FnOnce() -> (Claim, Vec<String>)) -> Arc<Claim> {
        if let Some(p) = read(&self.prepared).get(namespace)
            && self.current(namespace, p)
        {
            return p.claim.clone();
        }
        let tick = self.clock.load(Ordering::Acquire);
        let (claim, customers) = compute();
        let claim = Arc::new(claim);
        let mut prepared = write(&self.prepared);
        // Keep the newest: a slower computation must not replace a later one.
        if prepared.get(namespace).is_none_or(|p| p.tick <= tick) {
            prepared.insert(
                namespace.to_string(),
                Prepared {
                    tick,
                    customers,
                    claim: claim.clone(),
                },
            );
        }
        claim
    }

    /// How many answers are prepared.
    pub fn len(&self) -> usize {
        read(&self.prepared).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn customer(name: &str, state: policy::RestrictionState) -> Claim {
        Claim::Customer {
            name: name.into(),
            state: policy::CustomerState::Known { state, source: None },
        }
    }

    fn inputs(customers: &[&str]) -> Vec<String> {
        customers.iter().map(|c| c.to_string()).collect()
    }

    /// Customer "a" of "ns-a", restricted or not, as a computation from the stores gives it.
    fn a_claim(restricted: bool) -> (Claim, Vec<String>) {
        let state = if restricted {
            policy::RestrictionState::Restricted
        } else {
            policy::RestrictionState::Unrestricted
        };
        (customer("a", state), inputs(&["a"]))
    }

    #[test]
    fn an_answer_is_reused_until_something_it_read_changes() {
        let cache = AdmissionCache::default();
        let computed = Cell::new(0);
        let ask = |state| {
            cache.claim("ns-a", || {
                computed.set(computed.get() + 1);
                (customer("a", state), inputs(&["a"]))
            })
        };
        ask(policy::RestrictionState::Unrestricted);
        ask(policy::RestrictionState::Unrestricted);
        assert_eq!(computed.get(), 1, "nothing changed: prepared once");
        // Another customer, another namespace: still current.
        cache.customer_changed("b", &["ns-b".to_string()]);
        cache.namespace_changed("ns-c");
        ask(policy::RestrictionState::Unrestricted);
        assert_eq!(computed.get(), 1);
        // Its customer (or one of its decisions) changed.
        cache.customer_changed("a", &[]);
        let now = ask(policy::RestrictionState::Restricted);
        assert_eq!(computed.get(), 2);
        assert_eq!(*now, customer("a", policy::RestrictionState::Restricted));
        // The namespace changed (its labels).
        cache.namespace_changed("ns-a");
        ask(policy::RestrictionState::Restricted);
        assert_eq!(computed.get(), 3);
        // A customer now listing the namespace, not read before.
        cache.customer_changed("c", &["ns-a".to_string()]);
        ask(policy::RestrictionState::Restricted);
        assert_eq!(computed.get(), 4);
        // The hierarchy.
        cache.everything_changed();
        ask(policy::RestrictionState::Restricted);
        assert_eq!(computed.get(), 5);
        assert_eq!(cache.len(), 1);
        cache.namespace_deleted("ns-a");
        assert!(cache.is_empty());
    }

    /// A change that lands while an answer is computed (the computation may have read the
    /// stores before it) makes that answer stale at once: it is never served afterwards.
    #[test]
    fn an_answer_computed_across_a_change_is_not_served_after_it() {
        for change in 0..4 {
            let cache = AdmissionCache::default();
            let first = cache.claim("ns-a", || {
                // The stores are read here (unrestricted), then the change is applied and
                // stamped before this computation returns.
                match change {
                    0 => cache.customer_changed("a", &[]),
                    1 => cache.namespace_changed("ns-a"),
                    2 => cache.everything_changed(),
                    _ => cache.customer_changed("new", &["ns-a".to_string()]),
                }
                (customer("a", policy::RestrictionState::Unrestricted), inputs(&["a"]))
            });
            assert_eq!(*first, customer("a", policy::RestrictionState::Unrestricted));
            let second = cache.claim("ns-a", || {
                (customer("a", policy::RestrictionState::Restricted), inputs(&["a"]))
            });
            assert_eq!(
                *second,
                customer("a", policy::RestrictionState::Restricted),
                "change {change}: the answer computed across it was served"
            );
        }
    }

    #[test]
    fn threads_never_see_an_answer_older_than_the_last_change() {
        // One writer flips customer "a" between states in a shared cell, stamping each flip
        // after it; readers compute from the cell. After each flip is stamped, every answer a
        // reader gets is the new state.
        let cache = Arc::new(AdmissionCache::default());
        let state = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (cache, state, stop) = (cache.clone(), state.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        cache.claim("ns-a", || a_claim(state.load(Ordering::Acquire)));
                    }
                })
            })
            .collect();
        for flip in 0..2_000 {
            let restricted = flip % 2 == 0;
            state.store(restricted, Ordering::Release);
            cache.customer_changed("a", &[]);
            let seen = cache.claim("ns-a", || a_claim(restricted));
            let expected = if restricted {
                policy::RestrictionState::Restricted
            } else {
                policy::RestrictionState::Unrestricted
            };
            assert_eq!(*seen, customer("a", expected), "flip {flip}");
        }
        stop.store(true, Ordering::Release);
        for r in readers {
            r.join().expect("reader");
        }
    }
}
