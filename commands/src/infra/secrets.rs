//! Secrets at rest: integration tokens and passwords are stored encrypted (AES-256-GCM) and
//! shown masked in every response (contract §17, "Mask format": `****` + the last 4 characters,
//! or just `****` for values shorter than 16 characters).
//!
//! Keys: every key is derived from `ENCRYPTION_KEY` with HKDF-SHA256 under its own info string,
//! one for encryption and one per HMAC purpose ([`SecretBox::derive_key`]), so no use of a key
//! can reveal or be confused with another.
//!
//! Formats: `enc:v2:` + base64(nonce ‖ ciphertext), sealed with the tenant and the field as
//! AES-GCM associated data, so a ciphertext copied to another tenant or another field does not
//! decrypt. `enc:v1:` values (encrypted with `ENCRYPTION_KEY` itself, unbound) are still read and
//! are re-sealed as `enc:v2:` on the next write. Clients may never send values that start with
//! `enc:` ([`is_sealed`]).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What every sealed value starts with, whatever its version.
const SEALED: &str = "enc:";
const V1: &str = "enc:v1:";
const V2: &str = "enc:v2:";
const MASK: &str = "****";
/// HKDF info of the encryption key.
const ENCRYPTION_INFO: &[u8] = b"omnistream:v2:encryption";
/// HKDF info prefix of the HMAC keys, followed by the purpose.
const HMAC_INFO: &[u8] = b"omnistream:v2:hmac:";

/// Encrypts and decrypts config values.
#[derive(Clone)]
pub struct SecretBox {
    /// `enc:v2:` values: the HKDF-derived encryption key.
    cipher: Aes256Gcm,
    /// `enc:v1:` values, read only: `ENCRYPTION_KEY` itself.
    legacy: Aes256Gcm,
    /// HKDF over `ENCRYPTION_KEY`, expanded once per key use.
    hkdf: Hkdf<Sha256>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

/// A stored value could not be decrypted (wrong key, corrupted, or sealed for another tenant
/// or field).
#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted: is ENCRYPTION_KEY the one it was written with?")]
pub struct DecryptError;

/// Whether `text` is (or poses as) a sealed value: such values are refused in API input, so a
/// tenant cannot paste a ciphertext taken from elsewhere.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SEALED)
}

/// The associated data binding a ciphertext to its tenant and field.
fn associated_data(tenant: Uuid, field: &str) -> Vec<u8> {
    let mut aad = b"omnistream:v2:".to_vec();
    aad.extend_from_slice(tenant.as_bytes());
    aad.push(b':');
    aad.extend_from_slice(field.as_bytes());
    aad
}

impl SecretBox {
    /// A box keyed by `key`: 32 bytes given as base64 or 64 hex characters are used as they
    /// are; any other string is stretched with SHA-256.
    pub fn new(key: &str) -> Self {
        let key = key.trim();
        let root: [u8; 32] =
            hex_or_base64_key(key).unwrap_or_else(|| Sha256::digest(key.as_bytes()).into());
        let hkdf = Hkdf::<Sha256>::new(None, &root);
        let mut encryption = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8160: expanding cannot fail.
        let _ = hkdf.expand(ENCRYPTION_INFO, &mut encryption);
        Self {
            cipher: Aes256Gcm::new(&encryption.into()),
            legacy: Aes256Gcm::new(&root.into()),
            hkdf,
        }
    }

