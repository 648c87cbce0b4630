//! Watches: events from a resourceVersion, bookmarks, and the 410 Gone of a compacted history.

use super::*;
use crate::store::{Event, EventType};

impl ApiServer {
    pub(super) fn watch(self: &Arc<Self>, t: &Target, q: &Query) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(&t.rt, q)?;
        let resource = t.rt.group_resource();
        let namespace = t.namespace.clone();
        // Events written through the other Events API are watched too, converted.
        let twin = crate::events::twin(&resource);
        let filter_key = {
            let resource = resource.clone();
            let namespace = namespace.clone();
            move |k: &Key| {
                (k.resource == resource || twin.is_some_and(|(t, _)| k.resource == t))
                    && namespace.as_ref().is_none_or(|ns| &k.namespace == ns)
            }
        };
        // An object as this watch shows it.
        let shown = move |k: &Key, o: &Arc<Value>| -> Arc<Value> {
            match twin {
                Some((t, convert)) if k.resource == t => Arc::new(convert(o)),
                _ => o.clone(),
            }
        };
        let send_initial = truthy(q, "sendInitialEvents");
        let from = match q.get("resourceVersion").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
            ),
        };
        let bookmarks = truthy(q, "allowWatchBookmarks");
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs);
        let rt = t.rt.clone();
        let start = if send_initial { None } else { from };
        let store = self.store.clone();
        let interval = self.bookmark_interval;
        let mut epoch = self.store.watch_epoch();
        let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
        tokio::spawn(async move {
            let line = |v: Value| Ok(Bytes::from(watch_line(&v)));
            store.watches_allowed().await;
            let (past, initial, mut rx, start_rv) = match store.watch_from(start, &filter_key) {
                Ok(s) => s,
                Err(WatchStartError::Expired { requested, oldest }) => {
                    // Like kube-apiserver: the stream carries one ERROR event with 410 Expired.
                    let status =
                        ApiError::gone(format!("too old resource version: {requested} ({oldest})")).to_status();
                    let _ = tx.send(line(json!({"type": "ERROR", "object": status}))).await;
                    return;
                }
            };
            let matches = |o: &Value| labels.matches(o) && fields.matches(o);
            let mut last_rv = start_rv;
            for (key, obj) in initial {
                let obj = shown(&key, &obj);
                if matches(&obj) && tx.send(line(json!({"type": "ADDED", "object": *obj}))).await.is_err() {
                    return;
                }
            }
            if send_initial {
                let bm = json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}});
                if tx.send(line(bm)).await.is_err() {
                    return;
                }
            }
            // What this watch sends for a change, if anything, as one line.
            let out = |e: &Event| -> Option<Bytes> {
                let (kind, obj) = through_selector(e, shown, matches)?;
                Some(if kind == e.kind && Arc::ptr_eq(&obj, &e.object) {
                    Bytes::from(e.line.to_string())
                } else {
                    Bytes::from(watch_line(&json!({"type": kind.as_str(), "object": *obj})))
                })
            };
            for e in past {
                last_rv = e.rv;
                if let Some(out) = out(&e)
                    && tx.send(Ok(out)).await.is_err()
                {
                    return;
                }
            }
            let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
                // Biased: once watches are closed, no later event goes out on this one.
                tokio::select! {
                    biased;
                    _ = epoch.changed() => return,
                    _ = tokio::time::sleep_until(sleep_until) => return,
                    _ = ticker.tick(), if bookmarks => {
                        let bm = json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}}});
                        if tx.send(line(bm)).await.is_err() { return; }
                    }
                    _ = tx.closed() => return,
                    received = rx.recv() => match received {
                        Ok(e) => {
                            if e.rv <= last_rv { continue; }
                            last_rv = e.rv;
                            if !filter_key(&e.key) { continue; }
                            let Some(out) = out(&e) else { continue };
                            if tx.send(Ok(out)).await.is_err() { return; }
                        }
                        // A watcher that falls behind is closed; the client resumes from its
                        // last resourceVersion.
                        Err(_) => return,
                    }
                }
            }
        });
        let stream = tokio_stream_from(body_rx);
        Ok(Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::TRANSFER_ENCODING, "chunked")
            .body(Body::from_stream(stream))
            .unwrap_or_default())
    }
}

/// How a watch with selectors shows a change, as kube-apiserver's watch cache does: an object
/// that starts to match is ADDED, one that stops is DELETED with its last matching content at
/// the change's resourceVersion, a change outside the selection is not sent. `shown` is the
/// object as this watch's API shows it.
fn through_selector(
    e: &Event,
    shown: impl Fn(&Key, &Arc<Value>) -> Arc<Value>,
    matches: impl Fn(&Value) -> bool,
) -> Option<(EventType, Arc<Value>)> {
    let obj = shown(&e.key, &e.object);
    let now = matches(&obj);
    let previous = match (e.kind, &e.previous) {
        (EventType::Modified, Some(previous)) => previous,
        (kind, _) => return now.then_some((kind, obj)),
    };
    let before = shown(&e.key, previous);
    match (matches(&before), now) {
        (true, true) => Some((EventType::Modified, obj)),
        (false, true) => Some((EventType::Added, obj)),
        (false, false) => None,
        (true, false) => {
            let mut last = (*before).clone();
            if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), Value::String(e.rv.to_string()));
            }
            Some((EventType::Deleted, Arc::new(last)))
        }
    }
}

/// A watch event's line as kube-apiserver writes it: `{"type":...,"object":{"kind":...}}`.
fn watch_line(event: &Value) -> String {
    let object = String::from_utf8(crate::meta::to_json(&event["object"])).unwrap_or_else(|_| "{}".into());
    format!("{{\"type\":{},\"object\":{object}}}\n", event["type"])
}
