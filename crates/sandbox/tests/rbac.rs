//! `--rbac`: identities from kubectl's `--as`/`--as-group`, Roles and bindings evaluated like
//! kube-apiserver's RBAC authorizer, the real 403 message, `kubectl auth can-i`.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_bindings_and_can_i() {
    let sandbox = Sandbox::start(Config {
        rbac: true,
        ..Config::default()
    })
    .await
    .expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-rbac-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let ok = |args: &[&str]| {
        let (ok, text) = kubectl(&kubeconfig, args);
        assert!(ok, "{args:?}: {text}");
        text
    };
    let fails = |args: &[&str]| {
        let (ok, text) = kubectl(&kubeconfig, args);
        assert!(!ok, "{args:?} succeeded: {text}");
        text
    };
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
    let sandbox = Sandbox::start(Config {
        rbac: true,
        ..Config::default()
    })
    .await
    .expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-defaults-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let ok = |args: &[&str]| {
        let (ok, text) = kubectl(&kubeconfig, args);
        assert!(ok, "{args:?}: {text}");
        text
    };
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
