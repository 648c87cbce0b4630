//! Around every reconcile: followers skip, every cache is listed first, a span and a timer
//! per object, and retries with exponential backoff after failures.

use super::context::{Context, Error};
use super::metrics::Kind;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// The delay before the `failures`-th retry: 1 s, doubling up to 256 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(8))
}

/// The delay before reconciling again after a status write found the object changed.
pub const STALE_RETRY: Duration = Duration::from_millis(200);

/// The key of an object in the failure counts: kind, namespace, name.
fn failure_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.name_any()
    )
}

/// Runs one reconcile of `obj` in a span, measured, on the leader only (followers keep their
/// caches warm and reconcile everything when they become the leader). A success resets the
/// object's failure count.
pub async fn reconcile<K, F, Fut>(kind: Kind, obj: Arc<K>, ctx: Arc<Context>, inner: F) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    if !*ctx.leader.borrow() {
        return Ok(Action::await_change());
    }
    // A controller is triggered by its own store as soon as that store is listed; judging
    // before the others are would use a partial hierarchy (and could record a decision as
    // made without authority for good).
    if ctx.synced.clone().wait_for(|synced| *synced).await.is_err() {
        // Stopping before the caches synced.
        return Ok(Action::await_change());
    }
    let key = failure_key(obj.as_ref());
    let span = tracing::info_span!(
        "reconcile",
        kind = kind.name(),
        object = %key,
        outcome = tracing::field::Empty
    );
    let mut timer = ctx.metrics.reconcile(kind);
    let result = inner(obj, ctx.clone()).instrument(span.clone()).await;
    match &result {
        Ok(_) => {
            span.record("outcome", "ok");
            ctx.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        }
        Err(e) => {
            span.record("outcome", e.kind());
            if !matches!(e, Error::Conflict) {
                timer.failed();
            }
        }
    }
    result
}

/// After a failed reconcile: count the failure and retry with backoff (a stale read is
/// retried at once and not counted).
pub fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = failure_key(obj.as_ref());
    if matches!(error, Error::Conflict) {
        // Not a failure: the cache is behind a write it will see shortly (usually our own).
        tracing::debug!(object = %key, retry_in = ?STALE_RETRY, "stale object; reconciling again");
        return Action::requeue(STALE_RETRY);
    }
    let failures = {
        let mut failures = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let delay = backoff(failures);
    tracing::warn!(%error, object = %key, failures, retry_in = ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 256]);
    }
}
