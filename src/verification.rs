//! Verification codes (R5), the part that talks to the API server: the partner's TOTP Secret
//! (read when a code is checked, never cached or logged) and the partner's ledger, a ConfigMap
//! in purchase-guard's namespace replaced with its resourceVersion as precondition, so that
//! every replica sees one order of acceptances: of two requests with the same code, on any
//! replicas, exactly one is accepted. The rule itself is the policy core's
//! (`purchase_guard_policy::verification`).
//!
//! Besides the freshness check's metadata-only reads, these are the only API calls on the
//! admission path, and they are made only for restriction operations of partners that enabled
//! verification.

use crate::api::Partner;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use purchase_guard_policy::verification::{self as rule, Ledger, Limits, NotReady, Refusal, SecretLookup, Verdict};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    partner: String,
    result: &'static str,
}

/// Verification codes checked, by partner and result.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    codes: Family<CodeLabels, Counter>,
}

impl Metrics {
    /// Creates the verification metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        registry.register(
            "verification_codes",
            "Verification codes checked (R5), by partner and result: Accepted, Repeated (a retry of the operation the code authorised), VerificationCodeMissing, VerificationCodeMalformed, VerificationCodeInvalid, VerificationCodeExpired, VerificationCodeReused, VerificationLockedOut, or why the partner's Secret is unusable",
            metrics.codes.clone(),
        );
        metrics
    }

    fn record(&self, partner: &str, result: &'static str) {
        self.codes
            .get_or_create(&CodeLabels {
                partner: partner.to_string(),
                result,
            })
            .inc();
    }

    /// How many codes of `partner` had `result` (tests).
    pub fn count(&self, partner: &str, result: &'static str) -> u64 {
        self.codes
            .get_or_create(&CodeLabels {
                partner: partner.to_string(),
                result,
            })
            .get()
    }
}

/// How many times a ledger write is retried after another replica's write won.
const LEDGER_ATTEMPTS: usize = 16;
/// How long one API call of a verification may take: the webhook's own deadline is 5 s.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The label every ledger carries, with the partner's name when it fits a label value.
pub const LEDGER_LABEL: &str = "purchaseguard.io/verification-ledger";

/// Checks codes against partners' Secrets and ledgers.
pub struct Verifier {
    client: Client,
    /// Where the ledgers live: purchase-guard's own namespace.
    namespace: String,
    limits: Limits,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    clock: fn() -> jiff::Timestamp,
}

/// Why a restriction operation was not verified: an admission denial.
#[derive(Clone, Debug, PartialEq)]
pub struct Denied {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

/// The Secret of a partner as read from the API server.
pub enum Lookup {
    Found(BTreeMap<String, Vec<u8>>),
    NotFound,
    Unreadable(String),
}

impl Lookup {
    pub fn as_policy(&self) -> SecretLookup<'_> {
        match self {
            Lookup::Found(data) => SecretLookup::Found(data),
            Lookup::NotFound => SecretLookup::NotFound,
            Lookup::Unreadable(e) => SecretLookup::Unreadable(e.clone()),
        }
    }
}

/// A Secret's data, `stringData` (as a manifest may carry it) over `data`.
pub fn secret_data(secret: Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    data
}

/// Reads a partner's verification Secret (a quorum read: a rotated or deleted secret counts at
/// once).
pub async fn read_secret(client: &Client, namespace: &str, name: &str) -> Lookup {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(name)).await {
        Err(_) => Lookup::Unreadable(format!("no answer within {}s", CALL_TIMEOUT.as_secs())),
        Ok(Err(kube::Error::Api(e))) => Lookup::Unreadable(format!("{} ({})", e.message, e.code)),
        Ok(Err(e)) => Lookup::Unreadable(e.to_string()),
        Ok(Ok(None)) => Lookup::NotFound,
        Ok(Ok(Some(secret))) => Lookup::Found(secret_data(secret)),
    }
}

