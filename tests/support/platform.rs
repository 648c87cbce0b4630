//! The examples' platform on a sandbox with RBAC, purchase-guard's webhook configurations and
//! a real `purchase-guard run` replica, for suites that act as partner operators and tenants
//! with `kubectl --as`: partner operators have a broad role in their own namespace
//! (`resources: ["*"]` in purchaseguard.io, status included); tenants may manage workloads and
//! virtual machines in the customers' namespaces.

use super::{Run, binding, free_port, kubectl, webhook_sandbox};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const NAMESPACE: &str = "purchase-guard";
/// The user purchase-guard acts as in these tests.
pub const CONTROLLER: &str = "purchase-guard-controller";

/// A partner operator's broad role, and customers' rights on their virtual machines.
pub const ROLES: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: broad-partner
rules:
- apiGroups: ["purchaseguard.io"]
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: tenant
rules:
- apiGroups: ["compute.example.com"]
  resources: ["virtualmachines"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["apps", "batch", ""]
  resources: ["deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs", "pods", "pods/resize", "deployments/scale", "statefulsets/scale", "replicasets/scale"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
"#;

/// A pay-per-use workload of `kind` (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
/// CronJob or Pod) named `name` in `namespace`, with `replicas` where the kind has them.
pub fn workload(kind: &str, namespace: &str, name: &str, replicas: i64) -> String {
    workload_billed(kind, namespace, name, replicas, "pay-per-use")
}

/// [`workload`] with the billing mode `mode`.
pub fn workload_billed(kind: &str, namespace: &str, name: &str, replicas: i64, mode: &str) -> String {
    let pod = serde_json::json!({"containers": [{"name": "app", "image": "nginx:1.27"}]});
    let template = serde_json::json!({"metadata": {"labels": {"app": name}}, "spec": pod});
    let selector = serde_json::json!({"matchLabels": {"app": name}});
    let (api_version, spec) = match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" => (
            "apps/v1",
            serde_json::json!({"replicas": replicas, "selector": selector, "template": template}),
        ),
        "DaemonSet" => (
            "apps/v1",
            serde_json::json!({"selector": selector, "template": template}),
        ),
        "Job" => (
            "batch/v1",
            serde_json::json!({"parallelism": replicas, "template": {"spec": {"containers": pod["containers"], "restartPolicy": "Never"}}}),
        ),
        "CronJob" => (
            "batch/v1",
            serde_json::json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": pod["containers"], "restartPolicy": "Never"}}}}}),
        ),
        _ => ("v1", pod),
    };
    serde_json::json!({"apiVersion": api_version, "kind": kind,
                       "metadata": {"name": name, "namespace": namespace,
                                    "labels": {"purchaseguard.io/billing-mode": mode}},
                       "spec": spec})
    .to_string()
}

/// Owned arguments as the `&str` slice the helpers take.
pub fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A pay-per-use virtual machine.
pub fn vm(namespace: &str, name: &str) -> String {
    vm_billed(namespace, name, "pay-per-use")
}

/// A virtual machine billed as `mode`.
pub fn vm_billed(namespace: &str, name: &str, mode: &str) -> String {
    format!(
        "apiVersion: compute.example.com/v1\nkind: VirtualMachine\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    purchaseguard.io/billing-mode: {mode}\nspec:\n  displayName: {name}\n  flavor: c6.large\n  cpus: 2\n  memoryGiB: 4\n  image: debian-12\n"
    )
}

pub fn restriction(namespace: &str, customer: &str, state: &str, reason: &str) -> String {
    serde_json::json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
        "metadata": {"name": customer, "namespace": namespace},
        "spec": {"customer": customer, "state": state, "reason": reason,
                 "agreementAccepted": state == "RestrictedAndFrozen"}
    })
    .to_string()
}

/// The examples' partners, customers, delegation and decisions, guarded by purchase-guard.
pub struct Platform {
    _sandbox: purchase_guard_sandbox::Sandbox,
    pub kubeconfig: PathBuf,
    pub controller_kubeconfig: PathBuf,
    pub webhook_port: u16,
    pub replica: Option<Run>,
}

