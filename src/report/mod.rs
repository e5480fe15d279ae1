//! Scan reports: the data model of the public JSON contract (schema_version 4, described
//! in docs/json-schema.md and docs/scan-report.schema.json) and its renderings. A report is
//! built once, from what `crate::gate` decided; guest paths become text only here, each
//! renderer escaping them for its medium.

pub mod jsonl;
pub mod junit;
pub mod markdown;
pub mod not_read;
pub mod remediation;
pub mod sarif;
pub mod table;
pub mod terminal;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::gate::baseline::Baseline;
pub use crate::gate::{
    BaselineState, Counts, DecidedFinding, DecidedImage, Decision, FixedFinding, ResultStatus,
    Summary, Verdict, WaiverInfo, WaiverRef, WaiverState,
};
use crate::guest::{display_path, Guest, GuestPath, OsRelease};
pub use crate::rules::FailOn;
use crate::rules::{Rule, Severity};
use crate::walk::Inventory;
pub use not_read::NotRead;

/// A rendering of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Markdown,
    Sarif,
    Junit,
}

/// Writes a report in one format.
pub fn write(report: &Report, format: Format, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    match format {
        Format::Table => table::write(report, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::from)?;
            writeln!(out)
        }
        Format::Jsonl => jsonl::write(report, out),
        Format::Markdown => markdown::write(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
    }
}

/// Bumped only when the JSON contract changes incompatibly. 3: finding paths are the
/// guest's bytes (`path` as text, `path_base64` when not UTF-8), no longer escaped. 4:
/// every JSON Lines record has a `type`, and each image has an `image` record.
pub const SCHEMA_VERSION: u32 = 4;

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
    /// With `--image-digest`: the SHA-256 of each image file, one per disk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<FileDigest>,
}

/// The SHA-256 of one image file as read from disk (`sha256sum` gives the same).
#[derive(Debug, Clone, Serialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
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

#[derive(Debug, Clone, Serialize)]
pub struct FindingInfo {
    /// The guest path as text (lossy when its bytes are not UTF-8).
    pub path: Option<String>,
    /// The path's exact bytes, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    #[serde(skip)]
    pub guest_path: Option<GuestPath>,
    pub subject: Option<String>,
    pub message: String,
    pub line: Option<u64>,
    pub severity: Severity,
    /// For secrets: the first characters and a short hash, never the secret.
    pub fingerprint: Option<String>,
    /// For a finding in a volume's free space or journal: `volume`, `area`, `offset`.
    #[serde(flatten)]
    pub residue: Option<ResidueInfo>,
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

    /// The path for people: escaped for a terminal, reversibly.
    pub fn shown_path(&self) -> Option<String> {
        self.guest_path.as_ref().map(GuestPath::display)
    }

    fn from_decided(decided: &DecidedFinding) -> Self {
        let finding = &decided.finding;
        let (path, path_base64) = split_path(finding.path.as_ref());
        FindingInfo {
            path,
            path_base64,
            guest_path: finding.path.clone(),
            subject: finding.subject.clone(),
            message: finding.message.clone(),
            line: finding.line,
            severity: decided.severity,
            fingerprint: finding.fingerprint.clone(),
            residue: finding.residue.as_ref().map(ResidueInfo::of),
            gating: decided.gating,
            waiver: decided.waiver.clone(),
            baseline: decided.baseline,
        }
    }
}

/// Where a residue finding lies, as the JSON report gives it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResidueInfo {
    pub volume: String,
    /// `free space` or `journal`.
    pub area: &'static str,
    /// Byte offset on the image's virtual disk of the match's first byte.
    pub offset: u64,
    /// The deleted file's former guest path, where the filesystem can tell (lossy text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formerly: Option<String>,
}

impl ResidueInfo {
    fn of(at: &crate::rules::finding::ResidueAt) -> Self {
        Self {
            volume: at.volume.clone(),
            area: at.area.as_str(),
            offset: at.offset,
            formerly: at
                .formerly
                .as_ref()
                .map(|path| path.json_text_and_bytes().0),
        }
    }
}

/// A path's JSON text and, when it is not UTF-8, its bytes in base64.
fn split_path(path: Option<&GuestPath>) -> (Option<String>, Option<String>) {
    match path.map(GuestPath::json_text_and_bytes) {
        Some((text, bytes)) => (Some(text), bytes),
        None => (None, None),
    }
}

/// A finding of the baseline report that this scan no longer makes.
#[derive(Debug, Clone, Serialize)]
pub struct FixedInfo {
    pub rule: String,
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    #[serde(skip)]
    pub guest_path: Option<GuestPath>,
    pub subject: Option<String>,
    pub fingerprint: Option<String>,
    /// The earlier report's message and severity.
    pub message: String,
    pub severity: String,
}

impl FixedInfo {
    /// The path for people: escaped for a terminal, reversibly.
    pub fn shown_path(&self) -> Option<String> {
        self.guest_path.as_ref().map(GuestPath::display)
    }
}

