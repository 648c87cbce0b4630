//! OpenAPI v2 (Swagger 2.0), as JSON and in the protobuf encoding (gnostic `openapi.v2`)
//! that kubectl up to 1.28 downloads for `kubectl explain` and to learn that the server
//! validates fields. Built from the same documents as OpenAPI v3.

use serde_json::{Map, Value, json};

/// Turns `#/components/schemas/X` references into `#/definitions/X`, recursively.
fn v2_refs(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => (k.clone(), json!(r.replace("#/components/schemas/", "#/definitions/"))),
                    _ => (k.clone(), v2_refs(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(v2_refs).collect()),
        other => other.clone(),
    }
}

/// Merges per-group/version v3 documents into one Swagger 2.0 document (JSON form).
pub fn merge(v3_docs: &[Value]) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for doc in v3_docs {
        if let Some(p) = doc.get("paths").and_then(Value::as_object) {
            for (k, v) in p {
                paths.insert(k.clone(), v2_refs(v));
            }
        }
        if let Some(s) = doc.pointer("/components/schemas").and_then(Value::as_object) {
            for (k, v) in s {
                definitions.insert(k.clone(), v2_refs(v));
            }
        }
    }
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "definitions": definitions})
}

#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn key(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }
    fn bytes(&mut self, field: u64, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u64, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    fn message(&mut self, field: u64, m: Buf) {
        self.bytes(field, &m.0);
    }
    fn int(&mut self, field: u64, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }
    fn boolean(&mut self, field: u64, v: bool) {
        if v {
            self.int(field, 1);
        }
    }
}

/// `Any { yaml }` holding a value as YAML (JSON is valid YAML).
fn any(v: &Value) -> Buf {
    let mut b = Buf::default();
    b.string(2, &v.to_string());
    b
}

fn named_any(name: &str, v: &Value) -> Buf {
    let mut b = Buf::default();
    b.string(1, name);
    b.message(2, any(v));
    b
}

fn schema(s: &Value, depth: usize) -> Buf {
    let mut b = Buf::default();
    if depth > 64 {
        return b;
    }
    let Some(m) = s.as_object() else { return b };
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        b.string(1, r);
    }
    if let Some(f) = m.get("format").and_then(Value::as_str) {
        b.string(2, f);
    }
    if let Some(d) = m.get("description").and_then(Value::as_str) {
        b.string(4, d);
    }
    for (field, key) in [(11, "maxLength"), (12, "minLength"), (14, "maxItems"), (15, "minItems")] {
        if let Some(n) = m.get(key).and_then(Value::as_u64) {
            b.int(field, n);
        }
    }
    if let Some(p) = m.get("pattern").and_then(Value::as_str) {
        b.string(13, p);
    }
    for r in m
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        b.string(19, r);
    }
    for e in m.get("enum").and_then(Value::as_array).into_iter().flatten() {
        b.message(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(flag)) => {
            let mut item = Buf::default();
            item.boolean(2, *flag);
            b.message(21, item);
        }
        Some(ap @ Value::Object(_)) => {
            let mut item = Buf::default();
            item.message(1, schema(ap, depth + 1));
            b.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = m.get("type").and_then(Value::as_str) {
        let mut ti = Buf::default();
        ti.string(1, t);
        b.message(22, ti);
    }
    if let Some(items) = m.get("items") {
        let mut ii = Buf::default();
        ii.message(1, schema(items, depth + 1));
        b.message(23, ii);
    }
    for a in m.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        b.message(24, schema(a, depth + 1));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        let mut p = Buf::default();
        for (name, child) in props {
            let mut ns = Buf::default();
            ns.string(1, name);
            ns.message(2, schema(child, depth + 1));
            p.message(1, ns);
        }
        b.message(25, p);
    }
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        b.message(31, named_any(k, v));
    }
    b
}

fn operation(op: &Value) -> Buf {
    let mut b = Buf::default();
    if let Some(id) = op.get("operationId").and_then(Value::as_str) {
        b.string(5, id);
    }
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        let mut query = Buf::default();
        query.string(2, "query");
        query.string(3, p.get("description").and_then(Value::as_str).unwrap_or_default());
        query.string(4, p.get("name").and_then(Value::as_str).unwrap_or_default());
        query.string(6, "string");
        let mut non_body = Buf::default();
        non_body.message(3, query);
        let mut parameter = Buf::default();
        parameter.message(2, non_body);
        let mut item = Buf::default();
        item.message(1, parameter);
        b.message(8, item);
    }
    let mut response = Buf::default();
    response.string(1, "OK");
    let mut value = Buf::default();
    value.message(1, response);
    let mut named = Buf::default();
    named.string(1, "200");
    named.message(2, value);
    let mut responses = Buf::default();
    responses.message(1, named);
    b.message(9, responses);
    for (k, v) in op
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("x-"))
    {
        b.message(13, named_any(k, v));
    }
    b
}

/// The protobuf encoding of a Swagger 2.0 document (JSON form).
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut b = Buf::default();
    b.string(1, "2.0");
    let mut info = Buf::default();
    info.string(1, "Kubernetes");
    info.string(2, "v1.33.0");
    b.message(2, info);
    let mut paths = Buf::default();
    for (name, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
        let mut pi = Buf::default();
        for (field, verb) in [(2, "get"), (3, "put"), (4, "post"), (5, "delete"), (8, "patch")] {
            if let Some(op) = item.get(verb) {
                pi.message(field, operation(op));
            }
        }
        let mut named = Buf::default();
        named.string(1, name);
        named.message(2, pi);
        paths.message(2, named);
    }
    b.message(8, paths);
    let mut defs = Buf::default();
    for (name, s) in doc.get("definitions").and_then(Value::as_object).into_iter().flatten() {
        let mut named = Buf::default();
        named.string(1, name);
        named.message(2, schema(s, 0));
        defs.message(1, named);
    }
    b.message(9, defs);
    b.0
}
