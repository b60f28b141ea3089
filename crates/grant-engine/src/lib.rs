//! Grant's decision API: the one crate an embedder names.
//!
//! Load a policy once into an [`Engine`] (cheap to clone, `Send + Sync`),
//! then decide requests on any thread. There are two ways to decide:
//!
//! - **Typed, allocation-free**: look attribute handles up once
//!   ([`Engine::attr`]), fill a reused [`Request`], and decide into a reused
//!   [`Verdict`] with [`Engine::decide_into`]. Nothing is allocated once the
//!   buffers have grown. This is the path for a hot loop.
//! - **Convenient**: [`Engine::decide_json`] (JSON in the spec's shape) or
//!   [`Engine::decide`] (a typed request) return a [`Decision`], the
//!   serde type of the spec's decision JSON.
//!
//! [`Engine::decide_degraded_into`] and [`Engine::decide_degraded`] decide
//! as the ledger does while its store is unavailable (only allow rules that
//! read `ledger.degraded` apply).
//!
//! [`Engine::read_json`] fills a reused request from JSON, for the typed path
//! with JSON input, and [`Engine::explain`] tells how a decision came out,
//! rule by rule ([`Explanation`]). Requests are bounded in size
//! ([`RequestLimits`]); a request over a limit, or otherwise invalid, is
//! denied unevaluated with its errors. docs/embedding.md is the guide.
//!
//! ```
//! use grant_engine::{Engine, Value};
//!
//! let engine = Engine::from_text("policy.grant", r#"
//!     type sensitivity = public < internal < confidential
//!     attr sensitivity: sensitivity
//!     attr task.approved: bool
//!     allow tool "db.read" when sensitivity <= internal ttl 5m
//!     deny tool "db.*" when not task.approved
//! "#)?;
//!
//! // Typed: look attributes up once, then set values by handle.
//! let sensitivity = engine.attr("sensitivity").expect("declared");
//! let approved = engine.attr("task.approved").expect("declared");
//! let (mut request, mut verdict) = (engine.request(), engine.verdict());
//! request
//!     .set_tool("db.read")
//!     .set(sensitivity, Value::Str("internal"))
//!     .set(approved, Value::Bool(true));
//! engine.decide_into(&request, &mut verdict);
//! assert!(verdict.is_allow());
//! assert_eq!(verdict.ttl_seconds(), Some(300));
//!
//! // JSON, in the spec's shape. A missing `task.approved` makes the deny
//! // rule's condition unknown, and an unknown deny applies: fail closed.
//! let decision = engine.decide_json(r#"{"tool": "db.read", "attrs": {"sensitivity": "public"}}"#);
//! assert!(!decision.is_allow());
//! assert_eq!(decision.missing, ["task.approved"]);
//! # Ok::<(), grant_engine::PolicyError>(())
//! ```

#![warn(missing_docs)]

mod decision;
mod explain;
mod explain_text;
mod hash;
mod json;
mod limits;
mod request;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use grant_check::fnv;
use grant_compile::Program;
use grant_compile::index::FnvMap;
use grant_compile::program::SlotId;

pub use decision::{DecidingRule, Decision, DecisionEffect, Obligations, Verdict};
pub use explain::{ConditionResult, ExplainedRule, Explanation, GivenValue, RuleInfo, RuleStatus};
pub use explain_text::Explainer;
pub use grant_syntax::diagnostic::Label;
/// Durations as the language writes them (`90s`, `1h30m`): ttls, and the
/// settings of the tools built on the engine.
pub use grant_syntax::literal::{format_duration, parse_duration};
pub use grant_syntax::render;
pub use grant_syntax::{
    Code, Diagnostic, FileId, LoadError, Severity, SourceFile, SourceMap, Span,
};
pub use limits::RequestLimits;
pub use request::{
    Attr, AttrKind, Given, GivenSet, Request, RequestError, RequestErrorKind, Value,
};

use request::WRONG_ENGINE;

// docs/embedding.md, the embedding guide, is compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
struct EmbeddingGuide;

