//! Reads: get, list (with selectors, pagination and Table output).

use super::*;

impl ApiServer {
    pub(super) fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        Key::new(
            &rt.group_resource(),
            if rt.namespaced { namespace.unwrap_or("") } else { "" },
            name,
        )
    }

    pub(super) fn get(&self, rt: &ResourceType, namespace: Option<&str>, name: &str) -> Result<Arc<Value>, ApiError> {
        let inner = self.store.lock();
        let key = Self::key(rt, namespace, name);
        if let Some(found) = inner.get(&key) {
            return Ok(found.clone());
        }
        // An Event written through the other Events API.
        if let Some((twin, convert)) = crate::events::twin(&key.resource)
            && let Some(found) = inner.get(&Key::new(twin, &key.namespace, &key.name))
        {
            return Ok(Arc::new(convert(found)));
        }
        Err(ApiError::not_found(&rt.group, &rt.plural, name))
    }

    pub(super) fn selectors(&self, rt: &ResourceType, q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
        Ok((
            LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or_default())?,
            FieldSelector::parse(
                q.get("fieldSelector").map(String::as_str).unwrap_or_default(),
                &rt.selectable_fields,
            )?,
        ))
    }

    pub(super) fn list(&self, t: &Target, q: &Query, accept: &str) -> Result<Response, ApiError> {
        let (labels, fields) = self.selectors(&t.rt, q)?;
        let limit: usize = q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let after = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let inner = self.store.lock();
        let rv = inner.rv();
        let mut items = Vec::new();
        let mut next = None;
        let resource = t.rt.group_resource();
        // Events written through the other Events API too, converted, in key order.
        let mut entries: Vec<(&Key, std::borrow::Cow<'_, Value>)> = inner
            .list(&resource, t.namespace.as_deref())
            .map(|(k, v)| (k, std::borrow::Cow::Borrowed(&**v)))
            .collect();
        if let Some((twin, convert)) = crate::events::twin(&resource) {
            entries.extend(
                inner
                    .list(twin, t.namespace.as_deref())
                    .map(|(k, v)| (k, std::borrow::Cow::Owned(convert(v)))),
            );
            entries.sort_by(|a, b| (&a.0.namespace, &a.0.name).cmp(&(&b.0.namespace, &b.0.name)));
        }
        for (k, v) in entries {
            let v = v.as_ref();
            if let Some((ns, name)) = &after
                && (k.namespace.as_str(), k.name.as_str()) <= (ns.as_str(), name.as_str())
            {
                continue;
            }
            if !(labels.matches(v) && fields.matches(v)) {
                continue;
            }
            if items.len() == limit {
                next = items.last().map(|last: &Value| {
                    encode_continue(
                        str_field(last, "/metadata/namespace").unwrap_or_default(),
                        str_field(last, "/metadata/name").unwrap_or_default(),
                    )
                });
                break;
            }
            items.push(v.clone());
        }
        drop(inner);
        if accept.contains("as=Table") {
            let mut table = self.table(&t.rt, &items, q);
            table["metadata"] = json!({"resourceVersion": rv.to_string()});
            if let Some(c) = &next {
                table["metadata"]["continue"] = json!(c);
            }
            return Ok(json_response(200, &table, &[]));
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(c) = next {
            metadata["continue"] = json!(c);
        }
        // Metadata-only lists (client-go's metadata client, kube-rs's `list_metadata`).
        if accept.contains("as=PartialObjectMetadataList") {
            let items: Vec<Value> = items
                .into_iter()
                .map(|mut item| {
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": item.get_mut("metadata").map(Value::take).unwrap_or(json!({}))})
                })
                .collect();
            return Ok(json_response(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "items": items}),
                &[],
            ));
        }
        Ok(json_response(
            200,
            &json!({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version(), "metadata": metadata, "items": items}),
            &[],
        ))
    }

    /// A Table for `kubectl get`: Name, the printer columns, Age.
    pub(super) fn table(&self, rt: &ResourceType, items: &[Value], q: &Query) -> Value {
        let mut columns = vec![
            json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
        ];
        for c in &rt.columns {
            columns.push(json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}));
        }
        let has_age_column = rt.columns.iter().any(|c| c.name == "Age");
        if !has_age_column {
            columns.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
        }
        let now_s = jiff::Timestamp::now().as_second();
        let age = |v: &Value| -> Value {
            v.as_str()
                .and_then(parse_time)
                .map(|t| json!(human_duration(now_s - t)))
                .unwrap_or(Value::Null)
        };
        let include_object = q.get("includeObject").map(String::as_str).unwrap_or("Metadata");
        let rows: Vec<Value> = items
            .iter()
            .map(|item| {
                let mut cells = vec![json!(str_field(item, "/metadata/name").unwrap_or_default())];
                for c in &rt.columns {
                    let v = match c.computed {
                        Some(cell) => cell(item),
                        None => c.json_path.as_deref().and_then(|p| json_path(item, p)).cloned().unwrap_or(Value::Null),
                    };
                    cells.push(if c.type_ == "date" { age(&v) } else { v });
                }
                if !has_age_column {
                    cells.push(age(item.pointer("/metadata/creationTimestamp").unwrap_or(&Value::Null)));
                }
                let object = match include_object {
                    "None" => Value::Null,
                    "Object" => item.clone(),
                    _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item.get("metadata").cloned().unwrap_or(json!({}))}),
                };
                json!({"cells": cells, "object": object})
            })
            .collect();
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": self.store.lock().rv().to_string()}, "columnDefinitions": columns, "rows": rows})
    }
}
