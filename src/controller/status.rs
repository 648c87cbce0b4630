//! From the policy core's verdicts to status objects: conditions, authority, the decision in
//! force, history. Pure functions; `now` is a parameter.

use crate::api::Condition;
use crate::api::{
    AcceptedDecision, AssociationRecord, AuthorityStatus, CustomerAccountStatus, DecisionInForce, ObjectReference,
    PartnerStatus, PurchaseRestrictionStatus, ResellerDelegationStatus, SharedStr, StateTransition,
};
use crate::index::convert::micro_time;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use purchase_guard_policy as policy;

mod kstatus;
pub use kstatus::{Progress, kstatus_conditions};

/// Most transitions kept in a customer's history.
pub const HISTORY: usize = 10;

/// A condition whose `lastTransitionTime` moves only when its status flips.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: since,
    }
}

fn object_ref(key: &policy::ObjectKey) -> ObjectReference {
    ObjectReference {
        namespace: SharedStr::new(&key.namespace),
        name: key.name.clone(),
    }
}

fn role_word(role: policy::Role) -> &'static str {
    match role {
        policy::Role::Distributor => "Distributor",
        policy::Role::Reseller => "Reseller",
    }
}

/// The status of a customer from its evaluation.
pub fn customer_status(
    name: &str,
    generation: Option<i64>,
    previous: Option<&CustomerAccountStatus>,
    eval: &policy::CustomerEvaluation,
    user_of: impl Fn(&policy::ObjectKey) -> Option<SharedStr>,
    now: &Time,
) -> CustomerAccountStatus {
    let prev_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let authority = eval.authority.as_ref().ok().map(|h| AuthorityStatus {
        partner: SharedStr::new(&h.partner),
        role: h.role.into(),
        delegation: h.delegation.as_ref().map(object_ref),
    });
    let state = eval.effective.state;
    let (restricted_reason, restricted_message, decision) = match &eval.effective.basis {
        policy::Basis::NotInResellerModel => (
            "NotInResellerModel".to_string(),
            format!("customer \"{name}\" is not in the Reseller model, so no partner may restrict it (R2)"),
            DecisionInForce {
                restriction: None,
                partner: None,
                state: state.into(),
                reason: "not in the Reseller model".into(),
                since: None,
            },
        ),
        policy::Basis::Default => {
            let holder = eval
                .authority
                .as_ref()
                .ok()
                .map(|h| format!("; {} \"{}\" can lift it", h.role, h.partner));
            let why = match &eval.authority {
                Err(cause) => format!("; nobody can lift it yet: {cause}"),
                Ok(_) => String::new(),
            };
            (
                "DefaultOnAssociation".to_string(),
                format!(
                    "customer \"{name}\" is restricted from purchases by default since its association in the Reseller model (R1){}{}",
                    holder.unwrap_or_default(),
                    why
                ),
                DecisionInForce {
                    restriction: None,
                    partner: None,
                    state: state.into(),
                    reason: "restricted by default on association (R1)".into(),
                    since: None,
                },
            )
        }
        policy::Basis::Decision {
            key,
            issuer,
            role,
            reason,
            since,
            by_holder,
        } => {
            let verb = if state.restricts_purchases() {
                "Restricted"
            } else {
                "Unrestricted"
            };
            let standing = if *by_holder {
                String::new()
            } else {
                format!(
                    "; a standing decision: \"{}\" holds authority now and has not decided yet (R3)",
                    eval.authority.as_ref().map(|h| h.partner.as_str()).unwrap_or("nobody")
                )
            };
            (
                format!("{verb}By{}", role_word(*role)),
                format!(
                    "{} by {role} \"{issuer}\" (PurchaseRestriction {key}, {}): {reason:?}{standing}",
                    if state.restricts_purchases() {
                        "restricted from purchases"
                    } else {
                        "purchases allowed"
                    },
                    // R2: the distributor's own authority; R3: the reseller's, by delegation.
                    if *role == policy::Role::Reseller { "R3" } else { "R2" }
                ),
                DecisionInForce {
                    restriction: Some(object_ref(key)),
                    partner: Some(SharedStr::new(issuer)),
                    state: state.into(),
                    reason: SharedStr::new(reason),
                    since: Some(micro_time(*since)),
                },
            )
        }
    };
    let conditions = vec![condition(
        prev_conditions,
        "PurchaseRestricted",
        state.restricts_purchases(),
        &restricted_reason,
        restricted_message,
        generation,
        now,
    )];

    // History: a new entry when the state or the decision in force changes.
    let mut history = previous.map(|p| p.history.clone()).unwrap_or_default();
    let prev_decision = previous.and_then(|p| p.decision.as_ref());
    let changed = prev_decision.is_none_or(|p| p.state != decision.state || p.restriction != decision.restriction);
    if changed {
        let entry = match withdrawal_of(previous, eval) {
            // The decision in force before was withdrawn: the change is the withdrawal's.
            Some((verdict, record)) => StateTransition {
                time: now.clone(),
                partner: verdict.issuer.as_deref().map(SharedStr::new),
                state: decision.state,
                reason: SharedStr::new(&record.reason),
                user: user_of(&verdict.key),
                withdrawn: Some(object_ref(&verdict.key)),
            },
            None => StateTransition {
                time: now.clone(),
                partner: decision.partner.clone(),
                state: decision.state,
                reason: decision.reason.clone(),
                user: match &eval.effective.basis {
                    policy::Basis::Decision { key, .. } => user_of(key),
                    _ => None,
                },
                withdrawn: None,
            },
        };
        history.push(entry);
        let excess = history.len().saturating_sub(HISTORY);
        history.drain(..excess);
    }
    CustomerAccountStatus {
        observed_generation: generation,
        conditions,
        authority,
        decision: Some(decision),
        history,
        // Set by the reconciler once it has labelled the namespaces.
        guarded_namespaces: Vec::new(),
        // Set by the reconciler ([`association`]).
        association: previous.and_then(|p| p.association.clone()),
        // Set by the reconciler once the freeze pass has run (`freeze::status`).
        freeze: None,
        audit: None,
    }
}

