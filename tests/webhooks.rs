//! The admission webhooks end to end: the sandbox with RBAC calls the webhooks of a real
//! `purchase-guard run` process (self-managed certificates, caBundle patched by the process),
//! and partner operators act with the real kubectl (`--as`).

mod support;
use support::{Run, free_port, kubectl, webhook_sandbox};

use std::path::PathBuf;

const WEBHOOK_CONFIGURATIONS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: purchase-guard
webhooks:
- name: decisions.purchaseguard.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    service: {namespace: purchase-guard, name: purchase-guard-webhook, path: /validate/decisions, port: 443}
  rules:
  - operations: ["CREATE", "UPDATE", "DELETE"]
    apiGroups: ["purchaseguard.io"]
    apiVersions: ["v1alpha1"]
    resources: ["purchaserestrictions", "resellerdelegations"]
- name: purchases.purchaseguard.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    service: {namespace: purchase-guard, name: purchase-guard-webhook, path: /validate/purchases, port: 443}
  namespaceSelector:
    matchExpressions:
    - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, purchase-guard]}
  rules:
  - operations: ["CREATE", "UPDATE", "DELETE"]
    apiGroups: ["compute.example.com"]
    apiVersions: ["v1"]
    resources: ["virtualmachines"]
  - operations: ["CREATE", "UPDATE", "DELETE"]
    apiGroups: ["apps"]
    apiVersions: ["v1"]
    resources: ["deployments"]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: purchase-guard
webhooks:
- name: audit.purchaseguard.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    service: {namespace: purchase-guard, name: purchase-guard-webhook, path: /mutate/audit, port: 443}
  rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["purchaseguard.io"]
    apiVersions: ["v1alpha1"]
    resources: ["purchaserestrictions"]
"#;

