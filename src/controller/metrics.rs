//! The controllers' metrics, registered in the process's registry by [`Metrics::register`]:
//! reconciles, failures and durations per kind, status writes per kind and outcome, the
//! customers by effective state, and whether this replica leads.

use crate::api::{CustomerAccount, RestrictionState};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use purchase_guard_policy as policy;
use std::sync::OnceLock;
use std::time::Instant;

/// The kinds the controllers reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    CustomerAccount,
    PurchaseRestriction,
    ResellerDelegation,
    Partner,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::CustomerAccount,
        Kind::PurchaseRestriction,
        Kind::ResellerDelegation,
        Kind::Partner,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CustomerAccount => "CustomerAccount",
            Kind::PurchaseRestriction => "PurchaseRestriction",
            Kind::ResellerDelegation => "ResellerDelegation",
            Kind::Partner => "Partner",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FreezeLabels {
    operation: &'static str,
    outcome: &'static str,
}

/// What the freeze controller does to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezeOperation {
    /// R8: the action applied and the previous values remembered.
    Freeze,
    /// The action applied again to a frozen resource that was changed back.
    DriftCorrection,
    /// R9: the remembered values put back.
    Restore,
    /// The resource deleted at the end of retention.
    Release,
}

impl FreezeOperation {
    pub fn label(self) -> &'static str {
        match self {
            FreezeOperation::Freeze => "freeze",
            FreezeOperation::DriftCorrection => "drift_correction",
            FreezeOperation::Restore => "restore",
            FreezeOperation::Release => "release",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    state: &'static str,
    rule: &'static str,
    reason: &'static str,
    result: &'static str,
}

/// What became of a status write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Refused because the object changed since it was read (a stale cache): retried.
    Conflict,
    Failed,
    TimedOut,
}

impl WriteOutcome {
    fn label(self) -> &'static str {
        match self {
            WriteOutcome::Written => "written",
            WriteOutcome::Conflict => "conflict",
            WriteOutcome::Failed => "failed",
            WriteOutcome::TimedOut => "timeout",
        }
    }
}

/// Counters, histograms and gauges of the controllers.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Family<KindLabel, Counter>,
    failures: Family<KindLabel, Counter>,
    duration: Family<KindLabel, Histogram>,
    status_writes: Family<WriteLabels, Counter>,
    customers: Family<StateLabel, Gauge>,
    findings: Family<FindingLabels, Gauge>,
    freeze_operations: Family<FreezeLabels, Counter>,
    leader: Gauge,
    leader_missing: Gauge,
    customer_store: OnceLock<Store<CustomerAccount>>,
}

impl Default for Metrics {
    /// Metrics that are counted but not exposed (tests, benchmarks).
    fn default() -> Self {
        Metrics::register(&mut Registry::default())
    }
}

/// Measures one reconcile: counted as completed or failed, with its duration, when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: Kind,
    started: Instant,
    failed: bool,
}

impl ReconcileTimer<'_> {
    pub fn failed(&mut self) {
        self.failed = true;
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let label = KindLabel { kind: self.kind.name() };
        self.metrics
            .duration
            .get_or_create(&label)
            .observe(self.started.elapsed().as_secs_f64());
        let counter = if self.failed {
            &self.metrics.failures
        } else {
            &self.metrics.reconciles
        };
        counter.get_or_create(&label).inc();
    }
}

