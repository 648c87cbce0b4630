//! The admission checks on changes of restriction (R2-R4, R6), partner readiness, and the
//! customer state admission judges purchases by (R1, R7).

use purchase_guard_policy::*;

mod fixtures;
use fixtures::{decision, hierarchy};

use RestrictionState::{Restricted, RestrictedAndFrozen, Unrestricted};

fn write<'a>(
    namespace: &str,
    name: &str,
    customer: &'a str,
    state: RestrictionState,
    reason: &'a str,
) -> DecisionWrite<'a> {
    DecisionWrite {
        key: ObjectKey::new(namespace, name),
        customer,
        content: DecisionContent {
            state,
            reason,
            agreement_accepted: false,
            withdrawal: None,
        },
        owned: false,
    }
}

#[test]
fn r2_r3_only_the_holder_may_create_or_change_a_decision() {
    let c1 = Customer::of_reseller("c1", "r1");
    let new = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    let allowed = check_decision_write(&hierarchy(false), Some(&c1), None, &new, &[]);
    assert!(matches!(allowed, Ok(WriteAllowed::Authorized(h)) if h.partner == "dist-a"));

    // Once dist-a delegated to r1, dist-a may not create and r1 may.
    let denied = check_decision_write(&hierarchy(true), Some(&c1), None, &new, &[]).unwrap_err();
    assert_eq!(denied.reason(), "AuthorityDelegated");
    assert_eq!(denied.rule(), "R3");
    let by_reseller = write("ns-r1", "c1", "c1", Restricted, "overdue");
    assert!(check_decision_write(&hierarchy(true), Some(&c1), None, &by_reseller, &[]).is_ok());

    // A change by a party without authority is refused like a creation.
    let old = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    let changed = write("ns-dist-a", "c1", "c1", Unrestricted, "paid");
    let denied = check_decision_write(&hierarchy(true), Some(&c1), Some(&old), &changed, &[]).unwrap_err();
    assert_eq!(denied.reason(), "AuthorityDelegated");

    // An unknown customer cannot be restricted.
    let ghost = write("ns-dist-a", "ghost", "ghost", Restricted, "overdue");
    let denied = check_decision_write(&hierarchy(false), None, None, &ghost, &[]).unwrap_err();
    assert_eq!(denied.reason(), "UnknownCustomer");
}

#[test]
fn unchanged_operator_fields_are_not_judged_again() {
    let c1 = Customer::of_reseller("c1", "r1");
    let old = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    let same = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    // Even without authority (dist-a delegated): a metadata-only edit is not a decision.
    assert_eq!(
        check_decision_write(&hierarchy(true), Some(&c1), Some(&old), &same, &[]),
        Ok(WriteAllowed::SpecUnchanged)
    );
}

#[test]
fn r3_a_decision_never_has_an_owner() {
    let c1 = Customer::of_reseller("c1", "r1");
    let old = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    let mut owned = old.clone();
    owned.owned = true;
    // Not even the holder may give its decision an owner, not even in a metadata-only edit.
    for h in [hierarchy(false), hierarchy(true)] {
        let denied = check_decision_write(&h, Some(&c1), Some(&old), &owned, &[]).unwrap_err();
        assert_eq!((denied.reason(), denied.rule()), ("OwnedDecision", "R3"));
        assert!(
            denied.to_string().starts_with("metadata.ownerReferences: Forbidden"),
            "{denied}"
        );
        assert_eq!(
            check_decision_write(&h, Some(&c1), None, &owned, &[]),
            Err(WriteDenied::Owned)
        );
    }
    // Removing an owner is fine.
    assert_eq!(
        check_decision_write(&hierarchy(true), Some(&c1), Some(&owned), &old, &[]),
        Ok(WriteAllowed::SpecUnchanged)
    );
}