const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-partner-operator
rules:
- apiGroups: ["purchaseguard.io"]
  resources: ["purchaserestrictions", "resellerdelegations"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["purchaseguard.io"]
  resources: ["customeraccounts", "partners"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-tenant
rules:
- apiGroups: ["compute.example.com"]
  resources: ["virtualmachines"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
"#;

fn binding(namespace: &str, role: &str, user: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {user}\n  namespace: {namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n---\n"
    )
}

fn restriction(namespace: &str, customer: &str, state: &str, reason: &str) -> String {
    let agreement = if state == "RestrictedAndFrozen" {
        "\n  agreementAccepted: true"
    } else {
        ""
    };
    format!(
        "apiVersion: purchaseguard.io/v1alpha1\nkind: PurchaseRestriction\nmetadata:\n  name: {customer}\n  namespace: {namespace}\nspec:\n  customer: {customer}\n  state: {state}\n  reason: {reason}{agreement}\n"
    )
}

fn vm(namespace: &str, name: &str, mode: &str, cpus: u32) -> String {
    format!(
        "apiVersion: compute.example.com/v1\nkind: VirtualMachine\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    purchaseguard.io/billing-mode: {mode}\nspec:\n  displayName: {name}\n  flavor: c6.large\n  cpus: {cpus}\n  memoryGiB: 4\n  image: debian-12\n  subscription:\n    periodMonths: 12\n    autoRenew: false\n    renewedUntil: \"2027-06-30\"\n"
    )
}

struct Env {
    kubeconfig: PathBuf,
    webhook_port: u16,
}

impl Env {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        kubectl(&self.kubeconfig, args, stdin)
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, text) = self.run(args, stdin);
        assert!(ok, "kubectl {args:?} failed: {text}");
        text
    }

    /// `kubectl --as USER apply -f -`, returning success and output.
    fn apply_as(&self, user: &str, yaml: &str) -> (bool, String) {
        self.run(&["--as", user, "apply", "-f", "-"], Some(yaml))
    }

    fn denied(&self, user: &str, yaml: &str, expected: &[&str]) -> String {
        let (ok, text) = self.apply_as(user, yaml);
        assert!(!ok, "{user} was allowed:\n{yaml}\n{text}");
        for e in expected {
            assert!(text.contains(e), "the denial lacks {e:?}: {text}");
        }
        text
    }

    fn allowed(&self, user: &str, yaml: &str) -> String {
        let (ok, text) = self.apply_as(user, yaml);
        assert!(ok, "{user} was refused:\n{yaml}\n{text}");
        text
    }

    fn wait_for(&self, resource: &str, jsonpath: &str) {
        self.ok(
            &["wait", resource, &format!("--for=jsonpath={jsonpath}"), "--timeout=30s"],
            None,
        );
    }

    fn start_run(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--cert-check-interval", "1s"];
        args.extend_from_slice(extra);
        Run::start(&self.kubeconfig, self.webhook_port, &args).wait_ready()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_and_purchases_through_the_webhooks() {
    let webhook_port = free_port();
    let (sandbox, kubeconfig) = webhook_sandbox(true, webhook_port, "webhooks").await;
    let env = Env {
        kubeconfig: kubeconfig.clone(),
        webhook_port,
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let example = |f: &str| format!("{root}/examples/{f}");

    // The platform admin installs everything (no --as: an administrator).
    env.ok(&["apply", "-f", &format!("{root}/crds")], None);
    env.ok(&["apply", "-f", &example("billable-crd")], None);
    env.ok(
        &["wait", "--for=condition=established", "crd", "--all", "--timeout=30s"],
        None,
    );
    env.ok(&["create", "namespace", "purchase-guard"], None);
    for f in ["00-namespaces.yaml", "01-partners.yaml", "03-customers.yaml"] {
        env.ok(&["apply", "-f", &example(f)], None);
    }
    env.ok(&["apply", "-f", "-"], Some(&vm("globex", "db-1", "yearly-monthly", 2)));
    env.ok(&["apply", "-f", "-"], Some(&vm("globex", "batch-7", "spot", 8)));
    env.ok(&["apply", "-f", "-"], Some(RBAC));
    let mut bindings = String::new();
    for (ns, user) in [
        ("dist-emea", "dist-op"),
        ("reseller-alpha", "alpha-op"),
        ("reseller-beta", "beta-op"),
    ] {
        bindings.push_str(&binding(ns, "e2e-partner-operator", user));
    }
    for ns in ["globex", "acme-prod", "acme-dev"] {
        bindings.push_str(&binding(ns, "e2e-tenant", "tenant"));
    }
    env.ok(&["apply", "-f", "-"], Some(&bindings));

    let mut process = env.start_run(&[]);
    env.ok(&["apply", "-f", "-"], Some(WEBHOOK_CONFIGURATIONS));
    // The process writes the CA of its self-managed certificate into both configurations.
    env.wait_for(
        "validatingwebhookconfiguration/purchase-guard",
        "{.webhooks[1].clientConfig.caBundle}",
    );
    env.wait_for(
        "mutatingwebhookconfiguration/purchase-guard",
        "{.webhooks[0].clientConfig.caBundle}",
    );
    let (ok, secret) = env.run(
        &[
            "get",
            "secret",
            "purchase-guard-webhook-tls",
            "-n",
            "purchase-guard",
            "-o",
            "jsonpath={.data.tls\\.crt}",
        ],
        None,
    );
    assert!(ok && !secret.is_empty(), "the self-managed Secret exists: {secret}");

    // R1: a Reseller-model customer is restricted by default; its new resources are refused.
    env.wait_for("customeraccount/globex", "{.status.decision.state}=Restricted");
    env.denied(
        "tenant",
        &vm("globex", "new-vm", "pay-per-use", 2),
        &[
            r#"admission webhook "purchases.purchaseguard.io" denied the request"#,
            "R7",
            "\"globex\"",
            "R1",
        ],
    );

    // The distributor restricts globex with a reason; the audit stamp records who did it.
    env.allowed(
        "dist-op",
        &restriction(
            "dist-emea",
            "globex",
            "Restricted",
            "Invoice INV-2026-0934 overdue by 45 days",
        ),
    );
    let stamped = env.ok(
        &[
            "get",
            "purchaserestriction",
            "globex",
            "-n",
            "dist-emea",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
        None,
    );
    assert!(
        stamped.contains(r#""purchaseguard.io/changed-by":"dist-op""#),
        "{stamped}"
    );
    assert!(stamped.contains("purchaseguard.io/changed-at"), "{stamped}");
    env.wait_for("customeraccount/globex", "{.status.decision.partner}=dist-emea");

    // A new pay-per-use resource: denied, naming customer, rule, partner and reason.
    env.denied(
        "tenant",
        &vm("globex", "new-vm", "pay-per-use", 2),
        &[
            "R7",
            "customer \"globex\"",
            "dist-emea",
            "Invoice INV-2026-0934 overdue by 45 days",
        ],
    );
    // Rename passes; renewal, specification change and billing-mode change of a
    // yearly/monthly resource are refused; deletion passes.
    env.ok(
        &[
            "--as",
            "tenant",
            "patch",
            "virtualmachine",
            "db-1",
            "-n",
            "globex",
            "--type=merge",
            "-p",
            r#"{"spec":{"displayName":"Database (renamed)"}}"#,
        ],
        None,
    );
    for (what, patch) in [
        ("renewal", r#"{"spec":{"subscription":{"renewedUntil":"2028-06-30"}}}"#),
        ("specification change", r#"{"spec":{"cpus":16}}"#),
        (
            "billing-mode change",
            r#"{"metadata":{"labels":{"purchaseguard.io/billing-mode":"pay-per-use"}}}"#,
        ),
    ] {
        let (ok, text) = env.run(
            &[
                "--as",
                "tenant",
                "patch",
                "virtualmachine",
                "db-1",
                "-n",
                "globex",
                "--type=merge",
                "-p",
                patch,
            ],
            None,
        );
        assert!(!ok, "{what} was allowed: {text}");
        assert!(text.contains("R7") && text.contains("globex"), "{what}: {text}");
    }
    env.ok(
        &["--as", "tenant", "delete", "virtualmachine", "batch-7", "-n", "globex"],
        None,
    );

    // After the distributor unrestricts, the same apply succeeds.
    env.allowed(
        "dist-op",
        &restriction("dist-emea", "globex", "Unrestricted", "Invoice INV-2026-0934 paid"),
    );
    env.wait_for("customeraccount/globex", "{.status.decision.state}=Unrestricted");
    env.allowed("tenant", &vm("globex", "new-vm", "pay-per-use", 2));

    // R2: a reseller without delegation cannot act; a partner outside the hierarchy cannot.
    env.denied(
        "alpha-op",
        &restriction("reseller-alpha", "acme", "Restricted", "Card declined"),
        &[
            r#"admission webhook "decisions.purchaseguard.io" denied the request"#,
            "R2",
            "dist-emea",
        ],
    );
    env.denied(
        "beta-op",
        &restriction("reseller-beta", "acme", "Restricted", "Card declined"),
        &["R2", "neither the reseller"],
    );
    // R3: once the distributor delegates, only the reseller may act.
    env.allowed(
        "dist-op",
        &std::fs::read_to_string(example("04-delegation.yaml")).expect("example"),
    );
    env.wait_for("customeraccount/acme", "{.status.authority.partner}=reseller-alpha");
    env.denied(
        "dist-op",
        &restriction("dist-emea", "acme", "Restricted", "Card declined"),
        &[
            "R3",
            r#"distributor "dist-emea" delegated restriction of reseller "reseller-alpha"'s customers"#,
            "revoke the ResellerDelegation",
        ],
    );
    env.allowed(
        "alpha-op",
        &restriction("reseller-alpha", "acme", "Restricted", "Card declined on renewal"),
    );
    env.wait_for("customeraccount/acme", "{.status.decision.partner}=reseller-alpha");
    env.denied(
        "tenant",
        &vm("acme-dev", "extra", "pay-per-use", 2),
        &["customer \"acme\"", "reseller-alpha", "Card declined on renewal"],
    );

    // Warn mode, after a restart (the Secret and the caBundle are reused): allowed, and kubectl
    // prints the warning.
    drop(process);
    process = env.start_run(&["--enforcement", "warn"]);
    let text = env.allowed("tenant", &vm("acme-dev", "extra", "pay-per-use", 2));
    assert!(
        text.contains("Warning: purchase-guard (enforcement: warn) would deny this") && text.contains("acme"),
        "{text}"
    );
    drop(process);
    sandbox.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
}
