//! The cluster CA and, with the simulation, kube-controller-manager's CSR signer: an approved
//! CertificateSigningRequest for one of the `kubernetes.io/` signers it serves gets a
//! certificate signed by the cluster CA (the one in every namespace's `kube-root-ca.crt`).

use super::*;
use base64::Engine;

/// The signers kube-controller-manager's csrsigning controller serves.
const SIGNERS: [&str; 3] = [
    "kubernetes.io/kube-apiserver-client",
    "kubernetes.io/kube-apiserver-client-kubelet",
    "kubernetes.io/kubelet-serving",
];

/// kube-controller-manager's `--cluster-signing-duration` default (one year).
const DEFAULT_SECONDS: i64 = 365 * 24 * 3600;

/// The cluster's CA: its certificate (PEM) and what signs with it.
pub(super) struct ClusterCa {
    pub pem: String,
    issuer: Option<rcgen::Issuer<'static, rcgen::KeyPair>>,
}

impl ClusterCa {
    /// A self-signed CA made at start.
    pub fn generate() -> ClusterCa {
        let made = rcgen::KeyPair::generate().and_then(|key| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "purchase-guard-sandbox-ca");
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            let cert = params.self_signed(&key)?;
            Ok((cert.pem(), rcgen::Issuer::new(params, key)))
        });
        match made {
            Ok((pem, issuer)) => ClusterCa {
                pem,
                issuer: Some(issuer),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no cluster CA: certificate requests will not be signed");
                ClusterCa {
                    pem: String::new(),
                    issuer: None,
                }
            }
        }
    }

    /// Signs a PEM certificate request for `seconds`, with the key usages `usages` names.
    fn sign(&self, request_pem: &str, usages: &[&str], seconds: i64) -> Result<String, String> {
        let issuer = self.issuer.as_ref().ok_or("the sandbox has no cluster CA")?;
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(request_pem)
            .map_err(|e| format!("invalid certificate request: {e}"))?;
        let now = jiff::Timestamp::now().as_second();
        let at =
            |s: i64| time::OffsetDateTime::from_unix_timestamp(s).map_err(|e| format!("a validity out of range: {e}"));
        // As kube-controller-manager does: valid from five minutes ago, for the duration asked.
        csr.params.not_before = at(now - 300)?;
        csr.params.not_after = at(now + seconds)?;
        csr.params.is_ca = rcgen::IsCa::ExplicitNoCa;
        csr.params.key_usages = usages
            .iter()
            .filter_map(|u| match *u {
                "digital signature" => Some(rcgen::KeyUsagePurpose::DigitalSignature),
                "key encipherment" => Some(rcgen::KeyUsagePurpose::KeyEncipherment),
                _ => None,
            })
            .collect();
        csr.params.extended_key_usages = usages
            .iter()
            .filter_map(|u| match *u {
                "client auth" => Some(rcgen::ExtendedKeyUsagePurpose::ClientAuth),
                "server auth" => Some(rcgen::ExtendedKeyUsagePurpose::ServerAuth),
                _ => None,
            })
            .collect();
        csr.signed_by(issuer)
            .map(|cert| cert.pem())
            .map_err(|e| format!("signing failed: {e}"))
    }
}

impl ApiServer {
    /// Signs the approved, unsigned and not failed requests of the signers served.
    pub(super) fn sign_approved_requests(&self) {
        let Some(rt) = self.find("certificates.k8s.io", "v1", "certificatesigningrequests") else {
            return;
        };
        let requests: Vec<Arc<Value>> = self
            .store
            .lock()
            .list(&rt.group_resource(), None)
            .map(|(_, v)| v.clone())
            .collect();
        for csr in requests {
            let conditions = csr
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has = |kind: &str| conditions.iter().any(|c| c["type"] == kind && c["status"] == "True");
            let signer = str_field(&csr, "/spec/signerName").unwrap_or_default();
            if !has("Approved")
                || has("Denied")
                || has("Failed")
                || csr.pointer("/status/certificate").is_some()
                || !SIGNERS.contains(&signer)
            {
                continue;
            }
            let request = str_field(&csr, "/spec/request")
                .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let usages: Vec<&str> = csr
                .pointer("/spec/usages")
                .and_then(Value::as_array)
                .map(|u| u.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let seconds = csr
                .pointer("/spec/expirationSeconds")
                .and_then(Value::as_i64)
                .map_or(DEFAULT_SECONDS, |s| s.clamp(600, DEFAULT_SECONDS));
            let mut status = csr.get("status").cloned().unwrap_or_else(|| json!({}));
            match self.cluster_ca.sign(&request, &usages, seconds) {
                Ok(pem) => {
                    status["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
                }
                Err(why) => {
                    let mut conditions = conditions.clone();
                    conditions.push(
                        json!({"type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                        "message": why, "lastUpdateTime": now(), "lastTransitionTime": now()}),
                    );
                    status["conditions"] = json!(conditions);
                }
            }
            let mut signed = csr.as_ref().clone();
            signed["status"] = status;
            let name = str_field(&csr, "/metadata/name").unwrap_or_default().to_string();
            let t = Target {
                rt: rt.clone(),
                namespace: None,
                name: Some(name.clone()),
                subresource: Some("status".into()),
            };
            let manager = "certificatesigningrequest-signing-controller";
            let user = super::workloads::component_user(manager, "");
            if let Err(e) = self.update(&t, &name, signed, &Query::new(), manager, Some(&user)) {
                tracing::debug!(csr = %name, error = ?e, "simulated signing failed");
            }
        }
    }
}
