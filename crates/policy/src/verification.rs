//! Verification codes (R5): a one-time code (TOTP, RFC 6238) on every restriction operation of
//! a partner that enabled it. Pure: the time, the code, the partner's secret and its ledger
//! (the last accepted step, consecutive failures, lockout) are parameters; the caller stores
//! the ledger this returns, atomically, before it acts on an acceptance.
//!
//! - A code matches a step within one step either way of now (clock skew).
//! - A step is accepted at most once per partner: the ledger keeps the highest accepted step
//!   and refuses codes of that step or older ("reused"). The same operation presented again
//!   with the code that authorised it (the API server retrying a write after a conflict) is
//!   not a second use.
//! - Failed codes (malformed, invalid, expired) count; `max_failures` consecutive failures lock
//!   the partner out for `lockout` seconds, whatever the code. A missing code is not a guess
//!   and a reused code proves no new knowledge: neither counts.

use std::collections::BTreeMap;

use std::fmt;
/// The HMAC algorithms a secret may use.
pub use totp_rs::Algorithm;

/// The annotation a restriction operation carries its code in. Removed before the object is
/// persisted.
pub const CODE_ANNOTATION: &str = "purchaseguard.io/verification-code";

/// The Secret keys of a partner's TOTP secret.
pub const SECRET_KEY: &str = "secret";
pub const DIGITS_KEY: &str = "digits";
pub const PERIOD_KEY: &str = "period";
pub const ALGORITHM_KEY: &str = "algorithm";

/// Steps before the skew window in which a matching code is reported as expired rather than
/// invalid (5 minutes at 30 s).
pub const EXPIRED_LOOKBACK: u64 = 10;

/// A partner's TOTP parameters, parsed from its Secret. Its `Debug` shows no key material.
#[derive(Clone)]
pub struct TotpSecret {
    totp: totp_rs::Totp,
    period: u64,
    digits: usize,
}

/// Why a partner's Secret cannot verify codes. Each message names the key and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("key \"secret\" is missing: it holds the TOTP secret in base32 (RFC 4648, as authenticator apps show it)")]
    MissingSecret,
    #[error("key \"secret\" is not base32 (RFC 4648 letters A-Z and digits 2-7, padding optional)")]
    NotBase32,
    #[error("key \"secret\" holds {bits} bits; at least 128 are required (160 recommended)")]
    TooShort { bits: usize },
    #[error("key \"{key}\" is {value:?}; allowed: {allowed}")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: &'static str,
    },
}

fn text(data: &BTreeMap<String, Vec<u8>>, key: &'static str) -> Result<Option<String>, SecretError> {
    match data.get(key) {
        None => Ok(None),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(_) => Err(SecretError::Invalid {
                key,
                value: "<not UTF-8>".into(),
                allowed: "UTF-8 text",
            }),
        },
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpSecret")
            .field("period", &self.period)
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

impl TotpSecret {
    /// Parses a Secret's data: `secret` (base32, required), `digits` (6, 7 or 8; default 6),
    /// `period` (seconds, 15 to 300; default 30), `algorithm` (SHA1, SHA256 or SHA512; default
    /// SHA1, the one every authenticator app supports).
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Result<TotpSecret, SecretError> {
        let encoded = text(data, SECRET_KEY)?.ok_or(SecretError::MissingSecret)?;
        let digits = match text(data, DIGITS_KEY)?.as_deref() {
            None | Some("6") => 6,
            Some("7") => 7,
            Some("8") => 8,
            Some(other) => {
                return Err(SecretError::Invalid {
                    key: DIGITS_KEY,
                    value: other.into(),
                    allowed: "6, 7 or 8",
                });
            }
        };
        let period = match text(data, PERIOD_KEY)? {
            None => 30,
            Some(p) => match p.parse::<u64>() {
                Ok(p) if (15..=300).contains(&p) => p,
                _ => {
                    return Err(SecretError::Invalid {
                        key: PERIOD_KEY,
                        value: p,
                        allowed: "a number of seconds from 15 to 300 (30 for most authenticator apps)",
                    });
                }
            },
        };
        let algorithm = match text(data, ALGORITHM_KEY)?
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("SHA1") => Algorithm::SHA1,
            Some("SHA256") => Algorithm::SHA256,
            Some("SHA512") => Algorithm::SHA512,
            Some(other) => {
                return Err(SecretError::Invalid {
                    key: ALGORITHM_KEY,
                    value: other.into(),
                    allowed: "SHA1, SHA256 or SHA512",
                });
            }
        };
        TotpSecret::new(&encoded, digits, period, algorithm)
    }

    /// A secret from its base32 text and parameters.
    pub fn new(base32: &str, digits: usize, period: u64, algorithm: Algorithm) -> Result<TotpSecret, SecretError> {
        let compact: String = base32
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes =
            totp_rs::Secret::try_from_base32(compact.trim_end_matches('=')).map_err(|_| SecretError::NotBase32)?;
        if bytes.is_empty() {
            return Err(SecretError::NotBase32);
        }
        if bytes.len() < 16 {
            return Err(SecretError::TooShort { bits: bytes.len() * 8 });
        }
        let totp = totp_rs::Builder::new()
            .with_algorithm(algorithm)
            .with_digits(digits as u8)
            .with_step_duration(period)
            .with_skew(1)
            .with_secret(bytes)
            .build()
            .map_err(|_| SecretError::TooShort { bits: 0 })?;
        Ok(TotpSecret { totp, period, digits })
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    pub fn digits(&self) -> usize {
        self.digits
    }

    /// The code of the step that contains `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp.generate(unix_seconds).to_string()
    }

    /// Whether `code` (digits only) is the code of `step`, compared in constant time.
    fn matches(&self, code: &[u8], step: u64) -> bool {
        step.checked_mul(self.period).is_some_and(|at| {
            let expected = self.code_at(at);
            expected.len() == code.len() && expected.bytes().zip(code).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        })
    }
}

