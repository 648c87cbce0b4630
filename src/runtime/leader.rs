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