#[test]
fn r4_a_reason_needs_visible_characters_on_one_line() {
    for blank in ["", "   ", "\u{200B}\u{200D}", "\u{FEFF} \u{2060}", "\u{00AD}"] {
        let content = DecisionContent {
            state: Restricted,
            reason: blank,
            agreement_accepted: false,
            withdrawal: None,
        };
        assert_eq!(
            check_content(None, &content),
            vec![ContentError::BlankReason],
            "{blank:?}"
        );
    }
    for controlled in ["paid\n(changed by \"admin\")", "tab\there", "esc\u{1b}[31m"] {
        let content = DecisionContent {
            state: Restricted,
            reason: controlled,
            agreement_accepted: false,
            withdrawal: None,
        };
        assert_eq!(
            check_content(None, &content),
            vec![ContentError::ControlCharacter],
            "{controlled:?}"
        );
    }
    for fine in [
        "Invoice 42 overdue",
        "Überfällig — Rechnung 42",
        "\u{200B}x",
        "客户欠款",
    ] {
        let content = DecisionContent {
            state: Restricted,
            reason: fine,
            agreement_accepted: false,
            withdrawal: None,
        };
        assert!(check_content(None, &content).is_empty(), "{fine:?}");
    }
}

#[test]
fn r4_r6_content_is_checked_before_authority() {
    let c1 = Customer::of_reseller("c1", "r1");
    let blank = write("ns-r2", "c1", "c1", Restricted, "  ");
    let denied = check_decision_write(&hierarchy(false), Some(&c1), None, &blank, &[]).unwrap_err();
    assert_eq!((denied.reason(), denied.rule()), ("Invalid", "R4"));
    assert!(
        denied.to_string().starts_with("spec.reason: Required value"),
        "{denied}"
    );

    let frozen = write("ns-dist-a", "c1", "c1", RestrictedAndFrozen, "fraud");
    let denied = check_decision_write(&hierarchy(false), Some(&c1), None, &frozen, &[]).unwrap_err();
    assert_eq!(denied.rule(), "R6");

    let old = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    let same_reason = write("ns-dist-a", "c1", "c1", Unrestricted, "overdue");
    let denied = check_decision_write(&hierarchy(false), Some(&c1), Some(&old), &same_reason, &[]).unwrap_err();
    assert!(denied.to_string().contains("needs a new reason"), "{denied}");
}

#[test]
fn r2_one_decision_per_partner_and_customer() {
    let c1 = Customer::of_reseller("c1", "r1");
    let existing = [decision("ns-dist-a", "c1", Restricted, Some(10))];
    let second = write("ns-dist-a", "another", "c1", Unrestricted, "paid");
    let denied = check_decision_write(&hierarchy(false), Some(&c1), None, &second, &existing).unwrap_err();
    assert_eq!(denied.reason(), "DuplicateDecision");
    assert!(
        denied.to_string().contains("PurchaseRestriction ns-dist-a/c1"),
        "{denied}"
    );

    // Changing the one that exists is not a duplicate, nor is re-creating the same name.
    let old = write("ns-dist-a", "c1", "c1", Restricted, "overdue");
    let change = write("ns-dist-a", "c1", "c1", Unrestricted, "paid");
    assert!(check_decision_write(&hierarchy(false), Some(&c1), Some(&old), &change, &existing).is_ok());
    let same_name = write("ns-dist-a", "c1", "c1", Unrestricted, "paid");
    assert!(check_decision_write(&hierarchy(false), Some(&c1), None, &same_name, &existing).is_ok());

    // The controller applies the same rule: the oldest of an issuer's decisions counts.
    let mut newer = decision("ns-dist-a", "c1", Unrestricted, Some(20));
    newer.key.name = "newer".into();
    let all = [newer.clone(), existing[0].clone()];
    let counting = counting_decision(&all, "ns-dist-a", "c1").map(|d| d.key.clone());
    assert_eq!(counting, Some(ObjectKey::new("ns-dist-a", "c1")));
    assert_eq!(counting_decision(&all, "ns-r1", "c1"), None);
}

