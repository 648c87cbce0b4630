//! ValidatingAdmissionPolicies with the real kubectl: matching (rules, subresources, namespace
//! selectors in the binding), params, match conditions, variables, messages and reasons,
//! `namespaceObject`, `oldObject`, Warn and Deny, failure policies, DELETE; and the exact
//! text kubectl prints for a denial, as kube-apiserver words it.

use purchase_guard_sandbox::{Config, Sandbox};
use std::process::{Command, Stdio};

struct Kubectl(std::path::PathBuf);

impl Kubectl {
    /// (success, stdout, stderr) of `kubectl ARGS` fed `stdin`.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("writes");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("kubectl ends");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> (String, String) {
        let (ok, out, err) = self.run(args, stdin);
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        (out, err)
    }

    /// The error kubectl prints for a refused `args`.
    fn refused(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin);
        assert!(!ok, "kubectl {args:?} succeeded:\n{out}");
        err.trim().to_string()
    }
}

fn deployment(namespace: &str, name: &str, replicas: i64, labels: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {{"name": "{name}", "namespace": "{namespace}", "labels": {{{labels}}}}},
             "spec": {{"replicas": {replicas}, "selector": {{"matchLabels": {{"app": "{name}"}}}},
                      "template": {{"metadata": {{"labels": {{"app": "{name}"}}}},
                                   "spec": {{"containers": [{{"name": "app", "image": "nginx"}}]}}}}}}}}"#
    )
}

async fn sandbox(test: &str) -> (Sandbox, Kubectl) {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let kubeconfig = std::env::temp_dir().join(format!("pg-policies-{test}-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    (sandbox, Kubectl(kubeconfig))
}

/// The example of the Kubernetes documentation, and kubectl's exact output for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_reads_as_kube_apiserver_words_it() {
    let (_sandbox, k) = sandbox("words").await;
    k.ok(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: demo-policy.example.com
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: demo-binding-test.example.com
spec:
  policyName: demo-policy.example.com
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
---
apiVersion: v1
kind: Namespace
metadata:
  name: test
  labels:
    environment: test
---
apiVersion: v1
kind: Namespace
metadata:
  name: prod
"#,
        ),
    );
    // The status kube-apiserver's type checking writes once it has seen a generation.
    let (observed, _) = k.ok(
        &[
            "get",
            "validatingadmissionpolicy/demo-policy.example.com",
            "-o",
            "jsonpath={.metadata.generation} {.status.observedGeneration}",
        ],
        None,
    );
    assert_eq!(observed, "1 1");
    let (list, _) = k.ok(
        &["get", "validatingadmissionpolicies,validatingadmissionpolicybindings"],
        None,
    );
    assert!(
        list.contains("demo-policy.example.com") && list.contains("demo-binding-test.example.com"),
        "{list}"
    );
    let refused = k.refused(&["create", "-f", "-"], Some(&deployment("test", "nginx", 6, "")));
    assert_eq!(
        refused,
        "The deployments \"nginx\" is invalid: : ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5"
    );
    // A policy that does not compile, a binding without actions: refused at once.
    let refused = k.refused(
        &["apply", "-f", "-"],
        Some(
            r#"{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": "bad"},
                "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]},
                         "validations": [{"expression": "object.spec.replicas <="}]}}"#,
        ),
    );
    assert!(
        refused.starts_with("The ValidatingAdmissionPolicy \"bad\" is invalid: spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: "),
        "{refused}"
    );
    let refused = k.refused(
        &["apply", "-f", "-"],
        Some(
            r#"{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": "bad"}, "spec": {"policyName": "demo-policy.example.com"}}"#,
        ),
    );
    assert_eq!(
        refused,
        "The ValidatingAdmissionPolicyBinding \"bad\" is invalid: spec.validationActions: Required value: at least one validation action is required"
    );
    // An audit annotation that is not a string fails the request under failurePolicy Fail.
    k.ok(
        &["apply", "-f", "-"],
        Some(
            r#"{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": "annotated"},
                "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]},
                         "auditAnnotations": [{"key": "size", "valueExpression": "size(object.data)"}]}}
---
{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
 "metadata": {"name": "annotated"}, "spec": {"policyName": "annotated", "validationActions": ["Deny"]}}"#,
        ),
    );
    let refused = k.refused(&["create", "configmap", "c1", "-n", "test", "--from-literal=a=b"], None);
    assert!(
        refused.contains("valueExpression 'size(object.data)' resulted in error"),
        "{refused}"
    );
    k.ok(
        &[
            "delete",
            "validatingadmissionpolicybinding/annotated",
            "validatingadmissionpolicy/annotated",
        ],
        None,
    );
    // Within the bound, or outside the binding's namespaces: admitted.
    k.ok(&["create", "-f", "-"], Some(&deployment("test", "small", 5, "")));
    k.ok(&["create", "-f", "-"], Some(&deployment("prod", "nginx", 6, "")));
    // An update is judged too.
    let refused = k.refused(
        &[
            "patch",
            "deployment/small",
            "-n",
            "test",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":9}}"#,
        ],
        None,
    );
    assert!(
        refused.contains("denied request: failed expression: object.spec.replicas <= 5"),
        "{refused}"
    );
}

