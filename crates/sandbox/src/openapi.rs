//! OpenAPI v3 documents per group/version: schemas of the built-in kinds (from k8s-openapi)
//! and of custom resources (from their CRDs), and the PATCH paths kubectl inspects to learn
//! that the server validates fields (`fieldValidation`).

use crate::registry::ResourceType;
use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// A built-in kind's schema: the catalogue's, and the access reviews' (not listable).
fn builtin_schema(generator: &mut SchemaGenerator, group: &str, version: &str, kind: &str) -> Option<String> {
    fn named<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<String> {
        generator.subschema_for::<T>();
        Some(T::schema_name().into_owned())
    }
    use api::authorization::v1 as authz;
    match (group, kind) {
        ("authorization.k8s.io", "SelfSubjectAccessReview") => named::<authz::SelfSubjectAccessReview>(generator),
        ("authorization.k8s.io", "SubjectAccessReview") => named::<authz::SubjectAccessReview>(generator),
        ("authorization.k8s.io", "LocalSubjectAccessReview") => named::<authz::LocalSubjectAccessReview>(generator),
        _ => crate::catalogue::find(group, version, kind).map(|e| (e.schema)(generator)),
    }
}

fn parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn crd_schema_name(rt: &ResourceType) -> String {
    let reversed: Vec<&str> = rt.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), rt.version, rt.kind)
}

/// The OpenAPI v3 document of one group/version.
pub fn document(types: &[ResourceType], crd_schemas: &HashMap<String, Value>) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let meta_name = ObjectMeta::schema_name().into_owned();
    generator.subschema_for::<ObjectMeta>();
    let mut roots: Vec<(String, &ResourceType)> = Vec::new();
    let mut custom: Map<String, Value> = Map::new();
    for rt in types {
        if rt.custom {
            let Some(schema) = crd_schemas.get(&rt.kind) else {
                continue;
            };
            let mut schema = schema.clone();
            if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
                props.entry("apiVersion").or_insert(json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
                props.entry("kind").or_insert(json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
                props.insert("metadata".into(), json!({"allOf": [{"$ref": format!("#/components/schemas/{meta_name}")}], "description": "Standard object's metadata."}));
            }
            let name = crd_schema_name(rt);
            custom.insert(name.clone(), schema);
            roots.push((name, rt));
        } else if let Some(name) = builtin_schema(&mut generator, &rt.group, &rt.version, &rt.kind) {
            roots.push((name, rt));
        }
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.extend(custom);
    let mut paths = Map::new();
    for (name, rt) in &roots {
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        if let Some(s) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            s.insert("x-kubernetes-group-version-kind".into(), json!([gvk.clone()]));
        }
        let prefix = if rt.group.is_empty() {
            format!("/api/{}", rt.version)
        } else {
            format!("/apis/{}/{}", rt.group, rt.version)
        };
        let path = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        paths.insert(
            path,
            json!({
                "get": {"operationId": format!("read{}", rt.kind), "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "put": {"operationId": format!("replace{}", rt.kind), "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk, "responses": ok,
                        "parameters": [parameter("dryRun", "When present, modifications are not persisted."), parameter("fieldManager", "The name of the actor making the change."), parameter("fieldValidation", "Ignore, Warn or Strict: how unknown and duplicate fields are treated.")]},
                "patch": {"operationId": format!("patch{}", rt.kind), "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk, "responses": ok,
                          "parameters": [parameter("dryRun", "When present, modifications are not persisted."), parameter("fieldManager", "The name of the actor making the change."), parameter("fieldValidation", "Ignore, Warn or Strict: how unknown and duplicate fields are treated."), parameter("force", "Force is going to \"force\" Apply requests.")]},
                "delete": {"operationId": format!("delete{}", rt.kind), "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok},
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
