//! Session JWTs (contract §0.2): HS256 over the raw bytes of `JWT_SECRET`, with `iss`, `aud`,
//! `exp`, `nbf` and the session id `sid` that logout revokes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use omnistream_domain::{AgentId, AgentRole, SessionId, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::error::ApiError;

const ISSUER: &str = "omnistream";
const AUDIENCE: &str = "omnistream-api";

/// The claims of an OmniStream token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Agent id.
    pub sub: Uuid,
    /// Organization (tenant) id; absent on platform (super-admin) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
    /// System role at issue time (informational: permissions are resolved per request).
    #[serde(default)]
    pub role: String,
    /// `agent`, or `super_admin` for platform tokens.
    pub typ: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Always `omnistream`.
    pub iss: String,
    /// Always `omnistream-api`.
    pub aud: String,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Impersonating super-admin, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imp: Option<Uuid>,
}

/// A freshly signed token and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its `exp` as a timestamp.
    pub expires_at: DateTime<Utc>,
}

/// Signs and verifies tokens with one secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    /// Keys from the raw bytes of the secret; tokens live for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// How long new tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an agent token for session `sid`.
    pub fn issue(
        &self,
        agent: AgentId,
        tenant: TenantId,
        role: AgentRole,
        sid: SessionId,
    ) -> Result<IssuedToken, ApiError> {
        self.issue_until(agent, tenant, role, sid, None)
    }

    /// Signs an agent token for session `sid` that expires after the TTL or at `not_after`
    /// (the session's absolute end), whichever comes first.
    pub fn issue_until(
        &self,
        agent: AgentId,
        tenant: TenantId,
        role: AgentRole,
        sid: SessionId,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<IssuedToken, ApiError> {
        let now = Utc::now();
        let ttl_end = now + chrono::Duration::from_std(self.ttl).map_err(anyhow::Error::from)?;
        let expires_at = not_after.map_or(ttl_end, |end| end.min(ttl_end));
        let claims = Claims {
            sub: agent.as_uuid(),
            org: Some(tenant.as_uuid()),
            role: role.as_str().to_owned(),
            typ: "agent".to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sid: Some(sid.as_uuid()),
            imp: None,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(anyhow::Error::from)?;
        Ok(IssuedToken {
            token,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(expires_at),
        })
    }

    /// Verifies signature, algorithm, `iss`, `aud`, `exp` and `nbf`; 401 otherwise.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"test-secret", Duration::from_secs(60))
    }

    #[test]
    fn issued_tokens_verify() {
        let issued = keys()
            .issue(
                AgentId::new(),
                TenantId::new(),
                AgentRole::Admin,
                SessionId::new(),
            )
            .unwrap();
        let claims = keys().verify(&issued.token).unwrap();
        assert_eq!(claims.iss, "omnistream");
        assert_eq!(claims.aud, "omnistream-api");
        assert_eq!(claims.typ, "agent");
    }

    #[test]
    fn tokens_signed_with_another_secret_are_refused() {
        let other = TokenKeys::new(b"another-secret", Duration::from_secs(60));
        let issued = other
            .issue(
                AgentId::new(),
                TenantId::new(),
                AgentRole::Agent,
                SessionId::new(),
            )
            .unwrap();
        assert!(matches!(
            keys().verify(&issued.token),
            Err(ApiError::Unauthorized)
        ));
    }

    fn sign(claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(b"test-secret"),
        )
        .unwrap()
    }

    #[test]
    fn wrong_audience_issuer_expiry_or_nbf_is_refused() {
        let issued = keys()
            .issue(
                AgentId::new(),
                TenantId::new(),
                AgentRole::Agent,
                SessionId::new(),
            )
            .unwrap();
        let good = keys().verify(&issued.token).unwrap();
        let now = Utc::now().timestamp();
        let variants = [
            Claims {
                aud: "other".into(),
                ..good.clone()
            },
            Claims {
                iss: "other".into(),
                ..good.clone()
            },
            Claims {
                exp: now - 3600,
                ..good.clone()
            },
            Claims {
                nbf: now + 3600,
                ..good.clone()
            },
        ];
        for claims in variants {
            assert!(
                keys().verify(&sign(&claims)).is_err(),
                "{claims:?} was accepted"
            );
        }
        assert!(keys().verify(&sign(&good)).is_ok());
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let issued = keys()
            .issue(
                AgentId::new(),
                TenantId::new(),
                AgentRole::Agent,
                SessionId::new(),
            )
            .unwrap();
        let mut parts: Vec<&str> = issued.token.split('.').collect();
        let none_header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT"}"#,
        );
        parts[0] = &none_header;
        parts[2] = "";
        assert!(keys().verify(&parts.join(".")).is_err());
    }
}
