//! `X-Hub-Signature-256` verification for Meta webhooks (WhatsApp, Messenger, Instagram).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix Meta puts before the hex digest in `X-Hub-Signature-256`.
const PREFIX: &str = "sha256=";

/// Checks Meta's `X-Hub-Signature-256` header against the raw request body.
///
/// The header is `sha256=` followed by the hex HMAC-SHA256 of the exact body bytes, keyed
/// with the app secret. Returns `true` when it matches any of `app_secrets` (several are
/// allowed so a secret can be rotated without downtime). The digest comparison is constant
/// time. A missing header, a wrong prefix, bad hex or an empty secret never verify.
///
/// Verify before parsing JSON, over the bytes exactly as received.
pub fn verify_signature(app_secrets: &[&[u8]], raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.trim().strip_prefix(PREFIX)) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    app_secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .any(|secret| {
            HmacSha256::new_from_slice(secret).is_ok_and(|mut mac| {
                mac.update(raw_body);
                mac.verify_slice(&expected).is_ok()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real triple from pywa's test suite (see `meta-protocol.md` §2).
    const SECRET: &[u8] = b"1222e786b144d0e85b9f365372d93676";
    const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
    const HEADER: &str = "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";

    #[test]
    fn real_meta_vector_verifies() {
        assert!(verify_signature(&[SECRET], BODY.as_bytes(), Some(HEADER)));
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let old: &[u8] = b"previous-secret";
        assert!(verify_signature(
            &[old, SECRET],
            BODY.as_bytes(),
            Some(HEADER)
        ));
        assert!(verify_signature(
            &[SECRET, old],
            BODY.as_bytes(),
            Some(HEADER)
        ));
    }

    #[test]
    fn tampered_body_fails() {
        let tampered = BODY.replace("Hey there!", "Hey there?");
        assert!(!verify_signature(
            &[SECRET],
            tampered.as_bytes(),
            Some(HEADER)
        ));
        let with_newline = format!("{BODY}\n");
        assert!(!verify_signature(
            &[SECRET],
            with_newline.as_bytes(),
            Some(HEADER)
        ));
    }

    #[test]
    fn wrong_secret_fails() {
        let wrong: &[u8] = b"1222e786b144d0e85b9f365372d93677";
        assert!(!verify_signature(&[wrong], BODY.as_bytes(), Some(HEADER)));
        assert!(!verify_signature(&[], BODY.as_bytes(), Some(HEADER)));
        assert!(!verify_signature(&[b""], BODY.as_bytes(), Some(HEADER)));
    }

    #[test]
    fn malformed_headers_fail() {
        let body = BODY.as_bytes();
        let digest = HEADER.trim_start_matches(PREFIX);
        assert!(!verify_signature(&[SECRET], body, None));
        assert!(!verify_signature(&[SECRET], body, Some("")));
        assert!(!verify_signature(&[SECRET], body, Some(digest)));
        assert!(!verify_signature(
            &[SECRET],
            body,
            Some(&format!("sha1={digest}"))
        ));
        assert!(!verify_signature(&[SECRET], body, Some("sha256=")));
        assert!(!verify_signature(
            &[SECRET],
            body,
            Some("sha256=zz-not-hex")
        ));
        // A truncated digest (odd length, then one byte short) must not verify.
        assert!(!verify_signature(
            &[SECRET],
            body,
            Some(&HEADER[..HEADER.len() - 1])
        ));
        assert!(!verify_signature(
            &[SECRET],
            body,
            Some(&HEADER[..HEADER.len() - 2])
        ));
    }

    #[test]
    fn signature_matches_a_freshly_computed_hmac() {
        let body = br#"{"object":"page","entry":[]}"#;
        let mut mac = HmacSha256::new_from_slice(b"s3cret").expect("any key length works");
        mac.update(body);
        let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(verify_signature(&[b"s3cret"], body, Some(&header)));
        assert!(verify_signature(
            &[b"s3cret"],
            body,
            Some(&header.to_uppercase().replace("SHA256=", "sha256="))
        ));
    }
}
