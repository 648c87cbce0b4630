//! The content rules of a decision itself (R4, R6), checked on create and on each change.
//! The CRD schema enforces the same rules with CEL; admission and the tests use these.

use crate::model::RestrictionState;

/// The operator-written parts of a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionContent<'a> {
    pub state: RestrictionState,
    pub reason: &'a str,
    pub agreement_accepted: bool,
}

/// A rule a decision's content breaks, with the field and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("spec.reason: Required value: R4: every restriction operation carries a reason written by the operator")]
    BlankReason,
    #[error(
        "spec.reason: Invalid value: R4: changing spec.state from {from} to {to} is a new operation and needs a new reason"
    )]
    ReasonNotRenewed {
        from: RestrictionState,
        to: RestrictionState,
    },
    #[error(
        "spec.agreementAccepted: Invalid value: R6: RestrictedAndFrozen requires accepting the Agreement for Partners to Manage Customer Budgets (spec.agreementAccepted: true)"
    )]
    AgreementNotAccepted,
}

/// Checks a new or changed decision: a non-blank reason (R4), a new reason whenever the state
/// changes (R4), and the agreement for freezing (R6).
pub fn check_content(old: Option<&DecisionContent<'_>>, new: &DecisionContent<'_>) -> Vec<ContentError> {
    let mut errors = Vec::new();
    if new.reason.trim().is_empty() {
        errors.push(ContentError::BlankReason);
    }
    if let Some(old) = old
        && old.state != new.state
        && old.reason == new.reason
    {
        errors.push(ContentError::ReasonNotRenewed {
            from: old.state,
            to: new.state,
        });
    }
    if new.state == RestrictionState::RestrictedAndFrozen && !new.agreement_accepted {
        errors.push(ContentError::AgreementNotAccepted);
    }
    errors
}
