//! The HTTP API: routing, discovery, CRUD, patch, watch and Table output.

use crate::admission::{Admission, Phase, Request as AdmissionRequest};
use crate::meta::{self, human_duration, meta_mut, now, parse_time, str_field};
use crate::patch::{self, PatchType};
use crate::rbac::UserInfo;
use crate::registry::{ResourceType, builtins};
use crate::selectors::{FieldSelector, LabelSelector, json_path};
use crate::status::ApiError;
use crate::store::{Key, Store, WatchStartError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
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
}

type Query = HashMap<String, String>;

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> Query {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn truthy(q: &Query, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    for w in warnings {
        let escaped = w.replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            builder = builder.header("Warning", v);
        }
    }
    builder
        .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
        .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status(), &[])
}

/// What a resource request addresses.
#[derive(Clone, Debug)]
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// The body of a write, parsed.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let value: Value = if ct.starts_with("application/vnd.kubernetes.protobuf") {
        crate::protobuf::decode(body).map_err(|e| ApiError::new(415, "UnsupportedMediaType", e))?
    } else if ct.contains("yaml") {
        let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
        serde_yaml_ng::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized: couldn't get version/kind; json parse error: {e}"
            ))
        })?
    };
    Ok(value)
}

fn field_validation(q: &Query) -> Result<FieldValidation, ApiError> {
    match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}; supported values: Ignore, Warn, Strict"
        ))),
    }
}

fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unsupported dryRun value \"{other}\": supported values: \"All\""
        ))),
    }
}

/// The field manager of a write: the `fieldManager` parameter, or the user agent's program.
fn field_manager(q: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The spec-like content of an object: everything but metadata and status.
fn content(object: &Value) -> Value {
    let mut c = object.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
        o.remove("apiVersion");
        o.remove("kind");
    }
    c
}

