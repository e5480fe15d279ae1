//! Markdown for a pull-request comment or a CI job summary: the verdict, a table of the
//! rules that did not pass, then the findings of each. Text from the guest is escaped so
//! a crafted path cannot break the table or inject links and HTML.

use std::io::Write;

use super::{ScanReport, Verdict};
use crate::rules::Status;

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

pub fn write(report: &ScanReport, out: &mut dyn Write) -> std::io::Result<()> {
    let summary = &report.summary;
    let verdict = match summary.verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::Incomplete => "⚠️ INCOMPLETE",
    };
    writeln!(
        out,
        "## amiscan: {verdict} — {}\n",
        escape(&report.image.path)
    )?;
    let os = report
        .os
        .as_ref()
        .and_then(|os| os.pretty_name.as_deref())
        .map(escape)
        .unwrap_or_else(|| "no os-release".into());
    writeln!(
        out,
        "{} rules: {} fail, {} pass, {} error, {} skipped; {} findings. Gate: `--fail-on {}`, exit code {}. {os}, {} format.\n",
        summary.rules,
        summary.results.fail,
        summary.results.pass,
        summary.results.error,
        summary.results.skipped,
        summary.findings,
        summary.fail_on,
        summary.exit_code,
        report.image.format
    )?;
    let shown: Vec<_> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .collect();
    if shown.is_empty() {
        return writeln!(out, "Every rule passed or did not apply.");
    }
    writeln!(out, "| Rule | Severity | Status | Findings | Title |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for result in &shown {
        let status = match (result.status, result.gating) {
            (Status::Fail, true) => "**fail**",
            (Status::Fail, false) => "fail (below the gate)",
            (other, _) => other.as_str(),
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
        writeln!(out, "\n### `{}` — {}\n", result.rule, escape(&result.title))?;
        for finding in &result.findings {
            let place = match (&finding.path, finding.line) {
                (Some(path), Some(line)) => format!("`{}:{line}`", path.replace('`', "'")),
                (Some(path), None) => format!("`{}`", path.replace('`', "'")),
                (None, _) => "(default)".to_string(),
            };
            let fingerprint = finding
                .fingerprint
                .as_deref()
                .map(|f| format!(" (`{}`)", f.replace('`', "'")))
                .unwrap_or_default();
            writeln!(
                out,
                "- {place} [{}] {}{fingerprint}",
                finding.severity,
                escape(&finding.message)
            )?;
        }
        if let Some(reason) = &result.reason {
            writeln!(out, "- could not decide everything: {}", escape(reason))?;
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
