//! Table-driven tests, one per rule of the brief (R1-R4, R6, R7).

use purchase_guard_policy::*;
use serde_json::json;
use std::collections::BTreeSet;

mod fixtures;
use fixtures::{decision, delegation, hierarchy};

use RestrictionState::{Restricted, RestrictedAndFrozen, Unrestricted};

#[test]
fn r1_default_restriction_on_association() {
    let h = hierarchy(false);
    // (customer, expected state, expected basis is the R1 default)
    let cases: Vec<(Customer, RestrictionState, bool)> = vec![
        (Customer::of_reseller("c1", "r1"), Restricted, true),
        (Customer::of_reseller("c3", "r3"), Restricted, true),
        // A broken hierarchy still fails safe: restricted by default.
        (Customer::of_reseller("c9", "no-such-reseller"), Restricted, true),
        (Customer::other_model("referral-customer"), Unrestricted, false),
    ];
    for (customer, state, default) in cases {
        let eval = evaluate_customer(&h, &customer, &[], Timestamp(1_000));
        assert_eq!(eval.effective.state, state, "customer {}", customer.name);
        assert_eq!(
            eval.effective.basis == Basis::Default,
            default,
            "customer {}",
            customer.name
        );
    }
    let referral = evaluate_customer(&h, &Customer::other_model("x"), &[], Timestamp(0));
    assert_eq!(referral.effective.basis, Basis::NotInResellerModel);
}

#[test]
fn r2_authority_holder_and_issuer_checks() {
    // (delegated?, customer, issuer namespace, expected Ok(holder) or Err(reason))
    let cases: Vec<(bool, Customer, &str, Result<&str, &str>)> = vec![
        (false, Customer::of_reseller("c1", "r1"), "ns-dist-a", Ok("dist-a")),
        (false, Customer::of_reseller("c1", "r1"), "ns-r1", Err("NotDelegated")),
        (
            false,
            Customer::of_reseller("c1", "r1"),
            "ns-dist-b",
            Err("OutsideHierarchy"),
        ),
        (
            false,
            Customer::of_reseller("c1", "r1"),
            "ns-r2",
            Err("OutsideHierarchy"),
        ),
        (
            false,
            Customer::of_reseller("c1", "r1"),
            "default",
            Err("IssuerNotAPartner"),
        ),
        (
            false,
            Customer::other_model("cx"),
            "ns-dist-a",
            Err("NotInResellerModel"),
        ),
        (false, Customer::of_reseller("c2", "r2"), "ns-dist-a", Ok("dist-a")),
        (true, Customer::of_reseller("c1", "r1"), "ns-r1", Ok("r1")),
        (true, Customer::of_reseller("c2", "r2"), "ns-dist-a", Ok("dist-a")),
        (true, Customer::of_reseller("c2", "r2"), "ns-r2", Err("NotDelegated")),
    ];
    for (delegated, customer, ns, expected) in cases {
        let h = hierarchy(delegated);
        let got = check_issuer_authority(&h, ns, &customer.name, Some(&customer));
        match (got, expected) {
            (Ok(holder), Ok(name)) => assert_eq!(holder.partner, name, "{ns} on {}", customer.name),
            (Err(denied), Err(reason)) => {
                assert_eq!(denied.reason(), reason, "{ns} on {}: {denied}", customer.name);
                assert!(
                    denied.to_string().contains(&customer.name),
                    "message names the customer: {denied}"
                );
            }
            (got, expected) => panic!("{ns} on {}: got {got:?}, expected {expected:?}", customer.name),
        }
    }
    let unknown = check_issuer_authority(&hierarchy(false), "ns-dist-a", "ghost", None).unwrap_err();
    assert_eq!(unknown.reason(), "UnknownCustomer");

    // A reseller's message tells it the way forward.
    let c1 = Customer::of_reseller("c1", "r1");
    let msg = check_issuer_authority(&hierarchy(false), "ns-r1", "c1", Some(&c1))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("R2: reseller \"r1\""), "{msg}");
    assert!(msg.contains("ask \"dist-a\""), "{msg}");
}

