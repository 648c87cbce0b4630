//! ServiceAccount tokens (TokenRequest), their review (TokenReview), requests made with them
//! (bearer tokens, authorized as the ServiceAccount with `--rbac`), `SelfSubjectReview`, and
//! CertificateSigningRequests: the requester recorded by the server, approval through the
//! `approval` subresource. kube-rs clients throughout.

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenReview};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use purchase_guard_sandbox::{Config, Sandbox};
use serde_json::json;

fn client_with(sandbox: &Sandbox, edit: impl FnOnce(&mut kube::Config)) -> kube::Client {
    let mut config = kube::Config::new(sandbox.url().parse().expect("url"));
    edit(&mut config);
    kube::Client::try_from(config).expect("client")
}

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_authenticate_and_certificate_requests_are_approved() {
    let sandbox = Sandbox::start(Config {
        rbac: true,
        ..Config::default()
    })
    .await
    .expect("sandbox");
    let admin = client_with(&sandbox, |_| {});
    let pp = PostParams::default();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    namespaces
        .create(&pp, &from(json!({"metadata": {"name": "team"}})))
        .await
        .expect("namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "team");
    accounts
        .create(&pp, &from(json!({"metadata": {"name": "bot"}})))
        .await
        .expect("service account");
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(admin.clone(), "team");
    roles
        .create(&pp, &from(json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})))
        .await
        .expect("role");
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(admin.clone(), "team");
    bindings
        .create(
            &pp,
            &from(json!({"metadata": {"name": "bot-reads"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}]})),
        )
        .await
        .expect("binding");

    // A token for the ServiceAccount; too short a lifetime is refused as kube-apiserver does.
    let short: TokenRequest = from(json!({"spec": {"audiences": [], "expirationSeconds": 60}}));
    let refused = accounts
        .create_token_request("bot", &pp, &short)
        .await
        .expect_err("too short");
    assert!(
        refused
            .to_string()
            .contains("may not specify a duration less than 10 minutes"),
        "{refused}"
    );
    let asked: TokenRequest = from(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}));
    let issued = accounts.create_token_request("bot", &pp, &asked).await.expect("token");
    let token = issued.status.expect("status").token;
    let missing = accounts
        .create_token_request("nobody", &pp, &asked)
        .await
        .expect_err("no such account");
    assert!(missing.to_string().contains("not found"), "{missing}");

    // kubectl create token (a protobuf TokenRequest) gets one too.
    let kubeconfig = std::env::temp_dir().join(format!("pg-authn-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let out = std::process::Command::new("kubectl")
        .args(["create", "token", "bot", "-n", "team", "--duration=20m"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let from_kubectl = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _ = std::fs::remove_file(&kubeconfig);

    // TokenReview says whose it is.
    let reviews: Api<TokenReview> = Api::all(admin.clone());
    let review = reviews
        .create(&pp, &from(json!({"spec": {"token": from_kubectl}})))
        .await
        .expect("review");
    assert_eq!(
        review.status.and_then(|s| s.authenticated),
        Some(true),
        "kubectl's token"
    );
    let review = reviews
        .create(&pp, &from(json!({"spec": {"token": token}})))
        .await
        .expect("review");
    let status = review.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.expect("user");
    assert_eq!(user.username.as_deref(), Some("system:serviceaccount:team:bot"));
    assert!(
        user.groups
            .unwrap_or_default()
            .contains(&"system:serviceaccounts:team".to_string())
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    let review = reviews
        .create(&pp, &from(json!({"spec": {"token": forged}})))
        .await
        .expect("review");
    assert_eq!(review.status.expect("status").authenticated, Some(false));

    // Requests with the token act as the ServiceAccount: RBAC applies to it.
    let bot = client_with(&sandbox, |c| c.auth_info.token = Some(token.clone().into()));
    let whoami: Api<SelfSubjectReview> = Api::all(bot.clone());
    let me = whoami
        .create(&pp, &from(json!({"metadata": {}})))
        .await
        .expect("whoami");
    assert_eq!(
        me.status.and_then(|s| s.user_info).and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:team:bot")
    );
    let maps: Api<ConfigMap> = Api::namespaced(bot.clone(), "team");
    maps.list(&ListParams::default()).await.expect("allowed to list");
    let denied = maps
        .create(&pp, &from(json!({"metadata": {"name": "x"}})))
        .await
        .expect_err("not allowed to create");
    assert!(
        denied
            .to_string()
            .contains("User \"system:serviceaccount:team:bot\" cannot create resource \"configmaps\""),
        "{denied}"
    );
    let stranger = client_with(&sandbox, |c| c.auth_info.token = Some(forged.clone().into()));
    let unauthorized = Api::<ConfigMap>::namespaced(stranger, "team")
        .list(&ListParams::default())
        .await
        .expect_err("a forged token");
    assert!(unauthorized.to_string().contains("Unauthorized"), "{unauthorized}");

    // A certificate signing request records who asked, whatever it says; approval goes
    // through the approval subresource.
    let alice = client_with(&sandbox, |c| {
        c.auth_info.impersonate = Some("alice".into());
        c.auth_info.impersonate_groups = Some(vec!["system:masters".into()]);
    });
    let requests: Api<CertificateSigningRequest> = Api::all(alice);
    let created = requests
        .create(&pp, &from(json!({"metadata": {"name": "alice-client"},
            "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "signerName": "kubernetes.io/kube-apiserver-client",
                     "usages": ["client auth"], "username": "mallory"}})))
        .await
        .expect("csr");
    assert_eq!(created.spec.username.as_deref(), Some("alice"));
    let approvals: Api<CertificateSigningRequest> = Api::all(admin);
    approvals
        .patch_approval(
            "alice-client",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Approved", "status": "True",
                "reason": "Trusted", "message": "approved in a test", "lastUpdateTime": "2026-01-01T00:00:00Z"}]}})),
        )
        .await
        .expect("approve");
    let approved = approvals.get_approval("alice-client").await.expect("get");
    let conditions = approved.status.and_then(|s| s.conditions).unwrap_or_default();
    assert_eq!(conditions.len(), 1);
    assert_eq!(
        (conditions[0].type_.as_str(), conditions[0].status.as_str()),
        ("Approved", "True")
    );
    sandbox.shutdown().await;
}

