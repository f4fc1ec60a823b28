//! TLS plumbing shared by probes: the process-wide rustls crypto provider.

use std::sync::Once;

/// Installs ring as rustls' process-wide provider (once). reqwest is built without a
/// provider of its own so that only one crypto library is compiled in.
pub fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
