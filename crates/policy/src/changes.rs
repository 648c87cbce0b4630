//! Changes of restriction at admission: creating or changing a decision, and withdrawing one
//! (R2, R3, R4, R6). The controller judges the same rules after the fact in [`crate::effective`];
//! these functions say whether a request may go ahead at all.

use crate::authority::{AuthorityDenied, AuthorityHolder, check_issuer_authority};
use crate::decision::{ContentError, DecisionContent, check_content};
use crate::model::{Customer, Decision, Hierarchy, ObjectKey};
use std::fmt;

/// Identities whose deletions are cleanup (namespace deletion, garbage collection), not
/// decisions: kube-controller-manager's namespace controller and garbage collector.
pub const CLEANUP_USERS: [&str; 2] = [
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
];

/// Whether `user` is one of the [`CLEANUP_USERS`].
pub fn is_cleanup_user(user: &str) -> bool {
    CLEANUP_USERS.contains(&user)
}

/// R2 (at most one decision per partner and customer): of the decisions an issuer (the
/// partner acting in `namespace`) made about `customer`, the one that counts is the oldest, by
/// creation time and then key. The others are duplicates.
pub fn counting_decision<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
    namespace: &str,
    customer: &str,
) -> Option<&'a Decision> {
    decisions
        .into_iter()
        .filter(|d| d.key.namespace == namespace && d.customer == customer)
        .min_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)))
}

/// A decision as a request would write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionWrite<'a> {
    pub key: ObjectKey,
    pub customer: &'a str,
    pub content: DecisionContent<'a>,
    /// Whether the decision names an owner (`metadata.ownerReferences`).
    pub owned: bool,
}

/// Why a decision may be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteAllowed {
    /// The operator-written fields are unchanged (metadata, labels, annotations).
    SpecUnchanged,
    /// The issuer holds authority over the customer.
    Authorized(AuthorityHolder),
}

/// Why a decision may not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteDenied {
    /// The content breaks R4 or R6.
    Content(Vec<ContentError>),
    /// The issuer holds no authority over the customer (R2, R3).
    Authority(AuthorityDenied),
    /// The issuer already has a decision about this customer.
    Duplicate { customer: String, existing: ObjectKey },
    /// The decision names an owner: garbage collection would withdraw it without authority.
    Owned,
}

impl WriteDenied {
    /// A CamelCase reason for admission responses and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            WriteDenied::Content(_) => "Invalid",
            WriteDenied::Authority(denied) => denied.reason(),
            WriteDenied::Duplicate { .. } => "DuplicateDecision",
            WriteDenied::Owned => "OwnedDecision",
        }
    }

    /// The rule the denial enforces.
    pub fn rule(&self) -> &'static str {
        match self {
            WriteDenied::Content(errors) if errors.iter().all(|e| *e == ContentError::AgreementNotAccepted) => "R6",
            WriteDenied::Content(_) => "R4",
            WriteDenied::Authority(denied) => denied.rule(),
            WriteDenied::Duplicate { .. } => "R2",
            WriteDenied::Owned => "R3",
        }
    }
}

impl fmt::Display for WriteDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteDenied::Content(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                f.write_str(&text.join("; "))
            }
            WriteDenied::Authority(denied) => denied.fmt(f),
            WriteDenied::Duplicate { customer, existing } => write!(
                f,
                "R2: this partner already has a decision for customer \"{customer}\" (PurchaseRestriction {existing}); change that one instead of creating another"
            ),
            WriteDenied::Owned => f.write_str(
                "metadata.ownerReferences: Forbidden: R3: a decision has no owner; with one, garbage collection could withdraw it without the authority holder's say; remove metadata.ownerReferences"
            ),
        }
    }
}

impl std::error::Error for WriteDenied {}

