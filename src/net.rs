//! HTTP clients. Every reqwest client of this crate (and of its tests) is
//! built from [`client_builder`]: reqwest speaks TLS through rustls, whose
//! crypto provider (`ring`, which jsonwebtoken already builds; the other
//! choice, aws-lc, needs a C toolchain and cmake) must be installed in the
//! process before the first client is built. clippy.toml refuses
//! `reqwest::Client::new`/`builder` everywhere else.

/// A reqwest client builder, with the TLS provider installed.
#[allow(clippy::disallowed_methods, reason = "the one place clients are built")]
pub fn client_builder() -> reqwest::ClientBuilder {
    // Once per process; a second install is refused and harmless. `ring`
    // is deprecated in rustls for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
