//! `purchase-guard run`: the production entry point. Every setting is a flag with an
//! environment-variable twin.

use anyhow::Context as _;
use purchase_guard::runtime::{self, leader::LeaseOptions, logging};
use purchase_guard::webhook::settings::Freshness;
use purchase_guard::webhook::{self, Certificates, Consistency, Enforcement, Guarded, Settings, certs::SelfManaged};
use purchase_guard_policy as policy;
use std::net::SocketAddr;
use std::path::PathBuf;
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
    freeze: FreezeArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    verification: VerificationArgs,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

/// The audit of customers' resources: what is out of line with their state.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// The policy report kind the audit writes, one per customer namespace with findings:
    /// openreports (openreports.io/v1alpha1 Report), policyreport (wgpolicyk8s.io/v1alpha2
    /// PolicyReport) or none (counts in the customers' statuses and metrics only). Its CRD is
    /// installed separately.
    #[arg(long, env = "PURCHASE_GUARD_REPORTS", value_enum, default_value = "openreports")]
    pub reports: purchase_guard::controller::audit::ReportFormat,
    /// The most results one report lists; its summary counts them all.
    #[arg(long, env = "PURCHASE_GUARD_REPORT_MAX_RESULTS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub report_max_results: u32,
    /// How often every customer is audited again besides on changes, e.g. 10m; 0s: only on
    /// changes.
    #[arg(long, env = "PURCHASE_GUARD_AUDIT_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub audit_interval: Duration,
}

impl AuditArgs {
    /// The audit's settings (its matrix is set from the webhook settings at start).
    pub fn settings(&self) -> purchase_guard::controller::audit::Settings {
        purchase_guard::controller::audit::Settings {
            format: self.reports,
            max_results: self.report_max_results as usize,
            interval: (!self.audit_interval.is_zero()).then_some(self.audit_interval),
            ..Default::default()
        }
    }
}

/// Verification codes (R5) of partners that enable them.
#[derive(clap::Args)]
pub struct VerificationArgs {
    /// Consecutive failed verification codes (malformed, invalid or expired) after which a
    /// partner is locked out.
    #[arg(long, env = "PURCHASE_GUARD_VERIFICATION_MAX_FAILURES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub verification_max_failures: u32,
    /// How long a locked-out partner's codes are all refused, e.g. 15m.
    #[arg(long, env = "PURCHASE_GUARD_VERIFICATION_LOCKOUT", default_value = "15m", value_parser = parse_duration)]
    pub verification_lockout: Duration,
    /// The namespace of the partners' verification ledgers (ConfigMaps); default: purchase-guard's
    /// own namespace (--lease-namespace).
    #[arg(long, env = "PURCHASE_GUARD_VERIFICATION_NAMESPACE")]
    pub verification_namespace: Option<String>,
}

impl VerificationArgs {
    pub fn options(&self, default_namespace: &str) -> runtime::VerificationOptions {
        runtime::VerificationOptions {
            namespace: self
                .verification_namespace
                .clone()
                .unwrap_or_else(|| default_namespace.to_string()),
            limits: policy::verification::Limits {
                max_failures: self.verification_max_failures,
                lockout_seconds: self.verification_lockout.as_secs().max(1),
            },
        }
    }
}

