//! Property tests for the invariants of the policy core (R1, R2, R3, R7).

use proptest::prelude::*;
use purchase_guard_policy::*;
use std::collections::BTreeSet;

mod fixtures;
use fixtures::settle;

/// A generated world: a hierarchy, one Reseller-model customer and its decisions, settled the
/// way the controller leaves it (every verdict written back into the decisions' status).
#[derive(Clone, Debug)]
struct World {
    hierarchy: Hierarchy,
    customer: Customer,
    decisions: Vec<Decision>,
    now: i64,
}

fn partners(distributors: usize, resellers: usize) -> Vec<Partner> {
    let mut v: Vec<Partner> = (0..distributors)
        .map(|i| Partner::distributor(&format!("d{i}"), &format!("ns-d{i}")))
        .collect();
    v.extend(
        (0..resellers)
            .map(|j| Partner::reseller(&format!("r{j}"), &format!("d{}", j % distributors), &format!("ns-r{j}"))),
    );
    v
}

fn state() -> impl Strategy<Value = RestrictionState> {
    prop::sample::select(RestrictionState::ALL.to_vec())
}

fn world() -> impl Strategy<Value = World> {
    (1usize..=3, 1usize..=5)
        .prop_flat_map(|(nd, nr)| {
            let delegated = prop::collection::vec(any::<bool>(), nr);
            let reseller = 0..nr;
            // Decisions: (issuer index into partners, state, reason id, created, when it was
            // judged). Issuers range over every partner plus one unknown namespace.
            let decisions = prop::collection::vec((0..nd + nr + 1, state(), 0u8..4, 0i64..50, 0i64..50), 0..6);
            (Just(nd), Just(nr), delegated, reseller, decisions)
        })
        .prop_map(|(nd, nr, delegated, reseller, raw)| {
            let partners = partners(nd, nr);
            let delegations = delegated
                .iter()
                .enumerate()
                .filter(|(_, d)| **d)
                .map(|(j, _)| Delegation {
                    key: ObjectKey::new(&format!("ns-d{}", j % nd), &format!("delegate-r{j}")),
                    reseller: format!("r{j}"),
                    created: Timestamp(0),
                    revoked: false,
                })
                .collect();
            let hierarchy = Hierarchy {
                partners: partners.clone(),
                delegations,
            };
            let customer = Customer::of_reseller("cust", &format!("r{reseller}"));
            let mut decisions = Vec::new();
            let mut now = 0;
            for (i, (issuer, state, reason, created, _)) in raw.into_iter().enumerate() {
                let namespace = partners
                    .get(issuer)
                    .map(|p| p.namespace.clone())
                    .unwrap_or_else(|| "stray".into());
                decisions.push(Decision {
                    key: ObjectKey::new(&namespace, &format!("dec-{i}")),
                    customer: "cust".into(),
                    state,
                    reason: format!("reason {reason}"),
                    agreement_accepted: true,
                    withdrawal: None,
                    generation: 1,
                    created: Timestamp(created),
                    accepted: None,
                    rejected_generation: None,
                    first_seen: None,
                });
                // Each decision is judged as it arrives, as the controller would.
                now = now.max(created) + 1;
                settle(&hierarchy, &customer, &mut decisions, now);
            }
            World {
                hierarchy,
                customer,
                decisions,
                now: now + 1,
            }
        })
}

