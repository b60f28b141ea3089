//! The `grant` command line: argument parsing, the commands, exit codes.
//!
//! [`run`] takes the arguments and the two output streams, so tests drive the
//! real command without a process.

mod approve;
mod audit;
mod bundle;
mod check;
mod eval;
mod fmt;
mod inspect;
mod keygen;
mod mcp;
mod output;
mod policy;
pub mod report;
mod serve;
mod test;
mod token;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

pub use output::{ColorChoice, Format};

/// What a run of `grant` ends with; the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything checked out.
    Ok = 0,
    /// The policy has errors (or warnings, with `--deny-warnings`); for
    /// `grant audit verify`, the audit chain is broken ([`Exit::BROKEN`]);
    /// for `grant approve` and `grant reject`, the ledger refused
    /// ([`Exit::REFUSED`]).
    PolicyErrors = 1,
    /// Bad arguments, or a file that could not be read.
    Usage = 2,
    /// `grant eval --fail-on-deny`: every request was decided, and at least
    /// one was denied.
    Denied = 3,
    /// `grant test`: a case failed, or rule coverage is below
    /// `--coverage-min`.
    TestFailed = 4,
}

impl Exit {
    /// `grant audit verify`: the chain (or a checkpoint) does not check
    /// out. Status 1, as for a policy with errors: what was checked is bad.
    pub const BROKEN: Exit = Exit::PolicyErrors;

    /// `grant approve` and `grant reject`: the ledger refused (the grant is
    /// not pending, the group is not needed or has approved already, the
    /// approver is the agent or in its chain). Status 1: what was asked is
    /// not allowed.
    pub const REFUSED: Exit = Exit::PolicyErrors;
}

#[derive(Debug, Parser)]
#[command(
    name = "grant",
    version,
    about = "Grant: a policy language for just-in-time access of AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policies: syntax, names, types, ttls and lints.
    Check(check::CheckArgs),
    /// Decide requests against a policy: decision JSON, or an explanation.
    Eval(eval::EvalArgs),
    /// Show what a policy compiles to.
    Inspect(inspect::InspectArgs),
    /// Rewrite policy files in the canonical layout.
    Fmt(fmt::FmtArgs),
    /// Run policy tests: cases that pin decisions, and rule coverage.
    Test(test::TestArgs),
    /// Make an ed25519 key pair for signed checkpoints of the audit chain.
    Keygen(keygen::KeygenArgs),
    /// Verify, show and export the ledger's audit chain.
    Audit(audit::AuditArgs),
    /// Approve a pending grant for one approval group, on the ledger's
    /// store (no policy needed).
    Approve(approve::ApprovalArgs),
    /// Reject a pending grant for one approval group: it is revoked.
    Reject(approve::ApprovalArgs),
    /// Run the decision and lifecycle service (native API, AuthZEN,
    /// health, metrics).
    Serve(serve::ServeArgs),
    /// Make bearer tokens for `grant serve`.
    Token(token::TokenArgs),
    /// Build and verify signed policy bundles for `grant serve --bundle`.
    Bundle(bundle::BundleArgs),
    /// Stand in front of an MCP server and decide every tool call (the
    /// session is a task of the ledger).
    Mcp(mcp::McpArgs),
}

/// Runs `grant` with `args` (the first is the program name).
pub fn run<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let is_info = matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let rendered = error.render().to_string();
            if is_info {
                let _ = write!(stdout, "{rendered}");
                return Exit::Ok;
            }
            let _ = write!(stderr, "{rendered}");
            return Exit::Usage;
        }
    };
    match cli.command {
        Command::Check(args) => check::run(&args, stdout, stderr),
        Command::Eval(args) => eval::run(&args, stdout, stderr),
        Command::Inspect(args) => inspect::run(&args, stdout, stderr),
        Command::Fmt(args) => fmt::run(&args, stdout, stderr),
        Command::Test(args) => test::run(&args, stdout, stderr),
        Command::Keygen(args) => keygen::run(&args, stdout, stderr),
        Command::Audit(args) => audit::run(&args, stdout, stderr),
        Command::Approve(args) => approve::run(&args, approve::Verdict::Approve, stdout, stderr),
        Command::Reject(args) => approve::run(&args, approve::Verdict::Reject, stdout, stderr),
        Command::Serve(args) => serve::run(&args, stdout, stderr),
        Command::Token(args) => token::run(&args, stdout, stderr),
        Command::Bundle(args) => bundle::run(&args, stdout, stderr),
        Command::Mcp(args) => mcp::run(&args, stdout, stderr),
    }
}
