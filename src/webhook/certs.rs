//! Self-managed webhook certificates: a CA and a serving certificate kept in one Secret that
//! every replica agrees on (creation and renewal use optimistic concurrency, so one replica
//! wins and the others adopt its result), the `caBundle` of purchase-guard's own webhook
//! configurations kept equal to the trusted CAs, and renewal before expiry.
//!
//! The serving certificate is renewed when less than a third of its validity is left, signed
//! by the same CA, so the `caBundle` does not change and no admission fails across the switch.
//! The CA is renewed when it would expire before a freshly issued serving certificate; the new
//! CA is then trusted next to the old one until the old one expires, and each replica writes
//! the bundle into the webhook configurations before it serves a certificate from the new CA.

use super::tls::{self, Pair, ServingCert};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";

/// Where the certificates live and what they cover.
/// Why the self-managed certificates could not be made current (retried).
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        source: kube::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{0} kept changing while being written; will retry")]
    KeptChanging(String),
}

#[derive(Clone, Debug)]
pub struct SelfManaged {
    pub namespace: String,
    pub secret: String,
    /// The webhook Service; the certificate covers its in-cluster DNS names.
    pub service: String,
    /// Names of Validating/MutatingWebhookConfigurations whose `caBundle` is kept current.
    pub configurations: Vec<String>,
    /// Validity of serving certificates.
    pub validity: Duration,
    /// Validity of the CA.
    pub ca_validity: Duration,
    /// How often the Secret and the configurations are checked.
    pub check_every: Duration,
}

/// What the Secret holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Material {
    /// Every CA to trust (PEM bundle): the signing CA first.
    pub bundle: String,
    pub ca: Pair,
    pub serving: Pair,
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key).and_then(|b| String::from_utf8(b.0.clone()).ok())
}

fn remaining(cert: &str, now: SystemTime) -> Option<(Duration, Duration)> {
    let (from, to) = tls::validity(cert).ok()?;
    let total = to.duration_since(from).ok()?;
    Some((to.duration_since(now).unwrap_or_default(), total))
}

/// The PEM blocks of a bundle that are still valid at `now`.
fn valid_blocks(bundle: &str, now: SystemTime) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in bundle.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            if remaining(&current, now).is_some_and(|(left, _)| left > Duration::ZERO) {
                out.push(std::mem::take(&mut current));
            } else {
                current.clear();
            }
        }
    }
    out
}

impl SelfManaged {
    fn dns_names(&self) -> Vec<String> {
        tls::service_dns_names(&self.service, &self.namespace)
    }

    fn read(&self, secret: &Secret) -> Option<Material> {
        let data = secret.data.as_ref()?;
        let bundle = text(data, CA_CERT)?;
        let material = Material {
            ca: Pair {
                cert: valid_blocks(&bundle, SystemTime::now()).first()?.clone(),
                key: text(data, CA_KEY)?,
            },
            bundle,
            serving: Pair {
                cert: text(data, TLS_CERT)?,
                key: text(data, TLS_KEY)?,
            },
        };
        tls::certified_key(
            material.serving.cert.as_bytes(),
            material.serving.key.as_bytes(),
            "secret",
        )
        .ok()?;
        Some(material)
    }

    /// What to store next: unchanged when current, a renewed serving certificate, or a new CA.
    fn next(&self, current: Option<&Material>, now: SystemTime) -> Result<Option<Material>, tls::TlsError> {
        // Renewal with a third of the configured validity left (certificates are backdated a
        // little, so their own window is longer than the validity).
        let serving_ok = |m: &Material| {
            remaining(&m.serving.cert, now).is_some_and(|(left, total)| left > total.min(self.validity) / 3)
        };
        let ca_ok = |m: &Material| remaining(&m.ca.cert, now).is_some_and(|(left, _)| left > self.validity);
        match current {
            Some(m) if serving_ok(m) && ca_ok(m) => Ok(None),
            Some(m) if ca_ok(m) => Ok(Some(Material {
                bundle: valid_blocks(&m.bundle, now).concat(),
                ca: m.ca.clone(),
                serving: tls::issue(&m.ca, &self.dns_names(), self.validity)?,
            })),
            previous => {
                let ca = tls::new_authority("purchase-guard webhook CA", self.ca_validity)?;
                let serving = tls::issue(&ca, &self.dns_names(), self.validity)?;
                // The old CA stays trusted while certificates it signed may still be served.
                let old = previous
                    .map(|m| valid_blocks(&m.bundle, now).concat())
                    .unwrap_or_default();
                Ok(Some(Material {
                    bundle: format!("{}{old}", ca.cert),
                    ca,
                    serving,
                }))
            }
        }
    }

