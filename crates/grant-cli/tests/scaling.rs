//! Scaling: every command must be linear or n·log n in its input. Each
//! family of inputs below is run at size n and 8n by the built `grant`
//! binary under valgrind (cachegrind, no cache simulation), which counts
//! the instructions it executes: a count, not a time, so that a shared,
//! noisy machine cannot make the test flaky. The work of a run is its count
//! minus that of a baseline run of the same command on the family's trivial
//! input (size 0), which removes start-up and fixed costs; the test asserts
//!
//! ```text
//! (I(8n) - I(base)) / (I(n) - I(base)) < 16
//! ```
//!
//! Linear work gives 8, n·log n a little more, quadratic 64.
//!
//! To add a family (the diagnostic renderer's, say), add a row to
//! [`FAMILIES`]: a name, n, and a function from a size to the command and
//! the files it reads, written by the test into a temporary directory that
//! is the command's working directory. [`work`] measures any command.
//!
//! `GRANT_SCALING_BIN=path` measures another `grant` binary (an older
//! build, to show that a family catches a bug), `GRANT_SCALING_ONLY=name`
//! runs the families whose name contains `name`, `GRANT_SCALING_N=k` runs
//! them at n = k instead (an old, quadratic build at the usual n can take
//! hours under valgrind), and `--nocapture` shows the counts.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most that 8 times the input may multiply the work by.
const MAX_RATIO: f64 = 16.0;

/// The least marginal work at size n, as a multiple of the baseline's
/// count: with a smaller n, the ratio would measure start-up and fixed
/// costs more than the family.
const MIN_SIGNAL: f64 = 1.0;

/// A command and the files it reads (names relative to its directory).
struct Input {
    args: Vec<String>,
    files: Vec<(String, String)>,
}

impl Input {
    fn new(args: &[&str]) -> Input {
        Input {
            args: args.iter().map(|a| a.to_string()).collect(),
            files: Vec::new(),
        }
    }

    fn file(mut self, name: &str, text: String) -> Input {
        self.files.push((name.to_string(), text));
        self
    }
}

struct Family {
    name: &'static str,
    /// What it guards against (for the failure message).
    why: &'static str,
    n: usize,
    /// The input at a size; size 0 is the baseline.
    input: fn(usize) -> Input,
}

const FAMILIES: &[Family] = &[
    // Item 6: the checker and its lints.
    Family {
        name: "check: rules with errors",
        why: "errors were counted by rescanning every diagnostic per rule",
        n: 500,
        input: rules_with_errors,
    },
    Family {
        name: "check: allows and glob denies (G0903)",
        why: "every allow was compared with every glob deny",
        n: 100,
        input: allows_and_denies,
    },
    Family {
        name: "check: constant `matches` on a long literal (G0905)",
        why: "constant `matches` was folded by a backtracking matcher",
        n: 8_000,
        input: constant_matches,
    },
    Family {
        name: "eval: enum variants in literals and requests",
        why: "variants were found by a linear scan",
        n: 80,
        input: enum_variants,
    },
    Family {
        name: "eval: a long attribute path",
        why: "every prefix of every attribute path was hashed and kept",
        n: 300,
        input: long_attribute_path,
    },
    Family {
        name: "check: unknown names among many declared (did you mean)",
        why: "every unknown name was compared with every declared one",
        n: 100,
        input: unknown_names,
    },
    // Item 5: the diagnostic renderer.
    Family {
        name: "check: many errors on one long line (human)",
        why: "each diagnostic printed its whole source line",
        n: 2_000,
        input: errors_on_one_long_line,
    },
    Family {
        name: "check: labels far apart (human)",
        why: "a diagnostic's rendering walked every line between its labels",
        n: 1_000,
        input: labels_far_apart,
    },
    Family {
        name: "check: errors on a long non-ASCII line (json)",
        why: "each column was counted from the start of its line",
        n: 1_000,
        input: errors_on_a_long_non_ascii_line,
    },
    // Item 7: request-driven cost.
    Family {
        name: "eval: tools near the limit against `*x*` globs",
        why: "every `*x*` glob was tried against every tool",
        n: 8,
        input: tools_against_infix_globs,
    },
    Family {
        name: "eval: long strings against `matches` globs",
        why: "matching a string value must be linear in it",
        n: 4_000,
        input: long_strings_against_matches,
    },
    Family {
        name: "eval: large sets",
        why: "set values are sorted, searched and compared",
        n: 500,
        input: large_sets,
    },
    Family {
        name: "eval: tools over the limit",
        why: "an oversized tool was matched against every glob",
        n: 4,
        input: tools_over_the_limit,
    },
    Family {
        name: "eval: strings over the limit",
        why: "an oversized string was matched by every rule",
        n: 2,
        input: strings_over_the_limit,
    },
    Family {
        name: "eval: a set over the limit",
        why: "an oversized set is refused while read",
        n: 10_500,
        input: set_over_the_limit,
    },
    Family {
        name: "eval: request JSON over the limit",
        why: "oversized JSON is refused unparsed, and read no further than the limit",
        n: 200_000,
        input: json_over_the_limit,
    },
];

