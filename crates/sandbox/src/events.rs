//! `core/v1` Events and `events.k8s.io/v1` Events are one resource behind two APIs in
//! kube-apiserver: an Event written through one is read through the other, converted. The
//! sandbox stores each Event under the API it was written through and converts on reads
//! (get, list, watch); writes go to the API they address.

use serde_json::{Map, Value, json};

/// The storage key prefix (`group/plural`) of each Events API.
pub const CORE: &str = "/events";
pub const EVENTS: &str = "events.k8s.io/events";

/// Converts an Event from one API's shape into the other's.
pub type Convert = fn(&Value) -> Value;

/// The other API of the same Events, and the conversion of its objects into `resource`'s
/// shape; `None` for any other resource.
pub fn twin(resource: &str) -> Option<(&'static str, Convert)> {
    match resource {
        CORE => Some((EVENTS, to_core)),
        EVENTS => Some((CORE, to_events)),
        _ => None,
    }
}

/// Copies the fields `pairs` names (`from` -> `to`) that `source` has.
fn copy(source: &Value, pairs: &[(&str, &str)], out: &mut Map<String, Value>) {
    for (from, to) in pairs {
        if let Some(v) = source.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), v.clone());
        }
    }
}

/// The fields both shapes share under the same name.
const SHARED: [(&str, &str); 8] = [
    ("metadata", "metadata"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("related", "related"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingInstance", "reportingInstance"),
];

/// The fields named differently: (`events.k8s.io/v1`, `core/v1`).
const RENAMED: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// An `events.k8s.io/v1` Event as `core/v1` shows it.
pub fn to_core(event: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!("v1"));
    copy(event, &SHARED, &mut out);
    copy(event, &RENAMED, &mut out);
    // core/v1 requires an involved object; the reporting controller is its source.
    out.entry("involvedObject").or_insert_with(|| json!({}));
    if !out.contains_key("source")
        && let Some(c) = event.get("reportingController")
    {
        out.insert("source".into(), json!({"component": c}));
    }
    Value::Object(out)
}

/// A `core/v1` Event as `events.k8s.io/v1` shows it.
pub fn to_events(event: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    copy(event, &SHARED, &mut out);
    let renamed: Vec<(&str, &str)> = RENAMED.iter().map(|&(new, core)| (core, new)).collect();
    copy(event, &renamed, &mut out);
    // events.k8s.io requires an eventTime; an Event written through core/v1 may have only
    // its timestamps.
    if !out.contains_key("eventTime")
        && let Some(t) = event
            .get("firstTimestamp")
            .or(event.get("lastTimestamp"))
            .and_then(Value::as_str)
    {
        out.insert("eventTime".into(), json!(t.replace('Z', ".000000Z")));
    }
    if !out.contains_key("reportingController")
        && let Some(c) = event.pointer("/source/component")
    {
        out.insert("reportingController".into(), c.clone());
    }
    Value::Object(out)
}

/// The fields a field selector may name on each Events API besides metadata.name and
/// metadata.namespace (kube-apiserver's lists), as JSON paths.
pub fn selectable(core: bool) -> Vec<String> {
    let fields: &[&str] = if core {
        &[
            ".involvedObject.kind",
            ".involvedObject.namespace",
            ".involvedObject.name",
            ".involvedObject.uid",
            ".involvedObject.apiVersion",
            ".involvedObject.resourceVersion",
            ".involvedObject.fieldPath",
            ".reason",
            ".reportingComponent",
            ".type",
        ]
    } else {
        &[
            ".regarding.kind",
            ".regarding.namespace",
            ".regarding.name",
            ".regarding.uid",
            ".regarding.apiVersion",
            ".regarding.resourceVersion",
            ".regarding.fieldPath",
            ".reason",
            ".reportingController",
            ".type",
        ]
    };
    fields.iter().map(|f| f.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_the_same_through_both_apis() {
        let written = json!({
            "kind": "Event", "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-11-27T00:00:00.000000Z", "reportingController": "purchase-guard",
            "reportingInstance": "pod-1", "action": "Freeze", "reason": "Frozen", "type": "Normal",
            "note": "scaled from 3 to 0", "regarding": {"kind": "Deployment", "name": "web"},
            "series": {"count": 2, "lastObservedTime": "2026-11-27T00:01:00.000000Z"}
        });
        let core = to_core(&written);
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "scaled from 3 to 0");
        assert_eq!(core["reportingComponent"], "purchase-guard");
        assert_eq!(core["source"], json!({"component": "purchase-guard"}));
        assert_eq!(core["series"]["count"], 2);
        // Back: what was written, plus the source it gained.
        let mut back = to_events(&core);
        back.as_object_mut().map(|o| o.remove("deprecatedSource"));
        assert_eq!(back, written);
        // An Event written through core/v1 with timestamps only gets an eventTime.
        let old = json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "x"},
                         "involvedObject": {"kind": "Pod", "name": "p"}, "message": "m",
                         "firstTimestamp": "2026-11-27T00:00:00Z", "count": 3,
                         "source": {"component": "kubelet"}});
        let new = to_events(&old);
        assert_eq!(new["eventTime"], "2026-11-27T00:00:00.000000Z");
        assert_eq!(new["deprecatedCount"], 3);
        assert_eq!(new["reportingController"], "kubelet");
    }
}
