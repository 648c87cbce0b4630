//! The HTTPS listener of the admission server: its certificate (from files, self-managed in a
//! Secret, or made by the caller) and its start.

use super::metrics::Metrics;
use super::server::router;
use super::{Webhooks, certs, tls};
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

/// Why the admission server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    ReadCertificate(tls::TlsError),
    #[error("--tls-cert-file/--tls-key-file: {0}")]
    CertificateFiles(tls::TlsError),
    #[error("{0}")]
    InMemoryCertificate(tls::TlsError),
    #[error("cannot listen on {addr} for webhooks: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Starts the HTTPS admission server on `addr`; runs until `shutdown` completes.
pub async fn start(
    client: kube::Client,
    addr: SocketAddr,
    certificates: Certificates,
    webhooks: Arc<Webhooks>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let serving = match &certificates {
        Certificates::Files { cert, key } => {
            let key_pair = tls::certified_key(
                &tls::read(cert).map_err(StartError::ReadCertificate)?,
                &tls::read(key).map_err(StartError::ReadCertificate)?,
                &cert.display().to_string(),
            )
            .map_err(StartError::CertificateFiles)?;
            let serving = tls::ServingCert::new(key_pair);
            tls::reload_on_change(serving.clone(), cert.clone(), key.clone(), Duration::from_secs(10));
            serving
        }
        Certificates::InMemory(pair) => tls::ServingCert::new(
            tls::certified_key(pair.cert.as_bytes(), pair.key.as_bytes(), "in-memory certificate")
                .map_err(StartError::InMemoryCertificate)?,
        ),
        Certificates::SelfManaged(managed) => {
            let serving = managed.initial(&client).await;
            tokio::spawn(managed.clone().keep_current(client.clone(), serving.clone()));
            serving
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    tracing::info!(%addr, "admission webhooks serving HTTPS");
    let app = router(webhooks, metrics);
    Ok(tokio::spawn(tls::serve(
        listener,
        serving.server_config(),
        app,
        shutdown,
    )))
}
