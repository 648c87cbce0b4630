//! The controllers' metrics, in OpenMetrics form (prometheus-client).

use crate::api::{CustomerAccount, RestrictionState};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub webhook: &'static str,
    pub operation: String,
    pub outcome: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: &'static str,
}

/// The kinds, in the order the reconcilers use.
pub const KINDS: [&str; 4] = [
    "CustomerAccount",
    "PurchaseRestriction",
    "ResellerDelegation",
    "Partner",
];

/// Counters, histograms and gauges of the controllers.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub reconciles: Family<KindLabel, Counter>,
    pub errors: Family<KindLabel, Counter>,
    pub duration: Family<KindLabel, Histogram>,
    pub status_writes: Family<KindLabel, Counter>,
    customers: Family<StateLabel, Gauge>,
    pub leader: Gauge,
    /// Admission reviews by webhook, operation, outcome (allowed, denied, warned, error) and
    /// reason.
    pub admissions: Family<AdmissionLabels, Counter>,
    pub admission_duration: Family<WebhookLabel, Histogram>,
    customer_store: OnceLock<Store<CustomerAccount>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("purchase_guard");
        let reconciles = Family::<KindLabel, Counter>::default();
        let errors = Family::<KindLabel, Counter>::default();
        let duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let status_writes = Family::<KindLabel, Counter>::default();
        let customers = Family::<StateLabel, Gauge>::default();
        let leader = Gauge::default();
        let admissions = Family::<AdmissionLabels, Counter>::default();
        let admission_duration = Family::<WebhookLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00001, 2.0, 20))
        });
        registry.register(
            "admissions",
            "Admission reviews by webhook, operation, outcome and reason",
            admissions.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to judge an admission review, per webhook",
            admission_duration.clone(),
        );
        registry.register("reconciles", "Completed reconciles per kind", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciles per kind", errors.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration per kind",
            duration.clone(),
        );
        registry.register("status_writes", "Status writes per kind", status_writes.clone());
        registry.register("customers", "Customers by effective state", customers.clone());
        registry.register("leader", "1 when this replica holds the leader lease", leader.clone());
        Metrics {
            registry: Mutex::new(registry),
            reconciles,
            errors,
            duration,
            status_writes,
            customers,
            leader,
            admissions,
            admission_duration,
            customer_store: OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Completed reconciles of a kind (index into [`KINDS`]).
    pub fn reconciles_of(&self, kind: usize) -> u64 {
        self.reconciles.get_or_create(&KindLabel { kind: KINDS[kind] }).get()
    }

    pub(crate) fn set_customer_store(&self, store: Store<CustomerAccount>) {
        let _ = self.customer_store.set(store);
    }

    /// The OpenMetrics text, with the customers-by-state gauge computed from the cache.
    pub fn encode(self: &Arc<Self>) -> String {
        if let Some(store) = self.customer_store.get() {
            let mut counts = [0i64; 4];
            for c in store.state() {
                let idx = match c.status.as_ref().and_then(|s| s.decision.as_ref()).map(|d| d.state) {
                    Some(RestrictionState::Restricted) => 0,
                    Some(RestrictionState::RestrictedAndFrozen) => 1,
                    Some(RestrictionState::Unrestricted) => 2,
                    None => 3,
                };
                counts[idx] += 1;
            }
            for (state, n) in ["Restricted", "RestrictedAndFrozen", "Unrestricted", "Unknown"]
                .into_iter()
                .zip(counts)
            {
                self.customers.get_or_create(&StateLabel { state }).set(n);
            }
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