/// The customer's association to record: the recorded one while model and reseller are
/// unchanged; otherwise the next number, since now. The first one recorded is number 0.
pub fn association(
    previous: Option<&CustomerAccountStatus>,
    spec: &crate::api::CustomerAccountSpec,
    now: &Time,
) -> AssociationRecord {
    let recorded = previous.and_then(|p| p.association.as_ref());
    match recorded {
        Some(a) if a.model == spec.association_model && a.reseller == spec.reseller => a.clone(),
        _ => AssociationRecord {
            number: recorded.map_or(0, |a| a.number + 1),
            model: spec.association_model,
            reseller: spec.reseller.clone(),
            since: now.clone(),
        },
    }
}

/// The withdrawal that took the decision in force before out of force, if that happened: its
/// verdict and the accepted withdrawal (reason, time).
pub fn withdrawal_of<'a>(
    previous: Option<&CustomerAccountStatus>,
    eval: &'a policy::CustomerEvaluation,
) -> Option<(&'a policy::DecisionVerdict, &'a policy::AcceptedRecord)> {
    let before = previous?.decision.as_ref()?.restriction.as_ref()?;
    let verdict = eval
        .decisions
        .iter()
        .find(|v| v.key.namespace == before.namespace && v.key.name == before.name)?;
    let record = verdict.record.as_ref().filter(|r| r.withdrawn)?;
    Some((verdict, record))
}

/// Whether the user who made the decision now in force may be credited with a change of the
/// customer's state: not when the decision in force before is gone (withdrawn, or removed by
/// cleanup), since the change then comes from that withdrawal, whose user is not known here.
/// No history entry or event names a user who did not act.
pub fn credit_decision_user(previous: Option<&CustomerAccountStatus>, decisions: &[policy::ObjectKey]) -> bool {
    let withdrawn = previous
        .and_then(|p| p.decision.as_ref())
        .and_then(|d| d.restriction.as_ref())
        .is_some_and(|r| !decisions.iter().any(|k| k.namespace == r.namespace && k.name == r.name));
    !withdrawn
}

