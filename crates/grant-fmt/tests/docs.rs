//! The layout examples of docs/language.md ("Formatting") are what
//! `grant fmt` makes of them.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

#[test]
fn formatting_section_examples_are_formatted() {
    let docs = std::fs::read_to_string(common::root().join("docs/language.md")).unwrap();
    let section = docs.split("\n## Formatting\n").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    let mut blocks = 0;
    for (i, chunk) in section.split("```grant\n").enumerate().skip(1) {
        let block = chunk.split("```").next().unwrap();
        // Blocks in list items are indented; take the indentation off.
        let indent = block.len() - block.trim_start_matches(' ').len();
        let block: String = block
            .lines()
            .map(|line| format!("{}\n", line.get(indent..).unwrap_or("")))
            .collect();
        let block = block.trim_end().to_string() + "\n";
        assert_eq!(
            common::check_properties(&format!("block {i}"), &block),
            block
        );
        blocks += 1;
    }
    assert!(blocks >= 4, "found {blocks} examples");
}