#[test]
fn r2_delegations_only_for_own_resellers() {
    let h = hierarchy(false);
    // (issuer namespace, reseller, expected Ok or rejection reason)
    let cases: Vec<(&str, &str, Result<(), &str>)> = vec![
        ("ns-dist-a", "r1", Ok(())),
        ("ns-dist-a", "r3", Err("NotYourReseller")),
        ("ns-r2", "r1", Err("IssuerNotADistributor")),
        ("ns-dist-a", "ghost", Err("UnknownReseller")),
        ("ns-dist-a", "dist-b", Err("NotAReseller")),
        ("kube-system", "r1", Err("IssuerNotAPartner")),
    ];
    for (ns, reseller, expected) in cases {
        let d = delegation(ns, "d", reseller, 1);
        let mut with = h.clone();
        with.delegations.push(d.clone());
        let got = evaluate_delegation(&with, &d).map_err(|e| e.reason());
        assert_eq!(got, expected, "delegation from {ns} to {reseller}");
    }
}

#[test]
fn r3_delegation_exclusivity() {
    let c1 = Customer::of_reseller("c1", "r1");
    // Without delegation the distributor holds authority; with it, only the reseller.
    let before = authority_holder(&hierarchy(false), &c1).unwrap();
    assert_eq!((before.partner.as_str(), before.role), ("dist-a", Role::Distributor));
    let after = authority_holder(&hierarchy(true), &c1).unwrap();
    assert_eq!((after.partner.as_str(), after.role), ("r1", Role::Reseller));
    assert_eq!(after.delegation, Some(ObjectKey::new("ns-dist-a", "delegate-r1")));

    let denied = check_issuer_authority(&hierarchy(true), "ns-dist-a", "c1", Some(&c1)).unwrap_err();
    assert_eq!(denied.reason(), "AuthorityDelegated");
    assert_eq!(denied.rule(), "R3");
    let msg = denied.to_string();
    assert!(msg.contains("distributor \"dist-a\" delegated"), "{msg}");
    assert!(msg.contains("ask \"r1\", or revoke the ResellerDelegation"), "{msg}");

    // Duplicate delegations: the oldest moves authority, the other is rejected.
    let mut h = hierarchy(true);
    let dup = delegation("ns-dist-a", "again", "r1", 20);
    h.delegations.push(dup.clone());
    assert_eq!(
        evaluate_delegation(&h, &dup).unwrap_err().reason(),
        "DuplicateDelegation"
    );
    assert_eq!(evaluate_delegation(&h, &h.delegations[0]), Ok(()));

    // Steps of a handover: (delegated?, decisions, expected effective state, in-force key namespace)
    let dist = decision("ns-dist-a", "c1", Restricted, Some(100));
    let reseller_unrestricts = decision("ns-r1", "c1", Unrestricted, None);
    let reseller_accepted = decision("ns-r1", "c1", Unrestricted, Some(300));
    let dist_change = Decision {
        state: Unrestricted,
        reason: "let them buy".into(),
        generation: 2,
        ..dist.clone()
    };
    let steps: Vec<(bool, Vec<Decision>, RestrictionState, Option<&str>)> = vec![
        // The distributor's decision is in force while it holds authority.
        (false, vec![dist.clone()], Restricted, Some("ns-dist-a")),
        // Delegation: the distributor's standing decision stays in force.
        (true, vec![dist.clone()], Restricted, Some("ns-dist-a")),
        // The distributor cannot change it any more: the change is ignored.
        (true, vec![dist_change.clone()], Restricted, Some("ns-dist-a")),
        // The reseller decides: its decision is accepted and in force.
        (
            true,
            vec![dist.clone(), reseller_unrestricts],
            Unrestricted,
            Some("ns-r1"),
        ),
        // Revocation: the reseller's decision stands until the distributor decides again.
        (
            false,
            vec![dist.clone(), reseller_accepted.clone()],
            Unrestricted,
            Some("ns-r1"),
        ),
        // The distributor decides again after revocation: accepted and in force.
        (
            false,
            vec![dist_change, reseller_accepted],
            Unrestricted,
            Some("ns-dist-a"),
        ),
        // Deleting every decision falls back to the R1 default.
        (true, vec![], Restricted, None),
    ];
    for (i, (delegated, decisions, state, in_force)) in steps.into_iter().enumerate() {
        let eval = evaluate_customer(&hierarchy(delegated), &c1, &decisions, Timestamp(1_000));
        assert_eq!(eval.effective.state, state, "step {i}");
        let got = eval
            .decisions
            .iter()
            .find(|v| v.in_force)
            .map(|v| v.key.namespace.as_str());
        assert_eq!(got, in_force, "step {i}");
        assert!(eval.decisions.iter().filter(|v| v.in_force).count() <= 1, "step {i}");
    }
}

