//! purchase-guard's admission webhooks and the HTTPS server that carries them. The server runs
//! on every replica, not only the leader, and judges requests from the controller's caches;
//! nothing on the admission path calls the API server.
//!
//! - [`settings`]: what the purchase webhook guards and how it enforces.
//! - [`decisions`]: PurchaseRestriction and ResellerDelegation writes (R2, R3, R4, R6).
//! - [`audit`]: the audit stamp (who changed a decision, and when).
//! - [`purchases`]: operations on customers' billable resources (R1, R7).
//! - [`status`]: the status of the four kinds is purchase-guard's alone.
//! - [`namespaces`]: the label that puts a namespace under the purchase webhook.
//! - [`review`]: the AdmissionReview envelope.
//! - [`server`]: the admission routes and their metrics ([`metrics`]); [`https`]: the
//!   listener and its certificate.
//! - [`configurations`]: the webhook configurations for the API server.
//! - [`tls`], [`certs`]: serving certificates, from files or self-managed.

pub mod audit;
pub mod certs;
pub mod configurations;
pub mod decisions;
pub mod https;
pub mod metrics;
pub mod namespaces;
pub mod purchases;
pub mod review;
pub mod server;
pub mod settings;
pub mod status;
pub mod tls;

pub use audit::AUDIT_TIME_ANNOTATION;
pub use configurations::{ServiceRef, configurations};
pub use https::{Certificates, StartError, start};
pub use metrics::Metrics;
pub use settings::{Enforcement, Guarded, Settings, default_guarded};

use crate::index::Stores;
use std::sync::OnceLock;

/// The webhooks' state: settings, and the caches once synced.
pub struct Webhooks {
    pub settings: Settings,
    stores: OnceLock<Stores>,
    clock: fn() -> jiff::Timestamp,
}

const NOT_SYNCED: &str = "purchase-guard's caches are not synced yet (the controller is starting)";

impl Webhooks {
    pub fn new(settings: Settings) -> Self {
        Webhooks {
            settings,
            stores: OnceLock::new(),
            clock: jiff::Timestamp::now,
        }
    }

    /// Hands over the synced caches; admission refuses what it cannot judge until then.
    pub fn set_stores(&self, stores: Stores) {
        let _ = self.stores.set(stores);
    }

    /// The caches, once synced.
    fn stores(&self) -> Option<&Stores> {
        self.stores.get()
    }
}