#[test]
fn r4_the_decision_in_force_is_withdrawn_with_a_reason_never_deleted() {
    let key = ObjectKey::new("ns-dist-a", "c1");
    let by = |user| Withdrawal {
        user,
        key: key.clone(),
        customer: "c1",
    };
    let keys = [key.clone()];
    let in_force = WithdrawnFrom { in_force: &keys };
    let others = [ObjectKey::new("ns-r1", "c1")];
    let not_in_force = WithdrawnFrom { in_force: &others };
    // Deleting the decision in force is refused to everyone, cleanup included.
    for user in ["alice"].into_iter().chain(CLEANUP_USERS) {
        let denied = check_withdrawal(&by(user), Some(&in_force)).unwrap_err();
        assert_eq!((denied.rule(), denied.reason()), ("R4", "WithdrawalReasonRequired"));
        let message = denied.to_string();
        assert!(
            message.contains("ns-dist-a/c1 is the decision in force") && message.contains("spec\":{\"withdrawal"),
            "{message}"
        );
    }
    assert_eq!(
        check_withdrawal(&by("alice"), Some(&not_in_force)),
        Ok(WithdrawalAllowed::NotInForce)
    );
    assert_eq!(
        check_withdrawal(&by("alice"), None),
        Ok(WithdrawalAllowed::CustomerGone)
    );
    assert_eq!(
        check_withdrawal(&by(CLEANUP_USERS[1]), Some(&not_in_force)),
        Ok(WithdrawalAllowed::Cleanup)
    );

    // The withdrawal itself: a change of the decision by the holder, with a reason of its own.
    let h = hierarchy(false);
    let c1 = Customer::of_reseller("c1", "r1");
    let mut old = write("ns-dist-a", "c1", "c1", Restricted, "Invoice 42 overdue");
    old.content.agreement_accepted = true;
    let withdraw = |reason| {
        let mut w = old.clone();
        w.content.withdrawal = Some(reason);
        w
    };
    assert!(matches!(
        check_decision_write(&h, Some(&c1), Some(&old), &withdraw("Invoice 42 paid"), &[]),
        Ok(WriteAllowed::Authorized(_))
    ));
    match check_decision_write(&h, Some(&c1), Some(&old), &withdraw("\u{200B} "), &[]) {
        Err(WriteDenied::Content(errors)) => assert_eq!(errors, vec![ContentError::BlankWithdrawalReason]),
        other => panic!("a blank withdrawal reason is refused: {other:?}"),
    }
    match check_decision_write(&h, Some(&c1), Some(&old), &withdraw("paid\nreally"), &[]) {
        Err(WriteDenied::Content(errors)) => assert_eq!(errors, vec![ContentError::WithdrawalControlCharacter]),
        other => panic!("a multi-line withdrawal reason is refused: {other:?}"),
    }
    // Only the holder withdraws: with the delegation, the distributor may not.
    match check_decision_write(
        &hierarchy(true),
        Some(&c1),
        Some(&old),
        &withdraw("Invoice 42 paid"),
        &[],
    ) {
        Err(WriteDenied::Authority(denied)) => assert_eq!(denied.reason(), "AuthorityDelegated"),
        other => panic!("a party without authority cannot withdraw: {other:?}"),
    }
    // Putting it back in force is a new operation: a new reason.
    let withdrawn = withdraw("Invoice 42 paid");
    match check_decision_write(&h, Some(&c1), Some(&withdrawn), &old, &[]) {
        Err(WriteDenied::Content(errors)) => assert_eq!(errors, vec![ContentError::ReinstatedWithoutReason]),
        other => panic!("reinstating needs a new reason: {other:?}"),
    }
    let mut reinstated = old.clone();
    reinstated.content.reason = "Invoice 43 overdue";
    assert!(check_decision_write(&h, Some(&c1), Some(&withdrawn), &reinstated, &[]).is_ok());
}

#[test]
fn r4_a_withdrawn_decision_is_not_in_force_and_the_next_one_is() {
    let h = hierarchy(false);
    let c1 = Customer::of_reseller("c1", "r1");
    // The distributor's Unrestricted decision (accepted at 10) is in force over r1's older one.
    let reseller = decision("ns-r1", "c1", Restricted, Some(5));
    let mut dist = decision("ns-dist-a", "c1", Unrestricted, Some(10));
    let eval = evaluate_customer(&h, &c1, &[reseller.clone(), dist.clone()], Timestamp(20));
    assert_eq!(eval.effective.state, Unrestricted);
    // Withdrawn: recorded as a withdrawal with its reason, and out of force.
    dist.withdrawal = Some("Handing the customer back".into());
    dist.generation = 2;
    let eval = evaluate_customer(&h, &c1, &[reseller, dist.clone()], Timestamp(30));
    let record = eval.decisions[1].record.clone().expect("accepted");
    assert!(record.withdrawn);
    assert_eq!(record.reason, "Handing the customer back");
    assert!(!eval.decisions[1].in_force);
    // r1 has no authority (no delegation), but its decision accepted before stands.
    assert_eq!(eval.effective.state, Restricted);
    // Alone, a withdrawn decision leaves the customer to R1.
    let eval = evaluate_customer(&h, &c1, &[dist], Timestamp(30));
    assert_eq!(eval.effective.basis, Basis::Default);
}