/// Why a partner that enabled verification cannot operate. The messages say how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error(
        "R5: partner \"{partner}\" requires verification codes (spec.verification) but Secret {namespace}/{name} does not exist: create it with `purchase-guard verification enroll --partner {partner} --namespace {namespace} --secret {name}`, or remove spec.verification"
    )]
    SecretNotFound {
        partner: String,
        namespace: String,
        name: String,
    },
    #[error(
        "R5: partner \"{partner}\" requires verification codes but Secret {namespace}/{name} cannot verify them: {error}; fix the Secret, or replace it with `purchase-guard verification enroll --partner {partner} --namespace {namespace} --secret {name} --replace`"
    )]
    SecretInvalid {
        partner: String,
        namespace: String,
        name: String,
        /// The [`SecretError`]'s message.
        error: String,
    },
    #[error(
        "R5: partner \"{partner}\" requires verification codes but purchase-guard cannot read Secret {namespace}/{name}: {error} (the Helm chart grants reading Secrets with verification.enabled=true)"
    )]
    Unreadable {
        partner: String,
        namespace: String,
        name: String,
        error: String,
    },
}

impl NotReady {
    /// A CamelCase reason for the `VerificationReady` condition and denials.
    pub fn reason(&self) -> &'static str {
        match self {
            NotReady::SecretNotFound { .. } => "SecretNotFound",
            NotReady::SecretInvalid { .. } => "SecretInvalid",
            NotReady::Unreadable { .. } => "SecretUnreadable",
        }
    }
}

/// How a partner's verification Secret was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretLookup<'a> {
    Found(&'a BTreeMap<String, Vec<u8>>),
    NotFound,
    Unreadable(String),
}

/// Whether a partner that enabled verification can operate, from its Secret.
pub fn readiness(partner: &str, namespace: &str, name: &str, secret: SecretLookup<'_>) -> Result<TotpSecret, NotReady> {
    let (partner, namespace, name) = (partner.to_string(), namespace.to_string(), name.to_string());
    match secret {
        SecretLookup::Found(data) => TotpSecret::from_data(data).map_err(|error| NotReady::SecretInvalid {
            partner,
            namespace,
            name,
            error: error.to_string(),
        }),
        SecretLookup::NotFound => Err(NotReady::SecretNotFound {
            partner,
            namespace,
            name,
        }),
        SecretLookup::Unreadable(error) => Err(NotReady::Unreadable {
            partner,
            namespace,
            name,
            error,
        }),
    }
}

/// How many failures lock a partner out, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u32,
    pub lockout_seconds: u64,
}

/// A partner's verification state, kept in the API server (one object per partner) and
/// replaced atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    /// The highest step accepted.
    pub last_step: Option<u64>,
    /// The operation that step authorised (an opaque digest from the caller).
    pub last_operation: Option<String>,
    /// Consecutive failures since the last acceptance or lockout.
    pub failures: u32,
    /// Unix seconds until which every code is refused.
    pub locked_until: Option<u64>,
}

/// Why a code was refused. The messages never contain the expected code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed { digits: usize },
    Invalid,
    Expired { seconds_ago: u64 },
    Reused,
    LockedOut { until: u64, seconds_left: u64 },
}

