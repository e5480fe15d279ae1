//! Scan reports: the data model of the public JSON contract (schema_version 2, described
//! in docs/json-schema.md and docs/scan-report.schema.json) and its renderings. Building a
//! report records what each scan found; `crate::gate` then decides what fails (waivers,
//! baseline, `--fail-on`) and fills in the statuses, summaries and verdicts.

pub mod jsonl;
pub mod junit;
pub mod markdown;
pub mod remediation;
pub mod sarif;
pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::guest::{display_path, Guest, OsRelease};
use crate::rules::{Rule, RuleResult, Severity, Status};

pub use crate::gate::FailOn;

/// Bumped only when the JSON contract changes incompatibly.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Tool {
    pub fn this() -> Self {
        Tool {
            name: "amiscan",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The image as named on the command line.
    pub path: String,
    /// Null when the image could not be opened. For a guest of several disks, the first's.
    pub format: Option<String>,
    /// For a guest of several disks, the sum of their sizes.
    pub virtual_size: Option<u64>,
    /// Each disk of a guest given as several disks (`DISK+DISK`); absent for one disk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskInfo>,
}

/// One disk of a guest of several disks.
#[derive(Debug, Clone, Serialize)]
pub struct DiskInfo {
    /// The prefix of the disk's volume ids.
    pub name: String,
    pub path: String,
    pub format: String,
    pub virtual_size: u64,
}

#[derive(Debug, Clone, Serialize)]
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

/// A waiver that covered a finding: applied, or expired and so no longer applied.
#[derive(Debug, Clone, Serialize)]
pub struct WaiverRef {
    /// `FILE:LINE` of the waiver.
    pub source: String,
    pub reason: String,
    pub expires: Option<String>,
    pub expired: bool,
}

/// Whether a finding was already in the baseline report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineState {
    New,
    Known,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingInfo {
    pub path: Option<String>,
    pub subject: Option<String>,
    pub message: String,
    pub line: Option<u64>,
    pub severity: Severity,
    /// For secrets: the first characters and a short hash, never the secret.
    pub fingerprint: Option<String>,
    /// Whether this finding makes the scan fail: not waived, not in the baseline, at or
    /// above `--fail-on`.
    pub gating: bool,
    /// The waiver covering this finding, if any (an expired one does not waive it).
    pub waiver: Option<WaiverRef>,
    /// Null without `--baseline`.
    pub baseline: Option<BaselineState>,
}

impl FindingInfo {
    pub fn waived(&self) -> bool {
        self.waiver.as_ref().is_some_and(|w| !w.expired)
    }
}

/// A result's status in the report: the rule engine's, plus `waived` for a failing rule
/// whose every finding a waiver covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Pass,
    Fail,
    Waived,
    Error,
    Skipped,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Pass => "pass",
            ResultStatus::Fail => "fail",
            ResultStatus::Waived => "waived",
            ResultStatus::Error => "error",
            ResultStatus::Skipped => "skipped",
        }
    }
}

impl From<Status> for ResultStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pass => ResultStatus::Pass,
            Status::Fail => ResultStatus::Fail,
            Status::Error => ResultStatus::Error,
            Status::Skipped => ResultStatus::Skipped,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ResultInfo {
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub status: ResultStatus,
    /// Whether this result makes the scan fail (some finding is gating).
    pub gating: bool,
    pub reason: Option<String>,
    pub findings: Vec<FindingInfo>,
}

impl ResultInfo {
    /// The most severe finding's severity among those not waived (the rule's own when
    /// there are none).
    pub fn effective_severity(&self) -> Severity {
        self.findings
            .iter()
            .filter(|f| !f.waived())
            .map(|f| f.severity)
            .max()
            .unwrap_or(self.severity)
    }
}

/// A finding of the baseline report that this scan no longer makes.
#[derive(Debug, Clone, Serialize)]
pub struct FixedFinding {
    pub rule: String,
    pub path: Option<String>,
    pub subject: Option<String>,
    pub fingerprint: Option<String>,
    /// The earlier report's message and severity.
    pub message: String,
    pub severity: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub waived: usize,
    pub error: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Images in this summary (1 for an image's own).
    pub images: usize,
    pub rules: usize,
    pub results: Counts,
    pub findings: usize,
    /// Findings a waiver covers.
    pub waived: usize,
    /// Findings already in the baseline (0 without one).
    pub known: usize,
    /// Baseline findings no longer present (0 without one).
    pub fixed: usize,
    /// Failing rules per effective severity (the most severe unwaived finding's).
    pub failing: BTreeMap<Severity, usize>,
    pub fail_on: &'static str,
    /// Some image, volume, mount or file could not be read.
    pub incomplete: bool,
    pub verdict: Verdict,
    pub exit_code: u8,
}

impl Summary {
    pub fn new(fail_on: FailOn) -> Self {
        Summary {
            images: 0,
            rules: 0,
            results: Counts::default(),
            findings: 0,
            waived: 0,
            known: 0,
            fixed: 0,
            failing: BTreeMap::new(),
            fail_on: fail_on.as_str(),
            incomplete: false,
            verdict: Verdict::Pass,
            exit_code: 0,
        }
    }
}

/// The scan's answer, from the best to the worst; the worst image decides a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No gating finding, and everything was read.
    Pass,
    /// Nothing gating, but something could not be read.
    Incomplete,
    /// The image could not be opened at all.
    Error,
    /// At least one gating finding: the image is rejected whatever else is unknown.
    Fail,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Error => 2,
            Verdict::Incomplete => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Incomplete => "incomplete",
            Verdict::Error => "error",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub duration_ms: u64,
    pub files: usize,
    pub bytes_read: u64,
    /// The secrets pass, when a secrets rule ran.
    pub secrets: Option<crate::rules::checks::secrets::SecretStats>,
}