/// May this decision be created (`old` is `None`) or changed from `old`? No owner, whoever
/// writes it (R3: only the authority holder withdraws a decision, never garbage collection);
/// then the content rules (R4, R6), the issuer's authority over the customer (R2, R3) and, on
/// creation, at most one decision per partner and customer. `existing` are the decisions already naming the
/// customer; a new decision is always the newest, so any other decision of the same issuer
/// about the customer is the one that counts.
pub fn check_decision_write(
    hierarchy: &Hierarchy,
    customer: Option<&Customer>,
    old: Option<&DecisionWrite<'_>>,
    new: &DecisionWrite<'_>,
    existing: &[Decision],
) -> Result<WriteAllowed, WriteDenied> {
    if new.owned {
        return Err(WriteDenied::Owned);
    }
    if let Some(old) = old
        && old.customer == new.customer
        && old.content == new.content
    {
        return Ok(WriteAllowed::SpecUnchanged);
    }
    let errors = check_content(old.map(|o| &o.content), &new.content);
    if !errors.is_empty() {
        return Err(WriteDenied::Content(errors));
    }
    let holder = check_issuer_authority(hierarchy, &new.key.namespace, new.customer, customer)
        .map_err(WriteDenied::Authority)?;
    if old.is_none() {
        let others = existing.iter().filter(|d| d.key != new.key);
        if let Some(counting) = counting_decision(others, &new.key.namespace, new.customer) {
            return Err(WriteDenied::Duplicate {
                customer: new.customer.to_string(),
                existing: counting.key.clone(),
            });
        }
    }
    Ok(WriteAllowed::Authorized(holder))
}

/// What admission knows of the decision a request deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal<'a> {
    /// The user deleting it.
    pub user: &'a str,
    pub key: ObjectKey,
    pub customer: &'a str,
}

/// The customer a deleted decision names (it has a `CustomerAccount`), as admission knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawnFrom<'a> {
    /// The decision in force for the customer, as evaluated now (none: the customer's state
    /// rests on no decision).
    pub in_force: &'a [ObjectKey],
}

/// Why a decision may be withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawalAllowed {
    /// Namespace deletion or garbage collection.
    Cleanup,
    /// The customer has no `CustomerAccount` any more.
    CustomerGone,
    /// The decision is not the one in force: deleting it changes nothing.
    NotInForce,
}

impl WithdrawalAllowed {
    pub fn reason(self) -> &'static str {
        match self {
            WithdrawalAllowed::Cleanup => "Cleanup",
            WithdrawalAllowed::CustomerGone => "CustomerGone",
            WithdrawalAllowed::NotInForce => "NotInForce",
        }
    }
}

/// Why deleting a decision is refused: it is the decision in force, and deleting it would
/// change the customer's state with no reason and nobody to credit (R4). A withdrawal is an
/// operation like the others: `spec.withdrawal.reason`, by the authority holder; the
/// withdrawn decision can then be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalDenied {
    pub key: ObjectKey,
    pub customer: String,
}

impl WithdrawalDenied {
    pub fn reason(&self) -> &'static str {
        "WithdrawalReasonRequired"
    }

    pub fn rule(&self) -> &'static str {
        "R4"
    }
}

impl fmt::Display for WithdrawalDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ObjectKey { namespace, name } = &self.key;
        write!(
            f,
            "R4: {namespace}/{name} is the decision in force for customer {:?}; deleting it would change the customer's state without a reason. Withdraw it first, as the partner holding authority, with a reason (kubectl patch purchaserestriction {name} -n {namespace} --type=merge -p '{{\"spec\":{{\"withdrawal\":{{\"reason\":\"...\"}}}}}}'); a withdrawn decision can be deleted",
            self.customer
        )
    }
}

impl std::error::Error for WithdrawalDenied {}

/// May this decision be deleted? A decision that is not in force (withdrawn, superseded,
/// never accepted) or whose customer is gone changes nothing by going. The decision in force
/// is never deleted, by anyone, cleanup included (namespace deletion waits): its withdrawal
/// is an operation with a reason and a user ([`check_decision_write`] of
/// `spec.withdrawal`), after which it is no longer in force.
pub fn check_withdrawal(
    withdrawal: &Withdrawal<'_>,
    customer: Option<&WithdrawnFrom<'_>>,
) -> Result<WithdrawalAllowed, WithdrawalDenied> {
    let changes_nothing = |why| {
        if is_cleanup_user(withdrawal.user) {
            WithdrawalAllowed::Cleanup
        } else {
            why
        }
    };
    let Some(customer) = customer else {
        return Ok(changes_nothing(WithdrawalAllowed::CustomerGone));
    };
    if !customer.in_force.contains(&withdrawal.key) {
        return Ok(changes_nothing(WithdrawalAllowed::NotInForce));
    }
    Err(WithdrawalDenied {
        key: withdrawal.key.clone(),
        customer: withdrawal.customer.to_string(),
    })
}