// ---------------------------------------------------------------- families

/// `grant eval --policy policy.grant --requests requests.jsonl`.
fn eval_requests(policy: String, requests: String) -> Input {
    Input::new(&[
        "eval",
        "--policy",
        "policy.grant",
        "--requests",
        "requests.jsonl",
    ])
    .file("policy.grant", policy)
    .file("requests.jsonl", requests)
}

/// `n` rules, each with an error: the cheapest there is to parse and to
/// print (a ttl on a deny rule, printed as a GitHub annotation), so that
/// counting errors shows against the rest.
fn rules_with_errors(n: usize) -> Input {
    let mut policy = String::from("allow tool \"t\" ttl 5m\n");
    for i in 0..n {
        writeln!(policy, "deny tool \"t{i}\" ttl 1s").unwrap();
    }
    Input::new(&["check", "--format", "github", "policy.grant"]).file("policy.grant", policy)
}

/// `n` declared attributes and `n` rules each naming a near miss of one:
/// "did you mean" looks for the closest declared name.
fn unknown_names(n: usize) -> Input {
    let mut policy = String::new();
    for i in 0..n {
        writeln!(policy, "attr name_{i:05}: bool").unwrap();
        writeln!(policy, "deny tool \"t{i}\" when nmae_{i:05}").unwrap();
    }
    Input::new(&["check", "--format", "json", "policy.grant"]).file("policy.grant", policy)
}

/// One line with `n` unknown names: `n` diagnostics on a line of `6n`
/// bytes, rendered for people.
fn errors_on_one_long_line(n: usize) -> Input {
    let policy = format!("deny tool \"t\" when {}q\n", "q and ".repeat(n));
    Input::new(&["check", "--color", "never", "policy.grant"]).file("policy.grant", policy)
}

/// A type declared on line 1 and again `n` times after `n` lines of
/// comments: `n` diagnostics whose two labels are `n` lines apart.
fn labels_far_apart(n: usize) -> Input {
    let mut policy = String::from("type env = dev | prod\n");
    policy.push_str(&"# filler\n".repeat(n));
    policy.push_str(&"type env = a | b\n".repeat(n));
    Input::new(&["check", "--color", "never", "policy.grant"]).file("policy.grant", policy)
}

/// `n` unknown names after `40n` characters of non-ASCII text, all on one
/// line: every diagnostic's column is counted in characters.
fn errors_on_a_long_non_ascii_line(n: usize) -> Input {
    let policy = format!(
        "deny tool \"{}\" when {}q\n",
        "数据".repeat(20 * n),
        "q and ".repeat(n)
    );
    Input::new(&["check", "--format", "json", "policy.grant"]).file("policy.grant", policy)
}

/// `n` allow rules and `n` deny rules with prefix, suffix and infix globs,
/// a third of the allows covered by a deny.
fn allows_and_denies(n: usize) -> Input {
    let mut policy = String::new();
    for i in 0..n {
        match i % 3 {
            0 => writeln!(policy, "deny tool \"pre{i}.*\"").unwrap(),
            1 => writeln!(policy, "deny tool \"*.suf{i}\"").unwrap(),
            _ => writeln!(policy, "deny tool \"*mid{i}x*\"").unwrap(),
        }
        let allow = match i % 6 {
            0 => format!("pre{i}.read"),
            1 => format!("db.suf{i}"),
            2 => format!("a.mid{i}x.b"),
            _ => format!("svc{i}.op"),
        };
        writeln!(policy, "allow tool \"{allow}\" ttl 5m").unwrap();
    }
    Input::new(&["check", "--format", "json", "policy.grant"]).file("policy.grant", policy)
}

/// A constant `"aaa…" matches "*aaa…b*"`: a backtracking matcher retries
/// the long piece at every position.
fn constant_matches(n: usize) -> Input {
    let policy = format!(
        "allow tool \"t\" when \"{}\" matches \"*{}b*\" ttl 5m\n",
        "a".repeat(n),
        "a".repeat(n / 2)
    );
    Input::new(&["check", "--format", "json", "policy.grant"]).file("policy.grant", policy)
}

