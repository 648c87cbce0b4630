//! A CRD version's structural schema, read once when the CRD is added: what validation,
//! pruning and defaulting look at in every node, as fields instead of JSON keys looked up
//! again at every node of every object, and each `pattern` compiled once.

use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;

/// One node of a structural schema.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub nullable: bool,
    pub int_or_string: bool,
    /// `type`.
    pub kind: Option<String>,
    /// `enum`.
    pub allowed: Option<Vec<Value>>,
    pub max_items: Option<u64>,
    pub min_items: Option<u64>,
    /// `x-kubernetes-list-type: set`.
    pub set: bool,
    pub items: Option<Box<Node>>,
    pub properties: BTreeMap<String, Node>,
    /// `additionalProperties` when it is a schema (`true` and `false` are not).
    pub additional: Option<Box<Node>>,
    pub preserve_unknown: bool,
    pub required: Vec<String>,
    pub max_properties: Option<u64>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    /// The expression as written and compiled (`None`: it does not compile, and nothing
    /// matches it).
    pub pattern: Option<(String, Option<Regex>)>,
    pub format: Option<String>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub default: Option<Value>,
}

impl Node {
    pub fn read(schema: &Value) -> Node {
        let flag = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        let text = |key: &str| schema.get(key).and_then(Value::as_str).map(str::to_string);
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        Node {
            nullable: flag("nullable"),
            int_or_string: flag("x-kubernetes-int-or-string"),
            kind: text("type"),
            allowed: schema.get("enum").and_then(Value::as_array).cloned(),
            max_items: count("maxItems"),
            min_items: count("minItems"),
            set: schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set"),
            items: schema.get("items").map(|i| Box::new(Node::read(i))),
            properties: schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Node::read(v)))
                .collect(),
            additional: schema
                .get("additionalProperties")
                .filter(|a| a.is_object())
                .map(|a| Box::new(Node::read(a))),
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            required: schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            max_properties: count("maxProperties"),
            max_length: count("maxLength"),
            min_length: count("minLength"),
            pattern: text("pattern").map(|p| {
                let compiled = Regex::new(&p).ok();
                (p, compiled)
            }),
            format: text("format"),
            minimum: bound("minimum"),
            maximum: bound("maximum"),
            default: schema.get("default").cloned(),
        }
    }

    /// The schema of a field of an object of this node: a declared property, else the
    /// schema of additional properties.
    pub fn field(&self, key: &str) -> Option<&Node> {
        self.properties.get(key).or(self.additional.as_deref())
    }

    /// Whether `value` has this node's type (an integer is a number; no type: any).
    pub fn accepts_type(&self, value: &Value) -> bool {
        self.kind.as_deref().is_none_or(|expected| is_of_type(value, expected))
    }

    /// Adds the defaults of the declared properties `map` lacks (`skip`: keys left alone).
    pub fn insert_defaults(&self, map: &mut serde_json::Map<String, Value>, skip: fn(&str) -> bool) {
        for (key, child) in &self.properties {
            if let Some(default) = &child.default
                && !skip(key)
                && !map.contains_key(key)
            {
                map.insert(key.clone(), default.clone());
            }
        }
    }

    /// What reading a stored object with the current schema does to it: unknown fields pruned
    /// and defaults applied where validation would, without judging anything (the object was
    /// valid when it was stored).
    pub fn prune(&self, value: &mut Value) {
        if value.is_null() || self.int_or_string || !self.accepts_type(value) {
            return;
        }
        match value {
            Value::Array(items) => {
                if let Some(item) = &self.items {
                    items.iter_mut().for_each(|v| item.prune(v));
                }
            }
            Value::Object(map) => {
                self.insert_defaults(map, |_| false);
                map.retain(|key, child| match self.field(key) {
                    Some(node) => {
                        node.prune(child);
                        true
                    }
                    None => self.preserve_unknown,
                });
            }
            _ => {}
        }
    }
}

/// The schema type name of a JSON value.
pub(crate) fn type_name(v: &Value) -> &'static str {
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

/// Whether `value` is of the schema type `expected` (an integer is a number).
pub(crate) fn is_of_type(value: &Value, expected: &str) -> bool {
    let actual = type_name(value);
    actual == expected || (expected == "number" && actual == "integer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_is_read_into_its_node() {
        let node = Node::read(&json!({
            "type": "object", "required": ["a"], "maxProperties": 3,
            "properties": {
                "a": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5, "minLength": 1, "format": "date-time", "default": "x"},
                "b": {"type": "array", "maxItems": 2, "minItems": 1, "x-kubernetes-list-type": "set", "items": {"type": "integer", "minimum": 0, "maximum": 9}},
                "c": {"x-kubernetes-int-or-string": true, "nullable": true},
                "d": {"type": "string", "enum": ["on", "off"]},
                "e": {"type": "object", "additionalProperties": {"type": "string"}},
                "f": {"type": "object", "additionalProperties": false, "x-kubernetes-preserve-unknown-fields": true},
                "g": {"type": "string", "pattern": "("}
            }
        }));
        assert_eq!(
            (node.kind.as_deref(), node.required.as_slice(), node.max_properties),
            (Some("object"), &["a".to_string()][..], Some(3))
        );
        let a = &node.properties["a"];
        assert_eq!(
            (a.max_length, a.min_length, a.format.as_deref(), a.default.clone()),
            (Some(5), Some(1), Some("date-time"), Some(json!("x")))
        );
        assert!(
            a.pattern
                .as_ref()
                .is_some_and(|(p, re)| p == "^[a-z]+$" && re.as_ref().is_some_and(|r| r.is_match("abc")))
        );
        let b = &node.properties["b"];
        assert!(b.set && b.max_items == Some(2) && b.min_items == Some(1));
        let item = b.items.as_deref().expect("items");
        assert_eq!((item.minimum, item.maximum), (Some(0.0), Some(9.0)));
        let c = &node.properties["c"];
        assert!(c.int_or_string && c.nullable && c.kind.is_none());
        assert_eq!(node.properties["d"].allowed, Some(vec![json!("on"), json!("off")]));
        assert!(
            node.properties["e"]
                .field("anything")
                .is_some_and(|n| n.kind.as_deref() == Some("string"))
        );
        let f = &node.properties["f"];
        assert!(f.additional.is_none() && f.preserve_unknown && f.field("x").is_none());
        assert!(
            matches!(&node.properties["g"].pattern, Some((p, None)) if p == "("),
            "a pattern that does not compile"
        );
        assert!(node.field("zzz").is_none());
    }

    #[test]
    fn pruning_drops_unknown_fields_and_fills_defaults_without_judging() {
        let node = Node::read(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "maximum": 1},
                "color": {"type": "string", "default": "red"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "wrong": {"type": "object", "properties": {}}
            }}
        }}));
        let mut value = json!({"spec": {"size": 50, "gone": 1, "list": [{"n": "a", "x": 2}],
            "free": {"kept": true}, "wrong": "a string is left as it is"}});
        node.prune(&mut value);
        assert_eq!(
            value,
            json!({"spec": {"size": 50, "color": "red", "list": [{"n": "a"}], "free": {"kept": true}, "wrong": "a string is left as it is"}})
        );
    }
}
