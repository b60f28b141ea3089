//! A readable listing of a [`Program`]: slots, constants, each rule's code
//! with the source line of every instruction, and the rule index. What
//! `grant inspect --bytecode` prints.

use std::fmt::Write;

use grant_check::ir::Type;
use grant_syntax::SourceMap;

use crate::program::{CompareOp, CompiledRule, Const, Op, Operand, Program};

/// The listing; `sources` gives instruction locations.
pub fn disassemble(program: &Program, sources: &SourceMap) -> String {
    let mut out = String::new();
    let _ = write_listing(&mut out, program, sources);
    out
}

fn write_listing(out: &mut String, program: &Program, sources: &SourceMap) -> std::fmt::Result {
    writeln!(out, "slots:")?;
    for (i, attr) in program.attrs.iter().enumerate() {
        writeln!(
            out,
            "  s{i:<3} {}: {}",
            attr.path,
            type_name(program, attr.ty)
        )?;
    }
    writeln!(out, "constants:")?;
    for (i, value) in program.consts.iter().enumerate() {
        writeln!(out, "  c{i:<3} {}", constant(value))?;
    }
    if !program.globs.is_empty() {
        writeln!(out, "globs:")?;
        for (i, glob) in program.globs.iter().enumerate() {
            let mut text = glob.prefix.to_string();
            if glob.has_star {
                for piece in glob.middle.iter() {
                    text.push('*');
                    text.push_str(piece);
                }
                text.push('*');
                text.push_str(&glob.suffix);
            }
            writeln!(out, "  g{i:<3} {text:?}")?;
        }
    }
    for (i, rule) in program.rules.iter().enumerate() {
        writeln!(out)?;
        write_rule(out, program, sources, i, rule)?;
    }
    writeln!(out)?;
    let index = &program.index;
    let globs = index.glob_stats();
    writeln!(
        out,
        "index: {} exact names, {} prefix globs ({} lengths), {} suffix globs ({} lengths), {} infix globs, {} `*` rules",
        index.exact.len(),
        globs.prefixed,
        globs.prefix_lengths,
        globs.suffixed,
        globs.suffix_lengths,
        globs.infix,
        index.any.len()
    )
}

fn write_rule(
    out: &mut String,
    program: &Program,
    sources: &SourceMap,
    number: usize,
    rule: &CompiledRule,
) -> std::fmt::Result {
    let patterns = rule.patterns_text();
    let ttl = rule.ttl.map(|t| format!(" ttl {t}s")).unwrap_or_default();
    let uses = rule.uses.map(|n| format!(" uses {n}")).unwrap_or_default();
    let approval = rule
        .approval
        .as_ref()
        .map(|g| format!(" approval {g:?}"))
        .unwrap_or_default();
    writeln!(
        out,
        "rule r{number} `{}` {}{ttl}{uses}{approval} tool {patterns}  (cost {}, stack {})",
        rule.id,
        rule.effect.as_str(),
        rule.cost,
        rule.max_stack
    )?;
    let code = program.code_of(rule);
    if code.is_empty() {
        writeln!(out, "  (no condition: always true)")?;
    }
    for (offset, op) in code.iter().enumerate() {
        let at = rule.code_start as usize + offset;
        let location = program
            .spans
            .get(at)
            .map(|span| sources.location(*span))
            .unwrap_or_default();
        let text = instruction(program, *op);
        writeln!(out, "  {at:04}  {text:<48} ; {location}")?;
    }
    Ok(())
}

fn instruction(program: &Program, op: Op) -> String {
    // Enum constants are ordinals shared by every enum: name them by the
    // type of the attribute they meet in this instruction.
    let attr_type = |operands: &[Operand]| {
        operands.iter().find_map(|o| match o {
            Operand::Slot(slot) => program.attr_type(*slot),
            _ => None,
        })
    };
    let context = match op {
        Op::Compare { lhs, rhs, .. } | Op::CompareSet { lhs, rhs, .. } => attr_type(&[lhs, rhs]),
        Op::InList { needle, .. } => attr_type(&[needle]),
        _ => None,
    };
    let operand = |o: Operand| match o {
        Operand::Slot(slot) => {
            let name = program
                .attrs
                .get(slot.0 as usize)
                .map_or("?", |a| a.path.as_str());
            format!("s{}({name})", slot.0)
        }
        Operand::Const(id) => {
            let value = program
                .consts
                .get(id.0 as usize)
                .map(|c| constant_in(program, c, context))
                .unwrap_or_default();
            format!("c{}({value})", id.0)
        }
        Operand::Top => "top".to_string(),
    };
    match op {
        Op::Push(tri) => format!("push {}", tri.as_str()),
        Op::LoadBool(slot) => format!("load.bool {}", operand(Operand::Slot(slot))),
        Op::Compare { kind, op, lhs, rhs } => {
            format!(
                "cmp.{}.{} {} {}",
                kind.as_str(),
                op_name(op),
                operand(lhs),
                operand(rhs)
            )
        }
        Op::CompareSet { op, lhs, rhs } => {
            format!("cmp.set.{} {} {}", op_name(op), operand(lhs), operand(rhs))
        }
        Op::InList { needle, list } => format!(
            "in.list {} {}",
            operand(needle),
            operand(Operand::Const(list))
        ),
        Op::InSet { needle, set } => {
            format!("in.set {} {}", operand(needle), operand(Operand::Slot(set)))
        }
        Op::Matches { subject, glob } => format!("matches {} g{}", operand(subject), glob.0),
        Op::Not => "not".to_string(),
        Op::And => "and".to_string(),
        Op::Or => "or".to_string(),
        Op::JumpIfFalse(target) => format!("jump.false {target:04}"),
        Op::JumpIfTrue(target) => format!("jump.true {target:04}"),
    }
}

fn constant(value: &Const) -> String {
    constant_in_type(value, &|_| None)
}

/// A constant, its enum ordinals named as variants of `ty` when known.
fn constant_in(program: &Program, value: &Const, ty: Option<Type>) -> String {
    constant_in_type(value, &|ordinal| {
        ty.and_then(|ty| program.variant_name(ty, ordinal))
            .map(str::to_string)
    })
}

fn constant_in_type(value: &Const, variant: &dyn Fn(u32) -> Option<String>) -> String {
    match value {
        Const::Bool(b) => b.to_string(),
        Const::Int(i) => i.to_string(),
        Const::Str(s) => format!("{s:?}"),
        Const::Duration(d) => format!("{d}s"),
        Const::Enum(e) => variant(*e).unwrap_or_else(|| format!("#{e}")),
        Const::Set(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|item| constant_in_type(item, variant))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn type_name(program: &Program, ty: Type) -> String {
    use grant_check::ir::Scalar;
    let scalar = |s: Scalar| match s {
        Scalar::Bool => "bool".to_string(),
        Scalar::Int => "int".to_string(),
        Scalar::String => "string".to_string(),
        Scalar::Duration => "duration".to_string(),
        Scalar::Enum(id) => program.types.get(id.0 as usize).map_or_else(
            || "?".to_string(),
            |t| {
                let separator = if t.ordered { " < " } else { " | " };
                format!("{} ({})", t.name, t.variants.join(separator))
            },
        ),
    };
    match ty {
        Type::Scalar(s) => scalar(s),
        Type::Set(s) => format!("set<{}>", scalar(s)),
    }
}

fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
    }
}
