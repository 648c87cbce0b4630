//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod platform;
pub mod population;
pub mod rng;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A port on 127.0.0.1 nobody listens on now, never handed out before in this process: a
/// port handed out and not bound yet must not be handed out again (two servers of one test
/// would race for it).
///
/// The port is taken from below (or above) the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`): a port from inside it can become the local end of any
/// outgoing connection (a kubectl or kube client talking to the sandbox) between the moment
/// it is handed out and the moment the server binds it, and the server then fails with
/// "Address already in use".
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32768, 60999));
    let outside: Vec<std::ops::Range<u16>> = [10_000..low, high.saturating_add(1)..u16::MAX]
        .into_iter()
        .filter(|r| r.len() >= 1000)
        .collect();
    assert!(
        !outside.is_empty(),
        "no room outside the ephemeral port range {low}-{high} for test servers"
    );
    let size: usize = outside.iter().map(|r| r.len()).sum();
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    // A start that differs between the test processes that may run at once.
    let mut step = (std::process::id() as usize).wrapping_mul(7919) + given.len();
    for _ in 0..size {
        step = (step + 1) % size;
        let mut index = step;
        let port = outside
            .iter()
            .find_map(|r| {
                if index < r.len() {
                    Some(r.start + index as u16)
                } else {
                    index -= r.len();
                    None
                }
            })
            .expect("an index inside the ranges");
        if given.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.push(port);
        return port;
    }
    panic!("no free port outside the ephemeral range {low}-{high}");
}

