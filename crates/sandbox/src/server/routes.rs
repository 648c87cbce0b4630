//! Routing: from a method and a path to discovery, OpenAPI or a resource request.

use super::*;

impl ApiServer {
    pub async fn handle(self: Arc<Self>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return error_response(&ApiError::too_large(MAX_BODY)),
        };
        if let Some(stored) = super::versions::stored_path(parts.uri.path()) {
            return self
                .converted(parts.method, &parts.uri, stored, parts.headers, body)
                .await;
        }
        if matches!(parts.method, Method::PUT | Method::PATCH)
            && let Some(event) = self.event_of_the_other_api(parts.uri.path())
        {
            return self
                .write_event_through_twin(event, &parts.method, &parts.uri, &parts.headers, &body)
                .await;
        }
        self.respond(parts.method, &parts.uri, parts.headers, body).await
    }

    /// Answers a request whose body has been read.
    pub(super) async fn respond(
        self: Arc<Self>,
        method: Method,
        uri: &Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let query = parse_query(uri.query());
        let path = uri.path().to_string();
        // Writes that may call webhooks run where blocking on the call is allowed.
        let result = if method != Method::GET && crate::admission::configured(&self.store) {
            let server = self.clone();
            let joined = tokio::task::spawn_blocking(move || {
                crate::admission::blocking_section(|| server.route(&method, &path, &query, &headers, body))
            })
            .await;
            joined.unwrap_or_else(|e| Err(ApiError::internal(format!("the request handler failed: {e}"))))
        } else {
            self.route(&method, &path, &query, &headers, body)
        };
        match result {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    pub(super) fn route(
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
            ["api"] | ["apis"] if method == Method::GET && aggregated(headers).is_some() => {
                let version = aggregated(headers).unwrap_or("v2");
                let body = self.aggregated_discovery(segs == ["api"], version);
                let mut response = json_response(200, &body, &[]);
                let content_type =
                    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
                if let Ok(v) = header::HeaderValue::from_str(&content_type) {
                    response.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                Ok(response)
            }
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

    #[allow(clippy::too_many_arguments)]
    pub(super) fn resource_request(
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
            && !(sub == "scale" && target.rt.scale.is_some())
            && !(sub == "token" && target.rt.group.is_empty() && target.rt.plural == "serviceaccounts")
            && !(sub == "approval" && target.rt.plural == "certificatesigningrequests")
            && !(sub == "finalize" && target.rt.is_namespace())
            && !(matches!(sub.as_str(), "binding" | "eviction" | "ephemeralcontainers" | "resize")
                && target.rt.group.is_empty()
                && target.rt.plural == "pods")
            && !needs_a_kubelet(&target.rt, sub)
        {
            return Err(not_found());
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let watch = legacy_watch || truthy(q, "watch");
        let user = self.user_of(headers)?;
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
        let self_review = matches!(
            target.rt.plural.as_str(),
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews" | "selfsubjectreviews"
        );
        if self.rbac
            && !self_review
            && !verb.is_empty()
            && !crate::rbac::allowed(&self.store.lock(), &user, &attributes)
        {
            let mut e = ApiError::forbidden(crate::rbac::denial(&user, &attributes));
            e.details = Some(json!({"name": attributes.name, "group": attributes.group, "kind": attributes.resource}));
            return Err(e);
        }
        if let (Some(sub), Some(name)) = (&target.subresource, &target.name)
            && needs_a_kubelet(&target.rt, sub)
        {
            // Served, as on a cluster, but there is no kubelet (or Service backend) to reach.
            let object = self.get(&target.rt, target.namespace.as_deref(), name)?;
            let kind = target.rt.kind.to_lowercase();
            return Err(ApiError::bad_request(format!(
                "{kind} \"{name}\": {sub} needs a running container, and the sandbox runs none ({})",
                if target.rt.plural == "pods" {
                    let containers = object
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .map(|c| {
                            c.iter()
                                .filter_map(|c| c["name"].as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    format!("its containers {containers} are simulated")
                } else {
                    "its Pods are simulated".to_string()
                }
            )));
        }
        let manager = field_manager(q, headers);
        let t = &target;
        let is_scale = t.subresource.as_deref() == Some("scale");
        if let (Some(sub @ ("binding" | "eviction")), Some(name)) = (t.subresource.as_deref(), &t.name) {
            if method != Method::POST {
                return Err(ApiError::method_not_allowed());
            }
            let object = parse_body(headers, &body)?;
            let (status, warnings) = if sub == "binding" {
                self.bind(t, name, object, q, &manager, &user)?
            } else {
                self.evict(t, name, object, q, &user)?
            };
            return Ok(json_response(201, &status, &warnings));
        }
        if t.subresource.as_deref() == Some("finalize") && method != Method::PUT {
            // kube-apiserver serves only updates of a namespace's finalizers.
            return Err(ApiError::method_not_allowed());
        }
        if matches!(t.subresource.as_deref(), Some("ephemeralcontainers" | "resize"))
            && ![Method::GET, Method::PUT, Method::PATCH].contains(method)
        {
            return Err(ApiError::method_not_allowed());
        }
        if method == Method::POST
            && let Some(answer) = self.authentication(t, headers, &body, &user)?
        {
            return Ok(answer);
        }
        match (method.clone(), &t.name) {
            (Method::GET, Some(name)) if is_scale => Ok(json_response(200, &self.scale_get(t, name)?, &[])),
            (Method::PUT, Some(name)) if is_scale => {
                let change = scale::ScaleChange::Replace(parse_body(headers, &body)?);
                let (scale, warnings) = self.scale_write(t, name, change, q, &manager, Some(&user))?;
                Ok(json_response(200, &scale, &warnings))
            }
            (Method::PATCH, Some(name)) if is_scale => {
                let change = scale::ScaleChange::Patch(patch_type(headers)?, &body);
                let (scale, warnings) = self.scale_write(t, name, change, q, &manager, Some(&user))?;
                Ok(json_response(200, &scale, &warnings))
            }
            (_, _) if is_scale => Err(ApiError::method_not_allowed()),
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
                if t.rt.group == "authorization.k8s.io" && t.rt.plural.ends_with("subjectaccessreviews") {
                    let review = self.access_review(t, parse_body(headers, &body)?, &user)?;
                    return Ok(json_response(201, &review, &[]));
                }
                if t.rt.plural == "selfsubjectrulesreviews" {
                    let mut review = parse_body(headers, &body)?;
                    let namespace = str_field(&review, "/spec/namespace").unwrap_or_default().to_string();
                    let (resource_rules, non_resource_rules) = if self.rbac {
                        crate::rbac::rules_of(&self.store.lock(), &user, &namespace)
                    } else {
                        crate::rbac::everything()
                    };
                    review["status"] = json!({
                        "resourceRules": resource_rules,
                        "nonResourceRules": non_resource_rules,
                        "incomplete": false,
                    });
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
                // An object of a built-in kind that went at once is answered with a Status, as
                // kube-apiserver answers (custom resources, and Pods, which go gracefully on a
                // cluster, with the object).
                let gone = deleted.pointer("/metadata/deletionTimestamp").is_none();
                if gone && !t.rt.custom && t.rt.plural != "pods" {
                    let mut details = json!({"name": name, "kind": t.rt.plural});
                    if !t.rt.group.is_empty() {
                        details["group"] = json!(t.rt.group);
                    }
                    if let Some(uid) = str_field(&deleted, "/metadata/uid") {
                        details["uid"] = json!(uid);
                    }
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
                    return Ok(json_response(200, &status, &[]));
                }
                Ok(json_response(200, &deleted, &[]))
            }
            (Method::DELETE, None) => self.delete_collection(t, q, &user),
            _ => Err(ApiError::method_not_allowed()),
        }
    }
}

/// The subresources that reach a kubelet or a Service's Pods through kube-apiserver.
fn needs_a_kubelet(rt: &ResourceType, sub: &str) -> bool {
    rt.group.is_empty()
        && match rt.plural.as_str() {
            "pods" => matches!(sub, "log" | "exec" | "attach" | "portforward" | "proxy"),
            "services" | "nodes" => sub == "proxy",
            _ => false,
        }
}

/// The aggregated discovery version the client asks for first (`v2` or `v2beta1`), if any:
/// content negotiation over the Accept header's entries, in order, as kube-apiserver does.
fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())?;
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if params.first().is_some_and(|m| *m == "application/json" || *m == "*/*")
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
            continue;
        }
        // A plain media type listed first wins over a later aggregated one.
        if params.first().is_some_and(|m| *m == "application/json" || *m == "*/*") && params.len() == 1 {
            return None;
        }
    }
    None
}
