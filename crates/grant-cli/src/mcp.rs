//! `grant mcp`: the Model Context Protocol gateway (the grant-mcp crate).
//! The host starts it in place of an MCP server; it starts the server as
//! its child and decides every tool call. stdout belongs to the MCP
//! client: everything the command says goes to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use grant_engine::Engine;
use grant_ledger::{Ledger, SystemClock};
use grant_mcp::http::{HttpGateway, HttpOptions};
use grant_mcp::stdio::{self, Ended, StdioOptions};
use grant_mcp::{AttrFlag, Gateway, McpConfig, Settings, Transport};

use crate::Exit;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Use it in place of the server's command in the host's configuration: \
`grant mcp --policy P --agent A --name fs -- npx -y @modelcontextprotocol/server-filesystem /srv`. \
Each `tools/call` of TOOL is decided as `NAME.TOOL` with the call's arguments as `args.*` \
attributes; the session is one task of the ledger, ended (its grants revoked) when the \
session ends. stderr names the task; `grant audit show --store URL --task ID` shows it. \
Streamable HTTP instead: `grant mcp --listen 127.0.0.1:8931 --upstream http://127.0.0.1:3001/mcp \
--policy P --agent A --name fs` serves MCP clients at http://127.0.0.1:8931/mcp, one task per MCP \
session; it authenticates no client, so listen on loopback (docs/mcp-http.md). \
docs/mcp.md is the guide."
)]
pub struct McpArgs {
    /// The policy that decides the calls: a file, or a directory of
    /// `.grant` files.
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// The agent the sessions act for (never one the client names).
    #[arg(long, value_name = "ID")]
    agent: Option<String>,
    /// The prefix of the tool names decided: the server's tool `read_file`
    /// is decided as `NAME.read_file`.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The ledger's store: `sqlite:PATH`, `postgres://...` or `memory`
    /// [default: sqlite:$XDG_DATA_HOME/grant/ledger.db].
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// A session attribute, typed by the policy's declaration (a set:
    /// comma-separated). Repeatable.
    #[arg(long = "attr", value_name = "PATH=VALUE")]
    attrs: Vec<String>,
    /// Leave out of `tools/list` the tools no allow rule can match.
    #[arg(long)]
    hide_denied: bool,
    /// Answer a call the server has not answered by then with an error
    /// [default: 60s].
    #[arg(long, value_name = "DURATION")]
    call_timeout: Option<String>,
    /// The largest message relayed either way [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    max_message_bytes: Option<usize>,
    /// Streamable HTTP: listen on ADDR for MCP clients (with --upstream).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Streamable HTTP: the MCP server's endpoint URL (with --listen).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Streamable HTTP: end a session (revoking its grants) after this
    /// long without a request [default: 30m].
    #[arg(long, value_name = "DURATION")]
    session_idle: Option<String>,
    /// Settings as TOML (the same names as the flags, `[attr]`, `[ledger]`,
    /// `[redact]`, and `command = [...]`); flags win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The MCP server to start, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl McpArgs {
    fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => McpConfig::load(path)?,
            None => McpConfig::default(),
        };
        let flags = McpConfig {
            policy: self.policy.clone(),
            agent: self.agent.clone(),
            name: self.name.clone(),
            store: self.store.clone(),
            hide_denied: self.hide_denied.then_some(true),
            call_timeout: self.call_timeout.clone(),
            max_message_bytes: self.max_message_bytes,
            command: (!self.command.is_empty()).then(|| self.command.clone()),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            session_idle: self.session_idle.clone(),
            ..McpConfig::default()
        };
        let attrs = self
            .attrs
            .iter()
            .map(|text| AttrFlag::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        file.overridden_by(flags).resolve(&attrs)
    }
}

pub fn run(args: &McpArgs, _stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return Exit::Usage;
        }
    };
    crate::serve::init_logging();
    // One stdio session needs one thread (ledger commits go to the
    // blocking pool); the HTTP gateway serves many sessions.
    let mut builder = match settings.transport {
        Transport::Stdio { .. } => tokio::runtime::Builder::new_current_thread(),
        Transport::Http { .. } => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().thread_name("grant-mcp").build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(stderr, "error: cannot start the runtime: {e}");
            return Exit::Usage;
        }
    };
    let exit = runtime.block_on(gateway(settings, stderr));
    // Reading stdin blocks a thread the runtime cannot interrupt: do not
    // wait for it (the client may still be connected when the server
    // exits).
    runtime.shutdown_background();
    exit
}

async fn gateway(settings: Settings, stderr: &mut dyn Write) -> Exit {
    let store_url = settings.store.clone();
    let started = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || open(&settings)).await
    };
    let gateway = match started {
        Ok(Ok(gateway)) => Arc::new(gateway),
        Ok(Err(message)) => {
            let _ = writeln!(stderr, "error: {message}");
            return Exit::Usage;
        }
        Err(e) => {
            let _ = writeln!(stderr, "error: start-up failed: {e}");
            return Exit::Usage;
        }
    };
    let command = match &settings.transport {
        Transport::Stdio { command } => command.clone(),
        Transport::Http { listen, upstream } => {
            return http(gateway, &settings, listen, upstream, stderr).await;
        }
    };
    let options = StdioOptions {
        command,
        call_timeout: settings.call_timeout,
        max_message_bytes: settings.max_message_bytes,
        hide_denied: settings.hide_denied,
        exit_grace: Duration::from_secs(2),
    };
    let outcome = match stdio::run(
        gateway,
        options,
        client_stdin(),
        client_stdout(),
        signalled(),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Usage;
        }
    };
    if let Some(task) = &outcome.task_id {
        let store = if store_url.starts_with("sqlite:") || store_url == "memory" {
            store_url.as_str()
        } else {
            "URL"
        };
        let _ = writeln!(
            stderr,
            "grant mcp: session ended ({}): task {task} ended, {} grant(s) revoked; grant audit show --store {store} --task {task}",
            outcome.ended,
            outcome.revoked.len()
        );
    }
    if let Some(error) = &outcome.end_error {
        let _ = writeln!(stderr, "error: {error}");
    }
    // 1 when the session did not end by the client or a signal: the
    // server went away under it, or its task could not be ended.
    if outcome.ended == Ended::ServerExited || outcome.end_error.is_some() {
        Exit::PolicyErrors
    } else {
        Exit::Ok
    }
}

