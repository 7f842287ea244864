//! The `omnistream` binary: every role of the platform, selected by subcommand.

use anyhow::Context;
use clap::{Parser, Subcommand};
use omnistream_gateway::api::tenants;
use omnistream_gateway::app::config::Config;
use omnistream_gateway::app::{db, startup};
use omnistream_gateway::app::{Application, Roles, Settings};

/// mimalloc returns freed memory to the system and keeps allocation off the hot paths' profile;
/// see the workspace manifest for the measurements behind it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "omnistream",
    version,
    about = "OmniStream omnichannel conversation platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything in one process (the default).
    Serve,
    /// Only the REST API.
    Gateway,
    /// Only the inbound webhook receivers.
    Ingest,
    /// Only the background workers (projectors).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Rebuild a projection (or `all`) from the event log, then exit.
    Replay {
        /// Projection name, or `all`.
        projection: String,
    },
}

#[tokio::main]
async fn main() {
    startup::init_tracing();
    if let Err(error) = run(Cli::parse()).await {
        tracing::error!("{error:#}");
        eprintln!("omnistream: {error:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let command = cli.command.unwrap_or(Command::Serve);
    let (database_url, nats_url, dev_stack) = startup::resolve_infrastructure(&config).await?;
    let infra = Infrastructure {
        database_url,
        nats_url,
        development: config.database_url.is_none(),
    };
    let database_url = infra.database_url.clone();
    let outcome = match command {
        Command::Serve => serve(config, infra, Roles::ALL).await,
        Command::Gateway => serve(config, infra, Roles::GATEWAY).await,
        Command::Ingest => serve(config, infra, Roles::INGEST).await,
        Command::Worker => serve(config, infra, Roles::WORKER).await,
        Command::Migrate => migrate(&database_url).await,
        Command::Replay { projection } => replay(&database_url, &projection).await,
    };
    if let Some(stack) = dev_stack {
        stack.stop().await;
    }
    outcome
}

/// Where this process's PostgreSQL and NATS are.
struct Infrastructure {
    database_url: String,
    nats_url: String,
    /// The database comes from the embedded dev stack (no `DATABASE_URL`): development
    /// conveniences (a generated JWT secret, the demo tenant) are allowed.
    development: bool,
}

async fn serve(config: Config, infra: Infrastructure, roles: Roles) -> anyhow::Result<()> {
    let jwt_secret = startup::resolve_jwt_secret(&config, infra.development)?;
    let encryption_key = startup::resolve_encryption_key(&config, infra.development)?;
    let base_url = config.public_base_url.clone();
    let settings = Settings {
        config,
        database_url: infra.database_url,
        nats_url: infra.nats_url,
        jwt_secret,
        encryption_key,
        roles,
    };
    let app = Application::build(settings).await?;
    let demo = if roles.api && infra.development {
        tenants::seed_demo_tenant(&app.state().pool)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        None
    };
    tracing::info!(address = %app.local_addr()?, ?roles, "omnistream started");
    startup::print_banner(&base_url, demo.as_ref());
    let stop = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    app.run_until_stopped().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let pool = db::connect(database_url, 2, std::time::Duration::from_secs(30)).await?;
    db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn replay(database_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = db::connect(database_url, 2, std::time::Duration::from_secs(30)).await?;
    db::migrate(&pool).await?;
    let projectors = if name == "all" {
        omnistream_projections::all_projectors()
            .into_iter()
            .filter(|p| p.replayable())
            .collect()
    } else {
        vec![omnistream_projections::projector_by_name(name)
            .with_context(|| format!("unknown projection `{name}`"))?]
    };
    for projector in projectors {
        let applied = omnistream_projections::replay::replay(&pool, projector.as_ref()).await?;
        tracing::info!(projection = projector.name(), applied, "projection rebuilt");
    }
    Ok(())
}
