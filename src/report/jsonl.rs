//! JSON Lines: one object per finding, for log pipelines. Each line is self-contained
//! (image, rule, status, gating, waiver and baseline state) so a line filtered out of the
//! stream still says what it is; the fingerprint stands in for any secret.

use std::io::Write;

use serde::Serialize;

use super::{BaselineState, Report, ResultStatus, WaiverRef};

#[derive(Serialize)]
struct Line<'a> {
    image: &'a str,
    rule: &'a str,
    title: &'a str,
    status: ResultStatus,
    gating: bool,
    severity: crate::rules::Severity,
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_base64: Option<&'a str>,
    line: Option<u64>,
    subject: Option<&'a str>,
    message: &'a str,
    fingerprint: Option<&'a str>,
    waiver: Option<&'a WaiverRef>,
    baseline: Option<BaselineState>,
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for image in &report.images {
        for result in &image.results {
            for finding in &result.findings {
                let line = Line {
                    image: &image.image.path,
                    rule: &result.rule,
                    title: &result.title,
                    status: result.status,
                    gating: finding.gating,
                    severity: finding.severity,
                    path: finding.path.as_deref(),
                    path_base64: finding.path_base64.as_deref(),
                    line: finding.line,
                    subject: finding.subject.as_deref(),
                    message: &finding.message,
                    fingerprint: finding.fingerprint.as_deref(),
                    waiver: finding.waiver.as_ref(),
                    baseline: finding.baseline,
                };
                serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
                writeln!(out)?;
            }
        }
    }
    Ok(())
}
