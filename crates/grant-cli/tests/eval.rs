//! `grant eval` end to end: every example request, NDJSON, explanations,
//! exit codes.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::path::Path;

use grant_cli::Exit;
use serde_json::Value;
use support::{ROOT, grant, policy_hash, redact_hash, relative};

/// Every example request: its decision, snapshotted, and its effect (and
/// ttl) as its file name says: `*-allowed`, `*-denied`, `*-ttl-capped`
/// (allowed for exactly the ttl the request asks, below the rule's), or
/// `*-<N>s` (allowed for N seconds).
#[test]
fn example_requests() {
    insta::glob!("../../../examples", "*/requests/*.json", |path| {
        let example = path.parent().unwrap().parent().unwrap();
        let policy = relative(example);
        let request = relative(path);
        let run = grant(&["eval", "--policy", &policy, "--request", &request]);
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        assert_eq!(run.stderr, "");
        let decision: Value = serde_json::from_str(&run.stdout).unwrap();
        check_named_outcome(path, &policy, &decision);
        insta::assert_snapshot!(redact_hash(&run.stdout, &policy_hash(&policy)));
    });
}

fn check_named_outcome(path: &Path, policy: &str, decision: &Value) {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let effect = decision["effect"].as_str().unwrap();
    let ttl = &decision["ttl_seconds"];
    assert_eq!(decision["policy_hash"], policy_hash(policy).as_str());
    if name.ends_with("-denied") {
        assert_eq!(effect, "deny", "{name}: {decision:#}");
        assert!(ttl.is_null(), "{name}: a deny has no ttl");
        return;
    }
    assert_eq!(effect, "allow", "{name}: {decision:#}");
    assert!(decision["errors"].as_array().unwrap().is_empty());
    let granted = ttl.as_u64().unwrap();
    if name.ends_with("-allowed") {
        return;
    }
    if name.ends_with("-ttl-capped") {
        let request: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let asked = match &request["ttl"] {
            Value::String(text) => grant_syntax::parser::parse_duration(text).unwrap(),
            other => other.as_u64().unwrap(),
        };
        assert_eq!(granted, asked, "{name}: the request's ttl caps the grant");
        // ... and it really capped: every applying rule grants more.
        let engine = grant_engine::Engine::from_path(policy).unwrap();
        for rule in decision["rules"].as_array().unwrap() {
            let id = rule["id"].as_str().unwrap();
            let compiled = engine.rules().into_iter().find(|r| r.id == id);
            assert!(compiled.unwrap().ttl.unwrap() > asked, "{name}: {id}");
        }
        return;
    }
    let seconds = name
        .rsplit('-')
        .next()
        .and_then(|last| last.strip_suffix('s'))
        .and_then(|n| n.parse::<u64>().ok());
    match seconds {
        Some(seconds) => assert_eq!(granted, seconds, "{name}"),
        None => panic!("{name}: the file name does not say the expected outcome"),
    }
}

const PAYMENTS: &str = "../../examples/deploy-payments-agent";
const MIXED: &str = "tests/inputs/mixed.jsonl";

