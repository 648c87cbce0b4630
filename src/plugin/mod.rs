//! `kubectl purchase-guard`: the kubectl plugin (the `kubectl-purchase_guard` binary, or
//! `purchase-guard` run under that name). It answers from what purchase-guard wrote (the
//! CustomerAccounts' status) and judges with the policy core, as the webhooks do:
//!
//! - `status [CUSTOMER]`: authority, decision in force, since when, by whom, freeze;
//! - `why -n NAMESPACE [KIND/NAME | --verb VERB --resource RESOURCE]`: what the customer owning
//!   the namespace may do now, and which rule and decision say so;
//! - `history CUSTOMER`: the customer's last state changes;
//! - `report [-n NAMESPACE]`: the resources the audit found out of line, from its policy
//!   reports;
//! - `restrict` / `unrestrict CUSTOMER --reason ...`: write the declarative PurchaseRestriction
//!   (or print it with `--dry-run`, to commit it to Git).
//!
//! Exit codes: 0 done (for `why`, the asked operation is allowed), 1 error, 2 `why`: the asked
//! operation would be refused; `report`: a resource is out of line (a `fail` result).

mod output;
mod report;
mod status;
mod why;
mod write;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code of `why` when the operation would be refused.
pub const REFUSED: u8 = 2;

/// kubectl purchase-guard: who restricts a customer, why a request is refused, and the
/// PurchaseRestrictions that change it.
#[derive(Parser)]
#[command(name = "kubectl purchase-guard", version)]
struct Cli {
    /// Output format.
    #[arg(short = 'o', long, global = true, default_value = "table", value_parser = ["table", "json", "yaml"])]
    output: String,
    /// The kubeconfig context (default: the current one).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Act as this user, as `kubectl --as`.
    #[arg(long = "as", global = true, value_name = "USER")]
    as_user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Authority holder, decision in force, since when and by whom, freeze and retention: of
    /// one customer, or a line per customer.
    Status { customer: Option<String> },
    /// What the customer owning NAMESPACE may and may not do now, and why.
    Why(why::Args),
    /// The customer's last state changes, oldest first.
    History { customer: String },
    /// The resources out of line with their customer's state, from the audit's reports (exit
    /// code 2 when one certainly is).
    Report(report::Args),
    /// Restrict a customer's purchases (or also freeze its pay-per-use resources).
    Restrict(write::Args),
    /// Lift a customer's restriction (and unfreeze its resources).
    Unrestrict(write::Args),
}

/// Runs the plugin with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kubectl purchase-guard: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = output::Format::parse(&cli.output);
    match runtime.block_on(run(cli, format)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut text = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !text.contains(&cause) {
                    text.push_str(": ");
                    text.push_str(&cause);
                }
            }
            eprintln!("kubectl purchase-guard: {text}");
            ExitCode::FAILURE
        }
    }
}

/// An API error as the API server worded it (kubectl prints the same message).
pub(crate) fn api_error(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(status) => anyhow::anyhow!("{} ({})", status.message, status.code),
        other => other.into(),
    }
}

async fn client(context: Option<&str>, as_user: Option<&str>) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let mut config = match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(_) if context.is_none() => kube::Config::incluster().context("no kubeconfig and not in a cluster")?,
        Err(e) => return Err(e).context("cannot read the kubeconfig"),
    };
    if let Some(user) = as_user {
        config.auth_info.impersonate = Some(user.to_string());
    }
    kube::Client::try_from(config).context("cannot configure a Kubernetes client")
}

async fn run(cli: Cli, format: output::Format) -> anyhow::Result<u8> {
    let client = client(cli.context.as_deref(), cli.as_user.as_deref()).await?;
    match cli.command {
        Command::Status { customer } => status::status(&client, customer.as_deref(), format).await,
        Command::History { customer } => status::history(&client, &customer, format).await,
        Command::Why(args) => why::why(&client, &args, format).await,
        Command::Report(args) => report::report(&client, &args, format).await,
        Command::Restrict(args) => write::restrict(&client, &args, false, format).await,
        Command::Unrestrict(args) => write::restrict(&client, &args, true, format).await,
    }
}
