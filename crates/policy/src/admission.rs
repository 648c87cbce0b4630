//! The purchase admission decision: may this operation on a customer's billable resource go
//! ahead, given the customer's effective state (R1, R7)?

use crate::impact::{BillingMode, ImpactMatrix, Operation};
use crate::model::{RestrictionState, Role};
use std::collections::BTreeSet;

/// Who or what restricts a customer, as the controller recorded it in the customer's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestrictionSource {
    /// R1: restricted by default since association; `holder` may lift it.
    Default { holder: Option<String> },
    /// A partner's decision.
    Decision {
        partner: String,
        role: Role,
        reason: String,
    },
}

/// What admission knows of a customer's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerState {
    /// The customer's state is known and current.
    Known {
        state: RestrictionState,
        source: Option<RestrictionSource>,
    },
    /// The state cannot be trusted (caches not synced, status missing or stale): fail closed.
    Unknown { why: String },
}

/// The outcome of a purchase admission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny {
        rule: &'static str,
        reason: &'static str,
        message: String,
    },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

fn describe(operations: &BTreeSet<Operation>) -> String {
    operations
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decides an operation on a billable resource of `customer`. Operations the matrix blocks are
/// denied while the customer is restricted, and also when its state is unknown (fail closed).
pub fn decide_purchase(
    matrix: &ImpactMatrix,
    customer: &str,
    state: &CustomerState,
    mode: BillingMode,
    operations: &BTreeSet<Operation>,
) -> Verdict {
    let blocked: BTreeSet<Operation> = operations.iter().copied().filter(|o| matrix.blocks(mode, *o)).collect();
    if blocked.is_empty() {
        return Verdict::Allow;
    }
    match state {
        CustomerState::Known { state, .. } if !state.restricts_purchases() => Verdict::Allow,
        CustomerState::Known { state, source } => {
            let by = match source {
                Some(RestrictionSource::Decision { partner, role, reason }) => {
                    format!("by {role} \"{partner}\" (reason: \"{reason}\")")
                }
                Some(RestrictionSource::Default { holder: Some(holder) }) => format!(
                    "by default since its association in the Reseller model (R1); only \"{holder}\" can lift it"
                ),
                Some(RestrictionSource::Default { holder: None }) | None => {
                    "by default since its association in the Reseller model (R1)".to_string()
                }
            };
            let frozen = if state.freezes_resources() {
                " and its resources are frozen"
            } else {
                ""
            };
            Verdict::Deny {
                rule: "R7",
                reason: "CustomerRestricted",
                message: format!(
                    "R7: customer \"{customer}\" is restricted from purchases {by}{frozen}; {} of {mode} resources is blocked while it is restricted",
                    describe(&blocked)
                ),
            }
        }
        CustomerState::Unknown { why } => Verdict::Deny {
            rule: "R7",
            reason: "CustomerStateUnknown",
            message: format!(
                "R7: the restriction state of customer \"{customer}\" is not known ({why}), so {} of {mode} resources is refused until it is; retry shortly",
                describe(&blocked)
            ),
        },
    }
}
