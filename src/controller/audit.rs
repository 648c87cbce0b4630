//! The audit of customers' resources: which guarded resources are out of line with their
//! customer's current state ([`policy::audit`]), counted in the customer's status and listed in
//! one policy report per customer namespace (OpenReports `Report` or wgpolicyk8s.io
//! `PolicyReport`, failures and warnings only, at most `max_results` results).
//!
//! The customer reconciler audits after its freeze pass, from the caches of the guarded kinds
//! ([`super::freeze::kinds`]): when the customer's state changes, when a resource in its
//! namespaces changes (while it is restricted or has findings), and every `interval` (the
//! sweep). A report is written only when its content changes and deleted when its namespace
//! has no findings left; reports are owned by their CustomerAccount.

use super::context::{Context, Error, MANAGER};
use super::freeze::kinds::{self, Changed};
use crate::api::{AuditStatus, CustomerAccount, CustomerAccountStatus};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use policy::audit::{Audited, Finding, Scope, Shown};
use purchase_guard_policy as policy;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The label on every report purchase-guard writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The label naming the customer a report is about.
pub const CUSTOMER_LABEL: &str = "purchaseguard.io/customer";
/// The name of the report in each customer namespace.
pub const REPORT_NAME: &str = "purchase-guard";
/// The annotation saying how many results a bounded report left out.
pub const LEFT_OUT_ANNOTATION: &str = "purchaseguard.io/results-left-out";

/// Which policy report kind the findings are written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// `openreports.io/v1alpha1` Report.
    Openreports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport.
    Policyreport,
    /// No report objects: the counts in the customers' statuses and the metrics only.
    None,
}

impl ReportFormat {
    /// Group, version and plural of the kind, when there is one.
    pub fn resource(self) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
        match self {
            ReportFormat::Openreports => Some(("openreports.io", "v1alpha1", "reports", "Report")),
            ReportFormat::Policyreport => Some(("wgpolicyk8s.io", "v1alpha2", "policyreports", "PolicyReport")),
            ReportFormat::None => None,
        }
    }
}

/// How the audit runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The R7 matrix the purchase webhook judges with.
    pub matrix: policy::ImpactMatrix,
    pub format: ReportFormat,
    /// The most results one report lists (the summary counts them all).
    pub max_results: usize,
    /// How often every customer is audited again; `None`: only on changes.
    pub interval: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            matrix: policy::ImpactMatrix::default(),
            format: ReportFormat::Openreports,
            max_results: 100,
            interval: Some(DEFAULT_INTERVAL),
        }
    }
}

/// The default sweep interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// The audit's settings and the cache of the reports purchase-guard wrote.
pub struct Auditor {
    pub settings: Settings,
    reports: OnceLock<(ApiResource, Store<DynamicObject>)>,
    synced: AtomicBool,
}

impl Auditor {
    pub fn new(settings: Settings) -> Self {
        Auditor {
            settings,
            reports: OnceLock::new(),
            synced: AtomicBool::new(false),
        }
    }

    fn ready(&self) -> Option<(&ApiResource, &Store<DynamicObject>)> {
        if !self.synced.load(Ordering::SeqCst) {
            return None;
        }
        self.reports.get().map(|(r, s)| (r, s))
    }

    /// Watches the reports purchase-guard wrote, for ever: a report deleted by someone else
    /// reconciles the customers of its namespace (it is written again). A report kind the API
    /// server does not serve is looked for again every [`kinds::DISCOVERY_RETRY`].
    pub async fn run(&self, client: Client, changed: tokio::sync::mpsc::UnboundedSender<Changed>) {
        let Some((group, version, plural, _)) = self.settings.format.resource() else {
            return std::future::pending().await;
        };
        let resource = kinds::until_served(&client, group, version, plural, || {
            tracing::warn!(kind = %kinds::qualified(group, plural), version, "the policy report kind is not served (install its CRD, or choose another with --reports); the audit's findings are counted in the customers' statuses only until it is (looked for again every 30s)");
        })
        .await;
        let writer = reflector::store::Writer::new(resource.clone());
        let _ = self.reports.set((resource.clone(), writer.as_reader()));
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let config = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
        let synced = &self.synced;
        watcher(api, config)
            .default_backoff()
            .reflect(writer)
            .for_each(|event| {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        synced.store(true, Ordering::SeqCst);
                        let _ = changed.send(Changed::All);
                    }
                    Ok(watcher::Event::Delete(obj)) => {
                        if let Some(namespace) = obj.namespace() {
                            let _ = changed.send(Changed::Namespace {
                                namespace,
                                frozen: false,
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "report watch error"),
                }
                async {}
            })
            .await;
        std::future::pending().await
    }
}

/// A resource out of line, for its report.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub resource: ObjectReference,
    pub finding: Finding,
}