#[test]
fn r3_decisions_by_parties_without_authority_are_not_accepted() {
    let c1 = Customer::of_reseller("c1", "r1");
    // (delegated?, issuer namespace, expected acceptance reason)
    let cases = [
        (true, "ns-dist-a", "AuthorityDelegated"),
        (false, "ns-r1", "NotDelegated"),
        (false, "ns-dist-b", "OutsideHierarchy"),
        (false, "default", "IssuerNotAPartner"),
    ];
    for (delegated, ns, reason) in cases {
        let d = decision(ns, "c1", Unrestricted, None);
        let eval = evaluate_customer(&hierarchy(delegated), &c1, &[d], Timestamp(1_000));
        match &eval.decisions[0].acceptance {
            Acceptance::NotAccepted { rejection } => assert_eq!(rejection.reason(), reason, "{ns}"),
            other => panic!("{ns}: {other:?}"),
        }
        assert_eq!(
            eval.effective,
            Effective {
                state: Restricted,
                basis: Basis::Default
            },
            "{ns}"
        );
    }
    // A second decision by the same partner is a duplicate.
    let first = decision("ns-dist-a", "c1", Restricted, None);
    let second = Decision {
        key: ObjectKey::new("ns-dist-a", "other"),
        created: Timestamp(200),
        ..first.clone()
    };
    let eval = evaluate_customer(&hierarchy(false), &c1, &[first, second], Timestamp(1_000));
    assert_eq!(eval.decisions[0].acceptance, Acceptance::Accepted);
    assert!(matches!(&eval.decisions[1].acceptance,
        Acceptance::NotAccepted { rejection: Rejection::Duplicate { of } } if of.name == "c1"));
}

#[test]
fn r4_reason_required_and_renewed_on_state_change() {
    let content = |state, reason| DecisionContent {
        state,
        reason,
        agreement_accepted: true,
        withdrawal: None,
    };
    // (old, new, expected errors)
    let cases: Vec<(Option<DecisionContent>, DecisionContent, Vec<ContentError>)> = vec![
        (None, content(Restricted, "invoice 42 overdue"), vec![]),
        (None, content(Restricted, ""), vec![ContentError::BlankReason]),
        (None, content(Restricted, "  \t"), vec![ContentError::BlankReason]),
        (
            Some(content(Restricted, "overdue")),
            content(Unrestricted, "paid"),
            vec![],
        ),
        (
            Some(content(Restricted, "overdue")),
            content(Unrestricted, "overdue"),
            vec![ContentError::ReasonNotRenewed {
                from: Restricted,
                to: Unrestricted,
            }],
        ),
        // Rewording the reason without changing the state is allowed.
        (
            Some(content(Restricted, "overdue")),
            content(Restricted, "overdue since May"),
            vec![],
        ),
        // R6: a frozen customer is unfrozen by Unrestricted only; restricting and freezing a
        // restricted one is an operation.
        (
            Some(content(RestrictedAndFrozen, "fraud")),
            content(Restricted, "fraud cleared, still overdue"),
            vec![ContentError::UnfreezeWithoutUnrestrict],
        ),
        (
            Some(content(RestrictedAndFrozen, "fraud")),
            content(Unrestricted, "fraud cleared"),
            vec![],
        ),
        (
            Some(content(Restricted, "overdue")),
            content(RestrictedAndFrozen, "fraud"),
            vec![],
        ),
    ];
    for (old, new, expected) in cases {
        assert_eq!(check_content(old.as_ref(), &new), expected, "{old:?} -> {new:?}");
    }
    assert!(
        ContentError::BlankReason
            .to_string()
            .starts_with("spec.reason: Required value")
    );
}

