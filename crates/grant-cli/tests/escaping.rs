//! Text a request or a test file supplies reaches human output escaped:
//! a tool name, attribute paths and values with ESC, CR and U+202E (RIGHT-
//! TO-LEFT OVERRIDE) can neither drive the terminal nor reorder what the
//! reader sees. Machine outputs (JSON, JUnit) keep the exact text, under
//! their own escaping.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};

use grant_cli::Exit;
use grant_syntax::chars::needs_escape;
use serde_json::Value;
use support::grant;

const POLICY: &str = "\
type env = dev | prod
attr env: env
attr agent.workload: string
allow tool \"db*\" when agent.workload matches \"spiffe://*\" ttl 5m
deny tool \"db*\" when env == prod
";

/// The tool name of every request here: ESC `[2J` clears a terminal.
const TOOL: &str = "db\u{1b}[2J.read";
const TOOL_SHOWN: &str = "db\\u{1b}[2J.read";

/// Requests as NDJSON (JSON escapes for the control characters): one that
/// is evaluated, with a value holding ESC, CR and U+202E; one with an
/// attribute path holding them; one with an enum value holding them.
const REQUESTS: &str = concat!(
    r#"{"tool": "db\u001b[2J.read", "attrs": {"env": "dev", "agent": {"workload": "spiffe://x\u001b[31m\r"#,
    "\u{202e}",
    r#""}}}"#,
    "\n",
    r#"{"tool": "db\u001b[2J.read", "attrs": {"agent\u001b[2J"#,
    "\u{202e}",
    r#"": {"x\r": "v"}}}"#,
    "\n",
    r#"{"tool": "db\u001b[2J.read", "attrs": {"env": "prod\u001b[31m\r"#,
    "\u{202e}",
    r#""}}"#,
    "\n",
);

