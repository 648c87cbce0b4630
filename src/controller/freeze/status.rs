//! The freeze part of a customer's status, from what a pass did: `status.freeze` and the
//! conditions `ResourcesFrozen` and `ReleaseDue`. Pure functions; `now` is a parameter. A
//! condition says only what was done: `ResourcesFrozen=True` once every pay-per-use resource of
//! a freezable kind is frozen, not when the decision asks for it.

use super::Report;
use crate::api::Condition;
use crate::api::FreezeStatus;
use crate::controller::status::condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use purchase_guard_policy as policy;
use std::time::Duration;

/// A freeze in progress: when it began and when its retention ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub since: Time,
    pub retention_ends: Time,
}

impl Window {
    /// What the freeze asks of the resources at `now`.
    pub fn desired(&self, now: &Time, why: &str) -> policy::Desired {
        policy::Desired::Frozen {
            since: self.since.0.to_string(),
            why: why.into(),
            release_due: now.0 >= self.retention_ends.0,
        }
    }

    /// How long until retention ends; `None` once it has.
    pub fn remaining(&self, now: &Time) -> Option<Duration> {
        let left = self.retention_ends.0.duration_since(now.0);
        Duration::try_from(left).ok().filter(|d| !d.is_zero())
    }
}

/// The current freeze of a customer whose state freezes resources: the one recorded in its
/// status while it lasts (its start is kept across passes, restarts and leaders), else one that
/// begins `now`. Retention is counted from its start. `None`: not frozen.
pub fn window(previous: Option<&FreezeStatus>, frozen: bool, retention: Duration, now: &Time) -> Option<Window> {
    if !frozen {
        return None;
    }
    let since = previous
        .filter(|p| p.unfrozen.is_none())
        .map(|p| p.since.clone())
        .unwrap_or_else(|| now.clone());
    let span = jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX);
    let ends = since.0.checked_add(span).unwrap_or(jiff::Timestamp::MAX);
    Some(Window {
        retention_ends: Time(ends),
        since,
    })
}

/// Whether a pass did all it had to.
fn complete(report: &Report) -> bool {
    report.failed.is_empty() && report.pending_kinds.is_empty()
}

/// `status.freeze` after a pass: counts of this freeze (released ones add up across passes),
/// or of the last one once unfrozen (restored ones add up; `unfrozen` set when all are).
pub fn freeze_status(
    previous: Option<&FreezeStatus>,
    window: Option<&Window>,
    report: &Report,
    now: &Time,
) -> Option<FreezeStatus> {
    let failed = u32::try_from(report.failed.len()).unwrap_or(u32::MAX);
    match window {
        Some(w) => {
            let same = previous.filter(|p| p.unfrozen.is_none() && p.since == w.since);
            Some(FreezeStatus {
                since: w.since.clone(),
                retention_ends: w.retention_ends.clone(),
                unfrozen: None,
                frozen: report.frozen,
                release_due: report.release_due,
                released: same.map_or(0, |p| p.released) + report.released,
                restored: 0,
                failed,
            })
        }
        None => {
            let p = previous?;
            let unfrozen = p.unfrozen.clone().or_else(|| complete(report).then(|| now.clone()));
            Some(FreezeStatus {
                since: p.since.clone(),
                retention_ends: p.retention_ends.clone(),
                unfrozen,
                frozen: 0,
                release_due: 0,
                released: p.released,
                restored: p.restored + report.restored,
                failed,
            })
        }
    }
}

/// Who froze the customer: the role and name of the partner whose decision is in force.
pub type FrozenBy<'a> = Option<(policy::Role, &'a str)>;

/// Who froze the customer, and what the freeze settings add to the messages.
pub struct Context<'a> {
    pub by: FrozenBy<'a>,
    /// Guarded kinds without a freeze action (their resources are never frozen).
    pub unfreezable: &'a [String],
    /// Whether release (deletion at the end of retention) is enabled.
    pub release: bool,
}

