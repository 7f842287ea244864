//! The handlers of the Auth tag, and the two things they share: opening a session (its row and
//! signed token) and the session cookie.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use omnistream_domain::{AgentId, AgentRole, SessionId, TenantId};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use super::dto::*;
use super::store;
use crate::api::activity_logs as activity;
use crate::api::agents::load_agent;
use crate::api::tenants::{create_organization, load_organization, NewOrganization};
use crate::app::config::Config;
use crate::app::AuthKeys;
use crate::http::auth::jwt::IssuedToken;
use crate::http::auth::{
    password, rate_limit, session_token, Caller, RequestOrigin, SESSION_COOKIE,
};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{MessageResponse, ValidJson};

fn session_cookie(config: &Config, token: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if config.cookies_secure() {
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

/// Opens a session for `agent`, ending at the latest `max_lifetime` from now, and signs its
/// token.
async fn open_session(
    conn: &mut PgConnection,
    auth: &AuthKeys,
    max_lifetime: Duration,
    tenant: TenantId,
    agent: AgentId,
    role: AgentRole,
) -> Result<IssuedToken> {
    let sid = SessionId::new();
    let session_end =
        Utc::now() + chrono::Duration::from_std(max_lifetime).map_err(anyhow::Error::from)?;
    let issued = auth
        .tokens
        .issue_until(agent, tenant, role, sid, Some(session_end))?;
    store::insert_session(conn, sid, tenant, agent, issued.expires_at).await?;
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
pub(super) async fn register(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(auth): State<AuthKeys>,
    origin: RequestOrigin,
    ValidJson(body): ValidJson<RegisterRequest>,
) -> Result<Response> {
    let client = rate_limit::client_key(origin.ip.as_deref());
    {
        let _share = auth.public_share().await?;
        rate_limit::reserve_registration(&pool, client.as_deref(), config.registrations_per_hour)
            .await?;
    }
    // Hashed before a connection is taken: a pooled connection must not wait on argon2.
    let admin_password_hash = password::hash(body.password).await?;
    let _share = auth.public_share().await?;
    let mut tx = pool.begin().await?;
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
    let issued = open_session(
        &mut tx,
        &auth,
        config.session_max_lifetime,
        tenant,
        agent_id,
        AgentRole::Admin,
    )
    .await?;
    let agent = load_agent(&mut tx, tenant, agent_id.as_uuid()).await?;
    store::record(
        &mut tx,
        activity::actor(tenant, agent.id, &agent.name, &origin),
        "organization.registered",
        "organization",
        organization.id,
        json!({ "name": organization.name, "slug": organization.slug, "admin_email": agent.email }),
    )
    .await?;
    tx.commit().await?;
    let cookie = session_cookie(&config, &issued.token, auth.tokens.ttl().as_secs());
    let body = LoginResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
        agent,
        organization: Some(organization),
    };
    Ok(with_cookie(cookie, StatusCode::CREATED, body))
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
pub(super) async fn login(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(auth): State<AuthKeys>,
    origin: RequestOrigin,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response> {
    let email = body.email.to_lowercase();
    let client = rate_limit::client_key(origin.ip.as_deref());
    let share = auth.public_share().await?;
    let attempt = rate_limit::reserve_login(&pool, &email, client.as_deref()).await?;
    let candidate = store::login_candidate(&pool, &email).await?;
    drop(share);
    let matches = password::verify(
        body.password,
        candidate.as_ref().map(|c| c.password_hash.clone()),
    )
    .await?;
    let Some(candidate) = candidate.filter(|_| matches) else {
        return Err(ApiError::invalid_credentials());
    };
    let _share = auth.public_share().await?;
    rate_limit::release(&pool, attempt).await?;
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
    let mut tx = pool.begin().await?;
    let issued = open_session(
        &mut tx,
        &auth,
        config.session_max_lifetime,
        tenant,
        AgentId(candidate.id),
        role,
    )
    .await?;
    let agent = load_agent(&mut tx, tenant, candidate.id).await?;
    store::record(
        &mut tx,
        activity::actor(tenant, agent.id, &agent.name, &origin),
        "auth.login",
        "agent",
        agent.id,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    let cookie = session_cookie(&config, &issued.token, auth.tokens.ttl().as_secs());
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
pub(super) async fn me(State(pool): State<PgPool>, caller: Caller) -> Result<Json<MeResponse>> {
    let mut conn = pool.acquire().await?;
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
pub(super) async fn logout(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(auth): State<AuthKeys>,
    origin: RequestOrigin,
    headers: HeaderMap,
) -> Result<Response> {
    let claims = session_token(&headers).and_then(|token| auth.tokens.verify(&token).ok());
    if let Some((claims, organization, sid)) =
        claims.and_then(|c| Some((c.clone(), c.org?, c.sid?)))
    {
        let mut tx = pool.begin().await?;
        if let Some(name) = store::revoke_session(&mut tx, sid, claims.sub).await? {
            store::record(
                &mut tx,
                activity::actor(TenantId(organization), claims.sub, &name, &origin),
                "auth.logout",
                "agent",
                claims.sub,
                json!({}),
            )
            .await?;
        }
        tx.commit().await?;
    }
    let cookie = session_cookie(&config, "", 0);
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
pub(super) async fn refresh_token(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(auth): State<AuthKeys>,
    caller: Caller,
) -> Result<Response> {
    issue_for_session(&pool, &config, &auth, &caller).await
}

/// Refresh the session's token
#[utoipa::path(
    post, path = "/api/auth/token", tag = "Auth",
    responses((status = 200, description = "The same as GET /api/auth/token, as a POST: a cookie-authenticated call needs Content-Type: application/json or X-Requested-With like every cookie-authenticated write", body = TokenResponse),
              (status = 401, body = ErrorResponse),
              (status = 403, description = "session_required with an API key; forbidden for a cookie-authenticated call without the header", body = ErrorResponse)),
    security(("bearer" = []), ("cookie" = []))
)]
pub(super) async fn refresh_token_post(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(auth): State<AuthKeys>,
    caller: Caller,
) -> Result<Response> {
    issue_for_session(&pool, &config, &auth, &caller).await
}

/// Issues a fresh token for the caller's session: a new TTL, never past the session's absolute
/// end (`SESSION_MAX_LIFETIME_SECONDS` after login). Only the caller's session changes.
async fn issue_for_session(
    pool: &PgPool,
    config: &Config,
    auth: &AuthKeys,
    caller: &Caller,
) -> Result<Response> {
    let sid = caller.session()?;
    let created_at = store::session_started_at(pool, sid)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let session_end = created_at
        + chrono::Duration::from_std(config.session_max_lifetime).map_err(anyhow::Error::from)?;
    if session_end <= Utc::now() {
        return Err(ApiError::Unauthorized);
    }
    let issued = auth.tokens.issue_until(
        caller.agent_id,
        caller.tenant_id,
        caller.role,
        sid,
        Some(session_end),
    )?;
    let mut tx = pool.begin().await?;
    store::extend_session(&mut tx, sid, issued.expires_at).await?;
    store::record(
        &mut tx,
        caller,
        "auth.token_refreshed",
        "agent",
        caller.agent_id.as_uuid(),
        json!({ "expires_at": issued.expires_at }),
    )
    .await?;
    tx.commit().await?;
    let lifetime = (issued.expires_at - Utc::now()).num_seconds().max(0) as u64;
    let cookie = session_cookie(config, &issued.token, lifetime);
    let body = TokenResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
    };
    Ok(with_cookie(cookie, StatusCode::OK, body))
}
