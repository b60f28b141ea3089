//! Test files: `*.test.toml`, a list of `[[case]]` tables, read into
//! [`Case`]s. Everything a case says is checked here, with the place it was
//! said: an unknown key, a missing one, a value of the wrong kind. Only the
//! request itself (`tool`, `ttl`, `attrs`) is left for the engine to judge,
//! so that a test request goes through the one validation path real requests
//! take.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use grant_engine::DecisionEffect;
use grant_syntax::LoadError;
use grant_syntax::chars::printable;
use grant_syntax::source::SourceFile;
use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The keys a case may have, and those its `expect` may have.
const CASE_KEYS: &[&str] = &["name", "tool", "ttl", "attrs", "expect"];
const EXPECT_KEYS: &[&str] = &["effect", "ttl", "rules", "missing", "errors", "obligations"];
const OBLIGATION_KEYS: &[&str] = &["uses", "approvals"];

/// One test file, read and checked.
#[derive(Debug)]
pub struct TestFile {
    /// The path as the user reached it, shown in output.
    pub display: String,
    pub cases: Vec<Case>,
}

/// One case: a request and what its decision must be.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    /// Where its table starts: the `[[case]]` header.
    pub line: usize,
    pub column: usize,
    /// The byte range of that header.
    header: Range<usize>,
    /// The request, in the JSON shape of the language spec.
    pub request: Value,
    pub expect: Expect,
}

/// What a case checks. `None` is not checked, except `errors`: a case that
/// does not say `errors = true` expects a valid request.
#[derive(Debug)]
pub struct Expect {
    pub effect: DecisionEffect,
    pub ttl: Option<u64>,
    pub rules: Option<Vec<String>>,
    pub missing: Option<Vec<String>>,
    pub errors: Option<bool>,
    /// Exactly the obligations of the allow: `{}` expects none.
    pub obligations: Option<ExpectedObligations>,
}

/// `expect.obligations = { uses = 1, approvals = ["g"] }`: a key left out
/// expects that obligation absent.
#[derive(Debug, PartialEq, Eq)]
pub struct ExpectedObligations {
    pub uses: Option<u64>,
    /// Sorted, as decisions list them.
    pub approvals: Vec<String>,
}

/// A test file that could not be read, or says something wrong.
#[derive(Debug)]
pub struct FileError {
    pub file: String,
    /// Where, with the line it is on; `None` when the file could not be read.
    pub at: Option<Place>,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug)]
pub struct Place {
    pub line: usize,
    pub column: usize,
    pub source_line: String,
    /// Columns (in characters, 1-based) underlined on `source_line`.
    pub width: usize,
}

impl FileError {
    /// `error: message`, `--> file:line:col`, the line with the place
    /// underlined, and the help. For a terminal: what the file says is
    /// shown [`printable`].
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", printable(&self.message));
        let help = self.help.as_deref().map(printable);
        match &self.at {
            Some(place) => {
                let number = place.line.to_string();
                let gutter = " ".repeat(number.len());
                let _ = writeln!(
                    out,
                    "{gutter}--> {}:{}:{}",
                    printable(&self.file),
                    place.line,
                    place.column
                );
                let (shown, column, width) = place.excerpt();
                let (shown, column, width) = escaped(&shown, column, width);
                let _ = writeln!(out, "{gutter} |");
                let _ = writeln!(out, "{number} | {shown}");
                let _ = writeln!(
                    out,
                    "{gutter} | {}{}",
                    " ".repeat(column.saturating_sub(1)),
                    "^".repeat(width.max(1))
                );
                if let Some(help) = help {
                    let _ = writeln!(out, "{gutter} = help: {help}");
                }
            }
            None => {
                if let Some(help) = help {
                    let _ = writeln!(out, "  = help: {help}");
                }
            }
        }
        out
    }
}

/// `line` [`printable`], with the underline (a 1-based `column` and a
/// `width`, in characters) moved to where the same characters are after
/// escaping.
fn escaped(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let before: String = line.chars().take(column.saturating_sub(1)).collect();
    let under: String = line
        .chars()
        .skip(column.saturating_sub(1))
        .take(width)
        .collect();
    let column = printable(&before).chars().count() + 1;
    let width = printable(&under).chars().count();
    (printable(line).into_owned(), column, width)
}

/// Longest excerpt of a source line shown under an error, in characters.
const EXCERPT: usize = 100;

