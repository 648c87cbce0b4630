//! Structural schema validation, defaulting and pruning, plus CEL rules through kube-cel.

use crate::field::{FieldError, FieldErrorType, Invalid, Rejected};
use crate::node::{Node, is_of_type, type_name};
use kube_cel::{Validator, compile_schema};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// How unknown fields are treated, as the `fieldValidation` query parameter says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are an error (kubectl's default).
    #[default]
    Strict,
    /// Unknown fields are dropped with a warning.
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

/// A CRD that cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// An object that passed validation, defaulted and pruned, with the warnings to return.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    pub object: Value,
    pub warnings: Vec<String>,
}

struct Served {
    kind: String,
    schema: Value,
    /// The schema as read once for validation, pruning and defaulting.
    root: Node,
    /// Where the CEL rules are, compiled.
    rules: crate::rules::RuleMap,
    /// For each CEL rule text, the `fieldPath` it reports under, if any.
    rule_field_paths: HashMap<String, String>,
}

/// Validates custom resources against the CRDs it was given.
pub struct CrdValidator {
    served: BTreeMap<(String, String), Served>,
    cel: Validator,
}

impl Default for CrdValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CrdValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdValidator")
            .field("kinds", &self.served.keys().collect::<Vec<_>>())
            .finish()
    }
}

const SUBDOMAIN_RE: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const LABEL_RE: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The name patterns, compiled once (every object's name is checked on every create).
static SUBDOMAIN: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(SUBDOMAIN_RE).expect("a valid constant pattern"));
static LABEL: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(LABEL_RE).expect("a valid constant pattern"));

/// Problems with a DNS-1123 subdomain (object names), worded as apimachinery words them.
pub fn validate_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !SUBDOMAIN.is_match(value) {
        errs.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    errs
}