/// What the audit found for a customer: the counts for its status, the entries per namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audit {
    pub entries: BTreeMap<String, Vec<Entry>>,
    /// Kinds whose objects are not known yet (their watch not synced).
    pub pending_kinds: Vec<String>,
}

impl Audit {
    /// The counts for the customer's status.
    pub fn status(&self) -> AuditStatus {
        let all = || self.entries.values().flatten().map(|e| &e.finding);
        let counts = policy::audit::Counts::of(all());
        let mut findings = BTreeMap::new();
        for f in all() {
            *findings.entry(f.reason.as_str().to_string()).or_insert(0) += 1;
        }
        AuditStatus {
            failures: counts.fail,
            warnings: counts.warn,
            findings,
        }
    }
}

fn micros(t: &jiff::Timestamp) -> policy::Timestamp {
    policy::Timestamp(t.as_microsecond())
}

/// Audits the customer's resources in its guarded namespaces, with its status as this pass
/// computed it. `freeze_failed`: why the freeze pass could not freeze a resource, by its
/// description.
pub fn audit(
    ctx: &Context,
    customer: &CustomerAccount,
    state: &policy::CustomerState,
    status: &CustomerAccountStatus,
    freeze_failed: &BTreeMap<String, String>,
) -> Audit {
    let mut audit = Audit::default();
    let policy::CustomerState::Known { state: current, .. } = state else {
        return audit;
    };
    let history: Vec<(&jiff::Timestamp, policy::RestrictionState)> = status
        .history
        .iter()
        .map(|h| (&h.time.0, policy::RestrictionState::from(h.state)))
        .collect();
    let since_text;
    let restricted_since = match policy::audit::restricted_since(&history, *current) {
        Some(t) => {
            since_text = t.to_string();
            Some(Shown {
                at: micros(t),
                text: &since_text,
            })
        }
        None => None,
    };
    let frozen_text;
    let frozen_since = match status.freeze.as_ref().filter(|_| current.freezes_resources()) {
        Some(f) => {
            frozen_text = f.since.0.to_string();
            Some(Shown {
                at: micros(&f.since.0),
                text: &frozen_text,
            })
        }
        None => None,
    };
    if restricted_since.is_none() && frozen_since.is_none() {
        return audit;
    }
    let name = customer.name_any();
    let scope = Scope {
        matrix: &ctx.auditor.settings.matrix,
        customer: &name,
        state,
        restricted_since,
        frozen_since,
    };
    let namespaces = &status.guarded_namespaces;
    for watched in ctx.freezer.kinds() {
        let kind = &watched.settings;
        let Some((resource, store)) = watched.ready() else {
            if !watched.not_served() {
                audit.pending_kinds.push(kind.qualified());
            }
            continue;
        };
        for object in store.state() {
            let Some(namespace) = object.namespace() else { continue };
            if !namespaces.contains(&namespace) {
                continue;
            }
            let Ok(value) = serde_json::to_value(object.as_ref()) else {
                continue;
            };
            let created = object
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| (micros(&t.0), t.0.to_string()));
            // The latest write of the specification: from the managed fields, or the one the
            // freeze record kept (a freeze takes the fields it writes from their owners).
            let recorded = policy::FrozenRecord::of(&value).ok().flatten().and_then(|r| r.written);
            let recorded = recorded.as_ref().and_then(|w| {
                let at: jiff::Timestamp = w.time.parse().ok()?;
                Some((w.manager.as_str(), micros(&at), w.time.clone()))
            });
            let written = kinds::spec_written(&object)
                .map(|(m, t)| (m, micros(&t.0), t.0.to_string()))
                .into_iter()
                .chain(recorded)
                .max_by_key(|(_, at, _)| *at);
            let described = super::freeze::describe(kind, &namespace, &object.name_any());
            let audited = Audited {
                object: &value,
                default_mode: kind.default_billing_mode,
                created: created.as_ref().map(|(at, text)| Shown { at: *at, text }),
                spec_written: written.as_ref().map(|(m, at, text)| (*m, Shown { at: *at, text })),
                freezable: kind.action.is_some(),
                freeze_failed: freeze_failed.get(&described).map(String::as_str),
            };
            if let Some(finding) = policy::audit::audit_object(&scope, &audited) {
                audit.entries.entry(namespace.clone()).or_default().push(Entry {
                    resource: ObjectReference {
                        api_version: Some(resource.api_version.clone()),
                        kind: Some(resource.kind.clone()),
                        name: object.metadata.name.clone(),
                        namespace: Some(namespace),
                        uid: object.metadata.uid.clone(),
                        ..ObjectReference::default()
                    },
                    finding,
                });
            }
        }
    }
    audit
}

