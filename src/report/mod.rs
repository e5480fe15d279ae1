//! Scan reports: the data model of the public JSON contract (schema_version 1, described
//! in docs/json-schema.md and docs/scan-report.schema.json) and its renderings. Building a
//! report decides nothing; the verdict and exit code come from `summary`.

pub mod jsonl;
pub mod markdown;
pub mod table;

use serde::Serialize;

use crate::guest::{display_path, Guest, OsRelease};
use crate::rules::{RuleResult, Severity, Status};

/// Bumped only when the JSON contract changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// What the gate fails on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    At(Severity),
    Never,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::At(severity) => severity.as_str(),
            FailOn::Never => "never",
        }
    }

    pub fn gates(self, severity: Severity) -> bool {
        match self {
            FailOn::At(threshold) => severity >= threshold,
            FailOn::Never => false,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ImageInfo {
    pub path: String,
    pub format: String,
    pub virtual_size: u64,
}

#[derive(Debug, Serialize)]
pub struct VolumeInfo {
    pub id: String,
    pub scheme: String,
    pub partition: Option<u32>,
    pub filesystem: &'static str,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub mount_point: Option<String>,
    pub scanned: bool,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FindingInfo {
    pub path: Option<String>,
    pub subject: Option<String>,
    pub message: String,
    pub line: Option<u64>,
    pub severity: Severity,
    /// For secrets: the first characters and a short hash, never the secret.
    pub fingerprint: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ResultInfo {
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    /// Whether this result makes the scan fail at the chosen `--fail-on`.
    pub gating: bool,
    pub reason: Option<String>,
    pub findings: Vec<FindingInfo>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub skipped: usize,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub rules: usize,
    pub results: Counts,
    pub findings: usize,
    /// Failing rules per effective severity (the most severe finding's).
    pub failing: std::collections::BTreeMap<Severity, usize>,
    pub fail_on: &'static str,
    /// Some volume, mount or file could not be read.
    pub incomplete: bool,
    pub verdict: Verdict,
    pub exit_code: u8,
}

/// The scan's answer, in the order of precedence the exit code follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No failing rule at or above `--fail-on`, and everything was read.
    Pass,
    /// At least one failing rule at or above `--fail-on`.
    Fail,
    /// Nothing failed, but something could not be read.
    Incomplete,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Incomplete => 3,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub duration_ms: u64,
    pub files: usize,
    pub bytes_read: u64,
    /// The secrets pass, when a secrets rule ran.
    pub secrets: Option<crate::rules::checks::secrets::SecretStats>,
}

/// A scan of one image: the JSON contract.
#[derive(Debug, Serialize)]
pub struct ScanReport {
    pub schema_version: u32,
    pub tool: Tool,
    pub image: ImageInfo,
    pub os: Option<OsRelease>,
    pub volumes: Vec<VolumeInfo>,
    pub results: Vec<ResultInfo>,
    /// Problems met while assembling the guest (unreadable volumes, missing mounts).
    pub notes: Vec<String>,
    pub summary: Summary,
    pub stats: Stats,
}

impl ScanReport {
    pub fn new(guest: &Guest, results: &[RuleResult], fail_on: FailOn, stats: Stats) -> Self {
        let volumes = guest
            .volumes
            .iter()
            .map(|state| {
                let v = &state.volume;
                VolumeInfo {
                    id: v.id.clone(),
                    scheme: v.scheme.to_string(),
                    partition: v.partition,
                    filesystem: v.identity.content.as_str(),
                    label: v.identity.label.clone(),
                    uuid: v.identity.uuid.clone(),
                    mount_point: state.mount_point.as_deref().map(display_path),
                    scanned: state.fs.is_some(),
                    error: state.not_scanned.clone(),
                }
            })
            .collect();
        let mut counts = Counts::default();
        let mut failing = std::collections::BTreeMap::new();
        let mut gate_failed = false;
        let mut any_error = false;
        let results: Vec<ResultInfo> = results
            .iter()
            .map(|result| {
                let severity = result.severity();
                let gating = result.status == Status::Fail && fail_on.gates(severity);
                gate_failed |= gating;
                match result.status {
                    Status::Pass => counts.pass += 1,
                    Status::Fail => {
                        counts.fail += 1;
                        *failing.entry(severity).or_insert(0) += 1;
                    }
                    Status::Error => {
                        counts.error += 1;
                        any_error = true;
                    }
                    Status::Skipped => counts.skipped += 1,
                }
                ResultInfo {
                    rule: result.rule.id.clone(),
                    title: result.rule.title.clone(),
                    severity: result.rule.severity,
                    status: result.status,
                    gating,
                    reason: result.reason.clone(),
                    findings: result
                        .findings
                        .iter()
                        .map(|f| FindingInfo {
                            path: f.path.clone(),
                            subject: f.subject.clone(),
                            message: f.message.clone(),
                            line: f.line,
                            severity: f.severity.unwrap_or(result.rule.severity),
                            fingerprint: f.fingerprint.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        let incomplete = guest.incomplete() || any_error;
        let verdict = if gate_failed {
            Verdict::Fail
        } else if incomplete {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        };
        let findings = results.iter().map(|r| r.findings.len()).sum();
        ScanReport {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "amiscan",
                version: env!("CARGO_PKG_VERSION"),
            },
            image: ImageInfo {
                path: guest.image_name.clone(),
                format: guest.image.format.to_string(),
                virtual_size: guest.image.disk.len(),
            },
            os: guest.os.clone(),
            volumes,
            notes: guest.notes.iter().map(|n| n.message.clone()).collect(),
            summary: Summary {
                rules: results.len(),
                results: counts,
                findings,
                failing,
                fail_on: fail_on.as_str(),
                incomplete,
                verdict,
                exit_code: verdict.exit_code(),
            },
            results,
            stats,
        }
    }
}
