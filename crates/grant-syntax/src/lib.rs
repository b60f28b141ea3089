//! Grant's syntax layer: policy sources, the pest grammar and its lowering to
//! an AST with spans, and the diagnostics every later layer reports.
pub mod ast;
pub mod chars;
pub mod diagnostic;
pub mod durable;
pub mod lexer;
pub mod limits;
pub mod parser;
pub mod render;
pub mod source;
pub mod span;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use source::{LoadError, SourceFile, SourceMap};
pub use span::{FileId, Span, Spanned};