/// Params from a ConfigMap, variables, a message expression, a reason, the namespace object,
/// match conditions, Warn, the scale subresource and oldObject, failure policies, DELETE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_variables_messages_actions_and_failures() {
    let (_sandbox, k) = sandbox("all").await;
    k.ok(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    purchaseguard.io/purchases: restricted
---
apiVersion: v1
kind: Namespace
metadata:
  name: free
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: limits
  namespace: shop
data:
  max: "3"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: max-replicas
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  matchConditions:
  - name: not-the-operator
    expression: "request.userInfo.username != 'system:serviceaccount:ops:operator'"
  variables:
  - name: max
    expression: "int(params.data.max)"
  - name: wanted
    expression: "object.spec.replicas"
  validations:
  - expression: "variables.wanted <= variables.max"
    messageExpression: "'replicas ' + string(variables.wanted) + ' above the limit of ' + string(variables.max) + ' in ' + namespaceObject.metadata.name"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: max-replicas-shop
spec:
  policyName: max-replicas
  paramRef: {name: limits, parameterNotFoundAction: Deny}
  validationActions: [Deny]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: restricted-namespaces
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments", "deployments/scale"]
  validations:
  - expression: "namespaceObject.metadata.labels['purchaseguard.io/purchases'] != 'restricted' || request.operation != 'UPDATE' || object.spec.replicas <= oldObject.spec.replicas"
    message: "the namespace's purchases are restricted: no scaling up"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: restricted-namespaces-warn
spec:
  policyName: restricted-namespaces
  validationActions: [Warn]
"#,
        ),
    );
    // Params, variables, the message expression and the reason (Forbidden: 403).
    let refused = k.refused(&["create", "-f", "-"], Some(&deployment("shop", "web", 4, "")));
    assert_eq!(
        refused,
        "Error from server (Forbidden): error when creating \"STDIN\": deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-shop' denied request: replicas 4 above the limit of 3 in shop"
    );
    // A match condition exempts a user.
    k.ok(
        &["create", "-f", "-", "--as", "system:serviceaccount:ops:operator"],
        Some(&deployment("shop", "exempt", 4, "")),
    );
    // Params missing with parameterNotFoundAction Deny.
    let refused = k.refused(&["create", "-f", "-"], Some(&deployment("free", "web", 1, "")));
    assert!(
        refused.ends_with("ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-shop' denied request: no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{refused}"
    );
    // Warn: admitted, with kubectl's warning; through the scale subresource, oldObject and
    // object are Scales.
    k.ok(&["create", "-f", "-"], Some(&deployment("shop", "api", 2, "")));
    let (_, warned) = k.ok(&["scale", "deployment/api", "-n", "shop", "--replicas=3"], None);
    assert!(
        warned.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'restricted-namespaces' with binding 'restricted-namespaces-warn': the namespace's purchases are restricted: no scaling up"),
        "{warned}"
    );
    let (replicas, _) = k.ok(
        &["get", "deployment/api", "-n", "shop", "-o", "jsonpath={.spec.replicas}"],
        None,
    );
    assert_eq!(replicas, "3");

    // An expression that fails: failurePolicy Fail refuses, Ignore admits.
    k.ok(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: broken
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "DELETE"]
      resources: ["configmaps"]
  validations:
  - expression: "request.operation == 'DELETE' ? !has(oldObject.metadata.labels) || !('keep' in oldObject.metadata.labels) : object.data.missing == 'x'"
  auditAnnotations:
  - key: deleted-by
    valueExpression: "request.operation == 'DELETE' ? request.userInfo.username : null"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: broken
spec:
  policyName: broken
  validationActions: [Deny]
"#,
        ),
    );
    let cm = |name: &str, labels: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "{name}", "namespace": "free", "labels": {{{labels}}}}}, "data": {{"a": "b"}}}}"#
        )
    };
    let refused = k.refused(&["create", "-f", "-"], Some(&cm("one", "")));
    assert!(
        refused.contains("ValidatingAdmissionPolicy 'broken' with binding 'broken' denied request: expression 'request.operation == 'DELETE'")
            && refused.contains("resulted in error"),
        "{refused}"
    );
    k.ok(
        &[
            "patch",
            "validatingadmissionpolicy/broken",
            "--type=merge",
            "-p",
            r#"{"spec":{"failurePolicy":"Ignore"}}"#,
        ],
        None,
    );
    k.ok(&["create", "-f", "-"], Some(&cm("one", r#""keep": "yes""#)));
    k.ok(&["create", "-f", "-"], Some(&cm("two", "")));
    // DELETE: oldObject is the object, object is null.
    let refused = k.refused(&["delete", "configmap/one", "-n", "free"], None);
    assert!(
        refused.contains("denied request: failed expression: request.operation == 'DELETE'"),
        "{refused}"
    );
    k.ok(&["delete", "configmap/two", "-n", "free"], None);
}
