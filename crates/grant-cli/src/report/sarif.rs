//! SARIF 2.1.0 (OASIS), the format GitHub code scanning and other CI systems
//! read: one run, the tool with every rule it has, one result per finding.
//!
//! Regions count columns in Unicode code points (`columnKind`), as Grant's
//! diagnostics do, rather than SARIF's default of UTF-16 code units.

use std::io::Write;

use serde::Serialize;

use super::{Finding, Level, Place, RuleInfo, Tool};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Writes one SARIF log: `findings` of `tool`, whose rules are `rules`.
pub fn write(
    out: &mut dyn Write,
    tool: &Tool,
    rules: &[RuleInfo],
    findings: &[Finding],
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &log(tool, rules, findings))?;
    writeln!(out)
}

fn log<'a>(tool: &'a Tool, rules: &'a [RuleInfo], findings: &'a [Finding]) -> Log<'a> {
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: ToolObject {
                driver: Driver {
                    name: &tool.name,
                    version: &tool.version,
                    information_uri: &tool.information_uri,
                    rules: rules.iter().map(descriptor).collect(),
                },
            },
            column_kind: "unicodeCodePoints",
            results: findings.iter().map(|f| result(rules, f)).collect(),
        }],
    }
}

fn descriptor(rule: &RuleInfo) -> Descriptor<'_> {
    Descriptor {
        id: &rule.id,
        name: &rule.name,
        short_description: Text {
            text: rule.title.clone(),
        },
        help_uri: rule.help_uri.as_deref(),
        default_configuration: Configuration {
            level: level(rule.level),
        },
    }
}

fn result<'a>(rules: &[RuleInfo], finding: &'a Finding) -> SarifResult<'a> {
    let mut text = finding.message.clone();
    if let Some(help) = &finding.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    SarifResult {
        rule_id: &finding.rule_id,
        rule_index: rules.iter().position(|r| r.id == finding.rule_id),
        level: level(finding.level),
        message: Text { text },
        locations: finding.location.iter().map(location).collect(),
        related_locations: finding
            .related
            .iter()
            .enumerate()
            .map(|(id, place)| RelatedLocation {
                id,
                location: location(place),
            })
            .collect(),
    }
}

fn location(place: &Place) -> Location {
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: uri(&place.file),
            },
            region: place.region.map(|r| Region {
                start_line: r.line,
                start_column: r.column,
                end_line: r.end_line,
                end_column: r.end_column,
            }),
        },
        message: (!place.message.is_empty()).then(|| Text {
            text: place.message.clone(),
        }),
    }
}

fn level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Note => "note",
    }
}

/// A file path as a relative URI reference: `/` separators, and every byte
/// other than an unreserved character or `/` percent-encoded, so that `#`,
/// `?`, `%`, spaces and `:` keep their meaning as part of the path.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.replace('\\', "/").bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: ToolObject<'a>,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct ToolObject<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'a str,
    version: &'a str,
    information_uri: &'a str,
    rules: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<&'a str>,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<RelatedLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text>,
}

#[derive(Serialize)]
struct RelatedLocation {
    id: usize,
    #[serde(flatten)]
    location: Location,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("policies/db/rules.grant"), "policies/db/rules.grant");
        assert_eq!(uri(r"policies\db\rules.grant"), "policies/db/rules.grant");
        assert_eq!(uri("my policy#1.grant"), "my%20policy%231.grant");
        assert_eq!(uri("50%.grant"), "50%25.grant");
        assert_eq!(uri("r\u{e9}gles.grant"), "r%C3%A9gles.grant");
        assert_eq!(uri("../a:b.grant"), "../a%3Ab.grant");
    }
}
