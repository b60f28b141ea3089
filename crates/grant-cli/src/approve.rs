//! `grant approve` and `grant reject`: a person approves or rejects a
//! pending grant out of band, from the command line, on the ledger's
//! store.
//!
//! No policy is given: approving decides nothing. The store is opened with
//! an administrative ledger handle ([`grant_ledger::Ledger::administer`]),
//! whose events carry the policy hash the store last recorded. The actor of
//! the events is the approver's name: there is no token here to name one.

use std::io::Write;

use grant_ledger::{Approve, Grant, GrantState, Ledger, LedgerError};
use grant_syntax::chars::printable;

use crate::Exit;
use crate::output::{Format, write_failed};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when it was recorded, 1 when the ledger refused it (the grant \
is not pending, the group is not one it needs or has already approved, the approver is the \
grant's agent or in its chain), 2 on bad arguments, an unknown grant, or a store that cannot \
be read or written."
)]
pub struct ApprovalArgs {
    /// The ledger's store: `sqlite:PATH` or `postgres://...`.
    #[arg(long, value_name = "URL")]
    store: String,
    /// The pending grant.
    #[arg(value_name = "GRANT_ID")]
    grant_id: String,
    /// The approval group acted for: one the grant's rule names in
    /// `approval`.
    #[arg(long, value_name = "G")]
    group: String,
    /// Who approves (or rejects): recorded as the approver and as the
    /// events' actor.
    #[arg(long, value_name = "NAME")]
    approver: String,
    /// Why, recorded in the event.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// `human`: one line; `json`: the grant as it now is.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Which of the two commands runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

pub fn run(
    args: &ApprovalArgs,
    verdict: Verdict,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Exit {
    let (exit, message) = match record(args, verdict) {
        Ok(grant) => match answer(args, verdict, &grant, stdout) {
            Ok(()) => return Exit::Ok,
            Err(error) => return write_failed(&error, stderr),
        },
        Err(failure) => failure,
    };
    let _ = writeln!(stderr, "error: {message}");
    exit
}

/// Records the approval or rejection; on failure, the exit and the message.
fn record(args: &ApprovalArgs, verdict: Verdict) -> Result<Grant, (Exit, String)> {
    let store = crate::audit::open_existing(&args.store).map_err(|m| (Exit::Usage, m))?;
    let described = store.describe();
    let ledger = Ledger::administer(store).map_err(|e| failure(&e, args, &described))?;
    let approve = Approve {
        grant_id: args.grant_id.clone(),
        approver: args.approver.clone(),
        group: args.group.clone(),
        reason: args.reason.clone(),
    };
    // The approver acts for themselves: they are the actor.
    let recorded = match verdict {
        Verdict::Approve => ledger.approve(&args.approver, approve),
        Verdict::Reject => ledger.reject(&args.approver, approve),
    };
    recorded.map_err(|e| failure(&e, args, &described))
}

/// A ledger error as an exit and a message: a refusal of the ledger's rules
/// is 1, everything else (an unknown grant, bad input, the store) is 2.
fn failure(error: &LedgerError, args: &ApprovalArgs, store: &str) -> (Exit, String) {
    match error {
        LedgerError::NotFound { .. } => (
            Exit::Usage,
            format!(
                "no grant `{}` in `{}`",
                printable(&args.grant_id),
                printable(store)
            ),
        ),
        LedgerError::Conflict(_) | LedgerError::Forbidden(_) => {
            (Exit::REFUSED, printable(&error.to_string()).into_owned())
        }
        _ => (Exit::Usage, printable(&error.to_string()).into_owned()),
    }
}

fn answer(
    args: &ApprovalArgs,
    verdict: Verdict,
    grant: &Grant,
    stdout: &mut dyn Write,
) -> std::io::Result<()> {
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(grant).map_err(std::io::Error::other)?;
            writeln!(stdout, "{text}")
        }
        Format::Human => writeln!(stdout, "{}", summary(args, verdict, grant)),
    }
}

/// `approved grant_... (group ops, by alice): active until ...`.
fn summary(args: &ApprovalArgs, verdict: Verdict, grant: &Grant) -> String {
    let done = match verdict {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    };
    let state = match grant.state {
        GrantState::Pending => {
            let missing: Vec<&str> = grant.approvals.missing().collect();
            format!("still pending: needs {}", missing.join(", "))
        }
        GrantState::Active => {
            let mut line = format!("active until {}", grant.expires_at);
            if let Some(uses) = grant.uses_left {
                line.push_str(&format!(
                    ", {}",
                    crate::output::count(
                        usize::try_from(uses).unwrap_or(usize::MAX),
                        "use",
                        "uses"
                    )
                ));
            }
            line
        }
        // Approved, but it could not start (its task or parent grant ended
        // meanwhile): the ledger revoked it, and its event says why.
        GrantState::Revoked if verdict == Verdict::Approve => format!(
            "revoked: it cannot start (`grant audit show --task {}` says why)",
            grant.task_id
        ),
        GrantState::Revoked => "revoked".to_string(),
        GrantState::Exhausted => "exhausted".to_string(),
        GrantState::Expired => "expired".to_string(),
    };
    printable(&format!(
        "{done} {} (group {}, by {}): {state}",
        grant.grant_id, args.group, args.approver
    ))
    .into_owned()
}
