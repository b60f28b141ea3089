//! What every target does with the text it builds: parse and check it as a
//! one-file policy, then render every diagnostic for people and as JSON.
//! None of this may panic, overflow the stack or hang, whatever the text.

use grant_syntax::render::{self, JsonDiagnostic};
use grant_syntax::{FileId, SourceMap, Span};

pub fn parse_check_render(text: &str) {
    let mut sources = SourceMap::new();
    sources.add("fuzz.grant", text);
    let checked = grant_check::check(&sources);

    let human = render::human(&sources, &checked.diagnostics, false);
    // ariadne's report, or the one-line fallback, for each diagnostic.
    assert!(
        checked.diagnostics.is_empty() || !human.is_empty(),
        "human rendering of {} diagnostics is empty",
        checked.diagnostics.len()
    );
    for diagnostic in &checked.diagnostics {
        // Spans point into the one file, on character boundaries: otherwise
        // line:column in the output (and ariadne's underlines) are wrong.
        assert_span_in(text, diagnostic.primary.span);
        for label in &diagnostic.secondary {
            assert_span_in(text, label.span);
        }
        let json = JsonDiagnostic::of(&sources, diagnostic);
        assert!(json.location.line >= 1 && json.location.column >= 1);
        // Serialising is what `grant check --format json` does next.
        let _ = serde_json::to_string(&json);
        let _ = render::short(&sources, diagnostic);
    }
}

fn assert_span_in(text: &str, span: Span) {
    assert_eq!(span.file, FileId(0), "span in another file: {span:?}");
    assert!(
        span.start <= span.end && text.get(span.range()).is_some(),
        "span {span:?} is not a slice of the {}-byte text",
        text.len()
    );
}
