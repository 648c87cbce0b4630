//! Structural schema validation, defaulting and pruning, plus CEL rules through kube-cel.

use crate::field::{FieldError, FieldErrorType, Invalid, Rejected};
use kube_cel::{Validator, compile_schema};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    /// Where the CEL rules are, compiled.
    rules: crate::rules::RuleMap,
    /// For each CEL rule text, the `fieldPath` it reports under, if any.
    rule_field_paths: HashMap<String, String>,
}

/// Validates custom resources against the CRDs it was given.
pub struct CrdValidator {
    served: BTreeMap<(String, String), Served>,
    cel: Validator,
    patterns: std::sync::RwLock<HashMap<String, Option<Arc<Regex>>>>,
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

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
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

    fn is_root(&self, name: &str) -> bool {
        matches!(self, At::Root(r) if *r == name)
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
            patterns: Default::default(),
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
            // apiVersion, kind and metadata are validated by the server, not the schema.
            let properties = served.schema.get("properties").and_then(Value::as_object);
            // Top-level defaults too (a `status` default is how an object reads before its
            // controller's first status write).
            for (key, child_schema) in properties.into_iter().flatten() {
                if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                    && !map.contains_key(key)
                    && let Some(default) = child_schema.get("default")
                {
                    map.insert(key.clone(), default.clone());
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match properties.and_then(|p| p.get(&key)) {
                    Some(child_schema) => {
                        if let Some(child) = map.get_mut(&key) {
                            self.walk(child_schema, child, &At::Root(&key), &mut errors, &mut unknown);
                        }
                    }
                    None if preserves_unknown(&served.schema) => {}
                    None => {
                        unknown.push(key.clone());
                        map.remove(&key);
                    }
                }
            }
            if let Some(required) = served.schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errors.push(FieldError {
                            path: r.into(),
                            kind: FieldErrorType::Required,
                            value: None,
                            detail: String::new(),
                        });
                    }
                }
            }
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
                if let (Value::Object(map), Some(props)) =
                    (&mut o, served.schema.get("properties").and_then(Value::as_object))
                {
                    for (key, child_schema) in props {
                        if let Some(child) = map.get_mut(key) {
                            prune(child_schema, child);
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

    /// `pattern` compiled, once per validator. The compiled expression is shared, not cloned:
    /// a cloned `Regex` starts with an empty match cache, which its first match builds (that
    /// was a large share of every custom-resource write).
    fn pattern(&self, pattern: &str) -> Option<Arc<Regex>> {
        if let Some(found) = self.patterns.read().unwrap_or_else(|p| p.into_inner()).get(pattern) {
            return found.clone();
        }
        let compiled = Regex::new(pattern).ok().map(Arc::new);
        self.patterns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pattern.to_string())
            .or_insert(compiled)
            .clone()
    }

    /// Validates `value` against `schema` at `path`, pruning unknown fields and applying
    /// defaults in place.
    fn walk(
        &self,
        schema: &Value,
        value: &mut Value,
        path: &At<'_>,
        errors: &mut Vec<FieldError>,
        unknown: &mut Vec<String>,
    ) {
        let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
        if value.is_null() {
            if !nullable && schema.get("type").is_some() {
                let expected = schema.get("type").and_then(Value::as_str).unwrap_or_default();
                errors.push(FieldError {
                    path: path.to_string(),
                    kind: FieldErrorType::Invalid,
                    value: Some(Value::String("null".into())),
                    detail: format!("{path} in body must be of type {expected}: \"null\""),
                });
            }
            return;
        }
        if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
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
        if let Some(expected) = schema.get("type").and_then(Value::as_str) {
            let actual = type_name(value);
            if !is_of_type(value, expected) {
                errors.push(FieldError {
                    path: path.to_string(),
                    kind: FieldErrorType::Invalid,
                    value: Some(Value::String(actual.into())),
                    detail: format!("{path} in body must be of type {expected}: \"{actual}\""),
                });
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
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
            Value::String(s) => self.check_string(schema, s, path, errors),
            Value::Number(n) => check_number(schema, n, path, errors),
            Value::Array(items) => {
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && items.len() as u64 > max
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorType::TooMany,
                        value: Some(Value::from(items.len())),
                        detail: format!("must have at most {max} items"),
                    });
                }
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorType::Invalid,
                        value: Some(Value::from(items.len())),
                        detail: format!("{path} in body should have at least {min} items"),
                    });
                }
                if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
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
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk(item_schema, item, &At::Index(path, i), errors, unknown);
                    }
                }
            }
            Value::Object(map) => self.walk_object(schema, map, path, errors, unknown),
            _ => {}
        }
    }

    fn walk_object(
        &self,
        schema: &Value,
        map: &mut Map<String, Value>,
        path: &At<'_>,
        errors: &mut Vec<FieldError>,
        unknown: &mut Vec<String>,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        // Defaults first, as kube-apiserver defaults before validating.
        insert_defaults(properties, map);
        let mut pruned = Vec::new();
        for (key, child) in map.iter_mut() {
            let child_path = At::Key(path, key);
            match properties.and_then(|p| p.get(key)).or(additional) {
                Some(child_schema) => self.walk(child_schema, child, &child_path, errors, unknown),
                None if preserves_unknown(schema) || path.is_root("metadata") => {}
                None => {
                    unknown.push(child_path.to_string());
                    pruned.push(key.clone());
                }
            }
        }
        for key in pruned {
            map.remove(&key);
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(FieldError {
                        path: At::Key(path, r).to_string(),
                        kind: FieldErrorType::Required,
                        value: None,
                        detail: String::new(),
                    });
                }
            }
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
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

    fn check_string(&self, schema: &Value, s: &str, path: &At<'_>, errors: &mut Vec<FieldError>) {
        let len = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorType::TooLong,
                value: None,
                detail: format!("may not be more than {max} bytes"),
            });
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorType::Invalid,
                value: Some(Value::String(s.into())),
                detail: format!("{path} in body should be at least {min} chars long"),
            });
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !self.pattern(pattern).is_some_and(|re| re.is_match(s))
        {
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorType::Invalid,
                value: Some(Value::String(s.into())),
                detail: format!("{path} in body should match '{pattern}'"),
            });
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str)
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
}