    /// A 32-byte key for one `purpose` (e.g. signing media links), derived from the encryption
    /// key with HKDF-SHA256 (info `omnistream:v2:hmac:<purpose>`): each purpose gets its own
    /// key, and none reveals the encryption key or another purpose's key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        let _ = self
            .hkdf
            .expand_multi_info(&[HMAC_INFO, purpose.as_bytes()], &mut key);
        key
    }

    /// `enc:v2:` + base64(nonce ‖ ciphertext), bound to `tenant` and `field`.
    pub fn encrypt(&self, tenant: Uuid, field: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = associated_data(tenant, field);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        format!("{V2}{}", STANDARD.encode(sealed))
    }

    /// The plaintext of a value sealed for `tenant` and `field` (or an `enc:v1:` value); values
    /// without a prefix are returned as they are.
    pub fn decrypt(&self, tenant: Uuid, field: &str, stored: &str) -> Result<String, DecryptError> {
        let (cipher, encoded, aad) = if let Some(encoded) = stored.strip_prefix(V2) {
            (&self.cipher, encoded, associated_data(tenant, field))
        } else if let Some(encoded) = stored.strip_prefix(V1) {
            (&self.legacy, encoded, Vec::new())
        } else if is_sealed(stored) {
            return Err(DecryptError);
        } else {
            return Ok(stored.to_owned());
        };
        let sealed = STANDARD.decode(encoded).map_err(|_| DecryptError)?;
        if sealed.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }

    /// `stored` sealed as `enc:v2:` for `tenant` and `field`: plaintext is encrypted, `enc:v1:`
    /// is re-sealed, `enc:v2:` is kept. A v1 value that cannot be opened is kept as it is.
    pub fn reseal(&self, tenant: Uuid, field: &str, stored: &str) -> String {
        if stored.starts_with(V2) {
            return stored.to_owned();
        }
        match self.decrypt(tenant, field, stored) {
            Ok(plain) => self.encrypt(tenant, field, &plain),
            Err(DecryptError) => stored.to_owned(),
        }
    }

    /// Encrypts the sensitive string values of a tenant's config object (for storage); values
    /// sealed in the old format are re-sealed.
    pub fn seal_config(&self, tenant: Uuid, config: &Map<String, Value>) -> Map<String, Value> {
        config
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) if is_sensitive(key) => {
                    (key.clone(), Value::String(self.reseal(tenant, key, text)))
                }
                other => (key.clone(), other.clone()),
            })
            .collect()
    }

    /// Decrypts a tenant's stored config (for use by workers).
    pub fn open_config(
        &self,
        tenant: Uuid,
        stored: &Map<String, Value>,
    ) -> Result<Map<String, Value>, DecryptError> {
        stored
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) if is_sealed(text) => {
                    Ok((key.clone(), Value::String(self.decrypt(tenant, key, text)?)))
                }
                other => Ok((key.clone(), other.clone())),
            })
            .collect()
    }

    /// A tenant's stored config with every sensitive value masked (for responses).
    pub fn mask_config(&self, tenant: Uuid, stored: &Map<String, Value>) -> Map<String, Value> {
        stored
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) if is_sensitive(key) => {
                    let plain = self.decrypt(tenant, key, text).unwrap_or_default();
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

/// Merges `update` over a tenant's `stored` config (contract §17): absent keys stay, `null`
/// removes a key, a masked string (`****…`) leaves the stored value unchanged, anything else
/// replaces it; the result is sealed (re-sealing old-format values). Callers refuse client
/// values that pose as sealed ones first ([`first_sealed_value`]).
pub fn merge_config(
    secrets: &SecretBox,
    tenant: Uuid,
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
    secrets.seal_config(tenant, &merged)
}

/// The first key of a client-supplied config whose string value starts with `enc:` (API input
/// must be refused with 400 then: only the server seals values).
pub fn first_sealed_value(config: &Map<String, Value>) -> Option<&str> {
    config
        .iter()
        .find(|(_, value)| value.as_str().is_some_and(is_sealed))
        .map(|(key, _)| key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    const TENANT: Uuid = Uuid::from_u128(1);
    const OTHER_TENANT: Uuid = Uuid::from_u128(2);

    #[test]
    fn sealed_values_round_trip_and_differ_each_time() {
        let secrets = SecretBox::new("a development key");
        let a = secrets.encrypt(TENANT, "access_token", "EAAG-token-1234");
        let b = secrets.encrypt(TENANT, "access_token", "EAAG-token-1234");
        assert_ne!(a, b);
        assert!(a.starts_with("enc:v2:"));
        assert!(!a.contains("EAAG"));
        assert_eq!(
            secrets.decrypt(TENANT, "access_token", &a).unwrap(),
            "EAAG-token-1234"
        );
        assert!(SecretBox::new("another key")
            .decrypt(TENANT, "access_token", &a)
            .is_err());
    }

    #[test]
    fn a_ciphertext_opens_only_for_its_tenant_and_field() {
        let secrets = SecretBox::new("a development key");
        let sealed = secrets.encrypt(TENANT, "smtp_password", "hunter2-hunter2");
        assert!(secrets
            .decrypt(OTHER_TENANT, "smtp_password", &sealed)
            .is_err());
        assert!(secrets.decrypt(TENANT, "access_token", &sealed).is_err());
        // Pasted into another tenant's config, it neither opens nor masks to anything.
        let pasted = object(json!({ "smtp_password": sealed }));
        assert!(secrets.open_config(OTHER_TENANT, &pasted).is_err());
        assert_eq!(
            secrets.mask_config(OTHER_TENANT, &pasted)["smtp_password"],
            "****"
        );
        assert!(secrets.decrypt(TENANT, "x", "enc:v9:AAAA").is_err());
    }

    /// `enc:v1:` as the previous release wrote it: AES-256-GCM under `ENCRYPTION_KEY` itself.
    fn legacy_v1(key: &str, plaintext: &str) -> String {
        let root: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let nonce = [9u8; 12];
        let mut sealed = nonce.to_vec();
        sealed.extend(
            Aes256Gcm::new(&root.into())
                .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
                .unwrap(),
        );
        format!("enc:v1:{}", STANDARD.encode(sealed))
    }

    #[test]
    fn old_format_values_still_open_and_are_resealed_on_the_next_write() {
        let secrets = SecretBox::new("a development key");
        let old = legacy_v1("a development key", "EAAG-legacy-token-5555");
        let stored = object(json!({"access_token": old, "waba_id": "1"}));
        assert_eq!(
            secrets.open_config(TENANT, &stored).unwrap()["access_token"],
            "EAAG-legacy-token-5555"
        );
        let merged = merge_config(&secrets, TENANT, &stored, &object(json!({"waba_id": "2"})));
        let resealed = merged["access_token"].as_str().unwrap();
        assert!(resealed.starts_with("enc:v2:"), "{resealed}");
        assert_eq!(
            secrets.open_config(TENANT, &merged).unwrap()["access_token"],
            "EAAG-legacy-token-5555"
        );
        assert!(secrets.open_config(OTHER_TENANT, &merged).is_err());
    }

    #[test]
    fn the_encryption_key_and_each_hmac_key_are_separate_hkdf_outputs() {
        let key = "a development key";
        let secrets = SecretBox::new(key);
        let root: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let hkdf = Hkdf::<Sha256>::new(None, &root);
        let mut expected = [0u8; 32];
        hkdf.expand(b"omnistream:v2:hmac:media-link", &mut expected)
            .unwrap();
        assert_eq!(secrets.derive_key("media-link"), expected);
        assert_ne!(secrets.derive_key("media-link"), root);
        // The encryption key is not the raw key: a v2 value does not open under it.
        let sealed = secrets.encrypt(TENANT, "pin", "123456");
        let raw = STANDARD.decode(&sealed["enc:v2:".len()..]).unwrap();
        let (nonce, ciphertext) = raw.split_at(12);
        let aad = associated_data(TENANT, "pin");
        assert!(Aes256Gcm::new(&root.into())
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad
                }
            )
            .is_err());
    }

    #[test]
    fn client_values_posing_as_sealed_ones_are_found() {
        assert_eq!(
            first_sealed_value(&object(json!({"a": "x", "smtp_password": "enc:v2:AAAA"}))),
            Some("smtp_password")
        );
        assert_eq!(first_sealed_value(&object(json!({"a": "encoded"}))), None);
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
        let stored = secrets.seal_config(
            TENANT,
            &object(json!({"access_token": "EAAG-secret-9876", "waba_id": "123", "pin": "123456"})),
        );
        assert!(stored["access_token"].as_str().unwrap().starts_with(V2));
        assert_eq!(stored["waba_id"], "123");
        let masked = secrets.mask_config(TENANT, &stored);
        assert_eq!(masked["access_token"], "****9876");
        assert_eq!(masked["pin"], "****");
        assert_eq!(
            secrets.open_config(TENANT, &stored).unwrap()["access_token"],
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
        let stored = secrets.seal_config(
            TENANT,
            &object(json!({"access_token": "EAAG-secret-9876", "waba_id": "1", "old": "x"})),
        );
        let merged = merge_config(
            &secrets,
            TENANT,
            &stored,
            &object(json!({"access_token": "****9876", "waba_id": "2", "old": null, "new": "y"})),
        );
        let opened = secrets.open_config(TENANT, &merged).unwrap();
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
