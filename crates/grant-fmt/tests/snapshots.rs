//! `grant fmt` on messy inputs: each `tests/inputs/*.grant` file and its
//! formatted text, in one snapshot. Review changes with `cargo insta review`.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

#[test]
fn inputs() {
    insta::glob!("inputs/*.grant", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let formatted = common::check_properties(&path.display().to_string(), &text);
        insta::assert_snapshot!(format!(
            "==> input <==\n{text}\n==> formatted <==\n{formatted}"
        ));
    });
}
