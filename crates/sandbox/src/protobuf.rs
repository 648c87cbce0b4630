//! Decoding of the Kubernetes protobuf encoding for the few built-in kinds whose requests
//! kubectl sends as protobuf (`kubectl create configmap|secret|namespace|role...`,
//! `kubectl auth can-i`). Everything else the sandbox reads as JSON or YAML.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bytes,
    Int,
    Bool,
    Msg(&'static [Field]),
    RepeatedStr,
    RepeatedMsg(&'static [Field]),
    MapStr,
    MapBytes,
    Time,
}

type Field = (u64, &'static str, Kind);

const OWNER_REFERENCE: &[Field] = &[
    (5, "apiVersion", Kind::Str),
    (1, "kind", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (5, "uid", Kind::Str),
    (6, "resourceVersion", Kind::Str),
    (7, "generation", Kind::Int),
    (8, "creationTimestamp", Kind::Time),
    (11, "labels", Kind::MapStr),
    (12, "annotations", Kind::MapStr),
    (13, "ownerReferences", Kind::RepeatedMsg(OWNER_REFERENCE)),
    (14, "finalizers", Kind::RepeatedStr),
];

const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::MapStr),
    (3, "binaryData", Kind::MapBytes),
    (4, "immutable", Kind::Bool),
];

const SECRET: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::MapBytes),
    (3, "type", Kind::Str),
    (4, "stringData", Kind::MapStr),
    (5, "immutable", Kind::Bool),
];

const METADATA_ONLY: &[Field] = &[(1, "metadata", Kind::Msg(OBJECT_META))];

const POLICY_RULE: &[Field] = &[
    (1, "verbs", Kind::RepeatedStr),
    (2, "apiGroups", Kind::RepeatedStr),
    (3, "resources", Kind::RepeatedStr),
    (4, "resourceNames", Kind::RepeatedStr),
    (5, "nonResourceURLs", Kind::RepeatedStr),
];

const ROLE: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "rules", Kind::RepeatedMsg(POLICY_RULE)),
];

const SUBJECT: &[Field] = &[
    (1, "kind", Kind::Str),
    (2, "apiGroup", Kind::Str),
    (3, "name", Kind::Str),
    (4, "namespace", Kind::Str),
];

const ROLE_REF: &[Field] = &[
    (1, "apiGroup", Kind::Str),
    (2, "kind", Kind::Str),
    (3, "name", Kind::Str),
];

const ROLE_BINDING: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "subjects", Kind::RepeatedMsg(SUBJECT)),
    (3, "roleRef", Kind::Msg(ROLE_REF)),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Kind::Str),
    (2, "verb", Kind::Str),
    (3, "group", Kind::Str),
    (4, "version", Kind::Str),
    (5, "resource", Kind::Str),
    (6, "subresource", Kind::Str),
    (7, "name", Kind::Str),
];

const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", Kind::Str), (2, "verb", Kind::Str)];

const SSAR_SPEC: &[Field] = &[
    (1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", Kind::Msg(NON_RESOURCE_ATTRIBUTES)),
];

const SSAR: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(SSAR_SPEC)),
];

const SSRR: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "spec", Kind::Msg(&[(1, "namespace", Kind::Str)])),
];

const TOKEN_REQUEST: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Kind::Msg(&[
            (1, "audiences", Kind::RepeatedStr),
            (4, "expirationSeconds", Kind::Int),
            (
                3,
                "boundObjectRef",
                Kind::Msg(&[
                    (1, "kind", Kind::Str),
                    (2, "apiVersion", Kind::Str),
                    (3, "name", Kind::Str),
                    (4, "uid", Kind::Str),
                ]),
            ),
        ]),
    ),
];

const TYPE_META: &[Field] = &[(1, "apiVersion", Kind::Str), (2, "kind", Kind::Str)];

