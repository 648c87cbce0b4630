//! Self-managed certificates: from an empty namespace (no Secret) to a working webhook, then
//! renewals of the serving certificate while admissions keep flowing, none failing across a
//! switch, and the served certificate following the Secret.

mod support;
use support::{Run, free_port, kubectl, webhook_sandbox};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use purchase_guard::webhook::tls;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const CONFIGURATION: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: purchase-guard
webhooks:
- name: purchases.purchaseguard.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    service: {namespace: purchase-guard, name: purchase-guard-webhook, path: /validate/purchases}
  rules:
  - operations: ["CREATE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["deployments"]
"#;

/// The certificate the webhook serves, verified against `ca` for the Service's name; None while
/// nothing listens on `port`.
async fn served_leaf(port: u16, ca: &str) -> Option<Vec<u8>> {
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(ca).expect("a CA bundle"));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let name = ServerName::try_from("purchase-guard-webhook.purchase-guard.svc").expect("a DNS name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("the served certificate verifies");
    Some(tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec())
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x"}]}}}
    }))
    .expect("a Deployment")
}

const SECRET: &str = "purchase-guard-webhook-tls";

/// A sandbox calling the purchase webhook on `webhook_port` for Deployments in "shop".
struct Fixture {
    sandbox: purchase_guard_sandbox::Sandbox,
    kubeconfig: std::path::PathBuf,
    webhook_port: u16,
    secrets: Api<Secret>,
    deployments: Api<Deployment>,
    created: usize,
}

impl Fixture {
    async fn new(test: &str) -> Fixture {
        let webhook_port = free_port();
        let (sandbox, kubeconfig) = webhook_sandbox(false, webhook_port, test).await;
        for (args, stdin) in [
            (vec!["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/crds")], None),
            (vec!["create", "namespace", "purchase-guard"], None),
            (vec!["create", "namespace", "shop"], None),
            (vec!["apply", "-f", "-"], Some(CONFIGURATION)),
        ] {
            let (ok, text) = kubectl(&kubeconfig, &args, stdin);
            assert!(ok, "{args:?}: {text}");
        }
        let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("URL"))).expect("client");
        Fixture {
            sandbox,
            kubeconfig,
            webhook_port,
            secrets: Api::namespaced(client.clone(), "purchase-guard"),
            deployments: Api::namespaced(client, "shop"),
            created: 0,
        }
    }

    async fn admit(&mut self) -> Result<(), kube::Error> {
        self.created += 1;
        let name = format!("d-{}", self.created);
        self.deployments
            .create(&PostParams::default(), &deployment(&name))
            .await
            .map(|_| ())
    }

    /// Waits until the caBundle is written and an admission succeeds.
    async fn wait_working(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, bundle) = kubectl(
                &self.kubeconfig,
                &[
                    "get",
                    "validatingwebhookconfiguration",
                    "purchase-guard",
                    "-o",
                    "jsonpath={.webhooks[0].clientConfig.caBundle}",
                ],
                None,
            );
            if !bundle.is_empty() && self.admit().await.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "the webhook did not start working");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Secret's entry `key`, if present.
    async fn secret_entry(&self, key: &str) -> Option<String> {
        let secret = self.secrets.get_opt(SECRET).await.expect("reads")?;
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
    }

    /// Admits for `period`, every admission required to succeed; the distinct values of the
    /// Secret's `key` seen meanwhile, and the number of admissions.
    async fn admit_for(&mut self, period: Duration, key: &str) -> (BTreeSet<String>, usize) {
        let mut seen = BTreeSet::new();
        let mut admitted = 0;
        let started = Instant::now();
        while started.elapsed() < period {
            if let Err(e) = self.admit().await {
                panic!("admission {admitted} failed after {:?}: {e}", started.elapsed());
            }
            admitted += 1;
            seen.extend(self.secret_entry(key).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (seen, admitted)
    }

    /// Waits until the webhook on `port` serves the Secret's certificate, verified against the
    /// Secret's CA bundle.
    async fn wait_serving_the_secret(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ca = self.secret_entry("ca.crt").await.expect("ca.crt");
            let cert = self.secret_entry("tls.crt").await.expect("tls.crt");
            let stored = CertificateDer::pem_slice_iter(cert.as_bytes())
                .next()
                .expect("a certificate")
                .expect("PEM")
                .to_vec();
            if served_leaf(port, &ca).await == Some(stored) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the served certificate does not follow the Secret"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn shutdown(self) {
        self.sandbox.shutdown().await;
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_without_failed_admissions() {
    let mut f = Fixture::new("certs").await;
    // Serving certificates valid for 6 s: renewed when 2 s are left.
    let process = Run::start(
        &f.kubeconfig,
        f.webhook_port,
        &["--cert-validity", "6s", "--cert-check-interval", "250ms"],
    );
    // From no Secret to a working webhook.
    f.wait_working().await;
    // Admissions for 12 s: several renewals happen; every admission succeeds.
    let (seen, admitted) = f.admit_for(Duration::from_secs(12), "tls.crt").await;
    assert!(
        seen.len() >= 3,
        "expected at least two renewals in 12 s, saw {} certificates",
        seen.len()
    );
    assert!(admitted > 100, "only {admitted} admissions");
    f.wait_serving_the_secret(f.webhook_port).await;
    eprintln!(
        "{admitted} admissions across {} serving certificates, none failed",
        seen.len()
    );
    drop(process);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_without_failed_admissions() {
    let mut f = Fixture::new("ca-rotation").await;
    // A CA valid for 8 s is replaced when it would expire before a 3 s serving certificate.
    let process = Run::start(
        &f.kubeconfig,
        f.webhook_port,
        &[
            "--ca-validity",
            "8s",
            "--cert-validity",
            "3s",
            "--cert-check-interval",
            "250ms",
        ],
    );
    f.wait_working().await;
    let (bundles, admitted) = f.admit_for(Duration::from_secs(14), "ca.crt").await;
    let cas: BTreeSet<String> = bundles
        .iter()
        .flat_map(|b| b.split_inclusive("-----END CERTIFICATE-----\n").map(str::to_string))
        .collect();
    assert!(cas.len() >= 2, "expected a CA rotation in 14 s, saw {} CAs", cas.len());
    assert!(
        bundles.iter().any(|b| b.matches("BEGIN CERTIFICATE").count() >= 2),
        "the old CA stays trusted next to the new one for a while"
    );
    f.wait_serving_the_secret(f.webhook_port).await;
    eprintln!("{admitted} admissions across {} CAs, none failed", cas.len());
    drop(process);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_on_one_secret() {
    let mut f = Fixture::new("agree").await;
    // Two replicas start at once with no Secret: one creates it, the other adopts it.
    let second_port = free_port();
    let first = Run::start(&f.kubeconfig, f.webhook_port, &["--cert-check-interval", "250ms"]);
    let second = Run::start(&f.kubeconfig, second_port, &["--cert-check-interval", "250ms"]);
    f.wait_working().await;
    f.wait_serving_the_secret(f.webhook_port).await;
    f.wait_serving_the_secret(second_port).await;
    drop((first, second));
    f.shutdown().await;
}
