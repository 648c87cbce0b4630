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

/// The certificate the webhook serves, verified against `ca` for the Service's name.
async fn served_leaf(port: u16, ca: &str) -> Vec<u8> {
    let connector = tokio_rustls::TlsConnector::from(tls::client_config(ca).expect("a CA bundle"));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let name = ServerName::try_from("purchase-guard-webhook.purchase-guard.svc").expect("a DNS name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("the served certificate verifies");
    tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x"}]}}}
    }))
    .expect("a Deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_without_failed_admissions() {
    let webhook_port = free_port();
    let (sandbox, kubeconfig) = webhook_sandbox(false, webhook_port, "certs").await;
    let ok = |args: &[&str], stdin: Option<&str>| {
        let (ok, text) = kubectl(&kubeconfig, args, stdin);
        assert!(ok, "{args:?}: {text}");
        text
    };
    ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/crds")], None);
    ok(&["create", "namespace", "purchase-guard"], None);
    ok(&["create", "namespace", "shop"], None);
    ok(&["apply", "-f", "-"], Some(CONFIGURATION));

    // Serving certificates valid for 6 s: renewed when 2 s are left.
    let process = Run::start(
        &kubeconfig,
        webhook_port,
        &["--cert-validity", "6s", "--cert-check-interval", "250ms"],
    );

    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("URL"))).expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "purchase-guard");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let tls_crt = |s: &Secret| {
        s.data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
    };
    // From no Secret to a working webhook.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bundle = ok(
            &[
                "get",
                "validatingwebhookconfiguration",
                "purchase-guard",
                "-o",
                "jsonpath={.webhooks[0].clientConfig.caBundle}",
            ],
            None,
        );
        if !bundle.is_empty()
            && deployments
                .create(&PostParams::default(), &deployment("first"))
                .await
                .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook did not start working");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Admissions for 12 s: several renewals happen; every admission succeeds.
    let mut seen = BTreeSet::new();
    let mut admitted = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        let name = format!("d-{admitted}");
        if let Err(e) = deployments.create(&PostParams::default(), &deployment(&name)).await {
            panic!("admission {admitted} failed after {:?}: {e}", started.elapsed());
        }
        admitted += 1;
        if let Some(cert) = secrets
            .get_opt("purchase-guard-webhook-tls")
            .await
            .expect("reads")
            .as_ref()
            .and_then(tls_crt)
        {
            seen.insert(cert);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.len() >= 3,
        "expected at least two renewals in 12 s, saw {} certificates",
        seen.len()
    );
    assert!(admitted > 100, "only {admitted} admissions");

    // The served certificate follows the Secret and verifies against its CA bundle.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let secret = secrets.get("purchase-guard-webhook-tls").await.expect("the Secret");
        let data = secret.data.clone().unwrap_or_default();
        let ca = String::from_utf8_lossy(&data["ca.crt"].0).to_string();
        let stored = CertificateDer::pem_slice_iter(&data["tls.crt"].0)
            .next()
            .expect("a certificate")
            .expect("PEM")
            .to_vec();
        if served_leaf(webhook_port, &ca).await == stored {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the served certificate does not follow the Secret"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{admitted} admissions across {} serving certificates, none failed",
        seen.len()
    );
    drop(process);
    sandbox.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
}