#[test]
fn a_reseller_needs_a_known_distributor_and_every_partner_its_namespace() {
    let h = hierarchy(false);
    let r1 = h.partner("r1").cloned().unwrap();
    assert_eq!(partner_readiness(&h, &r1, true), Ok(()));
    let missing = partner_readiness(&h, &r1, false).unwrap_err();
    assert_eq!(missing.reason(), "NamespaceMissing");
    assert!(missing.to_string().contains("\"ns-r1\""), "{missing}");

    let orphan = Partner::reseller("r9", "dist-z", "ns-r9");
    let no_distributor = partner_readiness(&h, &orphan, true).unwrap_err();
    assert_eq!(no_distributor.reason(), "DistributorMissing");
    // A reseller whose "distributor" is another reseller is not ready either.
    let odd = Partner::reseller("r8", "r1", "ns-r8");
    assert_eq!(
        partner_readiness(&h, &odd, true).unwrap_err().reason(),
        "DistributorMissing"
    );
    let dist = h.partner("dist-a").cloned().unwrap();
    assert_eq!(partner_readiness(&h, &dist, true), Ok(()));
}

#[test]
fn r7_admission_evaluates_the_customer_itself() {
    let c1 = Customer::of_reseller("c1", "r1");
    // No decision: the R1 default, naming who can lift it.
    let eval = evaluate_customer(&hierarchy(false), &c1, &[], Timestamp(1));
    assert_eq!(
        evaluated_state(&eval),
        CustomerState::Known {
            state: Restricted,
            source: Some(RestrictionSource::Default {
                holder: Some("dist-a".into())
            })
        }
    );
    // A decision nobody has recorded as accepted yet (no controller ran): in force at once.
    let unrecorded = decision("ns-dist-a", "c1", Unrestricted, None);
    let eval = evaluate_customer(&hierarchy(false), &c1, &[unrecorded], Timestamp(2));
    assert_eq!(
        evaluated_state(&eval),
        CustomerState::Known {
            state: Unrestricted,
            source: Some(RestrictionSource::Decision {
                partner: "dist-a".into(),
                role: Some(Role::Distributor),
                reason: "Unrestricted by ns-dist-a".into()
            })
        }
    );
    // ...and so is a restriction replacing an accepted unrestriction.
    let mut restrict = decision("ns-dist-a", "c1", Restricted, None);
    restrict.accepted = Some(AcceptedRecord {
        generation: 0,
        state: Unrestricted,
        reason: "paid".into(),
        since: Timestamp(1),
        withdrawn: false,
        association: 0,
    });
    let eval = evaluate_customer(&hierarchy(false), &c1, &[restrict], Timestamp(3));
    assert!(matches!(
        evaluated_state(&eval),
        CustomerState::Known { state: Restricted, .. }
    ));
    // Not in the Reseller model: nothing restricts it.
    let eval = evaluate_customer(&hierarchy(false), &Customer::other_model("x"), &[], Timestamp(1));
    assert_eq!(
        evaluated_state(&eval),
        CustomerState::Known {
            state: Unrestricted,
            source: None
        }
    );
    // A partner without a known role is named without one.
    let by_gone = CustomerState::Known {
        state: Restricted,
        source: Some(RestrictionSource::Decision {
            partner: "gone".into(),
            role: None,
            reason: "overdue".into(),
        }),
    };
    let purchase = std::collections::BTreeSet::from([Operation::Purchase]);
    match decide_purchase(
        &ImpactMatrix::default(),
        "c1",
        &by_gone,
        BillingMode::PayPerUse,
        &purchase,
    ) {
        Verdict::Deny { message, .. } => assert!(message.contains("by partner \"gone\""), "{message}"),
        Verdict::Allow => panic!("a restricted customer may not purchase"),
    }
}

