//! SARIF 2.1.0 rendering for GitHub code scanning and other SARIF viewers: rule
//! descriptors, one result per finding of a failing or waived rule, locations, stable
//! fingerprints, suppressions and notifications. What fails is the gate's business; this
//! module only maps the decided report onto SARIF.
//!
//! Decisions, each checked against what GitHub's ingestion accepts:
//! - One run per image. GitHub rejects an upload holding several runs of the same tool and
//!   category (since June 2025; github.blog changelog 2024-05-06), so with more than one
//!   image each run carries its own `automationDetails.id` (`amiscan/<image file name>/`).
//!   The upload action only fills `automationDetails` where it is absent, so a single-image
//!   run leaves it out and the workflow's `category` applies as usual.
//! - GitHub refuses the whole file when a result has no physical location ("expected at
//!   least one location", "expected a physical location"), so a finding without a guest
//!   path (a setting whose compiled-in default applies) is located at the image file
//!   itself, relative to `IMAGEDIR`; its subject goes in a logical location.
//! - Guest paths are relative references under `GUESTROOT` (`file:///`, the guest's root).
//!   GitHub ignores `originalUriBaseIds` and reads them as repository paths, which is
//!   harmless: the file is not in the repository, so the alert shows without a preview.
//! - A run whose image could not be opened or was read only in part is not an analysis
//!   that found nothing: `executionSuccessful` is false and each cause is an `error`
//!   notification located at the image file, so no viewer reads missing results as fixes.
//! - `partialFingerprints` hold a key of our own (`amiscan/v1`) built from what identifies
//!   a finding across rebuilds of an image: rule, guest path, subject, secret fingerprint,
//!   and the finding's rank among findings sharing those. Never the message or the line
//!   (lines move), and `primaryLocationLineHash` is not invented: it describes repository
//!   file contents we do not have.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::not_read;
use super::{
    BaselineState, FindingInfo, ImageReport, Report, ResultInfo, ResultStatus, RuleInfo,
    WaiverState,
};
use crate::rules::Severity;

const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
const GUEST_ROOT: &str = "GUESTROOT";
const IMAGE_DIR: &str = "IMAGEDIR";
/// Versioned so that a change in how the key is computed is a new key, not a silent change
/// of meaning (alerts would otherwise close and reopen).
const FINGERPRINT_KEY: &str = "amiscan/v1";

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    #[serde(skip_serializing_if = "Option::is_none")]
    automation_details: Option<AutomationDetails>,
    original_uri_base_ids: BTreeMap<&'static str, BaseUri>,
    invocations: Vec<Invocation>,
    results: Vec<SarifResult>,
    properties: RunProperties,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    rules: Vec<Descriptor>,
}

#[derive(Serialize)]
struct AutomationDetails {
    id: String,
}

