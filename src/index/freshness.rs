//! Whether the caches are current: the consistent-read-from-cache pattern, from a client. A
//! quorum read (metadata only) tells what the API server holds now; the caches are current
//! for what was read once every object of that read is in them at its resourceVersion or a
//! newer one, and every cached object the read would have returned but did not is newer than
//! the read. Waiting for that (the watches deliver what is missing) proves that everything
//! written before the read started is in the caches.
//!
//! Two scopes: everything the replica watches ([`Freshness::check_now`], in the background),
//! and what one purchase depends on ([`Freshness::ensure_for`]: its customer, the customer's
//! decisions by the `spec.customer` field selector, the namespace, and the partner
//! hierarchy), so that the read before an admission costs the same with 10 customers or
//! 100,000.
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
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Why the caches could not be shown to be current.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the quorum read of {kind} failed: {message}")]
    ReadFailed { kind: String, message: String },
    #[error("the caches did not catch up with the API server within {}ms ({lag})", .timeout.as_millis())]
    Behind { timeout: Duration, lag: String },
}

/// A cached kind behind the API server: which object, and what the cache has of it. `cached`
/// are the cached objects the read would return (all of the kind, or those its selector
/// matches).
fn lag_of<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    cached: Vec<std::sync::Arc<K>>,
    list: &Listed,
) -> Option<String> {
    let read_at = list.read_at.as_str();
    let kind = K::kind(&());
    for (ns, name, rv) in list.items.iter().map(Item::parts) {
        let mut reference = ObjectRef::<K>::new(name);
        if !ns.is_empty() {
            reference = reference.within(ns);
        }
        let cached = store.get(&reference);
        let cached_rv = cached.as_ref().and_then(|c| c.meta().resource_version.clone());
        if !cached_rv.as_deref().is_some_and(|c| not_older(c, rv)) {
            return Some(match cached_rv {
                None => format!("{kind} {ns}/{name} at resourceVersion {rv} is not in the cache yet"),
                Some(c) => format!("{kind} {ns}/{name} is at resourceVersion {c} in the cache, {rv} in the API server"),
            });
        }
    }
    // Every listed object is in the cache, recent enough; now the cached objects the read did
    // not return (the list is sorted by namespace and name).
    for cached in cached {
        let (ns, name) = (cached.namespace().unwrap_or_default(), cached.name_any());
        if list
            .items
            .binary_search_by(|item| item.key().cmp(&(ns.as_str(), name.as_str())))
            .is_ok()
        {
            continue;
        }
        let rv = cached.meta().resource_version.as_deref().unwrap_or_default();
        if !newer(rv, read_at) {
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

/// One cached object behind the API server's `fresh` view of it (absent: `None`).
fn lag_of_one<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    name: &str,
    fresh: &Option<kube::core::PartialObjectMeta<K>>,
) -> Option<String> {
    let kind = K::kind(&());
    let cached = store.get(&ObjectRef::new(name));
    let cached_rv = cached.as_ref().and_then(|c| c.meta().resource_version.clone());
    match (
        fresh.as_ref().and_then(|f| f.metadata.resource_version.as_deref()),
        cached_rv,
    ) {
        (Some(rv), Some(c)) if not_older(&c, rv) => None,
        (Some(rv), Some(c)) => Some(format!(
            "{kind} {name} is at resourceVersion {c} in the cache, {rv} in the API server"
        )),
        (Some(rv), None) => Some(format!("{kind} {name} at resourceVersion {rv} is not in the cache yet")),
        // Gone (or created since the read, which only delays the answer).
        (None, Some(_)) => Some(format!("{kind} {name} was deleted, and the cache still has it")),
        (None, None) => None,
    }
}

/// A metadata-only quorum read of one object; `None` when it does not exist.
async fn read_one<K>(client: &Client, name: &str) -> Result<Option<kube::core::PartialObjectMeta<K>>, Stale>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    Api::<K>::all(client.clone())
        .get_metadata_opt(name)
        .await
        .map_err(|e| Stale::ReadFailed {
            kind: K::kind(&()).into_owned(),
            message: e.to_string(),
        })
}

/// What a quorum list says of each object: namespace, name, resourceVersion; and the
/// resourceVersion of the read. Kept this small (not the objects' metadata, whose managed
/// fields and annotations can be kilobytes each) so that a check of 100,000 objects costs
/// a few megabytes, not hundreds.
struct Listed {
    read_at: String,
    items: Vec<Item>,
}

/// One object of a quorum list: its namespace (empty for cluster-scoped kinds), name and
/// resourceVersion in one allocation (three strings took three, and 72 bytes besides).
struct Item {
    text: Box<str>,
    namespace: usize,
    name: usize,
}

impl Item {
    fn new(namespace: &str, name: &str, rv: &str) -> Item {
        Item {
            text: [namespace, name, rv].concat().into(),
            namespace: namespace.len(),
            name: name.len(),
        }
    }

    /// Namespace and name, the order of a [`Listed`]'s items.
    fn key(&self) -> (&str, &str) {
        let (namespace, name, _) = self.parts();
        (namespace, name)
    }

    /// Namespace, name, resourceVersion.
    fn parts(&self) -> (&str, &str, &str) {
        let (namespace, rest) = self.text.split_at(self.namespace);
        let (name, rv) = rest.split_at(self.name);
        (namespace, name, rv)
    }
}

/// How many objects one page of a quorum list holds.
const PAGE: u32 = 500;

/// One page of a metadata-only list, as far as [`read`] needs it. The items' other metadata
/// (managed fields, labels, annotations) is skipped while it is parsed: decoded as
/// `PartialObjectMeta`, a page of 500 customers' managed fields alone took megabytes, at the
/// controller's peak, every `--cache-check-interval`.
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Vec<PageItem>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
}