#[test]
fn r7_a_request_is_judged_under_its_billing_modes() {
    use serde_json::json;
    let rules = ClassifyRules::default();
    let matrix = ImpactMatrix::default();
    let restricted = CustomerState::Known {
        state: Restricted,
        source: None,
    };
    let vm = |mode: &str, name: &str| json!({"metadata": {"labels": {BILLING_MODE_LABEL: mode}}, "spec": {"displayName": name}});
    let judge = |operation, old: Option<&serde_json::Value>, new: Option<&serde_json::Value>| {
        judge_request(
            &rules,
            &matrix,
            "c1",
            &restricted,
            &BillableRequest {
                operation,
                scale: false,
                old,
                new,
            },
        )
    };
    let yearly = vm("yearly-monthly", "a");
    let ppu = vm("pay-per-use", "a");
    // A rename is use in every mode.
    assert_eq!(
        judge(
            RequestOperation::Update,
            Some(&yearly),
            Some(&vm("yearly-monthly", "b"))
        ),
        Judgement::Allow("NotBlocked")
    );
    // Leaving yearly/monthly for pay-per-use is a change of billing mode: refused.
    assert!(matches!(
        judge(RequestOperation::Update, Some(&yearly), Some(&ppu)),
        Judgement::Deny {
            reason: "CustomerRestricted",
            ..
        }
    ));
    // Nothing billable changes: allowed without asking the matrix.
    assert_eq!(
        judge(RequestOperation::Update, Some(&ppu), Some(&ppu)),
        Judgement::Allow("NothingBillable")
    );
    // An unreadable billing mode is refused, except when deleting.
    let odd = vm("weekly", "a");
    match judge(RequestOperation::Create, None, Some(&odd)) {
        Judgement::Deny { reason, message, .. } => {
            assert_eq!(reason, "InvalidBillingMode");
            assert!(message.contains(BILLING_MODE_LABEL), "{message}");
        }
        other => panic!("an unreadable billing mode is refused: {other:?}"),
    }
    assert_eq!(
        judge(RequestOperation::Delete, Some(&odd), None),
        Judgement::Allow("NotBlocked")
    );
}

#[test]
fn r7_scaling_up_is_a_purchase_and_scaling_down_is_use() {
    use serde_json::json;
    let scale = |replicas: serde_json::Value| json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": replicas}});
    let update = RequestOperation::Update;
    let classify = |old: &serde_json::Value, new: &serde_json::Value| classify_scale(update, Some(old), Some(new));
    assert_eq!(
        classify(&scale(json!(2)), &scale(json!(3))),
        [Operation::Purchase].into()
    );
    assert!(
        classify(&scale(json!(3)), &scale(json!(1))).is_empty(),
        "scaling down is use"
    );
    assert!(classify(&scale(json!(3)), &scale(json!(3))).is_empty());
    assert_eq!(
        classify(&json!({"spec": {}}), &scale(json!(1))),
        [Operation::Purchase].into(),
        "absent is 0"
    );
    assert_eq!(
        classify(&scale(json!(1)), &scale(json!("many"))),
        [Operation::Other].into()
    );
    // Judged like any purchase while restricted; scaling down stays possible.
    let restricted = CustomerState::Known {
        state: Restricted,
        source: None,
    };
    let judge = |old: &serde_json::Value, new: &serde_json::Value| {
        judge_request(
            &ClassifyRules::default(),
            &ImpactMatrix::default(),
            "c1",
            &restricted,
            &BillableRequest {
                operation: update,
                scale: true,
                old: Some(old),
                new: Some(new),
            },
        )
    };
    assert!(matches!(
        judge(&scale(json!(1)), &scale(json!(5))),
        Judgement::Deny {
            reason: "CustomerRestricted",
            ..
        }
    ));
    assert_eq!(
        judge(&scale(json!(5)), &scale(json!(0))),
        Judgement::Allow("NothingBillable")
    );
}

