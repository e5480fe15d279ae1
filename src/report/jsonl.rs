//! JSON Lines: one object per finding, for log pipelines. Each line is self-contained
//! (image, rule, status, gating) so a line filtered out of the stream still says what it
//! is; the fingerprint stands in for any secret.

use std::io::Write;

use serde::Serialize;

use super::ScanReport;

#[derive(Serialize)]
struct Line<'a> {
    image: &'a str,
    rule: &'a str,
    title: &'a str,
    status: crate::rules::Status,
    gating: bool,
    severity: crate::rules::Severity,
    path: Option<&'a str>,
    line: Option<u64>,
    subject: Option<&'a str>,
    message: &'a str,
    fingerprint: Option<&'a str>,
}

pub fn write(report: &ScanReport, out: &mut dyn Write) -> std::io::Result<()> {
    for result in &report.results {
        for finding in &result.findings {
            let line = Line {
                image: &report.image.path,
                rule: &result.rule,
                title: &result.title,
                status: result.status,
                gating: result.gating,
                severity: finding.severity,
                path: finding.path.as_deref(),
                line: finding.line,
                subject: finding.subject.as_deref(),
                message: &finding.message,
                fingerprint: finding.fingerprint.as_deref(),
            };
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
