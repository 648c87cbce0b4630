//! purchase-guard's admission webhooks and the HTTPS server that carries them. The server runs
//! on every replica, not only the leader, and judges requests from the controller's caches;
//! nothing on the admission path calls the API server.
//!
//! - [`settings`]: what the purchase webhook guards and how it enforces.
//! - [`decisions`]: PurchaseRestriction and ResellerDelegation writes (R2, R3, R4, R6).
//! - [`audit`]: the audit stamp (who changed a decision, and when).
//! - [`verification`]: one-time verification codes on restriction operations (R5).
//! - [`purchases`]: operations on customers' billable resources (R1, R7).
//! - [`status`]: the status of the four kinds is purchase-guard's alone.
//! - [`namespaces`]: the labels that put a namespace under the purchase webhook and say what
//!   its customer may do.
//! - [`review`]: the AdmissionReview envelope.
//! - [`server`]: the admission routes and their metrics ([`metrics`]); [`https`]: the
//!   listener and its certificate.
//! - [`configurations`]: the webhook configurations for the API server; [`policies`]: the
//!   ValidatingAdmissionPolicies it enforces by itself.
//! - [`tls`], [`certs`]: serving certificates, from files or self-managed.

pub mod audit;
pub mod certs;
pub mod configurations;
pub mod decisions;
pub mod https;
pub mod metrics;
pub mod namespaces;
pub mod policies;
pub mod purchases;
pub mod review;
pub mod server;
pub mod settings;
pub mod status;
pub mod tls;
pub mod verification;

pub use audit::AUDIT_TIME_ANNOTATION;
pub use configurations::{ServiceRef, configurations};
pub use https::{Certificates, StartError, start};
pub use metrics::Metrics;
pub use settings::{
    Consistency, EnforceWith, Enforcement, Guarded, Settings, default_guarded, default_workload_controllers,
    parse_guarded,
};

use crate::index::{Freshness, Stores};
use std::sync::{Arc, OnceLock};

/// The webhooks' state: settings, and the caches once synced.
pub struct Webhooks {
    pub settings: Settings,
    stores: OnceLock<Stores>,
    /// Confirms the caches current (none: trusted as the watches have them, in tests).
    freshness: OnceLock<Arc<Freshness>>,
    clock: fn() -> jiff::Timestamp,
    /// Checks verification codes (R5); none: partners that enabled verification cannot
    /// operate (tests without an API server).
    verifier: OnceLock<Arc<crate::verification::Verifier>>,
}

const NOT_SYNCED: &str = "purchase-guard's caches are not synced yet (the controller is starting)";

impl Webhooks {
    pub fn new(settings: Settings) -> Self {
        Webhooks {
            settings,
            stores: OnceLock::new(),
            freshness: OnceLock::new(),
            clock: jiff::Timestamp::now,
            verifier: OnceLock::new(),
        }
    }

    /// Hands over what checks verification codes.
    pub fn set_verifier(&self, verifier: Arc<crate::verification::Verifier>) {
        let _ = self.verifier.set(verifier);
    }

    /// Hands over the synced caches; admission refuses what it cannot judge until then.
    pub fn set_stores(&self, stores: Stores) {
        let _ = self.stores.set(stores);
    }

    /// The caches, once synced.
    fn stores(&self) -> Option<&Stores> {
        self.stores.get()
    }

    /// Hands over what confirms the caches current (see [`Consistency`]).
    pub fn set_freshness(&self, freshness: Arc<Freshness>) {
        let _ = self.freshness.set(freshness);
    }

    /// Why the caches cannot be trusted now: not confirmed current within
    /// `settings.freshness.max_staleness` (a watch gone silent, the API server unreachable).
    /// `None` when they can, or when nothing confirms them (no [`Freshness`] handed over).
    pub fn staleness(&self) -> Option<String> {
        let freshness = self.freshness.get()?;
        let bound = self.settings.freshness.max_staleness;
        match freshness.confirmed_at() {
            None => Some("purchase-guard's caches have not been confirmed current yet".into()),
            Some(at) if at.elapsed() > bound => Some(format!(
                "purchase-guard's caches were last confirmed current {}s ago, more than the {}s allowed (its watches or the API server may be unreachable)",
                at.elapsed().as_secs(),
                bound.as_secs()
            )),
            Some(_) => None,
        }
    }

    /// Before admitting a request in `namespace` of `customer` that is allowed only because the
    /// customer is not restricted: in linearizable mode, waits until the caches hold everything
    /// written before now that the judgement depends on (`Ok(true)`: judge again); in cached
    /// mode, checks they were confirmed recently (`Ok(false)`: the judgement stands). `Err`
    /// says why the state cannot be trusted.
    pub async fn confirm_current(&self, customer: &str, namespace: &str) -> Result<bool, String> {
        let Some(freshness) = self.freshness.get() else {
            return Ok(false);
        };
        match self.settings.freshness.consistency {
            Consistency::Linearizable => freshness
                .ensure_for(customer, namespace)
                .await
                .map(|()| true)
                .map_err(|e| e.to_string()),
            Consistency::Cached => self.staleness().map_or(Ok(false), Err),
        }
    }
}
