//! The pure status computation: conditions, the decision in force, history, and the statuses
//! of decisions, delegations and partners.

use super::*;
use policy::{Customer, Hierarchy, Partner, RestrictionState, Timestamp};

fn time(seconds: i64) -> Time {
    Time(jiff::Timestamp::from_second(seconds).expect("a valid time"))
}

fn hierarchy() -> Hierarchy {
    Hierarchy {
        partners: vec![
            Partner::distributor("dist-a", "ns-dist-a"),
            Partner::reseller("r1", "dist-a", "ns-r1"),
        ],
        delegations: vec![],
    }
}

fn decision(state: RestrictionState, reason: &str) -> policy::Decision {
    policy::Decision {
        key: policy::ObjectKey::new("ns-dist-a", "c1"),
        customer: "c1".into(),
        state,
        reason: reason.into(),
        agreement_accepted: true,
        withdrawal: None,
        generation: 1,
        created: Timestamp(10),
        accepted: None,
        rejected_generation: None,
        first_seen: None,
    }
}

fn condition_of<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("condition {type_} is written"))
}

#[test]
fn last_transition_time_moves_only_when_the_status_flips() {
    let first = condition(&[], "Ready", true, "Ready", "ok".into(), Some(1), &time(100));
    assert_eq!(first.last_transition_time, time(100));
    let same = condition(
        std::slice::from_ref(&first),
        "Ready",
        true,
        "Other",
        "still ok".into(),
        Some(2),
        &time(200),
    );
    assert_eq!(same.last_transition_time, time(100), "same status: time kept");
    assert_eq!((same.reason.as_str(), same.observed_generation), ("Other", Some(2)));
    let flipped = condition(&[same], "Ready", false, "Broken", "no".into(), Some(2), &time(300));
    assert_eq!(
        (flipped.status.as_str(), flipped.last_transition_time.clone()),
        ("False", time(300))
    );
}

#[test]
fn r1_a_new_customer_is_restricted_by_default_and_says_who_can_lift_it() {
    let c1 = Customer::of_reseller("c1", "r1");
    let eval = policy::evaluate_customer(&hierarchy(), &c1, &[], Timestamp(0));
    let status = customer_status("c1", Some(1), None, &eval, |_| None, &time(100));
    let restricted = condition_of(&status.conditions, "PurchaseRestricted");
    assert_eq!(
        (restricted.status.as_str(), restricted.reason.as_str()),
        ("True", "DefaultOnAssociation")
    );
    assert!(
        restricted.message.contains("distributor \"dist-a\" can lift it"),
        "{}",
        restricted.message
    );
    assert_eq!(status.authority.as_ref().map(|a| a.partner.as_str()), Some("dist-a"));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.history.len(), 1, "the first state is recorded");
}

#[test]
fn a_decision_in_force_is_recorded_with_its_user_and_history_grows_only_on_change() {
    let c1 = Customer::of_reseller("c1", "r1");
    let frozen = decision(RestrictionState::RestrictedAndFrozen, "fraud");
    let eval = policy::evaluate_customer(&hierarchy(), &c1, std::slice::from_ref(&frozen), Timestamp(50));
    let user = |k: &policy::ObjectKey| (k.name == "c1").then(|| "alice".into());
    let first = customer_status("c1", Some(1), None, &eval, user, &time(100));
    assert_eq!(
        condition_of(&first.conditions, "PurchaseRestricted").reason,
        "RestrictedByDistributor"
    );
    let in_force = first.decision.as_ref().expect("a decision in force");
    assert_eq!(in_force.partner.as_deref(), Some("dist-a"));
    assert_eq!(in_force.reason, "fraud");
    assert_eq!(first.history.last().and_then(|h| h.user.as_deref()), Some("alice"));

    // The same evaluation again: nothing new in the history, nothing moves.
    let again = customer_status("c1", Some(1), Some(&first), &eval, user, &time(200));
    assert_eq!(again, first);
}

#[test]
fn history_keeps_the_last_ten_changes() {
    let c1 = Customer::of_reseller("c1", "r1");
    let mut status: Option<CustomerAccountStatus> = None;
    for i in 0..15 {
        let state = if i % 2 == 0 {
            RestrictionState::Restricted
        } else {
            RestrictionState::Unrestricted
        };
        let mut d = decision(state, &format!("reason {i}"));
        d.generation = i + 1;
        let eval = policy::evaluate_customer(&hierarchy(), &c1, &[d], Timestamp(100 + i));
        status = Some(customer_status(
            "c1",
            Some(1),
            status.as_ref(),
            &eval,
            |_| None,
            &time(100 + i),
        ));
    }
    let history = status.expect("a status").history;
    assert_eq!(history.len(), HISTORY);
    assert_eq!(history.last().map(|h| h.reason.as_str()), Some("reason 14"));
}

