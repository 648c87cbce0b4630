//! The audit: which of a customer's guarded resources are out of line with its current state.
//! Admission sees requests; the audit sees what exists, so that what slipped through (in `warn`
//! or `dryrun` enforcement, during a webhook outage, or before purchase-guard judged the
//! namespace) is found and reported.
//!
//! A finding is a claim about a resource, so each one rests on what the object itself shows:
//! its creation time, the times its managers last wrote its specification, its freeze record.
//! Times are compared strictly: an object created in the same second as the restriction took
//! effect (Kubernetes keeps whole seconds) is not reported.

use crate::admission::{CustomerState, Verdict, decide_purchase};
use crate::freeze::{FrozenRecord, freezes};
use crate::impact::{BillingMode, ImpactMatrix, Operation};
use crate::model::{RestrictionState, Timestamp};
use serde_json::Value;
use std::collections::BTreeSet;

/// How serious a finding is, in the terms of policy reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Out of line for certain: refused in `deny` enforcement, or running while frozen.
    Fail,
    /// Possibly out of line: a change whose content the audit cannot see.
    Warn,
}

impl Severity {
    /// The result as policy reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fail => "fail",
            Severity::Warn => "warn",
        }
    }
}

/// What is out of line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Created after the restriction took effect, and purchases of its billing mode are
    /// blocked (R7).
    CreatedWhileRestricted,
    /// Its specification was written after the restriction took effect by someone other than
    /// purchase-guard: a purchase, renewal or change may have slipped through, or an allowed
    /// use or rename (R7).
    ChangedWhileRestricted,
    /// Pay-per-use, not frozen, while its customer is frozen (R8).
    RunningWhileFrozen,
}

impl Reason {
    pub const ALL: [Reason; 3] = [
        Reason::CreatedWhileRestricted,
        Reason::ChangedWhileRestricted,
        Reason::RunningWhileFrozen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CreatedWhileRestricted => "CreatedWhileRestricted",
            Reason::ChangedWhileRestricted => "ChangedWhileRestricted",
            Reason::RunningWhileFrozen => "RunningWhileFrozen",
        }
    }

    /// The rule the finding breaks.
    pub fn rule(self) -> &'static str {
        match self {
            Reason::CreatedWhileRestricted | Reason::ChangedWhileRestricted => "R7",
            Reason::RunningWhileFrozen => "R8",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Reason::ChangedWhileRestricted => Severity::Warn,
            Reason::CreatedWhileRestricted | Reason::RunningWhileFrozen => Severity::Fail,
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// One resource out of line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub reason: Reason,
    pub message: String,
    /// When the resource went out of line, as far as the object shows (its creation, its last
    /// write, the freeze): the finding's timestamp in reports.
    pub at: Timestamp,
}

/// A time as the object or the status shows it, with its text for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown<'a> {
    pub at: Timestamp,
    pub text: &'a str,
}

/// The customer, as the audit judges its resources.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub matrix: &'a ImpactMatrix,
    pub customer: &'a str,
    /// The customer's state (only a known state is audited).
    pub state: &'a CustomerState,
    /// Since when purchases have been restricted without interruption ([`restricted_since`]);
    /// `None`: not known, nothing is reported as created or changed while restricted.
    pub restricted_since: Option<Shown<'a>>,
    /// When the current freeze began, while the customer is frozen.
    pub frozen_since: Option<Shown<'a>>,
}

/// A guarded object, as the audit reads it.
#[derive(Clone, Copy, Debug)]
pub struct Audited<'a> {
    pub object: &'a Value,
    /// The kind's billing mode for objects without a valid billing-mode label.
    pub default_mode: BillingMode,
    /// `metadata.creationTimestamp`.
    pub created: Option<Shown<'a>>,
    /// The latest write of `spec` by a manager other than purchase-guard: who and when.
    pub spec_written: Option<(&'a str, Shown<'a>)>,
    /// Whether the kind has a freeze action.
    pub freezable: bool,
    /// Why the last freeze pass could not freeze it, when it could not.
    pub freeze_failed: Option<&'a str>,
}

/// Whether the object is controlled by another (a Deployment's ReplicaSets, a ReplicaSet's
/// Pods): its owner is judged and frozen, not it.
pub fn is_controlled(object: &Value) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r.get("controller") == Some(&Value::Bool(true))))
}