fn rv_of(object: &Value) -> u64 {
    str_field(object, "/metadata/resourceVersion")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
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
        let api_version = str_field(&obj, "/apiVersion").unwrap_or_default();
        let kind = str_field(&obj, "/kind").unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let rt = self
            .types()
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!("no resource of kind {kind:?} is served at {api_version:?}"))
            })?;
        let namespace = str_field(&obj, "/metadata/namespace").map(str::to_string);
        self.apply_builtin(&rt.group, &rt.version, &rt.plural, namespace.as_deref(), obj, manager)
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

    // ---- routing -------------------------------------------------------------------------

    pub async fn handle(self: Arc<Self>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return error_response(&ApiError::too_large(MAX_BODY)),
        };
        let query = parse_query(parts.uri.query());
        let path = parts.uri.path().to_string();
        // Writes that may call webhooks run where blocking on the call is allowed.
        let result = if parts.method != Method::GET && crate::admission::configured(&self.store) {
            let server = self.clone();
            let joined = tokio::task::spawn_blocking(move || {
                crate::admission::blocking_section(|| server.route(&parts.method, &path, &query, &parts.headers, body))
            })
            .await;
            joined.unwrap_or_else(|e| Err(ApiError::internal(format!("the request handler failed: {e}"))))
        } else {
            self.route(&parts.method, &path, &query, &parts.headers, body)
        };
        match result {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    fn route(
        self: &Arc<Self>,
        method: &Method,
        path: &str,
        q: &Query,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let get_only = |r: Value| -> Result<Response, ApiError> {
            if method == Method::GET {
                Ok(json_response(200, &r, &[]))
            } else {
                Err(ApiError::method_not_allowed())
            }
        };
        match segs.as_slice() {
            ["version"] => get_only(self.version()),
            ["healthz"] | ["livez"] | ["readyz"] => Ok(Response::new(Body::from("ok"))),
            ["api"] => get_only(
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            ),
            ["api", "v1"] => get_only(self.resource_list("", "v1")),
            ["apis"] => get_only(self.group_list()),
            ["apis", group] => {
                let g = self.group_list();
                let found = g["groups"]
                    .as_array()
                    .and_then(|gs| gs.iter().find(|x| x["name"] == *group).cloned());
                match found {
                    Some(mut g) => {
                        g["kind"] = json!("APIGroup");
                        g["apiVersion"] = json!("v1");
                        get_only(g)
                    }
                    None => Err(ApiError::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )),
                }
            }
            ["apis", group, version] => {
                if self.group_versions().iter().any(|(g, v)| g == group && v == version) {
                    get_only(self.resource_list(group, version))
                } else {
                    Err(ApiError::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ))
                }
            }
            ["openapi", "v3"] => get_only(self.openapi_index()),
            ["openapi", "v2"] if method == Method::GET => {
                let docs: Vec<Value> = self
                    .group_versions()
                    .iter()
                    .filter_map(|(g, v)| {
                        self.openapi_gv(&if g.is_empty() {
                            format!("api/{v}")
                        } else {
                            format!("apis/{g}/{v}")
                        })
                    })
                    .collect();
                let doc = crate::openapi_v2::merge(&docs);
                let accept = headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if accept.contains("protobuf") {
                    Ok(Response::builder()
                        .header(
                            header::CONTENT_TYPE,
                            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                        )
                        .body(Body::from(crate::openapi_v2::encode(&doc)))
                        .unwrap_or_default())
                } else {
                    Ok(json_response(200, &doc, &[]))
                }
            }
            ["openapi", "v3", rest @ ..] => {
                let gv = rest.join("/");
                match self.openapi_gv(&gv) {
                    Some(doc) => get_only(doc),
                    None => Err(ApiError::new(404, "NotFound", format!("openapi: {gv} not found"))),
                }
            }
            ["api", "v1", rest @ ..] => self.resource_request(method, "", "v1", rest, q, headers, body),
            ["apis", group, version, rest @ ..] => {
                self.resource_request(method, group, version, rest, q, headers, body)
            }
            _ => Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )),
        }
    }

    fn version(&self) -> Value {
        json!({
            "major": KUBERNETES_VERSION.0, "minor": KUBERNETES_VERSION.1,
            "gitVersion": format!("v{}.{}.0-purchase-guard-sandbox", KUBERNETES_VERSION.0, KUBERNETES_VERSION.1),
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
        })
    }

    fn group_list(&self) -> Value {
        let mut groups: Vec<Value> = Vec::new();
        for (g, v) in self.group_versions() {
            if g.is_empty() {
                continue;
            }
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            match groups.iter_mut().find(|x| x["name"] == g) {
                Some(existing) => {
                    if let Some(vs) = existing["versions"].as_array_mut() {
                        vs.push(gv)
                    }
                }
                None => groups.push(json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})),
            }
        }
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    fn resource_list(&self, group: &str, version: &str) -> Value {
        let mut resources = Vec::new();
        for t in self.types().iter().filter(|t| t.group == group && t.version == version) {
            let mut r = json!({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind, "verbs": t.verbs,
            });
            if !t.short_names.is_empty() {
                r["shortNames"] = json!(t.short_names);
            }
            if !t.categories.is_empty() {
                r["categories"] = json!(t.categories);
            }
            resources.push(r);
            if t.has_status {
                resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
            }
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    }

    fn openapi_index(&self) -> Value {
        let mut paths = serde_json::Map::new();
        for (g, v) in self.group_versions() {
            let key = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let hash = format!("{:016X}", self.store.lock().rv());
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
        json!({"paths": paths})
    }

    fn openapi_gv(&self, gv: &str) -> Option<Value> {
        let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
            ["api", v] => (String::new(), v.to_string()),
            ["apis", g, v] => (g.to_string(), v.to_string()),
            _ => return None,
        };
        let types: Vec<ResourceType> = self
            .types()
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect();
        if types.is_empty() {
            return None;
        }
        let crd_schemas: HashMap<String, Value> = {
            let inner = self.store.lock();
            types
                .iter()
                .filter(|t| t.custom)
                .filter_map(|t| {
                    let crd = inner.get(&Key::new(
                        "apiextensions.k8s.io/customresourcedefinitions",
                        "",
                        &format!("{}.{}", t.plural, t.group),
                    ))?;
                    let versions = crd.pointer("/spec/versions")?.as_array()?;
                    let v = versions.iter().find(|v| v["name"] == version.as_str())?;
                    Some((t.kind.clone(), v.pointer("/schema/openAPIV3Schema")?.clone()))
                })
                .collect()
        };
        Some(crate::openapi::document(&types, &crd_schemas))
    }

    // ---- resources -----------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn resource_request(
        self: &Arc<Self>,
        method: &Method,
        group: &str,
        version: &str,
        rest: &[&str],
        q: &Query,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        let (legacy_watch, rest) = match rest {
            ["watch", r @ ..] => (true, r),
            r => (false, r),
        };
        let not_found = || ApiError::new(404, "NotFound", "the server could not find the requested resource");
        let lookup = |plural: &str| self.find(group, version, plural);
        let target = match rest {
            ["namespaces", ns, plural, tail @ ..] if lookup(plural).is_some_and(|t| t.namespaced) => {
                let rt = lookup(plural).ok_or_else(not_found)?;
                Target {
                    rt,
                    namespace: Some(ns.to_string()),
                    name: tail.first().map(|s| s.to_string()),
                    subresource: tail.get(1).map(|s| s.to_string()),
                }
            }
            [plural, tail @ ..] => {
                let rt = lookup(plural).ok_or_else(not_found)?;
                if rt.namespaced && !tail.is_empty() {
                    return Err(not_found());
                }
                Target {
                    rt,
                    namespace: None,
                    name: tail.first().map(|s| s.to_string()),
                    subresource: tail.get(1).map(|s| s.to_string()),
                }
            }
            [] => return Err(not_found()),
        };
        if let Some(sub) = &target.subresource
            && !(sub == "status" && target.rt.has_status)
        {
            return Err(not_found());
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let watch = legacy_watch || truthy(q, "watch");
        let user = crate::rbac::UserInfo::from_headers(headers);
        let verb = match (method.clone(), &target.name) {
            (Method::GET, None) if watch => "watch",
            (Method::GET, None) => "list",
            (Method::GET, Some(_)) => "get",
            (Method::POST, _) => "create",
            (Method::PUT, _) => "update",
            (Method::PATCH, _) => "patch",
            (Method::DELETE, None) => "deletecollection",
            (Method::DELETE, Some(_)) => "delete",
            _ => "",
        };
        let attributes = crate::rbac::Attributes {
            verb: verb.to_string(),
            group: target.rt.group.clone(),
            resource: target.rt.plural.clone(),
            subresource: target.subresource.clone().unwrap_or_default(),
            namespace: target.namespace.clone().unwrap_or_default(),
            name: target.name.clone().unwrap_or_default(),
        };
        // Every authenticated user may ask what it may do (kube-apiserver's system:basic-user).
        let self_review = target.rt.plural == "selfsubjectaccessreviews";
        if self.rbac
            && !self_review
            && !verb.is_empty()
            && !crate::rbac::allowed(&self.store.lock(), &user, &attributes)
        {
            let mut e = ApiError::forbidden(crate::rbac::denial(&user, &attributes));
            e.details = Some(json!({"name": attributes.name, "group": attributes.group, "kind": attributes.resource}));
            return Err(e);
        }
        let manager = field_manager(q, headers);
        let t = &target;
        match (method.clone(), &t.name) {
            (Method::GET, None) if watch => self.watch(t, q),
            (Method::GET, None) => self.list(t, q, &accept),
            (Method::GET, Some(name)) => {
                let obj = self.get(&t.rt, t.namespace.as_deref(), name)?;
                if accept.contains("as=Table") {
                    Ok(json_response(200, &self.table(&t.rt, &[obj.as_ref().clone()], q), &[]))
                } else {
                    Ok(json_response(200, &obj, &[]))
                }
            }
            (Method::POST, None) => {
                if t.rt.plural == "selfsubjectaccessreviews" {
                    let mut review = parse_body(headers, &body)?;
                    let ra = review.pointer("/spec/resourceAttributes").cloned().unwrap_or(json!({}));
                    let field = |k: &str| ra.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    let asked = crate::rbac::Attributes {
                        verb: field("verb"),
                        group: field("group"),
                        resource: field("resource"),
                        subresource: field("subresource"),
                        namespace: field("namespace"),
                        name: field("name"),
                    };
                    let allowed = !self.rbac || crate::rbac::allowed(&self.store.lock(), &user, &asked);
                    review["status"] = if allowed {
                        let reason = if self.rbac {
                            "allowed by RBAC"
                        } else {
                            "the sandbox runs without RBAC (--rbac switches it on)"
                        };
                        json!({"allowed": true, "reason": reason})
                    } else {
                        json!({"allowed": false, "reason": crate::rbac::denial(&user, &asked)})
                    };
                    return Ok(json_response(201, &review, &[]));
                }
                let obj = parse_body(headers, &body)?;
                let (created, warnings) =
                    self.create_checked(&t.rt, t.namespace.as_deref(), obj, q, &manager, Some(&user))?;
                Ok(json_response(201, &created, &warnings))
            }
            (Method::PUT, Some(name)) => {
                let obj = parse_body(headers, &body)?;
                let (updated, warnings) = self.update(t, name, obj, q, &manager, Some(&user))?;
                Ok(json_response(200, &updated, &warnings))
            }
            (Method::PATCH, Some(name)) => {
                let ct = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let kind = PatchType::from_content_type(ct).ok_or_else(|| {
                    ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})"))
                })?;
                let (patched, code, warnings) = self.patch(t, name, kind, &body, q, &manager, Some(&user))?;
                Ok(json_response(code, &patched, &warnings))
            }
            (Method::DELETE, Some(name)) => {
                let options = if body.is_empty() {
                    json!({})
                } else {
                    parse_body(headers, &body)?
                };
                let deleted = self.delete(&t.rt, t.namespace.as_deref(), name, &options, q, Some(&user))?;
                Ok(json_response(200, &deleted, &[]))
            }
            (Method::DELETE, None) => self.delete_collection(t, q, &user),
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        Key::new(
            &rt.group_resource(),
            if rt.namespaced { namespace.unwrap_or("") } else { "" },
            name,
        )
    }

    fn get(&self, rt: &ResourceType, namespace: Option<&str>, name: &str) -> Result<Arc<Value>, ApiError> {
        self.store
            .lock()
            .get(&Self::key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    fn selectors(&self, rt: &ResourceType, q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
        Ok((
            LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or_default())?,
            FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or_default(), &rt.kind)?,
        ))
    }

    fn list(&self, t: &Target, q: &Query, accept: &str) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(&t.rt, q)?;
        let limit: usize = q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let after = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let inner = self.store.lock();
        let rv = inner.rv();
        let mut items = Vec::new();
        let mut next = None;
        let resource = t.rt.group_resource();
        for (k, v) in inner.list(&resource, t.namespace.as_deref()) {
            if let Some((ns, name)) = &after
                && (k.namespace.as_str(), k.name.as_str()) <= (ns.as_str(), name.as_str())
            {
                continue;
            }
            if !(labels.matches(v) && fields.matches(v)) {
                continue;
            }
            if items.len() == limit {
                next = items.last().map(|last: &Value| {
                    encode_continue(
                        str_field(last, "/metadata/namespace").unwrap_or_default(),
                        str_field(last, "/metadata/name").unwrap_or_default(),
                    )
                });
                break;
            }
            items.push((**v).clone());
        }
        drop(inner);
        if accept.contains("as=Table") {
            let mut table = self.table(&t.rt, &items, q);
            table["metadata"] = json!({"resourceVersion": rv.to_string()});
            if let Some(c) = &next {
                table["metadata"]["continue"] = json!(c);
            }
            return Ok(json_response(200, &table, &[]));
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(c) = next {
            metadata["continue"] = json!(c);
        }
        Ok(json_response(
            200,
            &json!({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version(), "metadata": metadata, "items": items}),
            &[],
        ))
    }

    /// A Table for `kubectl get`: Name, the printer columns, Age.
    fn table(&self, rt: &ResourceType, items: &[Value], q: &Query) -> Value {
        let mut columns = vec![
            json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
        ];
        for c in &rt.columns {
            columns.push(json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}));
        }
        let has_age_column = rt.columns.iter().any(|c| c.name == "Age");
        if !has_age_column {
            columns.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
        }
        let now_s = jiff::Timestamp::now().as_second();
        let age = |v: &Value| -> Value {
            v.as_str()
                .and_then(parse_time)
                .map(|t| json!(human_duration(now_s - t)))
                .unwrap_or(Value::Null)
        };
        let include_object = q.get("includeObject").map(String::as_str).unwrap_or("Metadata");
        let rows: Vec<Value> = items
            .iter()
            .map(|item| {
                let mut cells = vec![json!(str_field(item, "/metadata/name").unwrap_or_default())];
                for c in &rt.columns {
                    let v = c.json_path.as_deref().and_then(|p| json_path(item, p)).cloned().unwrap_or(Value::Null);
                    cells.push(if c.type_ == "date" { age(&v) } else { v });
                }
                if !has_age_column {
                    cells.push(age(item.pointer("/metadata/creationTimestamp").unwrap_or(&Value::Null)));
                }
                let object = match include_object {
                    "None" => Value::Null,
                    "Object" => item.clone(),
                    _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item.get("metadata").cloned().unwrap_or(json!({}))}),
                };
                json!({"cells": cells, "object": object})
            })
            .collect();
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": self.store.lock().rv().to_string()}, "columnDefinitions": columns, "rows": rows})
    }

    // ---- writes --------------------------------------------------------------------------

    /// Validates a custom resource against its CRD, returning the defaulted, pruned object.
    fn validate_custom(
        &self,
        rt: &ResourceType,
        obj: &Value,
        old: Option<&Value>,
        q: &Query,
    ) -> Result<(Value, Vec<String>), ApiError> {
        if !rt.custom {
            return Ok((obj.clone(), vec![]));
        }
        let mode = field_validation(q)?;
        let validator = self.validator.read().unwrap_or_else(|p| p.into_inner());
        match validator.validate(obj, old, mode) {
            Ok(v) => Ok((v.object, v.warnings)),
            Err(Rejected::Invalid(invalid)) => {
                let causes = invalid
                    .causes
                    .iter()
                    .map(|c| {
                        let text = c.to_string();
                        let message = text.strip_prefix(&format!("{}: ", c.path)).unwrap_or(&text).to_string();
                        json!({"reason": c.kind.cause_reason(), "message": message, "field": c.path})
                    })
                    .collect();
                Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    &invalid.name,
                    invalid.to_string(),
                    causes,
                ))
            }
            Err(e @ Rejected::StrictDecoding { .. }) => Err(ApiError::bad_request(e.to_string())),
            Err(e @ Rejected::UnknownKind { .. }) => Err(ApiError::internal(e.to_string())),
        }
    }

    fn check_identity(&self, rt: &ResourceType, namespace: Option<&str>, obj: &Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON or YAML object"));
        }
        let api_version = str_field(obj, "/apiVersion").unwrap_or_default();
        let kind = str_field(obj, "/kind").unwrap_or_default();
        if api_version != rt.api_version() && !api_version.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
        if kind != rt.kind && !kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        if rt.namespaced
            && let (Some(body_ns), Some(url_ns)) = (str_field(obj, "/metadata/namespace"), namespace)
            && body_ns != url_ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    fn check_name(&self, rt: &ResourceType, name: &str) -> Result<(), ApiError> {
        let problems = if rt.plural == "namespaces" {
            validate_dns1123_label(name)
        } else {
            validate_dns1123_subdomain(name)
        };
        if let Some(p) = problems.into_iter().next() {
            let cause = format!("metadata.name: Invalid value: {name:?}: {p}");
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                name,
                format!("{} \"{name}\" is invalid: {cause}", rt.kind),
                vec![
                    json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {name:?}: {p}"), "field": "metadata.name"}),
                ],
            ));
        }
        Ok(())
    }

    fn check_namespace(&self, rt: &ResourceType, namespace: Option<&str>, name: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = namespace.ok_or_else(|| ApiError::bad_request("a namespace is required for this resource"))?;
        let inner = self.store.lock();
        match inner.get(&Key::new("/namespaces", "", ns)) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ApiError::qualified(&rt.group, &rt.plural),
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Creates an object (the POST handler and internal callers).
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        obj: Value,
        q: &Query,
        manager: &str,
    ) -> Result<Value, ApiError> {
        self.create_checked(rt, namespace, obj, q, manager, None)
            .map(|(v, _)| v)
    }

    /// Creates an object; `user` is the requester, whose request passes admission webhooks
    /// (`None`: the sandbox's own writes, which do not).
    fn create_checked(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut obj: Value,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        self.check_identity(rt, namespace, &obj)?;
        let dry = dry_run(q)?;
        let name = match str_field(&obj, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match str_field(&obj, "/metadata/generateName") {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            rt.kind
                        ),
                        vec![
                            json!({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}),
                        ],
                    ));
                }
            },
        };
        self.check_name(rt, &name)?;
        self.check_namespace(rt, namespace, &name)?;
        {
            let o = obj
                .as_object_mut()
                .ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
            if rt.has_status && rt.custom {
                o.remove("status");
            }
        }
        let mut admission_warnings = Vec::new();
        let request = user.map(|user| AdmissionRequest {
            rt,
            subresource: None,
            operation: "CREATE",
            name: &name,
            namespace,
            old: None,
            dry_run: dry,
            options: json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager}),
            user,
        });
        if let Some(request) = &request {
            obj = self.mutate(request, obj, &mut admission_warnings)?;
        }
        if let Some(m) = meta_mut(&mut obj) {
            m.insert("name".into(), json!(name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(namespace.unwrap_or_default()));
            } else {
                m.remove("namespace");
            }
            for server_set in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            ] {
                m.remove(server_set);
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            m.insert("generation".into(), json!(1));
        }
        if rt.plural == "namespaces" {
            // kube-apiserver labels every namespace with its name, for namespace selectors.
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        let (mut obj, mut warnings) = self.validate_custom(rt, &obj, None, q)?;
        if let Some(request) = &request {
            self.validate_admission(request, &obj, &mut warnings)?;
        }
        warnings.splice(0..0, admission_warnings);
        meta::record_update(None, &mut obj, manager, &rt.api_version(), None);
        let key = Self::key(rt, namespace, &name);
        let mut inner = self.store.lock();
        if inner.get(&key).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        if dry {
            return Ok((obj, warnings));
        }
        let rv = inner.next_rv();
        if let Some(m) = meta_mut(&mut obj) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let stored = inner.put(&self.store, key, obj);
        drop(inner);
        if rt.plural == "customresourcedefinitions" && rt.group == "apiextensions.k8s.io" {
            self.establish_crd(&name);
        }
        Ok(((*stored).clone(), warnings))
    }

    /// Computes the object an update stores, from the old one and the request's object.
    fn merge_update(&self, rt: &ResourceType, sub: Option<&str>, old: &Value, new: &Value) -> Value {
        let mut out = if sub == Some("status") {
            let mut o = old.clone();
            match new.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            o
        } else {
            let mut o = new.clone();
            if rt.has_status {
                match old.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            // Labels, annotations, finalizers and owner references come from the request;
            // the rest of metadata is the server's.
            let new_meta = new.get("metadata").cloned().unwrap_or(json!({}));
            let mut m = old.get("metadata").cloned().unwrap_or(json!({}));
            for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
                match new_meta.get(key) {
                    Some(v) if !v.is_null() => m[key] = v.clone(),
                    _ => {
                        if let Some(mm) = m.as_object_mut() {
                            mm.remove(key);
                        }
                    }
                }
            }
            o["metadata"] = m;
            o
        };
        if let Some(o) = out.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
        if sub.is_none() && content(&out) != content(old) {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            if let Some(m) = meta_mut(&mut out) {
                m.insert("generation".into(), json!(generation + 1));
            }
        }
        out
    }

    /// Runs mutating webhooks on a new object (CREATE or UPDATE).
    fn mutate(&self, request: &AdmissionRequest, object: Value, warnings: &mut Vec<String>) -> Result<Value, ApiError> {
        let mut slot = Some(object);
        self.admission
            .admit(&self.store, Phase::Mutating, request, &mut slot, warnings)?;
        slot.ok_or_else(|| ApiError::internal("a mutating webhook removed the object"))
    }

    /// Runs validating webhooks on the object about to be stored.
    fn validate_admission(
        &self,
        request: &AdmissionRequest,
        object: &Value,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let mut slot = Some(object.clone());
        self.admission
            .admit(&self.store, Phase::Validating, request, &mut slot, warnings)
    }

    /// An update's admission, in kube-apiserver's order: mutating webhooks on the requested
    /// object, the server's update rules (status, metadata, generation), schema validation,
    /// then validating webhooks. Returns the object to store and the warnings.
    #[allow(clippy::too_many_arguments)]
    fn admit_update(
        &self,
        t: &Target,
        name: &str,
        old: &Value,
        candidate: Value,
        q: &Query,
        options: Value,
        user: Option<&UserInfo>,
        keep_managed: bool,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let rt = &t.rt;
        let mut admission_warnings = Vec::new();
        let dry = dry_run(q)?;
        let request = user.map(|user| AdmissionRequest {
            rt,
            subresource: t.subresource.as_deref(),
            operation: "UPDATE",
            name,
            namespace: t.namespace.as_deref(),
            old: Some(old),
            dry_run: dry,
            options,
            user,
        });
        let candidate = match &request {
            Some(r) => self.mutate(r, candidate, &mut admission_warnings)?,
            None => candidate,
        };
        let mut merged = self.merge_update(rt, t.subresource.as_deref(), old, &candidate);
        if keep_managed
            && let Some(mf) = candidate.pointer("/metadata/managedFields").cloned()
            && let Some(meta) = meta_mut(&mut merged)
        {
            meta.insert("managedFields".into(), mf);
        }
        let (merged, mut warnings) = self.validate_custom(rt, &merged, Some(old), q)?;
        if let Some(r) = &request {
            self.validate_admission(r, &merged, &mut warnings)?;
        }
        warnings.splice(0..0, admission_warnings);
        Ok((merged, warnings))
    }

    /// The end of an update or patch: managed fields for an updater, the commit, and what
    /// follows a write. Errors as `commit_update`.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &self,
        rt: &ResourceType,
        key: &Key,
        old: &Value,
        mut new: Value,
        updater: Option<&str>,
        subresource: Option<&str>,
        dry: bool,
    ) -> Result<Value, Option<ApiError>> {
        if let Some(manager) = updater {
            meta::record_update(Some(old), &mut new, manager, &rt.api_version(), subresource);
        }
        let stored = self.commit_update(rt, key, old, new, dry)?;
        self.after_write(rt, key);
        Ok(stored)
    }

    /// Stores an updated object if `old` is still current. Returns Err(None) when the
    /// object changed in between (retry), Err(Some(e)) on other errors.
    fn commit_update(
        &self,
        rt: &ResourceType,
        key: &Key,
        old: &Value,
        mut new: Value,
        dry: bool,
    ) -> Result<Value, Option<ApiError>> {
        let mut inner = self.store.lock();
        match inner.get(key) {
            Some(current) if rv_of(current) == rv_of(old) => {}
            Some(_) => return Err(None),
            None => return Err(Some(ApiError::not_found(&rt.group, &rt.plural, &key.name))),
        }
        if dry {
            return Ok(new);
        }
        // An object being deleted goes once its last finalizer is gone.
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let finalizers_left = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if new == *old {
            return Ok(new);
        }
        let rv = inner.next_rv();
        if let Some(m) = meta_mut(&mut new) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let stored = inner.put(&self.store, key.clone(), new);
        if deleting && !finalizers_left {
            let gone = inner.remove(&self.store, key);
            drop(inner);
            self.after_delete(rt, key);
            return Ok(gone.map(|g| (*g).clone()).unwrap_or_default());
        }
        Ok((*stored).clone())
    }

    fn update(
        &self,
        t: &Target,
        name: &str,
        obj: Value,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let rt = &t.rt;
        self.check_identity(rt, t.namespace.as_deref(), &obj)?;
        if str_field(&obj, "/metadata/name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                str_field(&obj, "/metadata/name").unwrap_or_default()
            )));
        }
        let dry = dry_run(q)?;
        let key = Self::key(rt, t.namespace.as_deref(), name);
        let old = self.get(rt, t.namespace.as_deref(), name)?;
        let requested_rv = str_field(&obj, "/metadata/resourceVersion")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if requested_rv.as_deref().is_some_and(|r| r != rv_of(&old).to_string()) {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        let options = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
        let (merged, warnings) = self.admit_update(t, name, &old, obj, q, options, user, false)?;
        match self.finish_update(rt, &key, &old, merged, Some(manager), t.subresource.as_deref(), dry) {
            Ok(v) => Ok((v, warnings)),
            Err(Some(e)) => Err(e),
            Err(None) => Err(ApiError::conflict(&rt.group, &rt.plural, name)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn patch(
        &self,
        t: &Target,
        name: &str,
        kind: PatchType,
        body: &Bytes,
        q: &Query,
        manager: &str,
        user: Option<&UserInfo>,
    ) -> Result<(Value, u16, Vec<String>), ApiError> {
        let rt = &t.rt;
        let patch_doc: Value = if kind == PatchType::Apply {
            let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
            serde_yaml_ng::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        let dry = dry_run(q)?;
        let key = Self::key(rt, t.namespace.as_deref(), name);
        for _attempt in 0..16 {
            let current = self.store.lock().get(&key).cloned();
            let old = match current {
                Some(o) => o,
                None if kind == PatchType::Apply && t.subresource.is_none() => {
                    // Server-side apply creates.
                    self.check_identity(rt, t.namespace.as_deref(), &patch_doc)?;
                    let mut obj = patch_doc.clone();
                    if let Some(m) = meta_mut(&mut obj) {
                        m.insert("name".into(), json!(name));
                    }
                    let created = self.create_checked(rt, t.namespace.as_deref(), obj, q, manager, user)?;
                    let mut with_apply = created.0.clone();
                    meta::set_managed(&mut with_apply, vec![]);
                    let applied = meta::server_side_apply(None, &with_apply, manager, &rt.api_version(), None, true)
                        .map_err(|_| ApiError::internal("apply on create cannot conflict"))?;
                    let stored = self
                        .commit_update(rt, &key, &created.0, applied.object, dry)
                        .unwrap_or(created.0);
                    return Ok((stored, 201, created.1));
                }
                None => return Err(ApiError::not_found(&rt.group, &rt.plural, name)),
            };
            let candidate = match kind {
                PatchType::Json | PatchType::Merge => patch::apply_json_or_merge(kind, &old, &patch_doc)?,
                PatchType::Strategic => {
                    if rt.custom {
                        return Err(ApiError::new(
                            415,
                            "UnsupportedMediaType",
                            "strategic merge patch is not supported for custom resources: use a JSON merge patch (--type=merge) or a JSON patch",
                        ));
                    }
                    patch::apply_strategic(&old, &patch_doc)?
                }
                PatchType::Apply => {
                    self.check_identity(rt, t.namespace.as_deref(), &patch_doc)?;
                    let force = truthy(q, "force");
                    if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                        return Err(ApiError::bad_request(
                            "PATCH with apply requires a fieldManager parameter",
                        ));
                    }
                    match meta::server_side_apply(
                        Some(&old),
                        &patch_doc,
                        manager,
                        &rt.api_version(),
                        t.subresource.as_deref(),
                        force,
                    ) {
                        Ok(a) => a.object,
                        Err(conflicts) => {
                            let list: Vec<String> = conflicts
                                .iter()
                                .map(|(m, p)| format!("conflict with \"{m}\": {p}"))
                                .collect();
                            let message = if list.len() == 1 {
                                format!("Apply failed with 1 conflict: {}", list[0])
                            } else {
                                format!("Apply failed with {} conflicts: {}", list.len(), list.join("\n"))
                            };
                            let causes: Vec<Value> = conflicts.iter().map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": p})).collect();
                            return Err(ApiError {
                                code: 409,
                                reason: "Conflict",
                                message,
                                details: Some(json!({"causes": causes})),
                            });
                        }
                    }
                }
            };
            if str_field(&candidate, "/metadata/resourceVersion").is_some_and(|r| r != rv_of(&old).to_string()) {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
            let options = json!({"kind": "PatchOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager});
            // Apply already recorded its own managed fields.
            let keep_managed = kind == PatchType::Apply;
            let (merged, warnings) = self.admit_update(t, name, &old, candidate, q, options, user, keep_managed)?;
            // Apply recorded its own managed fields; the other patches are updates.
            let updater = (kind != PatchType::Apply).then_some(manager);
            match self.finish_update(rt, &key, &old, merged, updater, t.subresource.as_deref(), dry) {
                Ok(v) => return Ok((v, 200, warnings)),
                Err(Some(e)) => return Err(e),
                Err(None) => continue,
            }
        }
        Err(ApiError::conflict(&rt.group, &rt.plural, name))
    }

    fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &Value,
        q: &Query,
        user: Option<&UserInfo>,
    ) -> Result<Value, ApiError> {
        let dry = dry_run(q)?
            || options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "All"));
        let key = Self::key(rt, namespace, name);
        let propagation = options
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or(q.get("propagationPolicy").map(String::as_str))
            .unwrap_or("Background")
            .to_string();
        let mut reviewed = None;
        let (mut inner, old) = loop {
            let inner = self.store.lock();
            let old = inner
                .get(&key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
            let Some(user) = user else { break (inner, old) };
            // Webhooks run without the store lock; the object must not change meanwhile.
            if reviewed.as_ref().is_some_and(|r: &Arc<Value>| rv_of(r) == rv_of(&old)) {
                break (inner, old);
            }
            drop(inner);
            let mut delete_options = options.clone();
            if let Some(o) = delete_options.as_object_mut() {
                o.insert("kind".into(), json!("DeleteOptions"));
                o.insert("apiVersion".into(), json!("meta.k8s.io/v1"));
            }
            let request = AdmissionRequest {
                rt,
                subresource: None,
                operation: "DELETE",
                name,
                namespace,
                old: Some(&old),
                dry_run: dry,
                options: delete_options,
                user,
            };
            let mut ignored = Vec::new();
            let mut none = None;
            self.admission
                .admit(&self.store, Phase::Mutating, &request, &mut none, &mut ignored)?;
            self.admission
                .admit(&self.store, Phase::Validating, &request, &mut none, &mut ignored)?;
            reviewed = Some(old);
        };
        if let Some(expected) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && expected != rv_of(&old).to_string()
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        if let Some(expected) = options.pointer("/preconditions/uid").and_then(Value::as_str)
            && Some(expected) != str_field(&old, "/metadata/uid")
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        if dry {
            return Ok((*old).clone());
        }
        let mut finalizers: Vec<Value> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_namespace = rt.plural == "namespaces" && rt.group.is_empty();
        if propagation == "Foreground" && !finalizers.contains(&json!("foregroundDeletion")) {
            finalizers.push(json!("foregroundDeletion"));
        }
        if finalizers.is_empty() && !is_namespace {
            let gone = inner
                .remove(&self.store, &key)
                .map(|g| (*g).clone())
                .unwrap_or_default();
            drop(inner);
            self.after_delete(rt, &key);
            return Ok(gone);
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((*old).clone());
        }
        let mut marked = (*old).clone();
        let rv = inner.next_rv();
        if let Some(m) = meta_mut(&mut marked) {
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("finalizers".into(), Value::Array(finalizers));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        if is_namespace {
            marked["status"] = json!({"phase": "Terminating"});
        }
        let stored = inner.put(&self.store, key.clone(), marked);
        drop(inner);
        self.collect_garbage();
        Ok(self
            .store
            .lock()
            .get(&key)
            .map(|v| (**v).clone())
            .unwrap_or_else(|| (*stored).clone()))
    }

    fn delete_collection(&self, t: &Target, q: &Query, user: &UserInfo) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(&t.rt, q)?;
        let names: Vec<(String, String)> = {
            let inner = self.store.lock();
            inner
                .list(&t.rt.group_resource(), t.namespace.as_deref())
                .filter(|(_, v)| labels.matches(v) && fields.matches(v))
                .map(|(k, _)| (k.namespace.clone(), k.name.clone()))
                .collect()
        };
        let mut items = Vec::new();
        for (ns, name) in names {
            let ns = if t.rt.namespaced { Some(ns.as_str()) } else { None };
            if let Ok(v) = self.delete(&t.rt, ns, &name, &json!({}), q, Some(user)) {
                items.push(v);
            }
        }
        Ok(json_response(
            200,
            &json!({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version(), "metadata": {}, "items": items}),
            &[],
        ))
    }

    // ---- follow-ups: CRDs, garbage collection, namespaces -------------------------------

    fn after_write(&self, rt: &ResourceType, key: &Key) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.establish_crd(&key.name);
        }
        // Only deletions start garbage collection: an update of a live object cannot orphan
        // anything. (A removed object went through `after_delete`.)
        let deleting = self
            .store
            .lock()
            .get(key)
            .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
        if deleting {
            self.collect_garbage();
        }
    }

    fn after_delete(&self, rt: &ResourceType, key: &Key) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.unserve_crd(&key.name);
        }
        self.collect_garbage();
    }

    fn serve_crd(&self, crd: &Value) {
        let versions: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        let group = str_field(crd, "/spec/group").unwrap_or_default().to_string();
        let plural = str_field(crd, "/spec/names/plural").unwrap_or_default().to_string();
        types.retain(|t| !(t.custom && t.group == group && t.plural == plural));
        for v in versions
            .iter()
            .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        {
            if let Some(rt) = ResourceType::from_crd(crd, v) {
                types.push(rt);
            }
        }
        drop(types);
        let mut validator = self.validator.write().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = validator.add_crd(crd) {
            tracing::warn!(crd = %str_field(crd, "/metadata/name").unwrap_or_default(), error = %e, "CRD schema not usable for validation");
        }
    }

    fn unserve_crd(&self, name: &str) {
        let Some((plural, group)) = name.split_once('.') else {
            return;
        };
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        types.retain(|t| !(t.custom && t.group == group && t.plural == plural));
        drop(types);
        // Delete every object of the resource.
        let resource = format!("{group}/{plural}");
        let mut inner = self.store.lock();
        let keys: Vec<Key> = inner.list(&resource, None).map(|(k, _)| k.clone()).collect();
        for k in keys {
            inner.remove(&self.store, &k);
        }
    }

    /// Serves a CRD and sets its `NamesAccepted` and `Established` conditions.
    fn establish_crd(&self, name: &str) {
        let key = Key::new("apiextensions.k8s.io/customresourcedefinitions", "", name);
        let Some(crd) = self.store.lock().get(&key).cloned() else {
            return;
        };
        if crd.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        self.serve_crd(&crd);
        let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let generation = crd.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
        let previous = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let condition = |type_: &str, reason: &str, message: &str| {
            let since = previous
                .iter()
                .find(|c| c["type"] == type_ && c["status"] == "True")
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or(json!(now()));
            json!({"type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": since, "observedGeneration": generation})
        };
        let status = json!({
            "acceptedNames": names,
            "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ]
        });
        if crd.get("status") == Some(&status) {
            return;
        }
        let mut updated = (*crd).clone();
        updated["status"] = status;
        if let Some(rt) = self.find("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
            // A concurrent change of the CRD re-runs this on its own write.
            let _ = self.commit_update(&rt, &key, &crd, updated, false);
        }
    }

    /// Garbage collection until nothing changes: objects whose owners are all gone are
    /// deleted; owners in foreground deletion go once their dependents are gone; terminating
    /// namespaces are emptied and then removed.
    fn collect_garbage(&self) {
        for _round in 0..64 {
            let mut changed = false;
            let mut inner = self.store.lock();
            let uids: std::collections::HashSet<String> = inner
                .keys()
                .filter_map(|k| {
                    inner
                        .get(k)
                        .and_then(|v| str_field(v, "/metadata/uid").map(str::to_string))
                })
                .collect();
            let keys: Vec<Key> = inner.keys().cloned().collect();
            let mut to_delete: Vec<Key> = Vec::new();
            let mut dependents_of: HashMap<String, usize> = HashMap::new();
            let mut terminating_ns: Vec<String> = Vec::new();
            for k in &keys {
                let Some(v) = inner.get(k) else { continue };
                if k.resource == "/namespaces" && v.pointer("/metadata/deletionTimestamp").is_some() {
                    terminating_ns.push(k.name.clone());
                }
                if let Some(owners) = v.pointer("/metadata/ownerReferences").and_then(Value::as_array)
                    && !owners.is_empty()
                {
                    let live: Vec<&str> = owners
                        .iter()
                        .filter_map(|o| o["uid"].as_str())
                        .filter(|u| uids.contains(*u))
                        .collect();
                    if live.is_empty() {
                        to_delete.push(k.clone());
                    }
                    for u in live {
                        *dependents_of.entry(u.to_string()).or_default() += 1;
                    }
                }
            }
            // Owners in foreground deletion: delete their dependents; finish when none left.
            for k in &keys {
                let Some(v) = inner.get(k).cloned() else { continue };
                let foreground = v
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.contains(&json!("foregroundDeletion")));
                if !foreground || v.pointer("/metadata/deletionTimestamp").is_none() {
                    continue;
                }
                let uid = str_field(&v, "/metadata/uid").unwrap_or_default().to_string();
                if dependents_of.get(&uid).copied().unwrap_or(0) == 0 {
                    let mut done = (*v).clone();
                    if let Some(f) = done.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                        f.retain(|x| x != "foregroundDeletion");
                    }
                    let rv = inner.next_rv();
                    if let Some(m) = meta_mut(&mut done) {
                        m.insert("resourceVersion".into(), json!(rv.to_string()));
                    }
                    let empty = done
                        .pointer("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .is_none_or(|f| f.is_empty());
                    inner.put(&self.store, k.clone(), done);
                    if empty {
                        inner.remove(&self.store, k);
                    }
                    changed = true;
                } else {
                    for dk in &keys {
                        let Some(d) = inner.get(dk) else { continue };
                        let owned = d
                            .pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|o| o.iter().any(|o| o["uid"] == uid.as_str()));
                        if owned && d.pointer("/metadata/deletionTimestamp").is_none() {
                            to_delete.push(dk.clone());
                        }
                    }
                }
            }
            for ns in &terminating_ns {
                let contents: Vec<Key> = keys
                    .iter()
                    .filter(|k| {
                        k.namespace == *ns
                            && inner
                                .get(k)
                                .is_some_and(|v| v.pointer("/metadata/deletionTimestamp").is_none())
                    })
                    .cloned()
                    .collect();
                let remaining = keys
                    .iter()
                    .filter(|k| k.namespace == *ns && inner.get(k).is_some())
                    .count();
                if remaining == 0 {
                    inner.remove(&self.store, &Key::new("/namespaces", "", ns));
                    changed = true;
                }
                to_delete.extend(contents);
            }
            to_delete.sort();
            to_delete.dedup();
            for k in to_delete {
                let Some(v) = inner.get(&k).cloned() else { continue };
                let has_finalizers = v
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                if has_finalizers {
                    if v.pointer("/metadata/deletionTimestamp").is_none() {
                        let mut marked = (*v).clone();
                        let rv = inner.next_rv();
                        if let Some(m) = meta_mut(&mut marked) {
                            m.insert("deletionTimestamp".into(), json!(now()));
                            m.insert("resourceVersion".into(), json!(rv.to_string()));
                        }
                        inner.put(&self.store, k, marked);
                        changed = true;
                    }
                } else {
                    inner.remove(&self.store, &k);
                    changed = true;
                }
            }
            drop(inner);
            if !changed {
                return;
            }
        }
    }

    // ---- watch ---------------------------------------------------------------------------

    fn watch(self: &Arc<Self>, t: &Target, q: &Query) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(&t.rt, q)?;
        let resource = t.rt.group_resource();
        let namespace = t.namespace.clone();
        let filter_key = {
            let resource = resource.clone();
            let namespace = namespace.clone();
            move |k: &Key| k.resource == resource && namespace.as_ref().is_none_or(|ns| &k.namespace == ns)
        };
        let send_initial = truthy(q, "sendInitialEvents");
        let from = match q.get("resourceVersion").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
            ),
        };
        let bookmarks = truthy(q, "allowWatchBookmarks");
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs);
        let rt = t.rt.clone();
        let start = if send_initial { None } else { from };
        let store = self.store.clone();
        let interval = self.bookmark_interval;
        let mut epoch = self.store.watch_epoch();
        let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
        tokio::spawn(async move {
            let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
            store.watches_allowed().await;
            let (past, initial, mut rx, start_rv) = match store.watch_from(start, &filter_key) {
                Ok(s) => s,
                Err(WatchStartError::Expired { requested, oldest }) => {
                    // Like kube-apiserver: the stream carries one ERROR event with 410 Expired.
                    let status =
                        ApiError::gone(format!("too old resource version: {requested} ({oldest})")).to_status();
                    let _ = tx.send(line(json!({"type": "ERROR", "object": status}))).await;
                    return;
                }
            };
            let matches = |o: &Value| labels.matches(o) && fields.matches(o);
            let mut last_rv = start_rv;
            for (_, obj) in initial {
                if matches(&obj) && tx.send(line(json!({"type": "ADDED", "object": *obj}))).await.is_err() {
                    return;
                }
            }
            if send_initial {
                let bm = json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}});
                if tx.send(line(bm)).await.is_err() {
                    return;
                }
            }
            for e in past {
                last_rv = e.rv;
                if matches(&e.object)
                    && tx
                        .send(line(json!({"type": e.kind.as_str(), "object": *e.object})))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    _ = tokio::time::sleep_until(sleep_until) => return,
                    _ = ticker.tick(), if bookmarks => {
                        let bm = json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}}});
                        if tx.send(line(bm)).await.is_err() { return; }
                    }
                    _ = tx.closed() => return,
                    _ = epoch.changed() => return,
                    received = rx.recv() => match received {
                        Ok(e) => {
                            if e.rv <= last_rv { continue; }
                            last_rv = e.rv;
                            if !filter_key(&e.key) || !matches(&e.object) { continue; }
                            if tx.send(Ok(Bytes::from(e.line.to_string()))).await.is_err() { return; }
                        }
                        // A watcher that falls behind is closed; the client resumes from its
                        // last resourceVersion.
                        Err(_) => return,
                    }
                }
            }
        });
        let stream = tokio_stream_from(body_rx);
        Ok(Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::TRANSFER_ENCODING, "chunked")
            .body(Body::from_stream(stream))
            .unwrap_or_default())
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn encode_continue(namespace: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{namespace}/{name}"))
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ApiError::bad_request("continue key is not valid: illegal base64 data"))?;
    let s = String::from_utf8(bytes).map_err(|_| ApiError::bad_request("continue key is not valid"))?;
    let (ns, name) = s
        .split_once('/')
        .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
    Ok((ns.to_string(), name.to_string()))
}

/// The axum handler.
pub async fn handler(State(server): State<Arc<ApiServer>>, req: Request) -> Response {
    server.handle(req).await
}
