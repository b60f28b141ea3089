//! Bearer tokens: who calls, and what they may do. The tokens file holds
//! only SHA-256 digests of the secrets; a presented secret is hashed and
//! compared with every entry in constant time, so neither the secrets nor
//! the timing of a comparison tell anything about them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// What a token may do (the spec's roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Decisions: `/v1/decide*`, `/v1/explain`, AuthZEN.
    Decide,
    /// Tasks and grants: open, end, request, renew, bind credentials.
    Issue,
    /// Uses of grants.
    Use,
    /// Approvals and rejections of pending grants.
    Approve,
    /// Revocations.
    Revoke,
    /// Reads: tasks, grants, timelines, events.
    Read,
    /// Reload, unblock.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Decide,
        Role::Issue,
        Role::Use,
        Role::Approve,
        Role::Revoke,
        Role::Read,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Decide => "decide",
            Role::Issue => "issue",
            Role::Use => "use",
            Role::Approve => "approve",
            Role::Revoke => "revoke",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[[token]]` entry of the tokens file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    /// SHA-256 of the secret, 64 hex digits.
    pub sha256: String,
    pub roles: Vec<Role>,
    /// With `issue` and `use`: the agents this token may act for (glob
    /// patterns); absent, any agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    /// With `approve`: the approval groups it may approve for; absent, any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

/// Who made a request, as the service authenticated it.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Recorded as the events' `actor` (`anonymous` without tokens).
    pub name: String,
    roles: BTreeSet<Role>,
    agents: Option<GlobSet>,
    groups: Option<BTreeSet<String>>,
    /// Without tokens every caller may do everything, and the body's
    /// `approver` is taken as given.
    pub authenticated: bool,
}

impl Caller {
    fn anonymous() -> Caller {
        Caller {
            name: "anonymous".to_string(),
            roles: Role::ALL.into_iter().collect(),
            agents: None,
            groups: None,
            authenticated: false,
        }
    }

    /// Fails with 403 unless the token has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.roles.contains(&role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token `{}` does not have the `{role}` role",
                self.name
            )))
        }
    }

    /// Fails with 403 unless the token may act for `agent`.
    pub fn require_agent(&self, agent: &str) -> Result<(), ApiError> {
        match &self.agents {
            Some(patterns) if !patterns.is_match(agent) => Err(ApiError::forbidden(format!(
                "token `{}` may not act for agent `{agent}`",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// Fails with 403 unless the token may approve for `group`.
    pub fn require_group(&self, group: &str) -> Result<(), ApiError> {
        match &self.groups {
            Some(groups) if !groups.contains(group) => Err(ApiError::forbidden(format!(
                "token `{}` may not approve for group `{group}`",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

/// The tokens the service accepts; `None` entries means no authentication.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    tokens: Option<Vec<Token>>,
}

#[derive(Clone, Debug)]
struct Token {
    digest: [u8; 32],
    caller: Caller,
}

/// A tokens file that cannot be used; start-up fails with it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TokensError {
    pub path: String,
    pub message: String,
}

impl Auth {
    /// No tokens: every request is `anonymous` with every role.
    pub fn none() -> Auth {
        Auth { tokens: None }
    }

    /// Whether requests are authenticated.
    pub fn is_enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// Reads a tokens file (TOML, `[[token]]` entries).
    pub fn load(path: &Path) -> Result<Auth, TokensError> {
        let error = |message: String| TokensError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
        let file: TokensFile = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        Auth::from_entries(file.token).map_err(error)
    }

    /// Tokens from entries: names and digests unique, digests 64 hex
    /// digits, patterns valid.
    pub fn from_entries(entries: Vec<TokenEntry>) -> Result<Auth, String> {
        let mut names = BTreeSet::new();
        let mut digests = BTreeSet::new();
        let mut tokens = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.name.is_empty() || entry.name.chars().any(char::is_control) {
                return Err(format!(
                    "token name `{}` is empty or holds a control character",
                    entry.name.escape_debug()
                ));
            }
            if !names.insert(entry.name.clone()) {
                return Err(format!("two tokens are named `{}`", entry.name));
            }
            let digest = parse_digest(&entry.sha256).ok_or_else(|| {
                format!(
                    "token `{}`: `sha256` must be 64 hexadecimal digits (the SHA-256 of the secret)",
                    entry.name
                )
            })?;
            if !digests.insert(digest) {
                return Err(format!(
                    "token `{}` has the same secret as another",
                    entry.name
                ));
            }
            let agents = match &entry.agents {
                None => None,
                Some(patterns) => {
                    let mut set = GlobSetBuilder::new();
                    for pattern in patterns {
                        let glob = Glob::new(pattern).map_err(|e| {
                            format!("token `{}`: agent pattern `{pattern}`: {e}", entry.name)
                        })?;
                        set.add(glob);
                    }
                    Some(
                        set.build()
                            .map_err(|e| format!("token `{}`: {e}", entry.name))?,
                    )
                }
            };
            tokens.push(Token {
                digest,
                caller: Caller {
                    name: entry.name,
                    roles: entry.roles.into_iter().collect(),
                    agents,
                    groups: entry.groups.map(|g| g.into_iter().collect()),
                    authenticated: true,
                },
            });
        }
        Ok(Auth {
            tokens: Some(tokens),
        })
    }

    /// The caller of a request: 401 when tokens are configured and the
    /// request has none or an unknown one.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(tokens) = &self.tokens else {
            return Ok(Caller::anonymous());
        };
        let secret = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("missing bearer token (`Authorization: Bearer ...`)")
            })?;
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        // Every entry is compared, whatever matched, so the time taken does
        // not say which one did.
        let mut found = None;
        for token in tokens {
            if constant_time_eq(&token.digest, &presented) {
                found = Some(&token.caller);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unknown bearer token"))
    }
}

/// A new random secret and its tokens-file entry.
pub fn new_token(name: &str, roles: Vec<Role>) -> Result<(String, TokenEntry), String> {
    let mut bytes = [0u8; 32];
    getrandom_fill(&mut bytes)?;
    let mut secret = String::from("grant_");
    for byte in bytes {
        secret.push_str(&format!("{byte:02x}"));
    }
    let digest = Sha256::digest(secret.as_bytes());
    let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((
        secret,
        TokenEntry {
            name: name.to_string(),
            sha256,
            roles,
            agents: None,
            groups: None,
        },
    ))
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), String> {
    grant_ledger::random_bytes(bytes).map_err(|e| e.to_string())
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    // black_box keeps the optimizer from turning the fold into an early exit.
    std::hint::black_box(difference) == 0
}