impl Platform {
    pub async fn start(test: &str) -> Platform {
        let webhook_port = free_port();
        let (sandbox, kubeconfig) = webhook_sandbox(true, webhook_port, test).await;
        let root = env!("CARGO_MANIFEST_DIR");
        let ok = |args: &[&str], stdin: Option<&str>| {
            let (ok, out) = kubectl(&kubeconfig, args, stdin);
            assert!(ok, "kubectl {args:?}: {out}");
        };
        ok(&["apply", "-f", &format!("{root}/crds")], None);
        ok(&["apply", "-f", &format!("{root}/examples/billable-crd")], None);
        ok(
            &["wait", "--for=condition=established", "crd", "--all", "--timeout=30s"],
            None,
        );
        // The examples first: the webhook configurations refuse what they cannot judge.
        for f in [
            "00-namespaces.yaml",
            "01-partners.yaml",
            "02-resources.yaml",
            "03-customers.yaml",
            "04-delegation.yaml",
            "05-restrictions.yaml",
        ] {
            ok(&["apply", "-f", &format!("{root}/examples/{f}")], None);
        }
        ok(&["apply", "-f", "-"], Some(ROLES));
        let mut bindings = String::new();
        for (ns, user) in [
            ("dist-emea", "dist-op"),
            ("reseller-alpha", "alpha-op"),
            ("reseller-alpha", "alpha-op2"),
            ("reseller-beta", "beta-op"),
        ] {
            bindings.push_str(&binding(ns, "broad-partner", user));
        }
        for ns in ["acme-prod", "acme-dev", "globex", "initech"] {
            bindings.push_str(&binding(ns, "tenant", "tenant"));
        }
        ok(&["apply", "-f", "-"], Some(&bindings));
        ok(&["create", "namespace", NAMESPACE], None);
        let service = purchase_guard::webhook::ServiceRef {
            namespace: NAMESPACE,
            name: "purchase-guard-webhook",
        };
        for config in purchase_guard::webhook::configurations(
            "purchase-guard",
            &service,
            None,
            &purchase_guard::webhook::Settings::default(),
            &["kube-system", NAMESPACE],
        ) {
            ok(&["apply", "-f", "-"], Some(&config.to_string()));
        }
        // purchase-guard acts as its own user, with every right (as its ClusterRole would give).
        let admin = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        let controller_kubeconfig = kubeconfig.with_extension("controller.kubeconfig");
        std::fs::write(
            &controller_kubeconfig,
            admin.replace(
                "  user: {}\n",
                &format!("  user:\n    as: {CONTROLLER}\n    as-groups:\n    - system:masters\n"),
            ),
        )
        .expect("writes the controller's kubeconfig");
        let mut platform = Platform {
            _sandbox: sandbox,
            kubeconfig,
            controller_kubeconfig,
            webhook_port,
            replica: None,
        };
        platform.start_replica(&["--leader-election=false"]);
        // The CA bundle is in place and the controller has written the customers' statuses.
        platform.wait_for(
            "validatingwebhookconfiguration/purchase-guard",
            "{.webhooks[0].clientConfig.caBundle}",
        );
        platform.wait_for("customeraccount/acme", "{.status.decision.state}=RestrictedAndFrozen");
        platform.wait_for("customeraccount/initech", "{.status.decision.state}=Unrestricted");
        for ns in ["acme-prod", "acme-dev", "globex", "initech"] {
            platform.wait_for(
                &format!("namespace/{ns}"),
                r"{.metadata.labels.purchaseguard\.io/guarded}=true",
            );
        }
        platform
    }

    pub fn start_replica(&mut self, extra: &[&str]) {
        self.replica = None;
        let health = free_port();
        let mut args: Vec<String> = vec![
            "run".into(),
            "--cert-namespace=purchase-guard".into(),
            format!("--controller-identity={CONTROLLER}"),
            format!("--health-addr=127.0.0.1:{health}"),
            format!("--webhook-addr=127.0.0.1:{}", self.webhook_port),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        self.replica =
            Some(Run::spawn(&self.controller_kubeconfig, &args, health, "purchase-guard-attacks").wait_ready());
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        kubectl(&self.kubeconfig, args, stdin)
    }

    /// `kubectl ARGS` as the platform admin (the kubeconfig's own user), which must succeed.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.kubectl(args, None);
        assert!(ok, "the platform admin: kubectl {args:?}: {out}");
        out
    }

    /// [`Platform::kubectl_ok`] feeding `stdin`.
    pub fn kubectl_ok_with(&self, args: &[&str], stdin: &str) -> String {
        let (ok, out) = self.kubectl(args, Some(stdin));
        assert!(ok, "the platform admin: kubectl {args:?}: {out}");
        out
    }

    /// Runs `args` as `user`, which must be refused; returns the output.
    pub fn refused_output(&self, user: &str, args: &[&str]) -> String {
        let mut all = vec!["--as", user];
        all.extend_from_slice(args);
        let (ok, out) = self.kubectl(&all, None);
        assert!(!ok, "{user} {args:?} was allowed: {out}");
        out
    }

