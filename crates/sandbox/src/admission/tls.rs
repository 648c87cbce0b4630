//! How the sandbox verifies a webhook's serving certificate: as kube-apiserver does (Go's
//! crypto/x509), not stricter. A serving certificate that is itself one of the caBundle's
//! certificates is trusted as it is, as Go trusts a root used as the leaf (the usual
//! `openssl req -x509 ... -addext subjectAltName=...` recipe makes such a self-signed CA
//! certificate), provided its subjectAltName names the host (no common-name fallback) and it is
//! valid now. Any other certificate is verified by webpki against the caBundle.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Verifies serving certificates against a caBundle as Go's crypto/x509 does.
#[derive(Debug)]
struct GoVerifier {
    inner: Arc<WebPkiServerVerifier>,
    anchors: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for GoVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if !self.anchors.iter().any(|a| a.as_ref() == end_entity.as_ref()) {
            return self
                .inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        }
        // The leaf is a trusted root: only its names and its validity remain to check.
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|_| Error::InvalidCertificate(CertificateError::NotValidForName))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let validity = parsed.validity();
        if at < validity.not_before.timestamp() {
            return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
        }
        if at > validity.not_after.timestamp() {
            return Err(Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS client configuration that trusts the caBundle `ca` (PEM) as kube-apiserver does.
pub fn client_config(ca: &[u8]) -> Result<rustls::ClientConfig, String> {
    let anchors: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the caBundle is not a PEM certificate bundle: {e}"))?;
    if anchors.is_empty() {
        return Err("the caBundle holds no PEM certificate".into());
    }
    let mut roots = RootCertStore::empty();
    for anchor in &anchors {
        roots
            .add(anchor.clone())
            .map_err(|e| format!("the caBundle holds a certificate that cannot be a root: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("cannot verify against the caBundle: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(GoVerifier { inner, anchors }))
        .with_no_client_auth();
    Ok(config)
}
