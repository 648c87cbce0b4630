//! The end-to-end suite: the whole story with kubectl as partner operators (`--as`).
//!
//! By default it runs on the sandbox with RBAC: the chart is rendered with the real Helm engine
//! (`hack/render-chart.py`), its CRDs, RBAC and webhook configurations are applied, and two
//! real `purchase-guard` processes run with the Deployment's arguments, as the chart's
//! ServiceAccount (impersonated through their kubeconfig), reached through the sandbox's
//! Service mapping. With `E2E_KUBECONFIG` set, the same scenarios run against that cluster,
//! where `hack/kind-e2e.sh` installed the chart; see docs/testing.md.

mod support;
use support::{Run, binding, free_port, kubectl, webhook_sandbox};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "purchase-guard";
const RELEASE: &str = "purchase-guard";

/// Customers' own rights on their billable resources (not part of the chart).
const TENANT_ROLE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-tenant
rules:
- apiGroups: ["compute.example.com"]
  resources: ["virtualmachines"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "deployments/scale", "daemonsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
"#;

/// A pay-per-use DaemonSet: a guarded kind without a freeze action.
fn daemonset(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    purchaseguard.io/billing-mode: pay-per-use\nspec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: app\n        image: registry.k8s.io/pause:3.10\n"
    )
}