/// The status of one decision from its verdict.
pub fn decision_status(
    generation: Option<i64>,
    previous: Option<&PurchaseRestrictionStatus>,
    verdict: &policy::DecisionVerdict,
    in_force_elsewhere: Option<&policy::ObjectKey>,
    now: &Time,
) -> PurchaseRestrictionStatus {
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let current_accepted = verdict.current_generation_accepted(generation.unwrap_or(0));
    let (accepted_reason, accepted_message) = match &verdict.acceptance {
        policy::Acceptance::Accepted => (
            "Accepted".to_string(),
            "the issuer holds restriction authority over the customer".to_string(),
        ),
        policy::Acceptance::Standing { rejection } if current_accepted => (
            "Accepted".to_string(),
            format!("accepted when its issuer held authority; it stays a standing decision: {rejection}"),
        ),
        policy::Acceptance::Standing { rejection } => (
            rejection.reason().to_string(),
            format!("this change is not accepted and the earlier accepted content stays in force: {rejection}"),
        ),
        policy::Acceptance::NotAccepted { rejection } => (rejection.reason().to_string(), rejection.to_string()),
    };
    let (effective_reason, effective_message) = if verdict.in_force {
        (
            "InForce".to_string(),
            "this decision is the one in force for the customer".to_string(),
        )
    } else if matches!(verdict.acceptance, policy::Acceptance::NotAccepted { .. }) {
        (
            "NotAccepted".to_string(),
            "a decision that is not accepted is ignored".to_string(),
        )
    } else if let Some(record) = verdict.record.as_ref().filter(|r| r.withdrawn) {
        (
            "Withdrawn".to_string(),
            format!(
                "withdrawn (reason: {:?}); it may be deleted, or put back in force with a new spec.reason",
                record.reason
            ),
        )
    } else {
        (
            "Superseded".to_string(),
            match in_force_elsewhere {
                Some(k) => format!("PurchaseRestriction {k} is the decision in force"),
                None => "another decision is in force".to_string(),
            },
        )
    };
    // A decision that is not accepted stays so until someone changes something: stalled, with
    // the reason; except while the customer's new association is being numbered.
    let progress = if current_accepted {
        Progress::current(
            if verdict.in_force { "InForce" } else { &effective_reason },
            effective_message.clone(),
        )
    } else if accepted_reason == "AssociationChanging" {
        Progress::in_progress(&accepted_reason, accepted_message.clone())
    } else {
        Progress::failed(&accepted_reason, accepted_message.clone())
    };
    let kstatus = kstatus_conditions(prev, &progress, generation, now);
    PurchaseRestrictionStatus {
        observed_generation: generation,
        conditions: vec![
            condition(
                prev,
                "Accepted",
                current_accepted,
                &accepted_reason,
                accepted_message,
                generation,
                now,
            ),
            condition(
                prev,
                "Effective",
                verdict.in_force,
                &effective_reason,
                effective_message,
                generation,
                now,
            ),
        ]
        .into_iter()
        .chain(kstatus)
        .collect(),
        issuer: verdict.issuer.as_deref().map(SharedStr::new),
        accepted: verdict.record.as_ref().map(|r| AcceptedDecision {
            generation: r.generation,
            state: r.state.into(),
            reason: SharedStr::new(&r.reason),
            since: micro_time(r.since),
            withdrawn: r.withdrawn,
            association: r.association,
        }),
        rejected_generation: verdict.rejected_generation,
    }
}

