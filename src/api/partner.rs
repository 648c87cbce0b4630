use super::common::*;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A partner of the cloud: a distributor or one of its resellers. Owned by the platform
/// admin. A partner acts through the objects in its namespace: its ResellerDelegations and
/// PurchaseRestrictions live there, and RBAC on that namespace decides who acts for it.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "purchaseguard.io",
    version = "v1alpha1",
    kind = "Partner",
    plural = "partners",
    shortname = "ptn",
    category = "purchaseguard",
    status = "PartnerStatus",
    doc = "A distributor or reseller, and the namespace in which it acts.",
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".spec.role",
        description = "Distributor or Reseller"
    ),
    printcolumn(
        name = "Distributor",
        type_ = "string",
        json_path = ".spec.distributor",
        description = "A reseller's distributor"
    ),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".spec.namespace",
        description = "The namespace in which the partner acts"
    ),
    printcolumn(
        name = "Delegated",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"RestrictionDelegated\")].status",
        description = "Whether the distributor delegated restriction to this reseller"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.role == 'Reseller' ? has(self.distributor) : !has(self.distributor)").message("a Reseller names its distributor in spec.distributor; a Distributor has none").field_path(".distributor"))]
#[x_kube(validation = Rule::new("has(self.distributor) == has(oldSelf.distributor) && (!has(self.distributor) || self.distributor == oldSelf.distributor)").message("spec.distributor is immutable: a reseller cannot move to another distributor; create a new Partner").field_path(".distributor"))]
#[serde(rename_all = "camelCase")]
pub struct PartnerSpec {
    /// The partner's role: Distributor (tier 1) or Reseller (tier 2). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.role is immutable: create a new Partner"))]
    pub role: PartnerRole,

    /// The name of the Partner that is this reseller's distributor. Required for a Reseller,
    /// forbidden for a Distributor. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS1123_SUBDOMAIN))]
    pub distributor: Option<String>,

    /// The namespace in which this partner acts: objects in it are the partner's acts. Each
    /// partner needs its own namespace.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS1123_LABEL))]
    pub namespace: String,

    /// How long the resources of customers this partner freezes are retained before release
    /// (R8), such as "360h" or "1h30m" (hours, minutes, seconds); default: purchase-guard's
    /// --freeze-retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"))]
    pub freeze_retention: Option<String>,

    /// Verification codes (R5): when set, every restriction operation issued from this
    /// partner's namespace (creating, changing or withdrawing a PurchaseRestriction; creating,
    /// changing or revoking a ResellerDelegation) needs the current one-time code of the
    /// partner's authenticator in the annotation purchaseguard.io/verification-code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<PartnerVerification>,

    /// A human-readable name for the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
}

/// A partner's verification codes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerVerification {
    /// The Secret, in the partner's namespace, holding the TOTP secret (RFC 6238): key
    /// `secret` (base32, at least 128 bits), optional `digits` (6, 7 or 8; default 6),
    /// `period` (seconds; default 30) and `algorithm` (SHA1, SHA256 or SHA512; default SHA1).
    /// `purchase-guard verification enroll` creates it.
    pub secret_ref: SecretReference,
}

/// A Secret in the partner's own namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS1123_SUBDOMAIN))]
    pub name: String,
}

/// The observed state of a Partner, written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: the partner's namespace exists, for a reseller its distributor exists, and
    /// with verification enabled its secret is usable.
    /// `VerificationReady` (with spec.verification): whether the verification Secret exists
    /// and holds a valid TOTP secret.
    /// `RestrictionDelegated` (resellers): whether the distributor delegated restriction of
    /// this reseller's customers to it (R3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,

    /// The ResellerDelegation in force for this reseller, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<ObjectReference>,
}
