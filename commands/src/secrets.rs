//! Secrets at rest: integration tokens and passwords are stored encrypted (AES-256-GCM with
//! `ENCRYPTION_KEY`) and shown masked in every response (contract §17, "Mask format": `****` +
//! the last 4 characters, or just `****` for values shorter than 16 characters).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc:v1:";
const MASK: &str = "****";

/// Encrypts and decrypts config values.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// The key itself, only ever used as the HMAC key of [`SecretBox::derive_key`].
    root: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

/// A stored value could not be decrypted (wrong key or corrupted).
#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted: is ENCRYPTION_KEY the one it was written with?")]
pub struct DecryptError;

impl SecretBox {
    /// A box keyed by `key`: 32 bytes given as base64 or 64 hex characters are used as they
    /// are; any other string is stretched with SHA-256.
    pub fn new(key: &str) -> Self {
        let key = key.trim();
        let bytes: [u8; 32] =
            hex_or_base64_key(key).unwrap_or_else(|| Sha256::digest(key.as_bytes()).into());
        Self {
            cipher: Aes256Gcm::new(&bytes.into()),
            root: bytes,
        }
    }

    /// A 32-byte key for one `purpose` (e.g. signing media links), derived from the encryption
    /// key as HMAC-SHA256(key, purpose): each purpose gets its own key, and none reveals the
    /// encryption key or another purpose's key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.root, &[b"omnistream:", purpose.as_bytes()])
    }

    /// `enc:v1:` + base64(nonce ‖ ciphertext).
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        format!("{PREFIX}{}", STANDARD.encode(sealed))
    }

    /// The plaintext of a sealed value; values without the prefix are returned as they are.
    pub fn decrypt(&self, stored: &str) -> Result<String, DecryptError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let sealed = STANDARD.decode(encoded).map_err(|_| DecryptError)?;
        if sealed.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }

    /// Encrypts the sensitive string values of a config object (for storage).
    pub fn seal_config(&self, config: &Map<String, Value>) -> Map<String, Value> {
        config
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) if is_sensitive(key) && !text.starts_with(PREFIX) => {
                    (key.clone(), Value::String(self.encrypt(text)))
                }
                other => (key.clone(), other.clone()),
            })
            .collect()
    }

    /// Decrypts a stored config (for use by workers).
    pub fn open_config(
        &self,
        stored: &Map<String, Value>,
    ) -> Result<Map<String, Value>, DecryptError> {
        stored
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) if text.starts_with(PREFIX) => {
                    Ok((key.clone(), Value::String(self.decrypt(text)?)))
                }
                other => Ok((key.clone(), other.clone())),
            })
            .collect()
    }

    /// The stored config with every sensitive value masked (for responses).
    pub fn mask_config(&self, stored: &Map<String, Value>) -> Map<String, Value> {
        stored
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) if is_sensitive(key) => {
                    let plain = self.decrypt(text).unwrap_or_default();
                    (key.clone(), Value::String(mask(&plain)))
                }
                other => (key.clone(), other.clone()),
            })
            .collect()
    }
}

/// HMAC-SHA256 under a 32-byte `key` over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC pads a short key with zeros to the block size, so this is HMAC keyed with `key`.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex_or_base64_key(key: &str) -> Option<[u8; 32]> {
    if key.len() == 64 {
        let mut out = [0u8; 32];
        for (i, chunk) in key.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        }
        return Some(out);
    }
    STANDARD
        .decode(key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
}

/// Whether a config key holds a secret (contract §17's masking rule).
pub fn is_sensitive(key: &str) -> bool {
    matches!(
        key,
        "access_token"
            | "page_access_token"
            | "user_token"
            | "app_secret"
            | "client_secret"
            | "smtp_password"
            | "imap_password"
            | "api_key"
            | "pin"
    ) || ["_token", "_secret", "_password", "_key"]
        .iter()
        .any(|suffix| key.ends_with(suffix))
}

/// Values shorter than this are masked entirely: showing 4 characters of a PIN or a short
/// password would give away most of it.
const MASK_TAIL_MIN_LEN: usize = 16;