#[derive(serde::Deserialize)]
struct PageItem {
    metadata: ItemMeta,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemMeta {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
}

/// How a list's pages are decoded.
#[derive(Clone, Copy)]
enum Decode {
    /// Each page whole, once it arrived: the few objects one purchase depends on (a hop to a
    /// blocking thread would cost each purchase more than it saves).
    Whole,
    /// While it arrives ([`page`]): the background check's lists of everything.
    Streamed,
}

/// A metadata-only quorum list of `K`, with a field selector if any, read by pages.
async fn read<K>(client: &Client, fields: Option<String>, decode: Decode) -> Result<Listed, Stale>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let failed = |e: kube::Error| Stale::ReadFailed {
        kind: K::kind(&()).into_owned(),
        message: e.to_string(),
    };
    let mut params = ListParams::default().limit(PAGE);
    if let Some(fields) = &fields {
        params = params.fields(fields);
    }
    let request = kube::core::Request::new(K::url_path(&(), None));
    let mut listed = Listed {
        read_at: String::new(),
        items: Vec::new(),
    };
    loop {
        // No resourceVersion: a quorum read, served from etcd; the pages that follow are
        // read at the first one's resourceVersion.
        let http = request
            .list_metadata(&params)
            .map_err(|e| failed(kube::Error::BuildRequest(e)))?;
        let page: Page = match decode {
            Decode::Whole => client.request(http).await,
            Decode::Streamed => page(client, http).await,
        }
        .map_err(failed)?;
        if listed.read_at.is_empty() {
            listed.read_at = page.metadata.resource_version.unwrap_or_default();
        }
        listed.items.extend(page.items.into_iter().map(|item| {
            let m = item.metadata;
            Item::new(
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
                m.resource_version.as_deref().unwrap_or_default(),
            )
        }));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => {
                // Sorted once, searched for each cached object the read did not return.
                listed.items.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
                return Ok(listed);
            }
        }
    }
}

/// One page of a list, decoded while its body arrives: a page is never held whole. A page of
/// 500 customers' metadata, their managed fields included, is about a megabyte, and kube's
/// `Client::request` holds two copies of it while it decodes it; two kinds read at once made
/// each confirmation of the caches a transient of several megabytes, every
/// `--cache-check-interval`.
async fn page(client: &Client, http: http::Request<Vec<u8>>) -> Result<Page, kube::Error> {
    let body = Box::pin(client.request_stream(http).await?);
    tokio::task::spawn_blocking(move || {
        serde_json::from_reader(std::io::BufReader::with_capacity(16 * 1024, Blocking(body)))
    })
    .await
    .map_err(|e| kube::Error::Service(e.into()))?
    .map_err(kube::Error::SerdeError)
}

/// An asynchronous reader read from a blocking thread.
struct Blocking<R>(R);

impl<R: futures::AsyncRead + Unpin> std::io::Read for Blocking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        futures::executor::block_on(futures::AsyncReadExt::read(&mut self.0, buf))
    }
}

/// Proves the caches current: all of them in the background, or what one purchase depends on
/// before it is admitted.
pub struct Freshness {
    client: Client,
    stores: Stores,
    timeout: Duration,
    /// When the last successful check of all the caches started.
    confirmed: std::sync::Mutex<Option<Instant>>,
}

impl Freshness {
    /// `timeout` bounds one check: the quorum reads and the wait for the watches.
    pub fn new(client: Client, stores: Stores, timeout: Duration) -> Self {
        Freshness {
            client,
            stores,
            timeout,
            confirmed: std::sync::Mutex::new(None),
        }
    }

