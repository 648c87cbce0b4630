//! The HTTP API: the server state and its own writes; one file per part of a request's life.

mod access;
mod authn;
mod cronjobs;
mod defaults;
mod delete;
mod discovery;
mod http;
mod lifecycle;
mod pods;
mod read;
mod routes;
mod scale;
mod services;
mod signer;
mod twins;
mod update;
mod versions;
mod watch;
mod workloads;
mod write;

use http::*;

use crate::admission::{Admission, Phase, Request as AdmissionRequest};
use crate::managed;
use crate::meta::{self, human_duration, meta_mut, now, parse_time, str_field};
use crate::patch::{self, PatchType};
use crate::rbac::UserInfo;
use crate::registry::{ResourceType, builtins};
use crate::selectors::{FieldSelector, LabelSelector, json_path};
use crate::status::ApiError;
use crate::store::{Key, Store, WatchStartError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use purchase_guard_crd_validation::{
    CrdValidator, FieldValidation, Rejected, validate_dns1123_label, validate_dns1123_subdomain,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The largest request body accepted, as kube-apiserver's limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The Kubernetes version the sandbox reports.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// The finalizer in a namespace's spec that the namespace controller removes once the
/// namespace's content is gone.
const NAMESPACE_FINALIZER: &str = "kubernetes";

/// Whether an object being deleted may go: no finalizers left (for a namespace, in its spec
/// too).
fn finalized(object: &Value) -> bool {
    let namespace = object.get("kind").and_then(Value::as_str) == Some("Namespace")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1");
    ["/metadata/finalizers", "/spec/finalizers"]
        .iter()
        .take(if namespace { 2 } else { 1 })
        .all(|path| {
            object
                .pointer(path)
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty())
        })
}

/// The API server state.
pub struct ApiServer {
    pub store: Arc<Store>,
    types: RwLock<Vec<ResourceType>>,
    validator: RwLock<CrdValidator>,
    /// How often watches send bookmarks when asked.
    pub bookmark_interval: Duration,
    /// Whether RBAC authorizes requests (otherwise every identity may do everything).
    pub rbac: bool,
    /// Admission webhooks and the service mapping that reaches them.
    pub admission: Admission,
    /// The cluster's CA, published in every namespace's kube-root-ca.crt; it signs approved
    /// certificate requests when the simulation runs.
    cluster_ca: signer::ClusterCa,
    /// Signs and checks ServiceAccount tokens.
    tokens: crate::tokens::Signer,
    /// The simulated ReplicaSet controller's last refused Pod creation, by ReplicaSet
    /// (namespace and uid): its `ReplicaFailure` condition.
    creation_failures: std::sync::Mutex<HashMap<(String, String), String>>,
    /// Set when admission refused a garbage collector's or namespace controller's deletion:
    /// the collection is tried again after a backoff ([`ApiServer::retry_refused_collections`]).
    collection_refused: lifecycle::Refused,
    /// Cluster IPs and node ports of Service writes not yet stored.
    service_reservations: services::Reservations,
}

type Query = HashMap<String, String>;

/// The axum handler.
pub async fn handler(State(server): State<Arc<ApiServer>>, req: Request) -> Response {
    server.handle(req).await
}

impl ApiServer {
    pub fn new(store: Arc<Store>) -> Self {
        ApiServer {
            store,
            types: RwLock::new(builtins()),
            validator: RwLock::new(CrdValidator::new()),
            bookmark_interval: Duration::from_secs(1),
            rbac: false,
            admission: Admission::default(),
            cluster_ca: signer::ClusterCa::generate(),
            tokens: crate::tokens::Signer::default(),
            creation_failures: Default::default(),
            collection_refused: Default::default(),
            service_reservations: Default::default(),
        }
    }

    fn types(&self) -> std::sync::RwLockReadGuard<'_, Vec<ResourceType>> {
        self.types.read().unwrap_or_else(|p| p.into_inner())
    }

    fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types()
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    fn group_versions(&self) -> Vec<(String, String)> {
        let mut gvs: Vec<(String, String)> = Vec::new();
        for t in self.types().iter() {
            let gv = (t.group.clone(), t.version.clone());
            if !gvs.contains(&gv) {
                gvs.push(gv);
            }
        }
        gvs
    }

    /// Creates the namespaces every cluster has, if missing.
    pub fn bootstrap(&self) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let exists = self.store.lock().get(&Key::new("/namespaces", "", ns)).is_some();
            if !exists {
                let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                if let Some(rt) = self.find("", "v1", "namespaces") {
                    let _ = self.create(&rt, None, obj, &Query::new(), "sandbox");
                }
            }
        }
        self.bootstrap_defaults();
        // Serve the CRDs that are stored (after a restart from a state file).
        let crds: Vec<Value> = {
            let inner = self.store.lock();
            inner
                .list("apiextensions.k8s.io/customresourcedefinitions", None)
                .map(|(_, v)| (**v).clone())
                .collect()
        };
        for crd in crds {
            self.serve_crd(&crd);
        }
    }

    /// Creates or replaces an object of any served kind, found by its apiVersion and kind
    /// (the sandbox's own writes, such as installing examples; no admission webhooks).
    pub fn apply_object(&self, obj: Value, manager: &str) -> Result<Value, ApiError> {
        let rt = self.type_of(&obj)?;
        let namespace = str_field(&obj, "/metadata/namespace").map(str::to_string);
        self.apply_builtin(&rt.group, &rt.version, &rt.plural, namespace.as_deref(), obj, manager)
    }

    /// The served resource of an object, by its apiVersion and kind.
    fn type_of(&self, obj: &Value) -> Result<ResourceType, ApiError> {
        let api_version = str_field(obj, "/apiVersion").unwrap_or_default();
        let kind = str_field(obj, "/kind").unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.types()
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
            .ok_or_else(|| ApiError::bad_request(format!("no resource of kind {kind:?} is served at {api_version:?}")))
    }

    /// Creates an object, or replaces an existing one's content (for callers inside the
    /// process, such as installing CRDs at start-up).
    pub fn apply_builtin(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        obj: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let rt = self
            .find(group, version, plural)
            .ok_or_else(|| ApiError::not_found(group, plural, ""))?;
        let name = str_field(&obj, "/metadata/name").unwrap_or_default().to_string();
        let exists = self.store.lock().get(&Self::key(&rt, namespace, &name)).is_some();
        let q = Query::new();
        if exists {
            let t = Target {
                rt: rt.clone(),
                namespace: namespace.map(str::to_string),
                name: Some(name.clone()),
                subresource: None,
            };
            self.update(&t, &name, obj, &q, manager, None).map(|(v, _)| v)
        } else {
            self.create(&rt, namespace, obj, &q, manager)
        }
    }
}

