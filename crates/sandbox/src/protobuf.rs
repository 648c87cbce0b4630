//! Decoding of the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`), which
//! kubectl's typed commands (`kubectl create deployment|job|secret...`, `kubectl run`,
//! `kubectl expose`, `kubectl auth can-i`) and client-go's deletes (DeleteOptions) send.
//!
//! Every message kube-apiserver 1.33 defines is decoded generically, from tables build.rs
//! generates out of the k8s-pb bindings (field numbers and types) and k8s-openapi (JSON
//! names): the body becomes the JSON object a client sending JSON would have sent.

use base64::Engine;
use serde_json::{Map, Value};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

/// A protobuf message of the Kubernetes API.
pub(crate) struct Message {
    package: &'static str,
    name: &'static str,
    special: Special,
    fields: &'static [Field],
}

/// Messages that JSON shows as something else than an object of their fields.
#[derive(Clone, Copy, PartialEq)]
enum Special {
    None,
    /// `metav1.Time`: RFC 3339 in seconds; the zero time is not written.
    Time,
    /// `metav1.MicroTime`: RFC 3339 in microseconds.
    MicroTime,
    /// `metav1.Duration`: Go's duration text (`1h2m3s`).
    Duration,
    /// Bytes holding JSON (RawExtension, FieldsV1, apiextensions JSON).
    RawJson,
    IntOrString,
    Quantity,
    /// One field or another (apiextensions' JSONSchemaPropsOr...): whichever is set.
    Either,
    /// A list wrapped in a message (`ExtraValue`).
    Items,
    /// ObjectMeta: its generation is a plain Go integer, always written; zero means unset.
    ObjectMeta,
}

pub(crate) struct Field {
    tag: u32,
    json: &'static str,
    ty: Ty,
    repeated: bool,
    /// A Go struct embedded inline: its fields appear in the parent's JSON.
    inline: bool,
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bytes,
    I32,
    I64,
    Bool,
    F64,
    Msg(usize),
    MapStr,
    MapBytes,
    MapMsg(usize),
}

include!(concat!(env!("OUT_DIR"), "/protobuf_tables.rs"));

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

    fn fixed(&mut self, n: usize) -> Result<&'a [u8], String> {
        let start = self.pos;
        self.advance(n)?;
        Ok(&self.buf[start..self.pos])
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

fn base64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// One value of a scalar field, from its wire type.
fn scalar(r: &mut Reader<'_>, ty: Ty, wire: u64) -> Result<Value, String> {
    Ok(match (ty, wire) {
        (Ty::Str, 2) => Value::String(utf8(r.bytes()?)?),
        (Ty::Bytes, 2) => base64(r.bytes()?),
        // Varints carry negative int32 values sign-extended to 64 bits.
        (Ty::I32, 0) => Value::from(r.varint()? as i64 as i32),
        (Ty::I64, 0) => Value::from(r.varint()? as i64),
        (Ty::Bool, 0) => Value::Bool(r.varint()? != 0),
        (Ty::F64, 1) => {
            let b = r.fixed(8)?;
            let bits = u64::from_le_bytes(b.try_into().map_err(|_| "truncated double")?);
            serde_json::Number::from_f64(f64::from_bits(bits)).map_or(Value::Null, Value::Number)
        }
        (_, wire) => return Err(format!("wire type {wire} where the field's type does not allow it")),
    })
}

