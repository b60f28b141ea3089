//! `grant audit`: the ledger's audit chain from the command line.
//!
//! - `verify` recomputes the chain (and checks signed checkpoints) and
//!   names the first broken `seq`;
//! - `show` renders the timeline of a task and its sub-tasks;
//! - `export` writes the chain as NDJSON, one stored event a line.
//!
//! They only read: a store URL that names no existing ledger is an error,
//! never a new empty ledger.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use grant_ledger::store::{self, Store};
use grant_ledger::{LedgerError, audit, chain, checkpoint};
use grant_syntax::chars::printable;
use serde_json::json;

use crate::Exit;
use crate::output::{Format, count, write_failed};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the chain and name the first broken event.
    Verify(VerifyArgs),
    /// Show the timeline of a task and its sub-tasks.
    Show(ShowArgs),
    /// Write the chain as NDJSON: each event's canonical JSON, one a line.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the chain (and every checkpoint) checks out, 1 when \
it is broken (the first broken seq is named), 2 on bad arguments, or a store, checkpoint file or \
key that cannot be read."
)]
struct VerifyArgs {
    /// The ledger's store: `sqlite:PATH` or `postgres://...`.
    #[arg(long, value_name = "URL")]
    store: String,
    /// Signed checkpoints (NDJSON, as the ledger appends them): each must
    /// be validly signed and match the chain, which detects a rewritten or
    /// truncated chain.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The public key (SPKI PEM, from `grant keygen`) the checkpoints must
    /// be signed with. Without it, each checkpoint is checked against the
    /// key it names itself, which whoever rewrote the store could have
    /// made.
    #[arg(long, value_name = "PUBFILE", requires = "checkpoint")]
    key: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the timeline was shown, 2 on bad arguments, an \
unknown task, or a store that cannot be read."
)]
struct ShowArgs {
    /// The ledger's store: `sqlite:PATH` or `postgres://...`.
    #[arg(long, value_name = "URL")]
    store: String,
    /// The task: its events and those of its sub-tasks, transitively.
    #[arg(long, value_name = "ID")]
    task: String,
    /// `human`: a block per task, one line per event; `json`: the events,
    /// as stored, in one array.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every event was written, 2 on bad arguments or a \
store that cannot be read."
)]
struct ExportArgs {
    /// The ledger's store: `sqlite:PATH` or `postgres://...`.
    #[arg(long, value_name = "URL")]
    store: String,
    /// Only the events after this seq (to resume an earlier export).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    after: u64,
}

pub fn run(args: &AuditArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let result = match &args.command {
        AuditCommand::Verify(args) => verify(args, stdout),
        AuditCommand::Show(args) => show(args, stdout),
        AuditCommand::Export(args) => export(args, stdout),
    };
    match result {
        Ok(exit) => exit,
        Err(Failure::Usage(message)) => {
            let _ = writeln!(stderr, "error: {message}");
            Exit::Usage
        }
        Err(Failure::Write(error)) => write_failed(&error, stderr),
    }
}

/// Why a command stopped early.
enum Failure {
    /// Bad arguments, or something that could not be read: exit 2.
    Usage(String),
    /// Output could not be written.
    Write(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        Failure::Write(error)
    }
}

/// Opens an existing ledger. `sqlite:` would create a missing file, and
/// `memory` is always empty: neither must verify as an intact chain.
fn open(url: &str) -> Result<Arc<dyn Store>, Failure> {
    open_existing(url).map_err(Failure::Usage)
}