fn schema_for(kind: &str) -> Option<&'static [Field]> {
    Some(match kind {
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "Namespace" | "ServiceAccount" => METADATA_ONLY,
        "Role" | "ClusterRole" => ROLE,
        "RoleBinding" | "ClusterRoleBinding" => ROLE_BINDING,
        "SelfSubjectAccessReview" => SSAR,
        "SelfSubjectRulesReview" => SSRR,
        "TokenRequest" => TOKEN_REQUEST,
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            other => Err(format!("unsupported wire type {other}")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        self.pos = self
            .pos
            .checked_add(n)
            .filter(|p| *p <= self.buf.len())
            .ok_or("truncated field")?;
        Ok(())
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a string field".to_string())
}

fn decode_message(buf: &[u8], schema: &[Field], depth: usize) -> Result<Value, String> {
    if depth > 16 {
        return Err("message nesting too deep".into());
    }
    let mut r = Reader { buf, pos: 0 };
    let mut out = Map::new();
    while r.pos < buf.len() {
        let tag = r.varint()?;
        let (number, wire) = (tag >> 3, tag & 7);
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == number) else {
            r.skip(wire)?;
            continue;
        };
        let name = name.to_string();
        match (kind, wire) {
            (Kind::Str, 2) => {
                out.insert(name, Value::String(utf8(r.bytes()?)?));
            }
            (Kind::Bytes, 2) => {
                out.insert(
                    name,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
                );
            }
            (Kind::Int, 0) => {
                out.insert(name, json!(r.varint()? as i64));
            }
            (Kind::Bool, 0) => {
                out.insert(name, json!(r.varint()? != 0));
            }
            (Kind::Msg(inner), 2) => {
                out.insert(name, decode_message(r.bytes()?, inner, depth + 1)?);
            }
            (Kind::Time, 2) => {
                let t = decode_message(r.bytes()?, &[(1, "seconds", Kind::Int)], depth + 1)?;
                let secs = t.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                let text = jiff::Timestamp::from_second(secs)
                    .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .map_err(|e| e.to_string())?;
                out.insert(name, Value::String(text));
            }
            (Kind::RepeatedStr, 2) => {
                let s = utf8(r.bytes()?)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or("bad list")?
                    .push(Value::String(s));
            }
            (Kind::RepeatedMsg(inner), 2) => {
                let m = decode_message(r.bytes()?, inner, depth + 1)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or("bad list")?
                    .push(m);
            }
            (Kind::MapStr | Kind::MapBytes, 2) => {
                let value_kind = if matches!(kind, Kind::MapStr) {
                    Kind::Str
                } else {
                    Kind::Bytes
                };
                let entry = decode_message(r.bytes()?, &[(1, "k", Kind::Str), (2, "v", value_kind)], depth + 1)?;
                let k = entry.get("k").and_then(Value::as_str).unwrap_or_default().to_string();
                let v = entry.get("v").cloned().unwrap_or(Value::String(String::new()));
                out.entry(name)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .ok_or("bad map")?
                    .insert(k, v);
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body into the JSON object kubectl meant to send.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the body lacks the protobuf envelope prefix")?;
    let mut r = Reader { buf: envelope, pos: 0 };
    let (mut type_meta, mut raw) = (Value::Null, None);
    while r.pos < envelope.len() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => type_meta = decode_message(r.bytes()?, TYPE_META, 0)?,
            (2, 2) => raw = Some(r.bytes()?),
            (_, wire) => r.skip(wire)?,
        }
    }
    let kind = type_meta
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api_version = type_meta
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let schema = schema_for(&kind).ok_or_else(|| {
        format!("protobuf bodies of kind {kind:?} are not decoded by the sandbox; send JSON (kubectl create -f, kubectl apply)")
    })?;
    let mut object = decode_message(raw.unwrap_or_default(), schema, 0)?;
    if let Some(o) = object.as_object_mut() {
        o.insert("apiVersion".into(), Value::String(api_version));
        o.insert("kind".into(), Value::String(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_config_map() {
        let meta = [field(1, b"demo"), field(3, b"ns")].concat();
        let entry = [field(1, b"a"), field(2, b"1")].concat();
        let cm = [field(1, &meta), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &cm)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo", "namespace": "ns"}, "data": {"a": "1"}})
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            &b"k8s\0\xff\xff\xff"[..],
            b"k8s\0\x0a\x50",
            b"nope",
            b"k8s\0\x12\x05abc",
        ] {
            assert!(decode(body).is_err(), "{body:?}");
        }
    }
}
