//! `amiscan rules detectors`: the catalogue of secret kinds the credential rules find, for a
//! terminal, for programs and for docs/secrets.md; and the same list in `rules explain`.

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use crate::cli::RulesFormat;
use crate::report::terminal::{Terminal, Tone};
use crate::rules::checks::secrets::detectors_of;
use crate::rules::Rule;
use crate::secrets::DetectorSpec;

/// One detector as listed.
#[derive(Serialize)]
struct Listed<'a> {
    rule: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    shape: String,
    keywords: &'a [String],
    checked: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    paths: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    rotate: Option<&'a str>,
}

fn listed<'a>(rule: &'a Rule, spec: &'a DetectorSpec) -> Listed<'a> {
    Listed {
        rule: &rule.id,
        name: &spec.name,
        id: spec.id.as_deref(),
        provider: spec.provider.as_deref(),
        shape: shape(&spec.regex),
        keywords: &spec.keywords,
        checked: checked(spec),
        paths: &spec.paths,
        rotate: spec.rotate.as_deref(),
    }
}

/// The part of a detector's regex that is the secret (its `secret` group), else the
/// whole regex; without the leading flags that every pattern carries.
pub fn shape(regex: &str) -> String {
    let bare = regex.strip_prefix("(?-u)").unwrap_or(regex);
    let Some(open) = bare.find("(?P<secret>") else {
        return bare.to_string();
    };
    let body = bare.get(open + "(?P<secret>".len()..).unwrap_or_default();
    let mut depth = 0usize;
    let mut escaped = false;
    let mut in_class = false;
    for (at, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class && depth == 0 => return body.get(..at).unwrap_or(body).to_string(),
            ')' if !in_class => depth -= 1,
            _ => {}
        }
    }
    bare.to_string()
}

/// How a match is confirmed beyond its shape.
fn checked(spec: &DetectorSpec) -> String {
    let mut parts = Vec::new();
    if let Some(validator) = spec.validate {
        parts.push(format!("{} check", validator.name()));
    }
    if let Some(entropy) = spec.min_entropy {
        parts.push(format!("entropy ≥ {entropy:.1}"));
    }
    let allowlists = spec.allow_values.len()
        + spec.allow_regexes.len()
        + spec.allow_match_regexes.len()
        + spec.allow_line_regexes.len()
        + spec.stopwords.len();
    match allowlists {
        0 => {}
        1 => parts.push("1 placeholder pattern".into()),
        n => parts.push(format!("{n} placeholder patterns")),
    }
    if spec.generic {
        parts.push("generic: yields to a specific kind".into());
    }
    if parts.is_empty() {
        "shape".into()
    } else {
        parts.join("; ")
    }
}

pub fn run(
    rules: &[&Rule],
    format: RulesFormat,
    term: &Terminal,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let detectors = detectors_of(rules.iter().copied());
    match format {
        RulesFormat::Json => {
            let all: Vec<Listed<'_>> = detectors.iter().map(|(r, d)| listed(r, d)).collect();
            serde_json::to_writer_pretty(&mut *out, &all).map_err(std::io::Error::from)?;
            writeln!(out)
        }
        RulesFormat::Markdown => out.write_all(markdown(rules).as_bytes()),
        RulesFormat::Table => {
            let mut table = term.table();
            table.set_header(vec!["Rule", "Kind", "Provider", "Checked"]);
            for (rule, spec) in &detectors {
                let item = listed(rule, spec);
                table.add_row(vec![
                    term.cell(item.rule, Tone::Plain),
                    term.cell(item.name, Tone::Plain),
                    term.cell(item.provider.unwrap_or(""), Tone::Plain),
                    term.cell(item.checked, Tone::Plain),
                ]);
            }
            term.keep_whole(&mut table, &[0]);
            writeln!(out, "{table}")?;
            writeln!(out, "{} kinds of secret", detectors.len())
        }
    }
}

/// The catalogue as Markdown tables, one per rule: the generated part of docs/secrets.md.
pub fn markdown(rules: &[&Rule]) -> String {
    let mut doc = String::new();
    let detectors = detectors_of(rules.iter().copied());
    let _ = writeln!(
        doc,
        "{} kinds of secret in {} rules.\n",
        detectors.len(),
        rules
            .iter()
            .filter(|r| detectors.iter().any(|(d, _)| d.id == r.id))
            .count()
    );
    let mut current: Option<&str> = None;
    for (rule, spec) in &detectors {
        if current != Some(rule.id.as_str()) {
            current = Some(&rule.id);
            let _ = writeln!(
                doc,
                "\n### `{}` — {} ({})\n\n| Kind | Provider | Shape of the secret | Checked | Revoke or rotate |\n|---|---|---|---|---|",
                rule.id, rule.title, rule.severity
            );
        }
        let item = listed(rule, spec);
        let mut kind = cell(item.name);
        if !item.paths.is_empty() {
            let _ = write!(kind, " (in {})", cell(&item.paths.join(", ")));
        }
        let _ = writeln!(
            doc,
            "| {kind} | {} | `{}` | {} | {} |",
            cell(item.provider.unwrap_or("")),
            code_cell(&item.shape),
            cell(&item.checked),
            cell(item.rotate.unwrap_or(""))
        );
    }
    doc
}

/// Text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Text for a code span inside a table cell: a pipe must still be escaped, and a backtick
/// cannot appear.
fn code_cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('`', "'")
        .replace('\n', " ")
}

/// The detectors of one rule, for `rules explain`.
pub fn explain(rule: &Rule, out: &mut dyn Write) -> std::io::Result<()> {
    let detectors = detectors_of(std::iter::once(rule));
    if detectors.is_empty() {
        return Ok(());
    }
    writeln!(out, "Kinds of secret ({}):", detectors.len())?;
    for (rule, spec) in &detectors {
        let item = listed(rule, spec);
        let provider = item.provider.map(|p| format!(" ({p})")).unwrap_or_default();
        writeln!(
            out,
            "  - {}{provider}: {}; {}",
            item.name, item.shape, item.checked
        )?;
        if !item.paths.is_empty() {
            writeln!(out, "      in: {}", item.paths.join(", "))?;
        }
        if let Some(rotate) = item.rotate {
            writeln!(out, "      revoke: {rotate}")?;
        }
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::shape;

    #[test]
    fn the_shape_is_the_secret_group() {
        assert_eq!(
            shape(r"(?-u)\b(?P<secret>glpat-[0-9A-Za-z_-]{20})(?:[^0-9A-Za-z_-]|$)"),
            "glpat-[0-9A-Za-z_-]{20}"
        );
        assert_eq!(
            shape(r"(?-u)x(?P<secret>(?:a|b)[)(]{2}\))y"),
            r"(?:a|b)[)(]{2}\)"
        );
        assert_eq!(shape(r"(?-u)AKIA[0-9A-Z]{16}"), "AKIA[0-9A-Z]{16}");
    }
}
