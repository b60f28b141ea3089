//! GitHub Actions workflow commands: one `::error` or `::warning` line per
//! finding, which the runner turns into an annotation on the file and line.
//! Other CI systems show the lines as they are.

use std::io::Write;

use super::{Finding, Level, Place};

/// Writes one workflow command per finding.
pub fn write(out: &mut dyn Write, findings: &[Finding]) -> std::io::Result<()> {
    for finding in findings {
        writeln!(out, "{}", command(finding))?;
    }
    Ok(())
}

/// `::error file=a.grant,line=3,col=6,endLine=3,endColumn=9,title=G0201::message`
pub fn command(finding: &Finding) -> String {
    let name = match finding.level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Note => "notice",
    };
    let mut properties: Vec<(&str, String)> = Vec::new();
    if let Some(place) = &finding.location {
        properties.push(("file", place.file.clone()));
        if let Some(region) = place.region {
            properties.push(("line", region.line.to_string()));
            // GitHub takes columns only for a range within one line.
            if region.line == region.end_line {
                properties.push(("col", region.column.to_string()));
            }
            properties.push(("endLine", region.end_line.to_string()));
            if region.line == region.end_line {
                properties.push(("endColumn", region.end_column.to_string()));
            }
        }
    }
    properties.push(("title", finding.rule_id.clone()));
    let properties: Vec<String> = properties
        .iter()
        .map(|(key, value)| format!("{key}={}", escape_property(value)))
        .collect();
    format!(
        "::{name} {}::{}",
        properties.join(","),
        escape_data(&message(finding))
    )
}

/// The message, then each related place and the help, on lines of their own:
/// an annotation shows one place, so the others are named in its text.
/// (The primary label adds little to the message there, and is left out.)
fn message(finding: &Finding) -> String {
    let mut text = finding.message.clone();
    for place in &finding.related {
        text.push('\n');
        text.push_str(&where_(place));
        if !place.message.is_empty() {
            text.push_str(&format!(": {}", place.message));
        }
    }
    if let Some(help) = &finding.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    text
}

fn where_(place: &Place) -> String {
    match place.region {
        Some(region) => format!("{}:{}:{}", place.file, region.line, region.column),
        None => place.file.clone(),
    }
}

/// A command's message: `%`, CR and LF escaped.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value: as data, and `:` and `,` too.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::{command, escape_data, escape_property};
    use crate::report::{Finding, Level, Place, Region};

    #[test]
    fn escapes_follow_the_runner() {
        assert_eq!(escape_data("50% of\r\nit"), "50%25 of%0D%0Ait");
        assert_eq!(escape_property("a:b,c%d\n"), "a%3Ab%2Cc%25d%0A");
        // Only properties escape `:` and `,`.
        assert_eq!(escape_data("a:b,c"), "a:b,c");
    }

    fn at(file: &str, region: Region, message: &str) -> Place {
        Place {
            file: file.to_string(),
            region: Some(region),
            message: message.to_string(),
        }
    }

    #[test]
    fn one_line_per_finding() {
        let one_line = Region {
            line: 3,
            column: 6,
            end_line: 3,
            end_column: 9,
        };
        let finding = Finding {
            rule_id: "G0201".to_string(),
            level: Level::Error,
            message: "type `env` is declared twice".to_string(),
            location: Some(at("dir,1/p:x.grant", one_line, "declared again here")),
            related: vec![at(
                "dir,1/p:x.grant",
                Region {
                    line: 2,
                    ..one_line
                },
                "first declared here",
            )],
            help: Some("each type is declared once".to_string()),
        };
        assert_eq!(
            command(&finding),
            "::error file=dir%2C1/p%3Ax.grant,line=3,col=6,endLine=3,endColumn=9,title=G0201::\
             type `env` is declared twice%0A\
             dir,1/p:x.grant:2:6: first declared here%0Ahelp: each type is declared once"
        );
        let warning = Finding {
            level: Level::Warning,
            location: Some(at(
                "p.grant",
                Region {
                    end_line: 5,
                    ..one_line
                },
                "",
            )),
            related: Vec::new(),
            help: None,
            ..finding
        };
        assert_eq!(
            command(&warning),
            "::warning file=p.grant,line=3,endLine=5,title=G0201::type `env` is declared twice"
        );
    }
}