impl Place {
    /// The source line, or a window of it around the place when it is long,
    /// with the column and width of the underline within what is shown.
    fn excerpt(&self) -> (String, usize, usize) {
        let chars: Vec<char> = self.source_line.chars().collect();
        if chars.len() <= EXCERPT {
            return (self.source_line.clone(), self.column, self.width);
        }
        let start = self.column.saturating_sub(1).saturating_sub(EXCERPT / 4);
        let end = (start + EXCERPT).min(chars.len());
        let window: String = chars.get(start..end).unwrap_or_default().iter().collect();
        let before = if start > 0 { "..." } else { "" };
        let after = if end < chars.len() { "..." } else { "" };
        let column = self.column - start + before.len();
        let width = self
            .width
            .min(end.saturating_sub(self.column.saturating_sub(1)));
        (format!("{before}{window}{after}"), column, width)
    }
}

/// Reads and checks the test file at `path`.
pub fn load(path: &Path) -> Result<TestFile, FileError> {
    let display = path.display().to_string();
    let text = read(path).map_err(|message| FileError {
        file: display.clone(),
        at: None,
        message,
        help: None,
    })?;
    parse(&display, &text)
}

/// Reads a test file as policy files are read (refusing FIFOs and devices
/// before opening them, and files over the size limit).
fn read(path: &Path) -> Result<String, String> {
    grant_syntax::source::read_source(path).map_err(|error| match error {
        LoadError::TooLarge { size, limit, .. } => format!(
            "`{}` is {size} bytes, over the limit of {limit} bytes for one test file",
            path.display()
        ),
        error => error.to_string(),
    })
}

/// Checks the text of a test file shown as `display`.
pub fn parse(display: &str, text: &str) -> Result<TestFile, FileError> {
    let reader = Reader {
        file: SourceFile::new(display, text),
    };
    let document = DeTable::parse(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        reader.error(span, format!("invalid TOML: {}", error.message()), None)
    })?;
    let mut cases = Vec::new();
    for (key, value) in document.get_ref().iter() {
        if key.get_ref() != "case" {
            return Err(reader.error(
                key.span(),
                format!("unknown key `{}` in a test file", key.get_ref()),
                Some("a test file holds only `[[case]]` tables".to_string()),
            ));
        }
        let DeValue::Array(items) = value.get_ref() else {
            return Err(reader.error(
                value.span(),
                "`case` must be an array of tables".to_string(),
                Some("write each case as a `[[case]]` table".to_string()),
            ));
        };
        for item in items.iter() {
            cases.push(reader.case(item)?);
        }
    }
    for (i, case) in cases.iter().enumerate() {
        if let Some(first) = cases.iter().take(i).find(|c| c.name == case.name) {
            return Err(reader.error(
                case.header.clone(),
                format!("two cases are named `{}`", case.name),
                Some(format!(
                    "the first is at {display}:{}:{}; give each case of a file its own name",
                    first.line, first.column
                )),
            ));
        }
    }
    Ok(TestFile {
        display: display.to_string(),
        cases,
    })
}

/// Reads the tables of one file, turning spans into places.
struct Reader {
    file: SourceFile,
}

type Table<'i> = DeTable<'i>;
type Item<'i> = Spanned<DeValue<'i>>;

impl Reader {
    fn error(&self, span: Range<usize>, message: String, help: Option<String>) -> FileError {
        let start = u32::try_from(span.start).unwrap_or(u32::MAX);
        let (line, column) = self.file.line_col(start);
        let source_line = self
            .file
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_string();
        // Underline the span, or up to the end of its line.
        let width = self
            .file
            .text
            .get(span.clone())
            .map_or(1, |s| s.lines().next().unwrap_or("").chars().count());
        FileError {
            file: self.file.display.clone(),
            at: Some(Place {
                line,
                column,
                source_line,
                width,
            }),
            message,
            help,
        }
    }

