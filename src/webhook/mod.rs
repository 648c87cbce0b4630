//! purchase-guard's admission webhooks and the HTTPS server that carries them. The server runs
//! on every replica, not only the leader, and judges requests from the controller's caches.

pub mod certs;
pub mod handlers;
pub mod review;
pub mod server;
pub mod tls;

use crate::controller::Metrics;
use handlers::Webhooks;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum Certificates {
    /// PEM files, reloaded when they change (cert-manager renews them in place).
    Files { cert: PathBuf, key: PathBuf },
    /// A Secret purchase-guard creates and renews itself.
    SelfManaged(certs::SelfManaged),
    /// A certificate made by the caller (the sandbox).
    InMemory(tls::Pair),
}

/// Starts the HTTPS admission server on `addr`; runs until `shutdown` completes.
pub async fn start(
    client: kube::Client,
    addr: SocketAddr,
    certificates: Certificates,
    webhooks: Arc<Webhooks>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let serving = match &certificates {
        Certificates::Files { cert, key } => {
            let key_pair = tls::certified_key(
                &tls::read(cert).map_err(|e| e.to_string())?,
                &tls::read(key).map_err(|e| e.to_string())?,
                &cert.display().to_string(),
            )
            .map_err(|e| format!("--tls-cert-file/--tls-key-file: {e}"))?;
            let serving = tls::ServingCert::new(key_pair);
            tls::reload_on_change(serving.clone(), cert.clone(), key.clone(), Duration::from_secs(10));
            serving
        }
        Certificates::InMemory(pair) => tls::ServingCert::new(
            tls::certified_key(pair.cert.as_bytes(), pair.key.as_bytes(), "in-memory certificate")
                .map_err(|e| e.to_string())?,
        ),
        Certificates::SelfManaged(managed) => {
            let serving = managed.initial(&client).await;
            tokio::spawn(managed.clone().keep_current(client.clone(), serving.clone()));
            serving
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for webhooks: {e}"))?;
    tracing::info!(%addr, "admission webhooks serving HTTPS");
    let app = server::router(webhooks, metrics);
    Ok(tokio::spawn(tls::serve(
        listener,
        serving.server_config(),
        app,
        shutdown,
    )))
}

/// Where the webhook configurations send reviews: the webhook Service.
pub struct ServiceRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration named `name`, as the
/// Helm chart renders them (tests/e2e.rs compares the two): the decision and purchase webhooks,
/// and the audit stamp. `ca_bundle` is the PEM the API server trusts (none: injected later).
pub fn configurations(
    name: &str,
    service: &ServiceRef,
    ca_bundle: Option<&str>,
    guarded: &[handlers::Guarded],
    excluded_namespaces: &[&str],
) -> [serde_json::Value; 2] {
    use base64::Engine;
    use serde_json::json;
    let client_config = |path: &str| {
        let mut c =
            json!({"service": {"namespace": service.namespace, "name": service.name, "path": path, "port": 443}});
        if let Some(pem) = ca_bundle {
            c["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
        }
        c
    };
    let hook = |webhook: &str, path: &str| {
        json!({
            "name": webhook,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "clientConfig": client_config(path),
        })
    };
    let mut decisions = hook("decisions.purchaseguard.io", "/validate/decisions");
    decisions["rules"] = json!([{
        "operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [crate::api::GROUP],
        "apiVersions": [crate::api::VERSION], "resources": ["purchaserestrictions", "resellerdelegations"],
        "scope": "Namespaced",
    }]);
    let mut webhooks = vec![decisions];
    if !guarded.is_empty() {
        let mut purchases = hook("purchases.purchaseguard.io", "/validate/purchases");
        purchases["matchPolicy"] = json!("Exact");
        purchases["namespaceSelector"] = json!({"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded_namespaces,
        }]});
        purchases["rules"] = guarded
            .iter()
            .map(|g| {
                json!({
                    "operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [g.group],
                    "apiVersions": [g.version], "resources": [g.resource], "scope": "Namespaced",
                })
            })
            .collect();
        webhooks.push(purchases);
    }
    let mut audit = hook("audit.purchaseguard.io", "/mutate/audit");
    audit["reinvocationPolicy"] = json!("Never");
    audit["rules"] = json!([{
        "operations": ["CREATE", "UPDATE"], "apiGroups": [crate::api::GROUP],
        "apiVersions": [crate::api::VERSION], "resources": ["purchaserestrictions"], "scope": "Namespaced",
    }]);
    [
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": name}, "webhooks": webhooks}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": name}, "webhooks": [audit]}),
    ]
}
