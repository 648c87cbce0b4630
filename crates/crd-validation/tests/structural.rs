//! Structural validation, worded like kube-apiserver.

use purchase_guard_crd_validation::{CrdValidator, FieldValidation, Rejected};
use serde_json::{Value, json};

fn validator() -> CrdValidator {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 3}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "when": {"type": "string", "format": "date-time"}
                    },
                    "x-kubernetes-validations": [{"rule": "self.size != 7", "message": "seven is unlucky"}]}
                }}}}]}
    });
    let mut v = CrdValidator::new();
    v.add_crd(&crd).unwrap();
    v
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

fn error(spec: Value) -> String {
    validator()
        .validate(&widget(spec), None, FieldValidation::Strict)
        .unwrap_err()
        .to_string()
}

#[test]
fn messages_match_kube_apiserver_wording() {
    let cases = [
        (json!({}), "The Widget \"w\" is invalid: spec.size: Required value"),
        (
            json!({"size": "big"}),
            "The Widget \"w\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
        ),
        (
            json!({"size": 11}),
            "The Widget \"w\" is invalid: spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (
            json!({"size": 1, "color": "green"}),
            "The Widget \"w\" is invalid: spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
        ),
        (
            json!({"size": 1, "tags": ["a", "b", "c"]}),
            "The Widget \"w\" is invalid: spec.tags: Too many: 3: must have at most 2 items",
        ),
        (
            json!({"size": 1, "tags": ["abcd"]}),
            "The Widget \"w\" is invalid: spec.tags[0]: Too long: may not be more than 3 bytes",
        ),
        (
            json!({"size": 7}),
            "The Widget \"w\" is invalid: spec: Invalid value: \"object\": seven is unlucky",
        ),
        (
            json!({"size": 0, "color": "green"}),
            "The Widget \"w\" is invalid: [spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\", spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1]",
        ),
        (
            json!({"size": 1, "when": "yesterday"}),
            "The Widget \"w\" is invalid: spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
        ),
    ];
    for (spec, expected) in cases {
        // Fields are visited in key order, so several errors come in a stable order.
        assert_eq!(error(spec.clone()), expected, "{spec}");
    }
}

#[test]
fn preserved_fields_are_kept_and_defaults_applied() {
    let ok = validator()
        .validate(
            &widget(json!({"size": 2, "free": {"anything": [1, 2]}})),
            None,
            FieldValidation::Strict,
        )
        .unwrap();
    assert_eq!(ok.object["spec"]["free"]["anything"], json!([1, 2]));
    assert_eq!(ok.object["spec"]["color"], "red");
}

#[test]
fn unknown_kinds_and_bad_names_are_rejected() {
    let v = validator();
    let gadget = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}});
    assert!(matches!(
        v.validate(&gadget, None, FieldValidation::Strict),
        Err(Rejected::UnknownKind { .. })
    ));
    let mut bad = widget(json!({"size": 1}));
    bad["metadata"]["name"] = json!("Not_OK");
    let msg = v.validate(&bad, None, FieldValidation::Strict).unwrap_err().to_string();
    assert!(
        msg.starts_with(
            "The Widget \"Not_OK\" is invalid: metadata.name: Invalid value: \"Not_OK\": a lowercase RFC 1123 subdomain"
        ),
        "{msg}"
    );
    let mut unnamed = widget(json!({"size": 1}));
    unnamed["metadata"] = json!({"generateName": "w-"});
    assert!(v.validate(&unnamed, None, FieldValidation::Strict).is_ok());
}

#[test]
fn crds_with_broken_cel_are_refused() {
    let mut crd = json!({"spec": {"group": "g.io", "names": {"kind": "K"}, "versions": [{"name": "v1", "schema": {"openAPIV3Schema":
        {"type": "object", "x-kubernetes-validations": [{"rule": "self.x >=", "message": "m"}]}}}]}});
    let err = CrdValidator::new().add_crd(&crd).unwrap_err().to_string();
    assert!(err.contains("CEL rules do not compile"), "{err}");
    crd["spec"]["versions"] = json!([{"name": "v1"}]);
    assert!(
        CrdValidator::new()
            .add_crd(&crd)
            .unwrap_err()
            .to_string()
            .contains("openAPIV3Schema is required")
    );
}

/// Paths of nested items and pruned fields, and patterns judged many times (each compiled
/// once and shared).
#[test]
fn nested_paths_and_patterns_are_named_as_kube_apiserver_names_them() {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "lists.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "List", "plural": "lists"}, "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"entries": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}}}}}}}}}}]}
    });
    let mut v = CrdValidator::new();
    v.add_crd(&crd).unwrap();
    let list = |entries: Value| json!({"apiVersion": "example.com/v1", "kind": "List", "metadata": {"name": "l"}, "spec": {"entries": entries}});
    for _ in 0..3 {
        let ok = v
            .validate(
                &list(json!([{"name": "a"}, {"name": "b"}])),
                None,
                FieldValidation::Strict,
            )
            .expect("valid names");
        assert_eq!(ok.object["spec"]["entries"][1]["name"], "b");
        let bad = v
            .validate(
                &list(json!([{"name": "a"}, {"name": "B-2"}])),
                None,
                FieldValidation::Strict,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            bad,
            "The List \"l\" is invalid: spec.entries[1].name: Invalid value: \"B-2\": spec.entries[1].name in body should match '^[a-z]+$'"
        );
    }
    let strict = v
        .validate(&list(json!([{"name": "a", "extra": 1}])), None, FieldValidation::Strict)
        .unwrap_err();
    assert!(
        matches!(&strict, Rejected::StrictDecoding { unknown, .. } if unknown == &vec!["spec.entries[0].extra".to_string()]),
        "{strict:?}"
    );
    let warned = v
        .validate(
            &list(json!([{"name": "a", "extra": 1}, {"other": true}])),
            None,
            FieldValidation::Warn,
        )
        .expect("pruned with warnings");
    assert_eq!(
        warned.object["spec"]["entries"],
        json!([{"name": "a"}, {}]),
        "unknown fields pruned"
    );
    assert_eq!(
        warned.warnings,
        vec![
            "unknown field \"spec.entries[0].extra\"",
            "unknown field \"spec.entries[1].other\""
        ]
    );
}

/// An update compares against the old object as storage reads it with the current schema:
/// unknown fields pruned and defaults applied. Then an unchanged spec is not judged again
/// (ratcheting), even when its stored form lacked a default or held a field since dropped.
#[test]
fn the_old_object_is_pruned_and_defaulted_before_ratcheting() {
    let v = validator();
    let new = widget(json!({"size": 7}));
    let stored_before = widget(json!({"size": 7, "dropped": true}));
    let ok = v
        .validate(&new, Some(&stored_before), FieldValidation::Strict)
        .expect("unchanged once the old object is read with the current schema");
    assert_eq!(ok.object["spec"], json!({"size": 7, "color": "red"}));
    // A changed spec is judged.
    let changed = v
        .validate(
            &widget(json!({"size": 7, "tags": ["a"]})),
            Some(&stored_before),
            FieldValidation::Strict,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        changed,
        "The Widget \"w\" is invalid: spec: Invalid value: \"object\": seven is unlucky"
    );
}