    fn case(&self, item: &Item<'_>) -> Result<Case, FileError> {
        let DeValue::Table(table) = item.get_ref() else {
            return Err(self.error(
                item.span(),
                format!("a case must be a table, found {}", kind(item.get_ref())),
                Some("write each case as a `[[case]]` table".to_string()),
            ));
        };
        let header = item.span();
        self.known_keys(table, CASE_KEYS, "a case")?;
        let (line, column) = self
            .file
            .line_col(u32::try_from(header.start).unwrap_or(u32::MAX));

        let name = match field(table, "name") {
            Some(value) => {
                let name = self.string(value, "`name`")?;
                if name.trim().is_empty() {
                    return Err(self.error(
                        value.span(),
                        "a case name must not be empty".to_string(),
                        Some(
                            "say what the case shows, e.g. `name = \"internal reads are allowed\"`"
                                .to_string(),
                        ),
                    ));
                }
                name
            }
            None => {
                return Err(self.error(
                    header.clone(),
                    "this case has no `name`".to_string(),
                    Some(
                        "say what the case shows, e.g. `name = \"internal reads are allowed\"`"
                            .to_string(),
                    ),
                ));
            }
        };
        let in_case = format!("case `{name}`");

        let mut request = Map::new();
        match field(table, "tool") {
            Some(value) => {
                request.insert("tool".to_string(), self.string(value, "`tool`")?.into());
            }
            None => {
                return Err(self.error(
                    header.clone(),
                    format!("{in_case} has no `tool`"),
                    Some(
                        "name the tool the request asks about, e.g. `tool = \"db.read\"`"
                            .to_string(),
                    ),
                ));
            }
        }
        if let Some(value) = field(table, "attrs") {
            if !matches!(value.get_ref(), DeValue::Table(_)) {
                return Err(self.error(
                    value.span(),
                    format!("`attrs` must be a table, found {}", kind(value.get_ref())),
                    Some(
                        "give attributes as in a request, e.g. `attrs = { task.approved = true }`"
                            .to_string(),
                    ),
                ));
            }
            request.insert("attrs".to_string(), self.json(value)?);
        }
        if let Some(value) = field(table, "ttl") {
            if !matches!(value.get_ref(), DeValue::String(_) | DeValue::Integer(_)) {
                return Err(self.error(
                    value.span(),
                    format!(
                        "`ttl` must be a duration string or an integer number of seconds, found {}",
                        kind(value.get_ref())
                    ),
                    Some("for example `ttl = \"10m\"` or `ttl = 600`".to_string()),
                ));
            }
            request.insert("ttl".to_string(), self.json(value)?);
        }

        let Some(expect_item) = field(table, "expect") else {
            return Err(self.error(
                header.clone(),
                format!("{in_case} has no `expect`"),
                Some("say what the decision must be, at least `expect.effect = \"allow\"` or `\"deny\"`".to_string()),
            ));
        };
        let expect = self.expect(expect_item, header.clone(), &in_case)?;
        Ok(Case {
            name,
            line,
            column,
            header,
            request: Value::Object(request),
            expect,
        })
    }

