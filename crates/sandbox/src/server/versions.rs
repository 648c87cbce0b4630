//! A resource served at a version other than the one it is stored at: autoscaling/v1
//! HorizontalPodAutoscalers, stored as autoscaling/v2 (as kube-apiserver stores them). A
//! request to v1 is answered by the v2 resource: bodies are converted on the way in, answers
//! (objects, lists, watch events) on the way out. Patches other than apply are applied to the
//! v1 form of the stored object and written back as a v2 update, with the stored
//! resourceVersion as precondition (retried when another write came first), since a patch
//! written against v1 fields cannot be applied to v2 fields.

use super::*;
use crate::autoscaling::{self, GROUP, PLURAL};
use futures::StreamExt;

/// The path of the stored version for a request path to a converted version, if it is one.
pub(super) fn stored_path(path: &str) -> Option<String> {
    // Every request passes here: a prefix test first, nothing allocated for the others.
    const CONVERTED: &str = "/apis/autoscaling/v1/";
    let rest = path.strip_prefix(CONVERTED)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let plural = match segments.as_slice() {
        ["watch", "namespaces", _, plural, ..] | ["namespaces", _, plural, ..] => *plural,
        ["watch", plural, ..] | [plural, ..] => *plural,
        [] => return None,
    };
    (plural == PLURAL).then(|| format!("/apis/{GROUP}/v2/{rest}"))
}

/// The namespace, name and subresource of a path to the resource (after the version).
fn object_of(path: &str) -> Option<(Option<String>, String)> {
    let rest = path.split_once(&format!("/{PLURAL}/"))?.1;
    let name = rest.split('/').next()?.to_string();
    let namespace = path
        .split_once("/namespaces/")
        .and_then(|(_, r)| r.split('/').next())
        .map(str::to_string);
    Some((namespace, name))
}

impl ApiServer {
    /// Answers a request to a converted version through the stored one.
    pub(super) async fn converted(
        self: Arc<Self>,
        method: Method,
        uri: &Uri,
        stored: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let target = with_path(uri, &stored);
        let query = parse_query(uri.query());
        let watch = truthy(&query, "watch") || stored.contains("/watch/");
        let mut warnings = Vec::new();
        let response = match method {
            Method::POST | Method::PUT => {
                let checked = parse_body(&headers, &body).and_then(|object| self.read_v1(&object, &query));
                match checked {
                    Ok((object, read)) => {
                        warnings = read;
                        let body = Bytes::from(autoscaling::to_v2(&object).to_string());
                        self.respond(method, &target, json_headers(&headers), body).await
                    }
                    Err(e) => return error_response(&e),
                }
            }
            Method::PATCH => match self.clone().patch_converted(uri, &target, &headers, &body).await {
                Ok((r, read)) => {
                    warnings = read;
                    r
                }
                Err(e) => return error_response(&e),
            },
            _ => self.respond(method, &target, headers, body).await,
        };
        let mut response = if watch {
            converted_stream(response)
        } else {
            converted_answer(response).await
        };
        for v in warnings.iter().filter_map(|w| warning(w)) {
            response.headers_mut().append("Warning", v);
        }
        response
    }

    /// A v1 object read as its v1 type, as kube-apiserver decodes it (wrong types refused,
    /// unknown fields dropped with warnings or refused, by `fieldValidation`), before it is
    /// converted.
    fn read_v1(&self, object: &Value, q: &Query) -> Result<(Value, Vec<String>), ApiError> {
        let rt = self
            .find(GROUP, "v1", PLURAL)
            .ok_or_else(|| ApiError::internal("autoscaling/v1 is not served"))?;
        self.validate_builtin(&rt, object, q)
    }