/// The status of a delegation from its verdict: `Accepted` and `Active`, and the distributor
/// that issued it (when a partner acts in its namespace).
pub fn delegation_status(
    generation: Option<i64>,
    previous: Option<&ResellerDelegationStatus>,
    reseller: &str,
    verdict: &Result<(), policy::DelegationRejection>,
    distributor: Option<String>,
    now: &Time,
) -> ResellerDelegationStatus {
    let prev = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let (reason, message) = match verdict {
        Ok(()) => (
            "Accepted".to_string(),
            format!("reseller \"{reseller}\" now holds restriction authority over its customers (R3)"),
        ),
        Err(e) => (e.reason().to_string(), e.to_string()),
    };
    let ok = verdict.is_ok();
    let progress = match verdict {
        Ok(()) => Progress::current("Accepted", message.clone()),
        Err(policy::DelegationRejection::Revoked) => Progress::current("Revoked", message.clone()),
        Err(e) => Progress::failed(e.reason(), message.clone()),
    };
    let kstatus = kstatus_conditions(prev, &progress, generation, now);
    ResellerDelegationStatus {
        observed_generation: generation,
        conditions: vec![
            condition(prev, "Accepted", ok, &reason, message.clone(), generation, now),
            condition(
                prev,
                "Active",
                ok,
                match verdict {
                    Ok(()) => "Active",
                    Err(policy::DelegationRejection::Revoked) => "Revoked",
                    Err(_) => "NotAccepted",
                },
                message,
                generation,
                now,
            ),
        ]
        .into_iter()
        .chain(kstatus)
        .collect(),
        distributor,
    }
}

/// The status of a partner: `Ready` from its readiness (and its verification's, when
/// enabled), `VerificationReady` when verification is enabled, and for a reseller
/// `RestrictionDelegated` from the delegation in force for it (`delegation`).
#[allow(clippy::too_many_arguments)]
pub fn partner_status(
    generation: Option<i64>,
    previous: Option<&PartnerStatus>,
    namespace: &str,
    readiness: &Result<(), policy::PartnerNotReady>,
    verification: Option<&Result<(), policy::verification::NotReady>>,
    reseller: bool,
    delegation: Option<&policy::ObjectKey>,
    now: &Time,
) -> PartnerStatus {
    let prev = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    // What a partner waits for (its namespace, its distributor, its verification Secret) may
    // be applied after it by the same sync: in progress. A Secret that exists but cannot
    // verify codes needs someone to fix it: stalled.
    let progress = match (readiness, verification) {
        (Err(e), _) => Progress::in_progress(e.reason(), e.to_string()),
        (Ok(()), Some(Err(e @ policy::verification::NotReady::SecretInvalid { .. }))) => {
            Progress::failed("VerificationNotReady", e.to_string())
        }
        (Ok(()), Some(Err(e))) => Progress::in_progress("VerificationNotReady", e.to_string()),
        (Ok(()), Some(Ok(()))) => Progress::current(
            "Ready",
            format!("acts in namespace \"{namespace}\", with verification codes"),
        ),
        (Ok(()), None) => Progress::current("Ready", format!("acts in namespace \"{namespace}\"")),
    };
    let mut conditions = kstatus_conditions(prev, &progress, generation, now).to_vec();
    if let Some(verification) = verification {
        let (reason, message) = match verification {
            Ok(()) => (
                "SecretValid",
                "restriction operations from this partner's namespace need its current verification code".to_string(),
            ),
            Err(e) => (e.reason(), e.to_string()),
        };
        conditions.push(condition(
            prev,
            "VerificationReady",
            verification.is_ok(),
            reason,
            message,
            generation,
            now,
        ));
    }
    if reseller {
        let (reason, message) = match delegation {
            Some(key) => (
                "Delegated",
                format!(
                    "the distributor delegated restriction of this reseller's customers (ResellerDelegation {key}); only this reseller may restrict them (R3)"
                ),
            ),
            None => (
                "NotDelegated",
                "the distributor holds restriction authority over this reseller's customers (R2)".to_string(),
            ),
        };
        conditions.push(condition(
            prev,
            "RestrictionDelegated",
            delegation.is_some(),
            reason,
            message,
            generation,
            now,
        ));
    }
    PartnerStatus {
        observed_generation: generation,
        conditions,
        delegation: delegation.filter(|_| reseller).map(object_ref),
    }
}

#[cfg(test)]
mod tests;