/// The report of one namespace as purchase-guard writes it; results sorted (failures first,
/// then by resource) and bounded.
pub fn report(
    resource: &ApiResource,
    customer: &CustomerAccount,
    state: &str,
    namespace: &str,
    entries: &[Entry],
    max_results: usize,
) -> serde_json::Value {
    let mut entries: Vec<&Entry> = entries.iter().collect();
    let key = |e: &Entry| {
        (
            e.finding.reason.severity(),
            e.resource.kind.clone(),
            e.resource.name.clone(),
        )
    };
    entries.sort_by_key(|e| key(e));
    let counts = policy::audit::Counts::of(entries.iter().map(|e| &e.finding));
    let customer_name = customer.name_any();
    let results: Vec<serde_json::Value> = entries
        .iter()
        .take(max_results)
        .map(|e| {
            let reason = e.finding.reason;
            let at = e.finding.at.0;
            serde_json::json!({
                "source": MANAGER,
                "policy": format!("purchase-guard/{}", reason.rule()),
                "rule": reason.as_str(),
                "category": "Purchase restriction",
                "severity": match reason.severity() {
                    policy::audit::Severity::Fail => "high",
                    policy::audit::Severity::Warn => "medium",
                },
                "result": reason.severity().as_str(),
                "scored": true,
                "timestamp": {"seconds": at.div_euclid(1_000_000), "nanos": 0},
                "message": e.finding.message,
                "resources": [e.resource],
                "properties": {"customer": customer_name, "state": state, "rule": reason.rule()},
            })
        })
        .collect();
    let mut report = serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {
            "name": REPORT_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGER, CUSTOMER_LABEL: customer_name},
            "ownerReferences": [{
                "apiVersion": CustomerAccount::api_version(&()),
                "kind": CustomerAccount::kind(&()),
                "name": customer_name,
                "uid": customer.uid().unwrap_or_default(),
            }],
        },
        "source": MANAGER,
        "scope": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
        "summary": {"pass": 0, "fail": counts.fail, "warn": counts.warn, "error": 0, "skip": 0},
        "results": results,
    });
    if entries.len() > max_results {
        report["metadata"]["annotations"] = serde_json::json!({
            LEFT_OUT_ANNOTATION: format!("{max_results} of {} results listed (the summary counts them all)", entries.len())
        });
    }
    report
}

/// Whether a written report says what `desired` says (what purchase-guard writes of it).
fn same(current: &DynamicObject, desired: &serde_json::Value) -> bool {
    let Ok(current) = serde_json::to_value(current) else {
        return false;
    };
    let left_out = format!("/metadata/annotations/{}", LEFT_OUT_ANNOTATION.replace('/', "~1"));
    let at = |v: &serde_json::Value, p: &str| {
        v.pointer(p)
            .filter(|x| !(x.is_null() || x.as_array().is_some_and(Vec::is_empty)))
            .cloned()
    };
    [
        "/results",
        "/summary",
        "/metadata/ownerReferences/0/uid",
        left_out.as_str(),
    ]
    .iter()
    .all(|p| at(&current, p) == at(desired, p))
}