#[test]
fn r6_operations_and_freeze_agreement() {
    // (state, agreement accepted, restricts purchases, freezes, content errors)
    let cases = [
        (Restricted, false, true, false, 0),
        (RestrictedAndFrozen, true, true, true, 0),
        (RestrictedAndFrozen, false, true, true, 1),
        (Unrestricted, false, false, false, 0),
    ];
    for (state, agreement, restricts, freezes, errors) in cases {
        assert_eq!(state.restricts_purchases(), restricts, "{state}");
        assert_eq!(state.freezes_resources(), freezes, "{state}");
        let c = DecisionContent {
            state,
            reason: "r",
            agreement_accepted: agreement,
            withdrawal: None,
        };
        assert_eq!(check_content(None, &c).len(), errors, "{state} agreement={agreement}");
    }
    // A freeze without agreement that bypassed the schema is not accepted.
    let c1 = Customer::of_reseller("c1", "r1");
    let mut frozen = decision("ns-dist-a", "c1", RestrictedAndFrozen, None);
    frozen.agreement_accepted = false;
    let eval = evaluate_customer(&hierarchy(false), &c1, &[frozen], Timestamp(5));
    assert!(matches!(&eval.decisions[0].acceptance, Acceptance::NotAccepted { rejection } if rejection.rule() == "R6"));
    // Unrestrict-and-unfreeze (R9) is the Unrestricted state replacing a frozen one.
    let thawed = Decision {
        state: Unrestricted,
        reason: "paid".into(),
        generation: 2,
        ..decision("ns-dist-a", "c1", RestrictedAndFrozen, Some(10))
    };
    let eval = evaluate_customer(&hierarchy(false), &c1, &[thawed], Timestamp(50));
    assert_eq!(eval.effective.state, Unrestricted);
    assert_eq!(eval.decisions[0].record.as_ref().map(|r| r.since), Some(Timestamp(50)));
}

#[test]
fn r7_impact_matrix() {
    use Operation::*;
    let m = ImpactMatrix::default();
    m.validate().unwrap();
    let restricted = CustomerState::Known {
        state: Restricted,
        source: Some(RestrictionSource::Decision {
            partner: "dist-a".into(),
            role: Some(Role::Distributor),
            reason: "invoice 42 overdue".into(),
        }),
    };
    // (billing mode, operation, allowed while restricted)
    let cases = [
        (BillingMode::YearlyMonthly, Purchase, false),
        (BillingMode::YearlyMonthly, Rename, true),
        (BillingMode::YearlyMonthly, Renew, false),
        (BillingMode::YearlyMonthly, ModifySpecifications, false),
        (BillingMode::YearlyMonthly, ChangeBillingMode, false),
        (BillingMode::YearlyMonthly, Delete, true),
        (BillingMode::YearlyMonthly, Other, false),
        (BillingMode::PayPerUse, Purchase, false),
        (BillingMode::PayPerUse, Rename, true),
        (BillingMode::PayPerUse, ModifySpecifications, false),
        (BillingMode::PayPerUse, ChangeBillingMode, false),
        (BillingMode::PayPerUse, Delete, true),
        (BillingMode::PayPerUse, Other, false),
        (BillingMode::Spot, Purchase, false),
        (BillingMode::Spot, Rename, true),
        (BillingMode::Spot, Delete, true),
        (BillingMode::Spot, ModifySpecifications, false),
    ];
    for (mode, op, allowed) in cases {
        let verdict = decide_purchase(&m, "c1", &restricted, mode, &BTreeSet::from([op]));
        assert_eq!(verdict.is_allowed(), allowed, "{op} on {mode}");
        if let Verdict::Deny { rule, message, .. } = verdict {
            assert_eq!(rule, "R7");
            for part in [
                "customer \"c1\"",
                "R7",
                "distributor \"dist-a\"",
                "invoice 42 overdue",
                op.as_str(),
            ] {
                assert!(message.contains(part), "{message} should name {part}");
            }
        }
        // Unrestricted customers may do everything.
        let free = CustomerState::Known {
            state: Unrestricted,
            source: None,
        };
        assert!(decide_purchase(&m, "c1", &free, mode, &BTreeSet::from([op])).is_allowed());
        // Unknown state fails closed for what a restriction would block.
        let unknown = CustomerState::Unknown {
            why: "status is stale".into(),
        };
        let v = decide_purchase(&m, "c1", &unknown, mode, &BTreeSet::from([op]));
        assert_eq!(v.is_allowed(), allowed, "unknown state, {op} on {mode}");
    }
    let default_source = CustomerState::Known {
        state: Restricted,
        source: Some(RestrictionSource::Default {
            holder: Some("dist-a".into()),
        }),
    };
    match decide_purchase(
        &m,
        "c1",
        &default_source,
        BillingMode::PayPerUse,
        &BTreeSet::from([Purchase]),
    ) {
        Verdict::Deny { message, .. } => {
            assert!(message.contains("(R1)") && message.contains("\"dist-a\""), "{message}")
        }
        Verdict::Allow => panic!("default restriction must block purchases"),
    }
}

