//! The purchase-guard API, group `purchaseguard.io`, version `v1alpha1`, as Rust types.
//! Doc comments become the CRDs' descriptions (`kubectl explain`).

// The printcolumn(...) lists of kube-derive repeat keys such as `type_` by design.
#![allow(clippy::duplicated_attributes)]

mod common;
mod customer;
mod delegation;
mod partner;
mod restriction;
mod shared;

pub use common::*;
pub use customer::*;
pub use delegation::*;
pub use partner::*;
pub use restriction::*;
pub use shared::SharedStr;

/// The API group.
pub const GROUP: &str = "purchaseguard.io";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// The annotation in which the audit stamp records the user who made a decision's change.
pub const AUDIT_USER_ANNOTATION: &str = "purchaseguard.io/changed-by";

/// The label purchase-guard keeps on every namespace a CustomerAccount lists (value `"true"`).
/// The purchase webhook sees only namespaces carrying it, so an outage of purchase-guard never
/// reaches platform namespaces; only purchase-guard sets it, and it is removed only by
/// purchase-guard or, once no CustomerAccount lists the namespace, by whoever releases it.
pub const GUARDED_LABEL: &str = "purchaseguard.io/guarded";

/// The label purchase-guard keeps on every guarded namespace saying what its customer may do:
/// `allowed`, `restricted` or `frozen` (the effective state). ValidatingAdmissionPolicies read
/// it inside the API server, so restrictions hold while purchase-guard is down. Set and
/// removed like [`GUARDED_LABEL`].
pub const PURCHASES_LABEL: &str = "purchaseguard.io/purchases";

/// The labels of customers' namespaces that only purchase-guard sets.
pub const OWNED_NAMESPACE_LABELS: [&str; 2] = [GUARDED_LABEL, PURCHASES_LABEL];

/// The value of [`PURCHASES_LABEL`] for an effective state.
pub fn purchases_value(state: purchase_guard_policy::RestrictionState) -> &'static str {
    match state {
        purchase_guard_policy::RestrictionState::Unrestricted => "allowed",
        purchase_guard_policy::RestrictionState::Restricted => "restricted",
        purchase_guard_policy::RestrictionState::RestrictedAndFrozen => "frozen",
    }
}

/// The category every kind belongs to: `kubectl get purchaseguard` lists them all.
pub const CATEGORY: &str = "purchaseguard";
