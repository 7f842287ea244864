//! Throttling of the unauthenticated auth endpoints, counted in PostgreSQL so every gateway
//! instance shares the limits.
//!
//! Login (contract §1): at most 10 failures per 15 minutes per (email, client) and 50 per client.
//! An attempt is *reserved* (counted as a failure) before its password is checked, under an
//! advisory lock per client, so concurrent guesses cannot all pass the check before any of them
//! is counted; a successful login releases its reservation. When the client address is unknown
//! only the per-email limit applies, so unrelated clients never share a bucket.
//!
//! Registration: `REGISTRATIONS_PER_HOUR_PER_ADDRESS` sign-ups per client per hour.
//!
//! A client is an IPv4 address or an IPv6 /64 ([`PeerKey`]).

use std::net::IpAddr;

use sqlx::PgPool;
use uuid::Uuid;

use crate::http::error::{ApiError, Result};
use crate::http::peer::PeerKey;

const LOGIN_WINDOW_SECONDS: i64 = 15 * 60;
const LOGIN_PER_EMAIL_AND_CLIENT: i64 = 10;
const LOGIN_PER_CLIENT: i64 = 50;
const REGISTRATION_WINDOW_SECONDS: i64 = 3600;

/// The bucket of a request's client address (`None` when unknown).
pub fn client_key(ip: Option<&str>) -> Option<String> {
    ip.and_then(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| PeerKey::of(ip).to_string())
}

/// A reserved login attempt: counted as a failure until [`release`]d by a successful login.
#[derive(Debug, Clone, Copy)]
#[must_use = "a successful login releases its reservation"]
pub struct LoginAttempt(Uuid);

/// Reserves one login attempt for `email` from `client`, or 429 with `Retry-After` when either
/// limit is reached.
pub async fn reserve_login(
    pool: &PgPool,
    email: &str,
    client: Option<&str>,
) -> Result<LoginAttempt> {
    let client_known = client.is_some();
    let client = client.unwrap_or_default();
    let mut tx = pool.begin().await?;
    let lock_key = if client_known {
        format!("login-client:{client}")
    } else {
        format!("login-email:{email}")
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&lock_key)
        .execute(&mut *tx)
        .await?;
    let (pair_count, pair_oldest, client_count, client_oldest): (i64, Option<f64>, i64, Option<f64>) = sqlx::query_as(
        r#"
        WITH pair AS (
            SELECT failed_at FROM login_failures
            WHERE email = $1 AND ip = $2 AND failed_at > now() - make_interval(secs => $3)
            ORDER BY failed_at DESC LIMIT $4
        ), by_client AS (
            SELECT failed_at FROM login_failures
            WHERE ip = $2 AND failed_at > now() - make_interval(secs => $3)
            ORDER BY failed_at DESC LIMIT $5
        )
        SELECT (SELECT count(*) FROM pair),
               (SELECT extract(epoch FROM min(failed_at) + make_interval(secs => $3) - now())::float8 FROM pair),
               (SELECT count(*) FROM by_client),
               (SELECT extract(epoch FROM min(failed_at) + make_interval(secs => $3) - now())::float8 FROM by_client)
        "#,
    )
    .bind(email)
    .bind(client)
    .bind(LOGIN_WINDOW_SECONDS as f64)
    .bind(LOGIN_PER_EMAIL_AND_CLIENT)
    .bind(LOGIN_PER_CLIENT)
    .fetch_one(&mut *tx)
    .await?;
    if pair_count >= LOGIN_PER_EMAIL_AND_CLIENT {
        return Err(rate_limited(pair_oldest, LOGIN_WINDOW_SECONDS));
    }
    if client_known && client_count >= LOGIN_PER_CLIENT {
        return Err(rate_limited(client_oldest, LOGIN_WINDOW_SECONDS));
    }
    let attempt = Uuid::new_v4();
    sqlx::query("INSERT INTO login_failures (email, ip, attempt_id) VALUES ($1, $2, $3)")
        .bind(email)
        .bind(client)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(LoginAttempt(attempt))
}

/// A successful login: its reserved attempt does not count as a failure.
pub async fn release(pool: &PgPool, attempt: LoginAttempt) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE attempt_id = $1")
        .bind(attempt.0)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts one sign-up from `client`, or 429 with `Retry-After` when it already made
/// `per_hour` in the last hour. Unknown clients are not limited here.
pub async fn reserve_registration(
    pool: &PgPool,
    client: Option<&str>,
    per_hour: u32,
) -> Result<()> {
    let Some(client) = client else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("register-client:{client}"))
        .execute(&mut *tx)
        .await?;
    let (count, oldest): (i64, Option<f64>) = sqlx::query_as(
        r#"
        WITH recent AS (
            SELECT attempted_at FROM registration_attempts
            WHERE ip = $1 AND attempted_at > now() - make_interval(secs => $2)
            ORDER BY attempted_at DESC LIMIT $3
        )
        SELECT (SELECT count(*) FROM recent),
               (SELECT extract(epoch FROM min(attempted_at) + make_interval(secs => $2) - now())::float8 FROM recent)
        "#,
    )
    .bind(client)
    .bind(REGISTRATION_WINDOW_SECONDS as f64)
    .bind(i64::from(per_hour))
    .fetch_one(&mut *tx)
    .await?;
    if count >= i64::from(per_hour) {
        return Err(rate_limited(oldest, REGISTRATION_WINDOW_SECONDS));
    }
    sqlx::query("INSERT INTO registration_attempts (ip) VALUES ($1)")
        .bind(client)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets attempts older than their windows (the gateway's upkeep calls it).
pub async fn prune(pool: &PgPool) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => $1)")
        .bind(LOGIN_WINDOW_SECONDS as f64)
        .execute(pool)
        .await?;
    sqlx::query(
        "DELETE FROM registration_attempts WHERE attempted_at < now() - make_interval(secs => $1)",
    )
    .bind(REGISTRATION_WINDOW_SECONDS as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// 429 whose `Retry-After` is when the oldest counted attempt leaves the window.
fn rate_limited(oldest_expires_in: Option<f64>, window: i64) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: oldest_expires_in.map_or(window as u64, |s| s.ceil().max(1.0) as u64),
    }
}
