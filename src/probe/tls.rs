//! TLS: a handshake to `address` with SNI `server_name`, the chain verified (unless told not
//! to), and the leaf certificate's expiry measured against `min_days_left`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Binding, Failure, FailureKind, Outcome, Phase, conclude, deadline, resolve_one};

#[derive(Debug, Clone, PartialEq)]
pub struct TlsSpec {
    pub host: String,
    pub port: u16,
    pub server_name: String,
    /// Fail when the certificate expires in fewer days than this.
    pub min_days_left: u32,
    pub tls_verify: bool,
    pub ca_file: Option<PathBuf>,
}

/// The client configuration of one target (roots depend on its `ca_file` and `tls_verify`).
pub struct PreparedTls {
    config: Arc<rustls::ClientConfig>,
}

/// Accepts any certificate: `tls_verify = false` (expiry is still measured).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The system's trusted roots, read once per process (not once per target).
fn native_roots() -> &'static rustls::RootCertStore {
    static ROOTS: std::sync::OnceLock<rustls::RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    })
}

pub fn prepare(spec: &TlsSpec) -> Result<PreparedTls, Failure> {
    crate::tls::ensure_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::new(FailureKind::Setup, format!("TLS settings: {e}")))?;
    let config = if spec.tls_verify {
        let mut roots = rustls::RootCertStore::empty();
        match &spec.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Failure::new(FailureKind::Setup, format!("cannot read ca_file {}: {e}", path.display()))
                })?;
                for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                    let cert: CertificateDer<'static> =
                        cert.map_err(|e| Failure::new(FailureKind::Setup, format!("ca_file {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| Failure::new(FailureKind::Setup, format!("ca_file {}: {e}", path.display())))?;
                }
            }
            None => roots = native_roots().clone(),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
    };
    Ok(PreparedTls { config: Arc::new(config) })
}

/// Expiry (Unix seconds) of a DER certificate.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

pub async fn probe(spec: &TlsSpec, prepared: &PreparedTls, binding: &Binding, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let r =
        tokio::time::timeout_at(deadline(start, timeout), handshake(spec, prepared, binding, &mut out, start)).await;
    conclude(out, r, start, timeout, &[Phase::Connect, Phase::Tls])
}

async fn handshake(
    spec: &TlsSpec,
    p: &PreparedTls,
    binding: &Binding,
    out: &mut Outcome,
    start: Instant,
) -> Result<(), Failure> {
    let addr = resolve_one(&spec.host, spec.port, binding).await?;
    out.phases.set(Phase::Resolve, start.elapsed());
    let t = Instant::now();
    let tcp = super::tcp::connect(addr, binding).await.map_err(|e| Failure::io(&format!("connect {addr}"), &e))?;
    out.phases.set(Phase::Connect, t.elapsed());
    let name = ServerName::try_from(spec.server_name.clone())
        .map_err(|_| Failure::new(FailureKind::Setup, format!("invalid server_name {:?}", spec.server_name)))?;
    let t = Instant::now();
    let stream = tokio_rustls::TlsConnector::from(p.config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| Failure::new(FailureKind::Tls, format!("TLS handshake with {}: {e}", spec.server_name)))?;
    out.phases.set(Phase::Tls, t.elapsed());
    let (_, conn) = stream.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Failure::new(FailureKind::Tls, "no certificate"))?;
    let expiry = not_after(leaf).ok_or_else(|| Failure::new(FailureKind::Tls, "the certificate cannot be parsed"))?;
    out.cert_expiry = Some(expiry);
    check_expiry(expiry, spec.min_days_left, chrono::Utc::now().timestamp())
}

/// Fails when fewer than `min_days` remain (pure, for tests).
pub fn check_expiry(expiry: i64, min_days: u32, now: i64) -> Result<(), Failure> {
    let left = expiry - now;
    if left < i64::from(min_days) * 86_400 {
        let days = left as f64 / 86_400.0;
        let when = chrono::DateTime::from_timestamp(expiry, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
        return Err(Failure::new(
            FailureKind::CertExpiry,
            if left <= 0 {
                format!("the certificate expired on {when}")
            } else {
                format!("the certificate expires in {days:.1} days ({when}), fewer than min_days_left = {min_days}")
            },
        ));
    }
    Ok(())
}