/// Opens the ledger a store URL names, refusing one that does not exist
/// yet (a new file, a `memory` store): a command that reads or amends a
/// ledger must never start an empty one. The error is a message.
pub(crate) fn open_existing(url: &str) -> Result<Arc<dyn Store>, String> {
    if url == "memory" || url == "memory:" {
        // A new memory store is always empty: it would verify as intact.
        return Err(
            "the `memory` store lives inside one process and is empty here; \
             give `sqlite:PATH` or `postgres://...`"
                .to_string(),
        );
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    if let Some(path) = path.filter(|p| !p.is_empty())
        && !Path::new(path).is_file()
    {
        return Err(format!("no ledger at `{}`: no such file", printable(path)));
    }
    store::open(url).map_err(|e| printable(&e.message).into_owned())
}

/// A store error while reading, for a message.
fn unreadable(store: &dyn Store, error: &impl std::fmt::Display) -> Failure {
    Failure::Usage(format!(
        "cannot read the store `{}`: {}",
        printable(&store.describe()),
        printable(&error.to_string())
    ))
}

/// A ledger error while reading: the store's own message when it is one.
fn unreadable_ledger(store: &dyn Store, error: &LedgerError) -> Failure {
    match error {
        LedgerError::Store(error) => unreadable(store, error),
        error => unreadable(store, error),
    }
}

fn verify(args: &VerifyArgs, stdout: &mut dyn Write) -> Result<Exit, Failure> {
    let checkpoints = match &args.checkpoint {
        Some(path) => checkpoint::read_file(path).map_err(|e| Failure::Usage(e.to_string()))?,
        None => Vec::new(),
    };
    let key = match &args.key {
        Some(path) => {
            Some(checkpoint::load_public_key(path).map_err(|e| Failure::Usage(e.to_string()))?)
        }
        None => None,
    };
    let store = open(&args.store)?;
    let v = chain::verify(store.as_ref(), &checkpoints, key.as_ref())
        .map_err(|e| unreadable(store.as_ref(), &e))?;
    match args.format {
        Format::Json => {
            let document = json!({
                "intact": v.is_intact(),
                "events": v.events,
                "head": v.head.as_ref().map(|h| json!({"seq": h.seq, "hash": h.hash})),
                "checkpoints": v.checkpoints,
                "key_pinned": v.key_pinned,
                "checkpoint_keys": v.checkpoint_keys,
                "problem": v.problem.as_ref().map(|p| json!({"seq": p.seq, "what": p.what})),
            });
            let text = serde_json::to_string_pretty(&document)
                .map_err(|e| Failure::Usage(format!("cannot encode the result: {e}")))?;
            writeln!(stdout, "{text}")?;
        }
        Format::Human => writeln!(stdout, "{}", summary(&v))?,
    }
    Ok(if v.is_intact() {
        Exit::Ok
    } else {
        Exit::BROKEN
    })
}

/// One line: `N events, head seq S hash H` and the checkpoints, or where
/// and why the chain is broken.
fn summary(v: &chain::Verification) -> String {
    if let Some(problem) = &v.problem {
        return format!(
            "broken at seq {}: {} ({} intact before it)",
            problem.seq,
            printable(&problem.what),
            count(
                usize::try_from(v.events).unwrap_or(usize::MAX),
                "event",
                "events"
            )
        );
    }
    let events = count(
        usize::try_from(v.events).unwrap_or(usize::MAX),
        "event",
        "events",
    );
    let mut line = match &v.head {
        Some(head) => format!("{events}, head seq {} hash {}", head.seq, head.hash),
        None => format!("{events}, an empty chain"),
    };
    if v.checkpoints > 0 {
        let checkpoints = count(v.checkpoints, "checkpoint", "checkpoints");
        if v.key_pinned {
            line.push_str(&format!(", {checkpoints} signed by the pinned key"));
        } else {
            line.push_str(&format!(
                ", {checkpoints} signed by {} {} (not pinned: pass --key to pin it)",
                if v.checkpoint_keys.len() == 1 {
                    "key"
                } else {
                    "keys"
                },
                v.checkpoint_keys.join(", ")
            ));
        }
    }
    line
}

fn show(args: &ShowArgs, stdout: &mut dyn Write) -> Result<Exit, Failure> {
    let store = open(&args.store)?;
    let events = match audit::timeline(store.as_ref(), &args.task) {
        Ok(events) => events,
        Err(LedgerError::NotFound { .. }) => {
            return Err(Failure::Usage(format!(
                "no task `{}` in `{}`",
                printable(&args.task),
                printable(&store.describe())
            )));
        }
        Err(error) => return Err(unreadable_ledger(store.as_ref(), &error)),
    };
    match args.format {
        Format::Human => write!(stdout, "{}", audit::render_timeline(&events))?,
        Format::Json => {
            let text = serde_json::to_string_pretty(&events)
                .map_err(|e| Failure::Usage(format!("cannot encode the events: {e}")))?;
            writeln!(stdout, "{text}")?;
        }
    }
    Ok(Exit::Ok)
}

fn export(args: &ExportArgs, stdout: &mut dyn Write) -> Result<Exit, Failure> {
    let store = open(&args.store)?;
    let mut out = BufWriter::new(stdout);
    let mut after = args.after;
    // A page at a time: memory stays bounded however long the chain.
    loop {
        let page = audit::events_after(store.as_ref(), after, audit::MAX_EVENTS_PAGE)
            .map_err(|e| unreadable_ledger(store.as_ref(), &e))?;
        for event in &page {
            out.write_all(event.json.as_bytes())?;
            out.write_all(b"\n")?;
        }
        match page.last() {
            Some(last) if page.len() >= audit::MAX_EVENTS_PAGE => after = last.seq,
            _ => break,
        }
    }
    out.flush()?;
    Ok(Exit::Ok)
}