/// NDJSON: one decision line per request line, in order, carrying the
/// input line's number; blank lines get none; malformed and invalid lines
/// are denied with their errors and the run goes on.
#[test]
fn ndjson_keeps_order_and_goes_on() {
    let run = grant(&["eval", "--policy", PAYMENTS, "--requests", MIXED]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let decisions: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let summary: Vec<(&str, Vec<&str>)> = decisions
        .iter()
        .map(|d| {
            let rules = d["rules"].as_array().unwrap();
            (
                d["effect"].as_str().unwrap(),
                rules.iter().map(|r| r["id"].as_str().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("allow", vec!["deploy-read"]),
            ("deny", vec![]),
            ("deny", vec![]),
            ("deny", vec!["payments-max-one-hop"]),
            ("allow", vec!["refund-small"]),
        ]
    );
    let errors = |i: usize| decisions[i]["errors"].as_array().unwrap().len();
    assert_eq!((errors(1), errors(2)), (1, 2));
    // Each decision names its input line: line 2 is blank, and skipped.
    let lines: Vec<u64> = decisions
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 3, 4, 5, 6]);
    insta::assert_snapshot!(redact_hash(&run.stdout, &policy_hash(PAYMENTS)));
}

/// Only `--requests` numbers its decisions: a decision of `--request` is
/// the spec's shape, unchanged.
#[test]
fn a_single_request_has_no_line() {
    let request = format!("{PAYMENTS}/requests/payout-delegated-denied.json");
    let run = grant(&["eval", "--policy", PAYMENTS, "--request", &request]);
    let decision: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(decision.get("line").is_none(), "{decision:#}");
    assert_eq!(decision["effect"], "deny");
}

#[test]
fn fail_on_deny() {
    let run = grant(&[
        "eval",
        "--policy",
        PAYMENTS,
        "--requests",
        MIXED,
        "--fail-on-deny",
    ]);
    assert_eq!(run.exit, Exit::Denied);
    // Every line is still decided.
    assert_eq!(run.stdout.lines().count(), 5);
    let allowed = "tests/inputs/allowed.jsonl";
    let run = grant(&[
        "eval",
        "--policy",
        PAYMENTS,
        "--requests",
        allowed,
        "--fail-on-deny",
    ]);
    assert_eq!(run.exit, Exit::Ok);
    assert_eq!(run.stdout.lines().count(), 2);
    let denied = "../../examples/deploy-payments-agent/requests/payout-delegated-denied.json";
    let args = ["eval", "--policy", PAYMENTS, "--request", denied];
    assert_eq!(grant(&args).exit, Exit::Ok);
    let args = [&args[..], &["--fail-on-deny"]].concat();
    assert_eq!(grant(&args).exit, Exit::Denied);
}

/// A line that is not UTF-8 is denied, the next goes on; CRLF line ends and
/// a last line without one are read like any other.
#[test]
fn ndjson_line_not_utf8() {
    let input = "tests/inputs/not-utf8.jsonl";
    let run = grant(&["eval", "--policy", PAYMENTS, "--requests", input]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let decisions: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["effect"], "deny");
    assert_eq!(
        decisions[0]["errors"][0],
        "the request is not valid UTF-8 (first invalid byte at offset 53)"
    );
    assert_eq!(decisions[1]["effect"], "allow");
}

/// A malformed single request is denied like an NDJSON line: exit 0.
#[test]
fn malformed_request_file_is_denied() {
    let run = grant(&["eval", "--policy", PAYMENTS, "--request", MIXED]);
    assert_eq!(run.exit, Exit::Ok);
    let decision: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(decision["effect"], "deny");
    let error = decision["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with("malformed request JSON: trailing characters at line 3"),
        "{error}"
    );
}

fn explain(policy: &str, request: &str) -> String {
    let run = grant(&[
        "eval",
        "--policy",
        policy,
        "--request",
        request,
        "--explain",
        "--color",
        "never",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    redact_hash(&run.stdout, &policy_hash(policy))
}

#[test]
fn explain_unknown_deny_skips_allows() {
    let request = format!("{PAYMENTS}/requests/payout-no-svid-denied.json");
    insta::assert_snapshot!(explain(PAYMENTS, &request));
}

#[test]
fn explain_allow_with_requested_ttl() {
    let request = format!("{PAYMENTS}/requests/deploy-prod-high-risk-30s.json");
    insta::assert_snapshot!(explain(PAYMENTS, &request));
}

const GITHUB: &str = "../../examples/github-coding-agent";

#[test]
fn explain_default_deny() {
    let request = format!("{GITHUB}/requests/fork-repo-default-denied.json");
    insta::assert_snapshot!(explain(GITHUB, &request));
}

#[test]
fn explain_or_with_a_missing_side() {
    let request = format!("{GITHUB}/requests/read-public-file-allowed.json");
    insta::assert_snapshot!(explain(GITHUB, &request));
}

#[test]
fn explain_policy_of_two_files() {
    let policy = "../../examples/postgres-data-agent";
    let request = format!("{policy}/requests/read-unclassified-table-denied.json");
    insta::assert_snapshot!(explain(policy, &request));
}

#[test]
fn explain_ndjson_line_by_line() {
    let run = grant(&[
        "eval",
        "--policy",
        PAYMENTS,
        "--requests",
        MIXED,
        "--explain",
        "--color",
        "never",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    for line in [1, 3, 4, 5, 6] {
        let header = format!("=== {MIXED}, line {line} ===\n");
        assert!(run.stdout.contains(&header), "{header}");
    }
    assert!(
        !run.stdout.contains("line 2 ==="),
        "a blank line is skipped"
    );
    insta::assert_snapshot!(redact_hash(&run.stdout, &policy_hash(PAYMENTS)));
}

#[test]
fn explain_in_colour() {
    let request = format!("{PAYMENTS}/requests/payout-no-svid-denied.json");
    let args = [
        "eval",
        "--policy",
        PAYMENTS,
        "--request",
        &request,
        "--explain",
    ];
    let coloured = grant(&[&args[..], &["--color", "always"]].concat()).stdout;
    assert!(coloured.contains("\x1b[1;31mDENY\x1b[0m"), "{coloured}");
    let plain = grant(&[&args[..], &["--color", "never"]].concat()).stdout;
    assert!(!plain.contains('\x1b'));
}

#[test]
fn policy_with_errors_exits_1() {
    let bad = format!("{ROOT}/tests/ui/g0201_duplicate_type.grant");
    let request = format!("{GITHUB}/requests/read-public-file-allowed.json");
    let run = grant(&[
        "eval",
        "--policy",
        &bad,
        "--request",
        &request,
        "--color",
        "never",
    ]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("error[G0201]: type `env` is declared twice"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("g0201_duplicate_type.grant:3:6"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("g0201_duplicate_type.grant` has 1 error\n"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let request = format!("{GITHUB}/requests/read-public-file-allowed.json");
    // A request file that is not there.
    let run = grant(&["eval", "--policy", GITHUB, "--request", "nope.json"]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: cannot read `nope.json`: no such file or directory\n"
    );
    let run = grant(&["eval", "--policy", GITHUB, "--requests", "nope.jsonl"]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(run.stdout, "");
    // A directory is no request file.
    let run = grant(&["eval", "--policy", GITHUB, "--requests", "tests"]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr.starts_with("error: cannot read `tests`"),
        "{}",
        run.stderr
    );
    // A policy that is not there.
    let run = grant(&["eval", "--policy", "nope", "--request", &request]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        "error: cannot read `nope`: no such file or directory\n"
    );
    // Both, or neither, of --request and --requests.
    let run = grant(&[
        "eval",
        "--policy",
        GITHUB,
        "--request",
        &request,
        "--requests",
        MIXED,
    ]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    let run = grant(&["eval", "--policy", GITHUB]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr.contains("required arguments were not provided"),
        "{}",
        run.stderr
    );
    // No policy.
    let run = grant(&["eval", "--request", &request]);
    assert_eq!(run.exit, Exit::Usage);
}

#[test]
fn help_says_blank_lines_are_skipped() {
    let run = grant(&["eval", "--help"]);
    assert_eq!(run.exit, Exit::Ok);
    assert!(
        run.stdout.contains("Blank lines are skipped"),
        "{}",
        run.stdout
    );
}

/// `--explain` shows the request as the engine read it: a byte-order mark
/// opening it does not hide the tool, and `-0` is zero.
#[test]
fn explain_reads_requests_as_the_engine_does() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explain-as-read");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("policy.grant"),
        "attr depth: int\nallow tool \"db.read\" when depth <= 0 ttl 5m\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("request.json"),
        "\u{feff}{\"tool\": \"db.read\", \"attrs\": {\"depth\": -0}}",
    )
    .unwrap();
    let run = grant(&[
        "eval",
        "--policy",
        dir.join("policy.grant").to_str().unwrap(),
        "--request",
        dir.join("request.json").to_str().unwrap(),
        "--explain",
        "--color",
        "never",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(run.stdout.contains("tool      db.read\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("given    depth = 0\n"),
        "{}",
        run.stdout
    );
}

/// A request over the JSON limit is read no further than the limit, and
/// denied with its real size; the lines around it are decided as usual.
#[test]
fn requests_over_the_json_limit_are_denied_with_their_size() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("json-limit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("policy.grant"), "allow tool \"t\" ttl 5m\n").unwrap();
    let big = format!("{{\"tool\": \"t\"{}}}", " ".repeat(2 * 1024 * 1024));
    std::fs::write(dir.join("big.json"), &big).unwrap();
    std::fs::write(
        dir.join("requests.jsonl"),
        format!("{{\"tool\": \"t\"}}\r\n{big}\r\n{{\"tool\": \"t\"}}\n"),
    )
    .unwrap();
    let expected = format!(
        "the request has {} bytes of JSON, over the limit of 1048576",
        big.len()
    );
    let policy = dir.join("policy.grant");
    let run = grant(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--request",
        dir.join("big.json").to_str().unwrap(),
    ]);
    let decision: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(decision["errors"][0], expected.as_str());
    let run = grant(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--requests",
        dir.join("requests.jsonl").to_str().unwrap(),
    ]);
    let decisions: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), 3);
    assert_eq!(decisions[0]["effect"], "allow");
    assert_eq!(decisions[1]["line"], 2);
    assert_eq!(decisions[1]["errors"][0], expected.as_str());
    assert_eq!(decisions[2]["effect"], "allow");
    assert_eq!(decisions[2]["line"], 3);
}

const OBLIGATIONS: &str = "tests/inputs/obligations";

#[test]
fn explain_shows_obligations() {
    let request = format!("{OBLIGATIONS}/request.json");
    insta::assert_snapshot!(explain(OBLIGATIONS, &request));
}

/// `--explain --format json` prints the engine's `Explanation`, the JSON a
/// service returns; one compact line per request with `--requests`.
#[test]
fn explain_as_json_is_the_engines_explanation() {
    let request = format!("{OBLIGATIONS}/request.json");
    let run = grant(&[
        "eval",
        "--policy",
        OBLIGATIONS,
        "--request",
        &request,
        "--explain",
        "--format",
        "json",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let printed: grant_engine::Explanation = serde_json::from_str(&run.stdout).unwrap();
    let engine = grant_engine::Engine::from_path(OBLIGATIONS).unwrap();
    let mut typed = engine.request();
    engine.read_json(std::fs::read(&request).unwrap(), &mut typed);
    assert_eq!(printed, engine.explain(&typed));
    let obligations = printed.decision.obligations.unwrap();
    assert_eq!(obligations.uses, Some(1));
    assert_eq!(obligations.approvals, ["payments-oncall"]);

    let run = grant(&[
        "eval",
        "--policy",
        PAYMENTS,
        "--requests",
        MIXED,
        "--explain",
        "--format",
        "json",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["line"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3, 4, 5, 6]
    );
    assert!(
        lines[1]["tool"].is_null(),
        "an invalid request is not evaluated"
    );
    assert!(lines[3]["rules"].as_array().unwrap().len() > 1);

    // `--format` belongs to `--explain`.
    let run = grant(&[
        "eval",
        "--policy",
        PAYMENTS,
        "--request",
        MIXED,
        "--format",
        "json",
    ]);
    assert_eq!(run.exit, Exit::Usage);
}
