//! `purchase-guard sandbox`: the local API server, for trying purchase-guard without a cluster.

use anyhow::Context as _;
use purchase_guard::runtime::{self, logging};
use purchase_guard::webhook::{self, Certificates, ServiceRef, Settings, tls};
use purchase_guard_sandbox::{Config, Sandbox};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the kubeconfig for kubectl and other clients.
    #[arg(
        long,
        env = "PURCHASE_GUARD_SANDBOX_KUBECONFIG",
        value_name = "PATH",
        default_value = "sandbox.kubeconfig"
    )]
    kubeconfig: PathBuf,
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_PORT", default_value_t = 6443)]
    port: u16,
    /// Serve the Kubernetes API alone, without purchase-guard's CRDs, controllers, webhooks
    /// and examples.
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_API_ONLY")]
    api_only: bool,
    /// Authorize requests with RBAC; `kubectl --as USER --as-group GROUP` picks the identity
    /// (without --as, requests act as an administrator).
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_RBAC")]
    rbac: bool,
    /// Reach the Service NAMESPACE/NAME at HOST:PORT when a webhook configuration names it
    /// (repeatable). The webhook's certificate must still be valid for NAME.NAMESPACE.svc.
    #[arg(long = "service-endpoint", value_name = "NAMESPACE/NAME=HOST:PORT", value_parser = parse_service_endpoint)]
    service_endpoints: Vec<(String, String)>,
    /// Start without the examples (partners, customers, resources, a delegation, decisions).
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_WITHOUT_EXAMPLES")]
    without_examples: bool,
    /// Do not simulate nodes and workloads (by default worker Nodes are added, workloads get
    /// their Pods and Pods are reported Running; no container runs either way).
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_WITHOUT_SIMULATION")]
    without_simulation: bool,
    /// What the purchase webhook does with a request it would refuse: deny, warn (admitted
    /// with a warning) or dryrun (admitted, logged); with warn or dryrun, what slips through is
    /// listed by the audit (`kubectl purchase-guard report`).
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_ENFORCEMENT", value_enum, default_value = "deny")]
    enforcement: webhook::Enforcement,
    /// Where purchases are judged: webhook, policy (ValidatingAdmissionPolicies inside the API
    /// server, kept by purchase-guard) or both.
    #[arg(
        long,
        env = "PURCHASE_GUARD_SANDBOX_ENFORCE_WITH",
        value_enum,
        default_value = "webhook"
    )]
    enforce_with: webhook::EnforceWith,
    #[command(flatten)]
    freeze: crate::run::FreezeArgs,
    #[command(flatten)]
    audit: crate::run::AuditArgs,
    #[command(flatten)]
    verification: crate::run::VerificationArgs,
    /// Persist objects in this file so that a restart keeps them (default: in memory).
    #[arg(long, env = "PURCHASE_GUARD_SANDBOX_STATE_FILE", value_name = "PATH")]
    state_file: Option<PathBuf>,
}

/// Parses `NAMESPACE/NAME=HOST:PORT`.
fn parse_service_endpoint(s: &str) -> Result<(String, String), String> {
    let shape = "expected NAMESPACE/NAME=HOST:PORT, e.g. purchase-guard/purchase-guard-webhook=127.0.0.1:8443";
    let (service, endpoint) = s.split_once('=').ok_or_else(|| format!("{s:?}: {shape}"))?;
    let (ns, name) = service.split_once('/').ok_or_else(|| format!("{s:?}: {shape}"))?;
    for (what, v) in [("namespace", ns), ("name", name)] {
        if let Some(problem) = purchase_guard_crd_validation::validate_dns1123_label(v).first() {
            return Err(format!("{s:?}: the Service {what} {v:?} is invalid: {problem}"));
        }
    }
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(|| format!("{s:?}: {shape}"))?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!(
            "{s:?}: the endpoint {endpoint:?} needs a host and a port from 1 to 65535; {shape}"
        ));
    }
    Ok((format!("{ns}/{name}"), endpoint.to_string()))
}

/// The examples installed at start-up, in order (the billable CRD first).
const EXAMPLES: [(&str, &str); 7] = [
    (
        "examples/billable-crd/virtualmachines.compute.example.com.yaml",
        include_str!("../examples/billable-crd/virtualmachines.compute.example.com.yaml"),
    ),
    (
        "examples/00-namespaces.yaml",
        include_str!("../examples/00-namespaces.yaml"),
    ),
    (
        "examples/01-partners.yaml",
        include_str!("../examples/01-partners.yaml"),
    ),
    (
        "examples/02-resources.yaml",
        include_str!("../examples/02-resources.yaml"),
    ),
    (
        "examples/03-customers.yaml",
        include_str!("../examples/03-customers.yaml"),
    ),
    (
        "examples/04-delegation.yaml",
        include_str!("../examples/04-delegation.yaml"),
    ),
    (
        "examples/05-restrictions.yaml",
        include_str!("../examples/05-restrictions.yaml"),
    ),
];