/// How customers' resources are frozen (R8).
#[derive(clap::Args)]
pub struct FreezeArgs {
    /// How long frozen pay-per-use resources are retained before release, unless the freezing
    /// Partner's spec.freezeRetention says otherwise, e.g. 360h (15 days).
    #[arg(long, env = "PURCHASE_GUARD_FREEZE_RETENTION", default_value = "360h", value_parser = parse_duration)]
    pub freeze_retention: Duration,
    /// Delete frozen pay-per-use resources when their retention ends (true or false). Off:
    /// nothing is deleted; the customer gets the condition ReleaseDue and an event.
    #[arg(long, env = "PURCHASE_GUARD_RELEASE_FROZEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub release_frozen: bool,
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
    /// A resource the purchase webhook guards, GROUP/VERSION/RESOURCE, with its kind's
    /// default field roles (repeatable or comma-separated; the core group is empty:
    /// /v1/pods). Default: the sample VirtualMachine, every apps/v1 and batch/v1 workload,
    /// and Pods.
    #[arg(
        long = "guarded-resource",
        env = "PURCHASE_GUARD_GUARDED_RESOURCES",
        value_delimiter = ',',
        conflicts_with = "guarded_kinds"
    )]
    guarded: Vec<Guarded>,
    /// A YAML or JSON file listing the guarded resources with their subresources and field
    /// roles (group, version, resource, subresources, renamePaths, renewPaths, capacityPaths,
    /// usePaths; an omitted list keeps the kind's default).
    #[arg(long, env = "PURCHASE_GUARD_GUARDED_KINDS", value_name = "PATH")]
    guarded_kinds: Option<PathBuf>,
    /// Users of Kubernetes' workload controllers whose writes of objects they control (a
    /// controller ownerReference) are not judged: their parent was (repeatable or
    /// comma-separated). Default: kube-controller-manager and its per-controller
    /// ServiceAccounts.
    #[arg(
        long = "workload-controller",
        env = "PURCHASE_GUARD_WORKLOAD_CONTROLLERS",
        value_delimiter = ',',
        value_name = "USER"
    )]
    workload_controllers: Vec<String>,
    /// The billing mode of resources without the purchaseguard.io/billing-mode label.
    #[arg(long, env = "PURCHASE_GUARD_DEFAULT_BILLING_MODE", default_value = "pay-per-use", value_parser = parse_billing_mode)]
    default_billing_mode: policy::BillingMode,
    /// What the purchase webhook does with a request it would refuse.
    #[arg(long, env = "PURCHASE_GUARD_ENFORCEMENT", value_enum, default_value_t = Enforcement::Deny)]
    enforcement: Enforcement,
    /// The user purchase-guard acts as (in a pod: system:serviceaccount:NAMESPACE:NAME); only
    /// it may write the status of purchase-guard's kinds (repeatable or comma-separated).
    #[arg(
        long = "controller-identity",
        env = "PURCHASE_GUARD_CONTROLLER_IDENTITY",
        value_delimiter = ',',
        value_name = "USER"
    )]
    controller_identities: Vec<String>,
    /// How current the caches must be before a purchase is admitted because its customer is
    /// not restricted: cached (as the watches have them, confirmed every
    /// --cache-check-interval) or linearizable (a quorum read and the wait for the watches
    /// before each such admission).
    #[arg(long, env = "PURCHASE_GUARD_CONSISTENCY", value_enum, default_value_t = Consistency::Cached)]
    consistency: Consistency,
    /// How often the caches are confirmed current in the background, e.g. 10s.
    #[arg(long, env = "PURCHASE_GUARD_CACHE_CHECK_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    cache_check_interval: Duration,
    /// Purchases are refused, and /readyz fails, when the caches were last confirmed current
    /// longer ago than this (a silent watch fails closed), e.g. 30s.
    #[arg(long, env = "PURCHASE_GUARD_MAX_CACHE_STALENESS", default_value = "30s", value_parser = parse_duration)]
    max_cache_staleness: Duration,
    /// The bound of one confirmation (the quorum reads and the wait for the watches), e.g. 2s.
    #[arg(long, env = "PURCHASE_GUARD_CONSISTENCY_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    consistency_timeout: Duration,
    /// Strict mode: refuse creating guarded resources in namespaces that belong to no customer
    /// (the purchase webhook then sees every namespace but the exempt ones; an outage of
    /// purchase-guard blocks those creations everywhere).
    #[arg(long, env = "PURCHASE_GUARD_STRICT", default_value_t = false, action = clap::ArgAction::Set)]
    strict: bool,
    /// Where purchases are judged: webhook (the purchase webhook), policy
    /// (ValidatingAdmissionPolicies that purchase-guard keeps current, nothing on the purchase
    /// path calls it) or both (the policies as the backstop, the webhook with failurePolicy
    /// Ignore).
    #[arg(long, env = "PURCHASE_GUARD_ENFORCE_WITH", value_enum, default_value = "webhook")]
    enforce_with: webhook::EnforceWith,
    /// The prefix of the ValidatingAdmissionPolicies purchase-guard keeps (the chart passes
    /// its release's full name).
    #[arg(long, env = "PURCHASE_GUARD_POLICY_PREFIX", default_value = "purchase-guard")]
    policy_prefix: String,
    /// A namespace strict mode leaves alone (repeatable or comma-separated).
    #[arg(
        long = "strict-exempt-namespace",
        env = "PURCHASE_GUARD_STRICT_EXEMPT_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    strict_exempt_namespaces: Vec<String>,
    /// A YAML or JSON file with the impact matrix (which operations a restriction blocks per
    /// billing mode); default: the matrix of the product documentation.
    #[arg(long, env = "PURCHASE_GUARD_IMPACT_MATRIX", value_name = "PATH")]
    impact_matrix: Option<PathBuf>,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
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
    fn settings(&self) -> anyhow::Result<Settings> {
        anyhow::ensure!(
            self.max_cache_staleness > self.cache_check_interval,
            "--max-cache-staleness ({:?}) must be longer than --cache-check-interval ({:?}), or every replica fails closed between two checks",
            self.max_cache_staleness,
            self.cache_check_interval
        );
        let matrix = match &self.impact_matrix {
            None => policy::ImpactMatrix::default(),
            Some(path) => {
                let what = || format!("--impact-matrix {}", path.display());
                let text = std::fs::read_to_string(path).with_context(what)?;
                let matrix: policy::ImpactMatrix = serde_yaml_ng::from_str(&text).with_context(what)?;
                matrix.validate().map_err(anyhow::Error::msg).with_context(what)?;
                matrix
            }
        };
        let mut guarded = match (&self.guarded_kinds, self.guarded.is_empty()) {
            (Some(path), _) => {
                let what = || format!("--guarded-kinds {}", path.display());
                let text = std::fs::read_to_string(path).with_context(what)?;
                webhook::parse_guarded(&text)
                    .map_err(anyhow::Error::msg)
                    .with_context(what)?
            }
            (None, true) => webhook::default_guarded(),
            (None, false) => self.guarded.clone(),
        };
        for g in &mut guarded {
            g.classify.default_billing_mode = self.default_billing_mode;
        }
        Ok(Settings {
            guarded,
            workload_controllers: if self.workload_controllers.is_empty() {
                webhook::default_workload_controllers()
            } else {
                self.workload_controllers.clone()
            },
            matrix,
            enforcement: self.enforcement,
            controller_identities: self.controller_identities.clone(),
            strict: self.strict.then(|| self.strict_exempt_namespaces.clone()),
            enforce_with: self.enforce_with,
            freshness: Freshness {
                consistency: self.consistency,
                check_interval: self.cache_check_interval,
                max_staleness: self.max_cache_staleness,
                check_timeout: self.consistency_timeout,
            },
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

/// Runs purchase-guard against the cluster of the current kube context.
pub fn run(args: Args) -> anyhow::Result<()> {
    let format = args.log_format.parse().map_err(anyhow::Error::msg)?;
    logging::init(format, "info,kube_runtime=warn");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Settings first: a bad flag or file is reported before anything connects.
    let settings = args.webhooks.settings()?;
    runtime.block_on(async {
        // The kube context as kubectl uses it (KUBECONFIG, ~/.kube/config), or in-cluster.
        let client = runtime::client::inferred()
            .await
            .context("cannot configure a Kubernetes client (KUBECONFIG or in-cluster)")?;
        let lease = args.leader_election.then(|| LeaseOptions {
            name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            identity: args.identity.clone().unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "purchase-guard".into());
                format!("{host}-{}", std::process::id())
            }),
            duration: args.lease_duration,
            grace: args.lease_grace,
        });
        let running = runtime::start(
            client,
            runtime::Options {
                settings,
                webhook_addr: args.webhooks.webhook_addr,
                certificates: args.webhooks.certificates(&args.lease_namespace),
                health_addr: Some(args.health_addr),
                lease,
                freeze_retention: args.freeze.freeze_retention,
                release_frozen: args.freeze.release_frozen,
                verification: args.verification.options(&args.lease_namespace),
                audit: args.audit.settings(),
                policy_prefix: args.webhooks.policy_prefix.clone(),
            },
        )
        .await?;
        running.run(runtime::shutdown::signal()).await?;
        Ok(())
    })
}