/// A policy could not be loaded: unreadable, or with errors.
///
/// ```
/// use grant_engine::{Engine, PolicyError};
/// let error = Engine::from_text("p.grant", "allow tool \"t\" when nope").unwrap_err();
/// let PolicyError::Invalid { diagnostics, .. } = &error else { panic!("invalid") };
/// assert!(diagnostics.iter().any(|d| d.is_error()));
/// // Rendered as `grant check` shows them, without colour:
/// assert!(error.report(false).contains("nope"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy's files could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The policy has errors: every diagnostic of the run, warnings
    /// included, with the sources they point into.
    #[error("the policy has {} error(s); first: {}", .diagnostics.iter().filter(|d| d.is_error()).count(), first_error(.diagnostics))]
    Invalid {
        /// The policy's files.
        sources: Box<SourceMap>,
        /// Every diagnostic, sorted by position.
        diagnostics: Vec<Diagnostic>,
    },
}

impl PolicyError {
    /// The error for people: the diagnostics rendered with their source
    /// lines (ANSI colour when `color`), or the load error's message.
    ///
    /// ```
    /// let error = grant_engine::Engine::from_path("no/such/policy").unwrap_err();
    /// assert!(error.report(false).starts_with("error: "));
    /// ```
    pub fn report(&self, color: bool) -> String {
        match self {
            PolicyError::Load(error) => format!("error: {error}\n"),
            PolicyError::Invalid {
                sources,
                diagnostics,
            } => render::human(sources, diagnostics, color),
        }
    }
}

fn first_error(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .find(|d| d.is_error())
        .map_or_else(String::new, |d| d.message.clone())
}

/// A loaded, compiled policy. Clones share it. Requests are bounded by
/// [`RequestLimits`], the defaults unless set with [`Engine::with_limits`].
///
/// To reload a policy, build a new engine and swap it in: requests and
/// attribute handles made by the old one are refused by the new one (the
/// request is denied with a [`RequestErrorKind::WrongEngine`] error), never
/// misread. Fetch handles again from the new engine; a [`Verdict`] may be
/// decided into by any engine.
///
/// ```
/// use grant_engine::Engine;
/// let engine = Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
/// let shared = engine.clone(); // the same compiled policy, for another thread
/// assert_eq!(shared.policy_hash(), engine.policy_hash());
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
    limits: RequestLimits,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// Unique per engine built in this process.
    pub(crate) id: usize,
    pub(crate) program: Program,
    pub(crate) sources: SourceMap,
    pub(crate) policy_hash: String,
    /// Declared attributes by path.
    pub(crate) attrs: FnvMap<Box<str>, Attr>,
    /// Every attribute, in the byte order of their paths: the attributes
    /// under a group (`task` for `task.approved`, an object a JSON request
    /// may nest) are a run of it.
    pub(crate) by_path: Vec<SlotId>,
    /// The groups: the FNV-1a hash of each proper prefix of a path (at a
    /// dot) → where its run starts in `by_path` (several starts only if
    /// hashes collide; each is checked). Linear in the paths' length, where
    /// a set of every prefix as text was quadratic in a long path.
    pub(crate) groups: FnvMap<u64, Vec<u32>>,
    /// Warnings the policy had (it had no errors).
    pub(crate) warnings: Vec<Diagnostic>,
    /// Whether any rule states `uses` or `approval`: without, an allow has
    /// no obligations to collect.
    pub(crate) has_obligations: bool,
}

impl Engine {
    /// Loads a policy: one `.grant` file, or a directory that directly
    /// holds `.grant` files, with every `.grant` file under it. A directory
    /// that holds several policies below it is refused
    /// ([`LoadError::SeveralPolicies`]): separate policies are never merged.
    ///
    /// ```no_run
    /// let engine = grant_engine::Engine::from_path("policies/payments")?;
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Result<Engine, PolicyError> {
        Engine::from_sources(SourceMap::load(path.as_ref())?)
    }

