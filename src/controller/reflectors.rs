//! One watch per kind, fanned out: each reflector feeds a shared store (read by the
//! reconcilers and the webhooks), the indexes, and any number of trigger streams. Shared stores
//! dispatch applied objects but not deletions, so deletions are broadcast separately, after the
//! store has dropped the object.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

/// How many events a slow subscriber may fall behind before it misses some.
const BUFFER: usize = 4096;

type Gone<K> = tokio::sync::broadcast::Sender<Arc<K>>;

/// A watched kind: its store, the writer the watch feeds, and its deletions.
pub struct Reflector<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    writer: reflector::store::Writer<K>,
    gone: Gone<K>,
}

impl<K> Default for Reflector<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn default() -> Self {
        let (store, writer) = reflector::store_shared(BUFFER);
        Reflector {
            store,
            writer,
            gone: tokio::sync::broadcast::channel(BUFFER).0,
        }
    }
}

impl<K> Reflector<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// The objects as the store holds them: every change, once the store has it.
    pub fn applied(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        // Stores made by `store_shared` always accept subscribers.
        self.writer.subscribe().expect("shared stores can be subscribed to")
    }

    /// Every change and every deletion: for triggers that read the whole object.
    pub fn changes(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        futures::stream::select(self.applied(), deletions(&self.gone))
    }

    /// Spec changes (new generations) and deletions: for triggers whose dependents read only
    /// the spec, so that status writes do not re-trigger.
    pub fn spec_changes(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.spec_changes_and(|_| ())
    }

    /// Spec changes, changes of `also` (a part of the status dependents read), and deletions.
    pub fn spec_changes_and<T>(&self, also: fn(&K) -> T) -> impl futures::Stream<Item = Arc<K>> + Send + 'static
    where
        T: PartialEq + Send + 'static,
    {
        let mut seen: HashMap<String, (Option<i64>, T)> = HashMap::new();
        let changed = self.applied().filter(move |obj| {
            let meta = obj.meta();
            let key = meta.uid.clone().or_else(|| meta.name.clone()).unwrap_or_default();
            let now = (meta.generation, also(obj));
            let changed = seen.get(&key) != Some(&now);
            seen.insert(key, now);
            futures::future::ready(changed)
        });
        futures::stream::select(changed, deletions(&self.gone))
    }

    /// Drives the watch until it ends: indexes follow each event before the store does
    /// (`observe`); `applied` sees each event after the store applied it, and deletions are
    /// broadcast after that.
    pub fn run(
        self,
        api: Api<K>,
        observe: impl Fn(&watcher::Event<K>) + Send + 'static,
        applied: impl Fn(&watcher::Event<K>) + Send + 'static,
    ) -> impl std::future::Future<Output = ()> {
        let gone = self.gone;
        watcher(api, watcher::Config::default())
            .default_backoff()
            // The caches need no managed fields: dropping them saves memory.
            .modify(|obj| obj.managed_fields_mut().clear())
            .inspect(move |event| {
                if let Ok(e) = event {
                    observe(e)
                }
            })
            .reflect_shared(self.writer)
            .for_each(move |event| {
                if let Ok(e) = &event {
                    applied(e);
                }
                // After the reflector dropped the object from the store: mapped reconciles
                // see the store without it.
                if let Ok(watcher::Event::Delete(obj)) = event {
                    // Nobody listening is fine.
                    let _ = gone.send(Arc::new(obj));
                }
                async {}
            })
    }
}

/// The deleted objects of a kind, as a trigger stream.
fn deletions<K: Send + Sync + 'static>(gone: &Gone<K>) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
    futures::stream::unfold(gone.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(obj) => return Some((obj, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "deletion triggers were dropped under load");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