/// With the simulation, kube-controller-manager's signer issues the certificate of an approved
/// request of a `kubernetes.io/` signer, from the cluster CA of `kube-root-ca.crt`; a request
/// of another signer waits for its own signer, and one that does not parse fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_requests_are_signed_by_the_cluster_ca() {
    use base64::Engine;
    let sandbox = Sandbox::start(Config {
        simulate_workloads: true,
        ..Config::default()
    })
    .await
    .expect("sandbox");
    let client = client_with(&sandbox, |_| {});
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "team");
    let request = params.serialize_request(&key).expect("request").pem().expect("pem");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let pp = PostParams::default();
    for (name, signer, request) in [
        ("alice", "kubernetes.io/kube-apiserver-client", encoded.as_str()),
        ("custom", "example.com/signer", encoded.as_str()),
        ("garbled", "kubernetes.io/kube-apiserver-client", "bm90IGEgcmVxdWVzdA=="),
    ] {
        csrs.create(
            &pp,
            &from(
                json!({"metadata": {"name": name}, "spec": {"request": request, "signerName": signer,
                "usages": ["client auth", "digital signature"], "expirationSeconds": 3600}}),
            ),
        )
        .await
        .expect("create");
        let approval = json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "Test", "message": "ok"}]}});
        csrs.patch_approval(name, &PatchParams::default(), &Patch::Merge(&approval))
            .await
            .expect("approve");
    }

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (alice, garbled) = loop {
        let alice = csrs.get("alice").await.expect("get");
        let garbled = csrs.get("garbled").await.expect("get");
        let failed = |c: &CertificateSigningRequest| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed"))
        };
        if alice.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some() && failed(&garbled) {
            break (alice, garbled);
        }
        assert!(std::time::Instant::now() < deadline, "not signed: {alice:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let pem = alice.status.and_then(|s| s.certificate).expect("certificate").0;
    let (_, der) = x509_parser::pem::parse_x509_pem(&pem).expect("a PEM certificate");
    let cert = der.parse_x509().expect("a certificate");
    assert_eq!(cert.subject().to_string(), "CN=alice, O=team");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let root = maps.get("kube-root-ca.crt").await.expect("kube-root-ca.crt");
    let ca_pem = root.data.and_then(|d| d.get("ca.crt").cloned()).expect("ca.crt");
    let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).expect("the CA PEM");
    let ca = ca_der.parse_x509().expect("the CA");
    assert_eq!(cert.issuer(), ca.subject());
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the cluster CA");
    let eku = cert
        .extended_key_usage()
        .expect("extension")
        .expect("extended key usage");
    assert!(eku.value.client_auth && !eku.value.server_auth);
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(
        lifetime,
        3600 + 300,
        "the duration asked, from five minutes before signing"
    );

    let failed = garbled.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        failed
            .iter()
            .any(|c| c.type_ == "Failed" && c.reason.as_deref() == Some("SignerValidationFailure")),
        "{failed:?}"
    );
    let custom = csrs.get("custom").await.expect("get");
    assert!(
        custom.status.and_then(|s| s.certificate).is_none(),
        "another signer's request waits"
    );
    sandbox.shutdown().await;
}
