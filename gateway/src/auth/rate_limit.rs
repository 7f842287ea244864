//! Login throttling (contract §1): at most 10 failures per 15 minutes per (email, IP) and 50 per
//! 15 minutes per IP. Counted in PostgreSQL so every gateway instance shares the limits. When the
//! peer address is unknown only the per-email limit applies, so unrelated clients never share a
//! bucket.

use sqlx::PgPool;

use crate::error::{ApiError, Result};

const WINDOW_SECONDS: i64 = 15 * 60;
const PER_EMAIL_AND_IP: i64 = 10;
const PER_IP: i64 = 50;

/// 429 with `Retry-After` when either limit is reached.
pub async fn check(pool: &PgPool, email: &str, ip: Option<&str>) -> Result<()> {
    let ip_known = ip.is_some();
    let ip = ip.unwrap_or_default();
    let (pair_count, pair_oldest, ip_count, ip_oldest): (i64, Option<f64>, i64, Option<f64>) = sqlx::query_as(
        r#"
        WITH pair AS (
            SELECT failed_at FROM login_failures
            WHERE email = $1 AND ip = $2 AND failed_at > now() - make_interval(secs => $3)
            ORDER BY failed_at DESC LIMIT $4
        ), by_ip AS (
            SELECT failed_at FROM login_failures
            WHERE ip = $2 AND failed_at > now() - make_interval(secs => $3)
            ORDER BY failed_at DESC LIMIT $5
        )
        SELECT (SELECT count(*) FROM pair),
               (SELECT extract(epoch FROM min(failed_at) + make_interval(secs => $3) - now())::float8 FROM pair),
               (SELECT count(*) FROM by_ip),
               (SELECT extract(epoch FROM min(failed_at) + make_interval(secs => $3) - now())::float8 FROM by_ip)
        "#,
    )
    .bind(email)
    .bind(ip)
    .bind(WINDOW_SECONDS as f64)
    .bind(PER_EMAIL_AND_IP)
    .bind(PER_IP)
    .fetch_one(pool)
    .await?;
    let wait =
        |oldest: Option<f64>| oldest.map_or(WINDOW_SECONDS as u64, |s| s.ceil().max(1.0) as u64);
    if pair_count >= PER_EMAIL_AND_IP {
        return Err(ApiError::RateLimited {
            retry_after_secs: wait(pair_oldest),
        });
    }
    if ip_known && ip_count >= PER_IP {
        return Err(ApiError::RateLimited {
            retry_after_secs: wait(ip_oldest),
        });
    }
    Ok(())
}

/// Records one failed login (and forgets failures older than the window).
pub async fn record_failure(pool: &PgPool, email: &str, ip: Option<&str>) -> Result<()> {
    let ip = ip.unwrap_or_default();
    sqlx::query("INSERT INTO login_failures (email, ip) VALUES ($1, $2)")
        .bind(email)
        .bind(ip)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE failed_at < now() - make_interval(secs => $1)")
        .bind(WINDOW_SECONDS as f64)
        .execute(pool)
        .await?;
    Ok(())
}
