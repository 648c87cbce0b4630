//! `purchase-guard run`: the production entry point. Every setting is a flag with an
//! environment-variable twin.

use purchase_guard::controller::{self, Metrics};
use purchase_guard::webhook::handlers::{Enforcement, Guarded, Settings, Webhooks};
use purchase_guard::webhook::{self, Certificates, certs::SelfManaged};
use purchase_guard_policy as policy;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Log format: text or json.
    #[arg(long, env = "PURCHASE_GUARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Where /healthz, /readyz and /metrics are served.
    #[arg(long, env = "PURCHASE_GUARD_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// Elect a leader on a Lease so that only one replica reconciles (true or false).
    #[arg(long, env = "PURCHASE_GUARD_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// The name of the Lease.
    #[arg(long, env = "PURCHASE_GUARD_LEASE_NAME", default_value = "purchase-guard")]
    lease_name: String,
    /// The namespace of the Lease (in a pod: its own namespace).
    #[arg(long, env = "PURCHASE_GUARD_LEASE_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// How long a lease lasts without renewal, in seconds.
    #[arg(long, env = "PURCHASE_GUARD_LEASE_DURATION", default_value_t = 15)]
    lease_duration: u64,
    /// How long before expiry the leader renews, in seconds.
    #[arg(long, env = "PURCHASE_GUARD_LEASE_GRACE", default_value_t = 5)]
    lease_grace: u64,
    /// This replica's identity in the Lease (default: the pod name, else host and process).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

/// The admission webhooks' settings.
#[derive(clap::Args)]
pub struct WebhookArgs {
    /// Where the HTTPS admission server listens (on every replica).
    #[arg(long, env = "PURCHASE_GUARD_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    webhook_addr: SocketAddr,
    /// The serving certificate (PEM), reloaded when it changes; with --tls-key-file. Without
    /// both, certificates are self-managed in --cert-secret.
    #[arg(
        long,
        env = "PURCHASE_GUARD_TLS_CERT_FILE",
        value_name = "PATH",
        requires = "tls_key_file"
    )]
    tls_cert_file: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(
        long,
        env = "PURCHASE_GUARD_TLS_KEY_FILE",
        value_name = "PATH",
        requires = "tls_cert_file"
    )]
    tls_key_file: Option<PathBuf>,
    /// Self-managed certificates: the Secret holding the CA and the serving certificate.
    #[arg(
        long,
        env = "PURCHASE_GUARD_CERT_SECRET",
        default_value = "purchase-guard-webhook-tls"
    )]
    cert_secret: String,
    /// The namespace of that Secret and of the webhook Service (in a pod: its own namespace;
    /// default: --lease-namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    cert_namespace: Option<String>,
    /// The webhook Service; the certificate is valid for its in-cluster DNS names.
    #[arg(
        long,
        env = "PURCHASE_GUARD_WEBHOOK_SERVICE",
        default_value = "purchase-guard-webhook"
    )]
    webhook_service: String,
    /// A Validating/MutatingWebhookConfiguration whose caBundle is kept current (repeatable
    /// or comma-separated).
    #[arg(
        long = "webhook-configuration",
        env = "PURCHASE_GUARD_WEBHOOK_CONFIGURATIONS",
        value_delimiter = ',',
        default_value = "purchase-guard"
    )]
    webhook_configurations: Vec<String>,
    /// Validity of self-managed serving certificates (renewed with a third left), e.g. 8760h.
    #[arg(long, env = "PURCHASE_GUARD_CERT_VALIDITY", default_value = "8760h", value_parser = parse_duration)]
    cert_validity: Duration,
    /// Validity of the self-managed CA, e.g. 87600h.
    #[arg(long, env = "PURCHASE_GUARD_CA_VALIDITY", default_value = "87600h", value_parser = parse_duration)]
    ca_validity: Duration,
    /// How often the Secret and the caBundles are checked, e.g. 1m.
    #[arg(long, env = "PURCHASE_GUARD_CERT_CHECK_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    cert_check_interval: Duration,
    /// A resource the purchase webhook guards, GROUP/VERSION/RESOURCE (repeatable or
    /// comma-separated; the core group is empty: /v1/services).
    #[arg(
        long = "guarded-resource",
        env = "PURCHASE_GUARD_GUARDED_RESOURCES",
        value_delimiter = ',',
        default_value = "compute.example.com/v1/virtualmachines,apps/v1/deployments"
    )]
    guarded: Vec<Guarded>,
    /// The billing mode of resources without the purchaseguard.io/billing-mode label.
    #[arg(long, env = "PURCHASE_GUARD_DEFAULT_BILLING_MODE", default_value = "pay-per-use", value_parser = parse_billing_mode)]
    default_billing_mode: policy::BillingMode,
    /// What the purchase webhook does with a request it would refuse.
    #[arg(long, env = "PURCHASE_GUARD_ENFORCEMENT", value_enum, default_value_t = Enforcement::Deny)]
    enforcement: Enforcement,
    /// A YAML or JSON file with the impact matrix (which operations a restriction blocks per
    /// billing mode); default: the matrix of the product documentation.
    #[arg(long, env = "PURCHASE_GUARD_IMPACT_MATRIX", value_name = "PATH")]
    impact_matrix: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration such as 90s, 15m or 8760h: {e}"))?;
    Duration::try_from(d)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?}: the duration must be positive"))
}