/// One image of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub image: ImageInfo,
    /// Why the image could not be scanned at all; its verdict is then `error`.
    pub error: Option<String>,
    pub os: Option<OsRelease>,
    pub volumes: Vec<VolumeInfo>,
    pub results: Vec<ResultInfo>,
    /// Baseline findings this scan no longer makes.
    pub fixed: Vec<FixedFinding>,
    /// Problems met while assembling the guest (unreadable volumes, missing mounts).
    pub notes: Vec<String>,
    pub summary: Summary,
    pub stats: Stats,
    /// The guest could not be read in full (decided while it was open).
    #[serde(skip)]
    pub guest_incomplete: bool,
}

/// How a waiver fared in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaiverState {
    /// It waived at least one finding.
    Applied,
    /// It is past its `expires` date; the findings it covers fail again.
    Expired,
    /// Its rule ran on an image it covers and it matched nothing: delete it.
    Unmatched,
    /// Its rule did not run (not selected) or no image of this run is covered.
    NotEvaluated,
    /// No loaded rule has this id.
    UnknownRule,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaiverInfo {
    pub source: String,
    pub rule: String,
    pub paths: Vec<String>,
    pub subjects: Vec<String>,
    pub images: Option<String>,
    pub reason: String,
    pub expires: Option<String>,
    pub state: WaiverState,
    /// Findings it covers (waived, or for an expired waiver, that it would have waived).
    pub matched: usize,
}

impl WaiverInfo {
    /// How the waiver fared, in words: the same on stderr, in the table and in Markdown.
    pub fn describe(&self) -> String {
        match self.state {
            WaiverState::Applied => format!("applied to {} finding(s)", self.matched),
            WaiverState::Expired => format!(
                "expired on {}; the {} finding(s) it covers fail again",
                self.expires.as_deref().unwrap_or("?"),
                self.matched
            ),
            WaiverState::Unmatched => "matched no finding; delete it".to_string(),
            WaiverState::NotEvaluated => {
                "not evaluated: its rule did not run, or it covers no image of this run".to_string()
            }
            WaiverState::UnknownRule => "names no loaded rule".to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineInfo {
    pub path: String,
    pub schema_version: u64,
}

/// A run over one or more images: the JSON contract.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub images: Vec<ImageReport>,
    /// Every waiver loaded, with how it fared.
    pub waivers: Vec<WaiverInfo>,
    pub baseline: Option<BaselineInfo>,
    /// Every rule that ran, in id order, with its documentation (SARIF describes rules).
    pub rules: Vec<RuleInfo>,
    /// All images together: counts summed, the worst verdict.
    pub summary: Summary,
}

/// A rule that ran, as its pack documents it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub remediation: String,
    pub references: Vec<String>,
    pub tags: Vec<String>,
}

impl From<&Rule> for RuleInfo {
    fn from(rule: &Rule) -> Self {
        RuleInfo {
            id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity,
            description: rule.description.clone(),
            remediation: rule.remediation.clone(),
            references: rule.references.clone(),
            tags: rule.tags.clone(),
        }
    }
}

impl ImageReport {
    /// What a scan of an opened guest found, before the gate decides.
    pub fn scanned(guest: &Guest, results: &[RuleResult], stats: Stats) -> Self {
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
        let results = results
            .iter()
            .map(|result| ResultInfo {
                rule: result.rule.id.clone(),
                title: result.rule.title.clone(),
                severity: result.rule.severity,
                status: result.status.into(),
                gating: false,
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
                        gating: false,
                        waiver: None,
                        baseline: None,
                    })
                    .collect(),
            })
            .collect();
        ImageReport {
            image: ImageInfo {
                path: guest.image_name.clone(),
                format: guest.first_image().map(|image| image.format.to_string()),
                virtual_size: Some(guest.virtual_size()),
                disks: disk_infos(guest),
            },
            error: None,
            os: guest.os.clone(),
            volumes,
            results,
            fixed: Vec::new(),
            notes: guest.notes.iter().map(|n| n.message.clone()).collect(),
            summary: Summary::new(FailOn::Never),
            stats,
            guest_incomplete: guest.incomplete(),
        }
    }

    /// An image that could not be opened.
    pub fn unreadable(path: String, error: String) -> Self {
        ImageReport {
            image: ImageInfo {
                path,
                format: None,
                virtual_size: None,
                disks: Vec::new(),
            },
            error: Some(error),
            os: None,
            volumes: Vec::new(),
            results: Vec::new(),
            fixed: Vec::new(),
            notes: Vec::new(),
            summary: Summary::new(FailOn::Never),
            stats: Stats::default(),
            guest_incomplete: true,
        }
    }
}

/// The disks of a guest given as several, each under its name.
fn disk_infos(guest: &Guest) -> Vec<DiskInfo> {
    if guest.disks.len() < 2 {
        return Vec::new();
    }
    guest
        .disks
        .iter()
        .zip(&guest.layout.disks)
        .map(|(disk, table)| DiskInfo {
            name: table.name.clone().unwrap_or_default(),
            path: disk.path.clone(),
            format: disk.image.format.to_string(),
            virtual_size: disk.image.disk.len(),
        })
        .collect()
}
