//! Grant's decision API, for issuers that mint short-lived credentials.
//!
//! Load a policy once into an [`Engine`] (cheap to clone, `Send + Sync`),
//! then decide requests on any thread. A [`Request`] is filled by typed
//! setters or from JSON; deciding a typed request allocates nothing once its
//! buffers have grown ([`Engine::decide_into`]). Requests are bounded in
//! size ([`RequestLimits`]: tool name 4 KiB, string values 64 KiB, sets of
//! 10,000 elements, JSON 1 MiB by default; [`Engine::with_limits`] changes
//! them): a request over a limit is denied unevaluated, with an error
//! naming the limit.
//!
//! ```
//! use grant_engine::{Engine, Value};
//! use grant_syntax::SourceMap;
//!
//! let mut sources = SourceMap::new();
//! sources.add("policy.grant", r#"
//!     type sensitivity = public < internal < confidential
//!     attr sensitivity: sensitivity
//!     attr task.approved: bool
//!     allow tool "db.read" when sensitivity <= internal ttl 5m
//!     deny tool "db.*" when not task.approved
//! "#);
//! let engine = Engine::from_sources(sources).expect("the policy is valid");
//!
//! // Typed: look attributes up once, then set values by handle.
//! let sensitivity = engine.attr("sensitivity").expect("declared");
//! let approved = engine.attr("task.approved").expect("declared");
//! let mut request = engine.request();
//! request.tool("db.read").set(sensitivity, "sensitivity", Value::Str("internal"));
//! request.set(approved, "task.approved", Value::Bool(true));
//! let decision = engine.decide(&request);
//! assert!(decision.is_allow());
//! assert_eq!(decision.ttl_seconds, Some(300));
//!
//! // JSON, in the spec's shape. A missing `task.approved` makes the deny
//! // rule's condition unknown, and an unknown deny applies: fail closed.
//! let decision = engine.decide_json(r#"{"tool": "db.read", "attrs": {"sensitivity": "public"}}"#);
//! assert!(!decision.is_allow());
//! assert_eq!(decision.missing, ["task.approved"]);
//! ```

mod decision;
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
use grant_syntax::{Diagnostic, LoadError, SourceMap};

pub use decision::{DecidingRule, Decision, DecisionEffect};
pub use grant_vm::{Considered, Outcome};
pub use limits::RequestLimits;
pub use request::{Attr, Request, RequestError, Value};

/// A policy could not be loaded: unreadable, or with errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the policy has {} error(s); first: {}", .diagnostics.iter().filter(|d| d.is_error()).count(), first_error(.diagnostics))]
    Invalid {
        sources: Box<SourceMap>,
        diagnostics: Vec<Diagnostic>,
    },
}

fn first_error(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .find(|d| d.is_error())
        .map_or_else(String::new, |d| d.message.clone())
}