    /// A merge patch by the platform admin (the kubeconfig's own user).
    pub fn admin_patch(&self, resource: &str, patch: &str) {
        let (ok, out) = self.kubectl(&["patch", resource, "--type=merge", "-p", patch], None);
        assert!(ok, "the platform admin patches {resource}: {out}");
    }

    pub fn get(&self, resource: &str, namespace: Option<&str>, jsonpath: &str) -> String {
        let mut args = vec!["get", resource, "-o"];
        let path = format!("jsonpath={jsonpath}");
        args.push(&path);
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let (ok, out) = self.kubectl(&args, None);
        assert!(ok, "kubectl {args:?}: {out}");
        out
    }

    /// Waits for `kubectl wait --for=jsonpath=...`.
    pub fn wait_for(&self, resource: &str, jsonpath: &str) {
        self.wait_for_in(resource, None, jsonpath)
    }

    /// Waits for `kubectl wait --for=jsonpath=...` on a resource in `namespace`.
    pub fn wait_for_in(&self, resource: &str, namespace: Option<&str>, jsonpath: &str) {
        let condition = format!("--for=jsonpath={jsonpath}");
        let mut args = vec!["wait", &condition, resource, "--timeout=30s"];
        let mut get = vec!["get", resource, "-o", "yaml"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
            get.extend(["-n", ns]);
        }
        let (ok, out) = self.kubectl(&args, None);
        if !ok {
            let (_, now) = self.kubectl(&get, None);
            panic!("{resource} {jsonpath}: {out}\nit is now:\n{now}");
        }
    }

    /// Runs `args` as `user`; asserts it is refused with every one of `expected` in the output.
    pub fn refused(&self, user: &str, args: &[&str], stdin: Option<&str>, expected: &[&str]) {
        let mut all = vec!["--as", user];
        all.extend_from_slice(args);
        let (ok, out) = self.kubectl(&all, stdin);
        assert!(!ok, "{user} {args:?} was allowed: {out}");
        for e in expected {
            assert!(out.contains(e), "{user} {args:?}: expected {e:?} in: {out}");
        }
    }

    pub fn allowed(&self, user: &str, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["--as", user];
        all.extend_from_slice(args);
        let (ok, out) = self.kubectl(&all, stdin);
        assert!(ok, "{user} {args:?} was refused: {out}");
        out
    }

    /// `kubectl purchase-guard ARGS` (as `user` when given), the real kubectl finding the
    /// plugin on the PATH: (exit code, stdout, stderr).
    pub fn plugin(&self, user: Option<&str>, args: &[&str]) -> (i32, String, String) {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_kubectl-purchase_guard"));
        let dir = bin.parent().expect("the binaries' directory");
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut command = Command::new("kubectl");
        command
            .arg("purchase-guard")
            .args(args)
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig);
        if let Some(user) = user {
            command.args(["--as", user]);
        }
        let out = command.output().expect("kubectl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `user` applies the PurchaseRestriction named after `customer` in `namespace` (see
    /// [`restriction`]), which must be admitted.
    pub fn decide(&self, user: &str, namespace: &str, customer: &str, state: &str, reason: &str) {
        self.allowed(
            user,
            &["apply", "-f", "-"],
            Some(&restriction(namespace, customer, state, reason)),
        );
    }

    /// Waits until an event, listed as `REASON NOTE`, satisfies `matches`; returns it.
    pub fn wait_for_event(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, events) = self.kubectl(
                &[
                    "get",
                    "events.events.k8s.io",
                    "-A",
                    "-o",
                    "jsonpath={range .items[*]}{.reason}{\" \"}{.note}{\"\\n\"}{end}",
                ],
                None,
            );
            if let Some(event) = events.lines().find(|e| matches(e)) {
                return event.to_string();
            }
            assert!(Instant::now() < deadline, "no event {what}: {events}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The customer's state, its decision in force and its history, as one comparable text.
    pub fn customer_record(&self, customer: &str) -> String {
        self.get(
            &format!("customeraccount/{customer}"),
            None,
            "{.status.decision}{.status.history}",
        )
    }

    /// A new pay-per-use VM in `namespace` is refused, naming the customer.
    pub fn purchase_refused(&self, namespace: &str, customer: &str) {
        self.refused(
            "tenant",
            &["create", "-f", "-"],
            Some(&vm(namespace, "attack-vm")),
            &[
                "purchases.purchaseguard.io",
                &format!("customer \"{customer}\" is restricted"),
            ],
        );
    }
}
