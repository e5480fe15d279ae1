//! The human rendering of a report: per image, one row per rule, then each failing, waived
//! or undecided rule's findings with guest path and line; then waivers that need
//! attention, and the verdict.

use std::io::Write;

use super::not_read;
use super::terminal::{Terminal, Tone};
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

fn write_image(image: &ImageReport, term: &Terminal, out: &mut dyn Write) -> std::io::Result<()> {
    let described = match (&image.image.format, image.image.virtual_size) {
        (Some(format), Some(size)) => format!(" ({format}, {size} bytes)"),
        _ => String::new(),
    };
    let heading = format!(
        "{}{described}{}",
        clean(&image.image.path),
        image
            .os
            .as_ref()
            .and_then(|os| os.pretty_name.as_deref())
            .map(|name| format!(": {}", clean(name)))
            .unwrap_or_default()
    );
    term.write_wrapped(out, &heading, 2)?;
    write_metadata(image, term, out)?;
    if let Some(error) = &image.error {
        term.write_wrapped(out, &format!("  not scanned: {}", clean(error)), 4)?;
        return Ok(());
    }
    let mut table = term.table();
    table.set_header(vec!["Rule", "Severity", "Status", "Findings"]);
    for result in &image.results {
        table.add_row(vec![
            term.cell(&result.rule, Tone::Plain),
            term.cell(result.severity.as_str(), Tone::of_severity(result.severity)),
            term.cell(status_label(result), Tone::of_status(result.status)),
            term.cell(result.findings.len(), Tone::Plain),
        ]);
    }
    term.keep_whole(&mut table, &[1, 0, 3]);
    writeln!(out, "{table}")?;

    for result in &image.results {
        if matches!(result.status, ResultStatus::Pass | ResultStatus::Skipped) {
            continue;
        }
        writeln!(out)?;
        let status = result.status.as_str().to_uppercase();
        let heading = format!(
            "{} [{}] {status}: {}",
            result.rule,
            result.severity,
            clean(&result.title)
        );
        for (index, line) in term.wrap(&heading, 2).iter().enumerate() {
            let line = if index == 0 {
                term.paint_word(line, &status, Tone::of_status(result.status))
            } else {
                line.clone()
            };
            writeln!(out, "{line}")?;
        }
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
            let line = format!(
                "  {place}{severity}  {}{fingerprint}{tags}",
                clean(&finding.message)
            );
            term.write_wrapped(out, &line, 4)?;
        }
        if let Some(reason) = &result.reason {
            let line = format!("  could not decide everything: {}", clean(reason));
            term.write_wrapped(out, &line, 4)?;
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
        let line = format!("Skipped (not applicable): {}", skipped.join(", "));
        term.write_wrapped(out, &line, 2)?;
    }
    if !image.fixed.is_empty() {
        writeln!(out)?;
        writeln!(out, "Fixed since the baseline:")?;
        for fixed in &image.fixed {
            let line = format!(
                "  {} {}{}",
                fixed.rule,
                fixed.shown_path().unwrap_or_default(),
                fixed
                    .subject
                    .as_deref()
                    .map(|s| format!(" ({})", clean(s)))
                    .unwrap_or_default()
            );
            term.write_wrapped(out, &line, 4)?;
        }
    }
    write_not_read(image, term, out)?;
    for (index, note) in image.notes.iter().enumerate() {
        if !image.not_read.covered_notes.contains(&index) {
            term.write_wrapped(out, &format!("note: {}", clean(note)), 6)?;
        }
    }
    Ok(())
}

/// The lines under an image's name: its labels and, with `--image-digest`, each file's
/// SHA-256.
fn write_metadata(
    image: &ImageReport,
    term: &Terminal,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if !image.labels.is_empty() {
        let labels: Vec<String> = image
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={}", clean(value)))
            .collect();
        term.write_wrapped(out, &format!("  labels: {}", labels.join(", ")), 4)?;
    }
    for digest in &image.image.digests {
        let line = format!("  sha256 {}: {}", clean(&digest.path), digest.sha256);
        term.write_wrapped(out, &line, 4)?;
    }
    Ok(())
}

/// Why an incomplete result is incomplete, per cause, capped (the JSON lists everything).
fn write_not_read(
    image: &ImageReport,
    term: &Terminal,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
            let line = match &item.place {
                Some(place) => format!("    {place}: {}", clean(&item.text)),
                None => format!("    {}", clean(&item.text)),
            };
            term.write_wrapped(out, &line, 6)?;
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

/// The table as a file gets it: 80 columns, no colour.
pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    write_to(report, &Terminal::PLAIN, out)
}

/// Writes `text` wrapped, with the first `word` of its first line in `tone`.
fn write_marked(
    term: &Terminal,
    out: &mut dyn Write,
    text: &str,
    word: &str,
    tone: Tone,
) -> std::io::Result<()> {
    for (index, line) in term.wrap(text, 2).iter().enumerate() {
        if index == 0 {
            writeln!(out, "{}", term.paint_word(line, word, tone))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The table for a terminal: kept to its width, coloured when it is on.
pub fn write_to(report: &Report, term: &Terminal, out: &mut dyn Write) -> std::io::Result<()> {
    let several = report.images.len() > 1;
    for (index, image) in report.images.iter().enumerate() {
        if index > 0 {
            writeln!(out)?;
        }
        write_image(image, term, out)?;
        if several {
            writeln!(out)?;
            let verdict = image.summary.verdict.as_str().to_uppercase();
            let line = format!(
                "{}: {verdict} — {}",
                clean(&image.image.path),
                summary_line(&image.summary)
            );
            let tone = Tone::of_verdict(image.summary.verdict);
            write_marked(term, out, &line, &format!(" {verdict} "), tone)?;
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
            let line = format!(
                "  {} {}: {}",
                clean(&waiver.source),
                clean(&waiver.rule),
                waiver.describe()
            );
            term.write_wrapped(out, &line, 4)?;
        }
    }
    let summary = &report.summary;
    writeln!(out)?;
    if several {
        let line = format!("{} images; {}", summary.images, summary_line(summary));
        term.write_wrapped(out, &line, 2)?;
    } else {
        term.write_wrapped(out, &summary_line(summary), 2)?;
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
    let word = verdict.split(' ').next().unwrap_or_default().to_string();
    // The verdict and the exit code first: wrapping never separates them, and a pipeline
    // can grep for them whatever the width.
    let (head, why) = verdict.split_once(' ').unwrap_or((verdict.as_str(), ""));
    let line = format!("Verdict: {head} — exit code {} {why}", summary.exit_code);
    let line = line.trim_end();
    write_marked(term, out, line, &word, Tone::of_verdict(summary.verdict))
}
