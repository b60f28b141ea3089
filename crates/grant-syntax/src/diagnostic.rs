//! One renderer-agnostic diagnostic type for every layer, and the registry of
//! stable codes. Rendering lives in [`crate::render`]; each code has a page
//! entry in docs/diagnostics.md.

use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $severity:ident, $title:literal; )*) => {
        /// A stable diagnostic code. Codes are never reused or renumbered.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code { $( $(#[$doc])* $name, )* }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as written in output: `G0101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $code,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$name => Severity::$severity,)* }
            }

            /// A short summary, used as the SARIF rule description and docs title.
            pub fn title(self) -> &'static str {
                match self { $(Code::$name => $title,)* }
            }

            /// A stable identifier-like name, `DuplicateType`: the SARIF
            /// rule name.
            pub fn name(self) -> &'static str {
                match self { $(Code::$name => stringify!($name),)* }
            }
        }
    };
}

codes! {
    // G00xx: Grant itself.
    Internal = "G0001", Error, "internal error";
    // G01xx: lexical and syntax.
    Syntax = "G0101", Error, "syntax error";
    UnterminatedString = "G0102", Error, "unterminated string";
    InvalidEscape = "G0103", Error, "invalid escape in string";
    IntegerOutOfRange = "G0104", Error, "integer out of range";
    InvalidDuration = "G0105", Error, "invalid duration";
    NestingTooDeep = "G0106", Error, "nesting too deep";
    FileTooLarge = "G0107", Error, "file too large";
    HiddenLineBreak = "G0108", Error, "hidden line break";
    BidiControl = "G0109", Error, "bidirectional control character";
    InvisibleCharacter = "G0110", Error, "invisible or control character";
    // G02xx: declarations and names.
    DuplicateType = "G0201", Error, "type declared twice";
    DuplicateAttribute = "G0202", Error, "attribute declared twice";
    DuplicateVariant = "G0203", Error, "variant listed twice";
    UnknownType = "G0204", Error, "unknown type";
    UnknownAttribute = "G0205", Error, "undeclared attribute";
    UnknownName = "G0206", Error, "unknown name";
    AmbiguousName = "G0207", Error, "ambiguous name";
    UnknownVariant = "G0208", Error, "unknown variant";
    DuplicateRuleId = "G0209", Error, "rule id used twice";
    DuplicateSetting = "G0210", Error, "setting declared twice";
    ReservedTypeName = "G0211", Error, "reserved type name";
    NestedSet = "G0212", Error, "set of sets";
    AttributePrefix = "G0213", Error, "attribute path is a prefix of another";
    DuplicateAnnotation = "G0214", Error, "annotation given twice";
    EmptyRuleId = "G0215", Error, "empty rule id";
    UnknownLedgerAttribute = "G0216", Error, "unknown `ledger` attribute";
    LedgerAttributeType = "G0217", Error, "`ledger` attribute of another type";
    // G03xx: types.
    TypeMismatch = "G0301", Error, "type mismatch";
    NotOrdered = "G0302", Error, "type has no order";
    EmptyList = "G0303", Error, "empty list";
    InvalidMatches = "G0304", Error, "invalid `matches`";
    ListNotAllowed = "G0305", Error, "list not allowed here";
    // G04xx: rules and ttls.
    MissingTtl = "G0401", Error, "allow rule has no ttl";
    TtlAboveMax = "G0402", Error, "ttl above `max ttl`";
    DefaultAboveMax = "G0403", Error, "`default ttl` above `max ttl`";
    TtlOnDeny = "G0404", Error, "ttl on a deny rule";
    EmptyPatternList = "G0405", Error, "empty tool pattern list";
    ZeroTtl = "G0406", Error, "zero ttl";
    ObligationOnDeny = "G0407", Error, "`uses` or `approval` on a deny rule";
    UsesOutOfRange = "G0408", Error, "`uses` out of range";
    EmptyApprovalGroup = "G0409", Error, "empty approval group";
    // G05xx: limits of the compiled form.
    RuleTooCostly = "G0501", Error, "rule over the cost budget";
    // G09xx: lints (warnings).
    UnusedAttribute = "G0901", Warning, "unused attribute";
    UnusedType = "G0902", Warning, "unused type";
    OverriddenAllow = "G0903", Warning, "allow rule always overridden by a deny";
    DuplicateRule = "G0904", Warning, "duplicate rule";
    ConstantCondition = "G0905", Warning, "constant condition";
    DefaultTtlUsed = "G0906", Warning, "allow rule takes `default ttl`";
    InvisibleInString = "G0907", Warning, "invisible character in a string";
    PatternMatchesNothing = "G0908", Warning, "tool pattern matches no tool";
    TtlNotExact = "G0909", Warning, "ttl beyond 2^53 seconds";
    MalformedSkipDirective = "G0910", Warning, "malformed `grant-fmt: skip`";
}

impl Code {
    /// The anchor of the code's entry in docs/diagnostics.md, as GitHub
    /// derives it from the heading `G0402: ttl above `max ttl``:
    /// `g0402-ttl-above-max-ttl`.
    pub fn docs_anchor(self) -> String {
        let heading = format!("{}: {}", self.as_str(), self.title());
        heading
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    }
}

/// A labelled span: the primary label says what is wrong where, secondary
/// labels point at related places (the first declaration of a duplicate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// Lowercase, no trailing period, user input in backticks.
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary: Label {
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            help: None,
        }
    }

    /// The text under the primary span.
    pub fn label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by file and position, so output does not depend on the
/// order in which passes found them.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (
            a.primary.span.file,
            a.primary.span.start,
            a.primary.span.end,
            a.code,
        )
            .cmp(&(
                b.primary.span.file,
                b.primary.span.start,
                b.primary.span.end,
                b.code,
            ))
    });
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn docs_anchors_follow_github_headings() {
        assert_eq!(
            Code::DuplicateType.docs_anchor(),
            "g0201-type-declared-twice"
        );
        assert_eq!(Code::TtlAboveMax.docs_anchor(), "g0402-ttl-above-max-ttl");
        assert_eq!(
            Code::DefaultAboveMax.docs_anchor(),
            "g0403-default-ttl-above-max-ttl"
        );
        assert_eq!(Code::InvalidMatches.docs_anchor(), "g0304-invalid-matches");
    }

    /// Codes are stable identifiers: each written `G` and four digits, in
    /// increasing order, none given twice, and none sharing a name or a
    /// title; warnings are exactly the lints (`G09xx`).
    #[test]
    fn codes_are_unique_ordered_and_well_formed() {
        use std::collections::HashSet;
        let mut previous = "";
        let (mut names, mut titles) = (HashSet::new(), HashSet::new());
        for code in Code::ALL {
            let text = code.as_str();
            assert!(
                text.len() == 5
                    && text.starts_with('G')
                    && text[1..].bytes().all(|b| b.is_ascii_digit()),
                "{text}"
            );
            assert!(text > previous, "{text} after {previous}");
            previous = text;
            assert!(names.insert(code.name()), "name {} twice", code.name());
            assert!(titles.insert(code.title()), "title {} twice", code.title());
            assert_eq!(
                code.severity() == super::Severity::Warning,
                text.starts_with("G09"),
                "{text}"
            );
        }
    }
}
