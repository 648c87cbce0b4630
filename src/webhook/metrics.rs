//! The admission webhooks' metrics, registered in the process's registry by
//! [`Metrics::register`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    webhook: &'static str,
    operation: &'static str,
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    outcome: &'static str,
}

/// Admission reviews by webhook, operation, outcome and reason, and their duration; the
/// confirmations that the caches are current.
#[derive(Clone, Debug)]
pub struct Metrics {
    admissions: Family<AdmissionLabels, Counter>,
    duration: Family<WebhookLabel, Histogram>,
    cache_checks: Family<CheckLabel, Counter>,
    cache_check_duration: Histogram,
}

impl Default for Metrics {
    /// Metrics that are counted but not exposed (tests, benchmarks).
    fn default() -> Self {
        Metrics::register(&mut Registry::default())
    }
}

impl Metrics {
    /// Creates the admission metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            admissions: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00001, 2.0, 20))),
            cache_checks: Family::default(),
            cache_check_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        };
        registry.register(
            "cache_checks",
            "Confirmations that the caches are current (quorum read, then the wait for the watches), by outcome: current, behind, read_failed",
            metrics.cache_checks.clone(),
        );
        registry.register(
            "cache_check_duration_seconds",
            "Time to confirm the caches current",
            metrics.cache_check_duration.clone(),
        );
        registry.register(
            "admissions",
            "Admission reviews by webhook, operation, outcome and reason",
            metrics.admissions.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to judge an admission review, per webhook",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Counts one review: `outcome` is allowed, denied, warned or error.
    pub fn record(
        &self,
        webhook: &'static str,
        operation: &str,
        outcome: &'static str,
        reason: &'static str,
        took: Duration,
    ) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                webhook,
                // The operations a review can carry (parsing refuses others): no allocation.
                operation: match operation {
                    "CREATE" => "CREATE",
                    "UPDATE" => "UPDATE",
                    "DELETE" => "DELETE",
                    "CONNECT" => "CONNECT",
                    _ => "",
                },
                outcome,
                reason,
            })
            .inc();
        self.duration
            .get_or_create(&WebhookLabel { webhook })
            .observe(took.as_secs_f64());
    }
}

impl Metrics {
    /// Counts one confirmation of the caches (background or before an admission).
    pub fn record_cache_check(&self, result: &Result<(), crate::index::Stale>, took: Duration) {
        let outcome = match result {
            Ok(()) => "current",
            Err(crate::index::Stale::ReadFailed { .. }) => "read_failed",
            Err(_) => "behind",
        };
        self.cache_checks.get_or_create(&CheckLabel { outcome }).inc();
        self.cache_check_duration.observe(took.as_secs_f64());
    }
}
