//! `grant eval`: decide requests against one policy, and print the decisions
//! as JSON or explain them to people.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use grant_engine::{Engine, Request, Verdict};
use grant_syntax::chars::printable;

use crate::Exit;
use crate::output::{ColorChoice, Format, write_failed};
use crate::policy;
use grant_engine::Explainer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every request was decided (allow or deny), 1 when the \
policy has errors, 2 on bad arguments or input that cannot be read, 3 with --fail-on-deny \
when any request was denied."
)]
#[command(group(
    clap::ArgGroup::new("input")
        .required(true)
        .args(["request", "requests"])
))]
pub struct EvalArgs {
    /// The policy: a `.grant` file, or a directory that directly holds
    /// `.grant` files (its sub-directories' files included). A directory
    /// of several policies is refused: pass one of them.
    #[arg(long, value_name = "PATH")]
    policy: PathBuf,
    /// One request, a JSON object (`-` reads it from stdin). Prints one
    /// decision, pretty-printed.
    #[arg(long, value_name = "FILE|-")]
    request: Option<PathBuf>,
    /// Requests as NDJSON, one JSON object per line (`-` reads stdin).
    /// Prints one compact decision per line, in input order, each with the
    /// 1-based number of its input line as `"line"`. Blank lines are
    /// skipped and get no output line (the numbers show which were
    /// skipped). A line that is not a valid request is denied with its
    /// error, and the run goes on.
    #[arg(long, value_name = "FILE|-")]
    requests: Option<PathBuf>,
    /// Explain each decision for people instead of printing JSON: the rules
    /// whose pattern matches the tool, where they are, their conditions, the
    /// values those read, and how each came out.
    #[arg(long)]
    explain: bool,
    /// With `--explain`: `human` (the default) renders explanations for
    /// people, `json` prints each as JSON (pretty for `--request`, one
    /// line each for `--requests`, with `"line"`).
    #[arg(long, value_enum, default_value_t = Format::Human, requires = "explain")]
    format: Format,
    /// Exit 3 if any request is denied (once every request is decided).
    #[arg(long)]
    fail_on_deny: bool,
    /// Colour for `--explain`, and for the diagnostics of a policy with
    /// errors.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

/// Why a run stopped early.
enum Failure {
    /// Input could not be read: a usage or I/O error.
    Read(String),
    Write(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        Failure::Write(error)
    }
}

pub fn run(args: &EvalArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let engine = match policy::load(&args.policy, args.color, stderr) {
        Ok(engine) => engine,
        Err(exit) => return exit,
    };
    let mut session = Session {
        engine: &engine,
        request: engine.request(),
        verdict: engine.verdict(),
        explain: match (args.explain, args.format) {
            (false, _) => None,
            (true, Format::Human) => Some(Explain::Human(Explainer::new(
                &engine,
                &args.policy.display().to_string(),
                args.color.enabled(),
            ))),
            (true, Format::Json) => Some(Explain::Json),
        },
        denied: false,
    };
    let result = match (&args.request, &args.requests) {
        (Some(path), None) => session.one(path, stdout),
        (None, Some(path)) => session.many(path, stdout),
        // clap's argument group guarantees exactly one.
        _ => Err(Failure::Read(
            "give exactly one of `--request` and `--requests`".to_string(),
        )),
    };
    match result {
        Ok(()) if args.fail_on_deny && session.denied => Exit::Denied,
        Ok(()) => Exit::Ok,
        Err(Failure::Read(message)) => {
            let _ = writeln!(stderr, "error: {message}");
            Exit::Usage
        }
        Err(Failure::Write(error)) => write_failed(&error, stderr),
    }
}

/// How `--explain` shows explanations.
enum Explain<'e> {
    Human(Explainer<'e>),
    Json,
}

/// One policy, and the buffers reused from one request to the next.
struct Session<'e> {
    engine: &'e Engine,
    request: Request,
    verdict: Verdict,
    explain: Option<Explain<'e>>,
    /// Whether any request was denied.
    denied: bool,
}

