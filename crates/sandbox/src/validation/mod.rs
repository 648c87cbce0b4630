//! kube-apiserver's validation of objects' content, for the rules clients meet most: labels
//! and annotation keys of every object; Pod specs and templates (containers, ports, restart
//! policies); workload selectors, replicas and their immutable selectors; ConfigMap and Secret
//! keys, `immutable` and Secret types; Service types and ports. Each problem is worded as
//! kube-apiserver words it (`k8s.io/apimachinery/pkg/util/validation` and
//! `pkg/apis/*/validation`), with the Go formatting of the values it prints.

mod networking;
mod pod_spec;
mod pods;
mod rbac;
mod storage;

pub use pods::{go_zero, merge_resize, qos_class};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

/// A string field of `v`, or "".
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A field of `v` that is set (not absent, not null).
fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The items of a list field of `v` (none when absent).
fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Each of `problems` found in `value`, refused as an invalid value at `field` (the value
/// quoted as Go quotes a string).
fn invalid_each<P: AsRef<str>>(
    field: &str,
    value: &str,
    problems: impl IntoIterator<Item = P>,
    out: &mut Vec<Problem>,
) {
    for p in problems {
        out.push(Problem::invalid(field, &format!("{value:?}"), p.as_ref()));
    }
}

/// The refusals of a name that must be a DNS subdomain (RFC 1123), one per problem.
fn subdomain(field: &str, value: &str, out: &mut Vec<Problem>) {
    invalid_each(
        field,
        value,
        purchase_guard_crd_validation::validate_dns1123_subdomain(value),
        out,
    );
}

/// One field error: the field's path, the cause's reason, and the message after the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    fn required(field: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        }
    }

    /// An invalid value; `shown` is the value as Go prints it.
    fn invalid(field: impl Into<String>, shown: &str, detail: &str) -> Self {
        Problem {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {shown}: {detail}"),
        }
    }

    fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Problem {
            field: field.into(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {value:?}: supported values: {}",
                supported.join(", ")
            ),
        }
    }

    /// A required value with kube-apiserver's explanation.
    fn required_because(field: impl Into<String>, detail: &str) -> Self {
        Problem {
            field: field.into(),
            reason: "FieldValueRequired",
            message: format!("Required value: {detail}"),
        }
    }

    fn not_found(field: impl Into<String>, value: &str) -> Self {
        Problem {
            field: field.into(),
            reason: "FieldValueNotFound",
            message: format!("Not found: {value:?}"),
        }
    }

    fn duplicate(field: impl Into<String>, value: &str) -> Self {
        Problem {
            field: field.into(),
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {value:?}"),
        }
    }

    fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Problem {
            field: field.into(),
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
        }
    }
}

