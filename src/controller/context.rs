//! What every reconcile shares, and the one error type of the controllers.

use super::Metrics;
use crate::index::Stores;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::runtime::events::Recorder;
use purchase_guard_policy as policy;
use std::sync::Arc;
use std::time::Duration;

/// The field manager of the controllers' writes, and the reporting controller of their events.
pub const MANAGER: &str = "purchase-guard";

/// Errors of a reconcile; each is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot encode a status: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the status write did not complete within {0:?}")]
    Timeout(Duration),
    /// The status was computed from an object version that is no longer the latest (the
    /// cache had not yet seen a newer write): nothing was written, the reconcile runs again.
    #[error("the object changed since it was read; reconciling again from the newer version")]
    Conflict,
}

impl Error {
    /// A short label for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Encode(_) => "encode",
            Error::Timeout(_) => "timeout",
            Error::Conflict => "conflict",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for exponential backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Whether this replica holds the lease; only the leader writes.
    pub leader: tokio::sync::watch::Receiver<bool>,
    /// Whether every store holds its first full list; no reconcile runs before.
    pub synced: tokio::sync::watch::Receiver<bool>,
    pub client: Client,
    pub stores: Stores,
    pub recorder: Recorder,
    /// The freeze settings and the caches of the freezable kinds (R8, R9).
    pub freezer: Arc<super::freeze::Freezer>,
    /// The audit's settings and the cache of the reports it wrote.
    pub auditor: Arc<super::audit::Auditor>,
    /// The clock, replaceable in tests.
    pub now: fn() -> jiff::Timestamp,
}

impl Context {
    /// Now for the policy core (microseconds: decisions accepted within the same second stay
    /// ordered).
    pub fn now_micros(&self) -> policy::Timestamp {
        policy::Timestamp((self.now)().as_microsecond())
    }

    /// Now for conditions and history (seconds, as Kubernetes writes times).
    pub fn now(&self) -> Time {
        let now = (self.now)();
        Time(now.round(jiff::Unit::Second).unwrap_or(now))
    }
}