fn check_number(schema: &Value, n: &serde_json::Number, path: &At<'_>, errors: &mut Vec<FieldError>) {
    let Some(x) = n.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && x < min
    {
        errors.push(FieldError {
            path: path.to_string(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::Number(n.clone())),
            detail: format!("{path} in body should be greater than or equal to {min}"),
        });
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
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

/// Whether `value` is of the schema type `expected` (an integer is a number).
fn is_of_type(value: &Value, expected: &str) -> bool {
    let actual = type_name(value);
    actual == expected || (expected == "number" && actual == "integer")
}

/// Adds the defaults of the `properties` that `map` lacks.
fn insert_defaults(properties: Option<&Map<String, Value>>, map: &mut Map<String, Value>) {
    for (key, child_schema) in properties.into_iter().flatten() {
        if !map.contains_key(key)
            && let Some(default) = child_schema.get("default")
        {
            map.insert(key.clone(), default.clone());
        }
    }
}

/// What reading a stored object with the current schema does to it: unknown fields pruned and
/// defaults applied where [`CrdValidator::walk`] would, without judging anything (the object
/// was valid when it was stored).
fn prune(schema: &Value, value: &mut Value) {
    let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let wrong_type = schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|expected| !is_of_type(value, expected));
    if value.is_null() || int_or_string || wrong_type {
        return;
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|item| prune(item_schema, item));
            }
        }
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            insert_defaults(properties, map);
            map.retain(|key, child| match properties.and_then(|p| p.get(key)).or(additional) {
                Some(child_schema) => {
                    prune(child_schema, child);
                    true
                }
                None => preserves_unknown(schema),
            });
        }
        _ => {}
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
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
