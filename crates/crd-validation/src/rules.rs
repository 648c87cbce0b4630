//! Running a CRD version's CEL rules where they are, and only where the object changed.
//!
//! kube-cel's walk converts, at every schema node it visits, the whole subtree below into CEL
//! values, from the root down, whether or not any rule will read them. Here the walk goes down
//! the schema only towards nodes that hold rules, and hands each such node's subtree to
//! kube-cel whole (so the rules there see exactly what kube-cel gives them). On an update, a
//! subtree equal to the old one is not evaluated: kube-apiserver 1.33 ratchets CRD validation
//! (KEP-4008, GA in 1.33), ignoring errors on unchanged values, except for transition rules
//! (those reading `oldSelf`), which are evaluated wherever they are.

use kube_cel::{CompiledSchema, ValidationError, Validator, compile_schema};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

const RULES: &str = "x-kubernetes-validations";

/// A rule that failed: as kube-cel reports it (path from the object's root).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub rule: String,
    pub message: String,
    pub field_path: String,
    pub reason: Option<String>,
}

impl From<ValidationError> for RuleError {
    fn from(e: ValidationError) -> Self {
        RuleError {
            rule: e.rule,
            message: e.message,
            field_path: e.field_path,
            reason: e.reason,
        }
    }
}

/// A rule that is only `self.matches(RE)` or `!self.matches(RE)`: evaluated on a string with
/// its regular expression compiled once, where the CEL library compiles it at every call
/// (Unicode classes such as `\p{Cf}` make that most of a write's cost). Same verdict, message,
/// reason and path as through CEL.
#[derive(Debug)]
struct RegexRule {
    rule: String,
    regex: regex::Regex,
    negated: bool,
    message: Option<String>,
    reason: Option<String>,
    field_path: Option<String>,
}

/// The text of a CEL string literal (`'...'` or `"..."`), if it is one whose escapes are
/// only `\\`, `\'` and `\"`.
fn cel_string(literal: &str) -> Option<String> {
    let quote = literal.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let body = literal.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | '\'' | '"') => out.push(e),
                _ => return None,
            },
            c if c == quote => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

impl RegexRule {
    /// The rule as a regular-expression rule, when it is one (no messageExpression, no
    /// oldSelf).
    fn of(rule: &Value) -> Option<RegexRule> {
        if rule.get("messageExpression").is_some() || rule.get("optionalOldSelf").is_some() {
            return None;
        }
        let text = rule.get("rule")?.as_str()?;
        let trimmed = text.trim();
        let (negated, call) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, trimmed),
        };
        let literal = call.strip_prefix("self.matches(")?.strip_suffix(')')?.trim();
        let regex = regex::Regex::new(&cel_string(literal)?).ok()?;
        let field = |k: &str| rule.get(k).and_then(Value::as_str).map(str::to_string);
        Some(RegexRule {
            rule: text.to_string(),
            regex,
            negated,
            message: field("message"),
            reason: field("reason"),
            field_path: field("fieldPath"),
        })
    }

    fn check(&self, value: &str, path: &str) -> Option<RuleError> {
        if self.regex.is_match(value) != self.negated {
            return None;
        }
        let field_path = match self.field_path.as_deref() {
            Some(fp) if fp.starts_with('.') => format!("{path}{fp}"),
            Some(fp) if !path.is_empty() => format!("{path}.{fp}"),
            Some(fp) => fp.to_string(),
            None => path.to_string(),
        };
        Some(RuleError {
            rule: self.rule.clone(),
            message: self
                .message
                .clone()
                .unwrap_or_else(|| format!("failed rule: {}", self.rule)),
            field_path,
            reason: self.reason.clone(),
        })
    }
}

/// Where a schema's rules are, node by node, in the shape of the schema.
#[derive(Debug, Default)]
pub struct RuleMap {
    /// The rules of this node alone: the node's schema compiled with every rule below it
    /// removed (the children keep their types and formats, which the values given to this
    /// node's rules depend on). With `whole`, the node's rules and everything below.
    own: Option<CompiledSchema>,
    /// The node's own rules when every one of them is a regular-expression rule: run instead
    /// of `own` on a string (`own` still judges a value of another type).
    regex_rules: Vec<RegexRule>,
    /// Alternatives (allOf, oneOf, anyOf) hold rules: the node is evaluated whole.
    whole: bool,
    /// Rules at this node or below.
    below: bool,
    /// Transition rules (reading `oldSelf`) at this node or below.
    transition: bool,
    properties: HashMap<String, RuleMap>,
    /// The declared properties (the others are additionalProperties).
    declared: HashSet<String>,
    items: Option<Box<RuleMap>>,
    additional: Option<Box<RuleMap>>,
    preserve_unknown_fields: bool,
}