/// The finding about one object of the customer, if it is out of line. The most serious one
/// is given: running while frozen, then created while restricted, then changed.
pub fn audit_object(scope: &Scope<'_>, object: &Audited<'_>) -> Option<Finding> {
    let CustomerState::Known { state, .. } = scope.state else {
        return None;
    };
    if is_controlled(object.object) {
        return None;
    }
    // A label that cannot be read counts as pay-per-use, as the webhook and the freeze do.
    let mode = crate::classify::billing_mode_of(object.object, object.default_mode).unwrap_or(BillingMode::PayPerUse);
    let customer = scope.customer;
    if state.freezes_resources() && freezes(mode) {
        let record = FrozenRecord::of(object.object).ok().flatten();
        let frozen = record.as_ref().is_some_and(|r| r.holds(object.object));
        let why = match (object.freezable, object.freeze_failed) {
            (false, _) => {
                Some("its kind has no freeze action configured, so purchase-guard cannot freeze it".to_string())
            }
            (true, Some(failed)) if !frozen => Some(format!("purchase-guard could not freeze it: {failed}")),
            _ => None,
        };
        if let Some(why) = why {
            let since = scope.frozen_since;
            return Some(Finding {
                reason: Reason::RunningWhileFrozen,
                message: format!(
                    "R8: {mode} resource running while customer \"{customer}\" is frozen{}: {why}",
                    since.map(|s| format!(" (since {})", s.text)).unwrap_or_default()
                ),
                at: since.map_or(Timestamp(0), |s| s.at),
            });
        }
    }
    let since = scope.restricted_since.filter(|_| state.restricts_purchases())?;
    if let Some(created) = object.created.filter(|c| c.at > since.at) {
        let purchase = BTreeSet::from([Operation::Purchase]);
        if let Verdict::Deny { message, .. } = decide_purchase(scope.matrix, customer, scope.state, mode, &purchase) {
            return Some(Finding {
                reason: Reason::CreatedWhileRestricted,
                message: format!(
                    "created at {}, after the restriction took effect ({}); admission in deny mode refuses this: {message}",
                    created.text, since.text
                ),
                at: created.at,
            });
        }
    }
    let (manager, written) = object.spec_written.filter(|(_, w)| w.at > since.at)?;
    // Only a kind whose changes the matrix blocks for this billing mode can be out of line.
    let blocked = [
        Operation::Purchase,
        Operation::Renew,
        Operation::ModifySpecifications,
        Operation::Other,
    ]
    .into_iter()
    .any(|o| scope.matrix.blocks(mode, o));
    if !blocked {
        return None;
    }
    Some(Finding {
        reason: Reason::ChangedWhileRestricted,
        message: format!(
            "R7: specification written by \"{manager}\" at {}, after customer \"{customer}\" was restricted ({}); the audit cannot see what changed: purchases, renewals and specification changes of {mode} resources are blocked while it is restricted, uses and renames are not",
            written.text, since.text
        ),
        at: written.at,
    })
}

/// Since when purchases have been restricted without interruption, from the customer's state
/// changes (oldest first) and its current state: the time of the first change of the latest
/// run of restricting states. `None` when the customer is not restricted or no change is
/// recorded. When every recorded change is restricting (the history is bounded), the oldest
/// one is used: later than the truth, so the audit reports less, never more.
pub fn restricted_since<T: Copy>(history: &[(T, RestrictionState)], current: RestrictionState) -> Option<&T> {
    if !current.restricts_purchases() {
        return None;
    }
    let mut since = None;
    for (time, state) in history.iter().rev() {
        if !state.restricts_purchases() {
            break;
        }
        since = Some(time);
    }
    since
}

/// Counts of findings by severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub fail: u32,
    pub warn: u32,
}

