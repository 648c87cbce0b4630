//! Label selectors, field selectors and the JSONPath subset of printer columns.

use crate::status::ApiError;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e in (f,g),!h`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let bad = || {
                ApiError::bad_request(format!(
                    "unable to parse requirement: invalid label selector: \"{part}\""
                ))
            };
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                Requirement::Exists(part.clone())
            } else {
                return Err(bad());
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the object's labels match.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

impl LabelSelector {
    /// Matches a label selector given as an object (`matchLabels`, `matchExpressions`).
    pub fn matches_object_selector(selector: &Value, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let match_labels = selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
        let exprs = selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .is_none_or(|exprs| {
                exprs.iter().all(|e| {
                    let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                    let values: Vec<&str> = e
                        .get("values")
                        .and_then(Value::as_array)
                        .map(|v| v.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    match e.get("operator").and_then(Value::as_str) {
                        Some("In") => get(key).is_some_and(|x| values.contains(&x)),
                        Some("NotIn") => get(key).is_none_or(|x| !values.contains(&x)),
                        Some("Exists") => get(key).is_some(),
                        Some("DoesNotExist") => get(key).is_none(),
                        _ => false,
                    }
                })
            });
        match_labels && exprs
    }
}

/// Selectable fields of built-in kinds that are Go booleans and integers (unset reads as
/// `false` and `0`), as JSON pointers.
const GO_BOOLS: [&str; 2] = ["/spec/unschedulable", "/spec/hostNetwork"];
const GO_INTS: [&str; 2] = ["/status/replicas", "/status/successful"];

/// A parsed field selector: only `metadata.name` and `metadata.namespace`, as for custom
/// resources in kube-apiserver.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// A field selector's field as a JSON pointer (`spec.customer` → `/spec/customer`), so that
/// matching a list of objects is one lookup per object.
pub(crate) fn pointer_of(field: &str) -> String {
    let mut pointer = String::with_capacity(field.len() + 1);
    for segment in field.split('.') {
        pointer.push('/');
        pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    }
    pointer
}

impl FieldSelector {
    /// Parses a field selector: metadata.name, metadata.namespace, and the kind's
    /// `selectable` fields (JSON paths such as `.spec.customer`, named without the leading dot).
    pub fn parse(s: &str, selectable: &[String]) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, negate, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let known = matches!(field, "metadata.name" | "metadata.namespace")
                || selectable.iter().any(|p| p.trim_start_matches('.') == field);
            if !known {
                // kube-apiserver's words (the fields a kind supports are in its documentation,
                // and a CRD's in its spec.versions[].selectableFields).
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            reqs.push((pointer_of(field), negate, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, negate, value)| {
            let actual = match object.pointer(field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                // Go's zero values, which kube-apiserver compares unset fields as.
                _ if GO_BOOLS.contains(&field.as_str()) => "false".into(),
                _ if GO_INTS.contains(&field.as_str()) => "0".into(),
                _ => String::new(),
            };
            (actual == *value) != *negate
        })
    }
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, escaped dots (`.a\.b`),
/// `[n]` and `[?(@.k=="v")]` filters. Returns the first match.
pub fn json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = object;
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            // A field name up to the next unescaped '.' or '['.
            let mut name = String::new();
            let mut chars = r.char_indices().peekable();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            name.push(n);
                        }
                    }
                    '.' | '[' => {
                        end = i;
                        break;
                    }
                    _ => name.push(c),
                }
            }
            node = node.get(&name)?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("[?(@.") {
            let close = r.find(")]")?;
            let expr = &r[..close];
            let (field, value) = expr.split_once("==")?;
            let value = value.trim().trim_matches('"').trim_matches('\'');
            node = node
                .as_array()?
                .iter()
                .find(|item| item.get(field.trim()).and_then(Value::as_str) == Some(value))?;
            rest = &r[close + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let index: usize = r[..close].trim().parse().ok()?;
            node = node.as_array()?.get(index)?;
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        for (sel, expected) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&obj), expected, "{sel}");
        }
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "x", "namespace": "ns"}});
        assert!(FieldSelector::parse("metadata.name=x", &[]).unwrap().matches(&obj));
        assert!(
            !FieldSelector::parse("metadata.namespace!=ns", &[])
                .unwrap()
                .matches(&obj)
        );
        assert_eq!(FieldSelector::parse("spec.x=1", &[]).unwrap_err().code, 400);
        // Unset Go booleans and integers of built-in kinds compare as their zero values.
        let node_fields = [".spec.unschedulable".to_string()];
        let uncordoned = json!({"spec": {}});
        assert!(
            FieldSelector::parse("spec.unschedulable=false", &node_fields)
                .unwrap()
                .matches(&uncordoned)
        );
        assert!(
            !FieldSelector::parse("spec.unschedulable=true", &node_fields)
                .unwrap()
                .matches(&uncordoned)
        );
        let rs_fields = [".status.replicas".to_string()];
        assert!(
            FieldSelector::parse("status.replicas=0", &rs_fields)
                .unwrap()
                .matches(&json!({"status": {}}))
        );

        // A CRD's selectableFields.
        let selectable = [".spec.customer".to_string(), ".spec.replicas".to_string()];
        let obj = json!({"metadata": {"name": "x"}, "spec": {"customer": "acme", "replicas": 3}});
        assert!(
            FieldSelector::parse("spec.customer=acme", &selectable)
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("spec.customer=globex", &selectable)
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("spec.replicas=3,metadata.name=x", &selectable)
                .unwrap()
                .matches(&obj)
        );
        let err = FieldSelector::parse("spec.other=1", &selectable).unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.other");
    }

    #[test]
    fn json_paths() {
        let obj = json!({"metadata": {"labels": {"purchaseguard.io/billing-mode": "spot"}},
            "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "True"}]}});
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"B\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&obj, ".metadata.labels.purchaseguard\\.io/billing-mode"),
            Some(&json!("spot"))
        );
        assert_eq!(json_path(&obj, ".status.conditions[0].type"), Some(&json!("A")));
        assert_eq!(json_path(&obj, ".spec.none"), None);
    }
}
