//! `grant serve`: runs Grant's decision and lifecycle service (the
//! grant-server crate) until SIGTERM or SIGINT; SIGHUP reloads the policy.

use std::io::Write;
use std::path::PathBuf;

use grant_server::{ServeConfig, Server, Settings};

use crate::Exit;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The first line on stdout is `listening on http://ADDR` (the real \
port, so `--listen 127.0.0.1:0` works), the second the policy hash served. SIGHUP and \
`POST /v1/policy/reload` reload the policy; SIGTERM drains requests, flushes the decision \
log and exits 0. Exit status 2 when the service cannot start. docs/server.md is the guide."
)]
pub struct ServeArgs {
    /// The policy to serve: a file, or a directory of `.grant` files
    /// (watched for changes).
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// A signed policy bundle to serve instead of --policy.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The public key (PEM) bundles must be signed with.
    #[arg(long, value_name = "PUBKEY")]
    bundle_key: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1:8181]. Other than
    /// loopback needs --tokens, and TLS or --insecure-http.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The ledger's store: `sqlite:PATH`, `postgres://...` or `memory`
    /// [default: sqlite:grant-ledger.db].
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Bearer tokens (TOML `[[token]]` entries; `grant token new` makes
    /// them). Without, every request is anonymous, on loopback only.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// The TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (behind a proxy that
    /// terminates TLS).
    #[arg(long)]
    insecure_http: bool,
    /// Append one NDJSON line per decision to FILE (`-`: stdout).
    #[arg(long, value_name = "FILE|-")]
    decision_log: Option<String>,
    /// Deny everything once the policy is this old without a successful
    /// load (`24h`; bundles default to 24h).
    #[arg(long, value_name = "DURATION")]
    max_staleness: Option<String>,
    /// The service's public base URL, for the AuthZEN metadata.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Where the last-known-good bundle and the degraded spool are kept
    /// [default: the SQLite file's folder, else the working directory].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Settings as TOML (the same names as the flags, and [limits],
    /// [ledger], [redact]); flags win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ServeArgs {
    fn flags(&self) -> ServeConfig {
        ServeConfig {
            listen: self.listen.clone(),
            policy: self.policy.clone(),
            bundle: self.bundle.clone(),
            bundle_key: self.bundle_key.clone(),
            store: self.store.clone(),
            tokens: self.tokens.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            insecure_http: self.insecure_http.then_some(true),
            decision_log: self.decision_log.clone(),
            max_staleness: self.max_staleness.clone(),
            public_url: self.public_url.clone(),
            state_dir: self.state_dir.clone(),
            ..ServeConfig::default()
        }
    }

    fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => ServeConfig::load(path)?,
            None => ServeConfig::default(),
        };
        let settings = file.overridden_by(self.flags()).resolve()?;
        settings.check_exposure()?;
        Ok(settings)
    }
}

pub fn run(args: &ServeArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return Exit::Usage;
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("grant-serve")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(stderr, "error: cannot start the runtime: {e}");
            return Exit::Usage;
        }
    };
    match runtime.block_on(serve(settings, stdout, stderr)) {
        Ok(()) => Exit::Ok,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            Exit::Usage
        }
    }
}

async fn serve(
    settings: Settings,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), String> {
    let listen = settings.listen;
    let tls = settings.tls.clone();
    let authenticated = settings.tokens.is_some();
    // Opening a store and compiling a policy block: off the runtime.
    let server = tokio::task::spawn_blocking(move || Server::new(settings))
        .await
        .map_err(|e| format!("start-up failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the address listened on: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let hash = server.ledger().engine().policy_hash().to_string();
    // The first line is the contract scripts and tests read.
    let _ = writeln!(stdout, "listening on {scheme}://{address}");
    let _ = writeln!(stdout, "policy {hash}");
    let _ = stdout.flush();
    if !authenticated {
        let _ = writeln!(
            stderr,
            "warning: no --tokens: requests are NOT authenticated (anyone who can reach {address} can issue grants); /health reports \"auth\": \"none\""
        );
    }
    let _ = stderr.flush();
    spawn_reload_on_hangup(server.clone());
    let shutdown = async {
        terminated().await;
        tracing::info!("shutting down: draining requests, flushing logs");
    };
    match tls {
        Some(tls) => server.serve_tls(listener, &tls, shutdown).await,
        None => {
            listener
                .set_nonblocking(true)
                .map_err(|e| format!("cannot use the listening socket: {e}"))?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| format!("cannot use the listening socket: {e}"))?;
            server.serve(listener, shutdown).await
        }
    }
    .map_err(|e| format!("serving failed: {e}"))
}

/// SIGTERM or SIGINT.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            // Without signal handlers the process still stops on signals,
            // by their default action.
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn spawn_reload_on_hangup(server: Server) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /v1/policy/reload");
            return;
        };
        while hangups.recv().await.is_some() {
            let _ = server.reload("sighup").await;
        }
    });
}

pub(crate) fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GRANT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests running the command twice in one process) is
    // refused harmlessly.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
