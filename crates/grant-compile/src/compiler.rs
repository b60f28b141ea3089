//! Lowering a checked policy to a [`Program`].

use grant_check::Policy;
use grant_check::ir::{AttrId, Expr, ExprKind, Rule, ToolPatterns, Type, Value};
use grant_check::ledger;
use grant_syntax::Span;
use grant_syntax::ast::Effect;
use grant_syntax::diagnostic::{Code, Diagnostic};

use crate::glob::Glob;
use crate::index::{FnvMap, RuleIndexBuilder};
use crate::plan;
use crate::program::{
    CompareOp, CompiledRule, Const, ConstId, GlobId, Kind, Op, Operand, Program, RuleId, SlotId,
    Tri,
};

/// Most budget units one rule may cost (docs/bytecode.md, "Cost").
pub const MAX_RULE_COST: u32 = 4096;

/// Deepest evaluation stack a rule may need; the VM's stack has this size.
pub const MAX_STACK: usize = 128;

/// Compiles a policy that passed the checker without errors. Errors are
/// diagnostics: a rule over the cost budget.
pub fn compile(policy: &Policy) -> Result<Program, Vec<Diagnostic>> {
    compile_rules(policy, policy.rules.iter())
}

/// [`compile`], consuming the policy: each rule's id, patterns and
/// annotations move into the program instead of being copied.
pub fn compile_owned(mut policy: Policy) -> Result<Program, Vec<Diagnostic>> {
    let rules = std::mem::take(&mut policy.rules);
    compile_rules(&policy, rules.into_iter())
}

/// The text a compiled rule keeps of a checked rule.
struct RuleText {
    id: Box<str>,
    approval: Option<Box<str>>,
    annotations: Box<[(Box<str>, Box<str>)]>,
    /// `None` for `tool *`.
    patterns: Option<Box<[Box<str>]>>,
}

/// A checked rule, lent (its text is copied) or given (moved).
trait Source: std::borrow::Borrow<Rule> {
    fn text(self) -> RuleText;
}

impl Source for &Rule {
    fn text(self) -> RuleText {
        RuleText {
            id: self.id.as_str().into(),
            approval: self.approval.as_deref().map(Into::into),
            annotations: self
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
            patterns: match &self.patterns {
                ToolPatterns::Any => None,
                ToolPatterns::List(list) => Some(list.iter().map(|p| p.as_str().into()).collect()),
            },
        }
    }
}

impl Source for Rule {
    fn text(self) -> RuleText {
        RuleText {
            id: self.id.into_boxed_str(),
            approval: self.approval.map(String::into_boxed_str),
            annotations: self
                .annotations
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
            patterns: match self.patterns {
                ToolPatterns::Any => None,
                ToolPatterns::List(list) => {
                    Some(list.into_iter().map(String::into_boxed_str).collect())
                }
            },
        }
    }
}

