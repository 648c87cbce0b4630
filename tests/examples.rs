//! Every manifest in `examples/` validates against its CRD's schema and CEL rules, and every
//! manifest in `examples/invalid/` is rejected with the message a user would see.

use purchase_guard::crdgen;
use purchase_guard_crd_validation::{CrdValidator, FieldValidation, validate_dns1123_label};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn validator() -> CrdValidator {
    let mut v = CrdValidator::new();
    for crd in crdgen::all() {
        v.add_crd(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    for file in yaml_files(&root().join("examples/billable-crd")) {
        for doc in documents(&file) {
            v.add_crd(&doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    v
}

#[test]
fn every_example_is_valid() {
    let v = validator();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for file in yaml_files(&root().join("examples")) {
        for doc in documents(&file) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if kind == "Namespace" {
                assert!(
                    validate_dns1123_label(&name).is_empty(),
                    "{}: namespace {name}",
                    file.display()
                );
            } else if kind == "Deployment" {
                // A built-in kind: its types, and a name the API server accepts.
                serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(doc.clone())
                    .unwrap_or_else(|e| panic!("{}: Deployment {name}: {e}", file.display()));
                assert!(validate_dns1123_label(&name).is_empty(), "{}: {name}", file.display());
            } else {
                assert!(
                    v.knows(doc["apiVersion"].as_str().unwrap_or_default(), &kind),
                    "{}: {kind} is served",
                    file.display()
                );
                if let Err(e) = v.validate(&doc, None, FieldValidation::Strict) {
                    panic!("{}: {kind} {name}: {e}", file.display());
                }
            }
            *counts.entry(kind).or_default() += 1;
        }
    }
    // The scenario the examples promise: one distributor with two resellers, several
    // customers (one outside the Reseller model), one delegation, decisions in each state and
    // billable resources in each billing mode.
    assert_eq!(counts.get("Partner"), Some(&3), "{counts:?}");
    assert!(counts.get("CustomerAccount").is_some_and(|n| *n >= 3), "{counts:?}");
    assert_eq!(counts.get("ResellerDelegation"), Some(&1), "{counts:?}");
    let docs: Vec<Value> = yaml_files(&root().join("examples"))
        .iter()
        .flat_map(|f| documents(f))
        .collect();
    fn of_kind<'a>(docs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        docs.iter().filter(move |d| d["kind"] == kind)
    }
    let mut states: Vec<&str> = of_kind(&docs, "PurchaseRestriction")
        .filter_map(|d| d["spec"]["state"].as_str())
        .collect();
    states.sort();
    assert_eq!(states, ["Restricted", "RestrictedAndFrozen", "Unrestricted"]);
    let mut modes: Vec<&str> = of_kind(&docs, "VirtualMachine")
        .filter_map(|d| d["metadata"]["labels"]["purchaseguard.io/billing-mode"].as_str())
        .collect();
    modes.sort();
    modes.dedup();
    assert_eq!(modes, ["pay-per-use", "spot", "yearly-monthly"]);
    assert!(of_kind(&docs, "CustomerAccount").any(|d| d["spec"]["associationModel"] != "Reseller"));
}

#[test]
fn every_invalid_example_is_rejected_with_its_message() {
    let v = validator();
    let files = yaml_files(&root().join("examples/invalid"));
    assert!(
        files.len() >= 10,
        "expected the invalid examples, found {}",
        files.len()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no '# expect:' line", file.display()));
        let docs = documents(&file);
        let result = match docs.as_slice() {
            [object] => v.validate(object, None, FieldValidation::Strict),
            [old, new] => {
                v.validate(old, None, FieldValidation::Strict)
                    .unwrap_or_else(|e| panic!("{}: the existing object must be valid: {e}", file.display()));
                v.validate(new, Some(old), FieldValidation::Strict)
            }
            other => panic!(
                "{}: expected one document or an old/new pair, found {}",
                file.display(),
                other.len()
            ),
        };
        match result {
            Ok(_) => panic!("{}: accepted, expected: {expected}", file.display()),
            Err(e) => assert_eq!(e.to_string(), expected, "{}", file.display()),
        }
    }
}

#[test]
fn defaults_are_applied_and_unknown_fields_handled_per_field_validation() {
    let v = validator();
    let decision = serde_json::json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
        "metadata": {"name": "d", "namespace": "dist-emea"},
        "spec": {"customer": "globex", "state": "Restricted", "reason": "overdue", "extra": 1}
    });
    let warned = v.validate(&decision, None, FieldValidation::Warn).unwrap();
    assert_eq!(warned.warnings, ["unknown field \"spec.extra\""]);
    assert_eq!(warned.object["spec"]["agreementAccepted"], false, "default applied");
    assert!(warned.object["spec"].get("extra").is_none(), "unknown field pruned");
    let ignored = v.validate(&decision, None, FieldValidation::Ignore).unwrap();
    assert!(ignored.warnings.is_empty());
    assert!(v.validate(&decision, None, FieldValidation::Strict).is_err());
}
