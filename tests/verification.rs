//! Verification codes (R5) as partner operators meet them, with `kubectl --as` against a
//! sandbox guarded by a real `purchase-guard run`: dist-emea requires codes, reseller-alpha
//! does not. Codes come from `purchase-guard verification code`, the Secret from
//! `purchase-guard verification enroll`.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::platform::{Platform, args};

const PERIOD: u64 = 15;
const SECRET: &str = "purchase-guard-verification";
const CODE: &str = "purchaseguard.io/verification-code";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `purchase-guard ARGS` with the platform admin's kubeconfig; must succeed.
fn purchase_guard(platform: &Platform, args: &[&str]) -> String {
    support::purchase_guard(&platform.kubeconfig, args)
}

/// `purchase-guard verification enroll` of dist-emea with 15 s codes, and `extra` arguments.
fn enroll(platform: &Platform, extra: &[&str]) -> String {
    let mut args = vec!["--period", "15"];
    args.extend_from_slice(extra);
    support::enroll_dist_emea(&platform.kubeconfig, &args)
}

/// dist-emea's authenticator: codes from its Secret, as a script would get them.
struct Authenticator {
    file: PathBuf,
    /// The newest step whose code was accepted.
    used: u64,
}

impl Authenticator {
    fn of(platform: &Platform) -> Authenticator {
        let file = platform.kubeconfig.with_extension("dist-emea-secret.yaml");
        let yaml = platform.kubectl_ok(&["get", "secret", SECRET, "-n", "dist-emea", "-o", "yaml"]);
        std::fs::write(&file, yaml).expect("writes the secret file");
        Authenticator { file, used: 0 }
    }

    /// The code of the step that contains `unix_seconds`.
    fn code_at(&self, platform: &Platform, unix_seconds: u64) -> String {
        let at = jiff::Timestamp::from_second(unix_seconds as i64)
            .expect("a time")
            .to_string();
        let out = purchase_guard(
            platform,
            &[
                "verification",
                "code",
                "--secret-file",
                self.file.to_str().expect("utf-8"),
                "--at",
                &at,
            ],
        );
        let code = out.trim().to_string();
        assert!(
            code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
            "a code: {out:?}"
        );
        code
    }

    /// A code of a step after every one used so far, within the skew window of now: waits for
    /// the clock when the next step is further than one step ahead.
    fn fresh(&mut self, platform: &Platform) -> String {
        loop {
            let now = unix_now();
            let step = now / PERIOD;
            let wanted = step.max(self.used + 1);
            if wanted <= step + 1 {
                self.used = wanted;
                return self.code_at(platform, wanted * PERIOD);
            }
            std::thread::sleep(Duration::from_secs((wanted - 1) * PERIOD - now + 1));
        }
    }
}

