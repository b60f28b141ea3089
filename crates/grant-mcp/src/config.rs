//! The gateway's settings: the `--config` TOML file and the command's flags
//! set the same fields ([`McpConfig`], every field optional; flags win, as
//! for `grant serve`), which resolve into the [`Settings`] a gateway runs
//! with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use grant_engine::{AttrKind, Engine};
use grant_ledger::{LedgerConfig, LedgerSettings, RedactSettings};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Settings as written: a TOML file, or flags. Every field optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    pub policy: Option<PathBuf>,
    /// The agent every session's task is opened for.
    pub agent: Option<String>,
    /// The prefix of the tool names decided: `PREFIX.TOOL`.
    pub name: Option<String>,
    pub store: Option<String>,
    /// Session attributes by path (`[attr]`, nested tables or quoted
    /// dotted keys); as flags, `--attr PATH=VALUE`, typed by the policy.
    #[serde(default)]
    pub attr: BTreeMap<String, toml::Value>,
    pub hide_denied: Option<bool>,
    /// A duration (`60s`).
    pub call_timeout: Option<String>,
    /// The largest JSON-RPC message relayed either way, in bytes.
    pub max_message_bytes: Option<usize>,
    /// The MCP server to start: the program and its arguments.
    pub command: Option<Vec<String>>,
    /// Streamable HTTP: the address to listen on.
    pub listen: Option<String>,
    /// Streamable HTTP: the MCP server's endpoint URL.
    pub upstream: Option<String>,
    /// Streamable HTTP: a session idle this long is ended (a duration,
    /// `30m`).
    pub session_idle: Option<String>,
    #[serde(default)]
    pub ledger: LedgerSettings,
    pub redact: Option<RedactSettings>,
}

/// An attribute given on the command line, still text: the policy's
/// declaration types it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrFlag {
    pub path: String,
    pub value: String,
}

impl AttrFlag {
    /// Reads `PATH=VALUE`.
    pub fn parse(text: &str) -> Result<AttrFlag, String> {
        match text.split_once('=') {
            Some((path, value)) if !path.is_empty() => Ok(AttrFlag {
                path: path.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("--attr `{text}` is not PATH=VALUE")),
        }
    }
}

impl McpConfig {
    /// Reads a TOML settings file.
    pub fn load(path: &Path) -> Result<McpConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// These settings with every field `flags` sets replacing this one's;
    /// attributes are merged, the flag winning for a path given twice.
    pub fn overridden_by(self, flags: McpConfig) -> McpConfig {
        let mut attr = self.attr;
        attr.extend(flags.attr);
        McpConfig {
            policy: flags.policy.or(self.policy),
            agent: flags.agent.or(self.agent),
            name: flags.name.or(self.name),
            store: flags.store.or(self.store),
            attr,
            hide_denied: flags.hide_denied.or(self.hide_denied),
            call_timeout: flags.call_timeout.or(self.call_timeout),
            max_message_bytes: flags.max_message_bytes.or(self.max_message_bytes),
            command: flags.command.or(self.command),
            listen: flags.listen.or(self.listen),
            upstream: flags.upstream.or(self.upstream),
            session_idle: flags.session_idle.or(self.session_idle),
            ledger: self.ledger,
            redact: flags.redact.or(self.redact),
        }
    }

