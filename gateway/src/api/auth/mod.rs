//! Auth tag: register, login, current profile, logout and token refresh.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::{AgentId, AgentRole, EmailAddress, SessionId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::api::agents::{load_agent, AgentPublic};
use crate::api::tenants::{create_organization, load_organization, NewOrganization, Organization};
use crate::app::AppState;
use crate::http::auth::{
    password, rate_limit, session_token, Caller, RequestOrigin, SESSION_COOKIE,
};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{check_password, check_text, MessageResponse, ValidJson, Validate};

/// Body of `POST /api/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

impl Validate for LoginRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "email", &mut self.email, 1, 254);
        if self.password.is_empty() {
            violations.add("password", "must not be empty");
        }
    }
}

/// Body of `POST /api/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1..200 characters.
    organization_name: String,
    /// The first admin's name, 1..100 characters.
    name: String,
    #[schema(value_type = String, format = Email)]
    email: EmailAddress,
    /// At least 8 characters.
    password: String,
}

impl Validate for RegisterRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(
            violations,
            "organization_name",
            &mut self.organization_name,
            1,
            200,
        );
        check_text(violations, "name", &mut self.name, 1, 100);
        check_password(violations, "password", &self.password);
    }
}

/// `LoginResponse` (register adds `organization`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    pub agent: AgentPublic,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
}

/// `GET /api/auth/token` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/auth/me` response: the agent, its effective permissions and its organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub agent: AgentPublic,
    /// Effective permission codes.
    pub permissions: Vec<String>,
    pub organization: Organization,
}

fn session_cookie(state: &AppState, token: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.config.cookies_secure() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("omnistream_token=; Max-Age=0; Path=/"))
}

fn with_cookie(cookie: HeaderValue, status: StatusCode, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// Opens a session for `agent` and signs its token.
async fn open_session(
    conn: &mut PgConnection,
    state: &AppState,
    tenant: TenantId,
    agent: AgentId,
    role: AgentRole,
) -> Result<crate::http::auth::jwt::IssuedToken> {
    let sid = SessionId::new();
    let session_end = Utc::now()
        + chrono::Duration::from_std(state.config.session_max_lifetime)
            .map_err(anyhow::Error::from)?;
    let issued = state
        .auth
        .tokens
        .issue_until(agent, tenant, role, sid, Some(session_end))?;
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, agent_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(sid.as_uuid())
    .bind(tenant.as_uuid())
    .bind(agent.as_uuid())
    .bind(issued.expires_at)
    .execute(conn)
    .await?;
    Ok(issued)
}

/// Register a new tenant organization
#[utoipa::path(
    post, path = "/api/auth/register", tag = "Auth", request_body = RegisterRequest,
    responses((status = 201, description = "Sets the session cookie", body = LoginResponse),
              (status = 400, body = ErrorResponse), (status = 409, description = "email_taken", body = ErrorResponse),
              (status = 429, description = "rate_limited: REGISTRATIONS_PER_HOUR_PER_ADDRESS sign-ups per client address per hour (default 10); Retry-After set", body = ErrorResponse),
              (status = 503, description = "service_unavailable: too many passwords being hashed at once", body = ErrorResponse))
)]
async fn register(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ValidJson(body): ValidJson<RegisterRequest>,
) -> Result<Response> {
    let client = rate_limit::client_key(origin.ip.as_deref());
    {
        let _share = state.public_share().await?;
        rate_limit::reserve_registration(
            &state.pool,
            client.as_deref(),
            state.config.registrations_per_hour,
        )
        .await?;
    }
    // Hashed before a connection is taken: a pooled connection must not wait on argon2.
    let admin_password_hash = password::hash(body.password).await?;
    let _share = state.public_share().await?;
    let mut tx = state.pool.begin().await?;
    let (organization, agent_id) = create_organization(
        &mut tx,
        NewOrganization {
            organization_name: &body.organization_name,
            admin_name: &body.name,
            admin_email: &body.email,
            admin_password_hash,
        },
    )
    .await?;
    let tenant = TenantId(organization.id);
    let issued = open_session(&mut tx, &state, tenant, agent_id, AgentRole::Admin).await?;
    let agent = load_agent(&mut tx, tenant, agent_id.as_uuid()).await?;
    activity::record(
        &mut tx,
        activity::actor(tenant, agent.id, &agent.name, &origin),
        Activity {
            action: "organization.registered",
            entity_type: "organization",
            entity_id: Some(organization.id.to_string()),
            details: json!({ "name": organization.name, "slug": organization.slug, "admin_email": agent.email }),
        },
    )
    .await?;
    tx.commit().await?;
    let cookie = session_cookie(&state, &issued.token, state.auth.tokens.ttl().as_secs());
    let body = LoginResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
        agent,
        organization: Some(organization),
    };
    Ok(with_cookie(cookie, StatusCode::CREATED, body))
}