fn holder_of(w: &World) -> AuthorityHolder {
    authority_holder(&w.hierarchy, &w.customer).expect("generated customers have a complete hierarchy")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// R2, R3: exactly one partner may act on a Reseller-model customer.
    #[test]
    fn exactly_one_authority_holder(w in world()) {
        let allowed: Vec<&str> = w.hierarchy.partners.iter()
            .filter(|p| check_issuer_authority(&w.hierarchy, &p.namespace, "cust", Some(&w.customer)).is_ok())
            .map(|p| p.name.as_str())
            .collect();
        let holder = holder_of(&w).partner;
        prop_assert_eq!(allowed, vec![holder.as_str()]);
    }

    /// R3: a decision created or changed by a party without authority changes nothing.
    #[test]
    fn decision_without_authority_never_changes_effective_state(
        w in world(), outsider in any::<prop::sample::Index>(), new_state in state(), change_existing in any::<bool>()
    ) {
        let before = evaluate_customer(&w.hierarchy, &w.customer, &w.decisions, Timestamp(w.now));
        let holder = holder_of(&w).partner;
        let outsiders: Vec<&Partner> = w.hierarchy.partners.iter().filter(|p| p.name != holder).collect();
        prop_assume!(!outsiders.is_empty());
        let outsider = outsiders[outsider.index(outsiders.len())];
        let mut decisions = w.decisions.clone();
        let existing = decisions.iter_mut().find(|d| d.key.namespace == outsider.namespace);
        match existing {
            Some(d) if change_existing => {
                d.state = new_state;
                d.reason = format!("{} changed", d.reason);
                d.generation += 1;
            }
            _ => decisions.push(Decision {
                key: ObjectKey::new(&outsider.namespace, "intruder"),
                customer: "cust".into(),
                state: new_state,
                reason: "no authority".into(),
                agreement_accepted: true,
                withdrawal: None,
                generation: 1,
                created: Timestamp(w.now),
                accepted: None,
                rejected_generation: None,
                first_seen: None,
            }),
        }
        let after = evaluate_customer(&w.hierarchy, &w.customer, &decisions, Timestamp(w.now + 1));
        prop_assert_eq!(after.effective.state, before.effective.state);
    }

    /// R3: revoking the delegation returns authority to the distributor.
    #[test]
    fn revoking_delegation_returns_authority_to_distributor(w in world()) {
        let reseller = w.customer.reseller.clone().unwrap_or_default();
        let mut delegated = w.hierarchy.clone();
        delegated.delegations.retain(|d| d.reseller != reseller);
        let distributor = delegated.partner(&reseller).and_then(|p| p.distributor.clone()).unwrap_or_default();
        let dist_ns = delegated.partner(&distributor).map(|p| p.namespace.clone()).unwrap_or_default();
        delegated.delegations.push(Delegation { key: ObjectKey::new(&dist_ns, "grant"), reseller: reseller.clone(), created: Timestamp(1), revoked: false });
        prop_assert_eq!(authority_holder(&delegated, &w.customer).map(|h| h.partner), Ok(reseller.clone()));
        delegated.delegations.retain(|d| d.reseller != reseller);
        let holder = authority_holder(&delegated, &w.customer).map(|h| (h.partner, h.role));
        prop_assert_eq!(holder, Ok((distributor, Role::Distributor)));
    }

    /// R1: without decisions a Reseller-model customer is restricted.
    #[test]
    fn no_decisions_means_restricted(w in world()) {
        let eval = evaluate_customer(&w.hierarchy, &w.customer, &[], Timestamp(w.now));
        prop_assert_eq!(eval.effective, Effective { state: RestrictionState::Restricted, basis: Basis::Default });
    }

    /// R7: a new restriction by the authority holder never allows an operation that was blocked.
    #[test]
    fn adding_a_restriction_never_allows_what_was_blocked(
        w in world(),
        restriction in prop::sample::select(vec![RestrictionState::Restricted, RestrictionState::RestrictedAndFrozen]),
        mode in prop::sample::select(BillingMode::ALL.to_vec()),
        ops in prop::collection::btree_set(prop::sample::select(Operation::ALL.to_vec()), 0..4),
        blocked_sets in prop::collection::vec(prop::collection::btree_set(prop::sample::select(Operation::ALL.to_vec()), 0..7), 3),
    ) {
        // Any well-formed matrix, not only the default one.
        let impact = |blocked: &BTreeSet<Operation>| ModeImpact {
            allowed: Operation::ALL.iter().copied().filter(|o| !blocked.contains(o)).collect(),
            blocked: blocked.clone(),
        };
        let matrix = ImpactMatrix { yearly_monthly: impact(&blocked_sets[0]), pay_per_use: impact(&blocked_sets[1]), spot: impact(&blocked_sets[2]) };
        prop_assert!(matrix.validate().is_ok());
        let verdict = |decisions: &[Decision], now: i64| {
            let eval = evaluate_customer(&w.hierarchy, &w.customer, decisions, Timestamp(now));
            let state = CustomerState::Known { state: eval.effective.state, source: None };
            decide_purchase(&matrix, "cust", &state, mode, &ops).is_allowed()
        };
        let before = verdict(&w.decisions, w.now);
        let holder = holder_of(&w);
        let ns = w.hierarchy.partner(&holder.partner).map(|p| p.namespace.clone()).unwrap_or_default();
        let mut decisions = w.decisions.clone();
        match decisions.iter_mut().filter(|d| d.key.namespace == ns).min_by_key(|d| (d.created, d.key.clone())) {
            Some(d) => {
                d.state = restriction;
                d.reason = format!("{} then restricted", d.reason);
                d.generation += 1;
            }
            None => decisions.push(Decision {
                key: ObjectKey::new(&ns, "restrict"),
                customer: "cust".into(),
                state: restriction,
                reason: "restricted".into(),
                agreement_accepted: true,
                withdrawal: None,
                generation: 1,
                created: Timestamp(w.now),
                accepted: None,
                rejected_generation: None,
                first_seen: None,
            }),
        }
        let after = verdict(&decisions, w.now + 1);
        prop_assert!(before || !after, "blocked before, allowed after restricting");
        prop_assert!(!after || ops.iter().all(|o| !matrix.blocks(mode, *o)));
    }

    /// R3: creating or revoking a delegation alone never flips the customer's effective state.
    #[test]
    fn handover_never_flips_effective_state(w in world()) {
        let before = evaluate_customer(&w.hierarchy, &w.customer, &w.decisions, Timestamp(w.now));
        let reseller = w.customer.reseller.clone().unwrap_or_default();
        let mut handed = w.hierarchy.clone();
        if handed.delegations.iter().any(|d| d.reseller == reseller) {
            handed.delegations.retain(|d| d.reseller != reseller);
        } else {
            let distributor = handed.partner(&reseller).and_then(|p| p.distributor.clone()).unwrap_or_default();
            let ns = handed.partner(&distributor).map(|p| p.namespace.clone()).unwrap_or_default();
            handed.delegations.push(Delegation { key: ObjectKey::new(&ns, "handover"), reseller: reseller.clone(), created: Timestamp(w.now), revoked: false });
        }
        prop_assert_ne!(authority_holder(&handed, &w.customer).map(|h| h.partner), Ok(holder_of(&w).partner));
        let after = evaluate_customer(&handed, &w.customer, &w.decisions, Timestamp(w.now + 1));
        prop_assert_eq!(after.effective.state, before.effective.state);
        let in_force = |e: &CustomerEvaluation| e.decisions.iter().position(|v| v.in_force);
        prop_assert_eq!(in_force(&after), in_force(&before));
    }

    /// At most one decision is in force, and it is an accepted or standing one.
    #[test]
    fn at_most_one_decision_in_force(w in world()) {
        let eval = evaluate_customer(&w.hierarchy, &w.customer, &w.decisions, Timestamp(w.now));
        let in_force: Vec<&DecisionVerdict> = eval.decisions.iter().filter(|v| v.in_force).collect();
        prop_assert!(in_force.len() <= 1);
        for v in in_force {
            let not_accepted = matches!(v.acceptance, Acceptance::NotAccepted { .. });
            prop_assert!(!not_accepted, "a decision that is not accepted is in force");
        }
    }
}
