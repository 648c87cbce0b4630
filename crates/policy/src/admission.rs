//! The purchase admission decision: may this operation on a customer's billable resource go
//! ahead, given the customer's effective state (R1, R7)?

use crate::classify::{ClassifyRules, RequestOperation, billing_mode_of, classify_request, classify_scale};
use crate::effective::{Basis, CustomerEvaluation};
use crate::impact::{BillingMode, ImpactMatrix, Operation};
use crate::model::{RestrictionState, Role};
use serde_json::Value;
use std::collections::BTreeSet;

/// Who or what restricts a customer, as the controller recorded it in the customer's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestrictionSource {
    /// R1: restricted by default since association; `holder` may lift it.
    Default { holder: Option<String> },
    /// A partner's decision.
    Decision {
        partner: String,
        /// The partner's role; `None` when it has no `Partner` object any more.
        role: Option<Role>,
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
                Some(RestrictionSource::Decision {
                    partner,
                    role: Some(role),
                    reason,
                }) => {
                    format!("by {role} \"{partner}\" (reason: {reason:?})")
                }
                Some(RestrictionSource::Decision {
                    partner,
                    role: None,
                    reason,
                }) => {
                    format!("by partner \"{partner}\" (reason: {reason:?})")
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

/// What admission knows of a customer from its evaluation ([`crate::evaluate_customer`], the
/// same the controller writes into the status): its effective state and what it rests on.
/// Admission evaluates the customer itself from its caches, so that a restriction holds as
/// soon as the watch delivers it, whether or not a controller has written a status yet.
pub fn evaluated_state(eval: &CustomerEvaluation) -> CustomerState {
    let source = match &eval.effective.basis {
        Basis::NotInResellerModel => None,
        Basis::Default => Some(RestrictionSource::Default {
            holder: eval.authority.as_ref().ok().map(|h| h.partner.clone()),
        }),
        Basis::Decision {
            issuer, role, reason, ..
        } => Some(RestrictionSource::Decision {
            partner: issuer.clone(),
            role: Some(*role),
            reason: reason.clone(),
        }),
    };
    CustomerState::Known {
        state: eval.effective.state,
        source,
    }
}

/// A request on a billable resource: what it does, and the object before and after.
#[derive(Clone, Copy, Debug)]
pub struct BillableRequest<'a> {
    pub operation: RequestOperation,
    /// Whether the request addresses the resource's `scale` subresource (`old` and `new` are
    /// then autoscaling/v1 Scale objects).
    pub scale: bool,
    pub old: Option<&'a Value>,
    pub new: Option<&'a Value>,
}

/// The reason of a request allowed only because its customer is not restricted: the one
/// answer that depends on the customer's state, and so on how current that state is.
pub const CUSTOMER_UNRESTRICTED: &str = "CustomerUnrestricted";

/// The outcome of judging a request, with a CamelCase reason either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    Allow(&'static str),
    Deny {
        rule: &'static str,
        reason: &'static str,
        message: String,
    },
}

/// R8 for one request on a billable resource: what would undo a freeze is refused whatever
/// the R7 matrix says ([`crate::undoes_freeze`]; through the scale subresource, any raise while
/// the customer is frozen, [`crate::scale_undoes_freeze`]). `subject` names the resource in the
/// message. `None`: the request undoes no freeze.
pub fn judge_freeze(
    state: &CustomerState,
    request: &BillableRequest<'_>,
    subject: impl FnOnce() -> String,
) -> Option<Judgement> {
    let why = if request.scale {
        match state {
            CustomerState::Known { state, .. } if state.freezes_resources() => {
                crate::scale_undoes_freeze(request.old, request.new)
            }
            _ => None,
        }
    } else {
        crate::undoes_freeze(request.old, request.new)
    }?;
    Some(Judgement::Deny {
        rule: "R8",
        reason: "ResourceFrozen",
        message: format!("R8: {}: {why}", subject()),
    })
}

/// R7 for one request on a billable resource of `customer`: classifies it (a request on the
/// scale subresource by its replicas), reads the billing mode (the object's label, else
/// `rules.default_billing_mode`; a Scale carries no labels) and asks [`decide_purchase`].
/// A change of billing mode is judged under the mode being left and the one adopted. A
/// deletion is judged even when its billing-mode label cannot be read (deleting stays
/// possible); any other request with an unreadable label is refused.
pub fn judge_request(
    rules: &ClassifyRules,
    matrix: &ImpactMatrix,
    customer: &str,
    state: &CustomerState,
    request: &BillableRequest<'_>,
) -> Judgement {
    let default_mode = rules.default_billing_mode;
    let subject = match request.operation {
        RequestOperation::Delete => request.old,
        _ => request.new,
    };
    let mode = match subject.map(|o| billing_mode_of(o, default_mode)) {
        Some(Ok(m)) => m,
        None => default_mode,
        Some(Err(_)) if request.operation == RequestOperation::Delete => default_mode,
        Some(Err(message)) => {
            return Judgement::Deny {
                rule: "R7",
                reason: "InvalidBillingMode",
                message,
            };
        }
    };
    let operations = if request.scale {
        classify_scale(request.operation, request.old, request.new)
    } else {
        classify_request(rules, request.operation, request.old, request.new)
    };
    if operations.is_empty() {
        return Judgement::Allow("NothingBillable");
    }
    let old_mode = request
        .old
        .and_then(|o| billing_mode_of(o, default_mode).ok())
        .unwrap_or(mode);
    let mut verdict = decide_purchase(matrix, customer, state, mode, &operations);
    if verdict.is_allowed() && old_mode != mode {
        verdict = decide_purchase(matrix, customer, state, old_mode, &operations);
    }
    let blocked = operations
        .iter()
        .any(|o| matrix.blocks(mode, *o) || matrix.blocks(old_mode, *o));
    match verdict {
        // Allowed because the customer may purchase: an answer that depends on its state.
        Verdict::Allow if blocked => Judgement::Allow(CUSTOMER_UNRESTRICTED),
        Verdict::Allow => Judgement::Allow("NotBlocked"),
        Verdict::Deny { rule, reason, message } => Judgement::Deny { rule, reason, message },
    }
}
