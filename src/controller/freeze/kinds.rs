//! One watch per guarded kind: a cache of its objects (read by the freeze passes and the audit)
//! and the namespaces where objects change (so that a frozen customer whose resource was
//! changed back, or who got a new one, is reconciled: drift correction; and a restricted
//! customer's resources are audited). A kind that the API server does not serve (a CRD not
//! installed yet) is looked for again every [`DISCOVERY_RETRY`].
//!
//! The caches keep what the passes read: of `metadata.managedFields`, only the entries of
//! other managers that wrote `spec` (manager, operation, time, subresource; no field sets);
//! of a kind without a freeze action, only the metadata.

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

/// A guarded kind, with its freeze action if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSettings {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub action: Option<policy::FreezeAction>,
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

/// The resource `plural` of `group`/`version` as the API server serves it; `None` when it does
/// not.
pub async fn discover(
    client: &Client,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<Option<ApiResource>, kube::Error> {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let list = if group.is_empty() {
        client.list_core_api_resources(&api_version).await
    } else {
        client.list_api_group_resources(&api_version).await
    };
    let list = match list {
        Ok(l) => l,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(list.resources.iter().find(|r| r.name == plural).map(|r| ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: api_version.clone(),
        kind: r.kind.clone(),
        plural: plural.to_string(),
    }))
}

/// Looks for the resource every [`DISCOVERY_RETRY`] until the API server serves it;
/// `not_served` is called once, the first time it does not.
pub async fn until_served(
    client: &Client,
    group: &str,
    version: &str,
    plural: &str,
    not_served: impl FnOnce(),
) -> ApiResource {
    let mut not_served = Some(not_served);
    loop {
        match discover(client, group, version, plural).await {
            Ok(Some(r)) => return r,
            Ok(None) => {
                if let Some(report) = not_served.take() {
                    report();
                }
            }
            Err(e) => {
                tracing::warn!(resource = %qualified(group, plural), %version, error = %e, "cannot discover a resource")
            }
        }
        tokio::time::sleep(DISCOVERY_RETRY).await;
    }
}

async fn watch(watched: &Watched, client: Client, changed: tokio::sync::mpsc::UnboundedSender<Changed>) {
    let kind = &watched.settings;
    let freezable = kind.action.is_some();
    let resource = until_served(&client, &kind.group, &kind.version, &kind.resource, || {
        watched.not_served.store(true, Ordering::SeqCst);
        tracing::warn!(kind = %kind.qualified(), version = %kind.version, "a guarded kind is not served; its resources cannot be frozen nor audited until it is (looked for again every 30s)");
    })
    .await;
    watched.not_served.store(false, Ordering::SeqCst);
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let _ = watched.state.set((resource.clone(), store));
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let synced = &watched.synced;
    watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(move |obj| slim(obj, freezable))
        .reflect(writer)
        .for_each(|event| {
            match event {
                Ok(watcher::Event::InitDone) => {
                    synced.store(true, Ordering::SeqCst);
                    let _ = changed.send(Changed::All);
                }
                Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => {
                    // Objects controlled by others (a ReplicaSet's Pods) of a kind that is not
                    // frozen are neither frozen nor audited: their churn reconciles nobody.
                    let controlled = || {
                        obj.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|r| r.controller == Some(true))
                    };
                    if let Some(namespace) = obj.namespace().filter(|_| freezable || !controlled()) {
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

/// What the caches keep of an object: see the module's documentation.
fn slim(obj: &mut DynamicObject, freezable: bool) {
    let fields = obj.managed_fields_mut();
    fields.retain(|f| {
        f.manager.as_deref() != Some(crate::controller::MANAGER)
            && f.fields_v1.as_ref().is_some_and(|v| v.0.get("f:spec").is_some())
    });
    for f in fields.iter_mut() {
        f.fields_v1 = None;
        f.fields_type = None;
    }
    if !freezable {
        obj.data = serde_json::Value::Object(Default::default());
    }
}

/// The latest write of `spec` by another manager than purchase-guard, as [`slim`] kept it.
pub fn spec_written(obj: &DynamicObject) -> Option<(&str, &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time)> {
    obj.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| Some((f.manager.as_deref().unwrap_or("unknown"), f.time.as_ref()?)))
        .max_by_key(|(_, t)| t.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_other_managers_writes_of_spec_and_the_metadata_of_unfreezable_kinds() {
        let object = || -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "acme", "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-01-01T00:00:01Z",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                     "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
                    {"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-01T00:00:05Z",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}},
                    {"manager": "purchase-guard", "operation": "Update", "subresource": "scale",
                     "time": "2026-01-01T00:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
                ]},
                "spec": {"replicas": 2}
            }))
            .expect("an object")
        };
        let mut freezable = object();
        slim(&mut freezable, true);
        let kept = freezable.metadata.managed_fields.as_deref().unwrap_or_default();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.iter().all(|f| f.fields_v1.is_none()));
        let (manager, time) = spec_written(&freezable).expect("a write of spec");
        assert_eq!(manager, "kubectl-edit");
        assert_eq!(time.0.to_string(), "2026-01-01T00:00:05Z");
        assert_eq!(freezable.data["spec"]["replicas"], 2);
        let mut other = object();
        slim(&mut other, false);
        assert_eq!(other.data, serde_json::json!({}));
        assert_eq!(other.metadata.name.as_deref(), Some("web"));
    }
}
