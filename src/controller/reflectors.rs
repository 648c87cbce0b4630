//! One watch per kind, fanned out: each reflector feeds a shared store (read by the
//! reconcilers and the webhooks), the indexes, and any number of trigger streams. Shared stores
//! dispatch applied objects but not deletions, so deletions are broadcast separately, after the
//! store has dropped the object.

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

/// How many deletions a slow subscriber may fall behind before it misses some.
const BUFFER: usize = 4096;

/// How many changes the store's subscribers may fall behind before the watch waits for them
/// (kube-runtime's shared store holds this many object references per kind, allocated up
/// front: about 100 bytes each). The subscribers only map changes to reconcile requests, which
/// the gates take at once, so the watch rarely waits.
const DISPATCH_BUFFER: usize = 512;

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
        let (store, writer) = reflector::store_shared(DISPATCH_BUFFER);
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
        // What each object was when last seen; a deletion forgets it.
        let mut seen: HashMap<Uid, (Option<i64>, T)> = HashMap::new();
        let applied = self.applied().map(|obj| (obj, true));
        let deleted = deletions(&self.gone).map(|obj| (obj, false));
        futures::stream::select(applied, deleted).filter_map(move |(obj, applied)| {
            let key = Uid::of(obj.meta());
            let changed = if applied {
                let now = (obj.meta().generation, also(&obj));
                let changed = seen.get(&key) != Some(&now);
                seen.insert(key, now);
                changed
            } else {
                seen.remove(&key);
                true
            };
            futures::future::ready(changed.then_some(obj))
        })
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
            .modify(|obj| slim(obj.meta_mut()))
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

/// An object's identity in the maps of what was last seen: its uid as a number when it is a
/// UUID (every API server's), 16 bytes instead of a 36-character string; else its text (its
/// name when it has no uid).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Uid {
    Uuid(u128),
    Text(Box<str>),
}

impl Uid {
    fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Uid {
        let text = meta.uid.as_deref().or(meta.name.as_deref()).unwrap_or_default();
        match parse_uuid(text) {
            Some(n) => Uid::Uuid(n),
            None => Uid::Text(text.into()),
        }
    }
}

/// `8-4-4-4-12` lowercase hexadecimal digits as one number (`None` for any other text, so that
/// two different texts never read as the same number).
fn parse_uuid(text: &str) -> Option<u128> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12]
        || !groups
            .iter()
            .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return None;
    }
    u128::from_str_radix(&groups.concat(), 16).ok()
}

/// The annotation in which `kubectl apply` (and tools that apply as it does) keeps a copy of
/// the whole manifest it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the caches keep of an object's metadata: everything but the managed fields and the
/// copy of the manifest `kubectl apply` records, which nothing reads and which together are
/// often larger than the rest of the object. The controllers write statuses and labels by merge
/// patches of what they set, never whole objects, so nothing left out is written back.
pub fn slim(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn uids_are_numbers_when_they_are_uuids_and_text_otherwise() {
        let meta = |uid: Option<&str>, name: &str| ObjectMeta {
            uid: uid.map(String::from),
            name: Some(name.into()),
            ..Default::default()
        };
        assert_eq!(
            Uid::of(&meta(Some("0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b"), "a")),
            Uid::Uuid(0x0f8e2a4c_1b3d_4e5f_8a9b_0c1d2e3f4a5b)
        );
        for not_uuid in [
            "0F8E2A4C-1B3D-4E5F-8A9B-0C1D2E3F4A5B",
            "0f8e2a4c1b3d4e5f8a9b0c1d2e3f4a5b",
            "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5",
            "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5bc",
            "+f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b",
            "uid-7",
            "",
        ] {
            assert_eq!(
                Uid::of(&meta(Some(not_uuid), "a")),
                Uid::Text(not_uuid.into()),
                "{not_uuid}"
            );
        }
        assert_eq!(Uid::of(&meta(None, "acme")), Uid::Text("acme".into()));
    }

    #[test]
    fn the_caches_keep_every_annotation_but_the_applied_manifest() {
        let mut meta: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "d", "namespace": "dist", "uid": "u", "resourceVersion": "7", "generation": 2,
            "labels": {"team": "billing"},
            "annotations": {
                LAST_APPLIED: "{\"apiVersion\":\"purchaseguard.io/v1alpha1\"}",
                crate::api::AUDIT_USER_ANNOTATION: "alice"
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
        }))
        .expect("metadata");
        let before = meta.clone();
        slim(&mut meta);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(
            meta.annotations,
            Some([(crate::api::AUDIT_USER_ANNOTATION.to_string(), "alice".to_string())].into()),
            "the annotations the rules read stay"
        );
        assert_eq!(
            (&meta.name, &meta.namespace, &meta.uid),
            (&before.name, &before.namespace, &before.uid)
        );
        assert_eq!(
            (&meta.resource_version, meta.generation, &meta.labels),
            (&before.resource_version, before.generation, &before.labels)
        );
        // Only the manifest: no annotations left.
        let mut only: ObjectMeta =
            serde_json::from_value(serde_json::json!({"name": "c", "annotations": {LAST_APPLIED: "{}"}}))
                .expect("metadata");
        slim(&mut only);
        assert_eq!(only.annotations, None);
    }
}
