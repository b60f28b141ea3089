//! `grant token new --name N --roles R,...`: a bearer token for `grant
//! serve`. The secret is printed once, to stdout; the tokens file keeps
//! only its SHA-256.

use std::io::Write;

use grant_server::{Role, TokenEntry};

use crate::Exit;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Make a token: prints the secret (give it to the caller) and the
    /// `[[token]]` entry to append to the tokens file.
    New(NewArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Roles: decide, issue, use, approve, revoke, read, admin. \
Example: grant token new --name issuer --roles issue,use --agents 'agent-*' >> tokens.toml \
prints the secret as a comment line."
)]
struct NewArgs {
    /// The token's name: events record it as the actor.
    #[arg(long)]
    name: String,
    /// Its roles, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    roles: Vec<String>,
    /// Agent patterns it may act for (with issue and use), comma-separated.
    #[arg(long, value_delimiter = ',')]
    agents: Vec<String>,
    /// Approval groups it may approve for, comma-separated.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
}

pub fn run(args: &TokenArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let TokenCommand::New(args) = &args.command;
    let mut roles = Vec::new();
    for name in &args.roles {
        match Role::ALL.iter().find(|role| role.name() == name.trim()) {
            Some(role) => roles.push(*role),
            None => {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                let _ = writeln!(
                    stderr,
                    "error: unknown role `{name}`; the roles are {}",
                    known.join(", ")
                );
                return Exit::Usage;
            }
        }
    }
    let (secret, mut entry) = match grant_server::auth::new_token(&args.name, roles) {
        Ok(made) => made,
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            return Exit::Usage;
        }
    };
    if !args.agents.is_empty() {
        entry.agents = Some(args.agents.clone());
    }
    if !args.groups.is_empty() {
        entry.groups = Some(args.groups.clone());
    }
    // Check the entry as the service will read it, before anyone relies on it.
    if let Err(e) = grant_server::Auth::from_entries(vec![entry.clone()]) {
        let _ = writeln!(stderr, "error: {e}");
        return Exit::Usage;
    }
    match render(&secret, &entry) {
        Ok(text) => {
            let _ = write!(stdout, "{text}");
            Exit::Ok
        }
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            Exit::Usage
        }
    }
}

fn render(secret: &str, entry: &TokenEntry) -> Result<String, String> {
    #[derive(serde::Serialize)]
    struct File<'a> {
        token: [&'a TokenEntry; 1],
    }
    let toml = toml::to_string(&File { token: [entry] }).map_err(|e| e.to_string())?;
    Ok(format!(
        "# secret (shown once; the file keeps only its SHA-256): {secret}\n{toml}"
    ))
}