#[derive(sqlx::FromRow)]
struct LoginCandidate {
    id: Uuid,
    tenant_id: Uuid,
    password_hash: String,
    role: String,
    usable: bool,
    tenant_active: bool,
}

/// Login with email and password
#[utoipa::path(
    post, path = "/api/auth/login", tag = "Auth", request_body = LoginRequest,
    responses((status = 200, description = "Sets the session cookie", body = LoginResponse),
              (status = 400, body = ErrorResponse),
              (status = 401, description = "invalid_credentials (same message for unknown email and wrong password)", body = ErrorResponse),
              (status = 403, description = "account_suspended or organization_suspended", body = ErrorResponse),
              (status = 429, description = "rate_limited: 10 failures per 15 min per email+client, 50 per client (an IPv4 address or IPv6 /64; behind TRUSTED_PROXIES the forwarded client); an attempt counts from the moment it is checked; Retry-After set", body = ErrorResponse),
              (status = 503, description = "service_unavailable: too many passwords being checked at once", body = ErrorResponse))
)]
async fn login(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response> {
    let email = body.email.to_lowercase();
    let client = rate_limit::client_key(origin.ip.as_deref());
    let share = state.public_share().await?;
    let attempt = rate_limit::reserve_login(&state.pool, &email, client.as_deref()).await?;
    // A live account wins over deleted ones that once used the same address.
    let candidate: Option<LoginCandidate> = sqlx::query_as(
        r#"SELECT a.id, a.tenant_id, a.password_hash, a.role, a.is_active AND a.deleted_at IS NULL AS usable,
                  t.status = 'active' AS tenant_active
           FROM agents a JOIN tenants t ON t.id = a.tenant_id
           WHERE lower(a.email) = $1
           ORDER BY a.deleted_at IS NULL DESC, a.deleted_at DESC LIMIT 1"#,
    )
    .bind(&email)
    .fetch_optional(&state.pool)
    .await?;
    drop(share);
    let matches = password::verify(
        body.password,
        candidate.as_ref().map(|c| c.password_hash.clone()),
    )
    .await?;
    let Some(candidate) = candidate.filter(|_| matches) else {
        return Err(ApiError::invalid_credentials());
    };
    let _share = state.public_share().await?;
    rate_limit::release(&state.pool, attempt).await?;
    if !candidate.usable {
        return Err(ApiError::Forbidden {
            code: "account_suspended",
            message: "this account is deactivated".into(),
        });
    }
    if !candidate.tenant_active {
        return Err(ApiError::Forbidden {
            code: "organization_suspended",
            message: "this organization is suspended".into(),
        });
    }
    let tenant = TenantId(candidate.tenant_id);
    let role: AgentRole = candidate.role.parse().map_err(anyhow::Error::from)?;
    let mut tx = state.pool.begin().await?;
    let issued = open_session(&mut tx, &state, tenant, AgentId(candidate.id), role).await?;
    let agent = load_agent(&mut tx, tenant, candidate.id).await?;
    activity::record(
        &mut tx,
        activity::actor(tenant, agent.id, &agent.name, &origin),
        Activity {
            action: "auth.login",
            entity_type: "agent",
            entity_id: Some(agent.id.to_string()),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    let cookie = session_cookie(&state, &issued.token, state.auth.tokens.ttl().as_secs());
    let body = LoginResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
        agent,
        organization: None,
    };
    Ok(with_cookie(cookie, StatusCode::OK, body))
}

/// Get current agent profile
#[utoipa::path(
    get, path = "/api/auth/me", tag = "Auth",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<MeResponse>> {
    let mut conn = state.pool.acquire().await?;
    let agent = load_agent(&mut conn, caller.tenant_id, caller.agent_id.as_uuid()).await?;
    let organization = load_organization(&mut conn, caller.tenant_id).await?;
    let permissions = caller
        .permissions()
        .iter()
        .map(|p| p.code().to_owned())
        .collect();
    Ok(Json(MeResponse {
        agent,
        permissions,
        organization,
    }))
}

/// Logout (clears cookie)
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "Auth",
    responses((status = 200, description = "Always 200; a valid session in the request is revoked", body = MessageResponse))
)]
async fn logout(
    State(state): State<AppState>,
    origin: RequestOrigin,
    headers: HeaderMap,
) -> Result<Response> {
    let claims = session_token(&headers).and_then(|token| state.auth.tokens.verify(&token).ok());
    if let Some((claims, organization, sid)) =
        claims.and_then(|c| Some((c.clone(), c.org?, c.sid?)))
    {
        let mut tx = state.pool.begin().await?;
        let revoked: Option<String> = sqlx::query_scalar(
            r#"UPDATE sessions s SET revoked_at = now() FROM agents a
               WHERE s.id = $1 AND s.agent_id = $2 AND s.revoked_at IS NULL AND a.id = s.agent_id
               RETURNING a.name"#,
        )
        .bind(sid)
        .bind(claims.sub)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(name) = revoked {
            activity::record(
                &mut tx,
                activity::actor(TenantId(organization), claims.sub, &name, &origin),
                Activity {
                    action: "auth.logout",
                    entity_type: "agent",
                    entity_id: Some(claims.sub.to_string()),
                    details: json!({}),
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    let cookie = session_cookie(&state, "", 0);
    Ok(with_cookie(
        cookie,
        StatusCode::OK,
        MessageResponse {
            message: "logged out".into(),
        },
    ))
}

/// Issue a fresh JWT for the current session
#[utoipa::path(
    get, path = "/api/auth/token", tag = "Auth",
    responses((status = 200, description = "New 24 h expiry (never past the session's absolute end, SESSION_MAX_LIFETIME_SECONDS after login, default 30 days); re-sets the cookie. Changes only the caller's own session", body = TokenResponse),
              (status = 401, body = ErrorResponse),
              (status = 403, description = "session_required with an API key", body = ErrorResponse)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn refresh_token(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    issue_for_session(&state, &caller).await
}

/// Refresh the session's token
#[utoipa::path(
    post, path = "/api/auth/token", tag = "Auth",
    responses((status = 200, description = "The same as GET /api/auth/token, as a POST: a cookie-authenticated call needs Content-Type: application/json or X-Requested-With like every cookie-authenticated write", body = TokenResponse),
              (status = 401, body = ErrorResponse),
              (status = 403, description = "session_required with an API key; forbidden for a cookie-authenticated call without the header", body = ErrorResponse)),
    security(("bearer" = []), ("cookie" = []))
)]
async fn refresh_token_post(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    issue_for_session(&state, &caller).await
}

/// Issues a fresh token for the caller's session: a new TTL, never past the session's absolute
/// end (`SESSION_MAX_LIFETIME_SECONDS` after login). Only the caller's session changes.
async fn issue_for_session(state: &AppState, caller: &Caller) -> Result<Response> {
    let sid = caller.session()?;
    let created_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT created_at FROM sessions WHERE id = $1")
            .bind(sid.as_uuid())
            .fetch_optional(&state.pool)
            .await?
            .ok_or(ApiError::Unauthorized)?;
    let session_end = created_at
        + chrono::Duration::from_std(state.config.session_max_lifetime)
            .map_err(anyhow::Error::from)?;
    if session_end <= Utc::now() {
        return Err(ApiError::Unauthorized);
    }
    let issued = state.auth.tokens.issue_until(
        caller.agent_id,
        caller.tenant_id,
        caller.role,
        sid,
        Some(session_end),
    )?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("UPDATE sessions SET expires_at = $2 WHERE id = $1")
        .bind(sid.as_uuid())
        .bind(issued.expires_at)
        .execute(&mut *tx)
        .await?;
    activity::record(
        &mut tx,
        caller,
        Activity {
            action: "auth.token_refreshed",
            entity_type: "agent",
            entity_id: Some(caller.agent_id.to_string()),
            details: json!({ "expires_at": issued.expires_at }),
        },
    )
    .await?;
    tx.commit().await?;
    let lifetime = (issued.expires_at - Utc::now()).num_seconds().max(0) as u64;
    let cookie = session_cookie(state, &issued.token, lifetime);
    let body = TokenResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
    };
    Ok(with_cookie(cookie, StatusCode::OK, body))
}

/// Routes of the Auth tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(logout))
        .routes(routes!(refresh_token, refresh_token_post))
        .routes(routes!(register))
}
