//! Process start-up shared by the subcommands: logging, infrastructure resolution, secrets.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::app::config::{Config, Secret};
use crate::app::devstack::{DevStack, Probe};

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for
/// structured logs.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,async_nats=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Database and NATS URLs: from the configuration, else from the embedded dev stack.
pub async fn resolve_infrastructure(
    config: &Config,
) -> anyhow::Result<(String, String, Option<DevStack>)> {
    match (&config.database_url, &config.nats_url) {
        (Some(database), Some(nats)) => Ok((database.clone(), nats.clone(), None)),
        (database, nats) => {
            let stack = DevStack::ensure(&config.data_dir, Probe::from_env()?).await?;
            let database = database
                .clone()
                .unwrap_or_else(|| stack.database_url.clone());
            let nats = nats.clone().unwrap_or_else(|| stack.nats_url.clone());
            Ok((database, nats, Some(stack)))
        }
    }
}

/// `JWT_SECRET`, or (development only) a random secret kept in `<data_dir>/jwt_secret` so that
/// sessions survive restarts. Outside development a missing secret is an error: instances with
/// different generated secrets would refuse each other's tokens.
pub fn resolve_jwt_secret(config: &Config, development: bool) -> anyhow::Result<Secret> {
    resolve_secret(
        config.jwt_secret.as_ref(),
        "JWT_SECRET",
        &config.data_dir.join("jwt_secret"),
        development,
    )
}

/// `ENCRYPTION_KEY`, or (development only) a random key kept in `<data_dir>/encryption_key`.
pub fn resolve_encryption_key(config: &Config, development: bool) -> anyhow::Result<Secret> {
    resolve_secret(
        config.encryption_key.as_ref(),
        "ENCRYPTION_KEY",
        &config.data_dir.join("encryption_key"),
        development,
    )
}

fn resolve_secret(
    configured: Option<&Secret>,
    name: &str,
    path: &Path,
    development: bool,
) -> anyhow::Result<Secret> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.expose().len() >= 32,
            "{name} must be at least 32 bytes long"
        );
        return Ok(secret.clone());
    }
    anyhow::ensure!(
        development,
        "{name} must be set when DATABASE_URL is set (at least 32 random bytes)"
    );
    if let Ok(existing) = std::fs::read_to_string(path) {
        if existing.trim().len() >= 32 {
            return Ok(Secret::new(existing.trim()));
        }
    }
    tracing::warn!(
        "{name} is not set: using a generated development value stored in the data directory"
    );
    let generated = random_secret();
    write_private(path, &generated)?;
    Ok(Secret::new(generated))
}

/// 64 random alphanumeric characters (URL- and config-safe).
pub(crate) fn random_secret() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

/// Writes `contents` to `path`, readable by this user only (0600), creating its folder.
pub(crate) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies to new files only: an older, looser file is tightened too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// Prints the first-start banner on standard output (a console message for the operator, not a
/// log line: it carries the demo password once).
pub fn print_banner(base_url: &str, demo: Option<&crate::api::tenants::DemoLogin>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nOmniStream is running at {base_url}");
    let _ = writeln!(out, "  API docs:     {base_url}/docs");
    let _ = writeln!(out, "  OpenAPI:      {base_url}/api/openapi.json");
    if let Some(demo) = demo {
        let _ = writeln!(
            out,
            "  Demo tenant created. Admin login: {} / {}",
            demo.email, demo.password
        );
    }
    let _ = writeln!(out);
}
