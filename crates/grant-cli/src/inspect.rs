//! `grant inspect --bytecode PATH`: what a policy compiles to.

use std::io::Write;
use std::path::PathBuf;

use grant_syntax::chars::printable;

use crate::Exit;
use crate::output::{ColorChoice, count};
use crate::policy;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The policy: a `.grant` file, or a directory that directly holds
    /// `.grant` files (its sub-directories' files included). A directory
    /// of several policies is refused: pass one of them.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Print the compiled program: slots, constants, globs, each rule's
    /// instructions with their source locations, and the rule index (see
    /// docs/bytecode.md).
    #[arg(long, required = true)]
    bytecode: bool,
    /// Colour for the diagnostics of a policy with errors.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

pub fn run(args: &InspectArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let engine = match policy::load(&args.path, args.color, stderr) {
        Ok(engine) => engine,
        Err(exit) => return exit,
    };
    // The engine keeps its program to itself: inspect compiles the policy
    // once more, which the engine has just proved compiles. A policy is
    // small next to a listing of it, so the second build costs little.
    let built = grant_compile::build(engine.sources());
    let Some(program) = &built.program else {
        let _ = writeln!(stderr, "error: the policy did not compile a second time");
        return Exit::PolicyErrors;
    };
    let listing = grant_compile::disasm::disassemble(program, engine.sources());
    let written = writeln!(
        stdout,
        "policy {} ({}, {}): {}",
        printable(&args.path.display().to_string()),
        count(engine.sources().len(), "file", "files"),
        count(program.rules.len(), "rule", "rules"),
        engine.policy_hash()
    )
    // The listing quotes the policy (ids, annotations, patterns): escaped
    // line by line, so that its line breaks stay line breaks.
    .and_then(|()| {
        listing
            .lines()
            .try_for_each(|line| writeln!(stdout, "{}", printable(line)))
    });
    match written {
        Ok(()) => Exit::Ok,
        Err(error) => crate::output::write_failed(&error, stderr),
    }
}
