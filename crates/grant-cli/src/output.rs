//! Output formats and colour, shared by the commands.

use std::io::IsTerminal;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Rendered for people.
    Human,
    /// One JSON document.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and `NO_COLOR` is unset.
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether output to stdout is coloured.
    pub fn enabled(self) -> bool {
        self.enabled_on(std::io::stdout().is_terminal())
    }

    /// Whether output to stderr (diagnostics) is coloured.
    pub fn enabled_on_stderr(self) -> bool {
        self.enabled_on(std::io::stderr().is_terminal())
    }

    fn enabled_on(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && is_terminal
            }
        }
    }
}

/// `1 error`, `2 warnings`, `3 policies`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// Output could not be written: a closed pipe ends the run quietly, anything
/// else is reported. Either way the run failed.
pub fn write_failed(error: &std::io::Error, stderr: &mut dyn std::io::Write) -> crate::Exit {
    if error.kind() != std::io::ErrorKind::BrokenPipe {
        let _ = writeln!(
            stderr,
            "error: cannot write output: {}",
            grant_syntax::source::describe_io(error)
        );
    }
    crate::Exit::Usage
}
