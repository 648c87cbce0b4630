//! `purchase-guard sandbox`: the local API server, for trying purchase-guard without a cluster.

use purchase_guard_sandbox::{Config, Sandbox};
use std::path::PathBuf;

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
    /// Serve the Kubernetes API alone, without purchase-guard's CRDs and controllers.
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

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start(Config {
        port: args.port,
        state_file: args.state_file.clone(),
        rbac: args.rbac,
        service_endpoints: args.service_endpoints.iter().cloned().collect(),
        ..Config::default()
    })
    .await?;
    if !args.api_only {
        let manager = "purchase-guard-sandbox";
        for crd in purchase_guard::crdgen::all() {
            let value = serde_json::to_value(&crd)?;
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
    sandbox.write_kubeconfig(&args.kubeconfig)?;
    let controllers = if args.api_only {
        None
    } else {
        let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse()?))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(purchase_guard::controller::run(
            client,
            Default::default(),
            // A single replica: always the leader.
            tokio::sync::watch::channel(true).1,
            async {
                let _ = stopped.await;
            },
            |_| {},
        ));
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
    if args.api_only {
        println!("API only: install the CRDs with `purchase-guard crds | kubectl apply -f -`");
    } else {
        println!(
            "purchase-guard's CRDs are installed and its controllers run (the admission webhooks are not part of the sandbox yet)"
        );
    }
    let kubeconfig = args.kubeconfig.display();
    println!("\nkubeconfig written to {kubeconfig}; try:\n");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  kubectl get namespaces");
    println!("  kubectl apply -f examples/billable-crd/ && kubectl apply -f examples/");
    println!("  kubectl get purchaseguard -A");
    println!("  kubectl explain purchaserestriction.spec");
    println!("\nCtrl-C stops it.");
    shutdown_signal().await;
    println!("shutting down");
    if let Some((stop, task)) = controllers {
        let _ = stop.send(());
        let _ = task.await;
    }
    sandbox.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