/// An enum of `8n` variants (so that looking one up costs by its
/// position), `n` rules comparing with one each, `n` requests giving one.
fn enum_variants(n: usize) -> Input {
    let variants: Vec<String> = (0..8 * n).map(|i| format!("v{i}")).collect();
    let mut policy = format!("type big = {}\nattr x: big\n", variants.join(" | "));
    if n == 0 {
        policy = String::from("type big = v\nattr x: big\nallow tool \"t\" when x == v ttl 5m\n");
    }
    let mut requests = String::new();
    for i in 0..n {
        let last = 8 * n - 1 - i;
        writeln!(policy, "allow tool \"t{i}\" when x == v{last} ttl 5m").unwrap();
        writeln!(
            requests,
            "{{\"tool\": \"t{i}\", \"attrs\": {{\"x\": \"v{last}\"}}}}"
        )
        .unwrap();
    }
    eval_requests(policy, requests)
}

/// One attribute whose path has `n` segments, and a request naming it.
fn long_attribute_path(n: usize) -> Input {
    let path: Vec<String> = (0..n.max(1)).map(|i| format!("s{i}")).collect();
    let path = path.join(".");
    let policy = format!("attr {path}: bool\nallow tool \"t\" when {path} ttl 5m\n");
    let request = format!("{{\"tool\": \"t\", \"attrs\": {{\"{path}\": true}}}}\n");
    eval_requests(policy, request)
}

/// Text of `len` bytes without the letters `x`, `q` or `z`.
fn filler(len: usize) -> String {
    "abcdefghijklmnop".chars().cycle().take(len).collect()
}

/// `4n` rules with `*x…*` globs, and `4n` requests whose tools (near the
/// 4 KiB limit) each hold one glob's piece.
fn tools_against_infix_globs(n: usize) -> Input {
    let mut policy = String::from("allow tool \"t\" ttl 5m\n");
    let mut requests = String::from("{\"tool\": \"t\"}\n");
    for i in 0..4 * n {
        writeln!(policy, "allow tool \"*x{i}z*\" ttl 5m").unwrap();
        let tool = format!("{}x{i}z{}", filler(2000), filler(2000));
        writeln!(requests, "{{\"tool\": \"{tool}\"}}").unwrap();
    }
    eval_requests(policy, requests)
}

/// Forty requests with string values of `n` bytes against `matches` globs.
fn long_strings_against_matches(n: usize) -> Input {
    let policy = "attr name: string\n\
        allow tool \"t\" when name matches \"*ab*cd*ef*\" ttl 5m\n\
        allow tool \"t\" when name matches \"*q*\" ttl 5m\n\
        deny tool \"t\" when name matches \"abc*mnop\"\n"
        .to_string();
    let mut requests = String::new();
    for _ in 0..40 {
        writeln!(
            requests,
            "{{\"tool\": \"t\", \"attrs\": {{\"name\": \"{}\"}}}}",
            filler(n)
        )
        .unwrap();
    }
    eval_requests(policy, requests)
}

/// Five requests with sets of `n` strings, tested for membership and
/// equality.
fn large_sets(n: usize) -> Input {
    let policy = "attr labels: set<string>\n\
        allow tool \"t\" when \"l7\" in labels and \"zz\" in labels ttl 5m\n\
        deny tool \"t\" when labels == [\"a\", \"b\"]\n"
        .to_string();
    let elements: Vec<String> = (0..n).rev().map(|i| format!("\"l{i}\"")).collect();
    let mut requests = String::new();
    for _ in 0..5 {
        writeln!(
            requests,
            "{{\"tool\": \"t\", \"attrs\": {{\"labels\": [{}]}}}}",
            elements.join(",")
        )
        .unwrap();
    }
    eval_requests(policy, requests)
}

/// `4n` `*x…*` globs and `4n` requests whose tools are over the limit.
fn tools_over_the_limit(n: usize) -> Input {
    let mut policy = String::from("allow tool \"t\" ttl 5m\n");
    let mut requests = String::from("{\"tool\": \"t\"}\n");
    for i in 0..4 * n {
        writeln!(policy, "allow tool \"*x{i}z*\" ttl 5m").unwrap();
        writeln!(requests, "{{\"tool\": \"{}\"}}", filler(10_000)).unwrap();
    }
    eval_requests(policy, requests)
}

/// `4n` rules matching a string, and `4n` requests whose strings are over
/// the limit.
fn strings_over_the_limit(n: usize) -> Input {
    let mut policy =
        String::from("attr name: string\nallow tool \"t\" when name == \"x\" ttl 5m\n");
    let mut requests = String::from("{\"tool\": \"t\", \"attrs\": {\"name\": \"x\"}}\n");
    for i in 0..4 * n {
        writeln!(
            policy,
            "allow tool \"t\" when name matches \"*q{i}z*\" ttl 5m"
        )
        .unwrap();
        writeln!(
            requests,
            "{{\"tool\": \"t\", \"attrs\": {{\"name\": \"{}\"}}}}",
            filler(70_000)
        )
        .unwrap();
    }
    eval_requests(policy, requests)
}