fn compile_rules<S: Source>(
    policy: &Policy,
    sources: impl ExactSizeIterator<Item = S>,
) -> Result<Program, Vec<Diagnostic>> {
    let mut compiler = Compiler::default();
    let count = sources.len();
    let mut rules = Vec::with_capacity(count);
    let mut heads = Vec::with_capacity(count);
    // Most rules compile to a few instructions.
    compiler.code.reserve(count * 4);
    compiler.spans.reserve(count * 4);
    let mut tests = Vec::new();
    let mut index = RuleIndexBuilder::default();
    let mut diagnostics = Vec::new();
    let degraded = policy
        .attrs
        .iter()
        .position(|a| a.path == ledger::DEGRADED)
        .map(|at| AttrId(at as u32));
    for (i, source) in sources.enumerate() {
        let rule: &Rule = source.borrow();
        let rule_id = RuleId(i as u32);
        let code_start = compiler.code.len() as u32;
        compiler.depth = 0;
        compiler.max_depth = 0;
        compiler.cost = 0;
        if let Some(condition) = &rule.condition {
            compiler.expr(condition);
        }
        match &rule.patterns {
            ToolPatterns::Any => index.add_any(rule_id),
            ToolPatterns::List(patterns) => {
                for pattern in patterns {
                    let glob = Glob::new(pattern);
                    compiler.cost += 1 + glob.literal_len() as u32 / 16;
                    let glob_id = compiler.glob(glob);
                    if let Some(glob) = compiler.globs.get(glob_id.0 as usize) {
                        index.add_pattern(rule_id, glob_id, glob);
                    }
                }
            }
        }
        if compiler.cost > MAX_RULE_COST {
            diagnostics.push(
                Diagnostic::new(
                    Code::RuleTooCostly,
                    rule.span,
                    format!(
                        "rule `{}` costs {} units, over the budget of {MAX_RULE_COST}",
                        rule.id, compiler.cost
                    ),
                )
                .label("too costly to evaluate at request time")
                .help("split the rule, or shorten its lists and patterns"),
            );
        } else if compiler.max_depth > MAX_STACK {
            // The nesting limit keeps conditions far below this; it guards
            // the VM's fixed stack all the same.
            diagnostics.push(
                Diagnostic::new(
                    Code::RuleTooCostly,
                    rule.span,
                    format!(
                        "rule `{}` needs an evaluation stack of {}, over the limit of {MAX_STACK}",
                        rule.id, compiler.max_depth
                    ),
                )
                .label("nested too deeply to evaluate")
                .help("split the rule into simpler rules"),
            );
        }
        diagnostics.append(&mut compiler.internal);
        let code_end = compiler.code.len() as u32;
        heads.push(plan::plan(
            rule.effect,
            compiler.code.get(code_start as usize..).unwrap_or(&[]),
            code_end,
            &compiler.consts,
            &mut tests,
        ));
        let (effect, ttl, uses, span) = (rule.effect, rule.ttl, rule.uses, rule.span);
        let condition_span = rule.condition.as_ref().map(|c| c.span);
        // The spec's "reads": the attribute occurs in the condition as
        // written, which the checked condition keeps whole (nothing folded).
        let reads_degraded = match (&rule.condition, degraded) {
            (Some(condition), Some(attr)) => reads(condition, attr),
            _ => false,
        };
        let text = source.text();
        rules.push(CompiledRule {
            id: text.id,
            effect,
            ttl,
            uses,
            approval: text.approval,
            annotations: text.annotations,
            patterns: text.patterns,
            code_start,
            code_end,
            cost: compiler.cost,
            max_stack: compiler.max_depth as u32,
            span,
            condition_span,
            reads_degraded,
        });
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    // The reservation above must not cost memory where rules have fewer
    // instructions (shrinking in place copies nothing).
    compiler.code.shrink_to_fit();
    compiler.spans.shrink_to_fit();
    Ok(Program {
        types: policy.types.clone(),
        attrs: policy.attrs.clone(),
        consts: compiler.consts,
        globs: compiler.globs,
        code: compiler.code,
        spans: compiler.spans,
        rules,
        has_deny: heads.iter().any(|h| h.effect == Effect::Deny),
        heads,
        tests,
        index: index.build(),
        default_ttl: policy.default_ttl,
        max_ttl: policy.max_ttl,
    })
}

#[derive(Default)]
struct Compiler {
    consts: Vec<Const>,
    // FNV, not SipHash: keys come from the policy, and hashing was a
    // tenth of compile time.
    const_ids: FnvMap<Const, ConstId>,
    globs: Vec<Glob>,
    glob_ids: FnvMap<Box<str>, GlobId>,
    /// The key of the glob being looked up, reused: most patterns are
    /// found, and a found pattern then allocates nothing.
    glob_key: String,
    /// States the checker should have ruled out, met while compiling: each
    /// refuses the policy with an internal error (G0001), never a silent
    /// change of meaning.
    internal: Vec<Diagnostic>,
    code: Vec<Op>,
    spans: Vec<Span>,
    depth: usize,
    max_depth: usize,
    cost: u32,
}

/// A comparison side: a constant value, an attribute's slot, or a condition
/// whose code has been emitted and whose truth value is on the stack
/// (`(a and b) == c`).
enum Side {
    Value(Value),
    Slot(SlotId),
    Stack,
}

impl Compiler {
    fn emit(&mut self, op: Op, span: Span) -> usize {
        // Track the stack effect, for the depth bound: a test pops its
        // `Top` operands and pushes its result.
        let popped = |operands: &[Operand]| operands.iter().filter(|o| **o == Operand::Top).count();
        match op {
            Op::Compare { lhs, rhs, .. } | Op::CompareSet { lhs, rhs, .. } => {
                self.depth = self.depth.saturating_sub(popped(&[lhs, rhs])) + 1;
            }
            Op::InList {
                needle: operand, ..
            }
            | Op::InSet {
                needle: operand, ..
            }
            | Op::Matches {
                subject: operand, ..
            } => {
                self.depth = self.depth.saturating_sub(popped(&[operand])) + 1;
            }
            Op::Push(_) | Op::LoadBool(_) => self.depth += 1,
            Op::And | Op::Or => self.depth = self.depth.saturating_sub(1),
            Op::Not | Op::JumpIfFalse(_) | Op::JumpIfTrue(_) => {}
        }
        self.max_depth = self.max_depth.max(self.depth);
        self.cost += 1;
        self.code.push(op);
        self.spans.push(span);
        self.code.len() - 1
    }

    fn constant(&mut self, value: Const) -> ConstId {
        if let Some(id) = self.const_ids.get(&value) {
            return *id;
        }
        let id = ConstId(self.consts.len() as u32);
        self.const_ids.insert(value.clone(), id);
        self.consts.push(value);
        id
    }

    fn glob(&mut self, glob: Glob) -> GlobId {
        glob_key(&glob, &mut self.glob_key);
        if let Some(id) = self.glob_ids.get(self.glob_key.as_str()) {
            return *id;
        }
        let id = GlobId(self.globs.len() as u32);
        self.globs.push(glob);
        self.glob_ids.insert(self.glob_key.as_str().into(), id);
        id
    }

    fn expr(&mut self, expr: &Expr) {
        let span = expr.span;
        match &expr.kind {
            ExprKind::Const(Value::Bool(b)) => {
                self.emit(Op::Push(Tri::from_bool(*b)), span);
            }
            // The checker types conditions as bool: other constants cannot stand here.
            ExprKind::Const(_) => {
                self.emit(Op::Push(Tri::Unknown), span);
            }
            ExprKind::Attr(id) => {
                self.emit(Op::LoadBool(SlotId(id.0)), span);
            }
            ExprKind::Not(inner) => {
                self.expr(inner);
                self.emit(Op::Not, span);
            }
            ExprKind::And(operands) => self.junction(operands, true, span),
            ExprKind::Or(operands) => self.junction(operands, false, span),
            ExprKind::Compare {
                op,
                lhs,
                rhs,
                operand_type,
            } => self.compare(*op, lhs, rhs, *operand_type, span),
            ExprKind::InList { needle, list } => match self.side(needle) {
                Side::Value(value) => {
                    let found = list.contains(&value);
                    self.emit(Op::Push(Tri::from_bool(found)), span);
                }
                side => {
                    let needle = self.operand_of(side);
                    let list_const = Const::Set(list.iter().map(to_const).collect());
                    let list = self.constant(list_const);
                    self.cost += log2_ceil(self.list_len(list));
                    self.emit(Op::InList { needle, list }, span);
                }
            },
            ExprKind::InSet { needle, set } => {
                // Set-typed expressions are attributes (checker): no code.
                let ExprKind::Attr(set) = set.kind else {
                    self.internal.push(Diagnostic::new(
                        Code::Internal,
                        span,
                        "internal error: the set of this `in` is not an attribute, which the checker should have refused; the policy is not used (please report it)",
                    ));
                    self.emit(Op::Push(Tri::Unknown), span);
                    return;
                };
                let needle = self.operand(needle);
                self.emit(
                    Op::InSet {
                        needle,
                        set: SlotId(set.0),
                    },
                    span,
                );
            }
            ExprKind::Matches { subject, glob } => {
                let compiled = Glob::new(glob);
                match self.side(subject) {
                    Side::Value(Value::String(s)) => {
                        self.emit(Op::Push(Tri::from_bool(compiled.matches(&s))), span);
                    }
                    side => {
                        self.cost += compiled.literal_len() as u32 / 16;
                        let subject = self.operand_of(side);
                        let glob = self.glob(compiled);
                        self.emit(Op::Matches { subject, glob }, span);
                    }
                }
            }
        }
    }

    fn list_len(&self, list: ConstId) -> usize {
        match self.consts.get(list.0 as usize) {
            Some(Const::Set(items)) => items.len(),
            _ => 0,
        }
    }

    /// `a and b and c`: after each operand but the last, a jump to the end
    /// when the result is already decided.
    fn junction(&mut self, operands: &[Expr], is_and: bool, span: Span) {
        let mut jumps = Vec::new();
        for (i, operand) in operands.iter().enumerate() {
            self.expr(operand);
            if i > 0 {
                self.emit(if is_and { Op::And } else { Op::Or }, span);
            }
            if i + 1 < operands.len() {
                let jump = if is_and {
                    Op::JumpIfFalse(0)
                } else {
                    Op::JumpIfTrue(0)
                };
                jumps.push(self.emit(jump, span));
            }
        }
        let end = self.code.len() as u32;
        for at in jumps {
            if let Some(op) = self.code.get_mut(at) {
                *op = match op {
                    Op::JumpIfFalse(_) => Op::JumpIfFalse(end),
                    _ => Op::JumpIfTrue(end),
                };
            }
        }
    }

    fn compare(&mut self, op: CompareOp, lhs: &Expr, rhs: &Expr, ty: Type, span: Span) {
        let (l, r) = (self.side(lhs), self.side(rhs));
        if let (Side::Value(a), Side::Value(b)) = (&l, &r) {
            self.emit(Op::Push(Tri::from_bool(fold(op, a, b))), span);
            return;
        }
        let (lhs, rhs) = (self.operand_of(l), self.operand_of(r));
        match ty {
            Type::Scalar(scalar) => self.emit(
                Op::Compare {
                    kind: Kind::of(scalar),
                    op,
                    lhs,
                    rhs,
                },
                span,
            ),
            Type::Set(_) => self.emit(Op::CompareSet { op, lhs, rhs }, span),
        };
    }

    /// Emits the code of a side that is itself a condition (a `bool`
    /// operand such as `(a and b)`), which then leaves its value on the stack.
    fn side(&mut self, expr: &Expr) -> Side {
        match &expr.kind {
            ExprKind::Attr(id) => Side::Slot(SlotId(id.0)),
            ExprKind::Const(value) => Side::Value(value.clone()),
            _ => {
                self.expr(expr);
                Side::Stack
            }
        }
    }

    fn operand(&mut self, expr: &Expr) -> Operand {
        let side = self.side(expr);
        self.operand_of(side)
    }

    fn operand_of(&mut self, side: Side) -> Operand {
        match side {
            Side::Slot(slot) => Operand::Slot(slot),
            Side::Value(value) => Operand::Const(self.constant(to_const(&value))),
            Side::Stack => Operand::Top,
        }
    }
}

/// Whether `attr` occurs in `expr`. Recursion is bounded by the checker's
/// nesting limit.
fn reads(expr: &Expr, attr: AttrId) -> bool {
    match &expr.kind {
        ExprKind::Attr(id) => *id == attr,
        ExprKind::Const(_) => false,
        ExprKind::Not(inner) => reads(inner, attr),
        ExprKind::And(operands) | ExprKind::Or(operands) => {
            operands.iter().any(|operand| reads(operand, attr))
        }
        ExprKind::Compare { lhs, rhs, .. } => reads(lhs, attr) || reads(rhs, attr),
        ExprKind::InList { needle, .. } => reads(needle, attr),
        ExprKind::InSet { needle, set } => reads(needle, attr) || reads(set, attr),
        ExprKind::Matches { subject, .. } => reads(subject, attr),
    }
}

fn to_const(value: &Value) -> Const {
    match value {
        Value::Bool(b) => Const::Bool(*b),
        Value::Int(i) => Const::Int(*i),
        Value::String(s) => Const::Str(s.as_str().into()),
        Value::Duration(d) => Const::Duration(*d),
        Value::Enum(e) => Const::Enum(*e),
        Value::Set(items) => Const::Set(items.iter().map(to_const).collect()),
    }
}

/// A comparison of two constants, decided at compile time.
fn fold(op: CompareOp, a: &Value, b: &Value) -> bool {
    op.holds(a.cmp(b))
}

fn log2_ceil(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// Identical globs have one key: `=text` without a `*`, else
/// `*prefix*middle...*suffix`.
fn glob_key(glob: &Glob, key: &mut String) {
    key.clear();
    if !glob.has_star {
        key.push('=');
        key.push_str(&glob.prefix);
        return;
    }
    key.push('*');
    key.push_str(&glob.prefix);
    for piece in glob.middle.iter() {
        key.push('*');
        key.push_str(piece);
    }
    key.push('*');
    key.push_str(&glob.suffix);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use grant_check::ir::{Expr, ExprKind, Value};
    use grant_syntax::{Code, SourceMap};

    /// A rule reads `ledger.degraded` when the attribute occurs anywhere in
    /// its condition, whatever the expression around it; a rule without a
    /// condition, or in a policy that does not declare it, does not.
    #[test]
    fn rules_that_read_ledger_degraded_are_marked() {
        let reading = [
            "ledger.degraded",
            "not ledger.degraded",
            "n > 1 and (ledger.degraded or n < 0)",
            "ledger.degraded == false",
            "(n > 1) == ledger.degraded",
            "ledger.degraded in [true]",
            "ledger.degraded in flags",
            "false and ledger.degraded",
        ];
        let other = ["n > 1", "flag", "\"x\" in tags", "true"];
        let mut text = String::from(
            "attr n: int\nattr flag: bool\nattr tags: set<string>\nattr flags: set<bool>\nattr ledger.degraded: bool\n",
        );
        for condition in reading.iter().chain(&other) {
            text.push_str(&format!("allow tool \"t\" when {condition} ttl 1m\n"));
        }
        text.push_str("allow tool \"t\" ttl 1m\ndeny tool \"t\" when ledger.degraded\n");
        let mut sources = SourceMap::new();
        sources.add("p.grant", text);
        let program = crate::build(&sources).program.unwrap();
        let marked: Vec<bool> = program.rules.iter().map(|r| r.reads_degraded).collect();
        let mut expected = vec![true; reading.len()];
        expected.extend([false; 4]);
        expected.extend([false, true]);
        assert_eq!(marked, expected);

        // Undeclared, it is read by no rule.
        let mut sources = SourceMap::new();
        sources.add(
            "p.grant",
            "attr degraded: bool\nallow tool \"t\" when degraded ttl 1m\n",
        );
        let program = crate::build(&sources).program.unwrap();
        assert!(!program.rules[0].reads_degraded);
    }

    /// A state the checker rules out, forced into a checked policy: the
    /// compiler refuses the policy with an internal error instead of
    /// compiling a condition of another meaning.
    #[test]
    fn a_state_the_checker_rules_out_is_an_internal_error() {
        let mut sources = SourceMap::new();
        sources.add(
            "p.grant",
            "attr tags: set<string>\nattr tag: string\ndeny tool \"t\" when tag in tags\n",
        );
        let mut checked = grant_check::check(&sources);
        assert!(!checked.has_errors());
        assert!(super::compile(&checked.policy).is_ok());
        let Some(Expr {
            kind: ExprKind::InSet { set, .. },
            ..
        }) = checked.policy.rules[0].condition.as_mut()
        else {
            panic!("the condition is `in` a set attribute");
        };
        set.kind = ExprKind::Const(Value::Set(Vec::new()));
        let errors = super::compile(&checked.policy).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, Code::Internal);
        assert!(errors[0].message.starts_with("internal error:"));
    }
}
