//! Per-conversation reply addresses for email: outbound replies carry
//! `Reply-To: <local>+<token>@<domain>` of the account's inbound address, where the token names
//! the conversation and carries an HMAC over it, so that a customer's answer from a client that
//! drops `In-Reply-To`/`References` still finds its conversation, and nobody can forge a token
//! for a conversation they were not written from.
//!
//! The token is the lowercase base32 (RFC 4648 alphabet, no padding) of the conversation id's 16
//! bytes followed by the first 9 bytes of HMAC-SHA256(key, tenant ‖ conversation): 40
//! characters, case-insensitive, safe in any mail system's local part. The key is derived from
//! `ENCRYPTION_KEY`.

use omnistream_domain::TenantId;
use uuid::Uuid;

use crate::infra::secrets::{constant_time_eq, hmac_sha256};

/// Bytes of the HMAC kept in a token.
const MAC_BYTES: usize = 9;
/// Bytes of a token before encoding: the conversation id and the truncated HMAC.
const TOKEN_BYTES: usize = 16 + MAC_BYTES;
/// Characters of an encoded token (25 bytes are exactly 40 base32 characters).
const TOKEN_CHARS: usize = TOKEN_BYTES * 8 / 5;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Makes and checks reply-address tokens.
#[derive(Clone)]
pub struct ReplyTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for ReplyTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyTokens(***)")
    }
}

impl ReplyTokens {
    /// Tokens signed with `key` (derive it with `SecretBox::derive_key`).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, tenant: TenantId, conversation: Uuid) -> [u8; 32] {
        hmac_sha256(
            &self.key,
            &[
                b"email-reply:",
                tenant.as_uuid().as_bytes(),
                conversation.as_bytes(),
            ],
        )
    }

    /// The token of `conversation` of `tenant`.
    pub fn token(&self, tenant: TenantId, conversation: Uuid) -> String {
        let mut bytes = conversation.as_bytes().to_vec();
        bytes.extend_from_slice(&self.mac(tenant, conversation)[..MAC_BYTES]);
        base32(&bytes)
    }

    /// `local+token@domain` for the inbound address `local@domain` (an existing `+tag` is
    /// replaced); `None` when `inbound` is not an address.
    pub fn reply_address(
        &self,
        inbound: &str,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Option<String> {
        let (local, domain) = inbound.trim().rsplit_once('@')?;
        let local = local.split('+').next().unwrap_or(local);
        if local.is_empty() || domain.is_empty() {
            return None;
        }
        Some(format!(
            "{local}+{}@{domain}",
            self.token(tenant, conversation)
        ))
    }

    /// The conversation of `tenant` whose valid token `address` carries after its `+`.
    pub fn conversation_in(&self, address: &str, tenant: TenantId) -> Option<Uuid> {
        let (local, _) = address.trim().rsplit_once('@')?;
        let (_, token) = local.rsplit_once('+')?;
        if token.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = unbase32(token)?;
        if bytes.len() != TOKEN_BYTES {
            return None;
        }
        let conversation = Uuid::from_slice(&bytes[..16]).ok()?;
        let expected = self.mac(tenant, conversation);
        constant_time_eq(&expected[..MAC_BYTES], &bytes[16..]).then_some(conversation)
    }
}

/// `local@domain` for `local+tag@domain`; `None` for an address without a tag.
pub fn untagged(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let (base, _) = local.split_once('+')?;
    (!base.is_empty()).then(|| format!("{base}@{domain}"))
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ReplyTokens {
        ReplyTokens::new([3; 32])
    }

    #[test]
    fn base32_round_trips_case_insensitively() {
        for bytes in [
            vec![],
            vec![0u8],
            vec![255; 7],
            (0..25).collect::<Vec<u8>>(),
        ] {
            let encoded = base32(&bytes);
            assert_eq!(unbase32(&encoded).unwrap(), bytes);
            assert_eq!(unbase32(&encoded.to_uppercase()).unwrap(), bytes);
        }
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(unbase32("not base32!"), None);
    }

    #[test]
    fn a_reply_address_leads_back_to_its_conversation_in_its_tenant_only() {
        let (tenant, conversation) = (TenantId(Uuid::new_v4()), Uuid::new_v4());
        let address = tokens()
            .reply_address("support+old@shop.example", tenant, conversation)
            .unwrap();
        let token = tokens().token(tenant, conversation);
        assert_eq!(token.len(), 40);
        assert_eq!(address, format!("support+{token}@shop.example"));
        assert_eq!(
            tokens().conversation_in(&address, tenant),
            Some(conversation)
        );
        assert_eq!(
            tokens().conversation_in(&address.to_uppercase(), tenant),
            Some(conversation),
            "mail systems may change the case of the local part"
        );
        assert_eq!(
            tokens().conversation_in(&address, TenantId(Uuid::new_v4())),
            None
        );
        assert_eq!(
            ReplyTokens::new([4; 32]).conversation_in(&address, tenant),
            None
        );
    }

    #[test]
    fn a_tampered_or_truncated_token_names_no_conversation() {
        let (tenant, conversation) = (TenantId(Uuid::new_v4()), Uuid::new_v4());
        let token = tokens().token(tenant, conversation);
        let flip = |i: usize| {
            let mut chars: Vec<char> = token.chars().collect();
            chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
            chars.into_iter().collect::<String>()
        };
        for forged in [
            flip(0),
            flip(20),
            flip(39),
            token[..32].to_owned(),
            format!("{token}a"),
        ] {
            let address = format!("support+{forged}@shop.example");
            assert_eq!(tokens().conversation_in(&address, tenant), None, "{forged}");
        }
        assert_eq!(
            tokens().conversation_in("support@shop.example", tenant),
            None
        );
    }

    #[test]
    fn tags_are_removed_for_routing() {
        assert_eq!(
            untagged("support+abc@shop.example").as_deref(),
            Some("support@shop.example")
        );
        assert_eq!(untagged("support@shop.example"), None);
        assert_eq!(untagged("+abc@shop.example"), None);
    }
}
