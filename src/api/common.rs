//! Types shared by the kinds: conditions and name formats.

use super::SharedStr;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The regular expression of a DNS-1123 label (namespace names).
pub const DNS1123_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// The regular expression of a DNS-1123 subdomain (object names).
pub const DNS1123_SUBDOMAIN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A status condition: the fields and JSON of Kubernetes' `metav1.Condition` (the same
/// schema, the same order of keys, the same defaults when a key is missing), with its strings
/// shared between objects ([`SharedStr`]): the caches hold thousands of conditions that repeat
/// the same types, statuses, reasons and messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When the condition last changed from one status to another.
    pub last_transition_time: Time,
    /// What happened, for humans.
    #[serde(default)]
    pub message: SharedStr,
    /// The metadata.generation the condition was set from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Why, in CamelCase, for programs.
    #[serde(default)]
    pub reason: SharedStr,
    /// True, False or Unknown.
    #[serde(default)]
    pub status: SharedStr,
    /// The condition's type, in CamelCase.
    #[serde(default, rename = "type")]
    pub type_: SharedStr,
}

/// Status conditions, following the Kubernetes API conventions: one entry per type.
pub type Conditions = Vec<Condition>;

/// Kubernetes' Condition schema for the conditions list; marks it as a map keyed by `type` and
/// bounds it.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = <Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>::json_schema(generator);
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
    pub namespace: SharedStr,
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as Upstream;

    /// The shared-string condition reads and writes the JSON Kubernetes' own does.
    #[test]
    fn conditions_read_and_write_as_kubernetes_conditions() {
        for json in [
            serde_json::json!({"type": "Ready", "status": "True", "reason": "Current", "message": "up to date", "observedGeneration": 3, "lastTransitionTime": "2026-11-28T05:00:00Z"}),
            serde_json::json!({"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-28T05:00:00Z"}),
        ] {
            let ours: Condition = serde_json::from_value(json.clone()).expect("ours reads it");
            let upstream: Upstream = serde_json::from_value(json).expect("upstream reads it");
            assert_eq!(
                serde_json::to_string(&ours).expect("json"),
                serde_json::to_string(&upstream).expect("json"),
                "the same keys, in the same order, with the same defaults"
            );
        }
        let missing = serde_json::json!({"type": "Ready", "status": "True"});
        assert_eq!(
            serde_json::from_value::<Condition>(missing.clone()).is_err(),
            serde_json::from_value::<Upstream>(missing).is_err(),
            "lastTransitionTime is required by both"
        );
        // Four one-pointer strings: the caches hold about ten conditions per customer.
        assert_eq!(std::mem::size_of::<Condition>(), 64);
    }
}
