//! The process around the controllers and the webhooks: one start path for `purchase-guard
//! run` and `purchase-guard sandbox`. [`start`] checks the CRDs and binds the admission and
//! health servers; [`Running::run`] runs leader election and the controllers until shutdown,
//! then stops the servers and releases the lease.
//!
//! - [`shutdown`]: the stop signal; [`logging`]: text or JSON logs; [`health`]: probes and
//!   metrics; [`leader`]: leader election.

pub mod client;
pub mod health;
pub mod leader;
pub mod logging;
pub mod policies;
pub mod shutdown;

use crate::api::{CustomerAccount, Partner, PurchaseRestriction, ResellerDelegation};
use crate::controller;
use crate::index::Freshness;
use crate::webhook::{self, Certificates, Settings, Webhooks};
use health::Telemetry;
use kube::{Client, Resource};
use leader::{Election, LeaseOptions};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What to start.
pub struct Options {
    pub settings: Settings,
    /// Where the HTTPS admission server listens.
    pub webhook_addr: SocketAddr,
    pub certificates: Certificates,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if anywhere.
    pub health_addr: Option<SocketAddr>,
    /// Leader election; `None`: this process always leads.
    pub lease: Option<LeaseOptions>,
    /// How long frozen resources are retained (unless their partner says otherwise).
    pub freeze_retention: std::time::Duration,
    /// Whether frozen resources are deleted when retention ends.
    pub release_frozen: bool,
    pub verification: VerificationOptions,
    /// The audit: report kind, bound and sweep (its matrix is the webhook settings').
    pub audit: controller::audit::Settings,
    /// The prefix of the ValidatingAdmissionPolicies purchase-guard keeps
    /// (`settings.enforce_with` policy or both).
    pub policy_prefix: String,
}

/// Where verification ledgers live and when partners are locked out (R5).
pub struct VerificationOptions {
    pub namespace: String,
    pub limits: purchase_guard_policy::verification::Limits,
}

/// The freeze settings of the controllers from the guarded kinds: all are watched (the audit
/// reads them); those with a freeze action are frozen, the others named as never frozen.
pub fn freeze_settings(
    settings: &Settings,
    retention: std::time::Duration,
    release: bool,
) -> controller::freeze::Settings {
    let mut kinds = Vec::new();
    let mut unfreezable = Vec::new();
    for g in &settings.guarded {
        if g.freeze.is_none() {
            unfreezable.push(controller::freeze::kinds::qualified(&g.group, &g.resource));
        }
        // Every guarded kind is watched: those without a freeze action for the audit.
        kinds.push(controller::freeze::KindSettings {
            group: g.group.clone(),
            version: g.version.clone(),
            resource: g.resource.clone(),
            action: g.freeze.clone(),
            default_billing_mode: g.classify.default_billing_mode,
        });
    }
    controller::freeze::Settings {
        kinds,
        unfreezable,
        retention,
        release,
    }
}