/// Whether a partner's verification is usable: `None` when the partner did not enable it.
pub async fn readiness(client: &Client, partner: &Partner) -> Option<Result<rule::TotpSecret, NotReady>> {
    let reference = partner.spec.verification.as_ref()?;
    let lookup = read_secret(client, &partner.spec.namespace, &reference.secret_ref.name).await;
    Some(rule::readiness(
        &partner.name_any(),
        &partner.spec.namespace,
        &reference.secret_ref.name,
        lookup.as_policy(),
    ))
}

/// The ledger ConfigMap's name for `partner`: `purchase-guard-verification.<partner>`, or, for
/// names too long for that, a prefix of it and a digest of the whole.
pub fn ledger_name(partner: &str) -> String {
    let name = format!("purchase-guard-verification.{partner}");
    if name.len() <= 253 {
        return name;
    }
    // FNV-1a, 64 bits: stable across versions and platforms.
    let digest = partner.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let keep = name.char_indices().nth(253 - 17).map_or(name.len(), |(i, _)| i);
    format!("{}-{digest:016x}", name[..keep].trim_end_matches(['.', '-']))
}

const LAST_STEP: &str = "lastStep";
const LAST_OPERATION: &str = "lastOperation";
const FAILURES: &str = "failures";
const LOCKED_UNTIL: &str = "lockedUntil";

/// The ledger a ConfigMap holds. Unreadable fields read as absent, except a lockout: an
/// unreadable `lockedUntil` keeps the partner locked out (fails closed) until it is rewritten.
fn ledger_of(cm: &ConfigMap, now: u64) -> Ledger {
    let data = cm.data.clone().unwrap_or_default();
    let number = |key: &str| data.get(key).and_then(|v| v.parse::<u64>().ok());
    let locked_until = data.get(LOCKED_UNTIL).map(|v| {
        v.parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| u64::try_from(t.as_second()).ok())
            .unwrap_or(now + 60)
    });
    Ledger {
        last_step: number(LAST_STEP),
        last_operation: data.get(LAST_OPERATION).cloned(),
        failures: number(FAILURES).and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
        locked_until,
    }
}

fn data_of(ledger: &Ledger) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    if let Some(step) = ledger.last_step {
        data.insert(LAST_STEP.into(), step.to_string());
    }
    if let Some(op) = &ledger.last_operation {
        data.insert(LAST_OPERATION.into(), op.clone());
    }
    data.insert(FAILURES.into(), ledger.failures.to_string());
    if let Some(until) = ledger.locked_until {
        let at = i64::try_from(until)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        data.insert(LOCKED_UNTIL.into(), at.to_string());
    }
    data
}

fn unavailable(why: impl std::fmt::Display) -> Denied {
    Denied {
        code: 503,
        reason: "VerificationUnavailable",
        message: format!("R5: the verification code cannot be checked now: {why}; retry with the next code"),
    }
}

impl Verifier {
    pub fn new(
        client: Client,
        namespace: String,
        limits: Limits,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        clock: fn() -> jiff::Timestamp,
    ) -> Verifier {
        Verifier {
            client,
            namespace,
            limits,
            recorder,
            metrics,
            clock,
        }
    }