/// Problems with a DNS-1123 label (namespace names), worded as apimachinery words them.
pub fn validate_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !LABEL.is_match(value) {
        errs.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

/// The keys of an object's envelope, which the server judges rather than the schema.
fn envelope(key: &str) -> bool {
    matches!(key, "apiVersion" | "kind" | "metadata")
}

/// Where a node of the object is, as field errors name it (`spec.items[2].name`): built on
/// the stack while walking and written out only when an error or a pruned field names it.
#[derive(Clone, Copy)]
enum At<'a> {
    Root(&'a str),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn is_empty(&self) -> bool {
        matches!(self, At::Root(r) if r.is_empty())
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root(r) => f.write_str(r),
            At::Key(parent, key) if parent.is_empty() => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl CrdValidator {
    pub fn new() -> Self {
        CrdValidator {
            served: BTreeMap::new(),
            cel: Validator::new(),
        }
    }

    /// Serves every version of a CRD (`apiextensions.k8s.io/v1` as JSON). Replaces an earlier
    /// CRD of the same group and kind.
    pub fn add_crd(&mut self, crd: &Value) -> Result<(), LoadError> {
        let spec = crd.get("spec").ok_or_else(|| LoadError("CRD has no spec".into()))?;
        let group = spec
            .get("group")
            .and_then(Value::as_str)
            .ok_or_else(|| LoadError("spec.group is required".into()))?;
        let kind = spec
            .pointer("/names/kind")
            .and_then(Value::as_str)
            .ok_or_else(|| LoadError("spec.names.kind is required".into()))?;
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .ok_or_else(|| LoadError("spec.versions is required".into()))?;
        for version in versions {
            let name = version.get("name").and_then(Value::as_str).unwrap_or_default();
            let schema = version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .ok_or_else(|| LoadError(format!("spec.versions[{name}].schema.openAPIV3Schema is required")))?;
            let compiled = compile_schema(&schema);
            if compiled.has_errors() {
                let errs: Vec<String> = compiled.compilation_errors().iter().map(|e| e.to_string()).collect();
                return Err(LoadError(format!(
                    "version {name}: CEL rules do not compile: {}",
                    errs.join("; ")
                )));
            }
            let mut rule_field_paths = HashMap::new();
            collect_rule_paths(&schema, &mut rule_field_paths);
            self.served.insert(
                (format!("{group}/{name}"), kind.to_string()),
                Served {
                    kind: kind.to_string(),
                    rules: crate::rules::RuleMap::of(&schema),
                    root: Node::read(&schema),
                    schema,
                    rule_field_paths,
                },
            );
        }
        Ok(())
    }

    /// Whether objects of this apiVersion and kind are validated here.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.served.contains_key(&(api_version.to_string(), kind.to_string()))
    }

    /// Validates an object on create (`old` is None) or update, as kube-apiserver does:
    /// prune unknown fields (or reject them with Strict), apply defaults, check the schema,
    /// then the CEL rules (transition rules with `old`).
    pub fn validate(&self, object: &Value, old: Option<&Value>, mode: FieldValidation) -> Result<Validated, Rejected> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(served) = self.served.get(&(api_version.to_string(), kind.to_string())) else {
            return Err(Rejected::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            });
        };
        let mut errors = Vec::new();
        match object.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) => {
                for detail in validate_dns1123_subdomain(n) {
                    errors.push(FieldError {
                        path: "metadata.name".into(),
                        kind: FieldErrorType::Invalid,
                        value: Some(Value::String(n.into())),
                        detail,
                    });
                }
            }
            None if object.pointer("/metadata/generateName").is_some() => {}
            None => errors.push(FieldError {
                path: "metadata.name".into(),
                kind: FieldErrorType::Required,
                value: None,
                detail: "name or generateName is required".into(),
            }),
        }

        let mut unknown = Vec::new();
        let mut value = object.clone();
        if let Value::Object(map) = &mut value {
            // apiVersion, kind and metadata are validated by the server, not the schema. Top-level
            // defaults apply too (a `status` default is how an object reads before its
            // controller's first status write).
            self.walk_object(&served.root, map, &At::Root(""), &mut errors, &mut unknown, envelope);
        }

        // Strict decoding fails before any validation, as in kube-apiserver.
        let mut warnings = Vec::new();
        match mode {
            FieldValidation::Strict if !unknown.is_empty() => {
                let version = api_version.rsplit('/').next().unwrap_or_default().to_string();
                return Err(Rejected::StrictDecoding {
                    kind: served.kind.clone(),
                    version,
                    unknown,
                });
            }
            FieldValidation::Warn => warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\""))),
            _ => {}
        }

        // CEL rules run only on a structurally valid object, as in kube-apiserver.
        if errors.is_empty() {
            // The old object as kube-apiserver reads it from storage: pruned and defaulted
            // by the current schema, not judged again.
            let old_pruned = old.map(|o| {
                let mut o = o.clone();
                if let Value::Object(map) = &mut o {
                    for (key, child) in map.iter_mut().filter(|(k, _)| !envelope(k)) {
                        if let Some(node) = served.root.properties.get(key) {
                            node.prune(child);
                        }
                    }
                }
                o
            });
            let mut cel_errors = Vec::new();
            crate::rules::run(
                &self.cel,
                &served.rules,
                &value,
                old_pruned.as_ref(),
                "",
                &mut cel_errors,
            );
            for e in cel_errors.iter() {
                let base = served
                    .rule_field_paths
                    .get(&e.rule)
                    .and_then(|fp| e.field_path.strip_suffix(fp.as_str()))
                    .unwrap_or(&e.field_path);
                let node_type = schema_type_at(&served.schema, base).unwrap_or("object");
                let kind = match e.reason.as_deref() {
                    Some("FieldValueRequired") => FieldErrorType::Required,
                    Some("FieldValueForbidden") => FieldErrorType::Forbidden,
                    Some("FieldValueDuplicate") => FieldErrorType::Duplicate,
                    _ => FieldErrorType::Invalid,
                };
                errors.push(FieldError {
                    path: e.field_path.clone(),
                    kind,
                    value: Some(Value::String(node_type.to_string())),
                    detail: e.message.clone(),
                });
            }
        }

        if errors.is_empty() {
            Ok(Validated {
                object: value,
                warnings,
            })
        } else {
            Err(Rejected::Invalid(Invalid {
                kind: served.kind.clone(),
                name,
                causes: errors,
            }))
        }
    }

    /// Validates `value` against `node` at `path`, pruning unknown fields and applying
    /// defaults in place.
    fn walk(
        &self,
        node: &Node,
        value: &mut Value,
        path: &At<'_>,
        errors: &mut Vec<FieldError>,
        unknown: &mut Vec<String>,
    ) {
        if value.is_null() {
            if let (false, Some(expected)) = (node.nullable, &node.kind) {
                errors.push(FieldError {
                    path: path.to_string(),
                    kind: FieldErrorType::Invalid,
                    value: Some(Value::String("null".into())),
                    detail: format!("{path} in body must be of type {expected}: \"null\""),
                });
            }
            return;
        }
        if node.int_or_string {
            if !(value.is_string() || type_name(value) == "integer") {
                errors.push(FieldError {
                    path: path.to_string(),
                    kind: FieldErrorType::Invalid,
                    value: Some(Value::String(type_name(value).into())),
                    detail: format!("{path} in body must be of type int-or-string: \"{}\"", type_name(value)),
                });
            }
            return;
        }
        if let Some(expected) = &node.kind
            && !is_of_type(value, expected)
        {
            let actual = type_name(value);
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorType::Invalid,
                value: Some(Value::String(actual.into())),
                detail: format!("{path} in body must be of type {expected}: \"{actual}\""),
            });
            return;
        }
        if let Some(allowed) = &node.allowed
            && !allowed.contains(value)
        {
            let supported: Vec<String> = allowed
                .iter()
                .map(|v| match v {
                    Value::String(s) => format!("{s:?}"),
                    other => other.to_string(),
                })
                .collect();
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorType::NotSupported,
                value: Some(value.clone()),
                detail: format!("supported values: {}", supported.join(", ")),
            });
        }
        match value {
            Value::String(s) => check_string(node, s, path, errors),
            Value::Number(n) => check_number(node, n, path, errors),
            Value::Array(items) => {
                if let Some(max) = node.max_items
                    && items.len() as u64 > max
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorType::TooMany,
                        value: Some(Value::from(items.len())),
                        detail: format!("must have at most {max} items"),
                    });
                }
                if let Some(min) = node.min_items
                    && (items.len() as u64) < min
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorType::Invalid,
                        value: Some(Value::from(items.len())),
                        detail: format!("{path} in body should have at least {min} items"),
                    });
                }
                if node.set {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            errors.push(FieldError {
                                path: At::Index(path, i).to_string(),
                                kind: FieldErrorType::Duplicate,
                                value: Some(item.clone()),
                                detail: String::new(),
                            });
                        }
                    }
                }
                if let Some(item_node) = &node.items {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk(item_node, item, &At::Index(path, i), errors, unknown);
                    }
                }
            }
            Value::Object(map) => self.walk_object(node, map, path, errors, unknown, |_| false),
            _ => {}
        }
    }

    /// An object's fields against `node`: defaults, then each field (unknown ones pruned), then
    /// required fields and the field count. `envelope`: keys the schema does not judge here.
    fn walk_object(
        &self,
        node: &Node,
        map: &mut Map<String, Value>,
        path: &At<'_>,
        errors: &mut Vec<FieldError>,
        unknown: &mut Vec<String>,
        envelope: fn(&str) -> bool,
    ) {
        // Defaults first, as kube-apiserver defaults before validating.
        node.insert_defaults(map, envelope);
        let mut pruned = Vec::new();
        for (key, child) in map.iter_mut().filter(|(k, _)| !envelope(k)) {
            let child_path = At::Key(path, key);
            match node.field(key) {
                Some(child_node) => self.walk(child_node, child, &child_path, errors, unknown),
                None if node.preserve_unknown => {}
                None => {
                    unknown.push(child_path.to_string());
                    pruned.push(key.clone());
                }
            }
        }
        for key in pruned {
            map.remove(&key);
        }
        for r in node.required.iter().filter(|r| !map.contains_key(*r)) {
            errors.push(FieldError {
                path: At::Key(path, r).to_string(),
                kind: FieldErrorType::Required,
                value: None,
                detail: String::new(),
            });
        }
        if let Some(max) = node.max_properties
            && map.len() as u64 > max
        {
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorType::TooMany,
                value: Some(Value::from(map.len())),
                detail: format!("must have at most {max} items"),
            });
        }
    }
}

