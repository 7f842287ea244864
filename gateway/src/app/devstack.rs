//! The embedded development stack: with no `DATABASE_URL` / `NATS_URL`, use PostgreSQL and NATS
//! on their default local ports when they answer, and otherwise start private instances from the
//! installed binaries under the data directory, on free ports, stopped again on exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The one-line hint printed when binaries are missing.
pub const INSTALL_HINT: &str =
    "PostgreSQL and NATS are not reachable and their binaries are not installed: install the Debian packages `postgresql` and `nats-server` (apt-get install postgresql nats-server), or set DATABASE_URL and NATS_URL";

/// Where to look for already-running services.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Default `127.0.0.1:5432`.
    pub postgres: SocketAddr,
    /// Default `127.0.0.1:4222`.
    pub nats: SocketAddr,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            postgres: SocketAddr::from(([127, 0, 0, 1], 5432)),
            nats: SocketAddr::from(([127, 0, 0, 1], 4222)),
        }
    }
}

impl Probe {
    /// The defaults, overridden by `OMNISTREAM_DEV_POSTGRES_ADDR` / `OMNISTREAM_DEV_NATS_ADDR`
    /// (host:port), which tests use to exercise the fallback.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut probe = Self::default();
        if let Ok(raw) = std::env::var("OMNISTREAM_DEV_POSTGRES_ADDR") {
            probe.postgres = raw
                .parse()
                .context("OMNISTREAM_DEV_POSTGRES_ADDR must be host:port")?;
        }
        if let Ok(raw) = std::env::var("OMNISTREAM_DEV_NATS_ADDR") {
            probe.nats = raw
                .parse()
                .context("OMNISTREAM_DEV_NATS_ADDR must be host:port")?;
        }
        Ok(probe)
    }
}

/// The services in use, and the ones this process started (stopped by [`DevStack::stop`], or
/// killed when dropped).
#[derive(Debug)]
pub struct DevStack {
    /// Connection URL of PostgreSQL (database `omnistream`).
    pub database_url: String,
    /// Connection URL of NATS.
    pub nats_url: String,
    /// Whether PostgreSQL was started here.
    pub started_postgres: bool,
    /// Whether NATS was started here.
    pub started_nats: bool,
    children: Vec<Child>,
    adopted: Vec<u32>,
    /// The private PostgreSQL this stack started: binaries, directory, port and process.
    private_postgres: Option<PrivatePostgres>,
}

