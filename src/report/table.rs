//! The human rendering of a scan report: one row per rule, then each failing or undecided
//! rule's findings with guest path and line, then the verdict.

use std::io::Write;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, Table};

use super::{ScanReport, Verdict};
use crate::names::escape_for_terminal;
use crate::rules::Status;

fn clean(text: &str) -> String {
    escape_for_terminal(text.as_bytes())
}

pub fn write(report: &ScanReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} ({}, {} bytes){}",
        clean(&report.image.path),
        report.image.format,
        report.image.virtual_size,
        report
            .os
            .as_ref()
            .and_then(|os| os.pretty_name.as_deref())
            .map(|name| format!(": {}", clean(name)))
            .unwrap_or_default()
    )?;
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec!["Rule", "Severity", "Status", "Findings"]);
    for result in &report.results {
        let status = match result.status {
            Status::Fail if !result.gating => "fail (below --fail-on)".to_string(),
            other => other.as_str().to_string(),
        };
        table.add_row(vec![
            Cell::new(&result.rule),
            Cell::new(result.severity.as_str()),
            Cell::new(status),
            Cell::new(result.findings.len()),
        ]);
    }
    writeln!(out, "{table}")?;

    for result in &report.results {
        if matches!(result.status, Status::Pass | Status::Skipped) {
            continue;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{} [{}] {}: {}",
            result.rule,
            result.severity,
            result.status.as_str().to_uppercase(),
            clean(&result.title)
        )?;
        for finding in &result.findings {
            let place = match (&finding.path, finding.line) {
                (Some(path), Some(line)) => format!("{}:{line}", clean(path)),
                (Some(path), None) => clean(path),
                (None, _) => "(default)".to_string(),
            };
            let severity = if finding.severity != result.severity {
                format!(" [{}]", finding.severity)
            } else {
                String::new()
            };
            let fingerprint = finding
                .fingerprint
                .as_deref()
                .map(|f| format!("  [{}]", clean(f)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {place}{severity}  {}{fingerprint}",
                clean(&finding.message)
            )?;
        }
        if let Some(reason) = &result.reason {
            writeln!(out, "  could not decide everything: {}", clean(reason))?;
        }
    }
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .map(|r| r.rule.as_str())
        .collect();
    if !skipped.is_empty() {
        writeln!(out)?;
        writeln!(out, "Skipped (not applicable): {}", skipped.join(", "))?;
    }
    for note in &report.notes {
        writeln!(out, "note: {}", clean(note))?;
    }
    let summary = &report.summary;
    let failing: Vec<String> = summary
        .failing
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {severity}"))
        .collect();
    writeln!(out)?;
    writeln!(
        out,
        "{} rules: {} fail{}, {} pass, {} error, {} skipped; {} findings",
        summary.rules,
        summary.results.fail,
        if failing.is_empty() {
            String::new()
        } else {
            format!(" ({})", failing.join(", "))
        },
        summary.results.pass,
        summary.results.error,
        summary.results.skipped,
        summary.findings
    )?;
    let verdict = match summary.verdict {
        Verdict::Pass => "PASS".to_string(),
        Verdict::Fail => format!("FAIL (rules failing at or above {})", summary.fail_on),
        Verdict::Incomplete => {
            "INCOMPLETE (something could not be read; nothing is proven)".to_string()
        }
    };
    writeln!(out, "Verdict: {verdict} — exit code {}", summary.exit_code)
}
