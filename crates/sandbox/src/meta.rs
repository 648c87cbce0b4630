//! Helpers for object metadata, time and managed fields.

use serde_json::{Map, Value, json};

/// Now, as kube-apiserver writes times: RFC 3339, seconds, UTC.
pub fn now() -> String {
    time_text(jiff::Timestamp::now())
}

/// A time as kube-apiserver writes it: RFC 3339, seconds, UTC.
pub fn time_text(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an RFC 3339 time into Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Age as kubectl prints it (`5s`, `3m20s`, `4h`, `2d3h`...).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rest = s % 60;
        return if rest == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rest}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        let rest = m % 60;
        return if rest == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rest}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    let d = h / 24;
    if h < 24 * 8 {
        let rest = h % 24;
        return if rest == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rest}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{d}d");
    }
    let y = d / 365;
    if y < 8 {
        let rest = d % 365;
        return if rest == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rest}d")
        };
    }
    format!("{y}y")
}

/// The metadata map of an object, created when missing; `None` when `object` is no object.
pub fn meta_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let m = object.as_object_mut()?.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut()
}

pub fn str_field<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// Drops what kube-apiserver never stores because Go's `omitempty` leaves it out: empty
/// `labels` and `annotations` maps, empty `finalizers` and `ownerReferences` lists (a JSON
/// patch removing the last annotation leaves `annotations: {}`, which a real cluster does not
/// show).
pub fn omit_empty(object: &mut Value) {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|key, value| {
            !(matches!(
                key.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            ) && (value.is_null()
                || value.as_object().is_some_and(Map::is_empty)
                || value.as_array().is_some_and(Vec::is_empty)))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        for (s, expected) in [
            (5, "5s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400, "3d"),
        ] {
            assert_eq!(human_duration(s), expected, "{s}");
        }
    }
}

/// A JSON value written as kube-apiserver writes objects: in every object, `kind` then
/// `apiVersion` first (Go's field order), the other keys after them in key order.
pub struct KindFirst<'a>(pub &'a Value);

impl serde::Serialize for KindFirst<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for key in ["kind", "apiVersion"] {
                    if let Some(v) = fields.get(key) {
                        map.serialize_entry(key, &KindFirst(v))?;
                    }
                }
                for (k, v) in fields.iter().filter(|(k, _)| *k != "kind" && *k != "apiVersion") {
                    map.serialize_entry(k, &KindFirst(v))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&KindFirst(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// [`KindFirst`] as bytes.
pub fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&KindFirst(value)).unwrap_or_default()
}

#[cfg(test)]
mod kind_first_tests {
    use super::*;

    #[test]
    fn objects_start_with_kind_and_api_version_at_every_level() {
        let list = serde_json::json!({"apiVersion": "v1", "items": [
            {"apiVersion": "v1", "data": {"a": "b"}, "kind": "ConfigMap", "metadata": {"name": "x"}}
        ], "kind": "ConfigMapList", "metadata": {}});
        let text = String::from_utf8(to_json(&list)).expect("UTF-8");
        assert_eq!(
            text,
            r#"{"kind":"ConfigMapList","apiVersion":"v1","items":[{"kind":"ConfigMap","apiVersion":"v1","data":{"a":"b"},"metadata":{"name":"x"}}],"metadata":{}}"#
        );
        let back: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(back, list, "the same value");
    }
}
