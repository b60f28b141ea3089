//! Grant's syntax layer: policy sources, the lexer and the parser (an AST
//! with spans), and the diagnostics every later layer reports.
pub mod ast;
pub mod chars;
pub mod diagnostic;
pub mod durable;
pub mod lexer;
pub mod limits;
pub mod literal;
pub mod parser;
pub mod render;
pub mod source;
pub mod span;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use source::{LoadError, SourceFile, SourceMap};
pub use span::{FileId, Span, Spanned};
