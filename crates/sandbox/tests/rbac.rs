//! `--rbac`: identities from kubectl's `--as`/`--as-group`, Roles and bindings evaluated like
//! kube-apiserver's RBAC authorizer, the real 403 message, `kubectl auth can-i`.

mod support;

use purchase_guard_sandbox::{Config, Sandbox};
use std::process::Command;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// kubectl's output of a command that must succeed.
fn succeeds(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let (ok, text) = kubectl(kubeconfig, args);
    assert!(ok, "{args:?}: {text}");
    text
}

/// kubectl's output of a command that must fail.
fn refused(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let (ok, text) = kubectl(kubeconfig, args);
    assert!(!ok, "{args:?} succeeded: {text}");
    text
}

/// A sandbox authorizing with RBAC, and a kubeconfig for it (named after `tag`).
async fn rbac_sandbox(tag: &str) -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::start(Config {
        rbac: true,
        ..Config::default()
    })
    .await
    .expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-{tag}-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    (sandbox, kubeconfig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_bindings_and_can_i() {
    let (sandbox, kubeconfig) = rbac_sandbox("rbac").await;
    let ok = |args: &[&str]| succeeds(&kubeconfig, args);
    let fails = |args: &[&str]| refused(&kubeconfig, args);
    // The administrator (no --as) sets things up.
    for ns in ["team-a", "team-b"] {
        ok(&["create", "namespace", ns]);
    }
    ok(&[
        "create",
        "role",
        "editor",
        "-n",
        "team-a",
        "--verb=create,get,list",
        "--resource=configmaps",
    ]);
    ok(&[
        "create",
        "rolebinding",
        "alice-editor",
        "-n",
        "team-a",
        "--role=editor",
        "--user=alice",
    ]);

    // A user bound to a Role in team-a can create there, and gets the real 403 in team-b.
    ok(&[
        "--as",
        "alice",
        "create",
        "configmap",
        "mine",
        "-n",
        "team-a",
        "--from-literal=a=1",
    ]);
    let denied = fails(&[
        "--as",
        "alice",
        "create",
        "configmap",
        "mine",
        "-n",
        "team-b",
        "--from-literal=a=1",
    ]);
    assert!(
        denied.contains(r#"configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "team-b""#),
        "{denied}"
    );
    let denied = fails(&["--as", "alice", "delete", "configmap", "mine", "-n", "team-a"]);
    assert!(
        denied.contains(r#"configmaps "mine" is forbidden: User "alice" cannot delete resource "configmaps""#),
        "{denied}"
    );
    assert_eq!(
        ok(&["--as", "alice", "auth", "can-i", "create", "configmaps", "-n", "team-a"]).trim(),
        "yes"
    );
    let (allowed, answer) = kubectl(
        &kubeconfig,
        &["--as", "alice", "auth", "can-i", "create", "configmaps", "-n", "team-b"],
    );
    // kube-apiserver's RBAC gives no reason when no rule matches: kubectl prints "no".
    assert!(!allowed && answer.trim() == "no", "{answer}");
    // `can-i --list` (a SelfSubjectRulesReview): the Role's rule in team-a, not in team-b.
    let rules_row = |listing: &str| {
        listing
            .lines()
            .find(|l| l.starts_with("configmaps "))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let listed = ok(&["--as", "alice", "auth", "can-i", "--list", "-n", "team-a"]);
    assert_eq!(
        rules_row(&listed).as_deref(),
        Some("configmaps [] [] [create get list]"),
        "{listed}"
    );
    let listed = ok(&["--as", "alice", "auth", "can-i", "--list", "-n", "team-b"]);
    assert_eq!(rules_row(&listed), None, "{listed}");
    let everything = ok(&["auth", "can-i", "--list", "-n", "team-b"]);
    assert!(
        everything
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]),
        "the administrator may do everything: {everything}"
    );
    // A binding to a role that does not exist is the reason, as kube-apiserver reports it.
    ok(&[
        "create",
        "rolebinding",
        "ghost",
        "--role=ghost",
        "--user=alice",
        "-n",
        "team-b",
    ]);
    let (allowed, answer) = kubectl(
        &kubeconfig,
        &["--as", "alice", "auth", "can-i", "create", "configmaps", "-n", "team-b"],
    );
    assert!(
        !allowed && answer.trim() == r#"no - RBAC: role.rbac.authorization.k8s.io "ghost" not found"#,
        "{answer}"
    );

    // Groups, ClusterRoleBindings, and aggregated ClusterRoles.
    ok(&[
        "create",
        "clusterrole",
        "ns-reader-base",
        "--verb=get,list",
        "--resource=namespaces",
    ]);
    ok(&[
        "label",
        "clusterrole",
        "ns-reader-base",
        "example.com/aggregate-to-viewer=true",
    ]);
    let aggregated = std::env::temp_dir().join(format!("pg-rbac-agg-{}.yaml", std::process::id()));
    std::fs::write(
        &aggregated,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: viewer\naggregationRule:\n  clusterRoleSelectors:\n  - matchLabels:\n      example.com/aggregate-to-viewer: \"true\"\nrules: []\n",
    )
    .expect("write");
    ok(&["apply", "-f", aggregated.to_str().expect("utf-8")]);
    ok(&[
        "create",
        "clusterrolebinding",
        "auditors-view",
        "--clusterrole=viewer",
        "--group=auditors",
    ]);
    // As kube-controller-manager's aggregation writes them: the selected roles' rules.
    let rules = ok(&["get", "clusterrole", "viewer", "-o", "jsonpath={.rules}"]);
    assert_eq!(
        rules,
        r#"[{"apiGroups":[""],"resources":["namespaces"],"verbs":["get","list"]}]"#
    );
    // The defaults too: admin holds edit's and view's rules.
    let admin = ok(&["get", "clusterrole", "admin", "-o", "json"]);
    let admin: serde_json::Value = serde_json::from_str(&admin).expect("JSON");
    let view = ok(&["get", "clusterrole", "view", "-o", "json"]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("JSON");
    let view_rules = view["rules"].as_array().expect("view has rules");
    assert!(!view_rules.is_empty());
    assert!(
        view_rules
            .iter()
            .all(|r| admin["rules"].as_array().expect("admin's rules").contains(r)),
        "{admin}"
    );
    fails(&["--as", "bob", "get", "namespaces"]);
    let listed = ok(&["--as", "bob", "--as-group", "auditors", "get", "namespaces"]);
    assert!(listed.contains("team-a"), "{listed}");
    let denied = fails(&["--as", "bob", "--as-group", "auditors", "delete", "namespace", "team-b"]);
    assert!(denied.contains(r#"namespaces "team-b" is forbidden: User "bob" cannot delete resource "namespaces" in API group "" at the cluster scope"#), "{denied}");

    let _ = std::fs::remove_file(&kubeconfig);
    let _ = std::fs::remove_file(&aggregated);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_every_cluster_has() {
    let (sandbox, kubeconfig) = rbac_sandbox("defaults").await;
    let ok = |args: &[&str]| succeeds(&kubeconfig, args);
    // The API server's own Service.
    let port = ok(&[
        "get",
        "service",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.ports[0].port}",
    ]);
    assert_eq!(port, "443");
    for ns in ["kube-public", "kube-node-lease"] {
        ok(&["get", "namespace", ns]);
    }
    // Every namespace, old or new, has its default ServiceAccount and the root CA.
    ok(&["create", "namespace", "team-c"]);
    for ns in ["default", "kube-system", "team-c"] {
        ok(&["get", "serviceaccount", "default", "-n", ns]);
        let ca = ok(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ns}: {ca}");
    }
    // The default roles, aggregated: view reads but does not write and sees no Secrets; edit
    // writes; admin manages RoleBindings.
    for role in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
    ] {
        ok(&["get", "clusterrole", role]);
    }
    for (user, role) in [("viewer", "view"), ("editor", "edit"), ("owner", "admin")] {
        ok(&[
            "create",
            "rolebinding",
            user,
            "-n",
            "team-c",
            &format!("--clusterrole={role}"),
            &format!("--user={user}"),
        ]);
    }
    let can = |user: &str, verb: &str, resource: &str| {
        let (_, text) = kubectl(
            &kubeconfig,
            &["auth", "can-i", verb, resource, "-n", "team-c", "--as", user],
        );
        // The answer, without kubectl's warnings (a cluster-scoped resource asked with -n).
        text.lines().next().unwrap_or_default().trim().to_string()
    };
    assert_eq!(can("viewer", "list", "deployments.apps"), "yes");
    assert_eq!(can("viewer", "create", "deployments.apps"), "no");
    assert_eq!(can("viewer", "get", "secrets"), "no");
    assert_eq!(can("editor", "create", "deployments.apps"), "yes");
    assert_eq!(can("editor", "get", "secrets"), "yes");
    assert_eq!(can("editor", "create", "rolebindings.rbac.authorization.k8s.io"), "no");
    assert_eq!(can("owner", "create", "rolebindings.rbac.authorization.k8s.io"), "yes");
    assert_eq!(can("owner", "list", "pods"), "yes");
    // Every authenticated user may ask what it may do (system:basic-user), and nothing more.
    assert_eq!(
        can("nobody", "create", "selfsubjectaccessreviews.authorization.k8s.io"),
        "yes"
    );
    assert_eq!(can("nobody", "list", "pods"), "no");
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// SubjectAccessReview and LocalSubjectAccessReview (kube-rs): what another user may do, as
/// delegated authorizers and admission webhooks ask it, answered by the same RBAC; invalid
/// reviews refused with kube-apiserver's field errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_access_reviews_answer_for_other_users() {
    use k8s_openapi::api::authorization::v1::{LocalSubjectAccessReview, SubjectAccessReview};
    use kube::api::{Api, PostParams};
    let (sandbox, kubeconfig) = rbac_sandbox("sar").await;
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    for args in [
        &["create", "namespace", "team-a"][..],
        &["create", "namespace", "team-b"],
        &[
            "create",
            "role",
            "reader",
            "-n",
            "team-a",
            "--verb=get,list",
            "--resource=configmaps",
        ],
        &[
            "create",
            "rolebinding",
            "alice-reads",
            "-n",
            "team-a",
            "--role=reader",
            "--user=alice",
        ],
    ] {
        let (ok, text) = kubectl(&kubeconfig, args);
        assert!(ok, "{args:?}: {text}");
    }
    let sars: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = |spec: serde_json::Value| -> SubjectAccessReview {
        serde_json::from_value(
            serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}),
        )
        .expect("a review")
    };
    let allowed = |sar: &SubjectAccessReview| sar.status.as_ref().map(|s| s.allowed);
    let asks = [
        (
            serde_json::json!({"user": "alice", "resourceAttributes": {"namespace": "team-a", "verb": "get", "resource": "configmaps"}}),
            true,
        ),
        (
            serde_json::json!({"user": "alice", "resourceAttributes": {"namespace": "team-a", "verb": "delete", "resource": "configmaps"}}),
            false,
        ),
        (
            serde_json::json!({"user": "alice", "resourceAttributes": {"namespace": "team-b", "verb": "get", "resource": "configmaps"}}),
            false,
        ),
        (
            serde_json::json!({"user": "root", "groups": ["system:masters"], "resourceAttributes": {"verb": "delete", "resource": "secrets"}}),
            true,
        ),
        // The default system:public-info-viewer binding covers every authenticated user.
        (
            serde_json::json!({"user": "bob", "groups": ["system:authenticated"], "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}),
            true,
        ),
        (
            serde_json::json!({"user": "bob", "groups": ["system:authenticated"], "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}),
            false,
        ),
    ];
    for (spec, expected) in asks {
        let answered = sars
            .create(&PostParams::default(), &review(spec.clone()))
            .await
            .expect("answered");
        assert_eq!(allowed(&answered), Some(expected), "{spec}");
    }
    // In a namespace: the review's namespace must be the request's.
    let locals: Api<LocalSubjectAccessReview> = Api::namespaced(client.clone(), "team-a");
    let local = |namespace: &str| -> LocalSubjectAccessReview {
        serde_json::from_value(serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "spec": {"user": "alice", "resourceAttributes": {"namespace": namespace, "verb": "list", "resource": "configmaps"}}}))
        .expect("a review")
    };
    let answered = locals
        .create(&PostParams::default(), &local("team-a"))
        .await
        .expect("answered");
    assert_eq!(answered.status.map(|s| s.allowed), Some(true));
    assert_eq!(answered.metadata.namespace.as_deref(), Some("team-a"));
    let refusal = |e: kube::Error| match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("not an API error: {other}"),
    };
    let e = locals
        .create(&PostParams::default(), &local("team-b"))
        .await
        .expect_err("another namespace");
    assert_eq!(
        refusal(e),
        (422, "LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes.namespace: Invalid value: \"team-b\": must match metadata.namespace".to_string())
    );
    let e = sars
        .create(
            &PostParams::default(),
            &review(serde_json::json!({"resourceAttributes": {"verb": "get", "resource": "pods"}})),
        )
        .await
        .expect_err("nobody asked about");
    assert_eq!(
        refusal(e),
        (422, "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified".to_string())
    );
    let e = sars
        .create(&PostParams::default(), &review(serde_json::json!({"user": "alice"})))
        .await
        .expect_err("nothing asked");
    assert_eq!(
        refusal(e),
        (422, "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".to_string())
    );
    // A review is no stored object: metadata (but a local review's namespace) is refused.
    let mut named =
        review(serde_json::json!({"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods"}}));
    named.metadata.name = Some("probe".into());
    named.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    let e = sars.create(&PostParams::default(), &named).await.expect_err("metadata");
    assert_eq!(
        refusal(e),
        (422, "SubjectAccessReview.authorization.k8s.io \"\" is invalid: metadata: Invalid value: v1.ObjectMeta{Name:\"probe\", GenerateName:\"\", Namespace:\"\", SelfLink:\"\", UID:\"\", ResourceVersion:\"\", Generation:0, CreationTimestamp:time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC), DeletionTimestamp:<nil>, DeletionGracePeriodSeconds:(*int64)(nil), Labels:map[string]string{\"team\":\"a\"}, Annotations:map[string]string(nil), OwnerReferences:[]v1.OwnerReference(nil), Finalizers:[]string(nil), ManagedFields:[]v1.ManagedFieldsEntry(nil)}: must be empty".to_string())
    );
    let mut named = local("team-a");
    named.metadata.generate_name = Some("probe-".into());
    let e = locals
        .create(&PostParams::default(), &named)
        .await
        .expect_err("metadata");
    let (code, message) = refusal(e);
    assert_eq!(code, 422, "{message}");
    assert!(
        message.starts_with("LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: metadata: Invalid value: v1.ObjectMeta{Name:\"\", GenerateName:\"probe-\", Namespace:\"team-a\", ")
            && message.ends_with("}: must be empty except for namespace"),
        "{message}"
    );
    // Served and discoverable, and usable from kubectl.
    let (ok, text) = kubectl(
        &kubeconfig,
        &["api-resources", "--api-group=authorization.k8s.io", "-o", "name"],
    );
    assert!(ok, "{text}");
    for name in [
        "subjectaccessreviews.authorization.k8s.io",
        "localsubjectaccessreviews.authorization.k8s.io",
    ] {
        assert!(text.lines().any(|l| l == name), "{name} in:\n{text}");
    }
    let manifest = std::env::temp_dir().join(format!("pg-sar-{}.yaml", std::process::id()));
    std::fs::write(
        &manifest,
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: alice\n  resourceAttributes:\n    namespace: team-a\n    verb: list\n    resource: configmaps\n",
    )
    .expect("manifest");
    let (ok, text) = kubectl(
        &kubeconfig,
        &[
            "create",
            "-f",
            manifest.to_str().expect("a path"),
            "-o",
            "jsonpath={.status.allowed}",
        ],
    );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "true");
    let _ = std::fs::remove_file(&manifest);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}

/// Subresources are authorized as their own resources: a right on namespaces does not reach
/// `namespaces/finalize`, a right on pods does not reach `pods/log` or `pods/exec`; and a verb
/// a subresource does not serve is refused (405) once authorized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subresources_are_authorized_apart_from_their_object() {
    let (sandbox, kubeconfig) = rbac_sandbox("rbac-subresources").await;
    let ok = |args: &[&str]| succeeds(&kubeconfig, args);
    let fails = |args: &[&str]| refused(&kubeconfig, args);
    ok(&["create", "namespace", "team-a"]);
    ok(&["run", "web", "--image=nginx", "-n", "team-a"]);
    ok(&[
        "create",
        "clusterrole",
        "namespace-keeper",
        "--verb=get,update,patch",
        "--resource=namespaces",
    ]);
    ok(&[
        "create",
        "clusterrolebinding",
        "alice-keeper",
        "--clusterrole=namespace-keeper",
        "--user=alice",
    ]);
    ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "team-a",
        "--verb=get,list",
        "--resource=pods",
    ]);
    ok(&[
        "create",
        "rolebinding",
        "bob-reader",
        "-n",
        "team-a",
        "--role=pod-reader",
        "--user=bob",
    ]);

    // namespaces/finalize: alice may update namespaces, not finalize them.
    let body = std::env::temp_dir().join(format!("pg-finalize-{}.json", std::process::id()));
    std::fs::write(
        &body,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{"finalizers":[]}}"#,
    )
    .expect("body");
    let body = body.to_str().expect("utf-8 path");
    let finalize = ["replace", "--raw", "/api/v1/namespaces/team-a/finalize", "-f", body];
    let denied = fails(&[&["--as", "alice"], &finalize[..]].concat());
    assert!(
        denied.contains(r#"namespaces "team-a" is forbidden: User "alice" cannot update resource "namespaces/finalize" in API group "" at the cluster scope"#),
        "{denied}"
    );
    ok(&["--as", "alice", "label", "namespace", "team-a", "owner=alice"]);
    ok(&[
        "create",
        "clusterrole",
        "namespace-finalizer",
        "--verb=update",
        "--resource=namespaces/finalize",
    ]);
    ok(&[
        "create",
        "clusterrolebinding",
        "alice-finalizer",
        "--clusterrole=namespace-finalizer",
        "--user=alice",
    ]);
    ok(&[&["--as", "alice"], &finalize[..]].concat());
    // finalize serves PUT only: a GET, once authorized, is 405 (the administrator may do
    // everything).
    let refused = fails(&["get", "--raw", "/api/v1/namespaces/team-a/finalize"]);
    assert!(
        refused.contains("the server does not allow this method on the requested resource"),
        "{refused}"
    );

    // pods/log and pods/exec: bob may read pods, not their logs, nor exec into them.
    ok(&["--as", "bob", "get", "pod", "web", "-n", "team-a"]);
    let denied = fails(&["--as", "bob", "logs", "web", "-n", "team-a"]);
    assert!(
        denied.contains(r#"pods "web" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "team-a""#),
        "{denied}"
    );
    let denied = fails(&["--as", "bob", "exec", "web", "-n", "team-a", "--", "true"]);
    assert!(
        denied.contains(r#"pods "web" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "team-a""#),
        "{denied}"
    );
    assert_eq!(
        fails(&[
            "--as",
            "bob",
            "auth",
            "can-i",
            "get",
            "pods",
            "--subresource=log",
            "-n",
            "team-a"
        ])
        .trim(),
        "no"
    );
    // With the right, the request reaches the pod: no container runs to answer it.
    ok(&[
        "create",
        "role",
        "log-reader",
        "-n",
        "team-a",
        "--verb=get",
        "--resource=pods/log",
    ]);
    ok(&[
        "create",
        "rolebinding",
        "bob-logs",
        "-n",
        "team-a",
        "--role=log-reader",
        "--user=bob",
    ]);
    let answered = fails(&["--as", "bob", "logs", "web", "-n", "team-a"]);
    assert!(answered.contains("the sandbox runs none"), "{answered}");
    drop(sandbox);
}

/// Roles and bindings are judged as kube-apiserver judges them: rules name verbs and either
/// resources with API groups or, in ClusterRoles only, non-resource URLs; a binding binds a
/// role of a kind it may bind and subjects of known kinds, and its role never changes (the
/// refusal `helm upgrade` meets when a chart changes a binding's role).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_bindings_are_judged_and_role_refs_fixed() {
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-rbac-judged-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let causes = support::field_causes;
    let roles: Api<Role> = Api::namespaced(client.clone(), "default");
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bad"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
            {"verbs": ["get"]}
        ]
    }))
    .expect("role");
    let e = roles.create(&PostParams::default(), &role).await.expect_err("refused");
    assert_eq!(
        causes(e),
        [
            "rules[0].verbs: Required value: verbs must contain at least one value",
            "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
            "rules[2].apiGroups: Required value: resource rules must supply at least one api group",
            "rules[2].resources: Required value: resource rules must supply at least one resource",
        ]
    );

    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bad"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot"}, {"kind": "Robot", "name": "r2"}]
    }))
    .expect("binding");
    let e = cluster_bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect_err("refused");
    assert_eq!(
        causes(e),
        [
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "subjects[0].namespace: Required value",
            "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
        ]
    );

    // A binding without the groups gets them; its role is fixed once created.
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "default");
    let readers: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "readers"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "robot"}]
    }))
    .expect("binding");
    let stored = bindings
        .create(&PostParams::default(), &readers)
        .await
        .expect("created");
    assert_eq!(stored.role_ref.api_group, "rbac.authorization.k8s.io");
    let subjects = stored.subjects.expect("subjects");
    assert_eq!(subjects[0].api_group.as_deref(), Some("rbac.authorization.k8s.io"));
    assert_eq!(subjects[1].api_group.as_deref().unwrap_or_default(), "");
    let e = bindings
        .patch(
            "readers",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"roleRef": {"name": "edit"}})),
        )
        .await
        .expect_err("the role is fixed");
    assert_eq!(
        causes(e),
        [
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
        ]
    );
    // kubectl apply of the same binding with another role prints the same.
    let manifest = std::env::temp_dir().join(format!("pg-roleref-{}.yaml", std::process::id()));
    std::fs::write(
        &manifest,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: readers\n  namespace: default\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: admin\nsubjects:\n- kind: User\n  name: alice\n",
    )
    .expect("manifest");
    let printed = refused(
        &kubeconfig,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            manifest.to_str().expect("utf-8"),
        ],
    );
    assert!(
        printed.contains("The RoleBinding \"readers\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"admin\"}: cannot change roleRef"),
        "{printed}"
    );
    let _ = std::fs::remove_file(&manifest);
    sandbox.shutdown().await;
}
