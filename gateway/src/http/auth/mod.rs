//! Authentication and authorisation: who is calling, for which tenant, with which permissions.
//!
//! [`Caller`] is the one extractor every protected handler takes. It accepts, in the contract's
//! order, `Authorization: Bearer <JWT>`, `X-API-Key`, then the `omnistream_token` cookie; the
//! first credential present decides. Permissions are resolved from the database on every request,
//! so role changes, deactivation, revocation and suspension apply at once.

pub mod csrf;
pub mod jwt;
pub mod password;
pub mod rate_limit;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::ops::Deref;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use omnistream_domain::{AgentId, AgentRole, ApiKeyId, Permission, SessionId, TenantId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::error::{ApiError, Result};
use crate::http::peer::ClientIp;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "omnistream_token";

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A session JWT, from the Authorization header or the cookie.
    Session(SessionId),
    /// An API key, acting as the agent who created it.
    ApiKey(ApiKeyId),
}

/// The authenticated agent of a request, with its tenant and current permissions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The agent (for API keys: the key's creator).
    pub agent_id: AgentId,
    /// The agent's tenant; every query of the request is scoped to it.
    pub tenant_id: TenantId,
    /// The agent's display name (for the activity log).
    pub agent_name: String,
    /// The agent's system role.
    pub role: AgentRole,
    /// The credential used.
    pub credential: Credential,
    /// Request facts for the activity log.
    pub origin: RequestOrigin,
    permissions: Vec<Permission>,
}

impl Caller {
    /// Whether the caller holds `permission`.
    pub fn holds(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// 403 `forbidden` unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.holds(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// 403 `forbidden` unless the caller holds every code of `granted`: nobody can grant a
    /// permission they do not hold.
    pub fn require_all(&self, granted: &[Permission]) -> Result<()> {
        if granted.iter().all(|p| self.holds(*p)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                code: "forbidden",
                message: "you cannot grant a permission you do not hold".into(),
            })
        }
    }

    /// The effective permission codes, in catalogue order.
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// The session id; 403 `session_required` for API keys.
    pub fn session(&self) -> Result<SessionId> {
        match self.credential {
            Credential::Session(sid) => Ok(sid),
            Credential::ApiKey(_) => Err(ApiError::Forbidden {
                code: "session_required",
                message: "this endpoint needs a login session (JWT or cookie), not an API key"
                    .into(),
            }),
        }
    }
}

/// A [`Caller`] that holds permission `P`, checked before the request body is read (so a caller
/// without the permission gets 403, never a 400 about a body it may not send).
#[derive(Debug, Clone)]
pub struct Authorized<P> {
    /// The checked caller.
    pub caller: Caller,
    permission: PhantomData<P>,
}

impl<P> Deref for Authorized<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

/// A permission code as a type, for [`Authorized`].
pub trait RequiredPermission {
    /// The code checked.
    const PERMISSION: Permission;
}

impl<P: RequiredPermission + Send + Sync> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Self {
            caller,
            permission: PhantomData,
        })
    }
}

/// One marker type per permission code, named like the [`Permission`] variant.
pub mod perm {
    use super::RequiredPermission;
    use omnistream_domain::Permission;

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("Requires [`Permission::", stringify!($name), "`].")]
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    markers!(
        ConversationsView,
        ConversationsViewAll,
        ConversationsReply,
        ConversationsManage,
        ContactsView,
        ContactsManage,
        AgentsView,
        AgentsManage,
        DivisionsManage,
        QuickRepliesManage,
        AnalyticsView,
        CampaignsManage,
        IntegrationsView,
        IntegrationsManage,
        TemplatesView,
        TemplatesManage,
        SlaManage,
        WebhooksManage,
        ActivityLogsView,
        RolesManage,
        DeveloperAccess,
        AutomationManage,
        AiAgentsManage,
        SettingsManage,
        BillingManage,
    );
}

/// Where a request came from, for audit rows and rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    /// The client's IP address: the TCP peer, or what a trusted proxy forwarded.
    pub ip: Option<String>,
    /// `User-Agent`, truncated to 512 characters.
    pub user_agent: Option<String>,
    /// The request's `x-request-id` (the client's, or the one the gateway assigned), truncated
    /// to 128 characters: it goes into the metadata of every event the request causes.
    pub request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|client| client.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|info| info.0.ip())
            })
            .map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|id| !id.is_empty())
            .map(|id| id.chars().take(128).collect());
        Ok(Self {
            ip,
            user_agent,
            request_id,
        })
    }
}

/// The session token a request carries (bearer first, then cookie), if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
    }
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// SHA-256 of an API key, as stored.
pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

#[derive(sqlx::FromRow)]
struct PrincipalRow {
    agent_id: Uuid,
    tenant_id: Uuid,
    name: String,
    role: String,
    custom_role_id: Option<Uuid>,
    custom_permissions: Vec<String>,
    is_active: bool,
    deleted: bool,
    password_changed_at: DateTime<Utc>,
    tenant_status: String,
    credential_revoked: bool,
    credential_expires_at: Option<DateTime<Utc>>,
    credential_id: Uuid,
}

const PRINCIPAL_COLUMNS: &str = r#"
    a.id AS agent_id, a.tenant_id, a.name, a.role, a.custom_role_id,
    COALESCE(ARRAY(SELECT rp.permission FROM role_permissions rp WHERE rp.role_id = a.custom_role_id), '{}') AS custom_permissions,
    a.is_active, a.deleted_at IS NOT NULL AS deleted, a.password_changed_at, t.status AS tenant_status