    /// When the last successful check started: the caches held everything written before it.
    pub fn confirmed_at(&self) -> Option<Instant> {
        *self.confirmed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once the caches hold everything written, before this call, that a purchase in
    /// `namespace` of `customer` depends on: the customer, its decisions, the namespace, and
    /// the partners and delegations. A purchase judged after it sees every restriction whose
    /// write returned before the purchase arrived.
    pub async fn ensure_for(&self, customer: &str, namespace: &str) -> Result<(), Stale> {
        self.check_for(customer, namespace).await
    }

    /// The quorum reads of a check, bounded by its deadline (the reads and the wait for the
    /// watches share one timeout; a wait cut short says what the caches still lack).
    async fn reads<T>(
        &self,
        deadline: tokio::time::Instant,
        reads: impl std::future::Future<Output = Result<T, Stale>>,
    ) -> Result<T, Stale> {
        tokio::time::timeout_at(deadline, reads)
            .await
            .map_err(|_| Stale::Behind {
                timeout: self.timeout,
                lag: "the quorum reads did not answer".into(),
            })?
    }

    async fn check_for(&self, customer: &str, namespace: &str) -> Result<(), Stale> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let c = &self.client;
        let (partners, delegations, decisions, the_customer, the_namespace) = self
            .reads(deadline, async {
                futures::try_join!(
                    read::<Partner>(c, None, Decode::Whole),
                    read::<ResellerDelegation>(c, None, Decode::Whole),
                    read::<PurchaseRestriction>(c, Some(format!("spec.customer={customer}")), Decode::Whole),
                    read_one::<CustomerAccount>(c, customer),
                    read_one::<Namespace>(c, namespace),
                )
            })
            .await?;
        let s = &self.stores;
        self.wait(deadline, || {
            lag_of(&s.partners, s.partners.state(), &partners)
                .or_else(|| lag_of(&s.delegations, s.delegations.state(), &delegations))
                .or_else(|| lag_of(&s.decisions, s.decisions_of(customer), &decisions))
                .or_else(|| lag_of_one(&s.customers, customer, &the_customer))
                .or_else(|| lag_of_one(&s.namespaces, namespace, &the_namespace))
        })
        .await
    }

    /// Waits until `lag` finds nothing behind, woken by every event the watches apply.
    async fn wait(&self, deadline: tokio::time::Instant, lag: impl Fn() -> Option<String>) -> Result<(), Stale> {
        let mut progress = self.stores.progress.subscribe();
        loop {
            progress.borrow_and_update();
            let Some(behind) = lag() else { return Ok(()) };
            if !matches!(tokio::time::timeout_at(deadline, progress.changed()).await, Ok(Ok(()))) {
                return Err(Stale::Behind {
                    timeout: self.timeout,
                    lag: behind,
                });
            }
        }
    }

    /// One check: quorum reads of the five watched kinds, then the wait for the watches.
    pub async fn check_now(&self) -> Result<(), Stale> {
        let started = Instant::now();
        self.check().await?;
        let mut confirmed = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        if confirmed.is_none_or(|at| at < started) {
            *confirmed = Some(started);
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), Stale> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let c = &self.client;
        let (partners, customers, delegations, decisions, namespaces) = self
            .reads(deadline, async {
                futures::try_join!(
                    read::<Partner>(c, None, Decode::Streamed),
                    read::<CustomerAccount>(c, None, Decode::Streamed),
                    read::<ResellerDelegation>(c, None, Decode::Streamed),
                    read::<PurchaseRestriction>(c, None, Decode::Streamed),
                    read::<Namespace>(c, None, Decode::Streamed),
                )
            })
            .await?;
        let s = &self.stores;
        self.wait(deadline, || {
            lag_of(&s.partners, s.partners.state(), &partners)
                .or_else(|| lag_of(&s.customers, s.customers.state(), &customers))
                .or_else(|| lag_of(&s.delegations, s.delegations.state(), &delegations))
                .or_else(|| lag_of(&s.decisions, s.decisions.state(), &decisions))
                .or_else(|| lag_of(&s.namespaces, s.namespaces.state(), &namespaces))
        })
        .await
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

    #[test]
    fn a_listed_item_reads_back_its_parts() {
        for (ns, name, rv) in [
            ("dist", "acme", "42"),
            ("", "dist", "7"),
            ("", "", ""),
            ("né", "ü-1", "x"),
        ] {
            assert_eq!(Item::new(ns, name, rv).parts(), (ns, name, rv));
        }
    }

    #[test]
    fn a_page_keeps_namespace_name_and_version_of_each_item() {
        let page: Page = serde_json::from_value(serde_json::json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "42", "continue": "next", "remainingItemCount": 3},
            "items": [
                {"kind": "PartialObjectMetadata", "metadata": {
                    "name": "d", "namespace": "dist", "resourceVersion": "40", "uid": "u", "generation": 2,
                    "labels": {"team": "billing"},
                    "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:spec": {"f:customer": {}, "f:state": {}}}}]
                }},
                {"metadata": {"name": "acme", "resourceVersion": "41"}}
            ]
        }))
        .expect("a metadata list page");
        assert_eq!(page.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(page.metadata.continue_.as_deref(), Some("next"));
        let items: Vec<_> = page
            .items
            .iter()
            .map(|i| (&i.metadata.namespace, &i.metadata.name, &i.metadata.resource_version))
            .collect();
        assert_eq!(
            items,
            [
                (&Some("dist".into()), &Some("d".into()), &Some("40".into())),
                (&None, &Some("acme".into()), &Some("41".into()))
            ]
        );
        // The last page has no continue token; an empty list may leave out its items.
        let last: Page =
            serde_json::from_value(serde_json::json!({"metadata": {"resourceVersion": "7"}})).expect("an empty page");
        assert!(last.items.is_empty() && last.metadata.continue_.is_none());
    }
}
