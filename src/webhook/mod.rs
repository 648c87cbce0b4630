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