    fn expect(
        &self,
        item: &Item<'_>,
        header: Range<usize>,
        in_case: &str,
    ) -> Result<Expect, FileError> {
        let DeValue::Table(table) = item.get_ref() else {
            return Err(self.error(
                item.span(),
                format!("`expect` must be a table, found {}", kind(item.get_ref())),
                Some(
                    "write `expect.effect = \"allow\"`, or `expect = { effect = \"deny\" }`"
                        .to_string(),
                ),
            ));
        };
        self.known_keys(table, EXPECT_KEYS, "`expect`")?;
        let effect = match field(table, "effect") {
            Some(value) => match self.string(value, "`expect.effect`")?.as_str() {
                "allow" => DecisionEffect::Allow,
                "deny" => DecisionEffect::Deny,
                other => {
                    return Err(self.error(
                        value.span(),
                        format!("`expect.effect` must be \"allow\" or \"deny\", found \"{other}\""),
                        None,
                    ));
                }
            },
            None => {
                return Err(self.error(
                    header,
                    format!("{in_case} has no `expect.effect`"),
                    Some("every case says whether the request is allowed: `expect.effect = \"allow\"` or `\"deny\"`".to_string()),
                ));
            }
        };
        let ttl = self
            .allow_only(table, "ttl", effect)?
            .map(|value| self.ttl(value))
            .transpose()?;
        let rules = field(table, "rules")
            .map(|value| self.names(value, "`expect.rules`", "rule ids"))
            .transpose()?;
        let missing = field(table, "missing")
            .map(|value| self.names(value, "`expect.missing`", "attribute paths"))
            .transpose()?;
        let errors = match field(table, "errors") {
            Some(value) => {
                let DeValue::Boolean(errors) = value.get_ref() else {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "`expect.errors` must be `true` or `false`, found {}",
                            kind(value.get_ref())
                        ),
                        None,
                    ));
                };
                if *errors && effect == DecisionEffect::Allow {
                    return Err(self.error(
                        value.span(),
                        "`expect.errors = true` with `expect.effect = \"allow\"`: an invalid request is always denied".to_string(),
                        Some("expect `effect = \"deny\"`".to_string()),
                    ));
                }
                Some(*errors)
            }
            None => None,
        };
        let obligations = self
            .allow_only(table, "obligations", effect)?
            .map(|value| self.obligations(value))
            .transpose()?;
        Ok(Expect {
            effect,
            ttl,
            rules,
            missing,
            errors,
            obligations,
        })
    }

    /// Every key of `table` is one of `allowed`.
    fn known_keys(&self, table: &Table<'_>, allowed: &[&str], what: &str) -> Result<(), FileError> {
        for (key, _) in table.iter() {
            let key_text: &str = key.get_ref();
            if allowed.contains(&key_text) {
                continue;
            }
            let quoted: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
            let keys = match quoted.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            let help = match closest(key_text, allowed) {
                Some(near) => format!("{what} takes {keys}; did you mean `{near}`?"),
                None => format!("{what} takes {keys}"),
            };
            return Err(self.error(
                key.span(),
                format!("unknown key `{key_text}` in {what}"),
                Some(help),
            ));
        }
        Ok(())
    }

    fn string(&self, item: &Item<'_>, what: &str) -> Result<String, FileError> {
        match item.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            other => Err(self.error(
                item.span(),
                format!("{what} must be a string, found {}", kind(other)),
                None,
            )),
        }
    }

    /// A ttl: a duration string or a positive integer number of seconds.
    fn ttl(&self, item: &Item<'_>) -> Result<u64, FileError> {
        let bad = |why: String| {
            self.error(
                item.span(),
                format!("`expect.ttl` {why}"),
                Some(
                    "write a duration such as \"15m\" or \"1h30m\", or whole seconds such as 900"
                        .to_string(),
                ),
            )
        };
        let seconds = match item.get_ref() {
            DeValue::String(text) => grant_syntax::parser::parse_duration(text)
                .map_err(|why| bad(format!("is not a duration: {why}")))?,
            DeValue::Integer(int) => u64::from_str_radix(int.as_str(), int.radix())
                .map_err(|_| bad("must be a positive number of seconds".to_string()))?,
            other => {
                return Err(bad(format!(
                    "must be a duration string or seconds, found {}",
                    kind(other)
                )));
            }
        };
        if seconds == 0 {
            return Err(bad("must be positive: no allow has a ttl of 0".to_string()));
        }
        Ok(seconds)
    }

    /// `expect.KEY`, which only an allow has (`ttl`, `obligations`): refused
    /// with `expect.effect = "deny"`.
    fn allow_only<'t, 'i>(
        &self,
        table: &'t Table<'i>,
        key: &str,
        effect: DecisionEffect,
    ) -> Result<Option<&'t Item<'i>>, FileError> {
        let value = field(table, key);
        match value {
            Some(value) if effect == DecisionEffect::Deny => Err(self.error(
                value.span(),
                format!("`expect.{key}` with `expect.effect = \"deny\"`: a deny has no {key}"),
                Some(format!("remove `expect.{key}`, or expect an allow")),
            )),
            _ => Ok(value),
        }
    }

    /// `{ uses = N, approvals = [...] }`, each key optional.
    fn obligations(&self, item: &Item<'_>) -> Result<ExpectedObligations, FileError> {
        let DeValue::Table(table) = item.get_ref() else {
            return Err(self.error(
                item.span(),
                format!(
                    "`expect.obligations` must be a table, found {}",
                    kind(item.get_ref())
                ),
                Some("for example `expect.obligations = { uses = 1, approvals = [\"payments-oncall\"] }`, or `{}` for none".to_string()),
            ));
        };
        self.known_keys(table, OBLIGATION_KEYS, "`expect.obligations`")?;
        let uses = match field(table, "uses") {
            Some(value) => {
                let bad = || {
                    self.error(
                        value.span(),
                        "`expect.obligations.uses` must be an integer from 1 to 9007199254740991, as `uses` in a rule".to_string(),
                        None,
                    )
                };
                let DeValue::Integer(int) = value.get_ref() else {
                    return Err(bad());
                };
                let uses = u64::from_str_radix(int.as_str(), int.radix()).map_err(|_| bad())?;
                if !(1..=grant_engine::Obligations::MAX_USES).contains(&uses) {
                    return Err(bad());
                }
                Some(uses)
            }
            None => None,
        };
        let mut approvals = field(table, "approvals")
            .map(|value| self.names(value, "`expect.obligations.approvals`", "approval groups"))
            .transpose()?
            .unwrap_or_default();
        approvals.sort_unstable();
        Ok(ExpectedObligations { uses, approvals })
    }

    /// An array of distinct, non-empty strings.
    fn names(&self, item: &Item<'_>, what: &str, of: &str) -> Result<Vec<String>, FileError> {
        let DeValue::Array(items) = item.get_ref() else {
            return Err(self.error(
                item.span(),
                format!(
                    "{what} must be an array of {of}, found {}",
                    kind(item.get_ref())
                ),
                Some("write `[]` for none".to_string()),
            ));
        };
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        for element in items.iter() {
            let name = self.string(element, &format!("each of {what}"))?;
            if name.is_empty() {
                return Err(self.error(
                    element.span(),
                    format!("{what} holds an empty string"),
                    None,
                ));
            }
            if names.contains(&name) {
                return Err(self.error(
                    element.span(),
                    format!("{what} names `{name}` twice"),
                    None,
                ));
            }
            names.push(name);
        }
        Ok(names)
    }

    /// A request value as JSON. TOML datetimes have no JSON counterpart in a
    /// request, and neither do infinite floats: both are errors here. Other
    /// values go to the engine as they are, to be judged there.
    fn json(&self, item: &Item<'_>) -> Result<Value, FileError> {
        Ok(match item.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Integer(int) => match i64::from_str_radix(int.as_str(), int.radix()) {
                Ok(n) => Value::from(n),
                Err(_) => {
                    return Err(self.error(
                        item.span(),
                        "this integer does not fit in 64 bits".to_string(),
                        None,
                    ));
                }
            },
            DeValue::Float(float) => {
                let finite = float
                    .as_str()
                    .replace('_', "")
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64);
                match finite {
                    Some(n) => Value::Number(n),
                    None => {
                        return Err(self.error(
                            item.span(),
                            format!("`{}` has no JSON form", float.as_str()),
                            Some(
                                "request values are booleans, integers, strings, arrays and tables"
                                    .to_string(),
                            ),
                        ));
                    }
                }
            }
            DeValue::Datetime(_) => {
                return Err(self.error(
                    item.span(),
                    "a TOML date or time is not a request value".to_string(),
                    Some("quote it to give a string".to_string()),
                ));
            }
            DeValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|element| self.json(element))
                    .collect::<Result<_, _>>()?,
            ),
            DeValue::Table(table) => {
                let mut object = Map::new();
                for (key, value) in table.iter() {
                    object.insert(key.get_ref().to_string(), self.json(value)?);
                }
                Value::Object(object)
            }
        })
    }
}

