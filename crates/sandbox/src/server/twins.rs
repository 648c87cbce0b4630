//! Updates of an Event through the Events API it was not written with. kube-apiserver stores
//! `core/v1` and `events.k8s.io/v1` Events as one resource, so a PUT or PATCH through either
//! reaches it; the sandbox stores each Event under the API it was written through. Such a
//! write is applied to the Event as the addressed API shows it, read as the addressed API's
//! type, converted, and written as an update of the stored Event, with the stored
//! resourceVersion as precondition unless the client gave its own (retried when another write
//! came first). The answer is converted back.

use super::*;
use crate::events::{self, Convert};

/// An Event addressed through one Events API and stored under the other.
pub(super) struct TwinEvent {
    /// The addressed API's resource type.
    addressed: ResourceType,
    /// The path of the stored Event.
    stored_path: String,
    stored: Key,
    /// Stored form to addressed form, and back.
    shown: Convert,
    back: Convert,
}

/// The addressed resource, namespace and name of a path to one Event (no subresource).
fn event_path(path: &str) -> Option<(&'static str, &str, &str)> {
    let (resource, rest) = if let Some(rest) = path.strip_prefix("/api/v1/namespaces/") {
        (events::CORE, rest)
    } else {
        (events::EVENTS, path.strip_prefix("/apis/events.k8s.io/v1/namespaces/")?)
    };
    let mut segments = rest.split('/');
    let (namespace, plural, name) = (segments.next()?, segments.next()?, segments.next()?);
    (plural == "events" && !name.is_empty() && segments.next().is_none()).then_some((resource, namespace, name))
}

/// The path of an Event of `resource`.
fn path_of(resource: &str, namespace: &str, name: &str) -> String {
    if resource == events::CORE {
        format!("/api/v1/namespaces/{namespace}/events/{name}")
    } else {
        format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}")
    }
}

impl ApiServer {
    /// An Event of `resource` held under the other Events API and not under `resource`: its
    /// stored key, the other API's resource type, and the conversion of the other API's objects
    /// into `resource`'s form.
    pub(super) fn held_by_the_other_api(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<(Key, ResourceType, Convert)> {
        let (twin, shown) = events::twin(resource)?;
        let stored = Key::new(twin, namespace, name);
        {
            let inner = self.store.lock();
            if inner.get(&Key::new(resource, namespace, name)).is_some() || inner.get(&stored).is_none() {
                return None;
            }
        }
        let (group, plural) = twin.split_once('/')?;
        Some((stored, self.find(group, "v1", plural)?, shown))
    }

    /// The Event a path names, when the other Events API holds it and the addressed one does not.
    pub(super) fn event_of_the_other_api(&self, path: &str) -> Option<TwinEvent> {
        let (resource, namespace, name) = event_path(path)?;
        let (stored, _, shown) = self.held_by_the_other_api(resource, namespace, name)?;
        let (_, back) = events::twin(&stored.resource)?;
        let (group, plural) = resource.split_once('/')?;
        Some(TwinEvent {
            addressed: self.find(group, "v1", plural)?,
            stored_path: path_of(&stored.resource, namespace, name),
            stored,
            shown,
            back,
        })
    }

    pub(super) async fn write_event_through_twin(
        self: Arc<Self>,
        event: TwinEvent,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Response {
        let target = with_path(uri, &event.stored_path);
        let query = parse_query(uri.query());
        let written = self
            .write_through_twin(&event, method, &target, &query, headers, body)
            .await;
        let (response, warnings) = match written {
            Ok(written) => written,
            Err(e) => return error_response(&e),
        };
        // The stored form's answer, as the addressed API shows it.
        let (mut parts, answer) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(answer, usize::MAX).await else {
            return error_response(&ApiError::internal("the answer could not be read"));
        };
        let document = match serde_json::from_slice::<Value>(&bytes) {
            Ok(d) if d.get("kind").and_then(Value::as_str) == Some("Event") => (event.shown)(&d),
            _ => return Response::from_parts(parts, Body::from(bytes)),
        };
        parts.headers.remove(header::CONTENT_LENGTH);
        for v in warnings.iter().filter_map(|w| warning(w)) {
            parts.headers.append("Warning", v);
        }
        Response::from_parts(parts, Body::from(meta::to_json(&document)))
    }

    /// The body read as the addressed API's type, in the stored form.
    fn as_stored(&self, event: &TwinEvent, object: &Value, q: &Query) -> Result<(Value, Vec<String>), ApiError> {
        let (object, warnings) = self.validate_builtin(&event.addressed, object, q)?;
        Ok(((event.back)(&object), warnings))
    }

    /// A PUT or a PATCH of the Event as the addressed API shows it, written to the stored one.
    async fn write_through_twin(
        self: &Arc<Self>,
        event: &TwinEvent,
        method: &Method,
        target: &Uri,
        q: &Query,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Response, Vec<String>), ApiError> {
        if *method == Method::PUT {
            let (stored, warnings) = self.as_stored(event, &parse_body(headers, body)?, q)?;
            let body = Bytes::from(stored.to_string());
            let response = self
                .clone()
                .respond(Method::PUT, target, json_headers(headers), body)
                .await;
            return Ok((response, warnings));
        }
        let missing = || ApiError::not_found(&event.addressed.group, "events", &event.stored.name);
        let form = super::versions::OtherForm {
            current: &|| self.store.lock().get(&event.stored).cloned().ok_or_else(missing),
            shown: event.shown,
            back: event.back,
            read: &|object| self.as_stored(event, object, q),
            conflict: &|| ApiError::conflict(&event.addressed.group, "events", &event.stored.name),
        };
        self.patch_other_form(&form, target, headers, body).await
    }
}
