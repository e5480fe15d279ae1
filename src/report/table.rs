//! The human rendering of a report: per image, one row per rule, then each failing, waived
//! or undecided rule's findings with guest path and line; then waivers that need
//! attention, and the verdict.

use std::io::Write;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, Table};

use super::not_read;
use super::{
    BaselineState, FindingInfo, ImageReport, Report, ResultInfo, ResultStatus, Summary, Verdict,
    WaiverState,
};
use crate::names::escape_for_terminal;

fn clean(text: &str) -> String {
    escape_for_terminal(text.as_bytes())
}

/// How a result reads in the table: a failing rule says why it does not gate.
pub fn status_label(result: &ResultInfo) -> String {
    match result.status {
        ResultStatus::Fail if !result.gating => {
            let all_known = result
                .findings
                .iter()
                .filter(|f| !f.waived())
                .all(|f| f.baseline == Some(BaselineState::Known));
            if all_known {
                "fail (in baseline)".to_string()
            } else {
                "fail (below --fail-on)".to_string()
            }
        }
        other => other.as_str().to_string(),
    }
}

/// The bracketed notes after a finding: waiver and baseline state.
pub fn finding_tags(finding: &FindingInfo) -> Vec<String> {
    let mut tags = Vec::new();
    if let Some(waiver) = &finding.waiver {
        if waiver.expired {
            tags.push(format!(
                "waiver expired {} ({})",
                waiver.expires.as_deref().unwrap_or("?"),
                waiver.source
            ));
        } else {
            tags.push(format!("waived: {} ({})", waiver.reason, waiver.source));
        }
    }
    match finding.baseline {
        Some(BaselineState::Known) => tags.push("in baseline".to_string()),
        Some(BaselineState::New) => tags.push("new".to_string()),
        None => {}
    }
    tags
}