/// Go's `time.Duration.String()`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let fraction = |value: u64, unit: u64, suffix: &str| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            format!("{whole}{suffix}")
        } else {
            let digits = unit.ilog10() as usize;
            let text = format!("{rest:0digits$}");
            format!("{whole}.{}{suffix}", text.trim_end_matches('0'))
        }
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}", fraction(n, 1_000, "µs"));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}", fraction(n, 1_000_000, "ms"));
    }
    let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (minutes, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let seconds = fraction(rest, 1_000_000_000, "s");
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

fn time_text(fields: &Map<String, Value>, micro: bool) -> Result<Option<Value>, String> {
    let seconds = fields.get("seconds").and_then(Value::as_i64);
    let nanos = fields.get("nanos").and_then(Value::as_i64).unwrap_or(0);
    let Some(seconds) = seconds else {
        // Go writes the zero time as an empty message; JSON shows it as absent.
        return Ok(None);
    };
    let nanos = i32::try_from(nanos).map_err(|_| "nanos out of range")?;
    let ts = jiff::Timestamp::new(seconds, if micro { nanos } else { 0 })
        .map_err(|e| format!("a time out of range: {e}"))?;
    let text = if micro {
        ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    } else {
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Ok(Some(Value::String(text)))
}

/// A message as JSON; `None` where JSON leaves the field out (the zero time).
fn message(buf: &[u8], index: usize, depth: usize) -> Result<Option<Value>, String> {
    if depth > 64 {
        return Err("message nesting too deep".into());
    }
    let m = MESSAGES.get(index).ok_or("no such message")?;
    let mut out = Map::new();
    let mut r = Reader { buf, pos: 0 };
    while r.pos < buf.len() {
        let key = r.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let Some(field) = m.fields.iter().find(|f| u64::from(f.tag) == number) else {
            // A field newer than the tables: kube-apiserver of this version would not know it either.
            r.skip(wire)?;
            continue;
        };
        match field.ty {
            Ty::Msg(inner) => {
                if wire != 2 {
                    return Err(format!("{}.{}: wire type {wire} for a message", m.name, field.json));
                }
                let value = message(r.bytes()?, inner, depth + 1)?;
                if field.inline {
                    if let Some(Value::Object(fields)) = value {
                        out.extend(fields);
                    }
                } else if field.repeated {
                    push(&mut out, field.json, value.unwrap_or(Value::Null))?;
                } else if let Some(value) = value {
                    out.insert(field.json.into(), value);
                }
            }
            Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_) => {
                if wire != 2 {
                    return Err(format!("{}.{}: wire type {wire} for a map entry", m.name, field.json));
                }
                let (key, value) = map_entry(r.bytes()?, field.ty, depth)?;
                let map = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .ok_or("a map field seen as something else")?;
                map.insert(key, value);
            }
            ty if field.repeated && wire == 2 && matches!(ty, Ty::I32 | Ty::I64 | Ty::Bool | Ty::F64) => {
                // Packed numbers.
                let packed = r.bytes()?;
                let mut p = Reader { buf: packed, pos: 0 };
                let inner_wire = if matches!(ty, Ty::F64) { 1 } else { 0 };
                while p.pos < packed.len() {
                    let v = scalar(&mut p, ty, inner_wire)?;
                    push(&mut out, field.json, v)?;
                }
            }
            ty => {
                let v = scalar(&mut r, ty, wire).map_err(|e| format!("{}.{}: {e}", m.name, field.json))?;
                if field.repeated {
                    push(&mut out, field.json, v)?;
                } else if v != Value::String(String::new()) {
                    // Go writes every string field that is not a pointer, empty or not; JSON
                    // leaves the empty ones out (omitempty), and "" means unset to the server.
                    out.insert(field.json.into(), v);
                }
            }
        }
    }
    Ok(match m.special {
        Special::None => Some(Value::Object(out)),
        Special::ObjectMeta => {
            if out.get("generation").and_then(Value::as_i64) == Some(0) {
                out.remove("generation");
            }
            Some(Value::Object(out))
        }
        Special::Time => time_text(&out, false)?,
        Special::MicroTime => time_text(&out, true)?,
        Special::Duration => Some(Value::String(go_duration(
            out.get("duration").and_then(Value::as_i64).unwrap_or(0),
        ))),
        Special::RawJson => match out.get("raw").or_else(|| out.values().next()) {
            None => None,
            Some(Value::String(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| e.to_string())?;
                Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| format!("{}: the embedded object is not JSON: {e}", m.name))?,
                )
            }
            Some(other) => Some(other.clone()),
        },
        Special::IntOrString => {
            let is_string = out.get("type").and_then(Value::as_i64) == Some(1);
            Some(if is_string {
                out.get("strVal").cloned().unwrap_or(Value::String(String::new()))
            } else {
                out.get("intVal").cloned().unwrap_or(Value::from(0))
            })
        }
        Special::Quantity => Some(out.get("string").cloned().unwrap_or(Value::String("0".into()))),
        // A schema when there is one, else the alternative (a bool, a list).
        Special::Either => match out.remove("schema") {
            Some(schema) => Some(schema),
            None => out.into_iter().map(|(_, v)| v).next(),
        },
        Special::Items => Some(
            out.into_iter()
                .map(|(_, v)| v)
                .next()
                .unwrap_or(Value::Array(Vec::new())),
        ),
    })
}

