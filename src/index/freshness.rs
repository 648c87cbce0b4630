//! Whether the caches are current: the consistent-read-from-cache pattern, from a client. A
//! quorum read of each watched kind (metadata only) tells what the API server holds now; the
//! caches are current once every object of that read is in them at its resourceVersion or a
//! newer one, and every cached object the read did not return is newer than the read. Waiting
//! for that (the watches deliver what is missing) proves that everything written before the
//! read started is in the caches.
//!
//! resourceVersions are compared as integers, which holds for kube-apiserver (etcd revisions)
//! and the sandbox; when one does not parse, only equality counts, which errs on the side of
//! waiting.

use super::Stores;
use crate::api::{CustomerAccount, Partner, PurchaseRestriction, ResellerDelegation};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Why the caches could not be shown to be current.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the quorum read of {kind} failed: {message}")]
    ReadFailed { kind: String, message: String },
    #[error("the caches did not catch up with the API server within {}ms ({lag})", .timeout.as_millis())]
    Behind { timeout: Duration, lag: String },
    #[error("purchase-guard's caches are not synced yet")]
    NotSynced,
}

/// A cached kind behind the API server: which object, and what the cache has of it.
fn lag_of<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    list: &kube::api::ObjectList<kube::core::PartialObjectMeta<K>>,
) -> Option<String> {
    let read_at = list.metadata.resource_version.as_deref().unwrap_or_default();
    let kind = K::kind(&());
    let mut fresh: HashMap<(String, String), &str> = HashMap::with_capacity(list.items.len());
    for item in &list.items {
        let key = (
            item.metadata.namespace.clone().unwrap_or_default(),
            item.metadata.name.clone().unwrap_or_default(),
        );
        let rv = item.metadata.resource_version.as_deref().unwrap_or_default();
        let mut reference = ObjectRef::<K>::new(&key.1);
        if !key.0.is_empty() {
            reference = reference.within(&key.0);
        }
        let cached = store.get(&reference);
        let cached_rv = cached.as_ref().and_then(|c| c.meta().resource_version.clone());
        if !cached_rv.as_deref().is_some_and(|c| not_older(c, rv)) {
            let (ns, name) = &key;
            return Some(match cached_rv {
                None => format!("{kind} {ns}/{name} at resourceVersion {rv} is not in the cache yet"),
                Some(c) => format!("{kind} {ns}/{name} is at resourceVersion {c} in the cache, {rv} in the API server"),
            });
        }
        fresh.insert(key, rv);
    }
    for cached in store.state() {
        let key = (cached.namespace().unwrap_or_default(), cached.name_any());
        if fresh.contains_key(&key) {
            continue;
        }
        let rv = cached.meta().resource_version.as_deref().unwrap_or_default();
        if !newer(rv, read_at) {
            let (ns, name) = &key;
            return Some(format!("{kind} {ns}/{name} was deleted, and the cache still has it"));
        }
    }
    None
}

fn parse(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

/// `a` is the same as or newer than `b`.
fn not_older(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => a == b,
    }
}

/// `a` is strictly newer than `b` (unknown ordering: no).
fn newer(a: &str, b: &str) -> bool {
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a > b)
}

async fn read<K>(client: &Client) -> Result<kube::api::ObjectList<kube::core::PartialObjectMeta<K>>, Stale>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    // No resourceVersion: a quorum read, served from etcd.
    Api::<K>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| Stale::ReadFailed {
            kind: K::kind(&()).into_owned(),
            message: e.to_string(),
        })
}

/// Proves the caches current on demand, one quorum read serving every request that arrived
/// before it started.
pub struct Freshness {
    client: Client,
    stores: Stores,
    timeout: Duration,
    /// Held while a check runs: concurrent requests wait for it, then reuse it.
    running: tokio::sync::Mutex<()>,
    /// When the last successful check started.
    confirmed: std::sync::Mutex<Option<Instant>>,
}

impl Freshness {
    /// `timeout` bounds one check: the quorum reads and the wait for the watches.
    pub fn new(client: Client, stores: Stores, timeout: Duration) -> Self {
        Freshness {
            client,
            stores,
            timeout,
            running: tokio::sync::Mutex::new(()),
            confirmed: std::sync::Mutex::new(None),
        }
    }

    /// When the last successful check started: the caches held everything written before it.
    pub fn confirmed_at(&self) -> Option<Instant> {
        *self.confirmed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once the caches hold everything written before `since`: by a check that started
    /// after it, this one's or a concurrent request's.
    pub async fn ensure(&self, since: Instant) -> Result<(), Stale> {
        let _running = self.running.lock().await;
        if self.confirmed_at().is_some_and(|at| at >= since) {
            return Ok(());
        }
        self.check_now().await
    }

    /// One check: quorum reads of the five watched kinds, then the wait for the watches.
    pub async fn check_now(&self) -> Result<(), Stale> {
        let started = Instant::now();
        tokio::time::timeout(self.timeout, self.check())
            .await
            .map_err(|_| Stale::Behind {
                timeout: self.timeout,
                lag: "the quorum reads did not answer".into(),
            })??;
        let mut confirmed = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        if confirmed.is_none_or(|at| at < started) {
            *confirmed = Some(started);
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), Stale> {
        let c = &self.client;
        let (partners, customers, delegations, decisions, namespaces) = futures::try_join!(
            read::<Partner>(c),
            read::<CustomerAccount>(c),
            read::<ResellerDelegation>(c),
            read::<PurchaseRestriction>(c),
            read::<Namespace>(c),
        )?;
        let s = &self.stores;
        let lag = || {
            lag_of(&s.partners, &partners)
                .or_else(|| lag_of(&s.customers, &customers))
                .or_else(|| lag_of(&s.delegations, &delegations))
                .or_else(|| lag_of(&s.decisions, &decisions))
                .or_else(|| lag_of(&s.namespaces, &namespaces))
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut progress = s.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let Some(behind) = lag() else { return Ok(()) };
            // Woken by the next event any watch delivers.
            if !matches!(tokio::time::timeout_at(deadline, progress.changed()).await, Ok(Ok(()))) {
                return Err(Stale::Behind {
                    timeout: self.timeout,
                    lag: behind,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_compare_as_integers_else_by_equality() {
        assert!(not_older("10", "9"));
        assert!(not_older("10", "10"));
        assert!(!not_older("9", "10"));
        assert!(not_older("abc", "abc"));
        assert!(!not_older("abc", "abd"));
        assert!(newer("11", "10"));
        assert!(!newer("10", "10"));
        assert!(!newer("x", "1"));
    }
}