/// A loaded, compiled policy. Clones share it. Requests are bounded by
/// [`RequestLimits`], the defaults unless set with [`Engine::with_limits`].
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
    pub(crate) types: Arc<[grant_check::ir::EnumType]>,
    /// Warnings the policy had (it had no errors).
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Engine {
    /// Loads a policy: one `.grant` file, or a directory that directly
    /// holds `.grant` files, with every `.grant` file under it. A directory
    /// that holds several policies below it is refused
    /// ([`LoadError::SeveralPolicies`]): separate policies are never merged.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Engine, PolicyError> {
        Engine::from_sources(SourceMap::load(path.as_ref())?)
    }

    /// Builds an engine from policy text already in memory.
    pub fn from_sources(sources: SourceMap) -> Result<Engine, PolicyError> {
        // The checked policy is not kept: its text moves into the program.
        let (program, diagnostics) = grant_compile::build_program(&sources);
        let Some(program) = program else {
            return Err(PolicyError::Invalid {
                sources: Box::new(sources),
                diagnostics,
            });
        };
        let attrs = program
            .attrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                (
                    a.path.as_str().into(),
                    Attr {
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
        let types = program.types.clone().into();
        let policy_hash = hash::policy_hash(&sources);
        Ok(Engine {
            inner: Arc::new(Inner {
                id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
                program,
                sources,
                policy_hash,
                attrs,
                by_path,
                groups,
                types,
                warnings: diagnostics,
            }),
            limits: RequestLimits::default(),
        })
    }

    /// This engine with other request limits. The policy is shared, not
    /// copied; requests made by [`Engine::request`] afterwards, and JSON
    /// read by this engine, are held to `limits`.
    pub fn with_limits(mut self, limits: RequestLimits) -> Engine {
        self.limits = limits;
        self
    }

    /// The limits requests are held to.
    pub fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// `sha256:<hex>` over the policy's files in path order (see docs).
    pub fn policy_hash(&self) -> &str {
        &self.inner.policy_hash
    }

    pub fn program(&self) -> &Program {
        &self.inner.program
    }

    pub fn sources(&self) -> &SourceMap {
        &self.inner.sources
    }

    /// Warnings the policy had when it was loaded.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.inner.warnings
    }

    /// A handle on a declared attribute, or `None` if the policy does not
    /// declare `path`.
    pub fn attr(&self, path: &str) -> Option<Attr> {
        self.inner.attrs.get(path).copied()
    }

    /// An empty request for this engine's policy.
    pub fn request(&self) -> Request {
        Request::new(&self.inner, self.key(), self.limits)
    }

    /// Fills `request` from JSON in the spec's request shape, held to this
    /// engine's limits. A leading byte-order mark is ignored. Problems are
    /// recorded in the request, which is then denied with them.
    pub fn read_json(&self, json: &str, request: &mut Request) {
        if request.program_key != self.key() {
            *request = self.request();
        }
        request.limits = self.limits;
        json::read(&self.inner, json, request);
    }

    /// Decides a JSON request.
    pub fn decide_json(&self, json: &str) -> Decision {
        let mut request = self.request();
        self.read_json(json, &mut request);
        self.decide(&request)
    }

    /// Decides a request.
    pub fn decide(&self, request: &Request) -> Decision {
        self.decide_with(request, &mut Outcome::default())
    }

    /// Decides with a reusable `outcome`, which is left holding the
    /// evaluator's view (rules considered, how each condition came out).
    pub fn decide_with(&self, request: &Request, outcome: &mut Outcome) -> Decision {
        match self.decide_into(request, outcome) {
            Ok(()) => Decision::from_outcome(
                &self.inner.program,
                &request.tool,
                request.ttl,
                outcome,
                &self.inner.policy_hash,
            ),
            Err(errors) => Decision::invalid(errors, &self.inner.policy_hash),
        }
    }

    /// The deny for input that could not even be read as a request (not
    /// UTF-8, say): `error` says why.
    pub fn reject(&self, error: impl Into<String>) -> Decision {
        Decision::invalid(&[RequestError::new(error.into())], &self.inner.policy_hash)
    }

    /// Decides into reusable buffers, allocating nothing once they have
    /// grown. An invalid request is denied unevaluated: its errors are
    /// returned, and `outcome` says deny.
    pub fn decide_into<'r>(
        &self,
        request: &'r Request,
        outcome: &mut Outcome,
    ) -> Result<(), &'r [RequestError]> {
        if request.program_key != self.key() {
            *outcome = Outcome::default();
            outcome.effect = Some(grant_syntax::ast::Effect::Deny);
            return Err(&WRONG_POLICY);
        }
        if !request.errors.is_empty() || !request.tool_given {
            *outcome = Outcome::default();
            outcome.effect = Some(grant_syntax::ast::Effect::Deny);
            return Err(if request.errors.is_empty() {
                &NO_TOOL
            } else {
                &request.errors
            });
        }
        grant_vm::decide(
            &self.inner.program,
            &request.tool,
            &request.input(),
            request.ttl,
            outcome,
        );
        Ok(())
    }

    /// Identifies this engine's program, so that a request laid out for
    /// another policy is refused rather than misread.
    fn key(&self) -> usize {
        self.inner.id
    }
}

impl Inner {
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

static WRONG_POLICY: [RequestError; 1] = [RequestError::fixed(
    "the request was made for another policy (or an earlier version of this one): make it with this engine's `request()`",
)];
static NO_TOOL: [RequestError; 1] = [RequestError::fixed("request has no `tool`")];

static NEXT_ENGINE_ID: AtomicUsize = AtomicUsize::new(1);