    async fn patch_converted(
        self: Arc<Self>,
        uri: &Uri,
        target: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Response, Vec<String>), ApiError> {
        let query = parse_query(uri.query());
        let (namespace, name) = object_of(uri.path()).ok_or_else(ApiError::method_not_allowed)?;
        let rt = self
            .find(GROUP, "v2", PLURAL)
            .ok_or_else(|| ApiError::internal("autoscaling/v2 is not served"))?;
        let form = OtherForm {
            current: &|| self.get(&rt, namespace.as_deref(), &name),
            shown: autoscaling::to_v1,
            back: autoscaling::to_v2,
            read: &|object| {
                let (object, warnings) = self.read_v1(object, &query)?;
                Ok((autoscaling::to_v2(&object), warnings))
            },
            conflict: &|| ApiError::conflict(GROUP, PLURAL, &name),
        };
        self.patch_other_form(&form, target, headers, body).await
    }

    /// A patch written against another form of a stored object than the stored one. An apply
    /// configuration is a partial object and converts as one; other patches are applied to the
    /// stored object as `form` shows it, read back and written as an update of the stored
    /// object, with the stored resourceVersion as precondition (retried when another write came
    /// first) unless the patch sets its own, since a patch written against the shown form's
    /// fields cannot be applied to the stored form's.
    pub(super) async fn patch_other_form(
        self: &Arc<Self>,
        form: &OtherForm<'_>,
        target: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Response, Vec<String>), ApiError> {
        let kind = patch_type(headers)?;
        if kind == PatchType::Apply {
            let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
            let config: Value = serde_yaml_ng::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let body = Bytes::from((form.back)(&config).to_string());
            return Ok((
                self.clone().respond(Method::PATCH, target, headers.clone(), body).await,
                vec![],
            ));
        }
        let patch: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        for _attempt in 0..16 {
            let current = (form.current)()?;
            let shown = (form.shown)(&current);
            let patched = match kind {
                PatchType::Strategic => patch::apply_strategic(&shown, &patch)?,
                _ => patch::apply_json_or_merge(kind, &shown, &patch)?,
            };
            // A resourceVersion the patch sets is the client's precondition; otherwise the
            // version read here is.
            let own_precondition =
                str_field(&patched, "/metadata/resourceVersion") != str_field(&shown, "/metadata/resourceVersion");
            let (mut stored, warnings) = (form.read)(&patched)?;
            if !own_precondition {
                stored["metadata"]["resourceVersion"] = json!(rv_of(&current).to_string());
            }
            let body = Bytes::from(stored.to_string());
            let response = self
                .clone()
                .respond(Method::PUT, target, json_headers(headers), body)
                .await;
            if response.status() == StatusCode::CONFLICT && !own_precondition {
                continue;
            }
            return Ok((response, warnings));
        }
        Err((form.conflict)())
    }
}

/// An object read as its type, with the warnings of the reading.
type Checked = (Value, Vec<String>);

/// Another form of a stored object than the stored one, as a patch sees it.
pub(super) struct OtherForm<'a> {
    /// The stored object now.
    pub current: &'a (dyn Fn() -> Result<Arc<Value>, ApiError> + Sync),
    /// The stored form shown as the addressed one.
    pub shown: fn(&Value) -> Value,
    /// The addressed form converted to the stored one, for partial objects.
    pub back: fn(&Value) -> Value,
    /// A whole object of the addressed form read as its type, converted to the stored form.
    pub read: &'a (dyn Fn(&Value) -> Result<Checked, ApiError> + Sync),
    /// The refusal when other writes kept coming first.
    pub conflict: &'a (dyn Fn() -> ApiError + Sync),
}

/// A whole answer of the stored version, converted.
async fn converted_answer(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error_response(&ApiError::internal("the answer could not be read"));
    };
    let Ok(mut document) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    autoscaling::response_to_v1(&mut document);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(document.to_string()))
}

/// A watch of the stored version, each event converted as it passes.
fn converted_stream(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut pending: Vec<u8> = Vec::new();
    let events = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        pending.extend_from_slice(&chunk);
        let mut out = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice::<Value>(&line) {
                Ok(mut event) => {
                    autoscaling::response_to_v1(&mut event);
                    out.extend_from_slice(event.to_string().as_bytes());
                    out.push(b'\n');
                }
                Err(_) => out.extend_from_slice(&line),
            }
        }
        Ok::<_, axum::Error>(Bytes::from(out))
    });
    Response::from_parts(parts, Body::from_stream(events))
}
