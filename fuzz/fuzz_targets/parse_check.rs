//! Raw bytes, read as text (invalid UTF-8 replaced by U+FFFD), as a one-file
//! policy: parse, check and render must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    common::parse_check_render(&text);
});
