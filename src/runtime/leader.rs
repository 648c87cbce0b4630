//! Leader election on a Lease: every replica keeps its caches warm and serves admission; only
//! the leader reconciles. Stopping releases the lease so that another replica takes over at
//! once.

use crate::controller;
use std::sync::Arc;
use std::time::Duration;

/// The Lease and this replica's part in it.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    /// Seconds a lease lasts without renewal.
    pub duration: u64,
    /// Seconds before expiry the leader renews.
    pub grace: u64,
}

/// Why leader election cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up leader election on Lease {namespace}/{name}: {source}")]
pub struct LeaseError {
    namespace: String,
    name: String,
    source: kube_lease_manager::LeaseManagerError,
}

/// The tasks of a running election: the forwarder of the lease manager's channel, and the
/// manager itself.
type Tasks = (
    tokio::task::JoinHandle<tokio::sync::watch::Receiver<bool>>,
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
);

/// A running election: whether this replica leads, as a watch.
pub struct Election {
    pub leading: tokio::sync::watch::Receiver<bool>,
    stop: Option<Tasks>,
}

impl Election {
    /// No election: this replica always leads.
    pub fn always(metrics: &controller::Metrics) -> Self {
        metrics.set_leader(true);
        Election {
            leading: tokio::sync::watch::channel(true).1,
            stop: None,
        }
    }

    /// Takes part in the election on the Lease.
    pub async fn join(
        client: kube::Client,
        lease: &LeaseOptions,
        metrics: Arc<controller::Metrics>,
    ) -> Result<Self, LeaseError> {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client, &lease.name)
            .with_namespace(&lease.namespace)
            .with_identity(&lease.identity)
            .with_duration(lease.duration)
            .with_grace(lease.grace)
            .with_field_manager(controller::MANAGER)
            .build()
            .await
            .map_err(|source| LeaseError {
                namespace: lease.namespace.clone(),
                name: lease.name.clone(),
                source,
            })?;
        let (mut channel, task) = manager.watch().await;
        let (leader_tx, leading) = tokio::sync::watch::channel(false);
        let identity = lease.identity.clone();
        let forward = tokio::spawn(async move {
            loop {
                let leads = *channel.borrow_and_update();
                metrics.set_leader(leads);
                if leader_tx.send(leads).is_err() {
                    return channel;
                }
                if leads {
                    tracing::info!(%identity, "leading: reconciling");
                } else {
                    tracing::info!(%identity, "not the leader: caches only");
                }
                if channel.changed().await.is_err() {
                    let _ = leader_tx.send(false);
                    return channel;
                }
            }
        });
        Ok(Election {
            leading,
            stop: Some((forward, task)),
        })
    }

    /// Leaves the election, releasing the lease if this replica holds it.
    pub async fn leave(self) {
        let Some((forward, task)) = self.stop else {
            return;
        };
        // Dropping the forwarder drops the lease channel, which stops the manager.
        forward.abort();
        let _ = forward.await;
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(manager))) => {
                if let Err(e) = manager.release().await {
                    tracing::warn!(error = %e, "cannot release the lease");
                }
            }
            _ => tracing::warn!("the lease manager did not stop in time"),
        }
    }
}

/// Whether the Lease has a live holder at `now`: `Ok(holder)` when it was renewed within its
/// duration, otherwise why not.
pub fn live_holder(lease: &k8s_openapi::api::coordination::v1::Lease, now: jiff::Timestamp) -> Result<String, String> {
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
    let Some(holder) = holder else {
        return Err("nobody holds it".into());
    };
    let duration = spec.and_then(|s| s.lease_duration_seconds).unwrap_or(0);
    let Some(renewed) = spec.and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref())) else {
        return Err(format!("{holder:?} holds it but never renewed it"));
    };
    let age = now.duration_since(renewed.0);
    if age.as_secs() > i64::from(duration) {
        return Err(format!(
            "{holder:?} holds it but last renewed it {}s ago, over its {duration}s duration",
            age.as_secs()
        ));
    }
    Ok(holder)
}

/// Watches the Lease from every replica, leader or not: when no replica holds a live lease,
/// sets `purchase_guard_leader_missing` and logs at warn (once per outage), since statuses,
/// events and guard labels stop moving then. Admission is not affected: every replica judges
/// from its own caches. Checks every lease duration until dropped.
pub async fn watch_leader(client: kube::Client, lease: LeaseOptions, metrics: Arc<controller::Metrics>) {
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::namespaced(client, &lease.namespace);
    let every = Duration::from_secs(lease.duration.max(1));
    let mut missing = false;
    loop {
        let verdict = match api.get_opt(&lease.name).await {
            Ok(Some(l)) => live_holder(&l, jiff::Timestamp::now()),
            Ok(None) => Err("the Lease does not exist".into()),
            // Unreachable API server: the watches say so; nothing to conclude about the leader.
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the leader lease");
                tokio::time::sleep(every).await;
                continue;
            }
        };
        metrics.set_leader_missing(verdict.is_err());
        match (&verdict, missing) {
            (Err(why), false) => tracing::warn!(
                lease = %format!("{}/{}", lease.namespace, lease.name),
                %why,
                "no replica leads: statuses, events and namespace labels are not updated until one does; purchases are still judged by every replica"
            ),
            (Ok(holder), true) => tracing::info!(%holder, "a replica leads again"),
            _ => {}
        }
        missing = verdict.is_err();
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: Option<&str>, renewed: Option<i64>, duration: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                renew_time: renewed.map(|s| MicroTime(jiff::Timestamp::from_second(s).expect("time"))),
                lease_duration_seconds: Some(duration),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_has_a_live_holder_only_within_its_duration() {
        let now = jiff::Timestamp::from_second(1_000).expect("time");
        assert_eq!(
            live_holder(&lease(Some("pod-a"), Some(990), 15), now),
            Ok("pod-a".into())
        );
        let stale = live_holder(&lease(Some("pod-a"), Some(900), 15), now).unwrap_err();
        assert!(
            stale.contains("last renewed it 100s ago, over its 15s duration"),
            "{stale}"
        );
        assert!(live_holder(&lease(None, Some(990), 15), now).is_err());
        assert!(live_holder(&lease(Some(""), Some(990), 15), now).is_err());
        assert!(live_holder(&lease(Some("pod-a"), None, 15), now).is_err());
    }
}