    /// Checks and spends `code` for a restriction `operation` (an opaque digest of what it
    /// writes) of `partner`, which enabled verification.
    pub async fn verify(&self, partner: &Partner, code: Option<&str>, operation: &str) -> Result<&'static str, Denied> {
        let name = partner.name_any();
        let secret = match readiness(&self.client, partner).await {
            None => return Ok("VerificationNotEnabled"),
            Some(Ok(secret)) => secret,
            Some(Err(not_ready)) => {
                self.metrics.record(&name, not_ready.reason());
                return Err(Denied {
                    code: 403,
                    reason: "VerificationNotReady",
                    message: not_ready.to_string(),
                });
            }
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let ledger_name = ledger_name(&name);
        for _ in 0..LEDGER_ATTEMPTS {
            let now = u64::try_from((self.clock)().as_second()).unwrap_or(0);
            let current = match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(&ledger_name)).await {
                Err(_) => return Err(unavailable("the ledger read timed out")),
                Ok(Err(e)) => {
                    return Err(unavailable(format!(
                        "reading ledger {}/{ledger_name}: {e}",
                        self.namespace
                    )));
                }
                Ok(Ok(cm)) => cm,
            };
            let ledger = current.as_ref().map(|cm| ledger_of(cm, now)).unwrap_or_default();
            let judgement = rule::judge(&secret, code, now, &ledger, operation, &self.limits);
            if let Some(next) = &judgement.ledger {
                let written = self.write(&api, &ledger_name, &name, current, next).await?;
                if !written {
                    // Another replica's write came first: judge again against it.
                    continue;
                }
            }
            return self.conclude(partner, judgement).await;
        }
        Err(unavailable(format!(
            "ledger {}/{ledger_name} changed {LEDGER_ATTEMPTS} times while this code was checked",
            self.namespace
        )))
    }

    /// Replaces (or creates) the ledger; `Ok(false)` when another write came first.
    async fn write(
        &self,
        api: &Api<ConfigMap>,
        name: &str,
        partner: &str,
        current: Option<ConfigMap>,
        next: &Ledger,
    ) -> Result<bool, Denied> {
        let mut labels = BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "purchase-guard".to_string())]);
        labels.insert(
            LEDGER_LABEL.into(),
            if partner.len() <= 63 {
                partner.to_string()
            } else {
                String::new()
            },
        );
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    "purchaseguard.io/partner".to_string(),
                    partner.to_string(),
                )])),
                // The precondition: replaced only if nobody wrote since it was read.
                resource_version: current.as_ref().and_then(|c| c.resource_version()),
                ..Default::default()
            },
            data: Some(data_of(next)),
            ..Default::default()
        };
        let result = match current {
            None => tokio::time::timeout(CALL_TIMEOUT, api.create(&PostParams::default(), &cm)).await,
            Some(_) => tokio::time::timeout(CALL_TIMEOUT, api.replace(name, &PostParams::default(), &cm)).await,
        };
        match result {
            Err(_) => Err(unavailable("the ledger write timed out")),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => Ok(false),
            Ok(Err(e)) => Err(unavailable(format!("writing ledger {}/{name}: {e}", self.namespace))),
        }
    }

    async fn conclude(&self, partner: &Partner, judgement: rule::Judgement) -> Result<&'static str, Denied> {
        let name = partner.name_any();
        match judgement.verdict {
            Verdict::Accepted { .. } => {
                self.metrics.record(&name, "Accepted");
                Ok("Verified")
            }
            Verdict::Repeated { .. } => {
                self.metrics.record(&name, "Repeated");
                Ok("VerifiedRetry")
            }
            Verdict::Refused(refusal) => {
                self.metrics.record(&name, refusal.reason());
                if refusal.counts() {
                    self.event(partner, &refusal, judgement.locked_now).await;
                }
                let code = match refusal {
                    Refusal::LockedOut { .. } => 429,
                    _ => 403,
                };
                Err(Denied {
                    code,
                    reason: refusal.reason(),
                    message: refusal.to_string(),
                })
            }
        }
    }

    /// An event on the Partner for a failed code, and one when it starts a lockout. Never the
    /// code itself.
    async fn event(&self, partner: &Partner, refusal: &Refusal, locked_now: bool) {
        let target = partner.object_ref(&());
        let mut events = vec![Event {
            type_: EventType::Warning,
            reason: "VerificationFailed".into(),
            note: Some(format!("a restriction operation was refused: {refusal}")),
            action: "Verify".into(),
            secondary: None,
        }];
        if locked_now {
            events.push(Event {
                type_: EventType::Warning,
                reason: "VerificationLockedOut".into(),
                note: Some(format!(
                    "{} consecutive failed verification codes: every code is refused for {}s",
                    self.limits.max_failures, self.limits.lockout_seconds
                )),
                action: "Verify".into(),
                secondary: None,
            });
        }
        for event in events {
            if let Err(e) = self.recorder.publish(&event, &target).await {
                tracing::warn!(error = %e, partner = %partner.name_any(), "cannot publish a verification event");
            }
        }
    }
}
