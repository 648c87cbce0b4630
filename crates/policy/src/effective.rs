//! The effective state of a customer and the verdict on each of its decisions (R1, R3, R6).
//!
//! The decision in force is the newest accepted one. A decision is accepted when its issuer
//! holds authority; once accepted, its content is recorded (in its status) and stays a
//! *standing decision* when authority moves, so that a handover never flips a customer by
//! itself. Changes made later by a party without authority are not accepted and change
//! nothing. Without any accepted decision, a Reseller-model customer is restricted (R1).

use crate::authority::{AuthorityDenied, AuthorityHolder, NoAuthority, authority_holder, issuer_standing};
use crate::decision::{ContentError, DecisionContent, check_content};
use crate::model::{
    AcceptedRecord, Association, Customer, Decision, Hierarchy, ObjectKey, RestrictionState, Role, Timestamp,
};
use std::fmt;

/// Why a decision is not (or no longer) accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Its issuer has no authority over the customer (R2, R3).
    Authority(AuthorityDenied),
    /// The same issuer already has an older decision about this customer.
    Duplicate { of: ObjectKey },
    /// Its content breaks R4 or R6 (possible only when schema validation was bypassed).
    Content(ContentError),
    /// This generation was judged without authority before; it stays ignored.
    MadeWithoutAuthority { generation: i64 },
    /// This generation was accepted under a previous association of the customer (another
    /// reseller or model): a new association starts from R1.
    PreviousAssociation { generation: i64 },
    /// The customer's association is changing: no decision applies until the new one is
    /// recorded.
    AssociationChanging,
}

impl Rejection {
    /// A CamelCase reason for the `Accepted` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Authority(denied) => denied.reason(),
            Rejection::Duplicate { .. } => "DuplicateDecision",
            Rejection::Content(
                ContentError::BlankReason
                | ContentError::ReasonNotRenewed { .. }
                | ContentError::BlankWithdrawalReason
                | ContentError::ReinstatedWithoutReason,
            ) => "ReasonRequired",
            Rejection::Content(ContentError::WithdrawalControlCharacter) => "InvalidReason",
            Rejection::Content(ContentError::AgreementNotAccepted) => "AgreementNotAccepted",
            Rejection::Content(ContentError::UnfreezeWithoutUnrestrict) => "NotAnOperation",
            Rejection::Content(ContentError::ControlCharacter) => "InvalidReason",
            Rejection::MadeWithoutAuthority { .. } => "MadeWithoutAuthority",
            Rejection::PreviousAssociation { .. } => "PreviousAssociation",
            Rejection::AssociationChanging => "AssociationChanging",
        }
    }

    /// The rule the rejection enforces.
    pub fn rule(&self) -> &'static str {
        match self {
            Rejection::Authority(denied) => denied.rule(),
            Rejection::Duplicate { .. } => "R3",
            Rejection::Content(ContentError::AgreementNotAccepted | ContentError::UnfreezeWithoutUnrestrict) => "R6",
            Rejection::Content(_) => "R4",
            Rejection::MadeWithoutAuthority { .. } => "R3",
            Rejection::PreviousAssociation { .. } | Rejection::AssociationChanging => "R1",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Authority(denied) => denied.fmt(f),
            Rejection::Duplicate { of } => write!(
                f,
                "R3: the issuer already has the decision {of} about this customer; a partner has at most one decision per customer, so this one is ignored; change {of} instead"
            ),
            Rejection::Content(e) => e.fmt(f),
            Rejection::MadeWithoutAuthority { generation } => write!(
                f,
                "R3: generation {generation} of this decision was made while its issuer held no authority and stays ignored; change the decision (with a new reason) to have it judged again"
            ),
            Rejection::PreviousAssociation { generation } => write!(
                f,
                "R1: generation {generation} of this decision was accepted under a previous association of the customer (another reseller or model); a new association starts restricted by default, so it no longer applies; change the decision (with a new reason) to have it judged under the new association"
            ),
            Rejection::AssociationChanging => f.write_str(
                "R1: the customer's association (model or reseller) is changing; no decision applies until purchase-guard has recorded the new association",
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// How a decision is treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Its issuer holds authority and its current generation is accepted.
    Accepted,
    /// Its issuer no longer holds authority; the content accepted earlier stands.
    /// `rejection` says why changes by the issuer are not accepted now; when the current
    /// generation differs from the recorded one, that change was ignored.
    Standing { rejection: Rejection },
    /// Not accepted, and ignored.
    NotAccepted { rejection: Rejection },
}

/// The verdict on one decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionVerdict {
    pub key: ObjectKey,
    /// The partner acting in the decision's namespace, when there is one.
    pub issuer: Option<String>,
    pub acceptance: Acceptance,
    /// The accepted content to record in the decision's status.
    pub record: Option<AcceptedRecord>,
    /// Whether this decision is the one in force for the customer.
    pub in_force: bool,
    /// The generation to record as not accepted, if the current one is not.
    pub rejected_generation: Option<i64>,
}

