//! A stand-in for `grant serve` with the same contract, so that
//! `.ci/schemathesis.sh` can check docs/openapi.yaml against the router
//! without the command-line tool:
//!
//! ```text
//! cargo run -p grant-server --example serve_for_schemathesis -- \
//!     serve --policy crates/grant-server/tests/policies/service.grant \
//!     --store memory --listen 127.0.0.1:0
//! ```
//!
//! Its first line on stdout is `listening on http://ADDR`; it serves until
//! it is sent SIGTERM or SIGINT. Only `--policy`, `--store`, `--listen`
//! and `--tokens` are read.

use std::path::PathBuf;
use std::process::ExitCode;

use grant_server::{PolicySource, Server, Settings};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("serve_for_schemathesis: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        args.next();
    }
    let (mut policy, mut store, mut listen, mut tokens) =
        (None, "memory".to_string(), "127.0.0.1:0".to_string(), None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--policy" => policy = Some(PathBuf::from(value()?)),
            "--store" => store = value()?,
            "--listen" => listen = value()?,
            "--tokens" => tokens = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let policy = policy.ok_or("--policy is required")?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut settings = Settings::new(PolicySource::Files(policy), &store, state.path());
    settings.tokens = tokens;
    let server = Server::new(settings).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on http://{address}");
        server
            .serve(listener, stopped())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Resolves at SIGTERM or SIGINT.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