/// Runs the real kubectl with `kubeconfig`, feeding `stdin`; success and stdout+stderr.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writes stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("kubectl ends");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `purchase-guard ARGS` with `kubeconfig`, which must succeed; its standard output.
pub fn purchase_guard(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_purchase-guard"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("purchase-guard runs");
    assert!(
        out.status.success(),
        "purchase-guard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `purchase-guard verification enroll` of the examples' distributor dist-emea (its Secret in
/// namespace dist-emea), with `extra` arguments; its standard output.
pub fn enroll_dist_emea(kubeconfig: &Path, extra: &[&str]) -> String {
    let mut args = vec!["verification", "enroll", "--partner", "dist-emea", "-n", "dist-emea"];
    args.extend_from_slice(extra);
    purchase_guard(kubeconfig, &args)
}

/// Applies the CRDs, waits until they are established, then applies the example `files`
/// (names in examples/), in order.
pub fn install_examples(kubeconfig: &Path, files: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let ok = |args: &[&str]| {
        let (ok, out) = kubectl(kubeconfig, args, None);
        assert!(ok, "kubectl {args:?}: {out}");
    };
    ok(&["apply", "-f", &format!("{root}/crds")]);
    ok(&["wait", "--for=condition=established", "crd", "--all", "--timeout=30s"]);
    for f in files {
        ok(&["apply", "-f", &format!("{root}/examples/{f}")]);
    }
}

/// A sandbox without RBAC or webhooks, with the CRDs and the example `files`, and a kubeconfig
/// for it named after `test`.
pub async fn examples_sandbox(test: &str, files: &[&str]) -> (purchase_guard_sandbox::Sandbox, std::path::PathBuf) {
    let sandbox = purchase_guard_sandbox::Sandbox::start(purchase_guard_sandbox::Config::default())
        .await
        .expect("sandbox");
    let dir = std::env::temp_dir().join(format!("purchase-guard-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    install_examples(&kubeconfig, files);
    (sandbox, kubeconfig)
}

/// A kube-rs client of `sandbox`.
pub fn sandbox_client(sandbox: &purchase_guard_sandbox::Sandbox) -> kube::Client {
    kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client")
}

/// The caches of a replica that does not lead (as every replica but one): the controllers
/// run with their watches but reconcile nothing. The synced caches, and what stops them.
pub async fn follower_caches(
    client: kube::Client,
) -> (purchase_guard::index::Stores, tokio::sync::oneshot::Sender<()>) {
    let (stores_tx, stores_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(purchase_guard::controller::run(
        client,
        std::sync::Arc::new(purchase_guard::controller::Metrics::default()),
        Default::default(),
        tokio::sync::watch::channel(false).1,
        async move {
            let _ = stopped.await;
        },
        move |stores| {
            let _ = stores_tx.send(stores);
        },
    ));
    let stores = tokio::time::timeout(std::time::Duration::from_secs(20), stores_rx)
        .await
        .expect("the caches sync")
        .expect("stores");
    (stores, stop)
}

/// A RoleBinding of the ClusterRole `role` to `user` in `namespace`, as a YAML document.
pub fn binding(namespace: &str, role: &str, user: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {user}\n  namespace: {namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n---\n"
    )
}

/// The Service the webhook configurations of the tests name.
pub const WEBHOOK_SERVICE: &str = "purchase-guard/purchase-guard-webhook";

/// A sandbox that reaches [`WEBHOOK_SERVICE`] at 127.0.0.1:`webhook_port`, and a kubeconfig
/// for it named after `test`.
pub async fn webhook_sandbox(
    rbac: bool,
    webhook_port: u16,
    test: &str,
) -> (purchase_guard_sandbox::Sandbox, std::path::PathBuf) {
    let sandbox = purchase_guard_sandbox::Sandbox::start(purchase_guard_sandbox::Config {
        rbac,
        service_endpoints: [(WEBHOOK_SERVICE.to_string(), format!("127.0.0.1:{webhook_port}"))].into(),
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let kubeconfig = std::env::temp_dir().join(format!("pg-{test}-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    (sandbox, kubeconfig)
}

/// A `purchase-guard run` process, killed when dropped. Its log (info level) goes to a file
/// that is printed when the test fails, and removed.
/// Boxed: suites keep several replicas in enums.
pub struct Run(Box<Process>);

struct Process {
    child: std::process::Child,
    health_port: u16,
    log: std::path::PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "--- the last lines of {} ---\n{}",
                self.0.log.display(),
                tail.join("\n")
            );
        }
        let _ = std::fs::remove_file(&self.0.log);
    }
}

impl Run {
    /// A single replica serving webhooks on 127.0.0.1:`webhook_port`, its certificate Secret
    /// in namespace purchase-guard; `extra` arguments follow.
    pub fn start(kubeconfig: &Path, webhook_port: u16, extra: &[&str]) -> Run {
        let health_port = free_port();
        let mut args: Vec<String> = [
            "run",
            "--leader-election",
            "false",
            "--cert-namespace",
            "purchase-guard",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.push(format!("--health-addr=127.0.0.1:{health_port}"));
        args.push(format!("--webhook-addr=127.0.0.1:{webhook_port}"));
        args.extend(extra.iter().map(|a| a.to_string()));
        Run::spawn(kubeconfig, &args, health_port, "purchase-guard-test")
    }

    /// `purchase-guard ARGS` as the pod `pod_name` would run it; `health_port` is where its
    /// --health-addr listens.
    pub fn spawn(kubeconfig: &Path, args: &[String], health_port: u16, pod_name: &str) -> Run {
        let log = std::env::temp_dir().join(format!("pg-{pod_name}-{}-{health_port}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_purchase-guard"))
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env(
                "RUST_LOG",
                "info,purchase_guard=debug,kube_runtime=warn,kube_client=warn",
            )
            .env("POD_NAME", pod_name)
            .env("POD_NAMESPACE", "purchase-guard")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("purchase-guard runs");
        Run(Box::new(Process {
            child,
            health_port,
            log,
        }))
    }

    /// The replica's /metrics, as text.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.0.health_port)) {
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
        }
        out
    }

    /// Waits until /readyz answers 200 (caches synced).
    pub fn wait_ready(self) -> Run {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.0.health_port)).is_ok_and(|mut s| {
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut out = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut out);
                out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
            });
            if ready {
                return self;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "purchase-guard run did not become ready"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
