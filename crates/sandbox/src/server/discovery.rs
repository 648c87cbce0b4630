//! Discovery: the version, API groups and resource lists, and the OpenAPI documents.

use super::*;

impl ApiServer {
    pub(super) fn version(&self) -> Value {
        json!({
            "major": KUBERNETES_VERSION.0, "minor": KUBERNETES_VERSION.1,
            "gitVersion": format!("v{}.{}.0-purchase-guard-sandbox", KUBERNETES_VERSION.0, KUBERNETES_VERSION.1),
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
        })
    }

    pub(super) fn group_list(&self) -> Value {
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

    /// Aggregated discovery (apidiscovery.k8s.io `version`, v2 or v2beta1): every group of
    /// `/api` (`core`) or `/apis` with its versions and resources, in one document.
    pub(super) fn aggregated_discovery(&self, core: bool, version: &str) -> Value {
        let mut items: Vec<Value> = Vec::new();
        for (g, v) in self.group_versions() {
            if g.is_empty() != core {
                continue;
            }
            let mut resources = Vec::new();
            for t in self.types().iter().filter(|t| t.group == g && t.version == v) {
                let kind =
                    |group: &str, version: &str, kind: &str| json!({"group": group, "version": version, "kind": kind});
                let mut subresources = Vec::new();
                if t.has_status {
                    subresources.push(json!({"subresource": "status", "responseKind": kind(&t.group, &t.version, &t.kind), "verbs": ["get", "patch", "update"]}));
                }
                if t.scale.is_some() {
                    subresources.push(json!({"subresource": "scale", "responseKind": kind("autoscaling", "v1", "Scale"), "verbs": ["get", "patch", "update"]}));
                }
                for (sub, (group, version, k), verbs) in other_subresources(t) {
                    subresources
                        .push(json!({"subresource": sub, "responseKind": kind(group, version, k), "verbs": verbs}));
                }
                let mut r = json!({
                    "resource": t.plural, "responseKind": kind(&t.group, &t.version, &t.kind),
                    "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": t.singular, "verbs": t.verbs,
                });
                if !t.short_names.is_empty() {
                    r["shortNames"] = json!(t.short_names);
                }
                if !t.categories.is_empty() {
                    r["categories"] = json!(t.categories);
                }
                if !subresources.is_empty() {
                    r["subresources"] = json!(subresources);
                }
                resources.push(r);
            }
            let entry = json!({"version": v, "resources": resources, "freshness": "Current"});
            match items.iter_mut().find(|i| i["metadata"]["name"] == g.as_str()) {
                Some(item) => {
                    if let Some(versions) = item["versions"].as_array_mut() {
                        versions.push(entry);
                    }
                }
                None => items.push(json!({"metadata": {"name": g}, "versions": [entry]})),
            }
        }
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
               "metadata": {}, "items": items})
    }

    pub(super) fn resource_list(&self, group: &str, version: &str) -> Value {
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
            if t.scale.is_some() {
                resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
            }
            for (sub, (group, version, kind), verbs) in other_subresources(t) {
                let mut r = json!({"name": format!("{}/{sub}", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": kind, "verbs": verbs});
                if *group != t.group || *version != t.version {
                    r["group"] = json!(group);
                    r["version"] = json!(version);
                }
                resources.push(r);
            }
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    }

    pub(super) fn openapi_index(&self) -> Value {
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

    pub(super) fn openapi_gv(&self, gv: &str) -> Option<Value> {
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
}

/// A served subresource: its name, the kind of its objects (group, version, kind), its verbs.
type Subresource = (
    &'static str,
    (&'static str, &'static str, &'static str),
    &'static [&'static str],
);

/// The verbs of the proxy subresources.
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

/// The subresources served besides `status` and `scale`.
fn other_subresources(t: &ResourceType) -> &'static [Subresource] {
    match (t.group.as_str(), t.plural.as_str()) {
        ("", "pods") => &[
            ("attach", ("", "v1", "PodAttachOptions"), &["create", "get"]),
            ("binding", ("", "v1", "Binding"), &["create"]),
            ("ephemeralcontainers", ("", "v1", "Pod"), &["get", "patch", "update"]),
            ("eviction", ("policy", "v1", "Eviction"), &["create"]),
            ("exec", ("", "v1", "PodExecOptions"), &["create", "get"]),
            ("log", ("", "v1", "Pod"), &["get"]),
            ("portforward", ("", "v1", "PodPortForwardOptions"), &["create", "get"]),
            ("proxy", ("", "v1", "PodProxyOptions"), PROXY_VERBS),
            ("resize", ("", "v1", "Pod"), &["get", "patch", "update"]),
        ],
        ("", "services") => &[("proxy", ("", "v1", "ServiceProxyOptions"), PROXY_VERBS)],
        ("", "nodes") => &[("proxy", ("", "v1", "NodeProxyOptions"), PROXY_VERBS)],
        ("", "namespaces") => &[("finalize", ("", "v1", "Namespace"), &["update"])],
        ("", "serviceaccounts") => &[("token", ("authentication.k8s.io", "v1", "TokenRequest"), &["create"])],
        ("certificates.k8s.io", "certificatesigningrequests") => &[(
            "approval",
            ("certificates.k8s.io", "v1", "CertificateSigningRequest"),
            &["get", "patch", "update"],
        )],
        _ => &[],
    }
}