#[test]
fn a_decision_without_authority_is_not_accepted_nor_effective() {
    let c1 = Customer::of_reseller("c1", "r1");
    let mut by_reseller = decision(RestrictionState::Unrestricted, "paid");
    by_reseller.key = policy::ObjectKey::new("ns-r1", "c1");
    let eval = policy::evaluate_customer(&hierarchy(), &c1, &[by_reseller], Timestamp(50));
    let status = decision_status(Some(1), None, &eval.decisions[0], None, &time(100));
    let accepted = condition_of(&status.conditions, "Accepted");
    assert_eq!(
        (accepted.status.as_str(), accepted.reason.as_str()),
        ("False", "NotDelegated")
    );
    assert_eq!(condition_of(&status.conditions, "Effective").reason, "NotAccepted");
    assert_eq!(status.accepted, None, "nothing is recorded as accepted");
    assert_eq!(status.rejected_generation, Some(1));
}

#[test]
fn an_accepted_decision_records_its_content() {
    let c1 = Customer::of_reseller("c1", "r1");
    let eval = policy::evaluate_customer(
        &hierarchy(),
        &c1,
        &[decision(RestrictionState::Restricted, "overdue")],
        Timestamp(1_000_000),
    );
    let status = decision_status(Some(1), None, &eval.decisions[0], None, &time(100));
    assert_eq!(condition_of(&status.conditions, "Accepted").status, "True");
    assert_eq!(condition_of(&status.conditions, "Effective").reason, "InForce");
    let accepted = status.accepted.expect("recorded");
    assert_eq!((accepted.generation, accepted.reason.as_str()), (1, "overdue"));
    assert_eq!(status.issuer.as_deref(), Some("dist-a"));
}

#[test]
fn delegation_status_says_why_it_is_not_accepted() {
    let ok = delegation_status(Some(1), None, "r1", &Ok(()), Some("dist-a".into()), &time(100));
    assert_eq!(condition_of(&ok.conditions, "Active").status, "True");
    assert!(
        condition_of(&ok.conditions, "Accepted")
            .message
            .contains("reseller \"r1\"")
    );
    let rejected = Err(policy::DelegationRejection::IssuerNotADistributor { issuer: "r1".into() });
    let refused = delegation_status(Some(1), None, "r2", &rejected, Some("r1".into()), &time(100));
    let accepted = condition_of(&refused.conditions, "Accepted");
    assert_eq!(
        (accepted.status.as_str(), accepted.reason.as_str()),
        ("False", "IssuerNotADistributor")
    );
    assert_eq!(condition_of(&refused.conditions, "Active").reason, "NotAccepted");
}

#[test]
fn partner_status_reports_readiness_and_delegation() {
    let key = policy::ObjectKey::new("ns-dist-a", "d1");
    let reseller = partner_status(Some(1), None, "ns-r1", &Ok(()), None, true, Some(&key), &time(100));
    assert_eq!(
        condition_of(&reseller.conditions, "Ready").message,
        "acts in namespace \"ns-r1\""
    );
    assert_eq!(
        condition_of(&reseller.conditions, "RestrictionDelegated").reason,
        "Delegated"
    );
    assert_eq!(reseller.delegation.as_ref().map(|d| d.name.as_str()), Some("d1"));

    let missing = Err(policy::PartnerNotReady::NamespaceMissing {
        namespace: "ns-x".into(),
    });
    let distributor = partner_status(Some(1), None, "ns-x", &missing, None, false, None, &time(100));
    assert_eq!(
        condition_of(&distributor.conditions, "Ready").reason,
        "NamespaceMissing"
    );
    assert!(
        distributor.conditions.iter().all(|c| c.type_ != "RestrictionDelegated"),
        "no RestrictionDelegated for a distributor"
    );
    // A missing namespace may be applied after the partner by the same sync: in progress.
    assert_eq!(kstatus(&distributor.conditions), ("False", "True", "False"));
    assert_eq!(distributor.delegation, None);
}

#[test]
fn partner_status_reports_verification_and_is_not_ready_without_its_secret() {
    let ready = partner_status(Some(2), None, "ns-d", &Ok(()), Some(&Ok(())), false, None, &time(100));
    let cond = condition_of(&ready.conditions, "VerificationReady");
    assert_eq!((cond.status.as_str(), cond.reason.as_str()), ("True", "SecretValid"));
    assert_eq!(condition_of(&ready.conditions, "Ready").status, "True");

    let missing = Err(policy::verification::NotReady::SecretNotFound {
        partner: "d".into(),
        namespace: "ns-d".into(),
        name: "otp".into(),
    });
    let not_ready = partner_status(Some(2), None, "ns-d", &Ok(()), Some(&missing), false, None, &time(100));
    let cond = condition_of(&not_ready.conditions, "VerificationReady");
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("False", "SecretNotFound")
    );
    assert!(
        cond.message.contains("purchase-guard verification enroll"),
        "says how to fix: {}",
        cond.message
    );
    let ready = condition_of(&not_ready.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "VerificationNotReady")
    );

    let plain = partner_status(Some(2), None, "ns-d", &Ok(()), None, false, None, &time(100));
    assert!(
        plain.conditions.iter().all(|c| c.type_ != "VerificationReady"),
        "no verification condition without spec.verification"
    );
}