/// Why purchase-guard cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the CustomResourceDefinition {plural}.{group} is not installed; install the CRDs with: purchase-guard crds | kubectl apply -f -"
    )]
    CrdMissing { plural: String, group: String },
    #[error("cannot reach the Kubernetes API: {0}")]
    Unreachable(kube::Error),
    #[error(transparent)]
    Webhooks(#[from] webhook::StartError),
    #[error("cannot listen on {addr} (--health-addr): {source}")]
    Health { addr: SocketAddr, source: std::io::Error },
    #[error("the health server stopped: {0}")]
    HealthStopped(String),
    #[error(transparent)]
    Lease(#[from] leader::LeaseError),
    #[error(transparent)]
    Controller(#[from] controller::Error),
}

/// Checks that the CRDs are installed, with the command that installs them when not.
pub async fn check_crds(client: &Client) -> Result<(), Error> {
    async fn probe<K>(client: &Client) -> Result<(), Error>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + Debug,
    {
        let api: kube::Api<K> = kube::Api::all(client.clone());
        match api.list(&kube::api::ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Err(Error::CrdMissing {
                plural: K::plural(&()).into_owned(),
                group: K::group(&()).into_owned(),
            }),
            Err(e) => Err(Error::Unreachable(e)),
        }
    }
    probe::<Partner>(client).await?;
    probe::<CustomerAccount>(client).await?;
    probe::<ResellerDelegation>(client).await?;
    probe::<PurchaseRestriction>(client).await
}

/// purchase-guard started: its servers listen; [`Running::run`] starts the controllers.
pub struct Running {
    client: Client,
    webhooks: Arc<Webhooks>,
    telemetry: Arc<Telemetry>,
    ready: Arc<AtomicBool>,
    lease: Option<LeaseOptions>,
    controllers: controller::Settings,
    policy_prefix: String,
    webhook_server: tokio::task::JoinHandle<()>,
    health_server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Checks the CRDs, then binds the admission server (and the health server): a bad address
/// or certificate is reported before anything runs.
pub async fn start(client: Client, options: Options) -> Result<Running, Error> {
    check_crds(&client).await?;
    let controllers = controller::Settings {
        freeze: freeze_settings(&options.settings, options.freeze_retention, options.release_frozen),
        audit: controller::audit::Settings {
            matrix: options.settings.matrix.clone(),
            ..options.audit
        },
    };
    let telemetry = Arc::new(Telemetry::default());
    let webhooks = Arc::new(Webhooks::new(options.settings));
    webhooks.set_verifier(Arc::new(crate::verification::Verifier::new(
        client.clone(),
        options.verification.namespace,
        options.verification.limits,
        kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: controller::context::MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        telemetry.verification.clone(),
        jiff::Timestamp::now,
    )));
    let webhook_server = webhook::start(
        client.clone(),
        options.webhook_addr,
        options.certificates,
        webhooks.clone(),
        telemetry.admission.clone(),
        shutdown::signal(),
    )
    .await?;
    let ready = Arc::new(AtomicBool::new(false));
    let readiness: health::Readiness = {
        let (ready, webhooks) = (ready.clone(), webhooks.clone());
        Arc::new(move || {
            if !ready.load(Ordering::SeqCst) {
                return Err("caches not synced".into());
            }
            webhooks.staleness().map_or(Ok(()), Err)
        })
    };
    let health_server = match options.health_addr {
        None => None,
        Some(addr) => {
            let serve = health::bind(addr, readiness, telemetry.clone())
                .await
                .map_err(|source| Error::Health { addr, source })?;
            Some(tokio::spawn(serve))
        }
    };
    Ok(Running {
        client,
        webhooks,
        telemetry,
        ready,
        lease: options.lease,
        controllers,
        policy_prefix: options.policy_prefix,
        webhook_server,
        health_server,
    })
}

impl Running {
    /// Runs leader election and the controllers until `shutdown` resolves (or a server stops),
    /// then stops the admission server and releases the lease.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let metrics = self.telemetry.controller.clone();
        let election = match &self.lease {
            Some(lease) => Election::join(self.client.clone(), lease, metrics.clone()).await?,
            None => Election::always(&metrics),
        };
        // Every replica watches whether someone leads (a metric and a warning when nobody does).
        let leader_watch = self
            .lease
            .clone()
            .map(|lease| tokio::spawn(leader::watch_leader(self.client.clone(), lease, metrics.clone())));
        tracing::info!("purchase-guard controllers starting");
        let keeper = tokio::spawn(policies::keep(
            self.client.clone(),
            self.policy_prefix.clone(),
            self.webhooks.settings.clone(),
            election.leading.clone(),
        ));
        let webhooks = self.webhooks.clone();
        let ready = self.ready.clone();
        let client = self.client.clone();
        let admission_metrics = self.telemetry.admission.clone();
        let (checks_stop, checks_stopped) = tokio::sync::oneshot::channel::<()>();
        let controllers = controller::run(
            self.client.clone(),
            metrics,
            self.controllers.clone(),
            election.leading.clone(),
            shutdown,
            move |stores| {
                let settings = webhooks.settings.freshness;
                let freshness = Arc::new(Freshness::new(client, stores.clone(), settings.check_timeout));
                webhooks.set_stores(stores);
                webhooks.set_freshness(freshness.clone());
                ready.store(true, Ordering::SeqCst);
                tracing::info!("caches synced");
                tokio::spawn(async move {
                    tokio::select! {
                        _ = confirm_caches(freshness, settings, admission_metrics) => {}
                        _ = checks_stopped => {}
                    }
                });
            },
        );
        let health_server = self.health_server;
        let health = async move {
            match health_server {
                Some(task) => match task.await {
                    Ok(Err(e)) => Error::HealthStopped(e.to_string()),
                    Ok(Ok(())) => Error::HealthStopped("it returned".into()),
                    Err(e) => Error::HealthStopped(e.to_string()),
                },
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = controllers => r.map_err(Error::from),
            e = health => Err(e),
        };
        let _ = checks_stop.send(());
        keeper.abort();
        if let Some(task) = leader_watch {
            task.abort();
        }
        self.webhook_server.abort();
        election.leave().await;
        tracing::info!("purchase-guard stopped");
        result
    }
}

/// Confirms the caches current every `check_interval`, for ever: admission trusts them only
/// while the last confirmation is recent ([`Webhooks::staleness`]). A failed check is logged at
/// warn with what lags; the first success after failures at info.
async fn confirm_caches(
    freshness: Arc<Freshness>,
    settings: webhook::settings::Freshness,
    metrics: Arc<webhook::Metrics>,
) {
    let mut failing = false;
    loop {
        let started = std::time::Instant::now();
        let result = freshness.check_now().await;
        metrics.record_cache_check(&result, started.elapsed());
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("caches confirmed current again");
            }
            Ok(()) => {}
            Err(e) => {
                failing = true;
                tracing::warn!(error = %e, "cannot confirm the caches current; purchases fail closed once the last confirmation is older than --max-cache-staleness");
            }
        }
        tokio::time::sleep(settings.check_interval).await;
    }
}