/// A schema without any rule, at any depth.
fn without_rules(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != RULES)
                .map(|(k, v)| (k.clone(), without_rules(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_rules).collect()),
        other => other.clone(),
    }
}

fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(k, v)| k == RULES || has_rules(v)),
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

fn reads_old_self(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(k, v)| {
            if k == RULES {
                v.as_array().is_some_and(|rules| {
                    rules.iter().any(|r| {
                        r.get("rule")
                            .and_then(Value::as_str)
                            .is_some_and(|rule| rule.contains("oldSelf"))
                    })
                })
            } else {
                reads_old_self(v)
            }
        }),
        Value::Array(items) => items.iter().any(reads_old_self),
        _ => false,
    }
}

impl RuleMap {
    /// The map of an OpenAPI v3 schema (a CRD version's `openAPIV3Schema`).
    pub fn of(schema: &Value) -> RuleMap {
        let below = has_rules(schema);
        if !below {
            return RuleMap::default();
        }
        let transition = reads_old_self(schema);
        let whole = ["allOf", "oneOf", "anyOf"]
            .iter()
            .any(|k| schema.get(*k).is_some_and(has_rules));
        let own_rules = schema
            .get(RULES)
            .is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty()));
        let own = if whole {
            Some(compile_schema(schema))
        } else if own_rules {
            // The node's own rules, its children's removed.
            let mut shallow = without_rules(schema);
            if let (Some(map), Some(rules)) = (shallow.as_object_mut(), schema.get(RULES)) {
                map.insert(RULES.to_string(), rules.clone());
            }
            Some(compile_schema(&shallow))
        } else {
            None
        };
        let regex_rules: Vec<RegexRule> = if whole {
            Vec::new()
        } else {
            let rules = schema.get(RULES).and_then(Value::as_array).cloned().unwrap_or_default();
            let fast: Vec<RegexRule> = rules.iter().filter_map(RegexRule::of).collect();
            if fast.len() == rules.len() { fast } else { Vec::new() }
        };
        let declared: HashSet<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let properties = if whole {
            HashMap::new()
        } else {
            schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| {
                    p.iter()
                        .filter(|(_, v)| has_rules(v))
                        .map(|(k, v)| (k.clone(), RuleMap::of(v)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let child = |key: &str| {
            schema
                .get(key)
                .filter(|v| !whole && v.is_object() && has_rules(v))
                .map(|v| Box::new(RuleMap::of(v)))
        };
        RuleMap {
            own,
            regex_rules,
            whole,
            below,
            transition,
            properties,
            declared,
            items: child("items"),
            additional: child("additionalProperties"),
            preserve_unknown_fields: schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// Runs the rules mapped by `map` on `value`, `old` on an update; the errors' paths are from
/// the object's root, as kube-cel writes them.
pub fn run(
    cel: &Validator,
    map: &RuleMap,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<RuleError>,
) {
    if !map.below {
        return;
    }
    // Ratcheting: an unchanged value is not judged again (transition rules aside).
    if !map.transition && old.is_some_and(|o| o == value) {
        return;
    }
    if let (false, Some(text)) = (map.regex_rules.is_empty(), value.as_str()) {
        errors.extend(map.regex_rules.iter().filter_map(|r| r.check(text, path)));
    } else if let Some(own) = &map.own
        && let Err(found) = cel.validate_compiled(own, value, old)
    {
        errors.extend(found.into_vec().into_iter().map(|e| {
            let mut e = RuleError::from(e);
            e.field_path = join(path, &e.field_path);
            e
        }));
    }
    if map.whole {
        return;
    }
    if let Some(object) = value.as_object() {
        for (name, child_map) in &map.properties {
            if let Some(child) = object.get(name) {
                let child_old = old.and_then(|o| o.get(name));
                run(cel, child_map, child, child_old, &join(path, name), errors);
            }
        }
        if let Some(child_map) = &map.additional
            && !map.preserve_unknown_fields
        {
            for (key, child) in object {
                if map.declared.contains(key) {
                    continue;
                }
                let child_old = old.and_then(|o| o.get(key));
                run(cel, child_map, child, child_old, &join(path, key), errors);
            }
        }
    }
    if let (Some(item_map), Some(items)) = (&map.items, value.as_array()) {
        for (i, item) in items.iter().enumerate() {
            let old_item = old.and_then(Value::as_array).and_then(|a| a.get(i));
            run(cel, item_map, item, old_item, &format!("{path}[{i}]"), errors);
        }
    }
}

/// Whether a compiled schema (kube-cel's) holds rules anywhere: used to check the map.
#[cfg(test)]
fn compiled_has_rules(c: &CompiledSchema) -> bool {
    !c.validations.is_empty()
        || c.properties.values().any(compiled_has_rules)
        || c.items.as_deref().is_some_and(compiled_has_rules)
        || c.additional_properties.as_deref().is_some_and(compiled_has_rules)
}

/// `relative` (a path as kube-cel writes it from a node) under `base`.
fn join(base: &str, relative: &str) -> String {
    if base.is_empty() {
        relative.to_string()
    } else if relative.is_empty() {
        base.to_string()
    } else if relative.starts_with('.') || relative.starts_with('[') {
        format!("{base}{relative}")
    } else {
        format!("{base}.{relative}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "x-kubernetes-validations": [
                {"rule": "self.customer == oldSelf.customer || self.reason != oldSelf.reason", "message": "a new customer needs a new reason"}],
              "properties": {
                "reason": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self.matches('[^\\\\s]')", "message": "blank"}]},
                "customer": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "immutable"}]},
                "limits": {"type": "array", "items": {"type": "object", "properties": {
                    "n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= 0", "message": "negative"}]}}}},
                "tags": {"type": "object", "additionalProperties": {"type": "string",
                    "x-kubernetes-validations": [{"rule": "self.size() < 4", "message": "long"}]}}
            }},
            "status": {"type": "object", "properties": {"note": {"type": "string"}}}
        }})
    }

    /// The same errors as kube-cel's own walk from the root, with the same paths.
    /// Errors as (path, message).
    type Found = Vec<(String, String)>;

    fn both(value: &Value, old: Option<&Value>) -> (Found, Found) {
        let compiled = kube_cel::compile_schema(&schema());
        assert!(compiled_has_rules(&compiled));
        let cel = Validator::new();
        let map = RuleMap::of(&schema());
        let mut ours = Vec::new();
        run(&cel, &map, value, old, "", &mut ours);
        let theirs = cel
            .validate_compiled(&compiled, value, old)
            .err()
            .map(|e| e.into_vec())
            .unwrap_or_default();
        let mut ours: Vec<_> = ours
            .iter()
            .map(|e: &RuleError| (e.field_path.clone(), e.message.clone()))
            .collect();
        let mut theirs: Vec<_> = theirs
            .iter()
            .map(|e: &ValidationError| (e.field_path.clone(), e.message.clone()))
            .collect();
        ours.sort();
        theirs.sort();
        (ours, theirs)
    }

    #[test]
    fn rules_found_where_they_are_report_what_the_whole_walk_reports() {
        let bad = json!({"metadata": {"name": "x"}, "spec": {"reason": " ", "customer": "a",
            "limits": [{"n": 1}, {"n": -1}], "tags": {"a": "long!", "b": "ok"}}, "status": {"note": "n"}});
        let (ours, theirs) = both(&bad, None);
        assert_eq!(ours, theirs);
        assert_eq!(
            ours.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["spec.limits[1].n", "spec.reason", "spec.tags.a"]
        );
        let good = json!({"spec": {"reason": "ok", "customer": "a", "limits": [{"n": 1}], "tags": {"a": "x"}}});
        assert_eq!(both(&good, None), (vec![], vec![]));
    }

    #[test]
    fn unchanged_values_are_ratcheted_but_transition_rules_always_run() {
        // Invalid values stored before a rule existed: a status write leaves them unchanged.
        let stored = json!({"spec": {"reason": " ", "customer": "a", "limits": [{"n": -1}]}, "status": {"note": "1"}});
        let status_write =
            json!({"spec": {"reason": " ", "customer": "a", "limits": [{"n": -1}]}, "status": {"note": "2"}});
        let (ours, theirs) = both(&status_write, Some(&stored));
        assert!(ours.is_empty(), "{ours:?}");
        assert_eq!(theirs.len(), 2, "kube-cel alone does not ratchet: {theirs:?}");
        // Changing the customer is judged (a transition rule), as is a changed invalid value.
        let changed = json!({"spec": {"reason": "  ", "customer": "b", "limits": [{"n": -1}]}});
        let (ours, _) = both(&changed, Some(&stored));
        assert_eq!(
            ours.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>(),
            ["spec.customer: immutable", "spec.reason: blank"]
        );
        // The node's own transition rule runs though its unchanged children are ratcheted.
        let same_reason = json!({"spec": {"reason": " ", "customer": "b", "limits": [{"n": -1}]}});
        let (ours, _) = both(&same_reason, Some(&stored));
        assert_eq!(
            ours.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>(),
            ["spec: a new customer needs a new reason", "spec.customer: immutable"]
        );
    }

    /// Regular-expression rules run without CEL give CEL's verdicts, messages, reasons and
    /// paths: the product's reason rules on blank, invisible and multi-line texts, a rule
    /// without a message, a negated one with a reason and a fieldPath, and a value that is not
    /// a string (judged by CEL).
    #[test]
    fn regular_expression_rules_judge_as_cel_does() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "reason": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self.matches('[^\\\\s\\\\p{Cf}]')", "message": "blank"},
                {"rule": "!self.matches('\\\\p{Cc}')", "message": "one line"}]},
            "code": {"x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-validations": [
                {"rule": "self.matches(\"^[A-Z]{2}$\")"},
                {"rule": " ! self.matches('x')", "reason": "FieldValueForbidden", "fieldPath": ".letters"}]}
        }}}});
        let map = RuleMap::of(&schema);
        let spec = &map.properties["spec"];
        assert_eq!(spec.properties["reason"].regex_rules.len(), 2);
        assert_eq!(spec.properties["code"].regex_rules.len(), 2);
        let compiled = kube_cel::compile_schema(&schema);
        let cel = Validator::new();
        for (reason, code) in [
            (json!("ok"), json!("AB")),
            (json!("   "), json!("ab")),
            (json!("\u{200b}\u{200b}"), json!("AX")),
            (json!("two\nlines"), json!("ABC")),
            (json!("tab\there"), json!(12)),
            (json!(" \u{200b} x"), json!("xx")),
        ] {
            let value = json!({"spec": {"reason": reason, "code": code}});
            let mut ours = Vec::new();
            run(&cel, &map, &value, None, "", &mut ours);
            let mut theirs: Vec<RuleError> = cel
                .validate_compiled(&compiled, &value, None)
                .err()
                .map(|e| e.into_vec().into_iter().map(RuleError::from).collect())
                .unwrap_or_default();
            // Properties are visited in hash order, by kube-cel as here.
            let order = |a: &RuleError, b: &RuleError| (&a.field_path, &a.message).cmp(&(&b.field_path, &b.message));
            ours.sort_by(order);
            theirs.sort_by(order);
            assert_eq!(ours, theirs, "{value}");
        }
        let mut blank = Vec::new();
        run(
            &cel,
            &map,
            &json!({"spec": {"reason": "\u{200b}", "code": "xy"}}),
            None,
            "",
            &mut blank,
        );
        blank.sort_by(|a, b| a.field_path.cmp(&b.field_path));
        assert_eq!(
            blank
                .iter()
                .map(|e| (e.field_path.as_str(), e.message.as_str(), e.reason.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("spec.code", "failed rule: self.matches(\"^[A-Z]{2}$\")", None),
                (
                    "spec.code.letters",
                    "failed rule:  ! self.matches('x')",
                    Some("FieldValueForbidden")
                ),
                ("spec.reason", "blank", None),
            ]
        );
    }

    #[test]
    fn only_plain_cel_string_literals_are_read() {
        assert_eq!(cel_string(r"'a\\sb'").as_deref(), Some(r"a\sb"));
        assert_eq!(cel_string(r#""it\'s""#).as_deref(), Some("it's"));
        assert_eq!(cel_string(r"'\n'"), None, "other escapes are left to CEL");
        assert_eq!(cel_string("'a' + 'b'"), None);
        assert_eq!(cel_string("r'raw'"), None);
        assert!(RegexRule::of(&json!({"rule": "self.matches('a') && true"})).is_none());
        assert!(RegexRule::of(&json!({"rule": "self.matches('a')", "messageExpression": "'m'"})).is_none());
        assert!(
            RegexRule::of(&json!({"rule": "self.matches('(')"})).is_none(),
            "not a valid pattern"
        );
    }

    #[test]
    fn paths_join_as_kube_cel_writes_them() {
        assert_eq!(join("", "spec.x"), "spec.x");
        assert_eq!(join("spec", ""), "spec");
        assert_eq!(join("spec", "x"), "spec.x");
        assert_eq!(join("spec", "[2]"), "spec[2]");
        assert_eq!(join("spec", ".x"), "spec.x");
    }
}
