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