    /// Builds an engine from the text of a one-file policy; `name` is the
    /// file name its diagnostics and generated rule ids use.
    ///
    /// ```
    /// let engine = grant_engine::Engine::from_text("policy.grant", "allow tool \"t\" ttl 1m")?;
    /// assert_eq!(engine.decide_json(r#"{"tool": "t"}"#).rules[0].id, "policy.grant:1");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn from_text(name: &str, text: &str) -> Result<Engine, PolicyError> {
        let mut sources = SourceMap::new();
        sources.add(name, text);
        Engine::from_sources(sources)
    }

    /// Builds an engine from policy files already in memory (several files
    /// make one policy, as a directory does).
    ///
    /// ```
    /// use grant_engine::{Engine, SourceMap};
    /// let mut sources = SourceMap::new();
    /// sources.add("attrs.grant", "attr env: string");
    /// sources.add("rules.grant", "allow tool \"t\" when env == \"dev\" ttl 1m");
    /// let engine = Engine::from_sources(sources)?;
    /// assert!(engine.attr("env").is_some());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn from_sources(sources: SourceMap) -> Result<Engine, PolicyError> {
        // The checked policy is not kept: its text moves into the program.
        let (program, diagnostics) = grant_compile::build_program(&sources);
        let Some(program) = program else {
            return Err(PolicyError::Invalid {
                sources: Box::new(sources),
                diagnostics,
            });
        };
        let id = NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed);
        let attrs = program
            .attrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                (
                    a.path.as_str().into(),
                    Attr {
                        engine: id,
                        slot: SlotId(i as u32),
                        ty: a.ty,
                    },
                )
            })
            .collect();
        let path = |slot: &SlotId| {
            program
                .attrs
                .get(slot.0 as usize)
                .map_or("", |a| a.path.as_str())
        };
        let mut by_path: Vec<SlotId> = (0..program.attrs.len() as u32).map(SlotId).collect();
        by_path.sort_unstable_by(|a, b| path(a).cmp(path(b)));
        let mut groups: FnvMap<u64, Vec<u32>> = FnvMap::default();
        let mut previous = "";
        for (at, slot) in by_path.iter().enumerate() {
            let path = path(slot);
            // A group this path shares with the one before (sorting keeps
            // a group's attributes together) starts there already.
            let shared = previous
                .bytes()
                .zip(path.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            let mut hash = fnv::START;
            for (i, byte) in path.bytes().enumerate() {
                if byte == b'.' && i >= shared {
                    groups.entry(hash).or_default().push(at as u32);
                }
                hash = fnv::step(hash, byte);
            }
            previous = path;
        }
        let policy_hash = hash::policy_hash(&sources);
        let has_obligations = program
            .rules
            .iter()
            .any(|rule| rule.uses.is_some() || rule.approval.is_some());
        Ok(Engine {
            inner: Arc::new(Inner {
                id,
                program,
                sources,
                policy_hash,
                attrs,
                by_path,
                groups,
                warnings: diagnostics,
                has_obligations,
            }),
            limits: RequestLimits::default(),
        })
    }

    /// This engine with other request limits. The policy is shared, not
    /// copied; requests made by [`Engine::request`] afterwards, and JSON
    /// read by this engine, are held to `limits`.
    ///
    /// ```
    /// use grant_engine::{Engine, RequestLimits};
    /// let engine = Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?
    ///     .with_limits(RequestLimits { tool_bytes: 64, ..RequestLimits::default() });
    /// assert_eq!(engine.limits().tool_bytes, 64);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn with_limits(mut self, limits: RequestLimits) -> Engine {
        self.limits = limits;
        self
    }

    /// The limits requests are held to.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// assert_eq!(engine.limits().json_bytes, 1024 * 1024);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// `sha256:<hex>` over the policy's files in path order (see
    /// docs/language.md): every decision names the policy text it was made
    /// under.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// assert!(engine.policy_hash().starts_with("sha256:"));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn policy_hash(&self) -> &str {
        &self.inner.policy_hash
    }

    /// The policy's files, for rendering its [`Engine::warnings`].
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// assert_eq!(engine.sources().len(), 1);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn sources(&self) -> &SourceMap {
        &self.inner.sources
    }

    /// Warnings the policy had when it was loaded (it had no errors).
    ///
    /// ```
    /// use grant_engine::{Engine, render};
    /// let engine = Engine::from_text("p.grant", "attr unused: bool\nallow tool \"t\" ttl 1m")?;
    /// assert!(!engine.warnings().is_empty());
    /// let text = render::human(engine.sources(), engine.warnings(), false);
    /// assert!(text.contains("unused"));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.inner.warnings
    }

    /// A handle on a declared attribute, or `None` if the policy does not
    /// declare `path`. Handles work with this engine's requests only.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr task.approved: bool\nallow tool \"t\" when task.approved ttl 1m")?;
    /// assert!(engine.attr("task.approved").is_some());
    /// assert!(engine.attr("task").is_none());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn attr(&self, path: &str) -> Option<Attr> {
        self.inner.attrs.get(path).copied()
    }

    /// The paths of every declared attribute, sorted.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr b: bool\nattr a.x: int\nallow tool \"t\" when b and a.x > 1 ttl 1m")?;
    /// assert_eq!(engine.attr_paths().collect::<Vec<_>>(), ["a.x", "b"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn attr_paths(&self) -> impl Iterator<Item = &str> {
        self.inner
            .by_path
            .iter()
            .filter_map(|&slot| self.inner.attr_path(slot))
    }

    /// Whether some allow rule's pattern matches `tool`, whatever its
    /// condition: when none does, every request for `tool` is denied.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"fs.read_*\" ttl 1m\ndeny tool \"fs.write\"")?;
    /// assert!(engine.may_allow("fs.read_file"));
    /// assert!(!engine.may_allow("fs.write"));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn may_allow(&self, tool: &str) -> bool {
        let program = &self.inner.program;
        self.candidates(tool).iter().any(|&id| {
            program
                .rule(id)
                .is_some_and(|rule| rule.effect == grant_syntax::ast::Effect::Allow)
        })
    }

    /// The rules whose pattern matches `tool`, in policy order, whatever
    /// their conditions.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "@id(\"r\")\nallow tool \"fs.read_*\" ttl 1m\ndeny tool \"db.*\"")?;
    /// let ids: Vec<String> = engine.rules_for("fs.read_file").into_iter().map(|r| r.id).collect();
    /// assert_eq!(ids, ["r"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn rules_for(&self, tool: &str) -> Vec<RuleInfo> {
        let program = &self.inner.program;
        self.candidates(tool)
            .into_iter()
            .filter_map(|id| program.rule(id))
            .map(|rule| explain::rule_info(&self.inner, rule))
            .collect()
    }

    fn candidates(&self, tool: &str) -> Vec<grant_compile::program::RuleId> {
        let program = &self.inner.program;
        let mut candidates = Vec::new();
        program
            .index
            .candidates(tool, &program.globs, &mut candidates);
        candidates
    }

    /// Every rule of the policy, in policy order, with where it is.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "@id(\"t\")\nallow tool \"t\" ttl 1m")?;
    /// let rules = engine.rules();
    /// assert_eq!((rules[0].id.as_str(), rules[0].line), ("t", 2));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn rules(&self) -> Vec<RuleInfo> {
        self.inner
            .program
            .rules
            .iter()
            .map(|rule| explain::rule_info(&self.inner, rule))
            .collect()
    }

    /// An empty request for this engine's policy.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// let mut request = engine.request();
    /// request.set_tool("t");
    /// assert!(engine.decide(&request).is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn request(&self) -> Request {
        Request::new(&self.inner, self.limits)
    }

    /// A reusable verdict for [`Engine::decide_into`]. Until it is used it
    /// holds the deny of an empty request.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// let verdict = engine.verdict();
    /// assert!(!verdict.is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn verdict(&self) -> Verdict {
        Verdict::new(&self.inner)
    }

    /// Fills `request` (cleared first) from JSON in the spec's request
    /// shape, held to this engine's limits; a request of another engine is
    /// replaced by one of this engine. `json` may be bytes: text that is not
    /// UTF-8 is an error like any other. A leading byte-order mark is
    /// ignored. Problems are recorded in the request, which is then denied
    /// with them.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m")?;
    /// let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// for line in [r#"{"tool": "t", "attrs": {"env": "dev"}}"#, r#"{"tool": "t", "attrs": {"env": 1}}"#] {
    ///     engine.read_json(line, &mut request);
    ///     engine.decide_into(&request, &mut verdict);
    /// }
    /// assert_eq!(verdict.errors()[0].message(), "attribute `env` expects `string`, found integer `1`");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn read_json(&self, json: impl AsRef<[u8]>, request: &mut Request) {
        if request.inner.id != self.inner.id {
            *request = self.request();
        }
        request.limits = self.limits;
        json::read(json.as_ref(), request);
    }

    /// Fills `request` (cleared first) from a request already parsed into
    /// its parts: the tool, the `attrs` object, and the asked `ttl` (a
    /// duration string or integer seconds; `None` or `null` for none). The
    /// same rules as [`Engine::read_json`], without writing and parsing
    /// JSON text again: for a caller (the ledger, a service) that holds the
    /// request as `serde_json` values. (A parsed map holds each key once, so
    /// a key its text gave twice can no longer be refused: read the text
    /// with `read_json` when that matters.)
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m")?;
    /// let attrs = serde_json::json!({"env": "dev"});
    /// let mut request = engine.request();
    /// engine.read_parts("t", attrs.as_object().expect("an object"), Some(&serde_json::json!("30s")), &mut request);
    /// assert_eq!(engine.decide(&request).ttl_seconds, Some(30));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn read_parts(
        &self,
        tool: &str,
        attrs: &serde_json::Map<String, serde_json::Value>,
        ttl: Option<&serde_json::Value>,
        request: &mut Request,
    ) {
        if request.inner.id != self.inner.id {
            *request = self.request();
        }
        request.limits = self.limits;
        json::read_parts(tool, attrs, ttl, request);
    }

    /// Decides a JSON request (text or bytes): the convenient path.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// let decision = engine.decide_json(br#"{"tool": "t", "ttl": "30s"}"#);
    /// assert_eq!(decision.ttl_seconds, Some(30));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn decide_json(&self, json: impl AsRef<[u8]>) -> Decision {
        let mut request = self.request();
        self.read_json(json, &mut request);
        self.decide(&request)
    }

    /// Decides a typed request, returning the full [`Decision`].
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// let mut request = engine.request();
    /// request.set_tool("u");
    /// assert_eq!(engine.decide(&request).reasons, ["no rule allows tool `u`, so it is denied by default"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn decide(&self, request: &Request) -> Decision {
        let mut verdict = self.verdict();
        self.decide_into(request, &mut verdict);
        verdict.to_decision()
    }

    /// Decides into a reused [`Verdict`]: the typed path, which allocates
    /// nothing once the request's and the verdict's buffers have grown. An
    /// invalid request (with errors, without a tool, or made by another
    /// engine) is denied unevaluated, and the verdict holds its errors.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"t\" ttl 1m")?;
    /// let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// request.set_tool("t");
    /// engine.decide_into(&request, &mut verdict);
    /// assert!(verdict.is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn decide_into(&self, request: &Request, verdict: &mut Verdict) {
        self.decide_in(request, verdict, Mode::Normal);
    }

    /// Decides as the ledger does while its store is unavailable (the
    /// spec's "Failure behaviour"): every deny rule applies as usual, but
    /// an allow rule applies only if its condition reads `ledger.degraded`
    /// (names it; a rule without condition does not). The other allow rules
    /// are left out as if their patterns did not match, and the ttl and
    /// obligations combine over the allow rules that remain. When that
    /// leaves a tool with no applying rule, the reason says it was the
    /// degraded mode.
    ///
    /// The caller sets `ledger.degraded = true` in the request; this method
    /// does not. A policy that does not declare `ledger.degraded` allows
    /// nothing here: fail closed. Like [`Engine::decide_into`], it
    /// allocates nothing once the buffers have grown.
    ///
    /// ```
    /// use grant_engine::{Engine, Value};
    /// let engine = Engine::from_text("p.grant", r#"
    ///     type sensitivity = public < internal < confidential
    ///     attr sensitivity: sensitivity
    ///     attr ledger.degraded: bool
    ///     allow tool "db.read" when sensitivity <= internal and not ledger.degraded ttl 5m
    ///     allow tool "db.read" when sensitivity == public and ledger.degraded ttl 30s
    ///     allow tool "db.list" ttl 5m
    /// "#)?;
    /// let sensitivity = engine.attr("sensitivity").expect("declared");
    /// let degraded = engine.attr("ledger.degraded").expect("declared");
    /// let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// request.set_tool("db.read").set(sensitivity, Value::Str("public")).set(degraded, Value::Bool(true));
    /// engine.decide_degraded_into(&request, &mut verdict);
    /// assert_eq!(verdict.ttl_seconds(), Some(30));
    /// // `db.list`'s rule has no condition, so it does not read `ledger.degraded`.
    /// request.set_tool("db.list");
    /// engine.decide_degraded_into(&request, &mut verdict);
    /// assert!(!verdict.is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn decide_degraded_into(&self, request: &Request, verdict: &mut Verdict) {
        self.decide_in(request, verdict, Mode::Degraded);
    }

    /// [`Engine::decide_degraded_into`], returning the full [`Decision`].
    ///
    /// ```
    /// use grant_engine::{Engine, Value};
    /// let engine = Engine::from_text("p.grant", r#"
    ///     attr ledger.degraded: bool
    ///     allow tool "db.read" ttl 5m
    /// "#)?;
    /// let mut request = engine.request();
    /// request.set_tool("db.read").set(engine.attr("ledger.degraded").expect("declared"), Value::Bool(true));
    /// assert!(engine.decide(&request).is_allow());
    /// let decision = engine.decide_degraded(&request);
    /// assert!(!decision.is_allow());
    /// assert_eq!(decision.reasons, ["no rule allows tool `db.read` while the ledger is degraded (allow rules apply then only if their condition reads `ledger.degraded`)"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn decide_degraded(&self, request: &Request) -> Decision {
        let mut verdict = self.verdict();
        self.decide_degraded_into(request, &mut verdict);
        verdict.to_decision()
    }

    /// The decide entry points' one body; `mode` says which rules may apply.
    /// Inlined into each with its constant mode, so that the normal path
    /// does not test it.
    #[inline(always)]
    fn decide_in(&self, request: &Request, verdict: &mut Verdict, mode: Mode) {
        verdict.start(&self.inner, &request.tool, request.ttl);
        if request.inner.id != self.inner.id {
            verdict.refuse(std::slice::from_ref(&WRONG_ENGINE));
            return;
        }
        if !request.errors.is_empty() || !request.tool_given {
            verdict.refuse(&request.errors);
            return;
        }
        let decide = match mode {
            Mode::Normal => grant_vm::decide,
            Mode::Degraded => grant_vm::decide_degraded,
        };
        decide(
            &self.inner.program,
            &request.tool,
            &request.input(),
            request.ttl,
            &mut verdict.outcome,
        );
        verdict.oblige();
    }

    /// Decides `request` and tells how: every rule whose pattern matches
    /// the tool, its condition as written, the values it read, how it came
    /// out, and whether it applied. For people (`grant eval --explain`
    /// renders it) and, as JSON, for machines.
    ///
    /// ```
    /// use grant_engine::RuleStatus;
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m")?;
    /// let mut request = engine.request();
    /// engine.read_json(r#"{"tool": "t", "attrs": {"env": "prod"}}"#, &mut request);
    /// let explanation = engine.explain(&request);
    /// assert!(!explanation.decision.is_allow());
    /// let rule = &explanation.rules[0];
    /// assert_eq!(rule.status, RuleStatus::DoesNotApply);
    /// assert_eq!(rule.rule.condition.as_deref(), Some("env == \"dev\""));
    /// assert_eq!(rule.given[0].value.as_deref(), Some("\"prod\""));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn explain(&self, request: &Request) -> Explanation {
        let mut verdict = self.verdict();
        self.decide_into(request, &mut verdict);
        explain::explain(&self.inner, request, &verdict)
    }
}

