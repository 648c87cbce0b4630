//! One watch per guarded kind with a freeze action: a cache of its objects (read by the freeze
//! passes) and the namespaces where objects change (so that a frozen customer whose resource
//! was changed back, or who got a new one, is reconciled: drift correction). A kind that the
//! API server does not serve (a CRD not installed yet) is looked for again every
//! [`DISCOVERY_RETRY`].

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use purchase_guard_policy as policy;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a kind the API server does not serve is looked for again.
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(30);

/// A guarded kind with a freeze action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSettings {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub action: policy::FreezeAction,
    /// The billing mode of objects without a valid billing-mode label.
    pub default_billing_mode: policy::BillingMode,
}

impl KindSettings {
    /// `deployments.apps`, `pods` (core group).
    pub fn qualified(&self) -> String {
        qualified(&self.group, &self.resource)
    }
}

/// A resource named as kubectl names it: `deployments.apps`, `pods` (core group).
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// A watched kind.
pub struct Watched {
    pub settings: KindSettings,
    state: OnceLock<(ApiResource, Store<DynamicObject>)>,
    synced: AtomicBool,
    /// The API server answered that it does not serve the kind (looked for again later).
    not_served: AtomicBool,
}

impl Watched {
    /// Whether the API server said it does not serve the kind: no such objects exist.
    pub fn not_served(&self) -> bool {
        self.not_served.load(Ordering::SeqCst)
    }

    /// The kind's resource and cache, once its first list is complete.
    pub fn ready(&self) -> Option<(&ApiResource, &Store<DynamicObject>)> {
        if !self.synced.load(Ordering::SeqCst) {
            return None;
        }
        self.state.get().map(|(r, s)| (r, s))
    }
}

/// A change seen by a watch: in a namespace, or everything (a watch (re)synced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    Namespace {
        namespace: String,
        /// Whether the object carries a freeze record (its customer may be thawed already).
        frozen: bool,
    },
    All,
}

/// The watched kinds.
#[derive(Default)]
pub struct Kinds {
    kinds: Vec<Watched>,
}

impl Kinds {
    pub fn new(settings: &[KindSettings]) -> Self {
        Kinds {
            kinds: settings
                .iter()
                .map(|s| Watched {
                    settings: s.clone(),
                    state: OnceLock::new(),
                    synced: AtomicBool::new(false),
                    not_served: AtomicBool::new(false),
                })
                .collect(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Watched> {
        self.kinds.iter()
    }

    /// Runs every watch for ever, sending what changed; never returns (also without kinds).
    pub async fn run(&self, client: Client, changed: tokio::sync::mpsc::UnboundedSender<Changed>) {
        let watches = self.kinds.iter().map(|w| watch(w, client.clone(), changed.clone()));
        futures::future::join_all(watches).await;
        std::future::pending::<()>().await
    }
}

/// The API resource of a kind, as the API server serves it; `None` when it does not.
async fn discover(client: &Client, kind: &KindSettings) -> Result<Option<ApiResource>, kube::Error> {
    let api_version = if kind.group.is_empty() {
        kind.version.clone()
    } else {
        format!("{}/{}", kind.group, kind.version)
    };
    let list = if kind.group.is_empty() {
        client.list_core_api_resources(&api_version).await
    } else {
        client.list_api_group_resources(&api_version).await
    };
    let list = match list {
        Ok(l) => l,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(list
        .resources
        .iter()
        .find(|r| r.name == kind.resource)
        .map(|r| ApiResource {
            group: kind.group.clone(),
            version: kind.version.clone(),
            api_version: api_version.clone(),
            kind: r.kind.clone(),
            plural: kind.resource.clone(),
        }))
}

async fn watch(watched: &Watched, client: Client, changed: tokio::sync::mpsc::UnboundedSender<Changed>) {
    let kind = &watched.settings;
    let mut reported = false;
    let resource = loop {
        match discover(&client, kind).await {
            Ok(Some(r)) => break r,
            Ok(None) if !reported => {
                reported = true;
                watched.not_served.store(true, Ordering::SeqCst);
                tracing::warn!(kind = %kind.qualified(), version = %kind.version, "a guarded kind with a freeze action is not served; its resources cannot be frozen until it is (looked for again every 30s)");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(kind = %kind.qualified(), error = %e, "cannot discover a guarded kind"),
        }
        tokio::time::sleep(DISCOVERY_RETRY).await;
    };
    watched.not_served.store(false, Ordering::SeqCst);
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let _ = watched.state.set((resource.clone(), store));
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let synced = &watched.synced;
    watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|obj| obj.managed_fields_mut().clear())
        .reflect(writer)
        .for_each(|event| {
            match event {
                Ok(watcher::Event::InitDone) => {
                    synced.store(true, Ordering::SeqCst);
                    let _ = changed.send(Changed::All);
                }
                Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => {
                    if let Some(namespace) = obj.namespace() {
                        let frozen = obj.labels().contains_key(policy::FROZEN_LABEL);
                        let _ = changed.send(Changed::Namespace { namespace, frozen });
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(kind = %kind.qualified(), error = %e, "watch error"),
            }
            async {}
        })
        .await;
}
