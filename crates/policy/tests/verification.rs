//! R5: the one-time verification code rule, with an injected clock.

use proptest::prelude::*;
use purchase_guard_policy::verification::{
    Algorithm, Judgement, Ledger, Limits, Refusal, SecretError, TotpSecret, Verdict, judge, needs_code,
};
use std::collections::BTreeMap;

/// RFC 6238 appendix B's SHA-1 key, "12345678901234567890", in base32.
const RFC_KEY: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const LIMITS: Limits = Limits {
    max_failures: 3,
    lockout_seconds: 600,
};

fn secret() -> TotpSecret {
    TotpSecret::new(RFC_KEY, 6, 30, Algorithm::SHA1).expect("the RFC key")
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn refused(j: &Judgement) -> Option<&Refusal> {
    match &j.verdict {
        Verdict::Refused(r) => Some(r),
        _ => None,
    }
}

#[test]
fn the_rfc_6238_test_vectors() {
    // Appendix B, SHA-1, 8 digits.
    let eight = TotpSecret::new(RFC_KEY, 8, 30, Algorithm::SHA1).expect("key");
    for (time, code) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(eight.code_at(time), code, "at {time}");
    }
}

#[test]
fn secrets_are_parsed_with_clear_errors() {
    let ok = TotpSecret::from_data(&data(&[("secret", RFC_KEY)])).expect("defaults");
    assert_eq!((ok.digits(), ok.period()), (6, 30));
    // Lower case, spaces and padding as apps and humans write them.
    TotpSecret::from_data(&data(&[("secret", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq==")])).expect("lenient");
    let cases: Vec<(BTreeMap<String, Vec<u8>>, SecretError)> = vec![
        (data(&[]), SecretError::MissingSecret),
        (data(&[("secret", "not base 32!")]), SecretError::NotBase32),
        (data(&[("secret", "GEZDGNBV")]), SecretError::TooShort { bits: 40 }),
        (
            data(&[("secret", RFC_KEY), ("digits", "9")]),
            SecretError::Invalid {
                key: "digits",
                value: "9".into(),
                allowed: "6, 7 or 8",
            },
        ),
        (
            data(&[("secret", RFC_KEY), ("algorithm", "md5")]),
            SecretError::Invalid {
                key: "algorithm",
                value: "MD5".into(),
                allowed: "SHA1, SHA256 or SHA512",
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(TotpSecret::from_data(&input).unwrap_err(), expected);
    }
    let period = TotpSecret::from_data(&data(&[("secret", RFC_KEY), ("period", "5")])).unwrap_err();
    assert!(period.to_string().contains("\"period\""), "{period}");
    assert!(!format!("{ok:?}").contains(RFC_KEY), "Debug shows no key material");
}

#[test]
fn each_refusal_has_its_own_reason_and_message() {
    let s = secret();
    let now = 1_800_000_000;
    let ledger = Ledger::default();
    let missing = judge(&s, None, now, &ledger, "op", &LIMITS);
    let blank = judge(&s, Some("  "), now, &ledger, "op", &LIMITS);
    let malformed = judge(&s, Some("12ab56"), now, &ledger, "op", &LIMITS);
    let current = s.code_at(now);
    let wrong = format!("{:06}", (current.parse::<u32>().unwrap() + 1) % 1_000_000);
    let invalid = judge(&s, Some(&wrong), now, &ledger, "op", &LIMITS);
    let expired = judge(&s, Some(&s.code_at(now - 60)), now, &ledger, "op", &LIMITS);
    let accepted = judge(&s, Some(&current), now, &ledger, "op", &LIMITS);
    let after = accepted.ledger.clone().expect("an acceptance is stored");
    let reused = judge(&s, Some(&current), now + 1, &after, "another op", &LIMITS);
    let got: Vec<Option<&Refusal>> = vec![
        refused(&missing),
        refused(&blank),
        refused(&malformed),
        refused(&invalid),
        refused(&expired),
        refused(&reused),
    ];
    assert_eq!(got[0], Some(&Refusal::Missing));
    assert_eq!(got[1], Some(&Refusal::Missing));
    assert_eq!(got[2], Some(&Refusal::Malformed { digits: 6 }));
    assert_eq!(got[3], Some(&Refusal::Invalid));
    // The step two before now ended (now - 30 rounded down to the step) seconds ago.
    assert!(matches!(got[4], Some(Refusal::Expired { seconds_ago }) if *seconds_ago <= 60 && *seconds_ago >= 30));
    assert_eq!(got[5], Some(&Refusal::Reused));
    let reasons: std::collections::BTreeSet<&str> = got[1..].iter().map(|r| r.unwrap().reason()).collect();
    assert_eq!(reasons.len(), 5, "five distinct reasons: {reasons:?}");
    assert!(matches!(accepted.verdict, Verdict::Accepted { .. }));
    for r in got.into_iter().flatten() {
        assert!(!r.to_string().contains(&current), "never the expected code: {r}");
    }
    // Missing and reused codes count for nothing; the others count one failure each.
    assert_eq!(missing.ledger, None);
    assert_eq!(reused.ledger, None);
    for j in [&malformed, &invalid, &expired] {
        assert_eq!(j.ledger.as_ref().map(|l| l.failures), Some(1));
    }
}

#[test]
fn skew_of_one_step_either_way_is_tolerated_and_spaces_are_ignored() {
    let s = secret();
    let now = 1_800_000_015;
    for offset in [-30i64, 0, 30] {
        let code = s.code_at((now as i64 + offset) as u64);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        let j = judge(&s, Some(&spaced), now, &Ledger::default(), "op", &LIMITS);
        assert!(matches!(j.verdict, Verdict::Accepted { .. }), "offset {offset}: {j:?}");
    }
    let ahead = judge(&s, Some(&s.code_at(now + 60)), now, &Ledger::default(), "op", &LIMITS);
    assert_eq!(refused(&ahead), Some(&Refusal::Invalid), "two steps ahead");
}

#[test]
fn a_retry_of_the_same_operation_is_not_a_second_use() {
    let s = secret();
    let now = 1_800_000_000;
    let code = s.code_at(now);
    let first = judge(&s, Some(&code), now, &Ledger::default(), "create ns/a", &LIMITS);
    let ledger = first.ledger.expect("stored");
    let retry = judge(&s, Some(&code), now + 2, &ledger, "create ns/a", &LIMITS);
    assert!(matches!(retry.verdict, Verdict::Repeated { .. }));
    assert_eq!(retry.ledger, None);
    let other = judge(&s, Some(&code), now + 2, &ledger, "create ns/b", &LIMITS);
    assert_eq!(refused(&other), Some(&Refusal::Reused));
}

#[test]
fn lockout_after_max_failures_and_its_expiry() {
    let s = secret();
    let mut now = 1_800_000_000;
    let mut ledger = Ledger::default();
    for i in 1..=LIMITS.max_failures {
        let j = judge(&s, Some("000000"), now, &ledger, "op", &LIMITS);
        assert_eq!(j.locked_now, i == LIMITS.max_failures, "failure {i}");
        ledger = j.ledger.expect("a failure is stored");
        now += 1;
    }
    let until = ledger.locked_until.expect("locked");
    let valid = judge(&s, Some(&s.code_at(now)), now, &ledger, "op", &LIMITS);
    assert!(matches!(refused(&valid), Some(Refusal::LockedOut { until: u, .. }) if *u == until));
    assert_eq!(valid.ledger, None, "a refusal while locked out changes nothing");
    assert!(
        refused(&valid).unwrap().to_string().contains("locked out"),
        "the message says so"
    );
    now = until;
    let after = judge(&s, Some(&s.code_at(now)), now, &ledger, "op", &LIMITS);
    assert!(matches!(after.verdict, Verdict::Accepted { .. }), "{after:?}");
    let stored = after.ledger.expect("stored");
    assert_eq!((stored.failures, stored.locked_until), (0, None));
}

#[test]
fn only_creations_and_spec_changes_need_a_code() {
    assert!(needs_code("CREATE", false));
    assert!(needs_code("UPDATE", true));
    assert!(!needs_code("UPDATE", false));
    assert!(!needs_code("DELETE", true));
    assert!(!needs_code("CONNECT", true));
}

fn any_code() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{6}", "[0-9 ]{0,9}", ".{0,8}",]
}

proptest! {
    #[test]
    fn any_accepted_code_is_within_the_skew_window(
        now in 1_000_000_000u64..3_000_000_000,
        offset in -400i64..400,
        guess in any_code(),
        use_guess in any::<bool>(),
    ) {
        let s = secret();
        let code = if use_guess { guess } else { s.code_at((now as i64 + offset) as u64) };
        let j = judge(&s, Some(&code), now, &Ledger::default(), "op", &LIMITS);
        if let Verdict::Accepted { step } = j.verdict {
            let current = now / 30;
            prop_assert!(step + 1 >= current && step <= current + 1, "step {step}, now's step {current}");
            prop_assert_eq!(s.code_at(step * 30), code.replace(' ', ""));
        }
    }

    #[test]
    fn no_step_is_accepted_twice(
        start in 1_000_000_000u64..3_000_000_000,
        moves in proptest::collection::vec((0u64..45, -40i64..40, 0u8..3), 1..60),
    ) {
        let s = secret();
        let mut now = start;
        let mut ledger = Ledger::default();
        let mut accepted: Vec<u64> = Vec::new();
        for (i, (advance, offset, op)) in moves.into_iter().enumerate() {
            now += advance;
            let code = s.code_at((now as i64 + offset) as u64);
            let j = judge(&s, Some(&code), now, &ledger, &format!("op{op}"), &LIMITS);
            match j.verdict {
                Verdict::Accepted { step } => {
                    prop_assert!(!accepted.contains(&step), "step {step} accepted again at move {i}");
                    prop_assert!(accepted.last().is_none_or(|last| step > *last), "steps only move forward");
                    accepted.push(step);
                }
                Verdict::Repeated { step } => {
                    prop_assert_eq!(accepted.last(), Some(&step), "only the last step is repeated");
                    let name = format!("op{op}");
                    prop_assert_eq!(ledger.last_operation.as_deref(), Some(name.as_str()));
                }
                Verdict::Refused(_) => {}
            }
            if let Some(next) = j.ledger {
                ledger = next;
            }
        }
    }

    #[test]
    fn a_locked_out_partner_is_refused_whatever_the_code(
        now in 1_000_000_000u64..3_000_000_000,
        left in 1u64..10_000,
        guess in any_code(),
        use_valid in any::<bool>(),
        failures in 0u32..10,
    ) {
        let s = secret();
        let code = if use_valid { s.code_at(now) } else { guess };
        let ledger = Ledger { last_step: None, last_operation: None, failures, locked_until: Some(now + left) };
        let j = judge(&s, Some(&code), now, &ledger, "op", &LIMITS);
        prop_assert_eq!(j.verdict, Verdict::Refused(Refusal::LockedOut { until: now + left, seconds_left: left }));
        prop_assert_eq!(j.ledger, None);
    }
}