fn scratch(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("escaping")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Fails, showing where, if `text` holds a character a terminal would
/// interpret or that would hide text (line ends aside).
fn assert_printable(what: &str, text: &str) {
    for (i, c) in text.char_indices() {
        if c != '\n' && needs_escape(c) {
            let line = text[..i].rsplit('\n').next().unwrap_or("");
            panic!("{what}: raw U+{:04X} at byte {i}, after {line:?}", c as u32);
        }
    }
}

#[test]
fn explain_shows_request_text_escaped() {
    let dir = scratch(
        "explain",
        &[("policy.grant", POLICY), ("requests.jsonl", REQUESTS)],
    );
    let policy = dir.join("policy.grant");
    let requests = dir.join("requests.jsonl");
    let run = grant(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
        "--explain",
        "--color",
        "always",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_printable("stderr", &run.stderr);
    // Colour is the one escape sequence allowed: Grant's own. Take it out,
    // and nothing else may remain.
    let plain = run
        .stdout
        .replace("\u{1b}[0m", "")
        .replace("\u{1b}[1;31m", "")
        .replace("\u{1b}[1;32m", "")
        .replace("\u{1b}[33m", "")
        .replace("\u{1b}[1m", "")
        .replace("\u{1b}[2m", "");
    assert_printable("stdout", &plain);
    // Shown, escaped: the tool, the value read, the path and the enum value
    // the errors quote.
    assert!(
        plain.contains(&format!("tool      {TOOL_SHOWN}\n")),
        "{plain}"
    );
    assert!(
        plain.contains(&format!("match `{TOOL_SHOWN}` (1 deny, 1 allow)")),
        "{plain}"
    );
    for shown in [
        // The value as JSON writes it (ESC and CR escaped), U+202E too.
        r#"given    agent.workload = "spiffe://x\u001b[31m\r\u{202e}""#,
        r"agent\u{1b}[2J\u{202e}",
        r"prod\u{1b}[31m",
    ] {
        assert!(plain.contains(shown), "{shown} in:\n{plain}");
    }

    // The same request from a file, explained.
    std::fs::write(dir.join("one.json"), REQUESTS.lines().next().unwrap()).unwrap();
    let one = dir.join("one.json");
    let run = grant(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--request",
        one.to_str().unwrap(),
        "--explain",
        "--color",
        "never",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_printable("stdout", &run.stdout);
    assert!(run.stdout.contains(TOOL_SHOWN), "{}", run.stdout);
}

/// JSON decisions are for machines, but their messages are for the people
/// who read logs: request text in them is quoted escaped (and cut short),
/// never raw, and JSON's own escaping adds nothing raw either.
#[test]
fn json_decisions_quote_request_text_escaped() {
    let dir = scratch(
        "json",
        &[("policy.grant", POLICY), ("requests.jsonl", REQUESTS)],
    );
    let run = grant(&[
        "eval",
        "--policy",
        dir.join("policy.grant").to_str().unwrap(),
        "--requests",
        dir.join("requests.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let decisions: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errors = decisions[1]["errors"][0].as_str().unwrap();
    assert!(errors.contains("agent\\u{1b}[2J\\u{202e}"), "{errors:?}");
    assert!(!run.stdout.contains('\u{1b}'), "JSON escapes ESC itself");
}

const TESTS: &str = r#"
[[case]]
name = "a name that clears the screen \u001B[2J and turns \u202E"
tool = "db\u001B[2J.read"
attrs = { env = "dev", agent = { workload = "spiffe://x\u001B[31m\r\u202E" } }
expect.effect = "deny"
expect.rules = ["no\u001B[2J"]

[[case]]
name = "a path that clears the screen"
tool = "db\u001B[2J.read"
attrs = { "agent\u001B[2J\u202E" = { "x\r" = "v" } }
expect.effect = "allow"
"#;

#[test]
fn test_failures_show_request_text_escaped() {
    let dir = scratch(
        "test",
        &[("policy.grant", POLICY), ("policy.test.toml", TESTS)],
    );
    let policy = dir.join("policy.grant");
    let run = grant(&["test", policy.to_str().unwrap(), "--color", "never"]);
    assert_eq!(run.exit, Exit::TestFailed, "{}{}", run.stdout, run.stderr);
    assert_printable("stdout", &run.stdout);
    assert_printable("stderr", &run.stderr);
    assert!(
        run.stdout
            .contains(r"FAIL  a name that clears the screen \u{1b}[2J and turns \u{202e}"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(r"no\u{1b}[2J"), "{}", run.stdout);
    assert!(
        run.stdout.contains(r"agent\u{1b}[2J\u{202e}"),
        "{}",
        run.stdout
    );
    // The table stays aligned on the escaped text: `actual` heads the
    // column of actual values, after the escaped expected rule.
    let lines: Vec<&str> = run.stdout.lines().collect();
    let header = lines.iter().find(|l| l.contains("expected")).unwrap();
    let column = header.find("actual").unwrap();
    let rules = lines.iter().find(|l| l.contains(r"no\u{1b}[2J")).unwrap();
    assert_eq!(
        &rules[column..column + 14],
        "policy.grant:4",
        "{}",
        run.stdout
    );

    // JSON keeps the exact names and errors.
    let run = grant(&["test", policy.to_str().unwrap(), "--format", "json"]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let case = &report["policies"][0]["cases"][0];
    assert_eq!(
        case["name"],
        "a name that clears the screen \u{1b}[2J and turns \u{202e}"
    );
    assert_eq!(case["request"]["tool"], TOOL);
}

/// A malformed test file's error quotes the file: escaped too, with the
/// underline under the escaped text (U+202E shown as `\u{202e}`, the ESC
/// the key decodes to as `\u{1b}`).
#[test]
fn test_file_errors_show_the_file_escaped() {
    let dir = scratch(
        "test-file",
        &[
            ("policy.grant", POLICY),
            (
                "policy.test.toml",
                // TOML takes U+202E raw in a string, ESC only escaped.
                "[[case]]\nname = \"n\"\ntool = \"x\"\n\"\\u001B[2J\u{202e}\" = 1\nexpect.effect = \"deny\"\n",
            ),
        ],
    );
    let run = grant(&["test", dir.join("policy.grant").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Usage);
    assert_printable("stderr", &run.stderr);
    let stderr = run.stderr.replace(&dir.display().to_string(), "<dir>");
    insta::assert_snapshot!(stderr, @r#"
    error: unknown key `\u{1b}[2J\u{202e}` in a case
     --> <dir>/policy.test.toml:4:1
      |
    4 | "\u001B[2J\u{202e}" = 1
      | ^^^^^^^^^^^^^^^^^^^
      = help: a case takes `name`, `tool`, `ttl`, `attrs` and `expect`
    "#);
}
