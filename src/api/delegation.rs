use super::common::*;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A distributor's grant of restriction (and freeze) permission to one of its resellers
/// (R2). Created in the distributor's namespace. While it exists, only the reseller may
/// restrict or unrestrict the reseller's customers (R3); deleting it returns authority to
/// the distributor.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "purchaseguard.io",
    version = "v1alpha1",
    kind = "ResellerDelegation",
    plural = "resellerdelegations",
    shortname = "rdel",
    category = "purchaseguard",
    namespaced,
    status = "ResellerDelegationStatus",
    doc = "A distributor delegates restriction of a reseller's customers to that reseller.",
    printcolumn(name = "Reseller", type_ = "string", json_path = ".spec.reseller"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    ),
    printcolumn(
        name = "Why",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(oldSelf.revocation) || (has(self.revocation) && self.revocation == oldSelf.revocation)").message("spec.revocation cannot be changed or removed: a revoked delegation stays revoked; create a new ResellerDelegation").field_path(".revocation"))]
#[serde(rename_all = "camelCase")]
pub struct ResellerDelegationSpec {
    /// The name of the reseller Partner receiving restriction authority over its customers.
    /// It must be a reseller of the distributor acting in this namespace. Immutable.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS1123_SUBDOMAIN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.reseller is immutable: delete this delegation and create one for the other reseller"))]
    pub reseller: String,

    /// Why the distributor delegates, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,

    /// The revocation of this delegation: once set, the delegation no longer moves authority
    /// (authority returns to the distributor, R3) and cannot be put back; create a new one
    /// instead. Deleting the delegation revokes it too, but a partner with verification codes
    /// enabled revokes here first, with its code, since a DELETE cannot carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<DelegationRevocation>,
}

/// A revocation and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelegationRevocation {
    /// Why, written by the operator (R4): visible characters, on one line.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new(r"self.matches('[^\\s\\p{Cf}]')").message("R4: a revocation needs a reason, and it must not be blank"))]
    #[x_kube(validation = Rule::new(r"!self.matches('\\p{Cc}')").message("R4: a reason is one line of text: control characters (newlines, tabs, escapes) are not allowed"))]
    pub reason: String,
}

/// The observed state of a delegation, written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResellerDelegationStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Accepted`: False when the issuer is not a distributor, the reseller is not its own,
    /// or an older delegation of the same reseller exists. `Active`: whether this delegation
    /// moves authority now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,

    /// The distributor acting in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributor: Option<String>,
}
