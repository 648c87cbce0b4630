//! The generated CRDs: `crds/` in sync with `purchase-guard crds`, and every CRD complete
//! (status subresource, printer columns, short name, category, descriptions, bounded CEL).

use kube_cel::{ScopeContext, analyze_rule, compile_schema};
use purchase_guard::crdgen;
use serde_json::Value;
use std::path::Path;

fn crd_json() -> Vec<Value> {
    crdgen::all()
        .iter()
        .map(|crd| serde_json::to_value(crd).expect("a CRD serializes"))
        .collect()
}

/// `crds/` and the chart's `crds/` (which Helm installs) hold exactly the generated CRDs.
#[test]
fn crds_directories_match_generated_output() {
    for relative in ["crds", "charts/purchase-guard/crds"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        let mut expected_files: Vec<String> = Vec::new();
        for crd in crdgen::all() {
            let name = crdgen::file_name(&crd);
            let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_else(|e| panic!("{relative}/{name}: {e}"));
            let generated = crdgen::to_yaml(&crd).expect("CRD renders as YAML");
            assert!(
                on_disk == generated,
                "{relative}/{name} differs from the generated CRD; regenerate with: cargo run -- crds --dir {relative}"
            );
            expected_files.push(name);
        }
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{relative}/: {e}"))
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        present.sort();
        expected_files.sort();
        assert_eq!(present, expected_files, "{relative}/ holds exactly the generated CRDs");
    }
}

#[test]
fn multi_document_output_holds_every_crd() {
    let yaml = crdgen::all_yaml().unwrap();
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("each document is YAML"))
        .collect();
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    assert_eq!(
        names,
        [
            "partners.purchaseguard.io",
            "customeraccounts.purchaseguard.io",
            "resellerdelegations.purchaseguard.io",
            "purchaserestrictions.purchaseguard.io"
        ]
    );
}

#[test]
fn every_crd_has_status_columns_short_name_and_category() {
    for crd in crd_json() {
        let name = crd["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(crd["spec"]["group"], "purchaseguard.io", "{name}");
        let names = &crd["spec"]["names"];
        assert!(
            names["shortNames"].as_array().is_some_and(|s| !s.is_empty()),
            "{name}: short name"
        );
        assert_eq!(
            names["categories"],
            serde_json::json!(["purchaseguard"]),
            "{name}: category"
        );
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1, "{name}");
        let v = &versions[0];
        assert_eq!(v["name"], "v1alpha1");
        assert!(v["subresources"]["status"].is_object(), "{name}: status subresource");
        let columns: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(
            columns.len() >= 3 && columns.last() == Some(&"Age"),
            "{name}: columns {columns:?}"
        );
        let status = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
        assert!(status["conditions"].is_object(), "{name}: status.conditions");
        assert_eq!(status["conditions"]["x-kubernetes-list-type"], "map", "{name}");
        assert!(
            status["observedGeneration"].is_object(),
            "{name}: status.observedGeneration"
        );
    }
}

/// Every property in the schema has a description: they are `kubectl explain` output.
fn assert_described(schema: &Value, path: &str, missing: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            let child_path = format!("{path}.{key}");
            if child
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                missing.push(child_path.clone());
            }
            assert_described(child, &child_path, missing);
        }
    }
    if let Some(items) = schema.get("items") {
        assert_described(items, &format!("{path}[]"), missing);
    }
}

#[test]
fn every_field_has_a_description() {
    let mut missing = Vec::new();
    for crd in crd_json() {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(schema["description"].is_string(), "{kind} has a description");
        assert_described(schema, &kind, &mut missing);
    }
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}

/// Walks every node holding CEL rules: the rules compile, use only CRD-scope variables, stay
/// within the cost budget, and every string and list directly under the node is bounded.
fn check_rules(schema: &Value, path: &str, seen: &mut usize, problems: &mut Vec<String>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        let compiled = compile_schema(schema);
        if compiled.has_errors() {
            problems.push(format!("{path}: {:?}", compiled.compilation_errors()));
        }
        for rule in rules {
            let text = rule["rule"].as_str().unwrap_or_default();
            *seen += 1;
            for w in analyze_rule(text, &compiled, ScopeContext::CrdValidation) {
                problems.push(format!("{path}: {text}: {}", w.message));
            }
            if rule["message"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{path}: {text}: no message"));
            }
        }
        let mut nodes = vec![(path.to_string(), schema)];
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            nodes.extend(props.iter().map(|(k, v)| (format!("{path}.{k}"), v)));
        }
        for (p, node) in nodes {
            match node.get("type").and_then(Value::as_str) {
                Some("string") if node.get("maxLength").is_none() && node.get("enum").is_none() => {
                    problems.push(format!("{p}: a string a rule can touch has no maxLength"))
                }
                Some("array") if node.get("maxItems").is_none() => {
                    problems.push(format!("{p}: a list a rule can touch has no maxItems"))
                }
                _ => {}
            }
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, child) in props {
            check_rules(child, &format!("{path}.{k}"), seen, problems);
        }
    }
    if let Some(items) = schema.get("items") {
        check_rules(items, &format!("{path}[]"), seen, problems);
    }
}

#[test]
fn cel_rules_pass_static_analysis_for_scope_and_cost() {
    let mut problems = Vec::new();
    let mut seen = 0;
    for crd in crd_json() {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        check_rules(
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            &kind,
            &mut seen,
            &mut problems,
        );
    }
    assert!(seen >= 9, "expected the API's CEL rules, found {seen}");
    assert!(problems.is_empty(), "{problems:#?}");
}