    /// The settings to run with, every default applied and every value
    /// checked (attributes are checked against the policy later, by
    /// [`Settings::session_attrs`]).
    pub fn resolve(self, attr_flags: &[AttrFlag]) -> Result<Settings, String> {
        let policy = self
            .policy
            .ok_or("give the policy that decides the calls: --policy PATH")?;
        let agent = self
            .agent
            .ok_or("give the agent the sessions act for: --agent ID")?;
        let name = self.name.ok_or(
            "give the prefix of the tool names, e.g. --name fs (tools are decided as `fs.TOOL`)",
        )?;
        check_prefix(&name)?;
        let store = match self.store {
            Some(store) => store,
            None => default_store()?,
        };
        let call_timeout =
            grant_ledger::settings::duration("call_timeout", self.call_timeout.as_deref())?
                .unwrap_or(DEFAULT_CALL_TIMEOUT);
        if call_timeout.is_zero() {
            return Err("call_timeout must be at least 1s".to_string());
        }
        let session_idle =
            grant_ledger::settings::duration("session_idle", self.session_idle.as_deref())?
                .unwrap_or(DEFAULT_SESSION_IDLE);
        if session_idle.is_zero() {
            return Err("session_idle must be at least 1s".to_string());
        }
        let max_message_bytes = self.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        if max_message_bytes < 1024 {
            return Err("max_message_bytes must be at least 1024".to_string());
        }
        let transport = match (self.listen, self.upstream, self.command) {
            (None, None, Some(command)) if !command.is_empty() => Transport::Stdio { command },
            (Some(listen), Some(upstream), None) => Transport::Http { listen, upstream },
            (None, None, _) => {
                return Err(
                    "give the MCP server to start after `--`: grant mcp ... -- COMMAND [ARGS...]"
                        .to_string(),
                );
            }
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err("--listen and --upstream go together".to_string());
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(
                    "give a command to start (stdio) or --listen and --upstream (HTTP), not both"
                        .to_string(),
                );
            }
        };
        // Gateways start anywhere and several may share one store: a spool
        // is per process, so there is none unless the settings name one.
        let ledger = self.ledger.resolve(self.redact.as_ref(), None)?;
        let mut attrs = Vec::new();
        for (path, value) in &self.attr {
            flatten(path, &toml_to_json(value), &mut attrs);
        }
        let given: Vec<(String, AttrValue)> = attrs
            .into_iter()
            .map(|(path, value)| (path, AttrValue::Typed(value)))
            .chain(
                attr_flags
                    .iter()
                    .map(|flag| (flag.path.clone(), AttrValue::Text(flag.value.clone()))),
            )
            .collect();
        Ok(Settings {
            policy,
            agent,
            name,
            store,
            attrs: given,
            hide_denied: self.hide_denied.unwrap_or(false),
            call_timeout,
            max_message_bytes,
            session_idle,
            transport,
            ledger,
        })
    }
}

/// `--call-timeout` when not given.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// `session_idle` when not set (HTTP): a session no request came for in
/// this long is ended, its grants revoked.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// The largest message relayed when not set: file contents and images
/// travel inside messages, so several MiB must pass.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What the gateway stands between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The host talks to us on stdio; we start the server as our child.
    Stdio { command: Vec<String> },
    /// Streamable HTTP: we listen, and relay to the server's endpoint.
    Http { listen: String, upstream: String },
}

/// A session attribute as given: typed already (TOML), or text to type by
/// the policy's declaration (a flag).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Typed(Value),
    Text(String),
}

/// The settings a gateway runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub policy: PathBuf,
    pub agent: String,
    pub name: String,
    pub store: String,
    /// Session attributes in the order given (the file's, then the flags').
    pub attrs: Vec<(String, AttrValue)>,
    pub hide_denied: bool,
    pub call_timeout: Duration,
    pub max_message_bytes: usize,
    /// HTTP: how long a session may go without a request.
    pub session_idle: Duration,
    pub transport: Transport,
    pub ledger: LedgerConfig,
}

impl Settings {
    /// The session attributes as a request's flat `attrs`, typed by the
    /// policy's declarations; every problem is an error naming the
    /// attribute, so a gateway never starts deciding with attributes its
    /// policy cannot read.
    pub fn session_attrs(&self, engine: &Engine) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for (path, given) in &self.attrs {
            if path.starts_with("ledger.") || path.starts_with("args.") {
                return Err(format!(
                    "--attr {path}: `ledger.*` attributes come from the ledger and `args.*` from each call, never from the gateway's settings"
                ));
            }
            let Some(attr) = engine.attr(path) else {
                return Err(format!(
                    "--attr {path}: the policy declares no attribute `{path}`"
                ));
            };
            let value = match given {
                AttrValue::Typed(value) => value.clone(),
                AttrValue::Text(text) if attr.is_set() => Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| typed(path, attr.kind(), item))
                        .collect::<Result<_, _>>()?,
                ),
                AttrValue::Text(text) => typed(path, attr.kind(), text)?,
            };
            out.insert(path.clone(), value);
        }
        // The engine types them as it will for every call: a wrong type or
        // an unknown variant is found now.
        let mut request = engine.request();
        engine.read_parts("grant.mcp.settings", &out, None, &mut request);
        if let Some(error) = engine.decide(&request).errors.first() {
            return Err(format!("--attr: {error}"));
        }
        Ok(out)
    }
}

/// A flag's text as the JSON a request gives for a `kind` value.
fn typed(path: &str, kind: AttrKind, text: &str) -> Result<Value, String> {
    match kind {
        AttrKind::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "--attr {path}: expects `true` or `false`, found `{text}`"
            )),
        },
        AttrKind::Int => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("--attr {path}: expects an integer, found `{text}`")),
        AttrKind::String | AttrKind::Duration | AttrKind::Enum => {
            Ok(Value::String(text.to_string()))
        }
    }
}