/// `****` + the last 4 characters, or just `****` when the value has fewer than 16 characters
/// (contract §17, "Mask format").
pub fn mask(plain: &str) -> String {
    let count = plain.chars().count();
    if count < MASK_TAIL_MIN_LEN {
        MASK.to_owned()
    } else {
        let tail: String = plain.chars().skip(count - 4).collect();
        format!("{MASK}{tail}")
    }
}

/// Merges `update` over `stored` (contract §17): absent keys stay, `null` removes a key, a
/// masked string (`****…`) leaves the stored value unchanged, anything else replaces it (sealed).
pub fn merge_config(
    secrets: &SecretBox,
    stored: &Map<String, Value>,
    update: &Map<String, Value>,
) -> Map<String, Value> {
    let mut merged = stored.clone();
    for (key, value) in update {
        match value {
            Value::Null => {
                merged.remove(key);
            }
            Value::String(text) if text.starts_with(MASK) => {}
            other => {
                merged.insert(key.clone(), other.clone());
            }
        }
    }
    secrets.seal_config(&merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn sealed_values_round_trip_and_differ_each_time() {
        let secrets = SecretBox::new("a development key");
        let a = secrets.encrypt("EAAG-token-1234");
        let b = secrets.encrypt("EAAG-token-1234");
        assert_ne!(a, b);
        assert!(!a.contains("EAAG"));
        assert_eq!(secrets.decrypt(&a).unwrap(), "EAAG-token-1234");
        assert!(SecretBox::new("another key").decrypt(&a).is_err());
    }

    #[test]
    fn hmac_with_a_padded_key_is_hmac_with_the_key() {
        let key = [7u8; 32];
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"hello world");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, &[b"hello ", b"world"]), expected);
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_encryption_key() {
        let secrets = SecretBox::new("a development key");
        assert_eq!(
            secrets.derive_key("media-link"),
            SecretBox::new("a development key").derive_key("media-link")
        );
        assert_ne!(
            secrets.derive_key("media-link"),
            secrets.derive_key("email-reply")
        );
        assert_ne!(
            secrets.derive_key("media-link"),
            SecretBox::new("another key").derive_key("media-link")
        );
    }

    #[test]
    fn sensitive_keys_are_sealed_and_masked() {
        let secrets = SecretBox::new("k");
        let stored = secrets.seal_config(&object(
            json!({"access_token": "EAAG-secret-9876", "waba_id": "123", "pin": "123456"}),
        ));
        assert!(stored["access_token"].as_str().unwrap().starts_with(PREFIX));
        assert_eq!(stored["waba_id"], "123");
        let masked = secrets.mask_config(&stored);
        assert_eq!(masked["access_token"], "****9876");
        assert_eq!(masked["pin"], "****");
        assert_eq!(
            secrets.open_config(&stored).unwrap()["access_token"],
            "EAAG-secret-9876"
        );
    }

    #[test]
    fn short_values_are_masked_entirely() {
        assert_eq!(mask("123456"), "****");
        assert_eq!(mask("hunter2-pass"), "****");
        assert_eq!(mask("fifteen-chars-1"), "****");
        assert_eq!(mask("sixteen-chars-12"), "****s-12");
        assert_eq!(mask("EAAG-secret-9876"), "****9876");
        assert_eq!(mask(""), "****");
    }

    #[test]
    fn merging_never_overwrites_a_secret_with_its_mask() {
        let secrets = SecretBox::new("k");
        let stored = secrets.seal_config(&object(
            json!({"access_token": "EAAG-secret-9876", "waba_id": "1", "old": "x"}),
        ));
        let merged = merge_config(
            &secrets,
            &stored,
            &object(json!({"access_token": "****9876", "waba_id": "2", "old": null, "new": "y"})),
        );
        let opened = secrets.open_config(&merged).unwrap();
        assert_eq!(opened["access_token"], "EAAG-secret-9876");
        assert_eq!(opened["waba_id"], "2");
        assert!(!opened.contains_key("old"));
        assert_eq!(opened["new"], "y");
    }

    #[test]
    fn the_contracts_sensitive_keys() {
        for key in [
            "access_token",
            "pin",
            "smtp_password",
            "webhook_secret",
            "private_key",
            "refresh_token",
        ] {
            assert!(is_sensitive(key), "{key}");
        }
        for key in ["waba_id", "phone_number_id", "display_phone_number"] {
            assert!(!is_sensitive(key), "{key}");
        }
    }
}