/// The Streamable HTTP gateway: serves until a signal, then ends every
/// session's task.
async fn http(
    gateway: Arc<Gateway>,
    settings: &Settings,
    listen: &str,
    upstream: &str,
    stderr: &mut dyn Write,
) -> Exit {
    let options = HttpOptions {
        upstream: upstream.to_string(),
        call_timeout: settings.call_timeout,
        max_message_bytes: settings.max_message_bytes,
        hide_denied: settings.hide_denied,
        session_idle: settings.session_idle,
        shutdown_grace: Duration::from_secs(5),
    };
    let bound = match HttpGateway::bind(gateway, listen, options).await {
        Ok(bound) => bound,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Usage;
        }
    };
    let address = match bound.local_addr() {
        Ok(address) => address,
        Err(error) => {
            let _ = writeln!(
                stderr,
                "error: cannot read the address listened on: {error}"
            );
            return Exit::Usage;
        }
    };
    if !address.ip().is_loopback() {
        let _ = writeln!(
            stderr,
            "warning: listening on {address}, beyond loopback: the gateway authenticates no client, so anyone who reaches this address acts as agent `{}`",
            settings.agent
        );
    }
    let _ = writeln!(
        stderr,
        "grant mcp: serving MCP clients at http://{address}{}, relaying to {upstream}",
        grant_mcp::http::PATH
    );
    let _ = stderr.flush();
    let outcome = match bound.serve(signalled()).await {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::PolicyErrors;
        }
    };
    let mut failed = false;
    for ended in &outcome.ended {
        if let Some(task) = &ended.task_id {
            let _ = writeln!(
                stderr,
                "grant mcp: stopped ({}): task {task} ended, {} grant(s) revoked",
                outcome.why,
                ended.revoked.len()
            );
        }
        if let Some(error) = &ended.error {
            failed = true;
            let _ = writeln!(stderr, "error: {error}");
        }
    }
    if failed { Exit::PolicyErrors } else { Exit::Ok }
}

/// Loads the policy, checks the session attributes against it, opens the
/// store: everything that can fail before the server is started.
fn open(settings: &Settings) -> Result<Gateway, String> {
    let engine = Engine::from_path(&settings.policy).map_err(|e| e.report(false))?;
    let attrs = settings.session_attrs(&engine)?;
    let store = grant_ledger::store::open(&settings.store)
        .map_err(|e| format!("cannot open the store {}: {e}", settings.store))?;
    let ledger = Ledger::with(
        store,
        engine,
        Arc::new(SystemClock),
        settings.ledger.clone(),
    )
    .map_err(|e| format!("cannot open the ledger: {e}"))?;
    // Sessions of this agent and server whose gateway died: their tasks
    // end now, with the reason. A failure here must not stop a new session.
    if let Err(error) = grant_mcp::orphans::reap(&ledger, &settings.agent, &settings.name) {
        tracing::warn!("could not end orphaned sessions: {error}");
    }
    let mut labels = grant_mcp::orphans::process_labels();
    labels.insert("mcp.name".to_string(), settings.name.clone());
    let (transport, target) = match &settings.transport {
        Transport::Stdio { command } => ("stdio", command.join(" ")),
        Transport::Http { upstream, .. } => ("http", upstream.clone()),
    };
    labels.insert("mcp.transport".to_string(), transport.to_string());
    labels.insert(
        "mcp.server".to_string(),
        grant_mcp::gateway::clip(&target).to_string(),
    );
    Ok(Gateway::new(
        ledger,
        &settings.agent,
        &settings.name,
        attrs,
        labels,
    ))
}

/// SIGTERM, SIGINT or SIGHUP (the host closing the terminal), by name.
async fn signalled() -> String {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM".to_string(),
            _ = int.recv() => "SIGINT".to_string(),
            _ = hup.recv() => "SIGHUP".to_string(),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C".to_string()
    }
}

/// Our stdin: as a pipe on the runtime's own event loop when it is one (what
/// hosts give), else tokio's stdin, which reads on a blocking thread (a
/// hop per read and write, several times the cost of the relay itself).
fn client_stdin() -> Box<dyn tokio::io::AsyncRead + Unpin + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned()
            && let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        {
            return Box::new(pipe);
        }
    }
    Box::new(tokio::io::stdin())
}

/// Our stdout, as [`client_stdin`].
fn client_stdout() -> Box<dyn tokio::io::AsyncWrite + Unpin + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned()
            && let Ok(pipe) = tokio::net::unix::pipe::Sender::from_owned_fd(fd)
        {
            return Box::new(pipe);
        }
    }
    Box::new(tokio::io::stdout())
}
