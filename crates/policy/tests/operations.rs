//! Random sequences of operations, each judged by admission first (as the webhook does) and
//! then settled by the controller's evaluation: the customer's effective state changes only
//! through an operation of the partner holding authority over it at that moment (R2, R3), and
//! a delegation or its revocation never flips it by itself. Deletions (by the issuer or by
//! cleanup: namespace deletion, garbage collection) never change it: a withdrawal is an
//! operation with a reason.

use proptest::prelude::*;
use purchase_guard_policy::*;

mod fixtures;
use fixtures::settle;

/// Distributors d0 (resellers r0, r1) and d1 (reseller r2); the customer belongs to r0.
const ISSUERS: [&str; 5] = ["d0", "r0", "r1", "d1", "r2"];

fn hierarchy(delegated: bool) -> Hierarchy {
    let mut h = Hierarchy {
        partners: vec![
            Partner::distributor("d0", "ns-d0"),
            Partner::distributor("d1", "ns-d1"),
            Partner::reseller("r0", "d0", "ns-r0"),
            Partner::reseller("r1", "d0", "ns-r1"),
            Partner::reseller("r2", "d1", "ns-r2"),
        ],
        delegations: vec![],
    };
    if delegated {
        h.delegations.push(Delegation {
            key: ObjectKey::new("ns-d0", "delegate-r0"),
            reseller: "r0".into(),
            created: Timestamp(0),
            revoked: false,
        });
    }
    h
}

#[derive(Clone, Debug)]
enum Op {
    /// The partner `issuer` creates or changes its decision about the customer.
    Write {
        issuer: usize,
        state: RestrictionState,
        reason: u8,
    },
    /// The partner `issuer` withdraws its decision (`spec.withdrawal.reason`).
    Withdraw { issuer: usize, reason: u8 },
    /// The decision of `issuer` is deleted, by its operator or by cleanup (namespace
    /// deletion, garbage collection).
    Delete { issuer: usize, cleanup: bool },
    /// d0 delegates to r0, or revokes the delegation.
    ToggleDelegation,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..ISSUERS.len(), prop::sample::select(RestrictionState::ALL.to_vec()), 0u8..3)
            .prop_map(|(issuer, state, reason)| Op::Write { issuer, state, reason }),
        2 => (0..ISSUERS.len(), 0u8..3).prop_map(|(issuer, reason)| Op::Withdraw { issuer, reason }),
        2 => (0..ISSUERS.len(), any::<bool>()).prop_map(|(issuer, cleanup)| Op::Delete { issuer, cleanup }),
        1 => Just(Op::ToggleDelegation),
    ]
}

fn namespace(issuer: usize) -> String {
    format!("ns-{}", ISSUERS[issuer])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn only_the_authority_holder_changes_the_effective_state(ops in prop::collection::vec(op(), 1..25)) {
        let customer = Customer::of_reseller("cust", "r0");
        let mut delegated = false;
        let mut decisions: Vec<Decision> = Vec::new();
        let mut now = 1;
        let mut eval = settle(&hierarchy(delegated), &customer, &mut decisions, now);
        for op in ops {
            now += 1;
            let h = hierarchy(delegated);
            let holder = authority_holder(&h, &customer).map(|a| a.partner).ok();
            let before = eval.effective.state;
            let in_force: Vec<ObjectKey> = eval.decisions.iter().filter(|v| v.in_force).map(|v| v.key.clone()).collect();
            let actor: Option<&str> = match &op {
                Op::Write { issuer, .. } | Op::Withdraw { issuer, .. } => {
                    let key = ObjectKey::new(&namespace(*issuer), "decision");
                    let existing = decisions.iter().position(|d| d.key == key);
                    let old = existing.map(|i| DecisionWrite {
                        key: key.clone(),
                        customer: "cust",
                        content: DecisionContent {
                            state: decisions[i].state,
                            reason: &decisions[i].reason,
                            agreement_accepted: true,
                            withdrawal: decisions[i].withdrawal.as_deref(),
                        },
                        owned: false,
                    });
                    // A write sets state and reason; a withdrawal keeps them and adds its reason.
                    let (state, reason, withdrawal) = match (&op, existing) {
                        (Op::Write { state, reason, .. }, _) => (*state, format!("reason {reason}"), None),
                        (Op::Withdraw { reason, .. }, Some(i)) => (
                            decisions[i].state,
                            decisions[i].reason.clone(),
                            Some(format!("withdrawn {reason}")),
                        ),
                        // Withdrawing what does not exist creates a withdrawn decision.
                        _ => (RestrictionState::Restricted, "reason 0".to_string(), Some("withdrawn".to_string())),
                    };
                    let new = DecisionWrite {
                        key: key.clone(),
                        customer: "cust",
                        content: DecisionContent {
                            state,
                            reason: &reason,
                            agreement_accepted: true,
                            withdrawal: withdrawal.as_deref(),
                        },
                        owned: false,
                    };
                    match check_decision_write(&h, Some(&customer), old.as_ref(), &new, &decisions) {
                        Ok(WriteAllowed::Authorized(_)) => {
                            match existing {
                                Some(i) => {
                                    decisions[i].state = state;
                                    decisions[i].reason = reason.clone();
                                    decisions[i].withdrawal = withdrawal.clone();
                                    decisions[i].generation += 1;
                                }
                                None => decisions.push(Decision {
                                    key,
                                    customer: "cust".into(),
                                    state,
                                    reason: reason.clone(),
                                    agreement_accepted: true,
                                    withdrawal: withdrawal.clone(),
                                    generation: 1,
                                    created: Timestamp(now),
                                    accepted: None,
                                    rejected_generation: None,
                                    first_seen: None,
                                }),
                            }
                            Some(ISSUERS[*issuer])
                        }
                        // Refused, or nothing the operator wrote changed: nothing happens.
                        Ok(WriteAllowed::SpecUnchanged) | Err(_) => None,
                    }
                }
                Op::Delete { issuer, cleanup } => {
                    let key = ObjectKey::new(&namespace(*issuer), "decision");
                    if let Some(i) = decisions.iter().position(|d| d.key == key) {
                        let user = if *cleanup { CLEANUP_USERS[0] } else { "operator" };
                        let withdrawal = Withdrawal { user, key: key.clone(), customer: "cust" };
                        let from = WithdrawnFrom { in_force: &in_force };
                        if check_withdrawal(&withdrawal, Some(&from)).is_ok() {
                            decisions.remove(i);
                        }
                    }
                    // Nobody acted on the customer's state: a deletion must not change it.
                    None
                }
                Op::ToggleDelegation => {
                    delegated = !delegated;
                    None
                }
            };
            eval = settle(&hierarchy(delegated), &customer, &mut decisions, now);
            if eval.effective.state != before {
                prop_assert!(
                    actor.is_some() && actor == holder.as_deref(),
                    "the state went from {before} to {} after {op:?}, by {actor:?}; the holder was {holder:?}",
                    eval.effective.state
                );
            }
        }
    }
}