    fn secret_data(m: &Material) -> BTreeMap<String, ByteString> {
        [
            (CA_CERT, &m.bundle),
            (CA_KEY, &m.ca.key),
            (TLS_CERT, &m.serving.cert),
            (TLS_KEY, &m.serving.key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
    }

    /// Makes the Secret hold current material and returns it. Concurrent replicas converge:
    /// a lost create or replace race is followed by reading the winner's Secret.
    pub async fn ensure_secret(&self, client: &Client) -> Result<Material, CertError> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        for _ in 0..5 {
            let existing = api.get_opt(&self.secret).await.map_err(|source| CertError::Api {
                action: "reading",
                object: format!("Secret {}/{}", self.namespace, self.secret),
                source,
            })?;
            let current = existing.as_ref().and_then(|s| self.read(s));
            let next = self.next(current.as_ref(), SystemTime::now())?;
            let Some(next) = next else {
                // `next` returns None only when the current material is valid.
                match current {
                    Some(current) => return Ok(current),
                    None => continue,
                }
            };
            let result = match existing {
                None => {
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(self.secret.clone()),
                            namespace: Some(self.namespace.clone()),
                            labels: Some(
                                [("app.kubernetes.io/managed-by".to_string(), "purchase-guard".to_string())].into(),
                            ),
                            ..Default::default()
                        },
                        type_: Some("Opaque".into()),
                        data: Some(Self::secret_data(&next)),
                        ..Default::default()
                    };
                    api.create(&PostParams::default(), &secret).await.map(|_| ())
                }
                Some(mut secret) => {
                    // resourceVersion stays set: a concurrent change makes this a 409.
                    secret.data = Some(Self::secret_data(&next));
                    secret.string_data = None;
                    api.replace(&self.secret, &PostParams::default(), &secret)
                        .await
                        .map(|_| ())
                }
            };
            match result {
                Ok(()) => {
                    tracing::info!(secret = %self.secret, "webhook certificate written");
                    return Ok(next);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(source) => {
                    return Err(CertError::Api {
                        action: "writing",
                        object: format!("Secret {}/{}", self.namespace, self.secret),
                        source,
                    });
                }
            }
        }
        Err(CertError::KeptChanging(format!(
            "Secret {}/{}",
            self.namespace, self.secret
        )))
    }

    /// Sets `caBundle` on every webhook of the named configurations that exist.
    pub async fn patch_ca_bundles(&self, client: &Client, bundle: &str) -> Result<(), CertError> {
        let encoded = ByteString(bundle.as_bytes().to_vec());
        macro_rules! patch_kind {
            ($kind:ty) => {
                let api: Api<$kind> = Api::all(client.clone());
                for name in &self.configurations {
                    let Some(mut config) = api.get_opt(name).await.map_err(|source| CertError::Api {
                        action: "reading",
                        object: name.clone(),
                        source,
                    })? else {
                        continue;
                    };
                    let mut changed = false;
                    for hook in config.webhooks.iter_mut().flatten() {
                        if hook.client_config.ca_bundle.as_ref() != Some(&encoded) {
                            hook.client_config.ca_bundle = Some(encoded.clone());
                            changed = true;
                        }
                    }
                    if changed {
                        api.replace(&config.name_any(), &PostParams::default(), &config)
                            .await
                            .map_err(|source| CertError::Api {
                                action: "writing the caBundle of",
                                object: name.clone(),
                                source,
                            })?;
                        tracing::info!(configuration = %name, "caBundle updated");
                    }
                }
            };
        }
        patch_kind!(ValidatingWebhookConfiguration);
        patch_kind!(MutatingWebhookConfiguration);
        Ok(())
    }

    /// One round: the Secret, then the caBundles, then the served certificate.
    pub async fn sync(&self, client: &Client, serving: Option<&ServingCert>) -> Result<Material, CertError> {
        let material = self.ensure_secret(client).await?;
        self.patch_ca_bundles(client, &material.bundle).await?;
        if let Some(serving) = serving {
            let key = tls::certified_key(
                material.serving.cert.as_bytes(),
                material.serving.key.as_bytes(),
                "secret",
            )?;
            if key.cert[0].as_ref() != serving.leaf().as_slice() {
                serving.replace(key);
                tracing::info!("serving the webhook certificate from the Secret");
            }
        }
        Ok(material)
    }

    /// The first certificate: retried until the Secret can be read or written.
    pub async fn initial(&self, client: &Client) -> Arc<ServingCert> {
        let mut delay = Duration::from_millis(500);
        loop {
            match self.sync(client, None).await {
                Ok(m) => match tls::certified_key(m.serving.cert.as_bytes(), m.serving.key.as_bytes(), "secret") {
                    Ok(key) => return ServingCert::new(key),
                    Err(e) => tracing::error!(error = %e, "the webhook certificate does not load"),
                },
                Err(e) => tracing::warn!(error = %e, "webhook certificate not ready; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Keeps the Secret, the caBundles and the served certificate current.
    pub async fn keep_current(self, client: Client, serving: Arc<ServingCert>) {
        loop {
            tokio::time::sleep(self.check_every).await;
            if let Err(e) = self.sync(&client, Some(&serving)).await {
                tracing::warn!(error = %e, "webhook certificate check failed; retrying");
            }
        }
    }
}
