//! Markdown for a pull-request comment or a CI job summary: the verdict, a table of the
//! rules that did not pass, then the findings of each. Text from the guest is escaped so
//! a crafted path cannot break the table or inject links and HTML.

use std::io::Write;

use super::{not_read, table, ImageReport, Report, ResultStatus, Verdict, WaiverState};

/// Escapes Markdown and HTML metacharacters; control bytes become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn verdict_badge(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::Incomplete => "⚠️ INCOMPLETE",
        Verdict::Error => "⛔ ERROR",
    }
}

fn write_image(image: &ImageReport, heading: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let summary = &image.summary;
    writeln!(
        out,
        "{heading} {} — {}\n",
        verdict_badge(summary.verdict),
        escape(&image.image.path)
    )?;
    write_metadata(image, out)?;
    if let Some(error) = &image.error {
        return writeln!(out, "Not scanned: {}\n", escape(error));
    }
    let os = image
        .os
        .as_ref()
        .and_then(|os| os.pretty_name.as_deref())
        .map(escape)
        .unwrap_or_else(|| "no os-release".into());
    let mut extra = String::new();
    if summary.waived > 0 {
        extra.push_str(&format!(" {} waived.", summary.waived));
    }
    if summary.known > 0 || summary.fixed > 0 {
        extra.push_str(&format!(
            " {} in the baseline, {} fixed since.",
            summary.known, summary.fixed
        ));
    }
    writeln!(
        out,
        "{} rules: {} fail, {} waived, {} pass, {} error, {} skipped; {} findings.{extra} Gate: `--fail-on {}`, exit code {}. {os}, {} format.\n",
        summary.rules,
        summary.results.fail,
        summary.results.waived,
        summary.results.pass,
        summary.results.error,
        summary.results.skipped,
        summary.findings,
        summary.fail_on,
        summary.exit_code,
        image.image.format.as_deref().unwrap_or("unknown")
    )?;
    let shown: Vec<_> = image
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                ResultStatus::Fail | ResultStatus::Waived | ResultStatus::Error
            )
        })
        .collect();
    if shown.is_empty() {
        writeln!(out, "Every rule passed or did not apply.\n")?;
    } else {
        writeln!(out, "| Rule | Severity | Status | Findings | Title |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for result in &shown {
            let status = match (result.status, result.gating) {
                (ResultStatus::Fail, true) => "**fail**".to_string(),
                _ => table::status_label(result),
            };
            writeln!(
                out,
                "| `{}` | {} | {status} | {} | {} |",
                result.rule,
                result.severity,
                result.findings.len(),
                escape(&result.title)
            )?;
        }
        for result in &shown {
            writeln!(
                out,
                "\n#{} `{}` — {}\n",
                heading.split(' ').next().unwrap_or("##"),
                result.rule,
                escape(&result.title)
            )?;
            for finding in &result.findings {
                let place = match (finding.shown_path(), finding.line) {
                    (Some(path), Some(line)) => format!("`{}:{line}`", path.replace('`', "'")),
                    (Some(path), None) => format!("`{}`", path.replace('`', "'")),
                    (None, _) => "(default)".to_string(),
                };
                let fingerprint = finding
                    .fingerprint
                    .as_deref()
                    .map(|f| format!(" (`{}`)", f.replace('`', "'")))
                    .unwrap_or_default();
                let tags: String = table::finding_tags(finding)
                    .iter()
                    .map(|t| format!(" — _{}_", escape(t)))
                    .collect();
                writeln!(
                    out,
                    "- {place} [{}] {}{fingerprint}{tags}",
                    finding.severity,
                    escape(&finding.message)
                )?;
            }
            if let Some(reason) = &result.reason {
                writeln!(out, "- could not decide everything: {}", escape(reason))?;
            }
        }
        writeln!(out)?;
    }
    if !image.fixed.is_empty() {
        writeln!(out, "Fixed since the baseline:\n")?;
        for fixed in &image.fixed {
            let place = fixed
                .shown_path()
                .map(|p| format!(" `{}`", p.replace('`', "'")))
                .unwrap_or_default();
            writeln!(out, "- `{}`{place} {}", fixed.rule, escape(&fixed.message))?;
        }
        writeln!(out)?;
    }
    write_not_read(image, heading, out)?;
    Ok(())
}

/// Text shown in backticks: only a backtick could end the span early.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

/// Labels and, with `--image-digest`, each file's SHA-256, under the image's heading.
fn write_metadata(image: &ImageReport, out: &mut dyn Write) -> std::io::Result<()> {
    if !image.labels.is_empty() {
        let labels: Vec<String> = image
            .labels
            .iter()
            .map(|(key, value)| code(&format!("{key}={value}")))
            .collect();
        writeln!(
            out,
            "Labels: {}
",
            labels.join(", ")
        )?;
    }
    for digest in &image.image.digests {
        writeln!(
            out,
            "SHA-256 of {}: {}
",
            code(&digest.path),
            code(&digest.sha256)
        )?;
    }
    Ok(())
}

/// Why an incomplete result is incomplete, per cause, capped (the JSON lists everything).
fn write_not_read(image: &ImageReport, heading: &str, out: &mut dyn Write) -> std::io::Result<()> {
    if !image.summary.incomplete {
        return Ok(());
    }
    let groups = not_read::groups(image);
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "#{} Not read (the result is incomplete)
",
        heading.split(' ').next().unwrap_or("##")
    )?;
    for group in groups {
        writeln!(out, "- {}:", escape(&group.heading))?;
        for item in &group.items {
            match &item.place {
                Some(place) => writeln!(out, "  - {}: {}", code(place), escape(&item.text))?,
                None => writeln!(out, "  - {}", escape(&item.text))?,
            }
        }
        if group.more > 0 {
            writeln!(
                out,
                "  - and {} more (all in the JSON report)",
                not_read::thousands(group.more)
            )?;
        }
    }
    writeln!(out)
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let summary = &report.summary;
    if let [image] = report.images.as_slice() {
        write_image(image, "## amiscan:", out)?;
    } else {
        writeln!(
            out,
            "## amiscan: {} — {} images\n",
            verdict_badge(summary.verdict),
            summary.images
        )?;
        writeln!(
            out,
            "| Image | Verdict | Fail | Waived | Error | Findings |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for image in &report.images {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                escape(&image.image.path),
                verdict_badge(image.summary.verdict),
                image.summary.results.fail,
                image.summary.results.waived,
                image.summary.results.error,
                image.summary.findings
            )?;
        }
        writeln!(out, "\nExit code {}.\n", summary.exit_code)?;
        for image in &report.images {
            write_image(image, "###", out)?;
        }
    }
    let attention: Vec<_> = report
        .waivers
        .iter()
        .filter(|w| {
            matches!(
                w.state,
                WaiverState::Expired | WaiverState::Unmatched | WaiverState::UnknownRule
            )
        })
        .collect();
    if !attention.is_empty() {
        writeln!(out, "Waivers to review:\n")?;
        for waiver in attention {
            writeln!(
                out,
                "- `{}` `{}`: {}",
                waiver.source.replace('`', "'"),
                waiver.rule.replace('`', "'"),
                escape(&waiver.describe())
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn guest_text_cannot_break_the_markup() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(escape("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(escape("line\nbreak"), "line break");
    }
}
