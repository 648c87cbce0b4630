//! The object store: every object as JSON, a cluster-wide resourceVersion, and a bounded
//! history of watch events for watches that resume from a resourceVersion.

use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// The key of an object: `group/plural`, namespace (empty when cluster-scoped), name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Key {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change of one object.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: Key,
    pub object: Arc<Value>,
    /// What a MODIFIED event replaced: a watch with a selector shows an object that starts
    /// or stops matching as ADDED or DELETED.
    pub previous: Option<Arc<Value>>,
    /// The watch line (`{"type":...,"object":...}` and a newline), serialized once for every
    /// watcher.
    pub line: Arc<str>,
}

impl Event {
    fn new(rv: u64, kind: EventType, key: Key, object: Arc<Value>, previous: Option<Arc<Value>>) -> Self {
        let json = String::from_utf8(crate::meta::to_json(&object)).unwrap_or_else(|_| "{}".into());
        let line: Arc<str> = format!("{{\"type\":\"{}\",\"object\":{json}}}\n", kind.as_str()).into();
        Event {
            rv,
            kind,
            key,
            object,
            previous,
            line,
        }
    }
}

/// Why a watch cannot start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchStartError {
    /// The requested resourceVersion is older than the kept history.
    Expired { requested: u64, oldest: u64 },
}

/// Everything behind the lock.
pub struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Event>,
    history_capacity: usize,
    /// The newest resourceVersion no longer in the history.
    compacted: u64,
    dirty: bool,
    /// Writes per resource (`group/plural`), for tests that check a controller is quiet.
    writes: std::collections::HashMap<String, u64>,
}

/// The store: objects, resourceVersions, watch history and live event fan-out.
pub struct Store {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Event>,
    /// Bumped to end every open watch (clients resume from their last resourceVersion).
    epoch: tokio::sync::watch::Sender<u64>,
    /// While true, new watches wait before starting (a partition between clients and server).
    paused: tokio::sync::watch::Sender<bool>,
}

/// A snapshot for the state file.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub resource_version: u64,
    pub objects: Vec<(String, String, String, Value)>,
}

impl Store {
    pub fn new(history_capacity: usize) -> Self {
        let (live, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_capacity,
                compacted: 1,
                dirty: false,
                writes: Default::default(),
            }),
            live,
            epoch: tokio::sync::watch::channel(0).0,
            paused: tokio::sync::watch::channel(false).0,
        }
    }

    /// Holds back new watches until `resume_watches` (existing ones are not affected): with
    /// `close_watches` and `compact`, tests make clients resume from a forgotten point.
    pub fn pause_watches(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume_watches(&self) {
        self.paused.send_replace(false);
    }

    /// Waits while watches are paused.
    pub async fn watches_allowed(&self) {
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|p| !*p).await;
    }

    /// Ends every open watch, as an API server restart or a load balancer would.
    pub fn close_watches(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Every change from now on, as watches get them.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// A receiver that changes when watches must end.
    pub fn watch_epoch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    /// Locks the store. A poisoned lock is recovered: every write leaves the maps consistent.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to live events and returns the past events after `from` matching `filter`,
    /// atomically, so that nothing is missed in between.
    #[allow(clippy::type_complexity)]
    pub fn watch_from(
        &self,
        from: Option<u64>,
        filter: impl Fn(&Key) -> bool,
    ) -> Result<(Vec<Event>, Vec<(Key, Arc<Value>)>, broadcast::Receiver<Event>, u64), WatchStartError> {
        let inner = self.lock();
        let rx = self.live.subscribe();
        match from {
            // No resourceVersion: the current state as ADDED events, then changes.
            None => {
                let current: Vec<(Key, Arc<Value>)> = inner
                    .objects
                    .iter()
                    .filter(|(k, _)| filter(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok((vec![], current, rx, inner.rv))
            }
            Some(from) => {
                if from < inner.compacted {
                    return Err(WatchStartError::Expired {
                        requested: from,
                        oldest: inner.compacted,
                    });
                }
                let past = inner
                    .history
                    .iter()
                    .filter(|e| e.rv > from && filter(&e.key))
                    .cloned()
                    .collect();
                Ok((past, vec![], rx, inner.rv))
            }
        }
    }
}

impl Inner {
    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, key: &Key) -> Option<&Arc<Value>> {
        self.objects.get(key)
    }

    /// Objects of a resource, in key order, optionally in one namespace.
    pub fn list<'a>(
        &'a self,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        let start = Key::new(resource, namespace.unwrap_or(""), "");
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
    }

    /// Every key of every object.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.objects.keys()
    }

    /// The next resourceVersion, for an object about to be written.
    pub fn next_rv(&self) -> u64 {
        self.rv + 1
    }

    /// Stores an object (its metadata.resourceVersion must already be `next_rv()`).
    pub fn put(&mut self, store: &Store, key: Key, object: Value) -> Arc<Value> {
        self.rv += 1;
        let object = Arc::new(object);
        let previous = self.objects.insert(key.clone(), object.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(store, Event::new(self.rv, kind, key, object.clone(), previous));
        object
    }

    /// Removes an object; the DELETED event carries it with a new resourceVersion.
    pub fn remove(&mut self, store: &Store, key: &Key) -> Option<Arc<Value>> {
        let mut object = (**self.objects.get(key)?).clone();
        self.objects.remove(key);
        self.rv += 1;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let object = Arc::new(object);
        self.record(
            store,
            Event::new(self.rv, EventType::Deleted, key.clone(), object.clone(), None),
        );
        Some(object)
    }

    /// How many writes (creates, updates, deletions) a resource (`group/plural`) has seen.
    pub fn writes_of(&self, resource: &str) -> u64 {
        self.writes.get(resource).copied().unwrap_or(0)
    }

    fn record(&mut self, store: &Store, event: Event) {
        self.dirty = true;
        *self.writes.entry(event.key.resource.clone()).or_default() += 1;
        if self.history.len() == self.history_capacity
            && let Some(old) = self.history.pop_front()
        {
            self.compacted = old.rv;
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody watches.
        let _ = store.live.send(event);
    }

    /// Forgets all history up to now: a watch resuming from any resourceVersion handed out so
    /// far gets 410 Gone, including the current one (which bookmarks carry), so every client
    /// that resumes must list again. The resourceVersion moves past the forgotten ones.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        self.history.clear();
    }

    /// Takes the dirty flag (for the state file writer).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            resource_version: self.rv,
            objects: self
                .objects
                .iter()
                .map(|(k, v)| (k.resource.clone(), k.namespace.clone(), k.name.clone(), (**v).clone()))
                .collect(),
        }
    }

    pub fn restore(&mut self, snapshot: Snapshot) {
        self.rv = snapshot.resource_version.max(1);
        self.compacted = self.rv;
        self.history.clear();
        self.objects = snapshot
            .objects
            .into_iter()
            .map(|(r, ns, n, v)| {
                (
                    Key {
                        resource: r,
                        namespace: ns,
                        name: n,
                    },
                    Arc::new(v),
                )
            })
            .collect();
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}