impl DecisionVerdict {
    /// Whether the decision's current generation is accepted.
    pub fn current_generation_accepted(&self, generation: i64) -> bool {
        match self.acceptance {
            Acceptance::Accepted => true,
            Acceptance::Standing { .. } => self.record.as_ref().is_some_and(|r| r.generation == generation),
            Acceptance::NotAccepted { .. } => false,
        }
    }
}

/// What the customer's effective state rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basis {
    /// Not in the Reseller model: partners cannot restrict it.
    NotInResellerModel,
    /// R1: no accepted decision; restricted by default on association.
    Default,
    /// A decision is in force.
    Decision {
        key: ObjectKey,
        issuer: String,
        /// The issuer's role towards this customer.
        role: Role,
        reason: String,
        since: Timestamp,
        /// Whether the issuer holds authority now (false for a standing decision).
        by_holder: bool,
    },
}

/// A customer's effective state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub state: RestrictionState,
    pub basis: Basis,
}

/// The outcome for one customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerEvaluation {
    pub authority: Result<AuthorityHolder, NoAuthority>,
    pub effective: Effective,
    /// One verdict per decision given, in the order given.
    pub decisions: Vec<DecisionVerdict>,
}

/// Evaluates a customer: authority holder, the verdict on each of its decisions, and the
/// effective state. `decisions` are the decisions naming this customer; `now` stamps newly
/// accepted content.
pub fn evaluate_customer(
    hierarchy: &Hierarchy,
    customer: &Customer,
    decisions: &[Decision],
    now: Timestamp,
) -> CustomerEvaluation {
    let authority = authority_holder(hierarchy, customer);
    let mut verdicts: Vec<DecisionVerdict> = decisions
        .iter()
        .map(|d| judge(hierarchy, customer, decisions, d, now))
        .collect();

    let effective = match &authority {
        Err(NoAuthority::NotInResellerModel) => Effective {
            state: RestrictionState::Unrestricted,
            basis: Basis::NotInResellerModel,
        },
        _ => {
            let newest = verdicts
                .iter()
                .enumerate()
                .filter(|(_, v)| !matches!(v.acceptance, Acceptance::NotAccepted { .. }))
                // A withdrawn decision is never in force: the newest other one is.
                .filter_map(|(i, v)| v.record.clone().filter(|r| !r.withdrawn).map(|r| (i, r)))
                .max_by(|(ia, a), (ib, b)| {
                    // Newest first; among equals the smallest key, independent of who holds
                    // authority, so that a handover alone never changes the choice.
                    a.since
                        .cmp(&b.since)
                        .then_with(|| verdicts[*ib].key.cmp(&verdicts[*ia].key))
                });
            match newest {
                Some((i, record)) => {
                    verdicts[i].in_force = true;
                    let v = &verdicts[i];
                    let issuer = v.issuer.clone().unwrap_or_default();
                    let role = hierarchy.partner(&issuer).map(|p| p.role).unwrap_or(Role::Distributor);
                    Effective {
                        state: record.state,
                        basis: Basis::Decision {
                            key: v.key.clone(),
                            by_holder: matches!(v.acceptance, Acceptance::Accepted),
                            issuer,
                            role,
                            reason: record.reason,
                            since: record.since,
                        },
                    }
                }
                None => Effective {
                    state: RestrictionState::Restricted,
                    basis: Basis::Default,
                },
            }
        }
    };
    CustomerEvaluation {
        authority,
        effective,
        decisions: verdicts,
    }
}