/// Nested TOML tables as dotted paths (`[attr.session] env = "prod"` is
/// `session.env`).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                flatten(&format!("{prefix}.{key}"), inner, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// A prefix is one or more identifier-like segments (`fs`, `github.prod`):
/// it is the start of every tool name the policy sees.
fn check_prefix(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--name `{name}`: a prefix is letters, digits, `_` and `-`, in segments joined by `.`"
        ))
    }
}

/// `sqlite:` in the user's data directory: `$XDG_DATA_HOME/grant/ledger.db`,
/// else `~/.local/share/grant/ledger.db` (hosts start gateways in any
/// directory, so the working directory would scatter ledgers).
pub fn default_store() -> Result<String, String> {
    let dir = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(data) => PathBuf::from(data).join("grant"),
        None => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/share/grant"),
            None => {
                return Err(
                    "neither XDG_DATA_HOME nor HOME is set: give the store with --store sqlite:PATH"
                        .to_string(),
                );
            }
        },
    };
    create_private_dir(&dir)?;
    Ok(format!("sqlite:{}", dir.join("ledger.db").display()))
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        format!(
            "{}: cannot create the ledger's directory: {e}",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn attr_flags_are_typed_by_the_policy() {
        let engine = Engine::from_text(
            "p.grant",
            "type env = dev | prod\nattr session.env: env\nattr session.n: int\nattr session.ok: bool\nattr session.tags: set<string>\nallow tool * when session.ok ttl 1m",
        )
        .unwrap();
        let settings = |flags: &[&str]| {
            let flags: Vec<AttrFlag> = flags.iter().map(|f| AttrFlag::parse(f).unwrap()).collect();
            McpConfig {
                policy: Some("p".into()),
                agent: Some("a".into()),
                name: Some("fs".into()),
                store: Some("memory".into()),
                command: Some(vec!["true".into()]),
                ..McpConfig::default()
            }
            .resolve(&flags)
            .unwrap()
        };
        let attrs = settings(&[
            "session.env=prod",
            "session.n=3",
            "session.ok=true",
            "session.tags=a, b",
        ])
        .session_attrs(&engine)
        .unwrap();
        assert_eq!(
            Value::Object(attrs),
            serde_json::json!({"session.env": "prod", "session.n": 3, "session.ok": true, "session.tags": ["a", "b"]})
        );
        for (flag, message) in [
            ("session.env=qa", "expects a variant of `env`"),
            ("session.n=x", "expects an integer"),
            ("session.ok=yes", "expects `true` or `false`"),
            ("nope=1", "declares no attribute `nope`"),
            ("ledger.degraded=true", "come from the ledger"),
        ] {
            let error = settings(&[flag]).session_attrs(&engine).unwrap_err();
            assert!(error.contains(message), "{flag}: {error}");
        }
    }

    #[test]
    fn config_files_give_typed_attributes_that_flags_override() {
        let engine = Engine::from_text(
            "p.grant",
            "attr session.env: string\nattr session.n: int\nallow tool * when session.env == \"prod\" and session.n > 1 ttl 1m",
        )
        .unwrap();
        let file: McpConfig = toml::from_str(
            "policy = \"p\"\nagent = \"a\"\nname = \"fs\"\nstore = \"memory\"\ncommand = [\"srv\", \"--x\"]\n[attr]\nsession.env = \"dev\"\nsession.n = 3\n",
        )
        .unwrap();
        let settings = file
            .overridden_by(McpConfig::default())
            .resolve(&[AttrFlag::parse("session.env=prod").unwrap()])
            .unwrap();
        assert_eq!(
            settings.transport,
            Transport::Stdio {
                command: vec!["srv".into(), "--x".into()]
            }
        );
        assert_eq!(
            Value::Object(settings.session_attrs(&engine).unwrap()),
            serde_json::json!({"session.env": "prod", "session.n": 3})
        );
        let unknown = toml::from_str::<McpConfig>("polcy = \"p\"").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `polcy`"),
            "{unknown}"
        );
    }

    #[test]
    fn names_and_transports_are_checked() {
        let base = McpConfig {
            policy: Some("p".into()),
            agent: Some("a".into()),
            name: Some("fs".into()),
            store: Some("memory".into()),
            ..McpConfig::default()
        };
        assert!(
            base.clone()
                .resolve(&[])
                .unwrap_err()
                .contains("after `--`")
        );
        let bad_name = McpConfig {
            name: Some("f s".into()),
            command: Some(vec!["x".into()]),
            ..base.clone()
        };
        assert!(bad_name.resolve(&[]).unwrap_err().contains("a prefix is"));
        let half_http = McpConfig {
            listen: Some("127.0.0.1:0".into()),
            ..base
        };
        assert!(half_http.resolve(&[]).unwrap_err().contains("go together"));
    }
}
