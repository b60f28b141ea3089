//! UI tests: each `tests/ui/*.grant` file (or `tests/ui/*/` directory, a
//! multi-file policy) is checked, and the snapshot holds its source and the
//! rendered diagnostics, colour off. Review changes with `cargo insta review`.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::fmt::Write;
use std::path::Path;

use grant_syntax::{SourceMap, render};

/// Source and diagnostics of one case, with paths relative to tests/ui.
fn render_case(path: &Path) -> String {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut sources = SourceMap::load(path).unwrap();
    let relative = path.strip_prefix(&ui).unwrap().display().to_string();
    let mut relabelled = SourceMap::new();
    for (_, file) in sources.files() {
        let display = if path.is_dir() {
            format!("{relative}/{}", file.name)
        } else {
            relative.clone()
        };
        relabelled.add_with_display(file.name.clone(), display, file.text.clone());
    }
    sources = relabelled;
    let checked = grant_compile::build(&sources);
    let mut out = String::new();
    for (_, file) in sources.files() {
        writeln!(out, "==> {} <==", file.display).unwrap();
        out.push_str(&file.text);
        if !file.text.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str("\n==> diagnostics <==\n");
    if checked.diagnostics.is_empty() {
        out.push_str("(none)\n");
    } else {
        out.push_str(&render::human(&sources, &checked.diagnostics, false));
    }
    out
}

#[test]
fn ui_files() {
    insta::glob!("ui/*.grant", |path| {
        insta::assert_snapshot!(render_case(path));
    });
}

#[test]
fn ui_directories() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut dirs: Vec<_> = std::fs::read_dir(&ui)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "expected multi-file cases under tests/ui/"
    );
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("dir_{name}"), render_case(&dir));
    }
}

/// Every diagnostic code has at least one UI case that produces it.
#[test]
fn every_code_has_a_ui_case() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&ui).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() || path.extension().is_some_and(|e| e == "grant") {
            let checked = grant_compile::build(&SourceMap::load(&path).unwrap());
            seen.extend(checked.diagnostics.iter().map(|d| d.code.as_str()));
        }
    }
    // A 16 MiB file does not belong in the repository: robustness.rs covers
    // G0107. Nor do files of invisible characters, which editors mangle:
    // characters.rs builds them and covers G0108-G0110 and G0907.
    // G0001 (internal error) is a bug in Grant: no input should produce it.
    let elsewhere = ["G0001", "G0107", "G0108", "G0109", "G0110", "G0907"];
    let missing: Vec<_> = grant_syntax::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(c) && !elsewhere.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a UI case: {missing:?}");
}

/// Every diagnostic code has its entry in docs/diagnostics.md.
#[test]
fn every_code_is_documented() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md"),
    )
    .unwrap();
    let missing: Vec<_> = grant_syntax::Code::ALL
        .iter()
        .filter(|code| !docs.contains(&format!("## {}: {}", code.as_str(), code.title())))
        .map(|code| code.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a `## Gxxxx: title` entry in docs/diagnostics.md: {missing:?}"
    );
}

/// The examples of docs/diagnostics.md are what `grant check` prints: each
/// ```` ```text ```` block that directly follows a ```` ```grant ```` block
/// is that policy's diagnostics, checked as `policy.grant` and rendered with
/// colour off. In a policy, `⟨U+2028⟩` stands for that character, which a
/// page cannot show. After changing a message, regenerate the blocks with
/// `GRANT_BLESS_DOCS=1 cargo test -p grant-tests --test ui docs_examples`
/// and read the diff.
#[test]
fn docs_examples_are_the_real_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md");
    let docs = std::fs::read_to_string(&path).unwrap();
    let mut blessed = String::with_capacity(docs.len());
    let mut stale = Vec::new();
    let mut lines = docs.split_inclusive('\n').peekable();
    let mut last_policy: Option<String> = None;
    while let Some(line) = lines.next() {
        blessed.push_str(line);
        match line.trim_end() {
            "```grant" => {
                let mut policy = String::new();
                for line in lines.by_ref() {
                    blessed.push_str(line);
                    if line.trim_end() == "```" {
                        break;
                    }
                    policy.push_str(line);
                }
                last_policy = Some(policy);
            }
            "```text" => {
                let mut shown = String::new();
                for line in lines.by_ref() {
                    if line.trim_end() == "```" {
                        break;
                    }
                    shown.push_str(line);
                }
                match last_policy.take() {
                    Some(policy) => {
                        let mut sources = SourceMap::new();
                        sources.add("policy.grant", with_named_characters(&policy));
                        let checked = grant_compile::build(&sources);
                        let rendered = render::human(&sources, &checked.diagnostics, false);
                        let rendered = format!("{}\n", rendered.trim_end());
                        if rendered != shown {
                            stale.push(shown.lines().next().unwrap_or("").to_string());
                        }
                        blessed.push_str(&rendered);
                    }
                    None => blessed.push_str(&shown),
                }
                blessed.push_str("```\n");
            }
            "" => {}
            _ => last_policy = None,
        }
    }
    if std::env::var_os("GRANT_BLESS_DOCS").is_some() {
        std::fs::write(&path, blessed).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "docs/diagnostics.md examples that differ from what `grant check` prints \
         (regenerate with GRANT_BLESS_DOCS=1): {stale:#?}"
    );
}

/// `⟨U+2028⟩` replaced by the character it names.
fn with_named_characters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("⟨U+") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "⟨U+".len()..];
        let end = after.find('⟩').unwrap();
        let code = u32::from_str_radix(&after[..end], 16).unwrap();
        out.push(char::from_u32(code).unwrap());
        rest = &after[end + '⟩'.len_utf8()..];
    }
    out.push_str(rest);
    out
}
