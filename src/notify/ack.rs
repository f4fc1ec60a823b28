//! Signed acknowledgement links: HMAC-SHA256 over the incident id and an expiry, with a key
//! kept in the state directory (created once, mode 0600).

use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// How long an acknowledgement link in an e-mail stays valid.
pub const LINK_VALIDITY_SECS: i64 = 7 * 24 * 3600;

pub struct AckKey(hmac::Key);

impl AckKey {
    /// Loads `state_dir/ack.key`, creating it with 32 random bytes on first use.
    pub fn load_or_create(state_dir: &Path) -> std::io::Result<AckKey> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = state_dir.join("ack.key");
        let bytes = match std::fs::read(&path) {
            Ok(b) if b.len() >= 32 => b,
            _ => {
                let mut b = [0u8; 32];
                SystemRandom::new().fill(&mut b).map_err(|_| std::io::Error::other("no system randomness"))?;
                let mut f =
                    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
                f.write_all(&b)?;
                f.sync_all()?;
                b.to_vec()
            }
        };
        Ok(AckKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// A key from given bytes (tests).
    pub fn from_bytes(bytes: &[u8]) -> AckKey {
        AckKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn message(id: i64, expires: i64) -> String {
        format!("ack:{id}:{expires}")
    }

    pub fn sign(&self, id: i64, expires: i64) -> String {
        crate::text::hex(hmac::sign(&self.0, Self::message(id, expires).as_bytes()).as_ref())
    }

    /// Checks a link's signature (constant time) and expiry.
    pub fn verify(&self, id: i64, expires: i64, sig: &str, now_secs: i64) -> Result<(), &'static str> {
        if now_secs > expires {
            return Err("this acknowledgement link has expired");
        }
        let Some(raw) = crate::text::unhex(sig) else { return Err("malformed signature") };
        hmac::verify(&self.0, Self::message(id, expires).as_bytes(), &raw).map_err(|_| "invalid signature")
    }

    /// The full link, under `public_url`.
    pub fn link(&self, public_url: &str, id: i64, now_secs: i64) -> String {
        let expires = now_secs + LINK_VALIDITY_SECS;
        format!("{public_url}/api/v1/incidents/{id}/ack?expires={expires}&sig={}", self.sign(id, expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_expire_tamper() {
        let k = AckKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let sig = k.sign(42, 1000);
        assert_eq!(k.verify(42, 1000, &sig, 999), Ok(()));
        assert!(k.verify(42, 1000, &sig, 1001).is_err(), "expired");
        assert!(k.verify(43, 1000, &sig, 999).is_err(), "other incident");
        assert!(k.verify(42, 2000, &sig, 999).is_err(), "extended expiry");
        assert!(k.verify(42, 1000, "zz", 999).is_err());
    }
}