"#;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let Ok(origin) = RequestOrigin::from_request_parts(parts, state).await;
        let headers = &parts.headers;
        let (row, credential) = if headers.contains_key(header::AUTHORIZATION) {
            let token = session_token(headers).ok_or(ApiError::Unauthorized)?;
            from_session_token(state, &token).await?
        } else if let Some(key) = headers.get("x-api-key") {
            from_api_key(state, key.to_str().map_err(|_| ApiError::Unauthorized)?).await?
        } else if let Some(token) = session_token(headers) {
            from_session_token(state, &token).await?
        } else {
            return Err(ApiError::Unauthorized);
        };
        if row.deleted || !row.is_active {
            return Err(ApiError::Unauthorized);
        }
        if row.tenant_status != "active" {
            return Err(ApiError::Forbidden {
                code: "organization_suspended",
                message: "this organization is suspended".into(),
            });
        }
        let role: AgentRole = row.role.parse().map_err(anyhow::Error::from)?;
        let permissions = match row.custom_role_id {
            Some(_) => {
                let mut codes: Vec<Permission> = row
                    .custom_permissions
                    .iter()
                    .filter_map(|c| c.parse().ok())
                    .collect();
                codes.sort();
                codes
            }
            None => role.permissions(),
        };
        let caller = Caller {
            agent_id: AgentId(row.agent_id),
            tenant_id: TenantId(row.tenant_id),
            agent_name: row.name,
            role,
            credential,
            origin,
            permissions,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn from_session_token(state: &AppState, token: &str) -> Result<(PrincipalRow, Credential)> {
    let claims = state.auth.tokens.verify(token)?;
    if claims.typ != "agent" {
        return Err(ApiError::forbidden());
    }
    let (Some(organization), Some(sid)) = (claims.org, claims.sid) else {
        return Err(ApiError::Unauthorized);
    };
    let row: PrincipalRow = sqlx::query_as(&format!(
        r#"SELECT {PRINCIPAL_COLUMNS}, s.revoked_at IS NOT NULL AS credential_revoked,
                  s.expires_at AS credential_expires_at, s.id AS credential_id
           FROM sessions s
           JOIN agents a ON a.id = s.agent_id AND a.tenant_id = s.tenant_id
           JOIN tenants t ON t.id = a.tenant_id
           WHERE s.id = $1 AND s.agent_id = $2 AND s.tenant_id = $3"#
    ))
    .bind(sid)
    .bind(claims.sub)
    .bind(organization)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthorized)?;
    let expired = row.credential_expires_at.is_some_and(|at| at <= Utc::now());
    // A token issued before the last password change is refused (iat has whole seconds).
    let predates_password = claims.iat < row.password_changed_at.timestamp();
    if row.credential_revoked || expired || predates_password {
        return Err(ApiError::Unauthorized);
    }
    let credential = Credential::Session(SessionId(row.credential_id));
    Ok((row, credential))
}

async fn from_api_key(state: &AppState, key: &str) -> Result<(PrincipalRow, Credential)> {
    let row: PrincipalRow = sqlx::query_as(&format!(
        r#"SELECT {PRINCIPAL_COLUMNS}, k.revoked_at IS NOT NULL AS credential_revoked,
                  k.expires_at AS credential_expires_at, k.id AS credential_id
           FROM api_keys k
           JOIN agents a ON a.id = k.agent_id AND a.tenant_id = k.tenant_id
           JOIN tenants t ON t.id = a.tenant_id
           WHERE k.key_hash = $1"#
    ))
    .bind(hash_api_key(key.trim()))
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthorized)?;
    let expired = row.credential_expires_at.is_some_and(|at| at <= Utc::now());
    if row.credential_revoked || expired {
        return Err(ApiError::Unauthorized);
    }
    // Recorded at most once a minute per key, so heavy API use does not write on every request.
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(row.credential_id)
    .execute(&state.pool)
    .await?;
    let credential = Credential::ApiKey(ApiKeyId(row.credential_id));
    Ok((row, credential))
}

/// Whether the caller's credential still holds (not revoked or expired, agent active, tenant
/// active): long-lived connections such as the realtime stream check it periodically.
pub async fn still_valid(state: &AppState, caller: &Caller) -> Result<bool> {
    let sql = match caller.credential {
        Credential::Session(_) => {
            "SELECT EXISTS (SELECT 1 FROM sessions s JOIN agents a ON a.id = s.agent_id AND a.tenant_id = s.tenant_id
               JOIN tenants t ON t.id = a.tenant_id
               WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND a.is_active
                 AND a.deleted_at IS NULL AND t.status = 'active')"
        }
        Credential::ApiKey(_) => {
            "SELECT EXISTS (SELECT 1 FROM api_keys k JOIN agents a ON a.id = k.agent_id AND a.tenant_id = k.tenant_id
               JOIN tenants t ON t.id = a.tenant_id
               WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
                 AND a.is_active AND a.deleted_at IS NULL AND t.status = 'active')"
        }
    };
    let id = match caller.credential {
        Credential::Session(sid) => sid.as_uuid(),
        Credential::ApiKey(key) => key.as_uuid(),
    };
    Ok(sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&state.pool)
        .await?)
}

/// Deletes sessions that ended (expired or revoked) over a day ago and login and registration
/// attempts older than their windows; the gateway runs it every few minutes.
pub async fn prune(pool: &sqlx::PgPool) -> Result<()> {
    sqlx::query(
        "DELETE FROM sessions WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'",
    )
    .execute(pool)
    .await?;
    rate_limit::prune(pool).await
}