#[test]
fn a_withdrawal_credits_nobody_with_the_decision_that_comes_back() {
    let c1 = Customer::of_reseller("c1", "r1");
    let eval = policy::evaluate_customer(
        &hierarchy(),
        &c1,
        &[decision(RestrictionState::Restricted, "x")],
        Timestamp(5),
    );
    let before = customer_status("c1", Some(1), None, &eval, |_| None, &time(100));
    let in_force = policy::ObjectKey::new("ns-dist-a", "c1");
    let other = policy::ObjectKey::new("ns-r1", "c1");
    assert!(
        credit_decision_user(None, &[]),
        "a first state: the decision's user acted"
    );
    assert!(credit_decision_user(Some(&before), &[in_force.clone(), other.clone()]));
    assert!(
        !credit_decision_user(Some(&before), &[other]),
        "the decision in force was withdrawn"
    );
}

/// (Ready, Reconciling, Stalled) statuses.
fn kstatus(conditions: &[Condition]) -> (&str, &str, &str) {
    (
        condition_of(conditions, "Ready").status.as_str(),
        condition_of(conditions, "Reconciling").status.as_str(),
        condition_of(conditions, "Stalled").status.as_str(),
    )
}

#[test]
fn every_kind_carries_ready_reconciling_and_stalled() {
    // An accepted decision, in force or not, is current; so is the restricted customer.
    let c1 = Customer::of_reseller("c1", "r1");
    let eval = policy::evaluate_customer(
        &hierarchy(),
        &c1,
        &[decision(RestrictionState::Restricted, "overdue")],
        Timestamp(5),
    );
    let verdict = &eval.decisions[0];
    let accepted = decision_status(Some(1), None, verdict, None, &time(100));
    assert_eq!(kstatus(&accepted.conditions), ("True", "False", "False"));
    assert_eq!(condition_of(&accepted.conditions, "Ready").reason, "InForce");

    // Not accepted: stalled, with the rejection's reason and message.
    let mut foreign = decision(RestrictionState::Restricted, "overdue");
    foreign.key = policy::ObjectKey::new("ns-r2", "c1");
    let eval = policy::evaluate_customer(&hierarchy(), &c1, &[foreign], Timestamp(5));
    let refused = decision_status(Some(1), None, &eval.decisions[0], None, &time(100));
    assert_eq!(kstatus(&refused.conditions), ("False", "False", "True"));
    let stalled = condition_of(&refused.conditions, "Stalled");
    assert_eq!(stalled.reason, condition_of(&refused.conditions, "Accepted").reason);
    assert!(!stalled.message.is_empty());

    // Delegations: accepted and revoked are current, a rejected one is stalled.
    let ok = delegation_status(Some(1), None, "r1", &Ok(()), None, &time(100));
    assert_eq!(kstatus(&ok.conditions), ("True", "False", "False"));
    let revoked = delegation_status(
        Some(2),
        None,
        "r1",
        &Err(policy::DelegationRejection::Revoked),
        None,
        &time(100),
    );
    assert_eq!(kstatus(&revoked.conditions), ("True", "False", "False"));
    assert_eq!(condition_of(&revoked.conditions, "Ready").reason, "Revoked");
    let rejected = delegation_status(
        Some(1),
        None,
        "r9",
        &Err(policy::DelegationRejection::UnknownReseller { reseller: "r9".into() }),
        None,
        &time(100),
    );
    assert_eq!(kstatus(&rejected.conditions), ("False", "False", "True"));

    // A verification Secret that exists but cannot verify needs a fix: stalled.
    let invalid = Err(policy::verification::NotReady::SecretInvalid {
        partner: "d".into(),
        namespace: "ns-d".into(),
        name: "otp".into(),
        error: "key \"secret\" is missing".into(),
    });
    let partner = partner_status(Some(1), None, "ns-d", &Ok(()), Some(&invalid), false, None, &time(100));
    assert_eq!(kstatus(&partner.conditions), ("False", "False", "True"));
}

#[test]
fn kstatus_conditions_keep_their_transition_times() {
    let first = kstatus_conditions(&[], &Progress::in_progress("Freezing", "2 of 3"), Some(1), &time(100));
    let same = kstatus_conditions(
        &first,
        &Progress::in_progress("Freezing", "1 of 3"),
        Some(1),
        &time(200),
    );
    assert_eq!(
        first[1].last_transition_time, same[1].last_transition_time,
        "still reconciling"
    );
    let done = kstatus_conditions(&same, &Progress::current("Evaluated", "done"), Some(1), &time(300));
    assert_eq!(done[0].last_transition_time, time(300), "ready since now");
    assert_eq!(done[1].status, "False");
}