#[derive(Debug)]
struct PrivatePostgres {
    initdb: PathBuf,
    postgres: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

const DATABASE: &str = "omnistream";

impl DevStack {
    /// Finds or starts PostgreSQL and NATS. `data_dir` holds the private instances' files.
    pub async fn ensure(data_dir: &Path, probe: Probe) -> anyhow::Result<Self> {
        let data_dir = absolute(data_dir)?;
        let mut stack = DevStack {
            database_url: String::new(),
            nats_url: String::new(),
            started_postgres: false,
            started_nats: false,
            children: Vec::new(),
            adopted: Vec::new(),
            private_postgres: None,
        };
        let postgres_binaries = find_postgres_binaries();
        let nats_binary = find_binary("nats-server", &["/usr/sbin", "/usr/bin", "/usr/local/bin"]);
        let postgres_up = answers(probe.postgres).await;
        let nats_up = answers(probe.nats).await;
        if (!postgres_up && postgres_binaries.is_none()) || (!nats_up && nats_binary.is_none()) {
            bail!(INSTALL_HINT);
        }

        let postmaster_pid = data_dir.join("postgres/postmaster.pid");
        let leftover_postgres = leftover(&postmaster_pid, 4, &postmaster_pid).await;
        // The system's server on the default port keeps its own setup; a private one admits
        // only the generated password (scram-sha-256), kept 0600 in the data directory.
        let mut password = "postgres".to_owned();
        let postgres_port = if postgres_up {
            tracing::info!(address = %probe.postgres, "using the PostgreSQL already running");
            probe.postgres.port()
        } else if let Some((port, pid)) = leftover_postgres {
            if let Ok(kept) = std::fs::read_to_string(data_dir.join(POSTGRES_PASSWORD_FILE)) {
                password = kept.trim().to_owned();
            }
            tracing::info!(
                port,
                "adopting the private PostgreSQL left running by an earlier start"
            );
            stack.adopted.push(pid);
            stack.started_postgres = true;
            port
        } else {
            let (initdb, postgres) = postgres_binaries.context(INSTALL_HINT)?;
            let port = free_port()?;
            password = private_secret(&data_dir.join(POSTGRES_PASSWORD_FILE))?;
            let child = start_postgres(
                &initdb,
                &postgres,
                &data_dir.join("postgres"),
                port,
                &password,
            )
            .await?;
            stack.private_postgres = Some(PrivatePostgres {
                initdb,
                postgres,
                dir: data_dir.join("postgres"),
                port,
                child: Some(child),
            });
            stack.started_postgres = true;
            tracing::info!(
                port,
                "started a private PostgreSQL under the data directory"
            );
            port
        };
        stack.database_url = ensure_database(postgres_port, &password).await?;

        let nats_port_file = data_dir.join("nats.port");
        let nats_pid_file = data_dir.join("nats.pid");
        stack.nats_url = if nats_up {
            tracing::info!(address = %probe.nats, "using the NATS server already running");
            format!("nats://{}", probe.nats)
        } else if let Some((port, pid)) = leftover(&nats_port_file, 1, &nats_pid_file).await {
            tracing::info!(
                port,
                "adopting the private NATS server left running by an earlier start"
            );
            stack.adopted.push(pid);
            stack.started_nats = true;
            nats_url(port, nats_password(&data_dir).ok().as_deref())
        } else {
            let binary = nats_binary.context(INSTALL_HINT)?;
            let port = free_port()?;
            let store = data_dir.join("nats");
            std::fs::create_dir_all(&store)?;
            let password = private_secret(&data_dir.join("nats.password"))?;
            // The credentials go in a private config file, not on the command line (which
            // every local user can read in the process list).
            let config = data_dir.join(NATS_CONFIG_FILE);
            crate::app::startup::write_private(
                &config,
                &format!(
                    "authorization {{\n  user: \"{NATS_USER}\"\n  password: \"{password}\"\n}}\n"
                ),
            )?;
            let child = Command::new(binary)
                .arg("-c")
                .arg(&config)
                .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                .arg(&store)
                .arg("-P")
                .arg(&nats_pid_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting nats-server")?;
            stack.children.push(child);
            wait_until_answers(
                SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(20),
            )
            .await?;
            std::fs::write(&nats_port_file, port.to_string())?;
            stack.started_nats = true;
            tracing::info!(
                port,
                "started a private NATS server under the data directory"
            );
            nats_url(port, Some(&password))
        };
        Ok(stack)
    }

    /// Stops the private PostgreSQL (fast shutdown), keeping its data: fault tests restart it.
    pub async fn stop_postgres(&mut self) {
        if let Some(child) = self.private_postgres.as_mut().and_then(|p| p.child.take()) {
            stop_child(child).await;
        }
    }

    /// Starts the private PostgreSQL again, on the same port and data.
    pub async fn start_postgres(&mut self) -> anyhow::Result<()> {
        let private = self
            .private_postgres
            .as_mut()
            .context("this stack did not start PostgreSQL")?;
        if private.child.is_none() {
            private.child = Some(
                start_postgres(
                    &private.initdb,
                    &private.postgres,
                    &private.dir,
                    private.port,
                    "",
                )
                .await?,
            );
        }
        Ok(())
    }

    /// Stops the services this process started (PostgreSQL with a fast shutdown).
    pub async fn stop(mut self) {
        self.stop_postgres().await;
        for pid in &self.adopted {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            while process_alive(*pid) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        for child in self.children.drain(..) {
            stop_child(child).await;
        }
    }
}

/// The private NATS server's password, as its start generated it.
fn nats_password(data_dir: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(data_dir.join("nats.password"))?
        .trim()
        .to_owned())
}

/// The URL of the private NATS server, with its credentials when it has them (the platform
/// reads them from the URL: see `app::connect_nats`).
fn nats_url(port: u16, password: Option<&str>) -> String {
    match password {
        Some(password) => format!("nats://{NATS_USER}:{password}@127.0.0.1:{port}"),
        None => format!("nats://127.0.0.1:{port}"),
    }
}

/// A private server that outlived a crashed `omnistream` (its port and pid), when it still
/// answers: it is adopted instead of clashing with its lock, and stopped on exit like our own.
async fn leftover(port_file: &Path, port_line: usize, pid_file: &Path) -> Option<(u16, u32)> {
    let line = |file: &Path, n: usize| -> Option<String> {
        std::fs::read_to_string(file)
            .ok()?
            .lines()
            .nth(n)
            .map(|l| l.trim().to_owned())
    };
    let port: u16 = line(port_file, port_line - 1)?.parse().ok()?;
    let pid: u32 = line(pid_file, 0)?.parse().ok()?;
    answers(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .then_some((port, pid))
}

/// Whether `pid` is a live process (not gone, not a zombie awaiting its reaper).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_owned())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// SIGINT (PostgreSQL's fast shutdown, NATS's clean exit), then SIGKILL after 15 s.
async fn stop_child(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// `path`, created private to this user (0700), as an absolute path.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    Ok(std::fs::canonicalize(path)?)
}

/// The secret kept in `path` (0600), generated on first use.
fn private_secret(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        if existing.trim().len() >= 32 {
            return Ok(existing.trim().to_owned());
        }
    }
    let generated = crate::app::startup::random_secret();
    crate::app::startup::write_private(path, &generated)?;
    Ok(generated)
}

/// The password of the private PostgreSQL's `postgres` role (`<data_dir>/postgres.password`).
const POSTGRES_PASSWORD_FILE: &str = "postgres.password";
/// The private NATS server's configuration, with its generated credentials.
const NATS_CONFIG_FILE: &str = "nats.conf";
/// The user the private NATS server admits.
const NATS_USER: &str = "omnistream";

async fn answers(address: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(address)).await,
        Ok(Ok(_))
    )
}

