//! `purchase-guard verification`: enrolment of a partner's authenticator (R5) and the current
//! code from a secret, for scripts and tests.

use anyhow::{Context as _, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use purchase_guard_policy::verification::{self as rule, Algorithm, TotpSecret};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a partner's verification Secret with a new random TOTP secret, and print the
    /// otpauth:// URI and a QR code for an authenticator app. Then set the Partner's
    /// spec.verification.secretRef.name to the Secret's name.
    Enroll(EnrollArgs),
    /// Print the current verification code of a secret: a file holding the base32 secret, an
    /// otpauth:// URI, or the Secret as `kubectl get secret -o yaml` prints it.
    Code(CodeArgs),
}

#[derive(clap::Args)]
pub struct EnrollArgs {
    /// The Partner the secret is for (the account name shown by the authenticator).
    #[arg(long)]
    partner: String,
    /// The partner's namespace (its spec.namespace), where the Secret is created.
    #[arg(long, short = 'n')]
    namespace: String,
    /// The Secret's name.
    #[arg(long, default_value = "purchase-guard-verification")]
    secret: String,
    /// The issuer shown by the authenticator.
    #[arg(long, default_value = "purchase-guard")]
    issuer: String,
    /// Digits per code: 6 (what every authenticator app supports), 7 or 8.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(6..=8))]
    digits: u8,
    /// Seconds per code: 30 is what every authenticator app supports.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(15..=300))]
    period: u64,
    /// SHA1 (what every authenticator app supports), SHA256 or SHA512.
    #[arg(long, default_value = "SHA1", value_parser = ["SHA1", "SHA256", "SHA512"])]
    algorithm: String,
    /// Replace an existing Secret (a new secret: the old authenticator entry stops working).
    #[arg(long)]
    replace: bool,
    /// Create nothing: print the Secret as YAML instead (for a sealed or external secret
    /// store), then the URI and QR code.
    #[arg(long)]
    dry_run: bool,
    /// Do not print the QR code.
    #[arg(long)]
    no_qr: bool,
}

#[derive(clap::Args)]
pub struct CodeArgs {
    /// The file with the secret ("-": standard input).
    #[arg(long)]
    secret_file: PathBuf,
    /// The code at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<jiff::Timestamp>,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Enroll(args) => enroll(args),
        Command::Code(args) => code(args),
    }
}

fn algorithm(name: &str) -> Algorithm {
    match name {
        "SHA256" => Algorithm::SHA256,
        "SHA512" => Algorithm::SHA512,
        _ => Algorithm::SHA1,
    }
}

fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    for (what, value) in [("--partner", &args.partner), ("--issuer", &args.issuer)] {
        if value.contains(':') || value.is_empty() {
            bail!("{what} {value:?}: must be non-empty and contain no ':' (the otpauth URI's label separator)");
        }
    }
    let secret = totp_rs::Secret::generate();
    let totp = totp_rs::Builder::new()
        .with_algorithm(algorithm(&args.algorithm))
        .with_digits(args.digits)
        .with_step_duration(args.period)
        .with_secret(secret.clone())
        .with_issuer(Some(args.issuer.as_str()))
        .with_account_name(args.partner.as_str())
        .build()
        .context("cannot build the TOTP parameters")?;
    let uri = totp.to_url().context("cannot write the otpauth URI")?;
    let data: BTreeMap<String, ByteString> = [
        (rule::SECRET_KEY, secret.to_base32()),
        (rule::DIGITS_KEY, args.digits.to_string()),
        (rule::PERIOD_KEY, args.period.to_string()),
        (rule::ALGORITHM_KEY, args.algorithm.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    let manifest = Secret {
        metadata: ObjectMeta {
            name: Some(args.secret.clone()),
            namespace: Some(args.namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "purchase-guard".to_string(),
            )])),
            annotations: Some(BTreeMap::from([(
                "purchaseguard.io/partner".to_string(),
                args.partner.clone(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    };
    if args.dry_run {
        print!("{}", serde_yaml_ng::to_string(&manifest)?);
        println!("---");
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(create(&manifest, args.replace))?;
        eprintln!(
            "created Secret {}/{}; enable it with:\n  kubectl patch partner {} --type merge -p '{{\"spec\":{{\"verification\":{{\"secretRef\":{{\"name\":\"{}\"}}}}}}}}'",
            args.namespace, args.secret, args.partner, args.secret
        );
    }
    println!("{uri}");
    if !args.no_qr {
        let qr = qrcode::QrCode::new(uri.as_bytes()).context("cannot encode the URI as a QR code")?;
        let picture = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        println!("{picture}");
    }
    Ok(())
}

async fn create(manifest: &Secret, replace: bool) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (KUBECONFIG or in-cluster)")?;
    let namespace = manifest.metadata.namespace.as_deref().unwrap_or_default();
    let name = manifest.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client, namespace);
    match api.create(&PostParams::default(), manifest).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 && replace => {
            let current = api.get(name).await.context("cannot read the Secret to replace")?;
            let mut next = manifest.clone();
            next.metadata.resource_version = current.metadata.resource_version;
            api.replace(name, &PostParams::default(), &next)
                .await
                .with_context(|| format!("cannot replace Secret {namespace}/{name}"))?;
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            bail!(
                "Secret {namespace}/{name} already exists; pass --replace to rotate it (the partner's authenticators must enroll again)"
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot create Secret {namespace}/{name}")),
    }
}

/// A secret from a file's text: an otpauth:// URI, a Secret manifest (YAML or JSON), or the
/// base32 secret itself.
pub fn parse_secret_text(text: &str) -> anyhow::Result<TotpSecret> {
    let trimmed = text.trim();
    if trimmed.starts_with("otpauth://") {
        let totp = totp_rs::Totp::from_url_unchecked(trimmed).map_err(|e| anyhow::anyhow!("the otpauth URI: {e}"))?;
        return Ok(TotpSecret::new(
            &totp.secret().to_base32(),
            usize::from(totp.digits()),
            totp.step(),
            totp.algorithm(),
        )?);
    }
    if trimmed.contains(':') {
        let secret: Secret =
            serde_yaml_ng::from_str(trimmed).context("the file is neither base32 nor a Secret manifest")?;
        return Ok(TotpSecret::from_data(&purchase_guard::verification::secret_data(
            secret,
        ))?);
    }
    Ok(TotpSecret::new(trimmed, 6, 30, Algorithm::SHA1)?)
}

fn code(args: CodeArgs) -> anyhow::Result<()> {
    let text = if args.secret_file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&args.secret_file)
            .with_context(|| format!("cannot read {}", args.secret_file.display()))?
    };
    let secret = parse_secret_text(&text).with_context(|| format!("{}", args.secret_file.display()))?;
    let at = args.at.unwrap_or_else(jiff::Timestamp::now);
    let seconds = u64::try_from(at.as_second()).context("--at is before 1970")?;
    println!("{}", secret.code_at(seconds));
    Ok(())
}