#[derive(Serialize)]
struct BaseUri {
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<&'static str>,
    description: Text,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

fn text(text: impl Into<String>) -> Text {
    Text { text: text.into() }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    id: String,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    default_configuration: Configuration,
    properties: DescriptorProperties,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct DescriptorProperties {
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    tags: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_execution_notifications: Vec<Notification>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_configuration_notifications: Vec<Notification>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    level: &'static str,
    message: Text,
    /// The image file, for what concerns the whole image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    associated_rule: Option<RuleReference>,
}

#[derive(Serialize)]
struct RuleReference {
    id: String,
    index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    partial_fingerprints: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<Suppression>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_state: Option<&'static str>,
    properties: ResultProperties,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logical_locations: Vec<LogicalLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u64,
}

#[derive(Serialize)]
struct LogicalLocation {
    name: String,
}

#[derive(Serialize)]
struct Suppression {
    kind: &'static str,
    status: &'static str,
    justification: String,
    properties: SuppressionProperties,
}

#[derive(Serialize)]
struct SuppressionProperties {
    /// `FILE:LINE` of the waiver.
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties {
    /// Whether this finding fails the scan (not waived, not known, at or above --fail-on).
    gating: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunProperties {
    /// The image as named on the command line.
    image: String,
    verdict: &'static str,
    /// `--label KEY=VALUE`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    /// With `--image-digest`: each image file's SHA-256.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    digests: Vec<super::FileDigest>,
}

/// SARIF's levels; GitHub shows `error` as an error, `warning` as a warning, `note` as a note.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's scale: over 9.0 critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low. Info has
/// no band of its own and shows as low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// `ssh.host-keys` → `SshHostKeys`: SARIF wants a name distinct from the id.
fn camel_case(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for word in id.split(['.', '-', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() {
        out.push_str("Rule");
    }
    out
}

/// Escapes Markdown metacharacters in pack text shown on GitHub.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code fence longer than any backtick run in `code`, so the code cannot close it.
fn fence(code: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in code.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat(longest.max(2) + 1)
}

fn descriptor(rule: &RuleInfo) -> Descriptor {
    let remediation = rule.remediation.trim_end();
    let mut help_text = String::new();
    let mut markdown = String::new();
    if !remediation.is_empty() {
        help_text.push_str("Remediation (run before capturing the image):\n");
        help_text.push_str(remediation);
        help_text.push('\n');
        let fence = fence(remediation);
        markdown.push_str("**Remediation** (run before capturing the image):\n\n");
        markdown.push_str(&format!("{fence}sh\n{remediation}\n{fence}\n"));
    }
    if !rule.references.is_empty() {
        help_text.push_str("\nReferences:\n");
        markdown.push_str("\n**References**\n\n");
        for reference in &rule.references {
            help_text.push_str(&format!("- {reference}\n"));
            markdown.push_str(&format!("- {}\n", escape_markdown(reference)));
        }
    }
    if help_text.is_empty() {
        help_text.push_str(rule.description.trim());
        markdown.push_str(&escape_markdown(rule.description.trim()));
    }
    let mut tags = rule.tags.clone();
    // GitHub lists a rule among security alerts (and reads security-severity) only when it
    // is tagged `security`.
    if !tags.iter().any(|t| t == "security") {
        tags.push("security".to_string());
    }
    Descriptor {
        id: rule.id.clone(),
        name: camel_case(&rule.id),
        short_description: text(rule.title.trim()),
        full_description: text(rule.description.trim()),
        help: Help {
            text: help_text,
            markdown,
        },
        default_configuration: Configuration {
            level: level(rule.severity),
        },
        properties: DescriptorProperties {
            security_severity: security_severity(rule.severity),
            tags,
        },
    }
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
fn encode_segment(segment: &[u8], out: &mut String) {
    // A segment of only dots would be a dot-segment that URI resolution removes, climbing
    // out of the guest root; encoded dots are data.
    if !segment.is_empty() && segment.iter().all(|b| *b == b'.') {
        out.push_str(&"%2E".repeat(segment.len()));
        return;
    }
    for &byte in segment {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// A guest path as a relative reference under `GUESTROOT`: no leading slash (it would
/// discard the base), `/` kept between segments, everything else that could change how the
/// reference parses (`%`, `#`, `?`, `:`, spaces, backslashes, non-ASCII) percent-encoded.
/// The guest's bytes are encoded as they are, so the URI decodes to the exact path.
fn guest_uri(path: &[u8]) -> String {
    let start = path.iter().position(|b| *b != b'/').unwrap_or(path.len());
    let relative = path.get(start..).unwrap_or_default();
    if relative.is_empty() {
        return "./".to_string();
    }
    let mut out = String::with_capacity(relative.len());
    for (index, segment) in relative.split(|b| *b == b'/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        encode_segment(segment, &mut out);
    }
    out
}

/// The image's file name as a one-segment relative reference under `IMAGEDIR`.
fn image_uri(image_path: &str) -> String {
    let name = image_file_name(image_path);
    let mut out = String::new();
    encode_segment(
        if name.is_empty() { "image" } else { name }.as_bytes(),
        &mut out,
    );
    out
}

/// The last non-empty component of the image path as given.
fn image_file_name(image_path: &str) -> &str {
    image_path
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or(image_path)
}

/// One field of the fingerprint input, length-prefixed so no two tuples share an encoding.
fn hash_field(hasher: &mut Sha256, field: Option<&str>) {
    match field {
        None => hasher.update([0u8]),
        Some(value) => {
            hasher.update([1u8]);
            hasher.update(u64::try_from(value.len()).unwrap_or(u64::MAX).to_le_bytes());
            hasher.update(value.as_bytes());
        }
    }
}

/// The stable key of a finding (see the module documentation); `rank` tells apart findings
/// that share rule, path, subject and secret fingerprint.
fn fingerprint(rule: &str, finding: &FindingInfo, rank: usize) -> String {
    let mut hasher = Sha256::new();
    hash_field(&mut hasher, Some(rule));
    hash_field(&mut hasher, finding.shown_path().as_deref());
    hash_field(&mut hasher, finding.subject.as_deref());
    hash_field(&mut hasher, finding.fingerprint.as_deref());
    hasher.update(u64::try_from(rank).unwrap_or(u64::MAX).to_le_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn message(finding: &FindingInfo) -> String {
    let mut text = finding.message.clone();
    if let Some(fingerprint) = &finding.fingerprint {
        text.push_str(&format!("; secret fingerprint {fingerprint}"));
    }
    if let Some(waiver) = finding.waiver.as_ref().filter(|w| w.expired) {
        text.push_str(&format!(
            "; the waiver at {} expired on {} ({})",
            waiver.source,
            waiver.expires.as_deref().unwrap_or("?"),
            waiver.reason
        ));
    }
    text
}

fn location(finding: &FindingInfo, image_path: &str) -> Location {
    match &finding.guest_path {
        Some(path) => Location {
            physical_location: PhysicalLocation {
                artifact_location: ArtifactLocation {
                    uri: guest_uri(path.as_bytes()),
                    uri_base_id: GUEST_ROOT,
                },
                // SARIF lines start at 1; a 0 would make the file invalid.
                region: finding
                    .line
                    .filter(|line| *line >= 1)
                    .map(|start_line| Region { start_line }),
            },
            logical_locations: Vec::new(),
        },
        None => Location {
            logical_locations: finding
                .subject
                .iter()
                .map(|name| LogicalLocation { name: name.clone() })
                .collect(),
            ..image_location(image_path)
        },
    }
}

/// The image file itself, relative to `IMAGEDIR`.
fn image_location(image_path: &str) -> Location {
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: image_uri(image_path),
                uri_base_id: IMAGE_DIR,
            },
            region: None,
        },
        logical_locations: Vec::new(),
    }
}

/// Path, subject and secret fingerprint: what the baseline also matches findings by.
type FindingKey<'a> = (Option<String>, Option<&'a str>, Option<&'a str>);

fn results(result: &ResultInfo, rule_index: usize, image_path: &str, out: &mut Vec<SarifResult>) {
    let mut ranks: BTreeMap<FindingKey<'_>, usize> = BTreeMap::new();
    for finding in &result.findings {
        let key = (
            finding.shown_path(),
            finding.subject.as_deref(),
            finding.fingerprint.as_deref(),
        );
        let rank = ranks.entry(key).or_insert(0);
        let this_rank = *rank;
        *rank += 1;
        let suppressions = finding
            .waiver
            .iter()
            .filter(|w| !w.expired)
            .map(|w| Suppression {
                kind: "external",
                status: "accepted",
                justification: w.reason.clone(),
                properties: SuppressionProperties {
                    source: w.source.clone(),
                    expires: w.expires.clone(),
                },
            })
            .collect();
        out.push(SarifResult {
            rule_id: result.rule.clone(),
            rule_index,
            level: level(finding.severity),
            message: text(message(finding)),
            locations: vec![location(finding, image_path)],
            partial_fingerprints: BTreeMap::from([(
                FINGERPRINT_KEY,
                fingerprint(&result.rule, finding, this_rank),
            )]),
            suppressions,
            baseline_state: finding.baseline.map(|state| match state {
                BaselineState::New => "new",
                BaselineState::Known => "unchanged",
            }),
            properties: ResultProperties {
                gating: finding.gating,
                subject: finding.subject.clone(),
            },
        });
    }
}

/// Rules that could not decide, skipped rules, and problems reading the image.
fn execution_notifications(
    image: &ImageReport,
    index_of: &BTreeMap<&str, usize>,
) -> Vec<Notification> {
    let mut notifications = Vec::new();
    if let Some(error) = &image.error {
        notifications.push(Notification {
            level: "error",
            message: text(format!("the image could not be scanned: {error}")),
            locations: vec![image_location(&image.image.path)],
            associated_rule: None,
        });
    }
    if image.summary.incomplete {
        // Errors, so that a viewer does not take the missing results for fixed ones.
        for group in not_read::groups(image) {
            let mut items: Vec<String> = group
                .items
                .iter()
                .map(|item| match &item.place {
                    Some(place) => format!("{place}: {}", item.text),
                    None => item.text.clone(),
                })
                .collect();
            if group.more > 0 {
                items.push(format!("and {} more", not_read::thousands(group.more)));
            }
            notifications.push(Notification {
                level: "error",
                message: text(format!(
                    "not read, the result is incomplete: {}: {}",
                    group.heading,
                    items.join("; ")
                )),
                locations: vec![image_location(&image.image.path)],
                associated_rule: None,
            });
        }
    }
    for (index, note) in image.notes.iter().enumerate() {
        if image.not_read.covered_notes.contains(&index) {
            continue;
        }
        notifications.push(Notification {
            level: "warning",
            message: text(note.clone()),
            locations: Vec::new(),
            associated_rule: None,
        });
    }
    for result in &image.results {
        let Some(reason) = &result.reason else {
            continue;
        };
        let (level, what) = match result.status {
            ResultStatus::Error => ("error", "could not decide"),
            ResultStatus::Skipped => ("note", "does not apply"),
            ResultStatus::Fail | ResultStatus::Waived => ("warning", "could not read everything"),
            ResultStatus::Pass => ("note", "notes"),
        };
        notifications.push(Notification {
            level,
            message: text(format!("{} {what}: {reason}", result.rule)),
            locations: Vec::new(),
            associated_rule: index_of
                .get(result.rule.as_str())
                .map(|&index| RuleReference {
                    id: result.rule.clone(),
                    index,
                }),
        });
    }
    notifications
}

/// Waivers that need attention: the configuration, not the scan.
fn configuration_notifications(
    report: &Report,
    index_of: &BTreeMap<&str, usize>,
) -> Vec<Notification> {
    report
        .waivers
        .iter()
        .filter_map(|waiver| {
            let what = match waiver.state {
                WaiverState::Applied | WaiverState::NotEvaluated => return None,
                WaiverState::Expired => format!(
                    "expired on {}; the {} finding(s) it covers are not waived",
                    waiver.expires.as_deref().unwrap_or("?"),
                    waiver.matched
                ),
                WaiverState::Unmatched => "matched no finding".to_string(),
                WaiverState::UnknownRule => "names no loaded rule".to_string(),
            };
            Some(Notification {
                level: "warning",
                message: text(format!("waiver {} ({}) {what}", waiver.source, waiver.rule)),
                locations: Vec::new(),
                associated_rule: index_of
                    .get(waiver.rule.as_str())
                    .map(|&index| RuleReference {
                        id: waiver.rule.clone(),
                        index,
                    }),
            })
        })
        .collect()
}

/// Each run's category when there are several: the image's file name, or the path as given
/// when two images share a file name; a repeated path gets a counter.
fn categories(report: &Report) -> Vec<Option<String>> {
    if report.images.len() < 2 {
        return vec![None; report.images.len()];
    }
    let mut name_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &report.images {
        *name_counts
            .entry(image_file_name(&image.image.path))
            .or_insert(0) += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    report
        .images
        .iter()
        .map(|image| {
            let path = image.image.path.as_str();
            let name = image_file_name(path);
            let base = if name_counts.get(name).copied().unwrap_or(0) > 1 {
                path
            } else {
                name
            };
            let count = seen.entry(base.to_string()).or_insert(0);
            *count += 1;
            Some(if *count > 1 {
                format!("amiscan/{base}#{count}/")
            } else {
                format!("amiscan/{base}/")
            })
        })
        .collect()
}

fn run(report: &Report, image: &ImageReport, category: Option<String>, rules: &[RuleInfo]) -> Run {
    let index_of: BTreeMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(index, rule)| (rule.id.as_str(), index))
        .collect();
    let mut sarif_results = Vec::new();
    for result in &image.results {
        if !matches!(result.status, ResultStatus::Fail | ResultStatus::Waived) {
            continue;
        }
        // Every result's rule is among `rules` (see `rule_list`).
        let Some(&index) = index_of.get(result.rule.as_str()) else {
            continue;
        };
        results(result, index, &image.image.path, &mut sarif_results);
    }
    Run {
        tool: Tool {
            driver: Driver {
                name: report.tool.name,
                version: report.tool.version,
                semantic_version: report.tool.version,
                rules: rules.iter().map(descriptor).collect(),
            },
        },
        automation_details: category.map(|id| AutomationDetails { id }),
        original_uri_base_ids: BTreeMap::from([
            (
                GUEST_ROOT,
                BaseUri {
                    uri: Some("file:///"),
                    description: text("the guest's root file system"),
                },
            ),
            (
                IMAGE_DIR,
                BaseUri {
                    uri: None,
                    description: text("the directory holding the scanned image"),
                },
            ),
        ]),
        invocations: vec![Invocation {
            // An image read in part did not run to completion: GitHub code scanning then
            // keeps the alerts it already has instead of closing them as fixed.
            execution_successful: image.error.is_none() && !image.summary.incomplete,
            tool_execution_notifications: execution_notifications(image, &index_of),
            tool_configuration_notifications: configuration_notifications(report, &index_of),
        }],
        results: sarif_results,
        properties: RunProperties {
            image: image.image.path.clone(),
            verdict: image.summary.verdict.as_str(),
            labels: image.labels.clone(),
            digests: image.image.digests.clone(),
        },
    }
}

/// The rules that ran, in id order, plus any rule a result names that the list lacks (a
/// report built without rule documentation still renders).
fn rule_list(report: &Report) -> Vec<RuleInfo> {
    let mut rules: BTreeMap<&str, RuleInfo> = report
        .rules
        .iter()
        .map(|rule| (rule.id.as_str(), rule.clone()))
        .collect();
    for result in report.images.iter().flat_map(|image| &image.results) {
        rules
            .entry(result.rule.as_str())
            .or_insert_with(|| RuleInfo {
                id: result.rule.clone(),
                title: result.title.clone(),
                severity: result.severity,
                description: result.title.clone(),
                remediation: String::new(),
                references: Vec::new(),
                tags: Vec::new(),
            });
    }
    rules.into_values().collect()
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let rules = rule_list(report);
    let runs = report
        .images
        .iter()
        .zip(categories(report))
        .map(|(image, category)| run(report, image, category, &rules))
        .collect();
    let log = Log {
        schema: SCHEMA_URI,
        version: "2.1.0",
        runs,
    };
    serde_json::to_writer_pretty(&mut *out, &log).map_err(std::io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_become_relative_references_that_parse_one_way() {
        assert_eq!(
            guest_uri("/etc/ssh/sshd_config".as_bytes()),
            "etc/ssh/sshd_config"
        );
        assert_eq!(
            guest_uri("/home/a b/x#y?z".as_bytes()),
            "home/a%20b/x%23y%3Fz"
        );
        assert_eq!(guest_uri("/100%/f".as_bytes()), "100%25/f");
        // A colon in the first segment would read as a scheme.
        assert_eq!(guest_uri("/c:/x".as_bytes()), "c%3A/x");
        assert_eq!(guest_uri("/é".as_bytes()), "%C3%A9");
        // Bytes that are not UTF-8 are encoded as they are; a backslash is data.
        assert_eq!(guest_uri(b"/bad\xff"), "bad%FF");
        assert_eq!(guest_uri(b"/a\\b"), "a%5Cb");
        assert_eq!(guest_uri("/a\nb\tc\u{7f}".as_bytes()), "a%0Ab%09c%7F");
        // Leading slashes would make an absolute path (or, doubled, an authority).
        assert_eq!(guest_uri("//host/x".as_bytes()), "host/x");
        assert_eq!(guest_uri("/".as_bytes()), "./");
        assert_eq!(guest_uri("".as_bytes()), "./");
        // Dot segments are data, not directions out of the guest root.
        assert_eq!(guest_uri("/../etc/..".as_bytes()), "%2E%2E/etc/%2E%2E");
        assert_eq!(guest_uri("/a/./.b".as_bytes()), "a/%2E/.b");
        assert_eq!(
            guest_uri("/[x]@y;z=1&w+v,u!$'()*".as_bytes()),
            "%5Bx%5D%40y%3Bz%3D1%26w%2Bv%2Cu%21%24%27%28%29%2A"
        );
    }

    #[test]
    fn every_encoded_uri_is_ascii_without_reserved_characters() {
        for path in ["/a b", "/ü/ß", "/x?#[]", "/\u{0}\u{1f}", "/%41"] {
            let uri = guest_uri(path.as_bytes());
            assert!(
                uri.bytes().all(|b| b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%' | b'/')),
                "{path:?} → {uri}"
            );
            assert!(!uri.starts_with('/'), "{uri}");
        }
    }

    #[test]
    fn the_image_location_is_its_file_name() {
        assert_eq!(image_uri("/srv/images/ami 1.raw"), "ami%201.raw");
        assert_eq!(image_uri("build/out.qcow2"), "out.qcow2");
        assert_eq!(image_uri("disk.img"), "disk.img");
        assert_eq!(image_uri("dir/"), "dir");
        assert_eq!(image_uri(".."), "%2E%2E");
        assert_eq!(image_uri(""), "image");
    }

    #[test]
    fn names_and_markdown() {
        assert_eq!(camel_case("ssh.host-keys"), "SshHostKeys");
        assert_eq!(camel_case("creds.aws"), "CredsAws");
        assert_eq!(camel_case(""), "Rule");
        assert_eq!(
            escape_markdown("a_b *c* [d](e)"),
            "a\\_b \\*c\\* \\[d\\](e)"
        );
        assert_eq!(fence("echo hi"), "```");
        assert_eq!(fence("a ```` b"), "`````");
    }

    #[test]
    fn severities_map_onto_github_bands() {
        let band = |s: Severity| security_severity(s).parse::<f64>().unwrap();
        assert!(band(Severity::Critical) > 9.0);
        assert!((7.0..9.0).contains(&band(Severity::High)));
        assert!((4.0..7.0).contains(&band(Severity::Medium)));
        assert!((0.1..4.0).contains(&band(Severity::Low)));
        assert!((0.1..4.0).contains(&band(Severity::Info)));
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Info), "note");
    }

    fn finding(path: Option<&str>, subject: Option<&str>, fp: Option<&str>) -> FindingInfo {
        FindingInfo {
            path: path.map(str::to_string),
            path_base64: None,
            guest_path: path.map(crate::guest::GuestPath::from),
            subject: subject.map(str::to_string),
            message: "m".to_string(),
            line: Some(3),
            severity: Severity::High,
            fingerprint: fp.map(str::to_string),
            residue: None,
            gating: true,
            waiver: None,
            baseline: None,
        }
    }

    #[test]
    fn fingerprints_separate_fields_and_ignore_message_and_line() {
        let a = finding(Some("/a"), Some("b"), None);
        let mut moved = a.clone();
        moved.line = Some(40);
        moved.message = "other".to_string();
        assert_eq!(fingerprint("r.x", &a, 0), fingerprint("r.x", &moved, 0));
        assert_ne!(fingerprint("r.x", &a, 0), fingerprint("r.x", &a, 1));
        assert_ne!(fingerprint("r.x", &a, 0), fingerprint("r.y", &a, 0));
        // Moving text between fields changes the key.
        let shifted = finding(Some("/ab"), None, None);
        let split = finding(Some("/a"), Some("b"), None);
        assert_ne!(fingerprint("r", &shifted, 0), fingerprint("r", &split, 0));
        let none = finding(None, Some(""), None);
        let empty = finding(Some(""), None, None);
        assert_ne!(fingerprint("r", &none, 0), fingerprint("r", &empty, 0));
        assert_eq!(fingerprint("r", &a, 0).len(), 64);
    }
}