fn parse_billing_mode(s: &str) -> Result<policy::BillingMode, String> {
    policy::BillingMode::parse(s)
}

impl WebhookArgs {
    fn settings(&self) -> Result<Settings, String> {
        let matrix = match &self.impact_matrix {
            None => policy::ImpactMatrix::default(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| format!("--impact-matrix {}: {e}", path.display()))?;
                let matrix: policy::ImpactMatrix =
                    serde_yaml_ng::from_str(&text).map_err(|e| format!("--impact-matrix {}: {e}", path.display()))?;
                matrix
                    .validate()
                    .map_err(|e| format!("--impact-matrix {}: {e}", path.display()))?;
                matrix
            }
        };
        Ok(Settings {
            guarded: self.guarded.clone(),
            classify: policy::ClassifyRules {
                default_billing_mode: self.default_billing_mode,
                ..Default::default()
            },
            matrix,
            enforcement: self.enforcement,
        })
    }

    fn certificates(&self, default_namespace: &str) -> Certificates {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Certificates::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => Certificates::SelfManaged(SelfManaged {
                namespace: self
                    .cert_namespace
                    .clone()
                    .unwrap_or_else(|| default_namespace.to_string()),
                secret: self.cert_secret.clone(),
                service: self.webhook_service.clone(),
                configurations: self.webhook_configurations.clone(),
                validity: self.cert_validity,
                ca_validity: self.ca_validity,
                check_every: self.cert_check_interval,
            }),
        }
    }
}

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Serves /healthz (the process is up), /readyz (caches synced) and /metrics (OpenMetrics).
async fn serve_health(addr: SocketAddr, ready: Arc<AtomicBool>, metrics: Arc<Metrics>) -> Result<(), String> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} (--health-addr): {e}"))?;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        );
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("health server: {e}"))
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    init_logging(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Settings first: a bad flag or file is reported before anything connects.
    let settings = args.webhooks.settings()?;
    runtime.block_on(async {
        // The kube context as kubectl uses it (KUBECONFIG, ~/.kube/config), or in-cluster.
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot configure a Kubernetes client (KUBECONFIG or in-cluster): {e}"))?;
        controller::check_crds(&client).await?;
        let metrics = Arc::new(Metrics::default());
        let webhooks = Arc::new(Webhooks::new(settings));
        let webhook_server = webhook::start(
            client.clone(),
            args.webhooks.webhook_addr,
            args.webhooks.certificates(&args.lease_namespace),
            webhooks.clone(),
            metrics.clone(),
            crate::sandbox::shutdown_signal(),
        )
        .await?;
        let ready = Arc::new(AtomicBool::new(false));
        let health = tokio::spawn(serve_health(args.health_addr, ready.clone(), metrics.clone()));

        let (leader_tx, leader_rx) = tokio::sync::watch::channel(!args.leader_election);
        let mut lease_task = None;
        if args.leader_election {
            let identity = args.identity.clone().unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "purchase-guard".into());
                format!("{host}-{}", std::process::id())
            });
            let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&args.lease_namespace)
                .with_identity(&identity)
                .with_duration(args.lease_duration)
                .with_grace(args.lease_grace)
                .with_field_manager("purchase-guard")
                .build()
                .await
                .map_err(|e| {
                    format!(
                        "cannot set up leader election on Lease {}/{}: {e}",
                        args.lease_namespace, args.lease_name
                    )
                })?;
            let (mut channel, task) = manager.watch().await;
            let metrics = metrics.clone();
            let forward = tokio::spawn(async move {
                loop {
                    let leading = *channel.borrow_and_update();
                    metrics.leader.set(i64::from(leading));
                    if leader_tx.send(leading).is_err() {
                        return channel;
                    }
                    if leading {
                        tracing::info!(%identity, "leading: reconciling");
                    } else {
                        tracing::info!(%identity, "not the leader: caches only");
                    }
                    if channel.changed().await.is_err() {
                        let _ = leader_tx.send(false);
                        return channel;
                    }
                }
            });
            lease_task = Some((forward, task));
        } else {
            metrics.leader.set(1);
        }

        tracing::info!("purchase-guard controllers starting");
        let ready_flag = ready.clone();
        let result = tokio::select! {
            r = controller::run(client, metrics, leader_rx, crate::sandbox::shutdown_signal(), move |stores| {
                webhooks.set_stores(stores);
                ready_flag.store(true, Ordering::SeqCst);
                tracing::info!("caches synced");
            }) => r.map_err(|e| e.to_string()),
            h = health => Err(match h { Ok(Err(e)) => e, _ => "the health server stopped".to_string() }),
        };
        webhook_server.abort();
        // Release the lease so that another replica takes over at once.
        if let Some((forward, task)) = lease_task {
            // Dropping the forwarder drops the lease channel, which stops the manager.
            forward.abort();
            let _ = forward.await;
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(manager))) => {
                    if let Err(e) = manager.release().await {
                        tracing::warn!(error = %e, "cannot release the lease");
                    }
                }
                _ => tracing::warn!("the lease manager did not stop in time"),
            }
        }
        tracing::info!("purchase-guard stopped");
        result.map_err(|e| e.into())
    })
}
