//! Ingresses as kube-apiserver judges them (`pkg/apis/networking/validation`): rules or a
//! default backend; hosts that are DNS names (a leading `*.` allowed), not addresses; HTTP
//! rules with paths whose type is given and whose path suits it; backends naming a Service
//! with one port (by name or number) or a typed resource, never both.

use super::pod_spec::port_name_problems;
use super::{Problem, items, present, text};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

const DNS1035: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const WILDCARD: &str = r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

static DNS1035_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{DNS1035}$")).expect("a valid constant pattern"));
static WILDCARD_SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{WILDCARD}$")).expect("a valid constant pattern"));

const PATH_TYPES: [&str; 3] = ["Exact", "ImplementationSpecific", "Prefix"];

/// apimachinery's `IsDNS1035Label` (Service names).
fn dns1035_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > 63 {
        problems.push("must be no more than 63 characters".to_string());
    }
    if !DNS1035_LABEL.is_match(name) {
        problems.push(format!("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '{DNS1035}')"));
    }
    problems
}

/// An Ingress host's problems: a wildcard subdomain (`*.example.com`) or a DNS subdomain.
fn host_problems(host: &str) -> Vec<String> {
    if host.contains('*') {
        wildcard_problems(host)
    } else {
        purchase_guard_crd_validation::validate_dns1123_subdomain(host)
    }
}

/// apimachinery's `IsWildcardDNS1123Subdomain`.
fn wildcard_problems(host: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if host.len() > 253 {
        problems.push("must be no more than 253 characters".to_string());
    }
    if !WILDCARD_SUBDOMAIN.is_match(host) {
        problems.push(format!("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '{WILDCARD}')"));
    }
    problems
}

