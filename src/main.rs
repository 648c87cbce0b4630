use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod codes;
mod run;
#[cfg(feature = "sandbox")]
mod sandbox;

/// purchase-guard: restrict purchases of partner customers in Kubernetes.
#[derive(Parser)]
#[command(name = "purchase-guard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as multi-document YAML (for `kubectl apply -f -`),
    /// or write one file per CRD into a directory.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run the controllers and the admission webhooks against the cluster of the current kube
    /// context (in-cluster in a pod).
    Run(Box<run::Args>),
    /// Verification codes (R5): enrol a partner's authenticator, print a current code.
    #[command(subcommand)]
    Verification(codes::Command),
    /// Run a local Kubernetes API server (no cluster needed) and write a kubeconfig for it.
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::Args),
}

/// One glibc malloc arena per core instead of glibc's default of eight per core: with two cores,
/// the controller's peak RSS over 10,000 customers was about 3.5 MiB lower with two arenas than
/// with the default sixteen (memory freed in one arena is not reused by the others). An operator's
/// `MALLOC_ARENA_MAX` still decides. Called before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = std::ffi::c_int::try_from(cores).unwrap_or(std::ffi::c_int::MAX);
        // SAFETY: mallopt only sets a tunable of glibc's allocator; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

fn main() -> ExitCode {
    // Installed (or linked) as kubectl-purchase_guard, this binary is the kubectl plugin.
    let invoked = std::env::args_os().next().map(PathBuf::from);
    if invoked
        .as_deref()
        .and_then(|p| p.file_stem())
        .is_some_and(|name| name == "kubectl-purchase_guard")
    {
        return purchase_guard::plugin::main();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { dir } => crds(dir),
        Command::Run(args) => {
            limit_malloc_arenas();
            run::run(*args)
        }
        Command::Verification(command) => codes::run(command),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("purchase-guard: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, "what was being done: why it failed", each cause once (many
/// errors already include their source in their own message).
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn crds(dir: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use purchase_guard::crdgen;
    match dir {
        None => print!("{}", crdgen::all_yaml()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for crd in crdgen::all() {
                let path = dir.join(crdgen::file_name(&crd));
                std::fs::write(&path, crdgen::to_yaml(&crd)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    Ok(())
}