/// One request with a set of `n` elements (over the limit, but for the
/// baseline).
fn set_over_the_limit(n: usize) -> Input {
    let policy = "attr labels: set<int>\nallow tool \"t\" when 7 in labels ttl 5m\n".to_string();
    let elements: Vec<String> = (0..n.max(1)).map(|i| i.to_string()).collect();
    let request = format!(
        "{{\"tool\": \"t\", \"attrs\": {{\"labels\": [{}]}}}}\n",
        elements.join(",")
    );
    eval_requests(policy, request)
}

/// A line of `8n` bytes of JSON (over the limit, but for the baseline)
/// among ordinary requests: read no further than the limit, the rest
/// counted on its way to the line's end.
fn json_over_the_limit(n: usize) -> Input {
    let policy = "allow tool \"t\" ttl 5m\n".to_string();
    let requests = format!(
        "{{\"tool\": \"t\"}}\n{{\"tool\": \"t\"{}}}\n{{\"tool\": \"t\"}}\n",
        " ".repeat(8 * n)
    );
    eval_requests(policy, requests)
}

// ---------------------------------------------------------------- harness

fn grant_binary() -> PathBuf {
    match std::env::var_os("GRANT_SCALING_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_grant")),
    }
}

fn require_valgrind() {
    let found = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "valgrind is not installed: the scaling test counts instructions with \
         valgrind's cachegrind. Install it (`apt-get install valgrind`; .ci/run \
         does) and run the test again."
    );
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one run's files.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "grant-scaling-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The instructions `grant args…` executes, with `files` written into its
/// working directory first: valgrind's count (`I refs`), deterministic
/// where a time is not.
fn work(args: &[String], files: &[(String, String)]) -> u64 {
    let dir = scratch_dir();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let count = count_instructions(&dir, args);
    std::fs::remove_dir_all(&dir).unwrap();
    count
}

fn count_instructions(dir: &Path, args: &[String]) -> u64 {
    let output = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(grant_binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // `grant` exits 0, 1 (policy errors) or 3; a crash is another story.
    assert!(
        matches!(output.status.code(), Some(0..=3)),
        "`grant {}` failed: {stderr}",
        args.join(" ")
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("I refs:") || l.contains("I   refs:"))
        .unwrap_or_else(|| panic!("no instruction count from valgrind in: {stderr}"));
    let digits: String = line
        .rsplit(':')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

struct Measured {
    base: u64,
    at_n: u64,
    at_8n: u64,
}

impl Measured {
    fn ratio(&self) -> f64 {
        let marginal = |count: u64| count.saturating_sub(self.base) as f64;
        marginal(self.at_8n) / marginal(self.at_n).max(1.0)
    }
}

fn measure(family: &Family) -> Measured {
    let run = |size: usize| {
        let input = (family.input)(size);
        work(&input.args, &input.files)
    };
    let n = std::env::var("GRANT_SCALING_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(family.n);
    Measured {
        base: run(0),
        at_n: run(n),
        at_8n: run(8 * n),
    }
}

#[test]
fn work_grows_at_most_n_log_n() {
    require_valgrind();
    let only = std::env::var("GRANT_SCALING_ONLY").unwrap_or_default();
    let families: Vec<&Family> = FAMILIES.iter().filter(|f| f.name.contains(&only)).collect();
    // Two families at a time: valgrind runs one thread each.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Measured)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(family) = families.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let measured = measure(family);
                    let index = families.iter().position(|f| f.name == family.name).unwrap();
                    results.lock().unwrap().push((index, measured));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    let mut table = String::from("family: base, work at n, work at 8n, ratio\n");
    let mut failures = Vec::new();
    for (index, measured) in &results {
        let family = families[*index];
        let ratio = measured.ratio();
        writeln!(
            table,
            "{}: {}, {}, {}, {ratio:.2}",
            family.name,
            measured.base,
            measured.at_n - measured.base.min(measured.at_n),
            measured.at_8n - measured.base.min(measured.at_8n),
        )
        .unwrap();
        let signal = measured.at_n.saturating_sub(measured.base) as f64 / measured.base as f64;
        if signal < MIN_SIGNAL {
            failures.push(format!(
                "{}: n = {} adds only {:.0}% to the baseline's work: raise n",
                family.name,
                family.n,
                signal * 100.0
            ));
        }
        if ratio >= MAX_RATIO {
            failures.push(format!(
                "{}: 8 times the input took {ratio:.1} times the work (at most {MAX_RATIO}): {}?",
                family.name, family.why
            ));
        }
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}