#[test]
fn r7_each_kind_says_which_fields_are_capacity_use_and_specifications() {
    use serde_json::json;
    let deployment = |replicas: serde_json::Value, restarted: Option<&str>, image: &str| {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {BILLING_MODE_LABEL: "pay-per-use"}},
            "spec": {"replicas": replicas, "paused": false,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}});
        if let Some(at) = restarted {
            d["spec"]["template"]["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": at});
        }
        d
    };
    let rules = ClassifyRules::for_kind("apps", "deployments");
    let classify = |old: &serde_json::Value, new: &serde_json::Value| classify_update(&rules, old, new);
    let base = deployment(json!(3), None, "nginx:1.27");
    assert_eq!(
        classify(&base, &deployment(json!(5), None, "nginx:1.27")),
        [Operation::Purchase].into(),
        "more replicas is a purchase"
    );
    assert!(
        classify(&base, &deployment(json!(1), None, "nginx:1.27")).is_empty(),
        "fewer replicas is use"
    );
    assert!(
        classify(&base, &deployment(json!(3), Some("2026-11-26T10:00:00Z"), "nginx:1.27")).is_empty(),
        "a rollout restart is use"
    );
    let mut paused = base.clone();
    paused["spec"]["paused"] = json!(true);
    assert!(classify(&base, &paused).is_empty(), "pausing a rollout is use");
    assert_eq!(
        classify(&base, &deployment(json!(3), None, "nginx:1.28")),
        [Operation::ModifySpecifications].into(),
        "a new image is a change of specifications"
    );
    assert_eq!(
        classify(&base, &deployment(json!("3"), None, "nginx:1.27")),
        [Operation::ModifySpecifications].into(),
        "a capacity that is not a whole number is a change of specifications"
    );
    assert_eq!(
        classify(&base, &deployment(json!(4), Some("now"), "nginx:1.28")),
        [Operation::Purchase, Operation::ModifySpecifications].into(),
        "each change counts"
    );
    // A kind nothing is known of: a replicas field is only a specification.
    assert_eq!(
        classify_update(
            &ClassifyRules::for_kind("example.com", "widgets"),
            &base,
            &deployment(json!(1), None, "nginx:1.27")
        ),
        [Operation::ModifySpecifications].into()
    );
    // Jobs: parallelism is capacity, suspending is use; the sample VM: CPUs are capacity.
    let job = |parallelism: i64, suspend: bool| json!({"spec": {"parallelism": parallelism, "suspend": suspend}});
    let jobs = ClassifyRules::for_kind("batch", "jobs");
    assert_eq!(
        classify_update(&jobs, &job(1, false), &job(4, false)),
        [Operation::Purchase].into()
    );
    assert!(classify_update(&jobs, &job(4, false), &job(4, true)).is_empty());
    let vms = ClassifyRules::for_kind("compute.example.com", "virtualmachines");
    assert_eq!(
        classify_update(&vms, &json!({"spec": {"cpus": 2}}), &json!({"spec": {"cpus": 8}})),
        [Operation::Purchase].into()
    );
    // Paths must be JSON pointers.
    let bad = ClassifyRules {
        capacity_paths: vec!["spec.replicas".into()],
        ..ClassifyRules::default()
    };
    let err = bad.validate().expect_err("not a pointer");
    assert!(err.starts_with("capacityPaths[0]: \"spec.replicas\""), "{err}");
}

#[test]
fn r1_a_new_association_starts_restricted_whatever_was_decided_before() {
    let h = hierarchy(false);
    // dist-a's Unrestricted decision, accepted under the customer's first association.
    let mut c1 = Customer::of_reseller("c1", "r1");
    let dist = decision("ns-dist-a", "c1", Unrestricted, Some(10));
    let eval = evaluate_customer(&h, &c1, std::slice::from_ref(&dist), Timestamp(20));
    assert_eq!(eval.effective.state, Unrestricted);
    // The association changes: nothing applies until it is numbered, and the record is kept.
    c1.association = Association::Changing;
    let eval = evaluate_customer(&h, &c1, std::slice::from_ref(&dist), Timestamp(30));
    assert_eq!(eval.effective.basis, Basis::Default);
    assert_eq!(eval.decisions[0].record, dist.accepted);
    assert_eq!(eval.decisions[0].rejected_generation, None);
    // Numbered: the decision, though its issuer still holds authority, was accepted under the
    // previous association and no longer applies.
    c1.association = Association::Current(1);
    let eval = evaluate_customer(&h, &c1, std::slice::from_ref(&dist), Timestamp(40));
    assert_eq!(eval.effective.basis, Basis::Default);
    match &eval.decisions[0].acceptance {
        Acceptance::NotAccepted { rejection } => {
            assert_eq!((rejection.rule(), rejection.reason()), ("R1", "PreviousAssociation"));
        }
        other => panic!("not accepted: {other:?}"),
    }
    assert_eq!(eval.decisions[0].rejected_generation, Some(1));
    // Changed under the new association (a new generation), it is judged and accepted again.
    let mut changed = dist.clone();
    changed.generation = 2;
    changed.reason = "Credit check passed again".into();
    let eval = evaluate_customer(&h, &c1, &[changed], Timestamp(50));
    assert_eq!(eval.effective.state, Unrestricted);
    assert_eq!(eval.decisions[0].record.as_ref().map(|r| r.association), Some(1));
}