fn push(out: &mut Map<String, Value>, name: &str, value: Value) -> Result<(), String> {
    out.entry(name)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| format!("{name}: a list field seen as something else"))?
        .push(value);
    Ok(())
}

/// A map entry: field 1 the key (a string), field 2 the value.
fn map_entry(buf: &[u8], ty: Ty, depth: usize) -> Result<(String, Value), String> {
    let mut r = Reader { buf, pos: 0 };
    let (mut key, mut value) = (String::new(), None);
    while r.pos < buf.len() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7, ty) {
            (1, 2, _) => key = utf8(r.bytes()?)?,
            (2, 2, Ty::MapStr) => value = Some(Value::String(utf8(r.bytes()?)?)),
            (2, 2, Ty::MapBytes) => value = Some(base64(r.bytes()?)),
            (2, 2, Ty::MapMsg(inner)) => value = message(r.bytes()?, inner, depth + 1)?,
            (_, wire, _) => r.skip(wire)?,
        }
    }
    let empty = match ty {
        Ty::MapMsg(inner) => message(&[], inner, depth + 1)?.unwrap_or(Value::Null),
        _ => Value::String(String::new()),
    };
    Ok((key, value.unwrap_or(empty)))
}

/// The message of a kind: a resource k8s-pb declares, else a message of the API version's
/// package (TokenRequest, Eviction, Scale), else of meta/v1 (DeleteOptions, which client-go
/// sends under the resource's API version).
fn message_of(api_version: &str, kind: &str) -> Option<usize> {
    if let Some((_, _, i)) = RESOURCES.iter().find(|(v, k, _)| *v == api_version && *k == kind) {
        return Some(*i);
    }
    let package = RESOURCES
        .iter()
        .find(|(v, _, _)| *v == api_version)
        .map(|(_, _, i)| MESSAGES[*i].package);
    let named = |package: &str| {
        MESSAGES
            .iter()
            .position(|m| m.package == package && m.name.eq_ignore_ascii_case(kind))
    };
    package
        .and_then(named)
        .or_else(|| named("apimachinery/pkg/apis/meta/v1"))
}