impl Counts {
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Counts {
        let mut counts = Counts::default();
        for f in findings {
            match f.reason.severity() {
                Severity::Fail => counts.fail += 1,
                Severity::Warn => counts.warn += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::RestrictionSource;
    use serde_json::json;

    fn known(state: RestrictionState) -> CustomerState {
        CustomerState::Known {
            state,
            source: Some(RestrictionSource::Decision {
                partner: "dist-emea".into(),
                role: Some(crate::model::Role::Distributor),
                reason: "overdue".into(),
            }),
        }
    }

    fn shown(at: i64) -> Shown<'static> {
        Shown {
            at: Timestamp(at),
            text: "t",
        }
    }

    fn object(mode: &str) -> Value {
        json!({"metadata": {"name": "web", "labels": {crate::BILLING_MODE_LABEL: mode}}, "spec": {"replicas": 2}})
    }

    fn audited(object: &Value) -> Audited<'_> {
        Audited {
            object,
            default_mode: BillingMode::PayPerUse,
            created: Some(shown(100)),
            spec_written: None,
            freezable: true,
            freeze_failed: None,
        }
    }

    fn scope<'a>(matrix: &'a ImpactMatrix, state: &'a CustomerState) -> Scope<'a> {
        Scope {
            matrix,
            customer: "acme",
            state,
            restricted_since: Some(shown(50)),
            frozen_since: Some(shown(50)),
        }
    }

    #[test]
    fn created_after_the_restriction_fails_created_before_or_in_the_same_second_does_not() {
        let matrix = ImpactMatrix::default();
        let state = known(RestrictionState::Restricted);
        let o = object("pay-per-use");
        let f = audit_object(&scope(&matrix, &state), &audited(&o)).expect("a finding");
        assert_eq!(f.reason, Reason::CreatedWhileRestricted);
        assert_eq!(f.reason.severity(), Severity::Fail);
        assert_eq!(f.at, Timestamp(100));
        assert!(f.message.contains("R7"), "{}", f.message);
        for created in [10, 50] {
            let mut a = audited(&o);
            a.created = Some(shown(created));
            assert_eq!(audit_object(&scope(&matrix, &state), &a), None, "created at {created}");
        }
    }

    #[test]
    fn nothing_is_out_of_line_for_an_unrestricted_or_unknown_customer() {
        let matrix = ImpactMatrix::default();
        let o = object("pay-per-use");
        for state in [
            known(RestrictionState::Unrestricted),
            CustomerState::Unknown { why: "cold".into() },
        ] {
            assert_eq!(audit_object(&scope(&matrix, &state), &audited(&o)), None);
        }
    }

    #[test]
    fn a_controlled_object_is_judged_through_its_owner() {
        let matrix = ImpactMatrix::default();
        let state = known(RestrictionState::RestrictedAndFrozen);
        let mut o = object("pay-per-use");
        o["metadata"]["ownerReferences"] = json!([{"kind": "Deployment", "name": "web", "controller": true}]);
        assert_eq!(audit_object(&scope(&matrix, &state), &audited(&o)), None);
    }

    #[test]
    fn running_while_frozen_only_when_it_cannot_be_frozen() {
        let matrix = ImpactMatrix::default();
        let state = known(RestrictionState::RestrictedAndFrozen);
        let o = object("pay-per-use");
        let mut a = audited(&o);
        a.created = Some(shown(10));
        // Freezable and the pass froze it (or is freezing it): nothing.
        assert_eq!(audit_object(&scope(&matrix, &state), &a), None);
        a.freeze_failed = Some("forbidden");
        let f = audit_object(&scope(&matrix, &state), &a).expect("a finding");
        assert_eq!(f.reason, Reason::RunningWhileFrozen);
        assert!(f.message.contains("forbidden"), "{}", f.message);
        a.freeze_failed = None;
        a.freezable = false;
        let f = audit_object(&scope(&matrix, &state), &a).expect("a finding");
        assert_eq!(f.reason, Reason::RunningWhileFrozen);
        assert!(f.message.contains("no freeze action"), "{}", f.message);
        // Prepaid resources are never frozen.
        let prepaid = object("yearly-monthly");
        let mut a = audited(&prepaid);
        a.created = Some(shown(10));
        a.freezable = false;
        assert_eq!(audit_object(&scope(&matrix, &state), &a), None);
    }

    #[test]
    fn a_specification_written_after_the_restriction_warns_naming_the_manager() {
        let matrix = ImpactMatrix::default();
        let state = known(RestrictionState::Restricted);
        let o = object("pay-per-use");
        let mut a = audited(&o);
        a.created = Some(shown(10));
        a.spec_written = Some(("kubectl-edit", shown(70)));
        let f = audit_object(&scope(&matrix, &state), &a).expect("a finding");
        assert_eq!(f.reason, Reason::ChangedWhileRestricted);
        assert_eq!(f.reason.severity(), Severity::Warn);
        assert!(f.message.contains("kubectl-edit"), "{}", f.message);
        a.spec_written = Some(("kubectl-edit", shown(40)));
        assert_eq!(audit_object(&scope(&matrix, &state), &a), None);
    }

    #[test]
    fn restricted_since_is_the_start_of_the_latest_restricting_run() {
        use RestrictionState::*;
        let h = [
            (1, Restricted),
            (2, Unrestricted),
            (3, Restricted),
            (4, RestrictedAndFrozen),
        ];
        assert_eq!(restricted_since(&h, RestrictedAndFrozen), Some(&3));
        assert_eq!(restricted_since(&h[..2], Unrestricted), None);
        assert_eq!(restricted_since(&h[..1], Restricted), Some(&1));
        assert_eq!(restricted_since::<i32>(&[], Restricted), None);
    }

    #[test]
    fn counts_by_severity() {
        let f = |reason| Finding {
            reason,
            message: String::new(),
            at: Timestamp(0),
        };
        let all = [
            f(Reason::CreatedWhileRestricted),
            f(Reason::RunningWhileFrozen),
            f(Reason::ChangedWhileRestricted),
        ];
        assert_eq!(Counts::of(&all), Counts { fail: 2, warn: 1 });
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }
}
