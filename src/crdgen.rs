//! The CustomResourceDefinitions of the API, generated from the Rust types.

use crate::api::{CustomerAccount, Partner, PurchaseRestriction, ResellerDelegation};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::CustomResourceExt;

/// Every CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Partner::crd(),
        CustomerAccount::crd(),
        ResellerDelegation::crd(),
        PurchaseRestriction::crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
                unwrap_descriptions(schema);
                not_yet_observed(schema);
            }
        }
    }
    crds
}

/// The status an object has until purchase-guard first writes one: `observedGeneration: -1`,
/// applied by the API server's defaulting whenever the object is read. kstatus (Flux, Helm 4's
/// `--wait`, `kubectl wait`) counts an object without status or conditions as current; with
/// an observed generation that is not the object's, it counts it as in progress, so a GitOps
/// rollout waits for purchase-guard's verdict instead of passing before anyone looked.
fn not_yet_observed(schema: &mut JSONSchemaProps) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;
    if let Some(status) = schema.properties.as_mut().and_then(|p| p.get_mut("status")) {
        status.default = Some(JSON(serde_json::json!({"observedGeneration": NOT_YET_OBSERVED})));
    }
}

/// `status.observedGeneration` of an object purchase-guard has not reconciled yet.
pub const NOT_YET_OBSERVED: i64 = -1;

/// Doc comments are wrapped at source width; descriptions read better (`kubectl explain`
/// wraps them itself) as one line per paragraph.
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(d) = schema.description.as_mut() {
        *d = d
            .split("\n\n")
            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        unwrap_descriptions(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        unwrap_descriptions(items);
    }
}

/// The file name of a CRD in `crds/`: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(crd)
}

/// Every CRD as multi-document YAML.
pub fn all_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}
