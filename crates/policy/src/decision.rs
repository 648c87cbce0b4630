//! The content rules of a decision itself (R4, R6), checked on create and on each change.
//! The CRD schema enforces the same rules with CEL; admission and the tests use these.

use crate::model::RestrictionState;

/// The operator-written parts of a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionContent<'a> {
    pub state: RestrictionState,
    pub reason: &'a str,
    pub agreement_accepted: bool,
    /// The reason the decision is withdrawn (`spec.withdrawal.reason`): a withdrawn decision
    /// is never in force.
    pub withdrawal: Option<&'a str>,
}

/// A rule a decision's content breaks, with the field and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error(
        "spec.reason: Required value: R4: every restriction operation carries a reason written by the operator (whitespace and invisible formatting characters do not count)"
    )]
    BlankReason,
    #[error(
        "spec.reason: Invalid value: R4: a reason is one line of text: control characters (newlines, tabs, escapes) are not allowed"
    )]
    ControlCharacter,
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
    #[error(
        "spec.withdrawal.reason: Required value: R4: a withdrawal is a restriction operation and carries a reason written by the operator (whitespace and invisible formatting characters do not count)"
    )]
    BlankWithdrawalReason,
    #[error(
        "spec.withdrawal.reason: Invalid value: R4: a reason is one line of text: control characters (newlines, tabs, escapes) are not allowed"
    )]
    WithdrawalControlCharacter,
    #[error(
        "spec.reason: Invalid value: R4: putting a withdrawn decision back in force is a new operation and needs a new reason"
    )]
    ReinstatedWithoutReason,
    #[error(
        "spec.state: Invalid value: R6: RestrictedAndFrozen -> Restricted is not an operation: frozen resources are unfrozen only with Unrestricted (Unrestrict Purchase and Unfreeze Resources, R9); restrict again afterwards if needed"
    )]
    UnfreezeWithoutUnrestrict,
}

/// Checks a new or changed decision: a non-blank reason (R4), a new reason whenever the state
/// changes (R4), and the agreement for freezing (R6).
pub fn check_content(old: Option<&DecisionContent<'_>>, new: &DecisionContent<'_>) -> Vec<ContentError> {
    let mut errors = Vec::new();
    if !has_visible_text(new.reason) {
        errors.push(ContentError::BlankReason);
    } else if new.reason.chars().any(char::is_control) {
        // A blank reason is reported as blank, whatever invisible characters it holds.
        errors.push(ContentError::ControlCharacter);
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
    if let Some(old) = old
        && old.state == RestrictionState::RestrictedAndFrozen
        && new.state == RestrictionState::Restricted
    {
        errors.push(ContentError::UnfreezeWithoutUnrestrict);
    }
    if new.state == RestrictionState::RestrictedAndFrozen && !new.agreement_accepted {
        errors.push(ContentError::AgreementNotAccepted);
    }
    match new.withdrawal {
        Some(reason) if !has_visible_text(reason) => errors.push(ContentError::BlankWithdrawalReason),
        Some(reason) if reason.chars().any(char::is_control) => errors.push(ContentError::WithdrawalControlCharacter),
        Some(_) => {}
        None => {
            if let Some(old) = old
                && old.withdrawal.is_some()
                && old.reason == new.reason
            {
                errors.push(ContentError::ReinstatedWithoutReason);
            }
        }
    }
    errors
}

/// Whether `text` has a character that is neither whitespace nor an invisible formatting
/// character (Unicode category Cf: zero-width spaces and joiners, direction marks, the byte
/// order mark, soft hyphens...).
pub fn has_visible_text(text: &str) -> bool {
    text.chars().any(|c| !c.is_whitespace() && !is_format(c))
}

/// Unicode general category Cf (Format), as of Unicode 15.
fn is_format(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}