fn write_image(image: &ImageReport, out: &mut dyn Write) -> std::io::Result<()> {
    let described = match (&image.image.format, image.image.virtual_size) {
        (Some(format), Some(size)) => format!(" ({format}, {size} bytes)"),
        _ => String::new(),
    };
    writeln!(
        out,
        "{}{described}{}",
        clean(&image.image.path),
        image
            .os
            .as_ref()
            .and_then(|os| os.pretty_name.as_deref())
            .map(|name| format!(": {}", clean(name)))
            .unwrap_or_default()
    )?;
    write_metadata(image, out)?;
    if let Some(error) = &image.error {
        writeln!(out, "  not scanned: {}", clean(error))?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec!["Rule", "Severity", "Status", "Findings"]);
    for result in &image.results {
        table.add_row(vec![
            Cell::new(&result.rule),
            Cell::new(result.severity.as_str()),
            Cell::new(status_label(result)),
            Cell::new(result.findings.len()),
        ]);
    }
    writeln!(out, "{table}")?;

    for result in &image.results {
        if matches!(result.status, ResultStatus::Pass | ResultStatus::Skipped) {
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
            // `shown_path` is already escaped for a terminal, once.
            let place = match (finding.shown_path(), finding.line) {
                (Some(path), Some(line)) => format!("{path}:{line}"),
                (Some(path), None) => path,
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
            let tags: String = finding_tags(finding)
                .iter()
                .map(|t| format!("  [{}]", clean(t)))
                .collect();
            writeln!(
                out,
                "  {place}{severity}  {}{fingerprint}{tags}",
                clean(&finding.message)
            )?;
        }
        if let Some(reason) = &result.reason {
            writeln!(out, "  could not decide everything: {}", clean(reason))?;
        }
    }
    let skipped: Vec<&str> = image
        .results
        .iter()
        .filter(|r| r.status == ResultStatus::Skipped)
        .map(|r| r.rule.as_str())
        .collect();
    if !skipped.is_empty() {
        writeln!(out)?;
        writeln!(out, "Skipped (not applicable): {}", skipped.join(", "))?;
    }
    if !image.fixed.is_empty() {
        writeln!(out)?;
        writeln!(out, "Fixed since the baseline:")?;
        for fixed in &image.fixed {
            writeln!(
                out,
                "  {} {}{}",
                fixed.rule,
                fixed.shown_path().unwrap_or_default(),
                fixed
                    .subject
                    .as_deref()
                    .map(|s| format!(" ({})", clean(s)))
                    .unwrap_or_default()
            )?;
        }
    }
    write_not_read(image, out)?;
    for (index, note) in image.notes.iter().enumerate() {
        if !image.not_read.covered_notes.contains(&index) {
            writeln!(out, "note: {}", clean(note))?;
        }
    }
    Ok(())
}

/// The lines under an image's name: its labels and, with `--image-digest`, each file's
/// SHA-256.
fn write_metadata(image: &ImageReport, out: &mut dyn Write) -> std::io::Result<()> {
    if !image.labels.is_empty() {
        let labels: Vec<String> = image
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={}", clean(value)))
            .collect();
        writeln!(out, "  labels: {}", labels.join(", "))?;
    }
    for digest in &image.image.digests {
        writeln!(out, "  sha256 {}: {}", clean(&digest.path), digest.sha256)?;
    }
    Ok(())
}

/// Why an incomplete result is incomplete, per cause, capped (the JSON lists everything).
fn write_not_read(image: &ImageReport, out: &mut dyn Write) -> std::io::Result<()> {
    if !image.summary.incomplete {
        return Ok(());
    }
    let groups = not_read::groups(image);
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Not read (the result is incomplete):")?;
    for group in groups {
        writeln!(out, "  {}:", group.heading)?;
        for item in &group.items {
            match &item.place {
                Some(place) => writeln!(out, "    {place}: {}", clean(&item.text))?,
                None => writeln!(out, "    {}", clean(&item.text))?,
            }
        }
        if group.more > 0 {
            writeln!(
                out,
                "    and {} more (all in --format json)",
                not_read::thousands(group.more)
            )?;
        }
    }
    Ok(())
}

fn summary_line(summary: &Summary) -> String {
    let failing: Vec<String> = summary
        .failing
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {severity}"))
        .collect();
    let mut line = format!(
        "{} rules: {} fail{}, {} waived, {} pass, {} error, {} skipped; {} findings",
        summary.rules,
        summary.results.fail,
        if failing.is_empty() {
            String::new()
        } else {
            format!(" ({})", failing.join(", "))
        },
        summary.results.waived,
        summary.results.pass,
        summary.results.error,
        summary.results.skipped,
        summary.findings
    );
    if summary.waived > 0 {
        line.push_str(&format!(", {} waived", summary.waived));
    }
    if summary.known > 0 || summary.fixed > 0 {
        line.push_str(&format!(
            ", {} in baseline, {} fixed since",
            summary.known, summary.fixed
        ));
    }
    line
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let several = report.images.len() > 1;
    for (index, image) in report.images.iter().enumerate() {
        if index > 0 {
            writeln!(out)?;
        }
        write_image(image, out)?;
        if several {
            writeln!(out)?;
            writeln!(
                out,
                "{}: {} — {}",
                clean(&image.image.path),
                image.summary.verdict.as_str().to_uppercase(),
                summary_line(&image.summary)
            )?;
        }
    }
    let attention: Vec<_> = report
        .waivers
        .iter()
        .filter(|w| !matches!(w.state, WaiverState::Applied))
        .collect();
    if !attention.is_empty() {
        writeln!(out)?;
        writeln!(out, "Waivers:")?;
        for waiver in attention {
            writeln!(
                out,
                "  {} {}: {}",
                clean(&waiver.source),
                clean(&waiver.rule),
                waiver.describe()
            )?;
        }
    }
    let summary = &report.summary;
    writeln!(out)?;
    if several {
        writeln!(out, "{} images; {}", summary.images, summary_line(summary))?;
    } else {
        writeln!(out, "{}", summary_line(summary))?;
    }
    let verdict = match summary.verdict {
        Verdict::Pass => "PASS".to_string(),
        Verdict::Fail => format!(
            "FAIL (findings at or above {} not waived{})",
            summary.fail_on,
            if report.baseline.is_some() {
                " and not in the baseline"
            } else {
                ""
            }
        ),
        Verdict::Incomplete => {
            "INCOMPLETE (something could not be read; nothing is proven)".to_string()
        }
        Verdict::Error => "ERROR (an image could not be opened)".to_string(),
    };
    writeln!(out, "Verdict: {verdict} — exit code {}", summary.exit_code)
}