/// Writes the customer's reports: one per guarded namespace with findings, none elsewhere (its
/// reports in namespaces without findings, or no longer its, are deleted). Returns whether the
/// reports could not be brought up to date yet (the report kind's watch not synced).
pub async fn write_reports(
    ctx: &Context,
    customer: &CustomerAccount,
    state: &str,
    audit: &Audit,
) -> Result<bool, Error> {
    if ctx.auditor.settings.format == ReportFormat::None {
        return Ok(false);
    }
    let Some((resource, store)) = ctx.auditor.ready() else {
        return Ok(true);
    };
    let name = customer.name_any();
    let params = PatchParams::apply(MANAGER).force();
    for (namespace, entries) in &audit.entries {
        let desired = report(
            resource,
            customer,
            state,
            namespace,
            entries,
            ctx.auditor.settings.max_results,
        );
        let current = store.get(&reflector::ObjectRef::new_with(REPORT_NAME, resource.clone()).within(namespace));
        if current.as_deref().is_some_and(|c| same(c, &desired)) {
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
        api.patch(REPORT_NAME, &params, &Patch::Apply(&desired)).await?;
    }
    // Reports of this customer where it has no findings any more.
    for stale in store.state().iter().filter(|r| {
        r.labels().get(CUSTOMER_LABEL) == Some(&name)
            && r.namespace().is_some_and(|ns| !audit.entries.contains_key(&ns))
    }) {
        let Some(namespace) = stale.namespace() else { continue };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, resource);
        match api.delete(&stale.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> CustomerAccount {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
            "metadata": {"name": "acme", "uid": "u-acme"},
            "spec": {"associationModel": "Reseller", "reseller": "reseller-alpha", "namespaces": ["acme-dev"]}
        }))
        .expect("a customer")
    }

    fn entry(name: &str, reason: policy::audit::Reason) -> Entry {
        Entry {
            resource: ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some(name.into()),
                namespace: Some("acme-dev".into()),
                ..ObjectReference::default()
            },
            finding: Finding {
                reason,
                message: format!("{name} is out of line"),
                at: policy::Timestamp(1_700_000_000_123_456),
            },
        }
    }

    #[test]
    fn a_report_sorts_failures_first_bounds_its_results_and_counts_them_all() {
        use policy::audit::Reason::*;
        for format in [ReportFormat::Openreports, ReportFormat::Policyreport] {
            let (group, version, plural, kind) = format.resource().expect("a kind");
            let resource = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: format!("{group}/{version}"),
                kind: kind.into(),
                plural: plural.into(),
            };
            let entries = [
                entry("c", ChangedWhileRestricted),
                entry("b", CreatedWhileRestricted),
                entry("a", RunningWhileFrozen),
            ];
            let r = report(&resource, &customer(), "Restricted", "acme-dev", &entries, 2);
            assert_eq!(r["kind"], kind);
            assert_eq!(
                r["summary"],
                serde_json::json!({"pass": 0, "fail": 2, "warn": 1, "error": 0, "skip": 0})
            );
            let names: Vec<&str> = r["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|x| x["resources"][0]["name"].as_str().expect("a name"))
                .collect();
            assert_eq!(names, ["a", "b"], "failures first, by resource; bounded to 2");
            assert_eq!(r["results"][0]["result"], "fail");
            assert_eq!(r["results"][0]["timestamp"]["seconds"], 1_700_000_000);
            assert_eq!(r["metadata"]["ownerReferences"][0]["uid"], "u-acme");
            assert_eq!(
                r["metadata"]["annotations"][LEFT_OUT_ANNOTATION],
                "2 of 3 results listed (the summary counts them all)"
            );
            // As written back by the API server: the same; another result: not.
            let written: DynamicObject = serde_json::from_value(r.clone()).expect("an object");
            assert!(same(&written, &r));
            let fewer = report(&resource, &customer(), "Restricted", "acme-dev", &entries[..2], 2);
            assert!(!same(&written, &fewer));
        }
    }
}