impl Refusal {
    /// A CamelCase reason (metrics label, `status.reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Missing => "VerificationCodeMissing",
            Refusal::Malformed { .. } => "VerificationCodeMalformed",
            Refusal::Invalid => "VerificationCodeInvalid",
            Refusal::Expired { .. } => "VerificationCodeExpired",
            Refusal::Reused => "VerificationCodeReused",
            Refusal::LockedOut { .. } => "VerificationLockedOut",
        }
    }

    /// Whether the refusal counts towards the lockout.
    pub fn counts(&self) -> bool {
        matches!(
            self,
            Refusal::Malformed { .. } | Refusal::Invalid | Refusal::Expired { .. }
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => write!(
                f,
                "R5: a verification code is required: add the current code from the partner's authenticator in the annotation {CODE_ANNOTATION}"
            ),
            Refusal::Malformed { digits } => write!(
                f,
                "R5: the verification code is malformed: a code is {digits} digits (spaces allowed)"
            ),
            Refusal::Invalid => write!(f, "R5: the verification code is invalid for this partner"),
            Refusal::Expired { seconds_ago } => write!(
                f,
                "R5: the verification code expired {seconds_ago}s ago: use the code the authenticator shows now"
            ),
            Refusal::Reused => write!(
                f,
                "R5: the verification code was already used (a code is accepted once, and never after a newer one): wait for the next code"
            ),
            Refusal::LockedOut { seconds_left, .. } => write!(
                f,
                "R5: the partner is locked out after repeated failed verification codes: every code is refused for another {seconds_left}s"
            ),
        }
    }
}

/// The verdict on one code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new step: the operation may proceed once the new ledger is stored.
    Accepted {
        step: u64,
    },
    /// The step last accepted, for the same operation: a retry of it, not a second use.
    Repeated {
        step: u64,
    },
    Refused(Refusal),
}

/// A verdict and the ledger to store for it (`None`: leave it as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub ledger: Option<Ledger>,
    /// This refusal started a lockout.
    pub locked_now: bool,
}

impl Judgement {
    fn unchanged(verdict: Verdict) -> Judgement {
        Judgement {
            verdict,
            ledger: None,
            locked_now: false,
        }
    }
}

/// Judges `code` for `operation` at `now` (unix seconds) against the partner's `ledger`.
pub fn judge(
    secret: &TotpSecret,
    code: Option<&str>,
    now: u64,
    ledger: &Ledger,
    operation: &str,
    limits: &Limits,
) -> Judgement {
    if let Some(until) = ledger.locked_until.filter(|until| *until > now) {
        return Judgement::unchanged(Verdict::Refused(Refusal::LockedOut {
            until,
            seconds_left: until - now,
        }));
    }
    // A lockout that has ended is forgotten with the next write.
    let base = if ledger.locked_until.is_some() {
        Ledger {
            failures: 0,
            locked_until: None,
            ..ledger.clone()
        }
    } else {
        ledger.clone()
    };
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Judgement::unchanged(Verdict::Refused(Refusal::Missing));
    };
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != secret.digits || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return failure(base, Refusal::Malformed { digits: secret.digits }, now, limits);
    }
    let token = digits.as_bytes();
    let current = now / secret.period;
    let window = current.saturating_sub(1)..=current.saturating_add(1);
    if let Some(step) = window.into_iter().find(|s| secret.matches(token, *s)) {
        return match base.last_step {
            Some(last) if step == last && base.last_operation.as_deref() == Some(operation) => {
                Judgement::unchanged(Verdict::Repeated { step })
            }
            Some(last) if step <= last => Judgement::unchanged(Verdict::Refused(Refusal::Reused)),
            _ => Judgement {
                verdict: Verdict::Accepted { step },
                ledger: Some(Ledger {
                    last_step: Some(step),
                    last_operation: Some(operation.to_string()),
                    failures: 0,
                    locked_until: None,
                }),
                locked_now: false,
            },
        };
    }
    let lookback = current.saturating_sub(1 + EXPIRED_LOOKBACK)..current.saturating_sub(1);
    if let Some(step) = lookback.rev().find(|s| secret.matches(token, *s)) {
        let ended = (step + 1) * secret.period;
        return failure(
            base,
            Refusal::Expired {
                seconds_ago: now.saturating_sub(ended),
            },
            now,
            limits,
        );
    }
    failure(base, Refusal::Invalid, now, limits)
}

fn failure(mut ledger: Ledger, refusal: Refusal, now: u64, limits: &Limits) -> Judgement {
    ledger.failures = ledger.failures.saturating_add(1);
    let locked_now = ledger.failures >= limits.max_failures.max(1);
    if locked_now {
        ledger.failures = 0;
        ledger.locked_until = Some(now.saturating_add(limits.lockout_seconds));
    }
    Judgement {
        verdict: Verdict::Refused(refusal),
        ledger: Some(ledger),
        locked_now,
    }
}

/// Whether a write of a PurchaseRestriction or ResellerDelegation is a restriction operation
/// that needs a code: a creation, or a change of its spec. Metadata-only changes and status
/// writes are not.
pub fn needs_code(operation: &str, spec_changed: bool) -> bool {
    match operation {
        "CREATE" => true,
        "UPDATE" => spec_changed,
        _ => false,
    }
}