/// Everything kube-apiserver would refuse in `obj` (a create when `old` is `None`, else an
/// update of `old` through `subresource`, or through the object itself when `None`), for the
/// kind `kind` of API group `group`. Custom resources get the metadata checks only: their
/// content is their CRD's to judge.
pub fn problems(
    group: &str,
    kind: &str,
    custom: bool,
    obj: &Value,
    old: Option<&Value>,
    subresource: Option<&str>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    metadata(obj.get("metadata"), "metadata", &mut out);
    if custom {
        return out;
    }
    let spec = obj.get("spec");
    match (group, kind) {
        ("", "Pod") => {
            let volumes = pod_spec(spec, "spec", PodContext::Pod, &mut out);
            let empty = Value::Null;
            let (spec, old_spec) = (
                spec.unwrap_or(&empty),
                old.and_then(|o| o.get("spec")).unwrap_or(&empty),
            );
            match (old, subresource) {
                (None, _) => pods::create(spec, &mut out),
                (Some(_), None) => pods::update(spec, old_spec, &mut out),
                (Some(_), Some("ephemeralcontainers")) => pods::ephemeral_update(spec, old_spec, &volumes, &mut out),
                (Some(old), Some("resize")) => pods::resize(obj, old, &mut out),
                (Some(_), Some(_)) => {}
            }
        }
        ("", "PodTemplate") => pod_template(obj.get("template"), "template", PodContext::Pod, &mut out),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            workload(kind, spec, old.and_then(|o| o.get("spec")), &mut out)
        }
        ("", "ReplicationController") => {
            replicas(spec, "spec.replicas", &mut out);
            let template = spec.and_then(|s| s.get("template"));
            pod_template(template, "spec.template", PodContext::Replicated, &mut out);
            no_deadline(template, "ReplicationController", &mut out);
        }
        ("batch", "Job") => {
            job_spec(spec, "spec", &mut out);
            if let Some(old) = old.filter(|_| subresource.is_none()) {
                job_update(spec.unwrap_or(&Value::Null), old, &mut out);
            }
        }
        ("batch", "CronJob") => {
            cron_job(spec, &mut out);
            job_spec(
                spec.and_then(|s| s.pointer("/jobTemplate/spec")),
                "spec.jobTemplate.spec",
                &mut out,
            )
        }
        ("", "PersistentVolumeClaim") if subresource.is_none() => {
            claim(spec, obj.get("status"), old.and_then(|o| o.get("spec")), &mut out)
        }
        ("networking.k8s.io", "Ingress") if subresource.is_none() => networking::ingress(spec, &mut out),
        ("networking.k8s.io", "IngressClass") => {
            networking::ingress_class(spec, old.and_then(|o| o.get("spec")), &mut out)
        }
        ("storage.k8s.io", "StorageClass") => storage::storage_class(obj, old, &mut out),
        ("", "ConfigMap") => config_map(obj, old, &mut out),
        ("", "Secret") => secret(obj, old, &mut out),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => rbac::role(obj, kind == "Role", &mut out),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            rbac::binding(obj, old, kind == "RoleBinding", &mut out)
        }
        ("", "Service") => {
            service(spec, &mut out);
            cluster_ip_fixed(spec, old.and_then(|o| o.get("spec")), &mut out);
        }
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------------------
// Names and values (k8s.io/apimachinery/pkg/util/validation)

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

static QUALIFIED_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{QUALIFIED_NAME_FMT}$")).expect("a valid constant pattern"));
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^({QUALIFIED_NAME_FMT})?$")).expect("a valid constant pattern"));
static CONFIG_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{CONFIG_KEY_FMT}$")).expect("a valid constant pattern"));

/// What kube-apiserver refuses in a name that must be a path segment (RBAC objects).
pub fn path_segment_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name == "." || name == ".." {
        problems.push(format!("may not be '{name}'"));
    }
    for c in ['/', '%'] {
        if name.contains(c) {
            problems.push(format!("may not contain '{c}'"));
        }
    }
    problems
}

/// apimachinery's `RegexError`: the message, examples, and the pattern.
fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{pattern}')",
        examples.join(" or ")
    )
}