impl Metrics {
    /// Creates the controllers' metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            reconciles: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))),
            status_writes: Family::default(),
            customers: Family::default(),
            findings: Family::default(),
            freeze_operations: Family::default(),
            leader: Gauge::default(),
            leader_missing: Gauge::default(),
            customer_store: OnceLock::new(),
        };
        registry.register(
            "reconciles",
            "Completed reconciles per kind",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles per kind",
            metrics.failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration per kind",
            metrics.duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes per kind and outcome (written, failed, timeout)",
            metrics.status_writes.clone(),
        );
        registry.register("customers", "Customers by effective state", metrics.customers.clone());
        registry.register(
            "audit_findings",
            "Guarded resources out of line with their customer's state, by the customer's effective state, rule, finding and result (fail, warn), as the customers' statuses count them",
            metrics.findings.clone(),
        );
        registry.register(
            "freeze_operations",
            "Operations on customers' resources per operation (freeze, drift_correction, restore, release) and outcome (done, failed)",
            metrics.freeze_operations.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica holds the leader lease",
            metrics.leader.clone(),
        );
        registry.register(
            "leader_missing",
            "1 when no replica holds a live leader lease, as this replica last read the Lease (statuses, events and namespace labels are not updated then)",
            metrics.leader_missing.clone(),
        );
        metrics
    }

    /// Starts measuring a reconcile of `kind`.
    pub fn reconcile(&self, kind: Kind) -> ReconcileTimer<'_> {
        ReconcileTimer {
            metrics: self,
            kind,
            started: Instant::now(),
            failed: false,
        }
    }

    /// Completed reconciles of a kind.
    pub fn reconciles_of(&self, kind: Kind) -> u64 {
        self.reconciles.get_or_create(&KindLabel { kind: kind.name() }).get()
    }

    /// Status writes of a kind with an outcome.
    pub fn status_writes_of(&self, kind: Kind, outcome: WriteOutcome) -> u64 {
        self.status_writes
            .get_or_create(&WriteLabels {
                kind: kind.name(),
                outcome: outcome.label(),
            })
            .get()
    }

    pub(crate) fn status_write(&self, kind: Kind, outcome: WriteOutcome) {
        self.status_writes
            .get_or_create(&WriteLabels {
                kind: kind.name(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts an operation on a resource.
    pub fn freeze_operation(&self, operation: FreezeOperation, done: bool) {
        self.freeze_operations
            .get_or_create(&FreezeLabels {
                operation: operation.label(),
                outcome: if done { "done" } else { "failed" },
            })
            .inc();
    }

    /// Operations on resources done or failed so far.
    pub fn freeze_operations_of(&self, operation: FreezeOperation, done: bool) -> u64 {
        self.freeze_operations
            .get_or_create(&FreezeLabels {
                operation: operation.label(),
                outcome: if done { "done" } else { "failed" },
            })
            .get()
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Whether no replica holds a live leader lease.
    pub fn set_leader_missing(&self, missing: bool) {
        self.leader_missing.set(i64::from(missing));
    }

    /// Whether no replica holds a live leader lease, as last seen.
    pub fn leader_missing(&self) -> bool {
        self.leader_missing.get() == 1
    }

    pub(crate) fn set_customer_store(&self, store: Store<CustomerAccount>) {
        let _ = self.customer_store.set(store);
    }

    /// Recomputes the customers-by-state gauge from the cache (before each scrape).
    pub fn refresh(&self) {
        let Some(store) = self.customer_store.get() else {
            return;
        };
        const STATES: [&str; 4] = ["Restricted", "RestrictedAndFrozen", "Unrestricted", "Unknown"];
        let mut counts = [0i64; 4];
        let mut findings = [[0i64; 3]; 4];
        for c in store.state() {
            let status = c.status.as_ref();
            let idx = match status.and_then(|s| s.decision.as_ref()).map(|d| d.state) {
                Some(RestrictionState::Restricted) => 0,
                Some(RestrictionState::RestrictedAndFrozen) => 1,
                Some(RestrictionState::Unrestricted) => 2,
                None => 3,
            };
            counts[idx] += 1;
            for (reason, n) in status.and_then(|s| s.audit.as_ref()).iter().flat_map(|a| &a.findings) {
                if let Some(r) = policy::audit::Reason::ALL.iter().position(|r| r.as_str() == reason) {
                    findings[idx][r] += i64::from(*n);
                }
            }
        }
        for (i, state) in STATES.into_iter().enumerate() {
            self.customers.get_or_create(&StateLabel { state }).set(counts[i]);
            for (r, reason) in policy::audit::Reason::ALL.into_iter().enumerate() {
                let labels = FindingLabels {
                    state,
                    rule: reason.rule(),
                    reason: reason.as_str(),
                    result: reason.severity().as_str(),
                };
                self.findings.get_or_create(&labels).set(findings[i][r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_failures_and_status_writes_are_counted_per_kind() {
        let metrics = Metrics::default();
        drop(metrics.reconcile(Kind::Partner));
        let mut failed = metrics.reconcile(Kind::Partner);
        failed.failed();
        drop(failed);
        metrics.status_write(Kind::CustomerAccount, WriteOutcome::Written);
        metrics.status_write(Kind::CustomerAccount, WriteOutcome::TimedOut);
        assert_eq!(
            metrics.reconciles_of(Kind::Partner),
            1,
            "a failed reconcile is not completed"
        );
        assert_eq!(metrics.reconciles_of(Kind::CustomerAccount), 0);
        assert_eq!(
            metrics.status_writes_of(Kind::CustomerAccount, WriteOutcome::Written),
            1
        );
        assert_eq!(
            metrics.status_writes_of(Kind::CustomerAccount, WriteOutcome::TimedOut),
            1
        );
        assert_eq!(metrics.status_writes_of(Kind::Partner, WriteOutcome::Failed), 0);
        let mut registry = Registry::default();
        let registered = Metrics::register(&mut registry);
        drop(registered.reconcile(Kind::Partner));
        registered.reconcile(Kind::Partner).failed();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("reconciles_total{kind=\"Partner\"} 1"), "{text}");
        assert!(text.contains("reconcile_errors_total{kind=\"Partner\"} 1"), "{text}");
    }
}