fn field<'t, 'i>(table: &'t Table<'i>, key: &str) -> Option<&'t Item<'i>> {
    table
        .iter()
        .find(|(k, _)| {
            let k: &str = k.get_ref();
            k == key
        })
        .map(|(_, v)| v)
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date or time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The allowed key nearest to `key`, if it is near enough to be a typo.
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (distance(key, candidate), *candidate))
        .filter(|(d, candidate)| *d <= 2.max(candidate.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(0);
            let left = row.get(j).copied().unwrap_or(0);
            let cost = usize::from(ca != *cb);
            let value = (above + 1).min(left + 1).min(diagonal + cost);
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = value;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The path of the one-file policy `x.grant`'s test file: `x.test.toml`.
pub fn beside(policy: &Path) -> PathBuf {
    policy.with_extension("test.toml")
}

/// Whether `path` names a test file.
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.toml") && n.len() > ".test.toml".len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("atrs", "attrs"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("effect", "effect"), 0);
        assert_eq!(closest("efect", EXPECT_KEYS), Some("effect"));
        assert_eq!(closest("whatever", CASE_KEYS), None);
    }

    #[test]
    fn a_case_knows_its_place() {
        let file = parse(
            "t.test.toml",
            "# a comment\n\n[[case]]\nname = \"x\"\ntool = \"db.read\"\nexpect.effect = \"deny\"\n",
        );
        let places: Vec<(usize, usize)> = file
            .iter()
            .flat_map(|f| f.cases.iter().map(|c| (c.line, c.column)))
            .collect();
        assert_eq!(places, [(3, 1)]);
    }
}