fn check_string(node: &Node, s: &str, path: &At<'_>, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(max) = node.max_length
        && len > max
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::TooLong,
            value: None,
            detail: format!("may not be more than {max} bytes"),
        });
    }
    if let Some(min) = node.min_length
        && len < min
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::String(s.into())),
            detail: format!("{path} in body should be at least {min} chars long"),
        });
    }
    if let Some((pattern, compiled)) = &node.pattern
        && !compiled.as_ref().is_some_and(|re| re.is_match(s))
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::String(s.into())),
            detail: format!("{path} in body should match '{pattern}'"),
        });
    }
    if let Some(format) = &node.format
        && let Some(problem) = check_format(format, s)
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::String(s.into())),
            detail: format!("{path} in body must be of type {format}: {problem}"),
        });
    }
}

fn check_number(node: &Node, n: &serde_json::Number, path: &At<'_>, errors: &mut Vec<FieldError>) {
    let Some(x) = n.as_f64() else { return };
    if let Some(min) = node.minimum
        && x < min
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::Number(n.clone())),
            detail: format!("{path} in body should be greater than or equal to {min}"),
        });
    }
    if let Some(max) = node.maximum
        && x > max
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::Number(n.clone())),
            detail: format!("{path} in body should be less than or equal to {max}"),
        });
    }
}