/// `IsQualifiedName`: label keys, annotation keys.
pub fn qualified_name_problems(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for p in purchase_guard_crd_validation::validate_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {p}"));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !QUALIFIED_NAME.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
fn label_value_problems(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsConfigMapKey`: keys of ConfigMaps and Secrets.
fn config_key_problems(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !CONFIG_KEY.is_match(key) {
        errs.push(regex_error(
            CONFIG_KEY_MSG,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if key == "." {
        errs.push("must not be '.'".to_string());
    } else if key == ".." {
        errs.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// `IsValidPortNum`.
fn port_problem(field: String, port: &Value, out: &mut Vec<Problem>) {
    let n = port.as_i64().unwrap_or(0);
    if !(1..=65535).contains(&n) {
        out.push(Problem::invalid(
            field,
            &n.to_string(),
            "must be between 1 and 65535, inclusive",
        ));
    }
}

/// A Go `map[string]string` as `%#v` prints it: keys sorted.
fn go_string_map(map: Option<&Map<String, Value>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".into();
    };
    let sorted: BTreeMap<&String, &str> = map.iter().map(|(k, v)| (k, v.as_str().unwrap_or_default())).collect();
    let entries: Vec<String> = sorted.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", entries.join(", "))
}

/// A `*metav1.LabelSelector` as `%#v` prints it.
fn go_label_selector(selector: &Value) -> String {
    let labels = go_string_map(selector.get("matchLabels").and_then(Value::as_object));
    let expressions = match selector.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    let values = match r.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(v) => {
                            let v: Vec<String> = v
                                .iter()
                                .map(|x| format!("{:?}", x.as_str().unwrap_or_default()))
                                .collect();
                            format!("[]string{{{}}}", v.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{values}}}",
                        r["key"].as_str().unwrap_or_default(),
                        r["operator"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("&v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")
}

// ---------------------------------------------------------------------------------------
// Metadata (ValidateObjectMeta)

/// `ValidateLabels`: each key a qualified name, each value a label value, refused at `field`.
fn label_map(labels: &Map<String, Value>, field: &str, out: &mut Vec<Problem>) {
    for (key, value) in labels {
        invalid_each(field, key, qualified_name_problems(key), out);
        let value = value.as_str().unwrap_or_default();
        invalid_each(field, value, label_value_problems(value), out);
    }
}

/// `ValidateLabelSelector` (label values checked, as for new objects): its labels, and each
/// requirement's operator, values and key.
fn label_selector(selector: Option<&Value>, at: &str, out: &mut Vec<Problem>) {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return;
    };
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        label_map(labels, &format!("{at}.matchLabels"), out);
    }
    for (i, requirement) in items(selector, "matchExpressions").iter().enumerate() {
        let at = format!("{at}.matchExpressions[{i}]");
        let values = items(requirement, "values");
        match text(requirement, "operator") {
            "In" | "NotIn" if values.is_empty() => out.push(Problem::required_because(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => out.push(Problem::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => out.push(Problem::invalid(
                format!("{at}.operator"),
                &format!("{other:?}"),
                "not a valid selector operator",
            )),
        }
        let key = text(requirement, "key");
        invalid_each(&format!("{at}.key"), key, qualified_name_problems(key), out);
        for (j, value) in values.iter().enumerate() {
            let value = value.as_str().unwrap_or_default();
            invalid_each(&format!("{at}.values[{j}]"), value, label_value_problems(value), out);
        }
    }
}

/// The labels and annotation keys of the metadata at `path` (`metadata`, or a template's).
fn metadata(meta: Option<&Value>, path: &str, out: &mut Vec<Problem>) {
    let Some(meta) = meta else { return };
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        label_map(labels, &format!("{path}.labels"), out);
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let field = format!("{path}.annotations");
        for key in annotations.keys() {
            invalid_each(&field, key, qualified_name_problems(&key.to_lowercase()), out);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pods and templates (pkg/apis/core/validation)

#[derive(Clone, Copy, PartialEq, Eq)]
enum PodContext {
    /// A Pod or a PodTemplate: any restart policy.
    Pod,
    /// The template of a Deployment, ReplicaSet, StatefulSet, DaemonSet or
    /// ReplicationController: `Always` only.
    Replicated,
    /// The template of a Job: `OnFailure` or `Never`.
    Job,
}

fn pod_template(template: Option<&Value>, path: &str, context: PodContext, out: &mut Vec<Problem>) {
    let Some(template) = template else {
        out.push(Problem::required(path));
        return;
    };
    metadata(template.get("metadata"), &format!("{path}.metadata"), out);
    pod_spec(template.get("spec"), &format!("{path}.spec"), context, out);
}

/// A pod spec's problems; returns the names of its valid volumes, which containers may mount.
fn pod_spec(spec: Option<&Value>, path: &str, context: PodContext, out: &mut Vec<Problem>) -> HashSet<String> {
    let empty = Value::Null;
    let spec = spec.unwrap_or(&empty);
    let volumes = pod_spec::volumes(spec, path, out);
    // Regular containers first, then init containers, whose names must differ from theirs
    // too (kube-apiserver's order).
    let containers = items(spec, "containers");
    if containers.is_empty() {
        out.push(Problem::required(format!("{path}.containers")));
    }
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        container(c, &at, &volumes, out);
        let name = text(c, "name");
        if !names.insert(name) {
            out.push(Problem::duplicate(format!("{at}.name"), name));
        }
        pod_spec::probes(c, &at, pod_spec::Probes::Allowed, out);
    }
    for (i, c) in items(spec, "initContainers").iter().enumerate() {
        let at = format!("{path}.initContainers[{i}]");
        container(c, &at, &volumes, out);
        let name = text(c, "name");
        if names.contains(name) {
            out.push(Problem::duplicate(format!("{at}.name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        let sidecar = text(c, "restartPolicy") == "Always";
        let probes = if sidecar {
            pod_spec::Probes::Allowed
        } else {
            pod_spec::Probes::Forbidden
        };
        pod_spec::probes(c, &at, probes, out);
    }
    // Defaulted to Always before validation when unset.
    let policy = spec.get("restartPolicy").and_then(Value::as_str).unwrap_or("Always");
    let field = format!("{path}.restartPolicy");
    match context {
        PodContext::Pod if !matches!(policy, "Always" | "OnFailure" | "Never") => {
            out.push(Problem::not_supported(field, policy, &["Always", "OnFailure", "Never"]))
        }
        PodContext::Replicated if policy != "Always" => out.push(Problem::not_supported(field, policy, &["Always"])),
        PodContext::Job if !matches!(policy, "OnFailure" | "Never") => {
            out.push(Problem::not_supported(field, policy, &["OnFailure", "Never"]))
        }
        _ => {}
    }
    // In kube-apiserver's order.
    pod_spec::node_selector(spec, path, out);
    pod_spec::pod_security(spec, path, out);
    pod_spec::affinity(spec, path, out);
    pod_spec::tolerations(spec, path, out);
    pod_spec::topology_spread(spec, path, out);
    pod_spec::host_process(spec, path, out);
    volumes
}

/// What kube-apiserver checks of every kind of container (`validateContainerCommon`): name,
/// image, ports, environment, volume mounts, resources, security context.
fn container(c: &Value, at: &str, volumes: &HashSet<String>, out: &mut Vec<Problem>) {
    match text(c, "name") {
        "" => out.push(Problem::required(format!("{at}.name"))),
        name => {
            invalid_each(
                &format!("{at}.name"),
                name,
                purchase_guard_crd_validation::validate_dns1123_label(name),
                out,
            );
        }
    }
    if text(c, "image").is_empty() {
        out.push(Problem::required(format!("{at}.image")));
    }
    let mut port_names = HashSet::new();
    for (j, port) in items(c, "ports").iter().enumerate() {
        let p = format!("{at}.ports[{j}]");
        let name = text(port, "name");
        if !name.is_empty() {
            let problems = pod_spec::port_name_problems(name);
            for problem in &problems {
                out.push(Problem::invalid(format!("{p}.name"), &format!("{name:?}"), problem));
            }
            if problems.is_empty() && !port_names.insert(name) {
                out.push(Problem::duplicate(format!("{p}.name"), name));
            }
        }
        match port.get("containerPort") {
            None | Some(Value::Null) => out.push(Problem::required(format!("{p}.containerPort"))),
            Some(n) if n.as_i64() == Some(0) => out.push(Problem::required(format!("{p}.containerPort"))),
            Some(n) => port_problem(format!("{p}.containerPort"), n, out),
        }
        if let Some(host) = port.get("hostPort").filter(|h| h.as_i64().is_some_and(|h| h != 0)) {
            port_problem(format!("{p}.hostPort"), host, out);
        }
        protocol(port, &p, out);
    }
    pod_spec::env(c, at, out);
    pod_spec::volume_mounts(c, at, volumes, out);
    pods::requests_within_limits(c, at, out);
    pod_spec::container_security(c, at, out);
}

/// A port's protocol: TCP when unset (defaulted before validation).
fn protocol(port: &Value, path: &str, out: &mut Vec<Problem>) {
    let protocol = port.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
    if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
        out.push(Problem::not_supported(
            format!("{path}.protocol"),
            protocol,
            &["SCTP", "TCP", "UDP"],
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Workloads (pkg/apis/apps/validation, pkg/apis/batch/validation)

fn replicas(spec: Option<&Value>, field: &str, out: &mut Vec<Problem>) {
    if let Some(n) = spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64)
        && n < 0
    {
        out.push(Problem::invalid(
            field,
            &n.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

/// Whether a LabelSelector (as JSON) selects `labels`.
fn selects(selector: &Value, labels: &Map<String, Value>) -> bool {
    let by_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let by_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|list| {
            list.iter().all(|r| {
                let key = r["key"].as_str().unwrap_or_default();
                let values: Vec<&str> = r
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let value = labels.get(key).and_then(Value::as_str);
                match r["operator"].as_str().unwrap_or_default() {
                    "In" => value.is_some_and(|v| values.contains(&v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(&v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
        });
    by_labels && by_expressions
}

fn workload(kind: &str, spec: Option<&Value>, old_spec: Option<&Value>, out: &mut Vec<Problem>) {
    if kind != "DaemonSet" {
        replicas(spec, "spec.replicas", out);
    }
    let selector = spec.and_then(|s| s.get("selector")).filter(|s| !s.is_null());
    let template = spec.and_then(|s| s.get("template"));
    match selector {
        None => out.push(Problem::required("spec.selector")),
        Some(s) => {
            let empty = s
                .get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
                && s.get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
            if empty {
                out.push(Problem::invalid(
                    "spec.selector",
                    &go_label_selector(s),
                    &format!("empty selector is invalid for {}", kind.to_lowercase()),
                ));
            } else {
                let labels = template
                    .and_then(|t| t.pointer("/metadata/labels"))
                    .and_then(Value::as_object);
                if !selects(s, labels.unwrap_or(&Map::new())) {
                    out.push(Problem::invalid(
                        "spec.template.metadata.labels",
                        &go_string_map(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            // A StatefulSet's selector is fixed with the rest of its spec (below).
            if let Some(old) = old_spec.and_then(|o| o.get("selector")).filter(|o| !o.is_null())
                && old != s
                && kind != "StatefulSet"
            {
                out.push(Problem::invalid(
                    "spec.selector",
                    &go_label_selector(s),
                    "field is immutable",
                ));
            }
        }
    }
    if kind != "StatefulSet" {
        pod_template(template, "spec.template", PodContext::Replicated, out);
        // Deployments' templates are judged as ReplicaSets' are, and say so.
        let owner = if kind == "DaemonSet" { "DaemonSet" } else { "ReplicaSet" };
        no_deadline(template, owner, out);
        return;
    }
    // kube-apiserver does not judge a StatefulSet's pod spec (its volume mounts may name claim
    // templates): only the template's labels and annotations, its restart policy and its
    // deadline; and once created, only some of the spec may change.
    let Some(template) = template else {
        out.push(Problem::required("spec.template"));
        return;
    };
    metadata(template.get("metadata"), "spec.template", out);
    let policy = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "Always" {
        out.push(Problem::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    no_deadline(Some(template), "StatefulSet", out);
    if let (Some(spec), Some(old)) = (spec, old_spec) {
        const MUTABLE: [&str; 7] = [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        ];
        let fixed = |s: &Value| {
            let mut s = pods::semantic(s);
            if let Some(m) = s.as_object_mut() {
                m.retain(|k, _| !MUTABLE.contains(&k.as_str()));
            }
            s
        };
        if fixed(spec) != fixed(old) {
            out.push(Problem::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
}

/// The template of a controller whose Pods run until replaced may not set a deadline.
fn no_deadline(template: Option<&Value>, owner: &str, out: &mut Vec<Problem>) {
    if template
        .and_then(|t| t.pointer("/spec/activeDeadlineSeconds"))
        .is_some_and(|v| !v.is_null())
    {
        out.push(Problem::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
}

/// A PersistentVolumeClaim (`ValidatePersistentVolumeClaim`, `...Update`): access modes and a
/// storage request; once created, the spec is fixed but for the volume name, set once, and the
/// storage request of a bound claim. kube-apiserver follows the refusal of a spec change with
/// a diff of the specs, which is not reproduced.
fn claim(spec: Option<&Value>, status: Option<&Value>, old_spec: Option<&Value>, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let spec = spec.unwrap_or(&empty);
    let modes = items(spec, "accessModes");
    if modes.is_empty() {
        out.push(Problem::required_because(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    const MODES: [&str; 4] = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
    for mode in modes {
        let mode = mode.as_str().unwrap_or_default();
        if !MODES.contains(&mode) {
            out.push(Problem::not_supported("spec.accessModes", mode, &MODES));
        }
    }
    if spec.pointer("/resources/requests/storage").is_none_or(Value::is_null) {
        out.push(Problem::required("spec.resources[storage]"));
    }
    let Some(old) = old_spec else { return };
    let bound = status.and_then(|s| s.get("phase")).and_then(Value::as_str) == Some("Bound");
    // The volume name may be set once; a bound claim's storage request may change.
    let unset = text(old, "volumeName").is_empty();
    let comparable = |s: &Value| {
        let mut s = s.clone();
        if let Some(m) = s.as_object_mut() {
            if unset {
                m.remove("volumeName");
            }
            if bound
                && let Some(requests) = m
                    .get_mut("resources")
                    .and_then(|r| r.get_mut("requests"))
                    .and_then(Value::as_object_mut)
            {
                requests.remove("storage");
            }
        }
        pods::semantic(&s)
    };
    if comparable(spec) != comparable(old) {
        out.push(Problem::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests for bound claims",
        ));
    }
}

fn job_spec(spec: Option<&Value>, path: &str, out: &mut Vec<Problem>) {
    for field in ["parallelism", "completions", "backoffLimit"] {
        if let Some(n) = spec.and_then(|s| s.get(field)).and_then(Value::as_i64)
            && n < 0
        {
            out.push(Problem::invalid(
                format!("{path}.{field}"),
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    pod_template(
        spec.and_then(|s| s.get("template")),
        &format!("{path}.template"),
        PodContext::Job,
        out,
    );
}

/// What a Job keeps once created (`ValidateJobSpecUpdate`): its selector, completion mode
/// and completions (but for an elastic Indexed Job, whose completions follow its
/// parallelism), and its pod template, of which a suspended Job that never started may change
/// the scheduling directives (node selector, tolerations, scheduling gates) and labels and
/// annotations. kube-apiserver prints the whole template as a Go value where the sandbox
/// writes `core.PodTemplateSpec{...}`.
fn job_update(spec: &Value, old: &Value, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let old_spec = old.get("spec").unwrap_or(&empty);
    let int = |s: &Value, f: &str| s.get(f).and_then(Value::as_i64);
    let elastic = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed")
        && int(spec, "completions") == int(spec, "parallelism")
        && int(old_spec, "completions") == int(old_spec, "parallelism");
    if int(spec, "completions") != int(old_spec, "completions") && !elastic {
        let shown = int(spec, "completions").map_or(r#""null""#.to_string(), |n| n.to_string());
        out.push(Problem::invalid("spec.completions", &shown, "field is immutable"));
    }
    let selector = |s: &Value| pods::semantic(s.get("selector").unwrap_or(&Value::Null));
    if selector(spec) != selector(old_spec) {
        let shown = match spec.get("selector").filter(|s| !s.is_null()) {
            Some(s) => go_label_selector(s).trim_start_matches('&').to_string(),
            None => r#""null""#.to_string(),
        };
        out.push(Problem::invalid("spec.selector", &shown, "field is immutable"));
    }
    let mode = |s: &Value| {
        s.get("completionMode")
            .and_then(Value::as_str)
            .unwrap_or("NonIndexed")
            .to_string()
    };
    if mode(spec) != mode(old_spec) {
        out.push(Problem::invalid(
            "spec.completionMode",
            &format!("{:?}", mode(spec)),
            "field is immutable",
        ));
    }
    let never_started = old_spec.get("suspend").and_then(Value::as_bool) == Some(true)
        && old.pointer("/status/startTime").is_none_or(Value::is_null);
    // What a suspended Job that never started may change, by part of its template.
    let mutable = [
        ("/metadata", &["labels", "annotations"][..]),
        ("/spec", &["nodeSelector", "tolerations", "schedulingGates"][..]),
    ];
    let template = |s: &Value| {
        let mut t = pods::semantic(s.get("template").unwrap_or(&Value::Null));
        for (at, fields) in mutable.iter().filter(|_| never_started) {
            if let Some(part) = t.pointer_mut(at).and_then(Value::as_object_mut) {
                part.retain(|field, _| !fields.contains(&field.as_str()));
            }
        }
        t
    };
    if template(spec) != template(old_spec) {
        out.push(Problem::invalid(
            "spec.template",
            "core.PodTemplateSpec{...}",
            "field is immutable",
        ));
    }
}

/// A CronJob's schedule and time zone.
fn cron_job(spec: Option<&Value>, out: &mut Vec<Problem>) {
    match spec.and_then(|s| s.get("schedule")).and_then(Value::as_str) {
        None | Some("") => out.push(Problem::required("spec.schedule")),
        Some(schedule) if schedule.contains("TZ") => out.push(Problem::invalid(
            "spec.schedule",
            &format!("{schedule:?}"),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        )),
        Some(schedule) => {
            if let Err(e) = crate::cron::Schedule::parse(schedule) {
                out.push(Problem::invalid("spec.schedule", &format!("{schedule:?}"), &e));
            }
        }
    }
    if let Some(zone) = spec.and_then(|s| s.get("timeZone")).and_then(Value::as_str)
        && jiff::tz::TimeZone::get(zone).is_err()
    {
        out.push(Problem::invalid(
            "spec.timeZone",
            &format!("{zone:?}"),
            &format!("unknown time zone {zone}"),
        ));
    }
}

// ---------------------------------------------------------------------------------------
// ConfigMaps, Secrets, Services

fn keys<'a>(obj: &'a Value, field: &str) -> impl Iterator<Item = &'a String> {
    obj.get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
}

/// Whether `field` changed between two objects (absent and empty are the same).
fn changed(obj: &Value, old: &Value, field: &str) -> bool {
    let of = |v: &Value| {
        v.get(field)
            .filter(|x| !x.is_null() && x.as_object().is_none_or(|m| !m.is_empty()))
            .cloned()
    };
    of(obj) != of(old)
}

/// `immutable: true` freezes the data fields, and itself.
fn immutable(obj: &Value, old: Option<&Value>, fields: &[&str], out: &mut Vec<Problem>) {
    let Some(old) = old.filter(|o| o.get("immutable").and_then(Value::as_bool) == Some(true)) else {
        return;
    };
    const WHY: &str = "field is immutable when `immutable` is set";
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        out.push(Problem::forbidden("immutable", WHY));
    }
    for field in fields {
        if changed(obj, old, field) {
            out.push(Problem::forbidden(*field, WHY));
        }
    }
}

fn config_map(obj: &Value, old: Option<&Value>, out: &mut Vec<Problem>) {
    let binary: HashSet<&String> = keys(obj, "binaryData").collect();
    for key in keys(obj, "data") {
        invalid_each(&format!("data[{key}]"), key, config_key_problems(key), out);
        if binary.contains(key) {
            out.push(Problem::invalid(
                format!("data[{key}]"),
                &format!("{key:?}"),
                "duplicate of key present in binaryData",
            ));
        }
    }
    for key in keys(obj, "binaryData") {
        invalid_each(&format!("binaryData[{key}]"), key, config_key_problems(key), out);
    }
    immutable(obj, old, &["data", "binaryData"], out);
}

fn secret(obj: &Value, old: Option<&Value>, out: &mut Vec<Problem>) {
    for key in keys(obj, "data").chain(keys(obj, "stringData")) {
        invalid_each(&format!("data[{key}]"), key, config_key_problems(key), out);
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    let required: &[&str] = match kind {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    let present: HashSet<&String> = keys(obj, "data").chain(keys(obj, "stringData")).collect();
    for key in required {
        if !present.contains(&key.to_string()) {
            out.push(Problem::required(format!("data[{key}]")));
        }
    }
    if let Some(old) = old {
        let was = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        if was != kind {
            out.push(Problem::invalid("type", &format!("{kind:?}"), "field is immutable"));
        }
    }
    immutable(obj, old, &["data"], out);
}

fn service(spec: Option<&Value>, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let spec = spec.unwrap_or(&empty);
    let kind = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP");
    if !matches!(kind, "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort") {
        out.push(Problem::not_supported(
            "spec.type",
            kind,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if ports.is_empty() && !headless && kind != "ExternalName" {
        out.push(Problem::required("spec.ports"));
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match port.get("name").and_then(Value::as_str).unwrap_or_default() {
            "" if ports.len() > 1 => out.push(Problem::required(format!("{at}.name"))),
            "" => {}
            name => {
                invalid_each(
                    &format!("{at}.name"),
                    name,
                    purchase_guard_crd_validation::validate_dns1123_label(name),
                    out,
                );
                if !names.insert(name) {
                    out.push(Problem::duplicate(format!("{at}.name"), name));
                }
            }
        }
        port_problem(format!("{at}.port"), port.get("port").unwrap_or(&Value::Null), out);
        protocol(port, &at, out);
        if let Some(target) = port.get("targetPort").filter(|t| t.is_number()) {
            port_problem(format!("{at}.targetPort"), target, out);
        }
    }
}

/// A Service's cluster IP, once set, stays while its type has one (`ValidateServiceUpdate`).
fn cluster_ip_fixed(spec: Option<&Value>, old: Option<&Value>, out: &mut Vec<Problem>) {
    let ip = |s: Option<&Value>| {
        s.and_then(|s| s.get("clusterIP"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let external = |s: Option<&Value>| s.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("ExternalName");
    let (was, now) = (ip(old), ip(spec));
    if old.is_none() || was.is_empty() || external(spec) || external(old) || was == now {
        return;
    }
    let ips: Vec<String> = spec
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| format!("{s:?}")).collect())
        .filter(|v: &Vec<String>| v.first() == Some(&format!("{now:?}")))
        .unwrap_or_else(|| vec![format!("{now:?}")]);
    out.push(Problem::invalid(
        "spec.clusterIPs[0]",
        &format!("[]string{{{}}}", ips.join(", ")),
        "may not change once set",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(group: &str, kind: &str, obj: Value, old: Option<Value>) -> Vec<String> {
        problems(group, kind, false, &obj, old.as_ref(), None)
            .into_iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect()
    }

    #[test]
    fn qualified_names_are_judged_part_by_part() {
        assert!(qualified_name_problems("app.kubernetes.io/name").is_empty());
        assert_eq!(qualified_name_problems("/x"), ["prefix part must be non-empty"]);
        assert_eq!(qualified_name_problems("a/b/c").len(), 1);
        assert!(qualified_name_problems("bad key")[0].starts_with("name part must consist of"));
        assert_eq!(
            qualified_name_problems(&"a".repeat(64)),
            ["name part must be no more than 63 characters"]
        );
    }

    #[test]
    fn a_deployment_is_judged_as_kube_apiserver_judges_it() {
        let good = json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        assert!(messages("apps", "Deployment", good.clone(), None).is_empty());
        let bad = json!({"metadata": {"name": "web"}, "spec": {
            "replicas": -1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"restartPolicy": "Never",
                "containers": [{"name": "app", "ports": [{"containerPort": 70000}]}, {"name": "app", "image": "x"}]}}}});
        assert_eq!(
            messages("apps", "Deployment", bad, None),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.template.spec.containers[1].name: Duplicate value: \"app\"",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let mut moved = good.clone();
        moved["spec"]["selector"]["matchLabels"]["tier"] = json!("front");
        moved["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front");
        assert_eq!(
            messages("apps", "Deployment", moved, Some(good)),
            [
                "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
    }

    #[test]
    fn jobs_need_a_restart_policy_that_ends() {
        let job = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
        assert_eq!(
            messages("batch", "Job", job, None),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ]
        );
    }

    #[test]
    fn config_maps_and_secrets() {
        let cm = json!({"data": {"bad key": "v", "k": "v"}, "binaryData": {"k": "dg=="}});
        let found = messages("", "ConfigMap", cm, None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key must consist"));
        assert_eq!(
            found[1],
            "data[k]: Invalid value: \"k\": duplicate of key present in binaryData"
        );
        let frozen = json!({"immutable": true, "data": {"a": "1"}});
        assert_eq!(
            messages("", "ConfigMap", json!({"data": {"a": "2"}}), Some(frozen)),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"
            ]
        );
        assert_eq!(
            messages(
                "",
                "Secret",
                json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
                None
            ),
            ["data[tls.key]: Required value"]
        );
        assert_eq!(
            messages(
                "",
                "Secret",
                json!({"type": "Opaque"}),
                Some(json!({"type": "kubernetes.io/basic-auth"}))
            ),
            ["type: Invalid value: \"Opaque\": field is immutable"]
        );
    }

    #[test]
    fn services_need_ports_with_names_when_several() {
        assert_eq!(
            messages("", "Service", json!({"spec": {}}), None),
            ["spec.ports: Required value"]
        );
        assert!(messages("", "Service", json!({"spec": {"clusterIP": "None"}}), None).is_empty());
        let two = json!({"spec": {"ports": [{"port": 80}, {"name": "b", "port": 0, "protocol": "HTTP"}]}});
        assert_eq!(
            messages("", "Service", two, None),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
    }

    #[test]
    fn labels_of_every_object_and_custom_resources_only_for_metadata() {
        let obj = json!({"metadata": {"labels": {"bad key": "ok", "k": "bad value!"}}, "spec": {}});
        let found = problems("example.com", "Widget", true, &obj, None, None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|p| p.field == "metadata.labels"));
        assert!(
            found[1]
                .message
                .starts_with("Invalid value: \"bad value!\": a valid label must be an empty string")
        );
    }
}