/// An Ingress's spec.
pub fn ingress(spec: Option<&Value>, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let spec = spec.unwrap_or(&empty);
    let rules = items(spec, "rules");
    let default = present(spec, "defaultBackend");
    if rules.is_empty() && default.is_none() {
        let shown = if spec.get("rules").is_some_and(Value::is_array) {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        out.push(Problem::invalid(
            "spec",
            shown,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(backend) = default {
        self::backend(backend, "spec.defaultBackend", out);
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        let host = text(rule, "host");
        if !host.is_empty() {
            let shown = format!("{host:?}");
            if host.parse::<std::net::IpAddr>().is_ok() {
                out.push(Problem::invalid(
                    format!("{at}.host"),
                    &shown,
                    "must be a DNS name, not an IP address",
                ));
            }
            for p in host_problems(host) {
                out.push(Problem::invalid(format!("{at}.host"), &shown, &p));
            }
        }
        let Some(http) = present(rule, "http") else { continue };
        let paths = items(http, "paths");
        if paths.is_empty() {
            out.push(Problem::required(format!("{at}.http.paths")));
        }
        for (j, path) in paths.iter().enumerate() {
            http_path(path, &format!("{at}.http.paths[{j}]"), out);
        }
    }
    // `validateIngressTLS`: hosts as the rules' (wildcards allowed), Secret names.
    for (i, tls) in items(spec, "tls").iter().enumerate() {
        for (j, host) in items(tls, "hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or_default();
            super::invalid_each(&format!("spec.tls[{i}].hosts[{j}]"), host, host_problems(host), out);
        }
        let secret = text(tls, "secretName");
        if !secret.is_empty() {
            super::subdomain(&format!("spec.tls[{i}].secretName"), secret, out);
        }
    }
    if let Some(class) = present(spec, "ingressClassName") {
        let class = class.as_str().unwrap_or_default();
        super::subdomain("spec.ingressClassName", class, out);
    }
}

/// The longest controller name an IngressClass may have.
const MAX_CONTROLLER: usize = 250;

/// apimachinery's `httpPathFmt`: the path part of a domain-prefixed path.
const HTTP_PATH: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";

static HTTP_PATH_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{HTTP_PATH}$")).expect("a valid constant pattern"));

/// An IngressClass (`ValidateIngressClass`, and on update `ValidateIngressClassUpdate`'s fixed
/// controller first): a controller that is a domain-prefixed path of at most 250 bytes;
/// parameters that name a kind and an object, in a namespace exactly when their scope is
/// `Namespace`.
pub fn ingress_class(spec: Option<&Value>, old_spec: Option<&Value>, out: &mut Vec<Problem>) {
    let empty = Value::Null;
    let spec = spec.unwrap_or(&empty);
    let controller = text(spec, "controller");
    if let Some(old) = old_spec
        && text(old, "controller") != controller
    {
        out.push(Problem::invalid(
            "spec.controller",
            &format!("{controller:?}"),
            "field is immutable",
        ));
    }
    if controller.len() > MAX_CONTROLLER {
        out.push(Problem {
            field: "spec.controller".into(),
            reason: "FieldValueTooLong",
            message: format!("Too long: may not be more than {MAX_CONTROLLER} bytes"),
        });
    }
    // `IsDomainPrefixedPath`.
    match controller.split_once('/') {
        _ if controller.is_empty() => out.push(Problem::required("spec.controller")),
        Some((host, path)) if !host.is_empty() && !path.is_empty() => {
            super::subdomain("spec.controller", host, out);
            if !HTTP_PATH_RE.is_match(path) {
                out.push(Problem::invalid(
                    "spec.controller",
                    &format!("{path:?}"),
                    &format!("Invalid path (regex used for validation is '{HTTP_PATH}')"),
                ));
            }
        }
        _ => out.push(Problem::invalid(
            "spec.controller",
            &format!("{controller:?}"),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )),
    }
    let Some(parameters) = present(spec, "parameters") else {
        return;
    };
    let at = "spec.parameters";
    if let Some(group) = present(parameters, "apiGroup") {
        let group = group.as_str().unwrap_or_default();
        super::subdomain(&format!("{at}.apiGroup"), group, out);
    }
    kind_and_name(parameters, at, out);
    let namespace = present(parameters, "namespace").map(|n| n.as_str().unwrap_or_default());
    match present(parameters, "scope").map(|s| s.as_str().unwrap_or_default()) {
        None => out.push(Problem::required(format!("{at}.scope"))),
        Some("Namespace") => match namespace {
            None => out.push(Problem::required_because(
                format!("{at}.namespace"),
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(namespace) => {
                super::invalid_each(
                    &format!("{at}.namespace"),
                    namespace,
                    purchase_guard_crd_validation::validate_dns1123_label(namespace),
                    out,
                );
            }
        },
        Some("Cluster") => {
            if namespace.is_some() {
                out.push(Problem::forbidden(
                    format!("{at}.namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        Some(other) => out.push(Problem::not_supported(
            format!("{at}.scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
}

fn http_path(path: &Value, at: &str, out: &mut Vec<Problem>) {
    let Some(kind) = present(path, "pathType") else {
        out.push(Problem::required_because(
            format!("{at}.pathType"),
            "pathType must be specified",
        ));
        return;
    };
    let kind = kind.as_str().unwrap_or_default();
    let value = text(path, "path");
    let invalid = |detail: &str| Problem::invalid(format!("{at}.path"), &format!("{value:?}"), detail);
    match kind {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                out.push(invalid("must be an absolute path"));
            }
            for sequence in ["//", "/./", "/../", "%2f", "%2F"] {
                if value.contains(sequence) {
                    out.push(invalid(&format!("must not contain '{sequence}'")));
                }
            }
            for suffix in ["/..", "/."] {
                if value.ends_with(suffix) {
                    out.push(invalid(&format!("cannot end with '{suffix}'")));
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                out.push(invalid("must be an absolute path"));
            }
        }
        other => out.push(Problem::not_supported(format!("{at}.pathType"), other, &PATH_TYPES)),
    }
    backend(
        path.get("backend").unwrap_or(&Value::Null),
        &format!("{at}.backend"),
        out,
    );
}

/// A typed local reference's kind and name (`validateIngressTypedLocalObjectReference`): given,
/// and path segments.
fn kind_and_name(reference: &Value, at: &str, out: &mut Vec<Problem>) {
    for field in ["kind", "name"] {
        match text(reference, field) {
            "" => out.push(Problem::required_because(
                format!("{at}.{field}"),
                &format!("{field} is required"),
            )),
            value => {
                super::invalid_each(
                    &format!("{at}.{field}"),
                    value,
                    super::path_segment_problems(value),
                    out,
                );
            }
        }
    }
}

fn backend(backend: &Value, at: &str, out: &mut Vec<Problem>) {
    match (present(backend, "resource"), present(backend, "service")) {
        (Some(_), Some(_)) => out.push(Problem::invalid(
            at,
            "\"\"",
            "cannot set both resource and service backends",
        )),
        (Some(resource), None) => kind_and_name(resource, &format!("{at}.resource"), out),
        (None, Some(service)) => {
            match text(service, "name") {
                "" => out.push(Problem::required(format!("{at}.service.name"))),
                name => {
                    super::invalid_each(&format!("{at}.service.name"), name, dns1035_problems(name), out);
                }
            }
            let port = service.get("port").unwrap_or(&Value::Null);
            let name = text(port, "name");
            let number = port.get("number").and_then(Value::as_i64).unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => out.push(Problem::invalid(at, "\"\"", "cannot set both port name & port number")),
                (false, true) => {
                    for p in port_name_problems(name) {
                        out.push(Problem::invalid(
                            format!("{at}.service.port.name"),
                            &format!("{name:?}"),
                            p,
                        ));
                    }
                }
                (true, false) => super::port_problem(format!("{at}.service.port.number"), &Value::from(number), out),
                (true, true) => out.push(Problem::required_because(at, "port name or number is required")),
            }
        }
        (None, None) => out.push(Problem::invalid(at, "\"\"", "resource or service backend is required")),
    }
}