fn judge(
    hierarchy: &Hierarchy,
    customer: &Customer,
    all: &[Decision],
    decision: &Decision,
    now: Timestamp,
) -> DecisionVerdict {
    // Not accepted for the customer's association, keeping what was accepted in the status
    // (so that it stays recognised as such) and the generation judged so.
    let kept_aside = |rejection: Rejection, rejected_generation: Option<i64>| DecisionVerdict {
        key: decision.key.clone(),
        issuer: crate::authority::issuer_of(hierarchy, &decision.key.namespace)
            .ok()
            .map(|p| p.name.clone()),
        acceptance: Acceptance::NotAccepted { rejection },
        record: decision.accepted.clone(),
        in_force: false,
        rejected_generation,
    };
    let epoch = match customer.association {
        Association::Current(epoch) => epoch,
        // Nothing applies until the new association is numbered and decisions can be judged
        // against it.
        Association::Changing => {
            return kept_aside(Rejection::AssociationChanging, decision.rejected_generation);
        }
    };
    // What was accepted under a previous association no longer counts: that very generation
    // stays ignored; a later one is judged afresh.
    let decision = &match &decision.accepted {
        Some(record) if record.association != epoch => {
            if record.generation == decision.generation {
                let generation = decision.generation;
                return kept_aside(Rejection::PreviousAssociation { generation }, Some(generation));
            }
            Decision {
                accepted: None,
                ..decision.clone()
            }
        }
        _ => decision.clone(),
    };
    let not_accepted = |issuer: Option<String>, rejection: Rejection| DecisionVerdict {
        key: decision.key.clone(),
        issuer,
        acceptance: Acceptance::NotAccepted { rejection },
        record: None,
        in_force: false,
        rejected_generation: Some(decision.generation),
    };
    let standing = match issuer_standing(hierarchy, &decision.key.namespace, &customer.name, Some(customer)) {
        Ok(s) => s,
        Err(denied) => {
            // The issuer may still be known even when nobody holds authority.
            let issuer = crate::authority::issuer_of(hierarchy, &decision.key.namespace)
                .ok()
                .map(|p| p.name.clone());
            return not_accepted(issuer, Rejection::Authority(denied));
        }
    };
    let issuer = standing.issuer.name.clone();

    // At most one decision per (partner, customer): the oldest wins.
    if let Some(older) = crate::changes::counting_decision(all, &decision.key.namespace, &decision.customer)
        .filter(|counting| counting.key != decision.key)
    {
        return not_accepted(Some(issuer), Rejection::Duplicate { of: older.key.clone() });
    }

    match standing.check(&customer.name) {
        Ok(()) if decision.rejected_generation == Some(decision.generation) && !recorded_now(decision) => {
            let rejection = Rejection::MadeWithoutAuthority {
                generation: decision.generation,
            };
            keep_or_reject(decision, issuer, rejection, standing.in_hierarchy())
        }
        Ok(()) => {
            let content = DecisionContent {
                state: decision.state,
                reason: &decision.reason,
                agreement_accepted: decision.agreement_accepted,
                withdrawal: decision.withdrawal.as_deref(),
            };
            if let Some(problem) = check_content(None, &content).into_iter().next() {
                return keep_or_reject(decision, issuer, Rejection::Content(problem), standing.in_hierarchy());
            }
            let record = match &decision.accepted {
                Some(r) if recorded_now(decision) => r.clone(),
                _ => AcceptedRecord {
                    generation: decision.generation,
                    state: decision.state,
                    reason: decision.withdrawal.clone().unwrap_or_else(|| decision.reason.clone()),
                    since: decision.first_seen.unwrap_or(now),
                    withdrawn: decision.withdrawal.is_some(),
                    association: epoch,
                },
            };
            DecisionVerdict {
                key: decision.key.clone(),
                issuer: Some(issuer),
                acceptance: Acceptance::Accepted,
                record: Some(record),
                in_force: false,
                rejected_generation: None,
            }
        }
        Err(denied) => keep_or_reject(decision, issuer, Rejection::Authority(denied), standing.in_hierarchy()),
    }
}

/// A decision whose current content cannot be accepted: its earlier accepted content stands
/// if its issuer is still part of the customer's hierarchy; otherwise it is ignored.
fn keep_or_reject(decision: &Decision, issuer: String, rejection: Rejection, in_hierarchy: bool) -> DecisionVerdict {
    match (&decision.accepted, in_hierarchy) {
        (Some(record), true) => DecisionVerdict {
            key: decision.key.clone(),
            issuer: Some(issuer),
            acceptance: Acceptance::Standing { rejection },
            record: Some(record.clone()),
            in_force: false,
            rejected_generation: (record.generation != decision.generation).then_some(decision.generation),
        },
        _ => DecisionVerdict {
            key: decision.key.clone(),
            issuer: Some(issuer),
            acceptance: Acceptance::NotAccepted { rejection },
            record: None,
            in_force: false,
            rejected_generation: Some(decision.generation),
        },
    }
}

/// Whether the decision's current generation is the one recorded as accepted.
fn recorded_now(decision: &Decision) -> bool {
    decision
        .accepted
        .as_ref()
        .is_some_and(|r| r.generation == decision.generation)
}

/// The verdict on a decision naming a customer that has no `CustomerAccount`: not accepted
/// (UnknownCustomer), with its issuer when one acts in its namespace.
pub fn verdict_without_customer(hierarchy: &Hierarchy, decision: &Decision) -> DecisionVerdict {
    DecisionVerdict {
        key: decision.key.clone(),
        issuer: crate::authority::issuer_of(hierarchy, &decision.key.namespace)
            .ok()
            .map(|p| p.name.clone()),
        acceptance: Acceptance::NotAccepted {
            rejection: Rejection::Authority(AuthorityDenied::UnknownCustomer {
                customer: decision.customer.clone(),
            }),
        },
        record: None,
        in_force: false,
        rejected_generation: Some(decision.generation),
    }
}
