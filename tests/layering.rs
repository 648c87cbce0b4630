//! The layering, checked by the build rather than by convention (docs/architecture.md):
//!
//! - the policy core (`crates/policy`) depends on nothing that does I/O, runs async code or
//!   reads a clock;
//! - no product code but the `sandbox` command imports the sandbox, and the sandbox imports no
//!   product code;
//! - the admission path never calls the API server itself: in linearizable mode it waits for
//!   `index::freshness`, whose only calls are metadata-only quorum reads (no writes);
//! - lower layers never import higher ones (index → controller/webhook/runtime, controller ↔
//!   webhook).
//!
//! Each check reads the manifests and sources as text and names the file and line it objects
//! to.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names of the crates in a manifest's `[dependencies]` (not dev or build dependencies).
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut in_section = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
            continue;
        }
        if in_section && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            names.push(name.to_string());
        }
    }
    names
}

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `file:line: text` for each line of `files` containing one of `forbidden` (comments aside).
fn offending(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for token in forbidden {
                if code.contains(token) {
                    let shown = file.strip_prefix(root()).unwrap_or(file).display();
                    found.push(format!("{shown}:{}: `{token}` in: {}", n + 1, line.trim()));
                }
            }
        }
    }
    found
}

fn assert_none(what: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
}

#[test]
fn the_policy_core_does_no_io_and_reads_no_clock() {
    // totp-rs: the HMAC one-time codes of R5, computed for a time given as a parameter.
    let allowed = ["serde", "serde_json", "thiserror", "totp-rs"];
    let deps = dependencies(&root().join("crates/policy/Cargo.toml"));
    let extra: Vec<&String> = deps.iter().filter(|d| !allowed.contains(&d.as_str())).collect();
    assert!(
        extra.is_empty(),
        "crates/policy may depend only on {allowed:?} (pure data and errors); it depends on {extra:?}"
    );
    let files = sources(&root().join("crates/policy/src"));
    assert!(!files.is_empty(), "the policy core's sources are found");
    assert_none(
        "the policy core must not do I/O, run async code or read the clock",
        offending(
            &files,
            &[
                "std::fs",
                "std::net",
                "std::io",
                "std::env",
                "std::process",
                "std::thread",
                "SystemTime",
                "Instant",
                "async ",
                ".await",
                "tokio",
                "kube::",
                "k8s_openapi",
            ],
        ),
    );
}

#[test]
fn only_the_sandbox_command_imports_the_sandbox() {
    let product: Vec<PathBuf> = sources(&root().join("src"))
        .into_iter()
        .filter(|f| !f.ends_with("src/sandbox.rs"))
        .collect();
    assert!(product.len() > 20, "the product's sources are found");
    assert_none(
        "product code must not import the sandbox (only the feature-gated `sandbox` command does)",
        offending(&product, &["purchase_guard_sandbox"]),
    );
    let main = std::fs::read_to_string(root().join("src/main.rs")).expect("src/main.rs");
    assert!(
        main.contains("#[cfg(feature = \"sandbox\")]\nmod sandbox;"),
        "src/main.rs compiles the sandbox command only with the `sandbox` feature"
    );
}

#[test]
fn the_sandbox_imports_no_product_code() {
    let deps = dependencies(&root().join("crates/sandbox/Cargo.toml"));
    let product: Vec<&String> = deps
        .iter()
        .filter(|d| matches!(d.as_str(), "purchase-guard" | "purchase-guard-policy"))
        .collect();
    assert!(
        product.is_empty(),
        "crates/sandbox depends on product crates: {product:?}"
    );
    assert_none(
        "the sandbox must not import product code",
        offending(
            &sources(&root().join("crates/sandbox/src")),
            &["purchase_guard::", "purchase_guard_policy"],
        ),
    );
}

#[test]
fn the_admission_path_never_calls_the_api_server() {
    let admission: Vec<PathBuf> = [
        "mod.rs",
        "settings.rs",
        "decisions.rs",
        "audit.rs",
        "purchases.rs",
        "review.rs",
        "server.rs",
        "metrics.rs",
        "verification.rs",
    ]
    .iter()
    .map(|f| root().join("src/webhook").join(f))
    .collect();
    assert_none(
        "the admission path judges from the caches; it must not call the API server",
        offending(
            &admission,
            &[
                "Api<",
                "Api::",
                "kube::Client",
                "Client::",
                "kube::api",
                "reqwest",
                "crate::controller",
            ],
        ),
    );
}

#[test]
fn the_freshness_check_only_reads_metadata() {
    let file = root().join("src/index/freshness.rs");
    let text = std::fs::read_to_string(&file).expect("src/index/freshness.rs");
    assert!(
        text.contains(".list_metadata("),
        "the quorum read is a metadata-only list"
    );
    assert_none(
        "the freshness check reads metadata only and writes nothing",
        offending(
            &[file],
            &[
                ".list(",
                ".create(",
                ".patch(",
                ".replace(",
                ".delete(",
                "patch_status",
                "get_opt(",
                "reqwest",
            ],
        ),
    );
}

#[test]
fn lower_layers_do_not_import_higher_ones() {
    let dir = |d: &str| sources(&root().join("src").join(d));
    assert_none(
        "the API types import nothing of the layers above them",
        offending(
            &dir("api"),
            &["crate::index", "crate::controller", "crate::webhook", "crate::runtime"],
        ),
    );
    assert_none(
        "the index layer imports neither the controllers, the webhooks nor the runtime",
        offending(
            &dir("index"),
            &["crate::controller", "crate::webhook", "crate::runtime"],
        ),
    );
    assert_none(
        "the controllers import neither the webhooks nor the runtime",
        offending(&dir("controller"), &["crate::webhook", "crate::runtime"]),
    );
    assert_none(
        "verification (R5) imports neither the controllers, the webhooks nor the runtime",
        offending(
            &[root().join("src/verification.rs")],
            &["crate::controller", "crate::webhook", "crate::runtime"],
        ),
    );
    assert_none(
        "the webhooks import neither the controllers nor the runtime",
        offending(&dir("webhook"), &["crate::controller", "crate::runtime"]),
    );
}
