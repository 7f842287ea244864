//! The SQL of tenants: loading an organization, creating one with its system roles and first
//! admin, and seeding the demo tenant on an empty database.

use omnistream_domain::{AgentId, AgentRole, EmailAddress, TenantId};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sqlx::{PgConnection, PgPool};

use super::dto::{DemoLogin, NewOrganization, Organization};
use crate::api::roles;
use crate::http::auth::password;
use crate::http::error::{ApiError, Result, ResultExt};

/// Loads the organization of `tenant`.
pub async fn load_organization(conn: &mut PgConnection, tenant: TenantId) -> Result<Organization> {
    sqlx::query_as("SELECT id, name, slug, status, timezone, plan_id, created_at, updated_at, suspended_at FROM tenants WHERE id = $1")
        .bind(tenant.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(ApiError::NotFound)
}

/// A URL-safe slug of `name`: lower-case ASCII letters and digits joined by dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(48).collect();
    if slug.is_empty() {
        "org".to_owned()
    } else {
        slug.trim_end_matches('-').to_owned()
    }
}

/// Creates an organization (status `active`, timezone `Asia/Jakarta`), its system roles and its
/// first agent (`admin`, `can_broadcast`). 409 `email_taken` when the email is in use.
pub async fn create_organization(
    conn: &mut PgConnection,
    new: NewOrganization<'_>,
) -> Result<(Organization, AgentId)> {
    let password_hash = new.admin_password_hash;
    let tenant = TenantId::new();
    let base = slugify(new.organization_name);
    let mut slug = base.clone();
    loop {
        let inserted = sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING")
            .bind(tenant.as_uuid())
            .bind(new.organization_name)
            .bind(&slug)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if inserted == 1 {
            break;
        }
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(6)
            .map(|b| char::from(b).to_ascii_lowercase())
            .collect();
        slug = format!("{base}-{suffix}");
    }
    roles::create_system_roles(conn, tenant).await?;
    let agent = AgentId::new();
    sqlx::query(
        "INSERT INTO agents (id, tenant_id, name, email, password_hash, role, can_broadcast) VALUES ($1, $2, $3, $4, $5, $6, true)",
    )
    .bind(agent.as_uuid())
    .bind(tenant.as_uuid())
    .bind(new.admin_name)
    .bind(new.admin_email.as_str())
    .bind(&password_hash)
    .bind(AgentRole::Admin.as_str())
    .execute(&mut *conn)
    .await
    .on_constraint("agents_email_key", || ApiError::conflict("email_taken", "an account with this email already exists"))?;
    Ok((load_organization(conn, tenant).await?, agent))
}

/// On a database with no tenant, creates the demo organization and returns its admin login.
pub async fn seed_demo_tenant(pool: &PgPool) -> Result<Option<DemoLogin>> {
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let admin_password_hash = password::hash(password.clone()).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('omnistream:demo-seed', 0))")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(None);
    }
    let email = EmailAddress::parse("admin@demo.omnistream.local").map_err(anyhow::Error::from)?;
    create_organization(
        &mut tx,
        NewOrganization {
            organization_name: "Demo Organization",
            admin_name: "Demo Admin",
            admin_email: &email,
            admin_password_hash,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some(DemoLogin {
        email: email.into_inner(),
        password,
    }))
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("PT Maju Jaya, Tbk."), "pt-maju-jaya-tbk");
        assert_eq!(slugify("  ☃☃ "), "org");
        assert_eq!(slugify("Ácme"), "cme");
    }
}
