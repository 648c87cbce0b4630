//! `purchase-guard run`: the production entry point.

#[derive(clap::Args)]
pub struct Args {
    /// Log format: text or json.
    #[arg(long, env = "PURCHASE_GUARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
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

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    init_logging(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // The kube context as kubectl uses it (KUBECONFIG, ~/.kube/config), or in-cluster.
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot configure a Kubernetes client (KUBECONFIG or in-cluster): {e}"))?;
        purchase_guard::controller::check_crds(&client).await?;
        tracing::info!("purchase-guard controllers starting");
        purchase_guard::controller::run(client, Default::default(), crate::sandbox::shutdown_signal(), || {
            tracing::info!("caches synced")
        })
        .await?;
        tracing::info!("purchase-guard stopped");
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
