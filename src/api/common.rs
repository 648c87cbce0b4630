//! Types shared by the kinds: conditions and name formats.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The regular expression of a DNS-1123 label (namespace names).
pub const DNS1123_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// The regular expression of a DNS-1123 subdomain (object names).
pub const DNS1123_SUBDOMAIN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Status conditions, following the Kubernetes API conventions: one entry per type.
pub type Conditions = Vec<Condition>;

/// Marks the conditions list as a map keyed by `type` and bounds it.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = <Vec<Condition>>::json_schema(generator);
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema.insert("maxItems".into(), 8.into());
    schema
}

/// A reference to a namespaced object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// The namespace of the object.
    pub namespace: String,
    /// The name of the object.
    pub name: String,
}

/// The role a partner plays in the hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PartnerRole {
    /// A tier-1 partner that manages resellers.
    Distributor,
    /// A tier-2 partner attached to exactly one distributor.
    Reseller,
}

/// The restriction state a decision asks for (R6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestrictionState {
    /// Restrict Purchase: no new purchases, renewals or specification changes (R7).
    Restricted,
    /// Restrict Purchase and Freeze Resources: as Restricted, and pay-per-use resources can no
    /// longer be used (R8). Requires spec.agreementAccepted.
    RestrictedAndFrozen,
    /// Unrestrict Purchase (and unfreeze resources still in retention, R9).
    Unrestricted,
}

impl From<RestrictionState> for purchase_guard_policy::RestrictionState {
    fn from(s: RestrictionState) -> Self {
        match s {
            RestrictionState::Restricted => Self::Restricted,
            RestrictionState::RestrictedAndFrozen => Self::RestrictedAndFrozen,
            RestrictionState::Unrestricted => Self::Unrestricted,
        }
    }
}

impl From<purchase_guard_policy::RestrictionState> for RestrictionState {
    fn from(s: purchase_guard_policy::RestrictionState) -> Self {
        use purchase_guard_policy::RestrictionState as P;
        match s {
            P::Restricted => Self::Restricted,
            P::RestrictedAndFrozen => Self::RestrictedAndFrozen,
            P::Unrestricted => Self::Unrestricted,
        }
    }
}

impl From<PartnerRole> for purchase_guard_policy::Role {
    fn from(r: PartnerRole) -> Self {
        match r {
            PartnerRole::Distributor => Self::Distributor,
            PartnerRole::Reseller => Self::Reseller,
        }
    }
}

impl From<purchase_guard_policy::Role> for PartnerRole {
    fn from(r: purchase_guard_policy::Role) -> Self {
        match r {
            purchase_guard_policy::Role::Distributor => Self::Distributor,
            purchase_guard_policy::Role::Reseller => Self::Reseller,
        }
    }
}