/// A merge patch of `resource` in dist-emea, with `code` in the annotation when given.
fn patch(spec: &str, code: Option<&str>) -> String {
    match code {
        Some(code) => format!(r#"{{"metadata":{{"annotations":{{"{CODE}":"{code}"}}}},"spec":{spec}}}"#),
        None => format!(r#"{{"spec":{spec}}}"#),
    }
}

/// `kubectl patch RESOURCE --type=merge -p PATCH` in dist-emea.
fn patch_args(resource: &str, patch: String) -> Vec<String> {
    ["-n", "dist-emea", "patch", resource, "--type=merge", "-p"]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(patch))
        .collect()
}

fn reason(text: &str) -> String {
    format!(r#"{{"reason":"{text}"}}"#)
}

fn annotations(platform: &Platform, resource: &str, namespace: &str) -> String {
    platform.get(resource, Some(namespace), "{.metadata.annotations}")
}

async fn platform_requiring_codes(test: &str) -> Platform {
    let mut platform = Platform::start(test).await;
    platform.start_replica(&[
        "--leader-election=false",
        "--verification-max-failures=4",
        "--verification-lockout=6s",
        "--verification-namespace=purchase-guard",
    ]);
    platform
}

fn enable(platform: &Platform) {
    platform.admin_patch(
        "partner/dist-emea",
        &format!(r#"{{"spec":{{"verification":{{"secretRef":{{"name":"{SECRET}"}}}}}}}}"#),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_that_requires_codes_needs_a_fresh_one_for_every_restriction_operation() {
    let platform = platform_requiring_codes("verification-operations").await;
    let globex = |p: String| patch_args("purchaserestriction/globex", p);

    // Without verification, a code is no requirement and never stored.
    platform.allowed(
        "dist-op",
        &args(&globex(patch(&reason("payment overdue 60 days"), None))),
        None,
    );
    platform.allowed(
        "alpha-op",
        &[
            "-n",
            "reseller-alpha",
            "patch",
            "purchaserestriction/acme",
            "--type=merge",
            "-p",
            &patch(&reason("fraud review 2026-11"), Some("123456")),
        ],
        None,
    );
    assert!(
        !annotations(&platform, "purchaserestriction/acme", "reseller-alpha").contains(CODE),
        "a code given to a partner without verification is not stored either"
    );

    // Enabled, but the Secret is missing: the partner cannot operate and is told how to fix it.
    enable(&platform);
    platform.wait_for(
        "partner/dist-emea",
        r#"{.status.conditions[?(@.type=="VerificationReady")].reason}=SecretNotFound"#,
    );
    platform.wait_for(
        "partner/dist-emea",
        r#"{.status.conditions[?(@.type=="Ready")].reason}=VerificationNotReady"#,
    );
    platform.refused(
        "dist-op",
        &args(&globex(patch(&reason("payment overdue 61 days"), Some("123456")))),
        None,
        &[
            "does not exist",
            "purchase-guard verification enroll --partner dist-emea",
        ],
    );

    // Enrolment: the Secret, the otpauth URI and a QR code.
    let printed = enroll(&platform, &[]);
    assert!(
        printed.contains("otpauth://totp/purchase-guard:dist-emea?") && printed.contains("period=15"),
        "{printed}"
    );
    assert!(printed.contains('█'), "a QR code is printed: {printed}");
    platform.wait_for(
        "partner/dist-emea",
        r#"{.status.conditions[?(@.type=="VerificationReady")].status}=True"#,
    );
    platform.wait_for(
        "partner/dist-emea",
        r#"{.status.conditions[?(@.type=="Ready")].status}=True"#,
    );
    let mut authenticator = Authenticator::of(&platform);

    // Each refusal says which it was, and never the expected code.
    let change = reason("payment overdue 62 days");
    let missing = platform.refused_output("dist-op", &args(&globex(patch(&change, None))));
    assert!(missing.contains("a verification code is required"), "{missing}");
    let current = authenticator.code_at(&platform, unix_now());
    let wrong = format!("{:06}", (current.parse::<u32>().expect("digits") + 500_000) % 1_000_000);
    let invalid = platform.refused_output("dist-op", &args(&globex(patch(&change, Some(&wrong)))));
    assert!(invalid.contains("the verification code is invalid"), "{invalid}");
    let old = authenticator.code_at(&platform, unix_now() - 2 * PERIOD);
    let expired = platform.refused_output("dist-op", &args(&globex(patch(&change, Some(&old)))));
    assert!(expired.contains("the verification code expired"), "{expired}");
    for out in [&missing, &invalid, &expired] {
        assert!(!out.contains(&current), "the expected code is never shown: {out}");
    }
    platform.wait_for_event("VerificationFailed on dist-emea", |e| {
        e.starts_with("VerificationFailed ") && e.contains("invalid")
    });

    // A dry run has no side effects, so it cannot count a failure: it checks no code (or it
    // would be a free oracle for guesses), only that one is given, and spends none.
    let mut dry = globex(patch(&change, None));
    dry.push("--dry-run=server".into());
    let out = platform.refused_output("dist-op", &args(&dry));
    assert!(out.contains("a verification code is required"), "{out}");
    let mut dry = globex(patch(&change, Some(&wrong)));
    dry.push("--dry-run=server".into());
    let out = platform.allowed("dist-op", &args(&dry), None);
    assert!(out.contains("a dry run does not check verification codes"), "{out}");
    let code = authenticator.fresh(&platform);
    // The valid code: admitted, and not stored.
    platform.allowed("dist-op", &args(&globex(patch(&change, Some(&code)))), None);
    assert_eq!(
        platform.get("purchaserestriction/globex", Some("dist-emea"), "{.spec.reason}"),
        "payment overdue 62 days"
    );
    assert!(
        !annotations(&platform, "purchaserestriction/globex", "dist-emea").contains(CODE),
        "the code is not stored"
    );
    let ledger = platform.kubectl_ok(&[
        "get",
        "configmap",
        "purchase-guard-verification.dist-emea",
        "-n",
        "purchase-guard",
        "-o",
        "jsonpath={.data}",
    ]);
    assert!(
        ledger.contains(&format!("\"lastStep\":\"{}\"", authenticator.used)),
        "{ledger}"
    );
    assert!(
        !ledger.contains(&code),
        "the ledger keeps the step, not the code: {ledger}"
    );
    // Used once: refused the second time, for another change.
    let reused = platform.refused_output(
        "dist-op",
        &args(&globex(patch(&reason("payment overdue 63 days"), Some(&code)))),
    );
    assert!(reused.contains("already used"), "{reused}");

    // A metadata-only edit is no restriction operation.
    platform.allowed(
        "dist-op",
        &[
            "-n",
            "dist-emea",
            "label",
            "purchaserestriction/globex",
            "team=collections",
        ],
        None,
    );

    // An operation refused by the rules does not spend the code: umbrella is not a reseller's
    // customer, so dist-emea has no authority over it (R2).
    let code = authenticator.fresh(&platform);
    let umbrella = support::platform::restriction("dist-emea", "umbrella", "Restricted", "fraud");
    let umbrella = umbrella.replace(
        r#""metadata":{"#,
        &format!(r#""metadata":{{"annotations":{{"{CODE}":"{code}"}},"#),
    );
    platform.refused("dist-op", &["create", "-f", "-"], Some(&umbrella), &["R2"]);
    // The same code then withdraws initech's decision: a withdrawal needs a code too.
    let withdraw = r#"{"withdrawal":{"reason":"customer paid in full"}}"#;
    let initech = |p: String| patch_args("purchaserestriction/initech", p);
    platform.refused(
        "dist-op",
        &args(&initech(patch(withdraw, None))),
        None,
        &["a verification code is required"],
    );
    platform.allowed("dist-op", &args(&initech(patch(withdraw, Some(&code)))), None);

    // Revocation: a DELETE cannot carry a code, so it is refused until spec.revocation, set
    // with a code, revoked the delegation.
    let delegation = [
        "-n",
        "dist-emea",
        "delete",
        "resellerdelegation/delegate-reseller-alpha",
    ];
    platform.refused("dist-op", &delegation, None, &["spec.revocation", CODE]);
    let revoke = r#"{"revocation":{"reason":"contract with reseller-alpha ended"}}"#;
    let target = |p: String| patch_args("resellerdelegation/delegate-reseller-alpha", p);
    platform.refused(
        "dist-op",
        &args(&target(patch(revoke, None))),
        None,
        &["a verification code is required"],
    );
    let code = authenticator.fresh(&platform);
    platform.allowed("dist-op", &args(&target(patch(revoke, Some(&code)))), None);
    platform.wait_for_in(
        "resellerdelegation/delegate-reseller-alpha",
        Some("dist-emea"),
        r#"{.status.conditions[?(@.type=="Active")].reason}=Revoked"#,
    );
    platform.wait_for(
        "partner/reseller-alpha",
        r#"{.status.conditions[?(@.type=="RestrictionDelegated")].status}=False"#,
    );
    platform.allowed("dist-op", &delegation, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_lock_the_partner_out_until_the_lockout_ends() {
    let platform = platform_requiring_codes("verification-lockout").await;
    // Before verification: any distributor may revoke with spec.revocation, for good.
    let delegation = |p: String| patch_args("resellerdelegation/delegate-reseller-alpha", p);
    platform.allowed(
        "dist-op",
        &args(&delegation(patch(
            r#"{"revocation":{"reason":"contract ended"}}"#,
            None,
        ))),
        None,
    );
    platform.refused(
        "dist-op",
        &args(&delegation(patch(r#"{"revocation":null}"#, None))),
        None,
        &["spec.revocation cannot be changed or removed"],
    );
    enroll(&platform, &["--no-qr"]);
    enable(&platform);
    platform.wait_for(
        "partner/dist-emea",
        r#"{.status.conditions[?(@.type=="VerificationReady")].status}=True"#,
    );
    let mut authenticator = Authenticator::of(&platform);
    let change = |n: usize, code: Option<&str>| {
        patch_args(
            "purchaserestriction/globex",
            patch(&reason(&format!("payment overdue, reminder {n}")), code),
        )
    };
    // Missing codes are no guesses: they never lock anyone out.
    for n in 0..6 {
        let out = platform.refused_output("dist-op", &args(&change(n, None)));
        assert!(out.contains("a verification code is required"), "{out}");
    }
    // Four guesses (the configured limit) lock dist-emea out.
    for n in 0..4 {
        let out = platform.refused_output("dist-op", &args(&change(n, Some("000000"))));
        assert!(
            out.contains("invalid") || out.contains("expired"),
            "guess {n} is refused as a guess: {out}"
        );
    }
    platform.wait_for_event("VerificationLockedOut on dist-emea", |e| {
        e.starts_with("VerificationLockedOut ") && e.contains("4 consecutive failed verification codes")
    });
    let locked_at = Instant::now();
    let valid = authenticator.fresh(&platform);
    let out = platform.refused_output("dist-op", &args(&change(10, Some(&valid))));
    assert!(
        out.contains("locked out"),
        "a valid code is refused while locked out: {out}"
    );
    // The lockout ends (6 s): the same code, not spent by the refusal, is accepted.
    let remaining = Duration::from_secs(7).saturating_sub(locked_at.elapsed());
    std::thread::sleep(remaining);
    let valid = if unix_now() / PERIOD > authenticator.used + 1 {
        authenticator.fresh(&platform)
    } else {
        valid
    };
    // This time with `kubectl apply`, which records the whole manifest, code included, in an
    // annotation of its own: no copy of the code is stored.
    let manifest =
        support::platform::restriction("dist-emea", "globex", "Restricted", "payment overdue, settled later").replace(
            r#""metadata":{"#,
            &format!(r#""metadata":{{"annotations":{{"{CODE}":"{valid}"}},"#),
        );
    platform.allowed("dist-op", &["apply", "-f", "-"], Some(&manifest));
    let stored = platform.kubectl_ok(&["get", "purchaserestriction/globex", "-n", "dist-emea", "-o", "json"]);
    assert!(stored.contains("payment overdue, settled later"), "{stored}");
    assert!(
        stored.contains("last-applied-configuration"),
        "kubectl apply recorded its manifest: {stored}"
    );
    assert!(
        !stored.contains(CODE) && !stored.contains(&format!("\\\"{valid}\\\"")),
        "no copy of the code is stored: {stored}"
    );
}

mod race {
    //! Two replicas, each with its own client, caches and verifier, judging the same code at
    //! the same moment: 100 attempts per round, 50 rounds, exactly one admitted per round.
    //! The replicas' clock is a test clock that moves one step per round; the ledger is the
    //! sandbox's, as it would be the API server's.

    use super::support;
    use kube::runtime::events::{Recorder, Reporter};
    use purchase_guard::verification::{self, Verifier};
    use purchase_guard::webhook::server::{Which, review_body};
    use purchase_guard::webhook::{Settings, Webhooks};
    use purchase_guard_policy::verification::{Algorithm, Limits, TotpSecret};
    use purchase_guard_sandbox::Sandbox;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::{Duration, Instant};

    /// RFC 6238's SHA-1 test key.
    const KEY: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const ROUNDS: i64 = 50;
    const ATTEMPTS: usize = 100;

    static NOW: AtomicI64 = AtomicI64::new(1_900_000_005);

    fn clock() -> jiff::Timestamp {
        jiff::Timestamp::from_second(NOW.load(Ordering::SeqCst)).expect("a time")
    }

    struct Replica {
        webhooks: Arc<Webhooks>,
        verification: Arc<verification::Metrics>,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn replica(sandbox: &Sandbox) -> Replica {
        let client = support::sandbox_client(sandbox);
        let (stores, stop) = support::follower_caches(client.clone()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while stores.verification_of_namespace("dist-emea").is_none() {
            assert!(
                Instant::now() < deadline,
                "the caches never saw dist-emea's verification"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let webhooks = Arc::new(Webhooks::new(Settings::default()));
        webhooks.set_stores(stores);
        let metrics = Arc::new(verification::Metrics::default());
        let reporter = Reporter {
            controller: "purchase-guard".into(),
            instance: None,
        };
        webhooks.set_verifier(Arc::new(Verifier::new(
            client.clone(),
            "purchase-guard".into(),
            Limits {
                max_failures: 5,
                lockout_seconds: 60,
            },
            Recorder::new(client, reporter),
            metrics.clone(),
            clock,
        )));
        Replica {
            webhooks,
            verification: metrics,
            _stop: stop,
        }
    }

    /// dist-op changes globex's reason with `code`, as the API server sends it.
    fn attempt(old: &Value, round: i64, i: usize, code: &str) -> Vec<u8> {
        let mut object = old.clone();
        object["spec"]["reason"] = json!(format!("payment overdue, round {round}, attempt {i}"));
        object["metadata"]["annotations"] = json!({"purchaseguard.io/verification-code": code});
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": format!("uid-{round}-{i}"),
            "kind": {"group": "purchaseguard.io", "version": "v1alpha1", "kind": "PurchaseRestriction"},
            "resource": {"group": "purchaseguard.io", "version": "v1alpha1", "resource": "purchaserestrictions"},
            "name": "globex", "namespace": "dist-emea", "operation": "UPDATE",
            "userInfo": {"username": "dist-op", "groups": ["system:authenticated"]},
            "object": object, "oldObject": old, "dryRun": false,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}
        }})
        .to_string()
        .into_bytes()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_racing_one_code_admit_exactly_one_attempt_per_round() {
        let (sandbox, kubeconfig) = support::examples_sandbox(
            "verification-race",
            &[
                "00-namespaces.yaml",
                "01-partners.yaml",
                "03-customers.yaml",
                "05-restrictions.yaml",
            ],
        )
        .await;
        let ok = |args: &[&str], stdin: Option<&str>| {
            let (ok, out) = support::kubectl(&kubeconfig, args, stdin);
            assert!(ok, "kubectl {args:?}: {out}");
            out
        };
        ok(&["create", "namespace", "purchase-guard"], None);
        ok(
            &[
                "create",
                "secret",
                "generic",
                "otp",
                "-n",
                "dist-emea",
                &format!("--from-literal=secret={KEY}"),
            ],
            None,
        );
        ok(
            &[
                "patch",
                "partner/dist-emea",
                "--type=merge",
                "-p",
                r#"{"spec":{"verification":{"secretRef":{"name":"otp"}}}}"#,
            ],
            None,
        );
        let old: Value = serde_json::from_str(&ok(
            &["get", "purchaserestriction/globex", "-n", "dist-emea", "-o", "json"],
            None,
        ))
        .expect("json");
        let replicas = [replica(&sandbox).await, replica(&sandbox).await];
        let secret = TotpSecret::new(KEY, 6, 30, Algorithm::SHA1).expect("the key");
        let admission = purchase_guard::webhook::Metrics::default();
        for round in 0..ROUNDS {
            let now = NOW.fetch_add(30, Ordering::SeqCst) + 30;
            let code = secret.code_at(now as u64);
            let bodies: Vec<Vec<u8>> = (0..ATTEMPTS).map(|i| attempt(&old, round, i, &code)).collect();
            let replies = futures::future::join_all(
                bodies
                    .iter()
                    .enumerate()
                    .map(|(i, body)| review_body(&replicas[i % 2].webhooks, &admission, Which::Verification, body)),
            )
            .await;
            let mut admitted = 0;
            for reply in replies {
                assert_eq!(reply.status, 200);
                let review: Value = serde_json::from_slice(&reply.body).expect("an AdmissionReview");
                let response = &review["response"];
                if response["allowed"] == json!(true) {
                    admitted += 1;
                    assert!(response["patch"].is_string(), "the code is removed: {response}");
                } else {
                    assert_eq!(
                        response["status"]["details"]["causes"][0]["reason"], "VerificationCodeReused",
                        "round {round}: every other attempt is refused as reused: {response}"
                    );
                }
            }
            assert_eq!(
                admitted, 1,
                "round {round}: exactly one of {ATTEMPTS} attempts is admitted"
            );
            let ledger = ok(
                &[
                    "get",
                    "configmap",
                    "purchase-guard-verification.dist-emea",
                    "-n",
                    "purchase-guard",
                    "-o",
                    "jsonpath={.data.lastStep}",
                ],
                None,
            );
            assert_eq!(
                ledger,
                (now / 30).to_string(),
                "round {round}: the ledger holds this round's step"
            );
        }
        let accepted: u64 = replicas
            .iter()
            .map(|r| r.verification.count("dist-emea", "Accepted"))
            .sum();
        let reused: u64 = replicas
            .iter()
            .map(|r| r.verification.count("dist-emea", "VerificationCodeReused"))
            .sum();
        assert_eq!(accepted, ROUNDS as u64);
        assert_eq!(reused, (ROUNDS as u64) * (ATTEMPTS as u64 - 1));
        for (n, r) in replicas.iter().enumerate() {
            let judged = r.verification.count("dist-emea", "Accepted")
                + r.verification.count("dist-emea", "VerificationCodeReused");
            assert_eq!(
                judged,
                ROUNDS as u64 * ATTEMPTS as u64 / 2,
                "replica {n} judged its half of every round"
            );
        }
    }
}
