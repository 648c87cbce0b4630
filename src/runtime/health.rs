//! `/healthz` (the process is up), `/readyz` (caches synced and confirmed current) and `/metrics` (OpenMetrics,
//! every component's metrics in one registry).

use crate::controller;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The process's metrics: one registry, each component registering its own.
pub struct Telemetry {
    registry: Mutex<Registry>,
    pub controller: Arc<controller::Metrics>,
    pub admission: Arc<crate::webhook::Metrics>,
    pub verification: Arc<crate::verification::Metrics>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("purchase_guard");
        let controller = Arc::new(controller::Metrics::register(&mut registry));
        let admission = Arc::new(crate::webhook::Metrics::register(&mut registry));
        let verification = Arc::new(crate::verification::Metrics::register(&mut registry));
        Telemetry {
            registry: Mutex::new(registry),
            controller,
            admission,
            verification,
        }
    }
}

impl Telemetry {
    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        self.controller.refresh();
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Whether the replica can serve: `Err` says why not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Binds the health server; serving starts when the returned future is polled.
pub async fn bind(
    addr: SocketAddr,
    ready: Readiness,
    telemetry: Arc<Telemetry>,
) -> Result<impl std::future::Future<Output = std::io::Result<()>>, std::io::Error> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready() {
                        Ok(()) => (StatusCode::OK, "ok".to_string()),
                        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let telemetry = telemetry.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        telemetry.encode(),
                    )
                }
            }),
        );
    Ok(async move { axum::serve(listener, app).await })
}