/// The string formats kube-apiserver checks that our CRDs use.
fn check_format(format: &str, s: &str) -> Option<String> {
    match format {
        "date-time" => {
            let ok = s.len() >= 20
                && s.as_bytes().get(4) == Some(&b'-')
                && s.as_bytes().get(10).is_some_and(|c| *c == b'T' || *c == b't')
                && (s.ends_with('Z') || s.ends_with('z') || s.get(19..).is_some_and(|t| t.contains(['+', '-'])));
            (!ok).then(|| format!("\"{s}\""))
        }
        _ => None,
    }
}

fn collect_rule_paths(schema: &Value, out: &mut HashMap<String, String>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        for rule in rules {
            if let (Some(text), Some(fp)) = (
                rule.get("rule").and_then(Value::as_str),
                rule.get("fieldPath").and_then(Value::as_str),
            ) {
                out.insert(text.to_string(), fp.to_string());
            }
        }
    }
    for key in ["properties"] {
        if let Some(props) = schema.get(key).and_then(Value::as_object) {
            for child in props.values() {
                collect_rule_paths(child, out);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = schema.get(key).filter(|c| c.is_object()) {
            collect_rule_paths(child, out);
        }
    }
}

/// The schema type at a dotted path such as `spec.items[2].name`.
fn schema_type_at<'a>(schema: &'a Value, path: &str) -> Option<&'a str> {
    let mut node = schema;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indexed) = match segment.find('[') {
            Some(i) => (&segment[..i], true),
            None => (segment, false),
        };
        node = node
            .get("properties")
            .and_then(|p| p.get(name))
            .or_else(|| node.get("additionalProperties"))?;
        if indexed {
            node = node.get("items")?;
        }
    }
    node.get("type").and_then(Value::as_str)
}
