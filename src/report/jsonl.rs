//! JSON Lines for log pipelines: per image, one `image` record (verdict, exit code, whether
//! it was read completely, counts, labels), then one `finding` record per finding. Every
//! line has a `type`, so a pipeline tells "clean" (an image record, no findings) from
//! "unreadable" (an image record with an error or `incomplete`). Each line is
//! self-contained (image, rule, status, gating, waiver and baseline state) so a line
//! filtered out of the stream still says what it is; the fingerprint stands in for any
//! secret.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::{
    BaselineState, Counts, FileDigest, ImageReport, Report, ResultStatus, WaiverRef, SCHEMA_VERSION,
};

#[derive(Serialize)]
struct ImageLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema_version: u32,
    image: &'a str,
    format: Option<&'a str>,
    verdict: &'static str,
    exit_code: u8,
    /// Some volume, mount, path or rule could not be read or decided.
    incomplete: bool,
    /// Why the image could not be opened at all.
    error: Option<&'a str>,
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    digests: &'a [FileDigest],
    /// Rules by status.
    rules: &'a Counts,
    findings: usize,
    /// How many things were not read, per cause (the JSON report lists them).
    not_read: NotReadCounts,
}

#[derive(Serialize)]
struct NotReadCounts {
    volumes: usize,
    mounts: usize,
    paths: usize,
    /// The kinds of the guest's other causes (`no-os-root`, `partition-table`, …).
    causes: Vec<&'static str>,
}

#[derive(Serialize)]
struct FindingLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
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
    #[serde(flatten)]
    residue: Option<&'a super::ResidueInfo>,
    waiver: Option<&'a WaiverRef>,
    baseline: Option<BaselineState>,
}

fn image_line(image: &ImageReport) -> ImageLine<'_> {
    let not_read = &image.not_read;
    ImageLine {
        kind: "image",
        schema_version: SCHEMA_VERSION,
        image: &image.image.path,
        format: image.image.format.as_deref(),
        verdict: image.summary.verdict.as_str(),
        exit_code: image.summary.exit_code,
        incomplete: image.summary.incomplete,
        error: image.error.as_deref(),
        labels: &image.labels,
        digests: &image.image.digests,
        rules: &image.summary.results,
        findings: image.summary.findings,
        not_read: NotReadCounts {
            volumes: not_read.volumes.len(),
            mounts: not_read.mounts.len(),
            paths: not_read.paths.len(),
            causes: not_read.cause_kinds(),
        },
    }
}

fn line(out: &mut dyn Write, record: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
    writeln!(out)
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for image in &report.images {
        line(out, &image_line(image))?;
        for result in &image.results {
            for finding in &result.findings {
                let record = FindingLine {
                    kind: "finding",
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
                    residue: finding.residue.as_ref(),
                    waiver: finding.waiver.as_ref(),
                    baseline: finding.baseline,
                };
                line(out, &record)?;
            }
        }
    }
    Ok(())
}
