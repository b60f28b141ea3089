//! An explanation quotes each condition as written: its own text, comments
//! inside it included, and nothing after it (the parser's spans end at a
//! condition's last token).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use grant_engine::Engine;

const POLICY: &str = r#"attr a: string
attr b: bool
default ttl 1m

allow tool "t" when a matches "x#y" # note
# next rule

allow tool "u"
    when b
        # inside
        and a == "1"  # after
    ttl 1m

allow tool "v" when not b or not (b)   # last
"#;

fn condition(engine: &Engine, tool: &str) -> String {
    let mut request = engine.request();
    request.set_tool(tool);
    let explanation = engine.explain(&request);
    explanation.rules[0].rule.condition.clone().unwrap()
}

#[test]
fn conditions_are_quoted_without_what_follows_them() {
    let engine = Engine::from_text("policy.grant", POLICY).unwrap();
    assert_eq!(condition(&engine, "t"), r#"a matches "x#y""#);
    assert_eq!(condition(&engine, "u"), "b\n  # inside\n  and a == \"1\"");
    assert_eq!(condition(&engine, "v"), "not b or not (b)");
}

/// `Explainer::of` names a policy by its files: the one file, or the
/// deepest directory holding them all.
#[test]
fn an_explainer_names_the_policy_by_its_files() {
    let label = |files: &[&str]| {
        let mut sources = grant_engine::SourceMap::new();
        for (i, display) in files.iter().enumerate() {
            let name = format!("f{i}.grant");
            sources.add_with_display(name, *display, format!("allow tool \"t{i}\" ttl 1m\n"));
        }
        let engine = Engine::from_sources(sources).unwrap();
        let explanation = engine.explain(&engine.request());
        let text = grant_engine::Explainer::of(&engine, false).render(None, &explanation);
        let line = text
            .lines()
            .find(|l| l.starts_with("policy "))
            .unwrap()
            .to_string();
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(label(&["p/one.grant"]), "p/one.grant");
    assert_eq!(label(&["p/a.grant", "p/b.grant"]), "p");
    assert_eq!(label(&["p/sub/a.grant", "p/b.grant", "p/x/y/c.grant"]), "p");
}
