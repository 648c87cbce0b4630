//! The conditions GitOps tools read (the kstatus conventions of sigs.k8s.io/cli-utils, which
//! Flux, Helm 4's `--wait` and `kubectl wait` follow): `Ready`, `Reconciling` and `Stalled`,
//! on every kind, next to the domain conditions. A restricted customer is current: being
//! restricted is a state purchase-guard reached, not a failure.

use super::condition;
use crate::api::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// How far purchase-guard got with an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The object is as its spec asks: `Ready=True`.
    Current { reason: String, message: String },
    /// purchase-guard is working on it and will get there by itself: `Reconciling=True`.
    InProgress { reason: String, message: String },
    /// It cannot get there without a change by someone: `Stalled=True`, with why.
    Failed { reason: String, message: String },
}

impl Progress {
    pub fn current(reason: &str, message: impl Into<String>) -> Progress {
        Progress::Current {
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn in_progress(reason: &str, message: impl Into<String>) -> Progress {
        Progress::InProgress {
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn failed(reason: &str, message: impl Into<String>) -> Progress {
        Progress::Failed {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// `Ready`, `Reconciling` and `Stalled` for `progress`.
pub fn kstatus_conditions(
    previous: &[Condition],
    progress: &Progress,
    generation: Option<i64>,
    now: &Time,
) -> [Condition; 3] {
    let (ready, reconciling, stalled, reason, message) = match progress {
        Progress::Current { reason, message } => (true, false, false, reason, message),
        Progress::InProgress { reason, message } => (false, true, false, reason, message),
        Progress::Failed { reason, message } => (false, false, true, reason, message),
    };
    fn quiet<'a>(flag: bool, reason: &'a str, when: &'a str) -> &'a str {
        if flag { reason } else { when }
    }
    [
        condition(previous, "Ready", ready, reason, message.clone(), generation, now),
        condition(
            previous,
            "Reconciling",
            reconciling,
            quiet(reconciling, reason, "Reconciled"),
            if reconciling {
                message.clone()
            } else {
                "purchase-guard has nothing left to do for this generation".into()
            },
            generation,
            now,
        ),
        condition(
            previous,
            "Stalled",
            stalled,
            quiet(stalled, reason, "NotStalled"),
            if stalled {
                message.clone()
            } else {
                "nothing stops this object from being reconciled".into()
            },
            generation,
            now,
        ),
    ]
}