/// What ValidatingAdmissionPolicies need of the served types: params by kind, the versions of
/// a resource (`matchPolicy: Equivalent`).
impl crate::admission::policy::Types for ApiServer {
    fn by_kind(&self, api_version: &str, kind: &str) -> Option<crate::admission::policy::Served> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.types()
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .map(|t| crate::admission::policy::Served {
                resource: t.group_resource(),
                namespaced: t.namespaced,
            })
    }

    fn versions(&self, group: &str, plural: &str) -> Vec<String> {
        self.types()
            .iter()
            .filter(|t| t.group == group && t.plural == plural)
            .map(|t| t.version.clone())
            .collect()
    }
}

impl ApiServer {
    /// The ValidatingAdmissionPolicies' verdict on an AdmissionReview `request` (v1: resource,
    /// subResource, operation, name, namespace, userInfo, object, oldObject, dryRun, options),
    /// as a write would get it: the warnings, or the refusal. For tests that compare policies
    /// with a webhook's answers on many requests without writing each.
    pub fn judge_with_policies(&self, request: &Value) -> Result<Vec<String>, ApiError> {
        let text = |p: &str| request.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let rt = self
            .find(
                text("/resource/group"),
                text("/resource/version"),
                text("/resource/resource"),
            )
            .ok_or_else(|| ApiError::bad_request("the request's resource is not served"))?;
        let operation = match text("/operation") {
            "CREATE" => "CREATE",
            "UPDATE" => "UPDATE",
            "DELETE" => "DELETE",
            _ => "CONNECT",
        };
        let user = crate::rbac::UserInfo {
            name: text("/userInfo/username").to_string(),
            uid: text("/userInfo/uid").to_string(),
            groups: request
                .pointer("/userInfo/groups")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        };
        let subresource = request
            .pointer("/subResource")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let object = request.get("object").filter(|o| !o.is_null());
        let old = request.get("oldObject").filter(|o| !o.is_null());
        let namespace = request
            .pointer("/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let req = crate::admission::Request {
            rt: &rt,
            subresource,
            object_kind: (subresource == Some("scale")).then_some(("autoscaling", "v1", "Scale")),
            operation,
            name: text("/name"),
            namespace,
            old,
            dry_run: request.get("dryRun").and_then(Value::as_bool).unwrap_or(false),
            options: request.get("options").cloned().unwrap_or(Value::Null),
            user: &user,
        };
        let mut warnings = Vec::new();
        crate::admission::policy::validate(&self.store, self, &req, object, &mut warnings)?;
        Ok(warnings)
    }
}