/// `ResourcesFrozen`, and `ReleaseDue` while frozen.
pub fn freeze_conditions(
    previous: &[Condition],
    status: Option<&FreezeStatus>,
    window: Option<&Window>,
    report: &Report,
    settings: &Context<'_>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let not_yet = || {
        let mut parts: Vec<String> = report.failed.iter().take(3).cloned().collect();
        if report.failed.len() > 3 {
            parts.push(format!("and {} more", report.failed.len() - 3));
        }
        if !report.pending_kinds.is_empty() {
            parts.push(format!(
                "not known yet (not served, or not listed yet): {}",
                report.pending_kinds.join(", ")
            ));
        }
        parts.join("; ")
    };
    let unfreezable = if settings.unfreezable.is_empty() {
        String::new()
    } else {
        format!(
            "; guarded kinds without a freeze action are not frozen: {}",
            settings.unfreezable.join(", ")
        )
    };
    let (frozen, reason, message) = match (window, status) {
        (Some(w), Some(s)) if complete(report) => {
            let (reason, who) = match settings.by {
                Some((role, issuer)) => (
                    format!(
                        "FrozenBy{}",
                        match role {
                            policy::Role::Distributor => "Distributor",
                            policy::Role::Reseller => "Reseller",
                        }
                    ),
                    format!(" by {role} \"{issuer}\""),
                ),
                None => ("Frozen".to_string(), String::new()),
            };
            (
                true,
                reason,
                format!(
                    "{} pay-per-use resources are frozen{who} since {} (R8); retention ends {}{unfreezable}",
                    s.frozen, w.since.0, w.retention_ends.0
                ),
            )
        }
        (Some(_), s) => (
            false,
            "Freezing".to_string(),
            format!(
                "the customer is RestrictedAndFrozen; {} resources frozen so far, not yet: {}",
                s.map_or(0, |s| s.frozen),
                not_yet()
            ),
        ),
        (None, Some(s)) if complete(report) => (
            false,
            "Unfrozen".to_string(),
            format!(
                "unfrozen at {} (R9): {} resources restored as they were; {} released at the end of retention are gone and were not recreated",
                s.unfrozen.as_ref().unwrap_or(now).0,
                s.restored,
                s.released
            ),
        ),
        (None, Some(s)) => (
            false,
            "Unfreezing".to_string(),
            format!("{} resources restored so far, not yet: {}", s.restored, not_yet()),
        ),
        (None, None) if report.failed.is_empty() => {
            (false, "NotFrozen".to_string(), "resources are not frozen".to_string())
        }
        (None, None) => (
            false,
            "NotFrozen".to_string(),
            format!(
                "resources are not frozen; resources carrying a freeze record could not be restored: {}",
                not_yet()
            ),
        ),
    };
    let mut conditions = vec![condition(
        previous,
        "ResourcesFrozen",
        frozen,
        &reason,
        message,
        generation,
        now,
    )];
    if let (Some(w), Some(s)) = (window, status) {
        let (due, reason, message) = if s.release_due > 0 {
            (
                true,
                "RetentionEnded",
                format!(
                    "retention ended at {}: {} frozen pay-per-use resources await release; release is not enabled (--release-frozen, chart value freeze.release.enabled), so nothing was deleted",
                    w.retention_ends.0, s.release_due
                ),
            )
        } else if s.released > 0 {
            (
                false,
                "Released",
                format!(
                    "retention ended at {}: {} frozen resources were released (deleted)",
                    w.retention_ends.0, s.released
                ),
            )
        } else if w.remaining(now).is_none() {
            (
                false,
                "RetentionEnded",
                format!(
                    "retention ended at {}: no frozen resource awaits release",
                    w.retention_ends.0
                ),
            )
        } else {
            (
                false,
                "RetentionRunning",
                format!(
                    "retention ends at {}{}",
                    w.retention_ends.0,
                    if settings.release {
                        "; frozen resources are then released (deleted)"
                    } else {
                        "; release is not enabled: nothing will be deleted"
                    }
                ),
            )
        };
        conditions.push(condition(previous, "ReleaseDue", due, reason, message, generation, now));
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).expect("a time"))
    }

    fn report(frozen: u32) -> Report {
        Report {
            frozen,
            ..Report::default()
        }
    }

    fn of<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).expect(type_)
    }

    const SETTINGS: Context<'static> = Context {
        by: None,
        unfreezable: &[],
        release: false,
    };

    #[test]
    fn a_freeze_keeps_its_start_and_claims_frozen_only_once_every_resource_is() {
        let day = Duration::from_secs(86_400);
        let first = window(None, true, day, &time(100)).expect("frozen");
        assert_eq!(
            (first.since.clone(), first.retention_ends.clone()),
            (time(100), time(86_500))
        );
        let settings = Context {
            by: Some((policy::Role::Reseller, "reseller-alpha")),
            ..SETTINGS
        };
        // Half-way: one resource could not be frozen yet.
        let half = Report {
            frozen: 3,
            failed: vec!["deployments.apps acme/web: freeze failed: conflict".into()],
            ..Report::default()
        };
        let status = freeze_status(None, Some(&first), &half, &time(100));
        let conditions = freeze_conditions(
            &[],
            status.as_ref(),
            Some(&first),
            &half,
            &settings,
            Some(1),
            &time(100),
        );
        let frozen = of(&conditions, "ResourcesFrozen");
        assert_eq!((frozen.status.as_str(), frozen.reason.as_str()), ("False", "Freezing"));
        assert!(frozen.message.contains("acme/web"), "{}", frozen.message);
        // A later pass (or a new leader) keeps the start; all frozen now.
        let later = window(status.as_ref(), true, day, &time(500)).expect("frozen");
        assert_eq!(later, first);
        let status = freeze_status(status.as_ref(), Some(&later), &report(4), &time(500));
        let conditions = freeze_conditions(
            &[],
            status.as_ref(),
            Some(&later),
            &report(4),
            &settings,
            Some(1),
            &time(500),
        );
        let frozen = of(&conditions, "ResourcesFrozen");
        assert_eq!(
            (frozen.status.as_str(), frozen.reason.as_str()),
            ("True", "FrozenByReseller")
        );
        assert!(
            frozen
                .message
                .starts_with("4 pay-per-use resources are frozen by reseller \"reseller-alpha\"")
        );
        assert_eq!(of(&conditions, "ReleaseDue").reason, "RetentionRunning");
        assert_eq!(later.remaining(&time(500)), Some(Duration::from_secs(86_000)));
        assert_eq!(
            later.desired(&time(86_500), "fraud"),
            policy::Desired::Frozen {
                since: time(100).0.to_string(),
                why: "fraud".into(),
                release_due: true
            }
        );
    }

    #[test]
    fn retention_end_without_release_says_release_due_and_unfreeze_reports_released_ones() {
        let w = window(None, true, Duration::from_secs(10), &time(0)).expect("frozen");
        let due = Report {
            frozen: 2,
            release_due: 2,
            ..Report::default()
        };
        let status = freeze_status(None, Some(&w), &due, &time(20));
        let conditions = freeze_conditions(&[], status.as_ref(), Some(&w), &due, &SETTINGS, None, &time(20));
        let release = of(&conditions, "ReleaseDue");
        assert_eq!(
            (release.status.as_str(), release.reason.as_str()),
            ("True", "RetentionEnded")
        );
        assert!(release.message.contains("nothing was deleted"));
        // Released by an earlier pass (release enabled then), one left: the count adds up.
        let released = Report {
            frozen: 1,
            released: 1,
            ..Report::default()
        };
        let status = freeze_status(status.as_ref(), Some(&w), &released, &time(21));
        let status = freeze_status(status.as_ref(), Some(&w), &report(1), &time(22));
        assert_eq!(status.as_ref().map(|s| s.released), Some(1));
        // Unfreeze: the last one restored; released ones are reported gone.
        let thawed = Report {
            restored: 1,
            ..Report::default()
        };
        let status = freeze_status(status.as_ref(), None, &thawed, &time(30));
        let s = status.as_ref().expect("kept");
        assert_eq!((s.restored, s.released, s.unfrozen.clone()), (1, 1, Some(time(30))));
        let conditions = freeze_conditions(&[], status.as_ref(), None, &thawed, &SETTINGS, None, &time(30));
        assert_eq!(conditions.len(), 1, "ReleaseDue only while frozen");
        let frozen = of(&conditions, "ResourcesFrozen");
        assert_eq!(frozen.reason, "Unfrozen");
        assert!(
            frozen.message.contains("1 released at the end of retention are gone"),
            "{}",
            frozen.message
        );
        // A new freeze later starts a new window.
        let again = window(status.as_ref(), true, Duration::from_secs(10), &time(40)).expect("frozen");
        assert_eq!(again.since, time(40));
    }

    #[test]
    fn retention_ended_with_nothing_frozen_does_not_say_it_is_running() {
        let w = window(None, true, Duration::from_secs(10), &time(0)).expect("frozen");
        let status = freeze_status(None, Some(&w), &Report::default(), &time(5));
        let running = freeze_conditions(
            &[],
            status.as_ref(),
            Some(&w),
            &Report::default(),
            &SETTINGS,
            None,
            &time(5),
        );
        assert_eq!(of(&running, "ReleaseDue").reason, "RetentionRunning");
        let status = freeze_status(status.as_ref(), Some(&w), &Report::default(), &time(11));
        let ended = freeze_conditions(
            &[],
            status.as_ref(),
            Some(&w),
            &Report::default(),
            &SETTINGS,
            None,
            &time(11),
        );
        let release = of(&ended, "ReleaseDue");
        assert_eq!(
            (release.status.as_str(), release.reason.as_str()),
            ("False", "RetentionEnded")
        );
        assert!(
            release.message.contains("no frozen resource awaits release"),
            "{}",
            release.message
        );
    }

    #[test]
    fn a_customer_never_frozen_is_not_frozen() {
        let conditions = freeze_conditions(&[], None, None, &Report::default(), &SETTINGS, None, &time(1));
        assert_eq!(of(&conditions, "ResourcesFrozen").reason, "NotFrozen");
        assert_eq!(freeze_status(None, None, &Report::default(), &time(1)), None);
    }
}