/// The user the in-process controller acts as.
const CONTROLLER_USER: &str = "system:serviceaccount:purchase-guard:purchase-guard";

/// Where the in-process webhooks are said to live (the Service the configurations name).
const WEBHOOK_NAMESPACE: &str = "purchase-guard";
const WEBHOOK_SERVICE: &str = "purchase-guard-webhook";

fn install_examples(sandbox: &Sandbox) -> anyhow::Result<usize> {
    let mut count = 0;
    for (file, text) in EXAMPLES {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let value = serde_json::Value::deserialize(doc).context(file)?;
            if value.is_null() {
                continue;
            }
            sandbox
                .server
                .apply_object(value, "purchase-guard-sandbox")
                .context(file)?;
            count += 1;
        }
    }
    Ok(count)
}

/// Runs the sandbox until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Errors only unless RUST_LOG asks: the sandbox prints what to try on standard output.
    logging::init(logging::LogFormat::Text, "error");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    // The in-process webhooks listen on a free port that the Service mapping points at.
    let webhook_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut service_endpoints: std::collections::HashMap<String, String> =
        args.service_endpoints.iter().cloned().collect();
    if !args.api_only {
        service_endpoints
            .entry(format!("{WEBHOOK_NAMESPACE}/{WEBHOOK_SERVICE}"))
            .or_insert(format!("127.0.0.1:{webhook_port}"));
    }
    let sandbox = Sandbox::start(Config {
        port: args.port,
        state_file: args.state_file.clone(),
        rbac: args.rbac,
        service_endpoints,
        simulate_workloads: !args.without_simulation,
        ..Config::default()
    })
    .await?;
    if !args.api_only {
        let manager = "purchase-guard-sandbox";
        // And a minimal definition of the report kind the audit writes, so that its reports
        // can be read here (on clusters, the project's own CRD is installed).
        let report_crd = match args.audit.reports {
            purchase_guard::controller::audit::ReportFormat::Openreports => {
                Some(include_str!("../examples/reports/reports.openreports.io.yaml"))
            }
            purchase_guard::controller::audit::ReportFormat::Policyreport => {
                Some(include_str!("../examples/reports/policyreports.wgpolicyk8s.io.yaml"))
            }
            purchase_guard::controller::audit::ReportFormat::None => None,
        };
        let report_crd = report_crd
            .map(serde_yaml_ng::from_str::<serde_json::Value>)
            .transpose()
            .context("examples/reports")?;
        let ours = purchase_guard::crdgen::all()
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        for value in ours.into_iter().chain(report_crd) {
            sandbox.server.apply_builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                None,
                value,
                manager,
            )?;
        }
    }
    let mut examples = 0;
    if !args.api_only && !args.without_examples {
        examples = install_examples(&sandbox)?;
    }
    sandbox.write_kubeconfig(&args.kubeconfig)?;
    // The in-process controller acts as its own user (as the chart's ServiceAccount would), not
    // as the kubeconfig's administrator: only it writes statuses and guard labels.
    let settings = Settings {
        controller_identities: vec![CONTROLLER_USER.to_string()],
        enforcement: args.enforcement,
        enforce_with: args.enforce_with,
        ..Settings::default()
    };
    let configured = settings.clone();
    let controllers = if args.api_only {
        None
    } else {
        let ca = tls::new_authority("purchase-guard sandbox CA", Duration::from_secs(10 * 365 * 24 * 3600))?;
        let serving = tls::issue(
            &ca,
            &tls::service_dns_names(WEBHOOK_SERVICE, WEBHOOK_NAMESPACE),
            Duration::from_secs(365 * 24 * 3600),
        )?;
        let mut config = kube::Config::new(sandbox.url().parse()?);
        config.auth_info.impersonate = Some(CONTROLLER_USER.to_string());
        // Every right, as the chart's ClusterRole gives what the controller needs.
        config.auth_info.impersonate_groups = Some(vec!["system:masters".to_string()]);
        let client = runtime::client::from_config(config)?;
        // The same start path as `purchase-guard run`: one replica, always the leader.
        let running = runtime::start(
            client,
            runtime::Options {
                settings,
                webhook_addr: ([127, 0, 0, 1], webhook_port).into(),
                certificates: Certificates::InMemory(serving),
                health_addr: None,
                lease: None,
                freeze_retention: args.freeze.freeze_retention,
                release_frozen: args.freeze.release_frozen,
                verification: args.verification.options(WEBHOOK_NAMESPACE),
                audit: args.audit.settings(),
                policy_prefix: "purchase-guard".into(),
            },
        )
        .await?;
        sandbox.server.apply_object(
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WEBHOOK_NAMESPACE}}),
            "purchase-guard-sandbox",
        )?;
        let service = ServiceRef {
            namespace: WEBHOOK_NAMESPACE,
            name: WEBHOOK_SERVICE,
        };
        for config in webhook::configurations(
            "purchase-guard",
            &service,
            Some(&ca.cert),
            &configured,
            &["kube-system", WEBHOOK_NAMESPACE],
        ) {
            sandbox.server.apply_object(config, "purchase-guard-sandbox")?;
        }
        for policy in webhook::policies::namespace_labels("purchase-guard", CONTROLLER_USER) {
            sandbox.server.apply_object(policy, "purchase-guard-sandbox")?;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(running.run(async {
            let _ = stopped.await;
        }));
        Some((stop, task))
    };
    let (major, minor) = purchase_guard_sandbox::KUBERNETES_VERSION;
    println!(
        "purchase-guard sandbox: Kubernetes API v{major}.{minor} serving on {}",
        sandbox.url()
    );
    match &args.state_file {
        Some(path) => println!("objects persist in {}", path.display()),
        None => println!("objects live in memory (--state-file PATH keeps them across restarts)"),
    }
    let kubeconfig = args.kubeconfig.display();
    if args.api_only {
        println!("API only: install the CRDs with `purchase-guard crds | kubectl apply -f -`");
        println!("\nkubeconfig written to {kubeconfig}; try:\n");
        println!("  export KUBECONFIG={kubeconfig}");
        println!("  kubectl get namespaces");
    } else {
        let enforcement = match args.enforcement {
            webhook::Enforcement::Deny => "deny",
            webhook::Enforcement::Warn => "warn",
            webhook::Enforcement::Dryrun => "dryrun",
        };
        println!("purchase-guard runs in it: CRDs, controllers and admission webhooks (enforcement: {enforcement})");
        if examples > 0 {
            println!("the examples are installed ({examples} objects from examples/)");
        }
        println!("\nkubeconfig written to {kubeconfig}; try:\n");
        println!("  export KUBECONFIG={kubeconfig}");
        if examples == 0 {
            println!("  kubectl apply -f examples/billable-crd/ && kubectl apply -f examples/");
        }
        println!("  kubectl get purchaseguard -A              # authority, decisions, accepted, effective");
        println!("  kubectl get customeraccount acme -o yaml  # conditions, decision in force, history");
        println!("  # acme is restricted by reseller-alpha: a new pay-per-use VM is refused (R7)");
        println!("  kubectl -n acme-dev create -f - <<'EOF'");
        println!(
            "  {{\"apiVersion\": \"compute.example.com/v1\", \"kind\": \"VirtualMachine\", \"metadata\": {{\"name\": \"vm-2\", \"labels\": {{\"purchaseguard.io/billing-mode\": \"pay-per-use\"}}}}, \"spec\": {{\"displayName\": \"more\", \"flavor\": \"c6.large\", \"cpus\": 2, \"memoryGiB\": 4, \"image\": \"debian-12\"}}}}"
        );
        println!("  EOF");
        println!("  # renaming is allowed, renewing a yearly/monthly VM is not");
        println!(
            "  kubectl -n acme-prod patch virtualmachine web-1 --type=merge -p '{{\"spec\":{{\"displayName\":\"Web\"}}}}'"
        );
        println!(
            "  kubectl -n acme-prod patch virtualmachine web-1 --type=merge -p '{{\"spec\":{{\"subscription\":{{\"renewedUntil\":\"2028-06-30\"}}}}}}'"
        );
        println!("  # acme is also frozen (R8): its pay-per-use VM and Deployment are stopped, the prepaid ones run");
        println!("  kubectl get deploy,vm -A -L purchaseguard.io/frozen");
        println!(
            "  kubectl -n acme-dev scale deployment worker --replicas=5   # refused: it stays at 0 until unfrozen"
        );
        println!("  # R3: dist-emea delegated to reseller-alpha, so it may not decide for acme");
        println!("  kubectl -n dist-emea create -f - <<'EOF'");
        println!(
            "  {{\"apiVersion\": \"purchaseguard.io/v1alpha1\", \"kind\": \"PurchaseRestriction\", \"metadata\": {{\"name\": \"acme\"}}, \"spec\": {{\"customer\": \"acme\", \"state\": \"Unrestricted\", \"reason\": \"paid\"}}}}"
        );
        println!("  EOF");
        println!("  kubectl explain purchaserestriction.spec");
    }
    println!("\nCtrl-C stops it.");
    runtime::shutdown::signal().await;
    println!("shutting down");
    if let Some((stop, task)) = controllers {
        let _ = stop.send(());
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "purchase-guard stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "purchase-guard's task failed"),
            Ok(Ok(())) => {}
        }
    }
    sandbox.shutdown().await;
    Ok(())
}