impl Session<'_> {
    /// `--request FILE|-`: one request, one pretty decision.
    fn one(&mut self, path: &Path, stdout: &mut dyn Write) -> Result<(), Failure> {
        let mut text = Vec::new();
        let keep = self.engine.limits().json_bytes;
        let read = if is_stdin(path) {
            read_bounded(&mut std::io::stdin().lock(), &mut text, keep, false)
        } else {
            std::fs::File::open(path)
                .and_then(|file| read_bounded(&mut BufReader::new(file), &mut text, keep, false))
        };
        let (length, _) = read.map_err(|error| cannot_read(path, &error))?;
        let label = if is_stdin(path) {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        self.answer(&text, length, Source::File(&label), stdout)?;
        Ok(())
    }

    /// `--requests FILE|-`: NDJSON in, one compact decision line out per
    /// request line.
    fn many(&mut self, path: &Path, stdout: &mut dyn Write) -> Result<(), Failure> {
        let input: Box<dyn Read> = if is_stdin(path) {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(path).map_err(|error| cannot_read(path, &error))?)
        };
        let name = if is_stdin(path) {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        let mut out = BufWriter::with_capacity(64 * 1024, stdout);
        let mut line = Vec::new();
        let mut number = 0usize;
        let mut explained = false;
        loop {
            // Flush before waiting for more input, so that a caller feeding
            // a pipe one request at a time sees each answer at once.
            if reader.buffer().is_empty() {
                out.flush()?;
            }
            let keep = self.engine.limits().json_bytes;
            let (length, more) = match read_bounded(&mut reader, &mut line, keep, true) {
                Ok(read) => read,
                Err(error) => {
                    out.flush()?;
                    return Err(cannot_read(path, &error));
                }
            };
            if !more {
                break;
            }
            number += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if matches!(self.explain, Some(Explain::Human(_))) {
                if explained {
                    writeln!(out)?;
                }
                explained = true;
                writeln!(out, "=== {}, line {number} ===", printable(&name))?;
            }
            // Without its line end, so that a JSON error's position reads
            // `line 1 column N` of this line.
            self.answer(&line, length, Source::Line(number), &mut out)?;
        }
        out.flush()?;
        Ok(())
    }

    /// Decides one request and writes its decision or explanation.
    /// `text` is the request as read, `length` its whole length: a request
    /// over the JSON limit is read no further than the limit.
    fn answer(
        &mut self,
        text: &[u8],
        length: usize,
        from: Source<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        // The text is read no further than the limit: the error tells the
        // whole length.
        match self.engine.limits().json_too_large(length) {
            Some(error) => {
                self.request.clear().refuse(error);
            }
            None => self.engine.read_json(text, &mut self.request),
        }
        if let Some(explain) = &self.explain {
            let explanation = self.engine.explain(&self.request);
            self.denied |= !explanation.decision.is_allow();
            return match (explain, from) {
                (Explain::Human(explainer), Source::File(label)) => {
                    explainer.write(out, Some(label), &explanation)
                }
                (Explain::Human(explainer), Source::Line(_)) => {
                    explainer.write(out, None, &explanation)
                }
                (Explain::Json, from) => write_json(out, from, &explanation),
            };
        }
        self.engine.decide_into(&self.request, &mut self.verdict);
        self.denied |= !self.verdict.is_allow();
        write_json(out, from, &self.verdict.to_decision())
    }
}

/// Writes a decision or an explanation as JSON: pretty for a request file,
/// compact with its line's number for a line of NDJSON.
fn write_json(
    out: &mut dyn Write,
    from: Source<'_>,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    match from {
        Source::File(_) => serde_json::to_writer_pretty(&mut *out, value)?,
        Source::Line(line) => serde_json::to_writer(&mut *out, &Numbered { line, value })?,
    }
    writeln!(out)
}

/// Reads to the end, or with `to_newline` up to the next `\n` (consumed,
/// not kept, and a `\r` before it with it), keeping at most `keep + 1`
/// bytes in `out` (cleared first) and counting the rest: a request far over
/// the JSON limit costs its length in time, never in memory. Returns the
/// length read (without the line end), and whether there was anything to
/// read at all.
fn read_bounded(
    reader: &mut dyn BufRead,
    out: &mut Vec<u8>,
    keep: usize,
    to_newline: bool,
) -> std::io::Result<(usize, bool)> {
    out.clear();
    let (mut length, mut any, mut last) = (0usize, false, None);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((length, any));
        }
        any = true;
        let newline = if to_newline {
            available.iter().position(|&b| b == b'\n')
        } else {
            None
        };
        let chunk = available
            .get(..newline.unwrap_or(available.len()))
            .unwrap_or(available);
        let room = (keep + 1).saturating_sub(out.len());
        out.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(chunk));
        length += chunk.len();
        last = chunk.last().copied().or(last);
        let consumed = chunk.len() + usize::from(newline.is_some());
        reader.consume(consumed);
        if newline.is_some() {
            if last == Some(b'\r') {
                length -= 1;
                out.truncate(length);
            }
            return Ok((length, any));
        }
    }
}

/// Where a request came from: decided from a file (`--request`), it gets a
/// pretty decision; from a line of `--requests`, a compact one that carries
/// the line's number.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The request's file, or `stdin`.
    File(&'a str),
    /// Its 1-based line number in the NDJSON input.
    Line(usize),
}

/// A decision (or explanation) with the number of the input line it
/// answers, first, so that a reader can match each output line with its
/// request even though blank lines get no output.
#[derive(serde::Serialize)]
struct Numbered<'v, V> {
    line: usize,
    #[serde(flatten)]
    value: &'v V,
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn cannot_read(path: &Path, error: &std::io::Error) -> Failure {
    let message = grant_syntax::source::describe_io(error);
    let name = if is_stdin(path) {
        "stdin".to_string()
    } else {
        format!("`{}`", printable(&path.display().to_string()))
    };
    Failure::Read(format!("cannot read {name}: {message}"))
}