async fn wait_until_answers(address: SocketAddr, patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    while tokio::time::Instant::now() < deadline {
        if answers(address).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{address} did not start answering within {patience:?}")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn find_binary(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `initdb` and `postgres`, from `PATH` or the newest `/usr/lib/postgresql/*/bin`.
fn find_postgres_binaries() -> Option<(PathBuf, PathBuf)> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.reverse();
    let dirs: Vec<&str> = versions.iter().filter_map(|d| d.to_str()).collect();
    Some((
        find_binary("initdb", &dirs)?,
        find_binary("postgres", &dirs)?,
    ))
}

/// PostgreSQL refuses to run as root: when we are root, the server runs as this user.
#[derive(Debug, Clone, Copy)]
struct Unprivileged {
    uid: u32,
    gid: u32,
}

fn unprivileged_user() -> anyhow::Result<Option<Unprivileged>> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok());
    if euid != Some(0) {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for name in ["postgres", "nobody"] {
        if let Some(line) = passwd.lines().find(|l| l.split(':').next() == Some(name)) {
            let fields: Vec<&str> = line.split(':').collect();
            if let (Some(Ok(uid)), Some(Ok(gid))) = (
                fields.get(2).map(|v| v.parse()),
                fields.get(3).map(|v| v.parse()),
            ) {
                return Ok(Some(Unprivileged { uid, gid }));
            }
        }
    }
    bail!("running as root and no unprivileged user (postgres or nobody) exists to run PostgreSQL")
}

fn chown_tree(path: &Path, user: Unprivileged) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), user)?;
        }
    }
    Ok(())
}

fn as_user(command: &mut Command, user: Option<Unprivileged>) {
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
}

async fn start_postgres(
    initdb: &Path,
    postgres: &Path,
    dir: &Path,
    port: u16,
    password: &str,
) -> anyhow::Result<Child> {
    use std::os::unix::fs::PermissionsExt;
    let user = unprivileged_user()?;
    std::fs::create_dir_all(dir)?;
    if let Some(user) = user {
        // The server user must be able to reach its directory.
        let mut ancestor = dir.parent();
        while let Some(parent) = ancestor {
            let mode = std::fs::metadata(parent)?.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o711))?;
            }
            ancestor = parent.parent();
        }
        chown_tree(dir, user)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    if !dir.join("PG_VERSION").exists() {
        // initdb reads the password from a file the server user can read, removed right after.
        let pwfile = dir.with_extension("initdb-password");
        crate::app::startup::write_private(&pwfile, password)?;
        if let Some(user) = user {
            std::os::unix::fs::chown(&pwfile, Some(user.uid), Some(user.gid))?;
        }
        let mut command = Command::new(initdb);
        command
            .arg("-D")
            .arg(dir)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_user(&mut command, user);
        let output = command.output().await.context("running initdb");
        let _ = std::fs::remove_file(&pwfile);
        let output = output?;
        if !output.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    let mut command = Command::new(postgres);
    command
        .arg("-D")
        .arg(dir)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    as_user(&mut command, user);
    let child = command.spawn().context("starting postgres")?;
    wait_until_answers(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(30),
    )
    .await?;
    Ok(child)
}

/// Makes sure the `omnistream` database exists; returns its URL.
async fn ensure_database(port: u16, password: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let admin_url = format!("postgres://postgres:{password}@127.0.0.1:{port}/postgres");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut admin = loop {
        match sqlx::PgConnection::connect(&admin_url).await {
            Ok(conn) => break conn,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "PostgreSQL not ready yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error).context(
                "connecting to PostgreSQL as postgres (set DATABASE_URL if it needs a password)",
            ),
        }
    };
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut admin)
            .await?;
    }
    Ok(format!(
        "postgres://postgres:{password}@127.0.0.1:{port}/{DATABASE}"
    ))
}