impl Inner {
    /// The path of the attribute in `slot`.
    pub(crate) fn attr_path(&self, slot: SlotId) -> Option<&str> {
        self.program
            .attrs
            .get(slot.0 as usize)
            .map(|a| a.path.as_str())
    }

    fn path(&self, at: usize) -> &str {
        self.by_path
            .get(at)
            .and_then(|slot| self.program.attrs.get(slot.0 as usize))
            .map_or("", |a| a.path.as_str())
    }

    /// Where the attributes under `group` start in `by_path`.
    fn group_start(&self, group: &str) -> Option<usize> {
        let starts = self.groups.get(&fnv::hash(group.as_bytes()))?;
        starts
            .iter()
            .map(|&at| at as usize)
            .find(|&at| is_under(self.path(at), group))
    }

    /// Whether `group` is a proper prefix of an attribute path (`task` for
    /// `task.approved`): an object a JSON request may nest.
    pub(crate) fn is_group(&self, group: &str) -> bool {
        self.group_start(group).is_some()
    }

    /// The attributes under `group`, in the byte order of their paths;
    /// empty when `group` is not a group.
    pub(crate) fn under(&self, group: &str) -> &[SlotId] {
        let Some(start) = self.group_start(group) else {
            return &[];
        };
        let rest = self.by_path.get(start..).unwrap_or(&[]);
        let len = rest.partition_point(|slot| {
            self.program
                .attrs
                .get(slot.0 as usize)
                .is_some_and(|a| is_under(&a.path, group))
        });
        rest.get(..len).unwrap_or(&[])
    }
}

/// Whether `path` lies under `group`: starts with `group` and a dot.
fn is_under(path: &str, group: &str) -> bool {
    path.strip_prefix(group)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// Which rules a decision may apply.
#[derive(Clone, Copy)]
enum Mode {
    /// Every rule.
    Normal,
    /// The ledger's store is unavailable: allow rules only if their
    /// condition reads `ledger.degraded`.
    Degraded,
}

static NEXT_ENGINE_ID: AtomicUsize = AtomicUsize::new(1);
