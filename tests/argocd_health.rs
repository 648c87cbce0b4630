//! The Argo CD health script (`charts/purchase-guard/argocd/health.lua`) run by an embedded
//! Lua 5.4, as Argo CD runs it (the object as the global `obj`, the chunk returning a table
//! with `status` and `message`), against objects purchase-guard wrote
//! (`tests/fixtures/argocd/<Kind>/`, with `health_test.yaml` in Argo CD's upstream format);
//! and the argocd-cm snippet carries the same script for each kind.

use mlua::{Lua, LuaSerdeExt};
use serde::Deserialize;
use std::path::PathBuf;

const KINDS: [&str; 4] = [
    "Partner",
    "CustomerAccount",
    "ResellerDelegation",
    "PurchaseRestriction",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> String {
    std::fs::read_to_string(root().join("charts/purchase-guard/argocd/health.lua")).expect("health.lua")
}

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    health_status: Health,
    input_path: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Health {
    status: String,
    message: String,
}

/// Runs the script on `object` as Argo CD does.
fn health(object: &serde_json::Value) -> Health {
    let lua = Lua::new();
    let obj = lua.to_value(object).expect("the object as a Lua table");
    lua.globals().set("obj", obj).expect("obj");
    let result: mlua::Table = lua
        .load(script())
        .set_name("health.lua")
        .eval()
        .expect("the script runs");
    Health {
        status: result.get("status").expect("status"),
        message: result.get("message").expect("message"),
    }
}

#[test]
fn the_health_script_judges_what_purchase_guard_wrote() {
    let mut seen = std::collections::BTreeSet::new();
    for kind in KINDS {
        let dir = root().join("tests/fixtures/argocd").join(kind);
        let tests: HealthTests =
            serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("health_test.yaml")).expect("health_test.yaml"))
                .expect("health_test.yaml parses");
        assert!(!tests.tests.is_empty(), "{kind}: fixtures");
        for t in tests.tests {
            let object: serde_json::Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join(&t.input_path)).expect("fixture"))
                    .expect("the fixture parses");
            assert_eq!(object["kind"], kind, "{kind}/{}", t.input_path);
            assert_eq!(health(&object), t.health_status, "{kind}/{}", t.input_path);
            seen.insert(t.health_status.status);
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["Degraded", "Healthy", "Progressing"],
        "every state is covered"
    );
}

#[test]
fn an_object_without_status_or_conditions_is_progressing() {
    let bare = serde_json::json!({"kind": "Partner", "metadata": {"name": "p", "generation": 1}});
    assert_eq!(health(&bare).status, "Progressing");
    let no_conditions = serde_json::json!({"kind": "Partner", "metadata": {"name": "p", "generation": 1},
                                            "status": {"observedGeneration": 1}});
    assert_eq!(health(&no_conditions).status, "Progressing");
    let older = serde_json::json!({"kind": "Partner", "metadata": {"name": "p", "generation": 2},
                                    "status": {"observedGeneration": 1, "conditions": [
                                        {"type": "Ready", "status": "True", "reason": "Ready", "message": "ok"}]}});
    assert_eq!(health(&older).status, "Progressing", "a status of an older generation");
}

#[test]
fn the_argocd_cm_snippet_carries_the_script_for_every_kind() {
    let text =
        std::fs::read_to_string(root().join("charts/purchase-guard/argocd/argocd-cm.yaml")).expect("argocd-cm.yaml");
    let cm: serde_json::Value = serde_yaml_ng::from_str(&text).expect("argocd-cm.yaml parses");
    let script = script();
    for kind in KINDS {
        let key = format!("resource.customizations.health.purchaseguard.io_{kind}");
        assert_eq!(cm["data"][&key].as_str(), Some(script.as_str()), "{key}");
    }
}