/// Decodes a protobuf request body into the JSON object the client meant to send.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the body lacks the protobuf envelope prefix")?;
    let mut r = Reader { buf: envelope, pos: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    while r.pos < envelope.len() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => {
                let type_meta = r.bytes()?;
                let mut t = Reader { buf: type_meta, pos: 0 };
                while t.pos < type_meta.len() {
                    let tag = t.varint()?;
                    match (tag >> 3, tag & 7) {
                        (1, 2) => api_version = utf8(t.bytes()?)?,
                        (2, 2) => kind = utf8(t.bytes()?)?,
                        (_, wire) => t.skip(wire)?,
                    }
                }
            }
            (2, 2) => raw = Some(r.bytes()?),
            (_, wire) => r.skip(wire)?,
        }
    }
    let index = message_of(&api_version, &kind)
        .ok_or_else(|| format!("no kind {kind:?} is registered for version {api_version:?}"))?;
    let mut object = message(raw.unwrap_or_default(), index, 0)?.unwrap_or(Value::Null);
    let o = object
        .as_object_mut()
        .ok_or_else(|| format!("a {kind} is not an object"))?;
    o.insert("apiVersion".into(), Value::String(api_version));
    o.insert("kind".into(), Value::String(kind));
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// What kubectl sends: the envelope around a message prost encodes.
    fn envelope<M: prost::Message>(api_version: &str, kind: &str, m: &M) -> Vec<u8> {
        use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(m.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC.to_vec(), prost::Message::encode_to_vec(&unknown)].concat()
    }

    fn meta(name: &str) -> Option<k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta> {
        Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            // Go writes non-pointer strings even when empty.
            generate_name: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(Default::default()),
            ..Default::default()
        })
    }

    #[test]
    fn a_pod_with_inline_volume_sources_quantities_and_pointer_zeros() {
        use k8s_pb::api::core::v1 as core;
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        let pod = core::Pod {
            metadata: meta("p"),
            spec: Some(core::PodSpec {
                termination_grace_period_seconds: Some(0),
                volumes: vec![core::Volume {
                    name: Some("data".into()),
                    volume_source: Some(core::VolumeSource {
                        host_path: Some(core::HostPathVolumeSource {
                            path: Some("/srv".into()),
                            r#type: Some(String::new()),
                        }),
                        ..Default::default()
                    }),
                }],
                containers: vec![core::Container {
                    name: Some("app".into()),
                    image: Some("busybox".into()),
                    resources: Some(core::ResourceRequirements {
                        limits: [(
                            "cpu".to_string(),
                            Quantity {
                                string: Some("500m".into()),
                            },
                        )]
                        .into(),
                        ..Default::default()
                    }),
                    security_context: Some(core::SecurityContext {
                        run_as_user: Some(-1),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(core::PodStatus {
                pod_ip: Some("10.0.0.7".into()),
                start_time: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(0),
                }),
                ..Default::default()
            }),
        };
        let v = decode(&envelope("v1", "Pod", &pod)).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {
                    "volumes": [{"name": "data", "hostPath": {"path": "/srv"}}],
                    "containers": [{"name": "app", "image": "busybox",
                        "resources": {"limits": {"cpu": "500m"}},
                        "securityContext": {"runAsUser": -1}}],
                    "terminationGracePeriodSeconds": 0
                },
                "status": {"podIP": "10.0.0.7", "startTime": "2023-11-14T22:13:20Z"}
            })
        );
    }

    #[test]
    fn delete_options_under_the_resource_version_and_events_in_microseconds() {
        use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta_v1;
        let options = meta_v1::DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            dry_run: vec!["All".into()],
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
            assert_eq!(
                decode(&envelope(api_version, "DeleteOptions", &options)).unwrap(),
                json!({"apiVersion": api_version, "kind": "DeleteOptions", "propagationPolicy": "Foreground", "dryRun": ["All"], "gracePeriodSeconds": 0})
            );
        }
        let event = k8s_pb::api::events::v1::Event {
            metadata: meta("e"),
            event_time: Some(meta_v1::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_000),
            }),
            reason: Some("Frozen".into()),
            deprecated_count: Some(3),
            ..Default::default()
        };
        let v = decode(&envelope("events.k8s.io/v1", "Event", &event)).unwrap();
        assert_eq!(v["eventTime"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(v["deprecatedCount"], 3);
    }

    #[test]
    fn custom_resource_definition_schemas() {
        use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
        let string = ext::JsonSchemaProps {
            r#type: Some("string".into()),
            default: Some(ext::Json {
                raw: Some(br#""gold""#.to_vec()),
            }),
            ..Default::default()
        };
        let schema = ext::JsonSchemaProps {
            r#type: Some("object".into()),
            properties: [("tier".to_string(), string.clone())].into(),
            additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                allows: Some(false),
                schema: None,
            })),
            x_kubernetes_preserve_unknown_fields: Some(true),
            ..Default::default()
        };
        let list = ext::JsonSchemaProps {
            r#type: Some("array".into()),
            items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                schema: Some(Box::new(string)),
                j_son_schemas: Vec::new(),
            })),
            ..Default::default()
        };
        let crd = ext::CustomResourceDefinition {
            metadata: meta("things.example.com"),
            spec: Some(ext::CustomResourceDefinitionSpec {
                group: Some("example.com".into()),
                versions: vec![ext::CustomResourceDefinitionVersion {
                    name: Some("v1".into()),
                    served: Some(true),
                    storage: Some(true),
                    schema: Some(ext::CustomResourceValidation {
                        open_apiv3_schema: Some(ext::JsonSchemaProps {
                            properties: [("spec".to_string(), schema), ("tags".to_string(), list)].into(),
                            ..Default::default()
                        }),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        let v = decode(&envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd)).unwrap();
        assert_eq!(
            v["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            json!({"properties": {
                "spec": {"type": "object", "properties": {"tier": {"type": "string", "default": "gold"}},
                    "additionalProperties": false, "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "items": {"type": "string", "default": "gold"}}
            }})
        );
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_723_000_000_000, "1h2m3s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(nanos), text);
        }
    }

    #[test]
    fn every_resource_kind_has_a_message_and_unknown_kinds_are_an_error() {
        for (api_version, kind, index) in RESOURCES {
            assert_eq!(message_of(api_version, kind), Some(*index));
        }
        assert!(RESOURCES.len() > 80, "{}", RESOURCES.len());
        let err = decode(&envelope("v1", "Gadget", &k8s_pb::api::core::v1::ConfigMap::default())).unwrap_err();
        assert_eq!(err, r#"no kind "Gadget" is registered for version "v1""#);
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