impl From<&FixedFinding> for FixedInfo {
    fn from(fixed: &FixedFinding) -> Self {
        let (path, path_base64) = split_path(fixed.path.as_ref());
        FixedInfo {
            rule: fixed.rule.clone(),
            path,
            path_base64,
            guest_path: fixed.path.clone(),
            subject: fixed.subject.clone(),
            fingerprint: fixed.fingerprint.clone(),
            message: fixed.message.clone(),
            severity: fixed.severity.clone(),
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub duration_ms: u64,
    pub files: usize,
    pub bytes_read: u64,
    /// The secrets pass, when a secrets rule ran.
    pub secrets: Option<crate::rules::checks::secrets::SecretStats>,
    /// The residue pass; absent with `--no-residue` or when no residue rule ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residue: Option<crate::rules::checks::residue::ResidueStats>,
    /// Checksum mismatches let through under `--ignore-checksums`; absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_mismatches_ignored: Option<u64>,
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
    pub fixed: Vec<FixedInfo>,
    /// Problems met while assembling the guest (unreadable volumes, missing mounts), then
    /// what the gate noted.
    pub notes: Vec<String>,
    /// What the scan did not read, per cause: why an incomplete result is incomplete.
    pub not_read: NotRead,
    /// `--label KEY=VALUE` given for the run.
    pub labels: BTreeMap<String, String>,
    pub summary: Summary,
    pub stats: Stats,
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
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// How long the run took, from start to the report.
    pub duration_ms: u64,
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

/// What a report says of an image besides the gate's decision: the image, its OS and
/// volumes, the notes of assembling the guest, and the scan's statistics.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub image: ImageInfo,
    pub os: Option<OsRelease>,
    pub volumes: Vec<VolumeInfo>,
    pub notes: Vec<String>,
    pub not_read: NotRead,
    pub stats: Stats,
}

impl ImageDetails {
    /// An opened guest, as scanned: `inventory` is its walk.
    pub fn of(guest: &Guest, inventory: &Inventory, stats: Stats) -> Self {
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
        ImageDetails {
            image: ImageInfo {
                path: guest.image_name.clone(),
                format: guest.first_image().map(|image| image.format.to_string()),
                virtual_size: Some(guest.virtual_size()),
                disks: disk_infos(guest),
                digests: Vec::new(),
            },
            os: guest.os.clone(),
            volumes,
            notes: guest.notes.iter().map(|n| n.message.clone()).collect(),
            not_read: NotRead::of(guest, inventory),
            stats,
        }
    }

    /// An image that could not be opened.
    pub fn unreadable(path: String) -> Self {
        ImageDetails {
            image: ImageInfo {
                path,
                format: None,
                virtual_size: None,
                disks: Vec::new(),
                digests: Vec::new(),
            },
            os: None,
            volumes: Vec::new(),
            notes: Vec::new(),
            not_read: NotRead::default(),
            stats: Stats::default(),
        }
    }
}

impl ImageReport {
    fn from_decided(
        decided: &DecidedImage<ImageDetails>,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        let details = &decided.details;
        let results = decided
            .results
            .iter()
            .map(|result| ResultInfo {
                rule: result.rule.id.clone(),
                title: result.rule.title.clone(),
                severity: result.rule.severity,
                status: result.status,
                gating: result.gating,
                reason: result.reason.clone(),
                findings: result
                    .findings
                    .iter()
                    .map(FindingInfo::from_decided)
                    .collect(),
            })
            .collect();
        ImageReport {
            image: details.image.clone(),
            error: decided.unreadable.clone(),
            os: details.os.clone(),
            volumes: details.volumes.clone(),
            results,
            fixed: decided.fixed.iter().map(FixedInfo::from).collect(),
            notes: details
                .notes
                .iter()
                .chain(&decided.notes)
                .cloned()
                .collect(),
            not_read: details.not_read.clone(),
            labels: labels.clone(),
            summary: decided.summary.clone(),
            stats: details.stats.clone(),
        }
    }
}

/// What a report says of the run besides the decision: the user's labels and the timing.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `--label KEY=VALUE`, attached to every image.
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
}

impl Report {
    /// The report of a decided run: built once, read by every renderer.
    pub fn new(
        decision: &Decision<ImageDetails>,
        rules: &[Arc<Rule>],
        baseline: Option<&Baseline>,
        run: RunInfo,
    ) -> Self {
        let mut rules: Vec<RuleInfo> = rules.iter().map(|r| RuleInfo::from(r.as_ref())).collect();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool::this(),
            started_at: run.started_at,
            duration_ms: run.duration_ms,
            images: decision
                .images
                .iter()
                .map(|image| ImageReport::from_decided(image, &run.labels))
                .collect(),
            waivers: decision.waivers.clone(),
            baseline: baseline.map(|b| BaselineInfo {
                path: b.path.clone(),
                schema_version: b.schema_version,
            }),
            rules,
            summary: decision.summary.clone(),
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
