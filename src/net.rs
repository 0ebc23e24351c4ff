//! Network clients. Every reqwest client of this crate (and of its tests)
//! is built from [`client_builder`], and every other TLS client config from
//! [`tls_config`]: TLS is rustls everywhere, whose crypto provider (`ring`,
//! which jsonwebtoken already builds; the other choice, aws-lc, needs a C
//! toolchain and cmake) must be installed in the process before the first
//! client is built. clippy.toml refuses `reqwest::Client::new`/`builder`
//! everywhere else.

use crate::error::{Error, Result};
use std::path::Path;

/// Install the TLS crypto provider (once per process; later calls are no-ops).
pub fn install_tls_provider() {
    // `ring` is deprecated in rustls for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder, with the TLS provider installed.
#[allow(clippy::disallowed_methods, reason = "the one place clients are built")]
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// A TLS client config that verifies the server's certificate and name:
/// against the CA certificates of `ca_file` (PEM) only, or else against
/// the system's roots.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    install_tls_provider();
    let Some(path) = ca_file else {
        use rustls_platform_verifier::ConfigVerifierExt;
        return rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| Error::internal(format!("the system's TLS roots: {e}")));
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::config(format!(
                "{}: not a PEM file of CA certificates ({e})",
                path.display()
            ))
        })?;
    for c in certs {
        roots.add(c).map_err(|e| {
            Error::config(format!(
                "{}: a certificate is unusable ({e})",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::config(format!(
            "{}: no certificate in it",
            path.display()
        )));
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}