fn deployment(namespace: &str, name: &str, mode: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    purchaseguard.io/billing-mode: {mode}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: app\n        image: registry.k8s.io/pause:3.10\n"
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

/// Where the suite runs.
enum Platform {
    /// The sandbox with the chart's manifests; the replicas run here as the Deployment's pods
    /// would.
    Sandbox {
        sandbox: Box<purchase_guard_sandbox::Sandbox>,
        /// The kubeconfig of the replicas: the chart's ServiceAccount, impersonated.
        controller_kubeconfig: PathBuf,
        /// The Deployment's arguments.
        args: Vec<String>,
        /// Replica 0 serves the webhook Service; replica 1 listens elsewhere.
        webhook_ports: [u16; 2],
        replicas: [Option<(String, Run)>; 2],
        started: usize,
    },
    /// A cluster where `hack/kind-e2e.sh` (or the user) installed the chart.
    Cluster,
}

struct Env {
    kubeconfig: PathBuf,
    platform: Platform,
}

/// The values the suite renders and installs the chart with: a short lease, so that failover
/// is quick; purchase-guard may read Partners' verification Secrets (R5).
const E2E_VALUES: &str =
    r#"{"leaderElection": {"leaseDurationSeconds": 4, "renewGraceSeconds": 1}, "verification": {"enabled": true}}"#;

/// The chart rendered by the real Helm engine: (CRDs, other manifests) as YAML documents.
fn rendered_chart() -> Vec<Value> {
    rendered_chart_with(E2E_VALUES)
}

/// purchase-guard's ValidatingWebhookConfiguration for `settings`, named as the chart's
/// release names it.
fn built_validating(settings: &purchase_guard::webhook::Settings) -> Value {
    let [validating, _] = purchase_guard::webhook::configurations(
        RELEASE,
        &purchase_guard::webhook::ServiceRef {
            namespace: NAMESPACE,
            name: "purchase-guard-webhook",
        },
        None,
        settings,
        &["kube-system", NAMESPACE],
    );
    validating
}

/// The chart's rendered ValidatingWebhookConfiguration.
fn rendered_validating(documents: &[Value]) -> &Value {
    documents
        .iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("the chart renders a ValidatingWebhookConfiguration")
}

/// The chart rendered with `values` (JSON) set.
fn rendered_chart_with(values: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/render-chart.py"))
        .args(["--namespace", NAMESPACE, "--release", RELEASE, "--set-json", values])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "rendering the chart failed (it needs: python3 -m pip install helm-python-sdk): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str(doc).expect("a rendered manifest"))
        .collect()
}

/// The sandbox kubeconfig, acting as the chart's ServiceAccount.
fn as_service_account(kubeconfig: &Path) -> PathBuf {
    let admin = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let account = format!(
        "  user:\n    as: system:serviceaccount:{NAMESPACE}:{RELEASE}\n    as-groups:\n    - system:serviceaccounts\n    - system:serviceaccounts:{NAMESPACE}\n"
    );
    assert!(admin.contains("  user: {}\n"), "the sandbox kubeconfig's user entry");
    let path = kubeconfig.with_extension("controller.kubeconfig");
    std::fs::write(&path, admin.replace("  user: {}\n", &account)).expect("writes");
    path
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
            &["wait", resource, &format!("--for=jsonpath={jsonpath}"), "--timeout=60s"],
            None,
        );
    }

    /// Waits for each (resource, jsonpath) in `namespace`.
    fn wait_all(&self, namespace: &str, conditions: &[(&str, &str)]) {
        for (resource, jsonpath) in conditions {
            self.ok(
                &[
                    "wait",
                    "-n",
                    namespace,
                    resource,
                    &format!("--for=jsonpath={jsonpath}"),
                    "--timeout=30s",
                ],
                None,
            );
        }
    }

    /// Waits until the audit's report in `namespace` reads `expected` ("FAILURES KIND/NAME
    /// RULE ...", or empty when there is no report).
    fn wait_for_report(&self, namespace: &str, expected: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (exists, now) = self.run(
                &[
                    "get",
                    "reports.openreports.io/purchase-guard",
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.summary.fail}{range .results[*]} {.resources[0].kind}/{.resources[0].name} {.rule}{end}",
                ],
                None,
            );
            let now = if exists { now } else { String::new() };
            if now.trim() == expected {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the report in {namespace} reads {now:?}, expected {expected:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn lease_holder(&self) -> String {
        let (_, holder) = self.run(
            &[
                "get",
                "lease",
                RELEASE,
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        );
        holder.trim().to_string()
    }

    fn wait_lease_holder(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let holder = self.lease_holder();
            if !holder.is_empty() && ok(&holder) {
                return holder;
            }
            assert!(Instant::now() < deadline, "{what}: the lease holder is {holder:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts replica `i` of the sandbox platform (as a new pod would), with `replace` applied
    /// to the Deployment's arguments.
    fn start_replica(&mut self, i: usize, replace: Option<(&str, &str)>) {
        let Platform::Sandbox {
            controller_kubeconfig,
            args,
            webhook_ports,
            replicas,
            started,
            ..
        } = &mut self.platform
        else {
            return;
        };
        let health = free_port();
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if a.starts_with("--health-addr=") {
                    format!("--health-addr=127.0.0.1:{health}")
                } else if a.starts_with("--webhook-addr=") {
                    format!("--webhook-addr=127.0.0.1:{}", webhook_ports[i])
                } else if let Some((from, to)) = replace.filter(|(from, _)| a == from) {
                    let _ = from;
                    to.to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        *started += 1;
        let pod = format!("{RELEASE}-pod-{}", *started);
        replicas[i] = None;
        let run = Run::spawn(controller_kubeconfig, &args, health, &pod).wait_ready();
        replicas[i] = Some((pod, run));
    }

    /// Stops every replica and starts them again (a rollout restart).
    fn restart(&mut self, replace: Option<(&str, &str)>) {
        match &mut self.platform {
            Platform::Sandbox { replicas, .. } => {
                *replicas = [None, None];
                self.start_replica(0, replace);
                self.start_replica(1, replace);
            }
            Platform::Cluster => {
                assert!(
                    replace.is_none(),
                    "argument changes are made by helm upgrade on a cluster"
                );
                self.ok(
                    &["rollout", "restart", &format!("deployment/{RELEASE}"), "-n", NAMESPACE],
                    None,
                );
                self.rollout_status();
            }
        }
    }

    /// Waits until the cluster's Deployment has rolled out.
    fn rollout_status(&self) {
        self.ok(
            &[
                "rollout",
                "status",
                &format!("deployment/{RELEASE}"),
                "-n",
                NAMESPACE,
                "--timeout=180s",
            ],
            None,
        );
    }

    /// Whether `pod` is a running replica (a killed leader's lease outlives it).
    fn is_running(&self, pod: &str) -> bool {
        match &self.platform {
            Platform::Sandbox { replicas, .. } => replicas.iter().flatten().any(|(name, _)| name == pod),
            Platform::Cluster => {
                self.run(
                    &["get", "pod", pod, "-n", NAMESPACE, "-o", "jsonpath={.status.phase}"],
                    None,
                )
                .1
                .trim()
                    == "Running"
            }
        }
    }

    /// Kills the leader without letting it release the lease; returns (old, new) holders once
    /// another replica leads, and a replacement for the killed one is running.
    fn kill_leader(&mut self) -> (String, String) {
        let leader = self.wait_lease_holder("a running replica leads", |h| self.is_running(h));
        match &mut self.platform {
            Platform::Sandbox { replicas, .. } => {
                let index = replicas
                    .iter()
                    .position(|r| r.as_ref().is_some_and(|(pod, _)| *pod == leader))
                    .expect("the leader is one of the replicas");
                // Run's drop sends SIGKILL: the lease is not released.
                replicas[index] = None;
                let next = self.wait_lease_holder("the other replica takes over", |h| h != leader);
                assert!(self.is_running(&next), "the new leader {next} is a running replica");
                self.start_replica(index, None);
                (leader, next)
            }
            Platform::Cluster => {
                self.ok(
                    &[
                        "delete",
                        "pod",
                        &leader,
                        "-n",
                        NAMESPACE,
                        "--grace-period=0",
                        "--force",
                        "--wait=false",
                    ],
                    None,
                );
                let next = self.wait_lease_holder("another pod takes over", |h| h != leader);
                self.rollout_status();
                (leader, next)
            }
        }
    }
}

/// The chart's purchase webhook and purchase-guard's agree for any guarded kinds: the
/// subresources each kind defaults to, and those an entry names.
#[test]
fn the_chart_judges_the_subresources_purchase_guard_judges() {
    let entries = serde_json::json!([
        {"group": "apps", "version": "v1", "resource": "deployments"},
        {"group": "apps", "version": "v1", "resource": "statefulsets", "subresources": []},
        {"group": "", "version": "v1", "resource": "pods"},
        {"group": "batch", "version": "v1", "resource": "jobs"},
        {"group": "example.com", "version": "v2", "resource": "widgets", "subresources": ["scale", "resize"],
         "capacityPaths": ["/spec/size"]},
    ]);
    let values = serde_json::json!({"webhook": {"guardedResources": entries,
                                                "workloadControllers": ["system:kube-controller-manager"]}});
    let documents = rendered_chart_with(&values.to_string());
    let settings = purchase_guard::webhook::Settings {
        guarded: purchase_guard::webhook::parse_guarded(&entries.to_string()).expect("valid entries"),
        workload_controllers: vec!["system:kube-controller-manager".into()],
        ..Default::default()
    };
    let built = built_validating(&settings);
    let rendered = rendered_validating(&documents);
    let purchases = |c: &Value| {
        c["webhooks"]
            .as_array()
            .expect("webhooks")
            .iter()
            .find(|w| w["name"] == "purchases.purchaseguard.io")
            .cloned()
            .expect("the purchase webhook")
    };
    assert_eq!(purchases(rendered), purchases(&built));
    assert_eq!(
        purchases(&built)["rules"][4]["resources"],
        serde_json::json!(["widgets", "widgets/scale", "widgets/resize"])
    );
    // The ConfigMap hands the same entries to purchase-guard.
    let config_map = documents.iter().find(|d| d["kind"] == "ConfigMap").expect("ConfigMap");
    let file = config_map["data"]["guarded-kinds.yaml"]
        .as_str()
        .expect("guarded-kinds.yaml");
    assert_eq!(
        purchase_guard::webhook::parse_guarded(file).expect("purchase-guard reads it"),
        settings.guarded
    );
}

/// Where purchases are judged (`enforceWith`): the chart registers the purchase webhook as
/// purchase-guard's configurations do in each mode: as configured with `webhook`, with
/// failurePolicy Ignore with `both`, not at all with `policy`.
#[test]
fn the_chart_registers_the_purchase_webhook_as_each_enforcement_mode_wants() {
    use purchase_guard::webhook::EnforceWith;
    for (mode, value) in [
        (EnforceWith::Webhook, "webhook"),
        (EnforceWith::Policy, "policy"),
        (EnforceWith::Both, "both"),
    ] {
        let documents = rendered_chart_with(&serde_json::json!({"enforceWith": value}).to_string());
        let settings = purchase_guard::webhook::Settings {
            enforce_with: mode,
            ..Default::default()
        };
        let (rendered, built) = (rendered_validating(&documents), built_validating(&settings));
        assert_eq!(rendered["webhooks"], built["webhooks"], "enforceWith: {value}");
        let args = documents
            .iter()
            .find(|d| d["kind"] == "Deployment")
            .and_then(|d| d.pointer("/spec/template/spec/containers/0/args"))
            .cloned()
            .unwrap_or_default();
        assert!(
            args.as_array().is_some_and(|a| a
                .iter()
                .any(|x| x == &serde_json::json!(format!("--enforce-with={value}")))),
            "{args}"
        );
    }
}

/// The chart grants purchase-guard exactly what the freeze actions of the guarded kinds need, as
/// purchase-guard reads them from the chart's ConfigMap: reading and patching each kind with an
/// action, `patch` on the scale subresource for `scale` actions, `delete` only with release;
/// reading only (the audit) on kinds without an action.
#[test]
fn the_chart_grants_what_the_freeze_actions_need() {
    let entries = serde_json::json!([
        {"group": "apps", "version": "v1", "resource": "deployments"},
        {"group": "apps", "version": "v1", "resource": "daemonsets"},
        {"group": "batch", "version": "v1", "resource": "jobs"},
        {"group": "apps", "version": "v1", "resource": "statefulsets", "freeze": null},
        {"group": "", "version": "v1", "resource": "pods"},
        {"group": "kubevirt.io", "version": "v1", "resource": "virtualmachines",
         "freeze": {"action": "patch", "patch": {"spec": {"runStrategy": "Halted"}}}},
        {"group": "example.com", "version": "v1", "resource": "widgets", "subresources": ["scale"],
         "freeze": {"action": "scale", "replicasPath": "/spec/size"}},
    ]);
    for release in [false, true] {
        let values = serde_json::json!({"webhook": {"guardedResources": entries},
                                        "freeze": {"release": {"enabled": release}}});
        let documents = rendered_chart_with(&values.to_string());
        let config_map = documents.iter().find(|d| d["kind"] == "ConfigMap").expect("ConfigMap");
        let file = config_map["data"]["guarded-kinds.yaml"]
            .as_str()
            .expect("guarded-kinds.yaml");
        let guarded = purchase_guard::webhook::parse_guarded(file).expect("purchase-guard reads it");
        let role = documents
            .iter()
            .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == RELEASE)
            .expect("purchase-guard's ClusterRole");
        let rules = role["rules"].as_array().expect("rules");
        let verbs_on = |group: &str, resource: &str| -> Vec<String> {
            let mut verbs: Vec<String> = rules
                .iter()
                .filter(|r| {
                    r["apiGroups"].as_array().is_some_and(|g| g.iter().any(|g| g == group))
                        && r["resources"]
                            .as_array()
                            .is_some_and(|x| x.iter().any(|x| x == resource))
                })
                .flat_map(|r| r["verbs"].as_array().cloned().unwrap_or_default())
                .map(|v| v.as_str().expect("a verb").to_string())
                .collect();
            verbs.sort();
            verbs
        };
        for g in &guarded {
            let mut expected: Vec<&str> = match &g.freeze {
                Some(_) if release => vec!["delete", "get", "list", "patch", "watch"],
                Some(_) => vec!["get", "list", "patch", "watch"],
                None => vec!["get", "list", "watch"],
            };
            expected.sort();
            assert_eq!(verbs_on(&g.group, &g.resource), expected, "{g} (release: {release})");
            let scale: Vec<&str> = match g.freeze {
                Some(purchase_guard_policy::FreezeAction::Scale { .. }) => vec!["patch"],
                _ => vec![],
            };
            assert_eq!(verbs_on(&g.group, &format!("{}/scale", g.resource)), scale, "{g}/scale");
        }
        assert_eq!(
            guarded.iter().filter(|g| g.freeze.is_some()).count(),
            4,
            "deployments and jobs by default, and the two explicit actions"
        );
    }
}

/// The sandbox platform: the chart's manifests applied and two replicas running.
async fn sandbox_platform() -> Env {
    let webhook_ports = [free_port(), free_port()];
    let (sandbox, kubeconfig) = webhook_sandbox(true, webhook_ports[0], "e2e").await;
    let documents = rendered_chart();
    let mut env = Env {
        kubeconfig: kubeconfig.clone(),
        platform: Platform::Cluster,
    };
    env.ok(&["create", "namespace", NAMESPACE], None);
    let crds: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(crds.len(), 4, "the chart's CRDs");
    let all: String = documents
        .iter()
        .map(|d| serde_yaml_ng::to_string(d).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n");
    env.ok(&["apply", "-f", "-"], Some(&all));
    // The report kind the audit writes (the chart's default), as hack/kind-e2e.sh installs it.
    let root = env!("CARGO_MANIFEST_DIR");
    env.ok(
        &[
            "apply",
            "-f",
            &format!("{root}/examples/reports/reports.openreports.io.yaml"),
        ],
        None,
    );
    env.ok(
        &["wait", "--for=condition=established", "crd", "--all", "--timeout=30s"],
        None,
    );
    // `purchase-guard sandbox` installs the same webhook configurations as the chart.
    let built = purchase_guard::webhook::configurations(
        RELEASE,
        &purchase_guard::webhook::ServiceRef {
            namespace: NAMESPACE,
            name: "purchase-guard-webhook",
        },
        None,
        &purchase_guard::webhook::Settings::default(),
        &["kube-system", NAMESPACE],
    );
    for config in &built {
        let rendered = documents
            .iter()
            .find(|d| d["kind"] == config["kind"])
            .expect("the chart renders it");
        assert_eq!(
            rendered["webhooks"], config["webhooks"],
            "{} differs from the chart's",
            config["kind"]
        );
    }
    // And the same ValidatingAdmissionPolicies.
    let controller = format!("system:serviceaccount:{NAMESPACE}:{RELEASE}");
    for built in purchase_guard::webhook::policies::namespace_labels(RELEASE, &controller) {
        let rendered = documents
            .iter()
            .find(|d| d["kind"] == built["kind"] && d["metadata"]["name"] == built["metadata"]["name"])
            .expect("the chart renders it");
        assert_eq!(
            rendered["spec"], built["spec"],
            "{} differs from the chart's",
            built["kind"]
        );
    }
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart's Deployment");
    // The chart's ConfigMap, where the pod would mount it.
    let config_dir = kubeconfig.with_extension("config");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    let config_map = documents
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the chart's ConfigMap");
    for (file, content) in config_map["data"].as_object().expect("data") {
        std::fs::write(config_dir.join(file), content.as_str().expect("text")).expect("writes");
    }
    let mount = "/etc/purchase-guard/config/";
    let args: Vec<String> = deployment
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .expect("the container's args")
        .iter()
        .map(|a| {
            a.as_str()
                .expect("a string argument")
                .replace(mount, &format!("{}/", config_dir.display()))
        })
        .collect();
    env.platform = Platform::Sandbox {
        sandbox: Box::new(sandbox),
        controller_kubeconfig: as_service_account(&kubeconfig),
        args,
        webhook_ports,
        replicas: [None, None],
        started: 0,
    };
    env.start_replica(0, None);
    env.start_replica(1, None);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story() {
    let mut env = match std::env::var_os("E2E_KUBECONFIG") {
        Some(path) => Env {
            kubeconfig: PathBuf::from(path),
            platform: Platform::Cluster,
        },
        None => sandbox_platform().await,
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let example = |f: &str| format!("{root}/examples/{f}");

    // The platform admin sets up partners, customers and their resources (no --as).
    env.ok(&["apply", "-f", &example("billable-crd")], None);
    env.ok(
        &["wait", "--for=condition=established", "crd", "--all", "--timeout=60s"],
        None,
    );
    for f in ["00-namespaces.yaml", "01-partners.yaml", "03-customers.yaml"] {
        env.ok(&["apply", "-f", &example(f)], None);
    }
    env.ok(&["apply", "-f", "-"], Some(TENANT_ROLE));
    let mut bindings = String::new();
    for (ns, role, user) in [
        ("dist-emea", "purchaseguard-distributor", "dist-op"),
        ("reseller-alpha", "purchaseguard-reseller", "alpha-op"),
        ("reseller-beta", "purchaseguard-reseller", "beta-op"),
    ] {
        bindings.push_str(&binding(ns, role, user));
    }
    for ns in ["globex", "initech", "acme-prod", "acme-dev"] {
        bindings.push_str(&binding(ns, "e2e-tenant", "tenant"));
    }
    env.ok(&["apply", "-f", "-"], Some(&bindings));
    // Resources bought before any restriction applies (in the sandbox the webhooks already
    // run; the admin's purchases in a restricted namespace are refused like anyone's, so
    // these are created while globex is still unrestricted by an explicit decision).
    env.allowed(
        "dist-op",
        &restriction("dist-emea", "globex", "Unrestricted", "New customer, credit checked"),
    );
    env.wait_for("customeraccount/globex", "{.status.decision.state}=Unrestricted");
    env.ok(&["apply", "-f", "-"], Some(&vm("globex", "db-1", "yearly-monthly", 2)));
    env.ok(&["apply", "-f", "-"], Some(&vm("globex", "batch-7", "spot", 8)));

    // The webhook configurations carry a CA bundle (written by purchase-guard, or cert-manager).
    for resource in [
        format!("validatingwebhookconfiguration/{RELEASE}"),
        format!("mutatingwebhookconfiguration/{RELEASE}"),
    ] {
        env.wait_for(&resource, "{.webhooks[0].clientConfig.caBundle}");
    }

    // The namespaces' labels are purchase-guard's, inside the API server (the chart's
    // ValidatingAdmissionPolicy, which needs no purchase-guard pod): not even the platform
    // admin sets them.
    let (changed, refusal) = env.run(
        &[
            "label",
            "namespace",
            "initech",
            "purchaseguard.io/purchases=allowed",
            "--overwrite",
        ],
        None,
    );
    assert!(!changed, "{refusal}");
    assert!(
        refusal.contains("ValidatingAdmissionPolicy 'purchase-guard-namespace-labels' with binding 'purchase-guard-namespace-labels' denied request: the label purchaseguard.io/purchases is set by purchase-guard alone"),
        "{refusal}"
    );

    // R1: a Reseller-model customer without a decision is restricted by default; its new
    // resources are refused.
    env.wait_for("customeraccount/initech", "{.status.decision.state}=Restricted");
    env.denied(
        "tenant",
        &vm("initech", "new-vm", "pay-per-use", 2),
        &[
            r#"admission webhook "purchases.purchaseguard.io" denied the request"#,
            "R7",
            "\"initech\"",
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
    // The customer's history and its event name who made the change.
    env.wait_for("customeraccount/globex", "{.status.history[-1:].user}=dist-op");
    // The event follows the status write.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = env.ok(
            &[
                "get",
                "events.events.k8s.io",
                "-A",
                "-o",
                "jsonpath={range .items[*]}{.note}{\"\\n\"}{end}",
            ],
            None,
        );
        if events
            .lines()
            .any(|e| e.contains("globex") && e.contains("changed by \"dist-op\""))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no event names dist-op: {events}");
        std::thread::sleep(Duration::from_millis(200));
    }

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

    // R8: restrict and freeze: the pay-per-use resources stop (with the chart's
    // RBAC: the VMs' patch action, the Deployment's scale subresource), the prepaid one keeps
    // running; scaling up is refused; R9: the unfreeze restores them.
    env.allowed("tenant", &deployment("globex", "web", "pay-per-use", 2));
    env.allowed("tenant", &daemonset("globex", "agent"));
    env.allowed(
        "dist-op",
        &restriction(
            "dist-emea",
            "globex",
            "RestrictedAndFrozen",
            "Chargeback on the card, case 2026-3307",
        ),
    );
    env.wait_for(
        "customeraccount/globex",
        r#"{.status.conditions[?(@.type=="ResourcesFrozen")].status}=True"#,
    );
    env.wait_all(
        "globex",
        &[
            ("virtualmachine/new-vm", "{.spec.running}=false"),
            ("virtualmachine/db-1", "{.spec.running}=true"),
            ("deployment/web", "{.spec.replicas}=0"),
        ],
    );
    let (scaled, refusal) = env.run(
        &[
            "--as",
            "tenant",
            "scale",
            "deployment/web",
            "-n",
            "globex",
            "--replicas=3",
        ],
        None,
    );
    assert!(!scaled && refusal.contains("R8"), "{refusal}");
    // The audit (with the chart's RBAC: reading DaemonSets, writing reports): the DaemonSet
    // cannot be frozen and is reported running; the frozen ones are not.
    env.wait_for_report("globex", "1 DaemonSet/agent RunningWhileFrozen");
    env.wait_for("customeraccount/globex", "{.status.audit.failures}=1");
    env.allowed(
        "dist-op",
        &restriction("dist-emea", "globex", "Unrestricted", "Chargeback resolved"),
    );
    env.wait_for(
        "customeraccount/globex",
        r#"{.status.conditions[?(@.type=="ResourcesFrozen")].reason}=Unfrozen"#,
    );
    env.wait_all(
        "globex",
        &[
            ("virtualmachine/new-vm", "{.spec.running}=true"),
            ("deployment/web", "{.spec.replicas}=2"),
        ],
    );
    // Unrestricted: nothing is out of line, the report goes.
    env.wait_for_report("globex", "");

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

    // A restart of every replica loses nothing: statuses and decisions hold, the webhooks
    // judge the same way.
    env.restart(None);
    env.wait_for("customeraccount/acme", "{.status.decision.partner}=reseller-alpha");
    env.wait_for("customeraccount/globex", "{.status.decision.state}=Unrestricted");
    env.denied(
        "tenant",
        &vm("acme-dev", "extra", "pay-per-use", 2),
        &["customer \"acme\"", "Card declined on renewal"],
    );

    // Leader failover: the leader dies without releasing the lease; the other replica takes
    // over and reconciles the next decision.
    let (old, new) = env.kill_leader();
    assert_ne!(old, new);
    env.allowed(
        "dist-op",
        &restriction("dist-emea", "globex", "Restricted", "Invoice INV-2026-1201 overdue"),
    );
    env.wait_for(
        "customeraccount/globex",
        "{.status.decision.reason}=Invoice INV-2026-1201 overdue",
    );
    env.denied(
        "tenant",
        &vm("globex", "after-failover", "pay-per-use", 2),
        &["customer \"globex\"", "Invoice INV-2026-1201 overdue"],
    );

    // R5: dist-emea enrols an authenticator; from then on its restriction operations need a
    // code, read by purchase-guard with the chart's RBAC (the Secret, the ledger, events).
    let purchase_guard = |args: &[&str]| support::purchase_guard(&env.kubeconfig, args);
    support::enroll_dist_emea(&env.kubeconfig, &["--no-qr"]);
    env.ok(
        &[
            "patch",
            "partner/dist-emea",
            "--type=merge",
            "-p",
            r#"{"spec":{"verification":{"secretRef":{"name":"purchase-guard-verification"}}}}"#,
        ],
        None,
    );
    env.wait_for(
        "partner/dist-emea",
        r#"{.status.conditions[?(@.type=="VerificationReady")].status}=True"#,
    );
    let verified = restriction(
        "dist-emea",
        "globex",
        "Restricted",
        "Invoice INV-2026-1201 overdue, second reminder",
    );
    env.denied("dist-op", &verified, &["a verification code is required"]);
    let secret = env.ok(
        &[
            "get",
            "secret",
            "purchase-guard-verification",
            "-n",
            "dist-emea",
            "-o",
            "yaml",
        ],
        None,
    );
    let secret_file = env.kubeconfig.with_extension("otp.yaml");
    std::fs::write(&secret_file, secret).expect("writes the secret file");
    let code = purchase_guard(&[
        "verification",
        "code",
        "--secret-file",
        secret_file.to_str().expect("utf-8"),
    ]);
    let _ = std::fs::remove_file(&secret_file);
    let with_code = verified.replace(
        "  namespace: dist-emea\n",
        &format!(
            "  namespace: dist-emea\n  annotations:\n    purchaseguard.io/verification-code: \"{}\"\n",
            code.trim()
        ),
    );
    env.allowed("dist-op", &with_code);
    env.wait_for(
        "customeraccount/globex",
        "{.status.decision.reason}=Invoice INV-2026-1201 overdue, second reminder",
    );
    env.denied("dist-op", &with_code.replace("second", "third"), &["already used"]);

    if let Platform::Sandbox { .. } = env.platform {
        // Warn mode (on a cluster it is a helm upgrade): allowed, and kubectl prints the warning.
        env.restart(Some(("--enforcement=deny", "--enforcement=warn")));
        let text = env.allowed("tenant", &vm("acme-dev", "extra", "pay-per-use", 2));
        assert!(
            text.contains("Warning: purchase-guard (enforcement: warn) would deny this") && text.contains("acme"),
            "{text}"
        );
    }
    let kubeconfig = env.kubeconfig.clone();
    if let Platform::Sandbox {
        sandbox,
        replicas,
        controller_kubeconfig,
        ..
    } = env.platform
    {
        drop(replicas);
        sandbox.shutdown().await;
        let _ = std::fs::remove_file(&kubeconfig);
        let _ = std::fs::remove_file(&controller_kubeconfig);
    }
}