#[test]
fn r7_matrix_loads_from_configuration_and_rejects_bad_input() {
    let yaml = "
yearlyMonthly: {allowed: [rename, delete], blocked: [purchase, renew, modify-specifications, change-billing-mode, other]}
payPerUse: {allowed: [rename, delete, renew], blocked: [purchase, modify-specifications, change-billing-mode, other]}
spot: {allowed: [rename], blocked: [purchase, delete, renew, modify-specifications, change-billing-mode, other]}
";
    let m: ImpactMatrix = serde_yaml_ng::from_str(yaml).unwrap();
    m.validate().unwrap();
    assert!(m.blocks(BillingMode::Spot, Operation::Delete));
    assert!(!m.blocks(BillingMode::PayPerUse, Operation::Renew));

    let missing = "
yearlyMonthly: {allowed: [rename, delete], blocked: [purchase, renew, modify-specifications, change-billing-mode]}
payPerUse: {allowed: [rename, delete, renew], blocked: [purchase, modify-specifications, change-billing-mode, other]}
spot: {allowed: [rename], blocked: [purchase, delete, renew, modify-specifications, change-billing-mode, other]}
";
    let err = serde_yaml_ng::from_str::<ImpactMatrix>(missing)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        err,
        MatrixError::Missing {
            field: "yearlyMonthly",
            operation: Operation::Other
        }
    );
    assert!(
        err.to_string()
            .contains("yearlyMonthly.allowed or yearlyMonthly.blocked")
    );

    let unknown_op = yaml.replace("rename, delete]", "rename, teleport]");
    let err = serde_yaml_ng::from_str::<ImpactMatrix>(&unknown_op)
        .unwrap_err()
        .to_string();
    assert!(err.contains("teleport") && err.contains("purchase"), "{err}");
}

#[test]
fn r7_classification_of_requests() {
    use Operation::*;
    let rules = ClassifyRules::default();
    let vm = |display: &str, cpus: i64, mode: &str, renewed: &str| {
        json!({
            "apiVersion": "compute.example.com/v1", "kind": "VirtualMachine",
            "metadata": {"name": "vm1", "namespace": "acme", "labels": {BILLING_MODE_LABEL: mode}},
            "spec": {"displayName": display, "cpus": cpus, "subscription": {"renewedUntil": renewed}},
            "status": {"phase": "Running"}
        })
    };
    let old = vm("web", 2, "yearly-monthly", "2027-01-01");
    let mut status_only = old.clone();
    status_only["status"]["phase"] = json!("Stopped");
    let mut labelled = old.clone();
    labelled["metadata"]["labels"]["team"] = json!("web");
    let mut annotated = old.clone();
    annotated["metadata"]["annotations"] = json!({"purchaseguard.io/display-name": "web-2"});
    let mut other = old.clone();
    other["data"] = json!({"x": 1});
    // (new object, expected operations)
    let cases: Vec<(serde_json::Value, Vec<Operation>)> = vec![
        (old.clone(), vec![]),
        (status_only, vec![]),
        (labelled, vec![]),
        (vm("web-renamed", 2, "yearly-monthly", "2027-01-01"), vec![Rename]),
        (annotated, vec![Rename]),
        (vm("web", 2, "yearly-monthly", "2028-01-01"), vec![Renew]),
        (vm("web", 4, "yearly-monthly", "2027-01-01"), vec![ModifySpecifications]),
        (vm("web", 2, "pay-per-use", "2027-01-01"), vec![ChangeBillingMode]),
        (
            vm("web2", 4, "yearly-monthly", "2027-01-01"),
            vec![Rename, ModifySpecifications],
        ),
        (other, vec![Other]),
    ];
    for (new, expected) in cases {
        let got = classify_request(&rules, RequestOperation::Update, Some(&old), Some(&new));
        assert_eq!(got, expected.into_iter().collect::<BTreeSet<_>>(), "{new}");
    }
    assert_eq!(
        classify_request(&rules, RequestOperation::Create, None, Some(&old)),
        BTreeSet::from([Purchase])
    );
    assert_eq!(
        classify_request(&rules, RequestOperation::Delete, Some(&old), None),
        BTreeSet::from([Delete])
    );
    // Removing the label falls back to the default billing mode: a change from yearly-monthly.
    let mut unlabelled = old.clone();
    unlabelled["metadata"]["labels"] = json!({});
    assert_eq!(
        classify_update(&rules, &old, &unlabelled),
        BTreeSet::from([ChangeBillingMode])
    );
    assert!(
        billing_mode_of(&vm("a", 1, "monthly", "x"), BillingMode::PayPerUse)
            .unwrap_err()
            .contains("supported values")
    );
}
