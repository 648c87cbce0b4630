//! What the kubectl test suites share: the kubectl binaries and running them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The kubectl binaries: the one on the PATH and the versioned ones installed beside it.
pub fn kubectl(version: Option<&str>) -> PathBuf {
    let which = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("sh runs");
    let default = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    assert!(default.is_file(), "kubectl is required on the PATH for these tests");
    match version {
        None => PathBuf::from("kubectl"),
        Some(v) => {
            let path = default.with_file_name(format!("kubectl.{v}"));
            assert!(path.is_file(), "{} is required for these tests", path.display());
            path
        }
    }
}

pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo())
            .output()
            .unwrap_or_else(|e| panic!("{} cannot run: {e}", self.bin.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{} {args:?} failed:\n{out}\n{err}", self.bin.display());
        out
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(
            !ok,
            "{} {args:?} succeeded, expected a failure:\n{out}",
            self.bin.display()
        );
        err
    }
}

impl Kubectl {
    /// `kubectl ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl prints JSON")
    }
}

/// The field causes of a 422 refusal, as `field: message` lines.
pub fn field_causes(e: kube::Error) -> Vec<String> {
    match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.details
                .expect("a refusal names its fields")
                .causes
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect()
        }
        other => panic!("not refused: {other}"),
    }
}
