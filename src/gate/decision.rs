//! What the gate decided: each finding's waiver, baseline state and whether it gates;
//! each result's and image's status and verdict; how every waiver fared. Typed values,
//! rendered by `crate::report` and acted on by the remediation script.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::guest::GuestPath;
use crate::rules::{FailOn, Finding, Rule, RuleResult, Severity, Status};

/// One image as the scan left it, before the gate: its findings, whether everything was
/// read, and `details` the gate carries through untouched for the report.
pub struct Scanned<D> {
    pub details: D,
    /// The image argument as given; waivers and baselines pair with it.
    pub path: String,
    /// Why the image could not be scanned at all.
    pub unreadable: Option<String>,
    /// Some volume, mount or file could not be read.
    pub incomplete: bool,
    pub results: Vec<RuleResult>,
}

/// A finding with the gate's decision.
#[derive(Debug, Clone)]
pub struct DecidedFinding {
    pub finding: Finding,
    /// The finding's own severity, else its rule's.
    pub severity: Severity,
    /// Not waived, not in the baseline, at or above `--fail-on`: it makes the scan fail.
    pub gating: bool,
    /// The waiver covering it, if any (an expired one does not waive it).
    pub waiver: Option<WaiverRef>,
    /// Null without `--baseline`.
    pub baseline: Option<BaselineState>,
}

impl DecidedFinding {
    pub fn waived(&self) -> bool {
        self.waiver.as_ref().is_some_and(|w| !w.expired)
    }
}

/// A rule's result with the gate's decision.
#[derive(Debug, Clone)]
pub struct DecidedResult {
    pub rule: Arc<Rule>,
    /// The engine's status, or `waived` when a waiver covers every finding.
    pub status: ResultStatus,
    pub reason: Option<String>,
    /// Some finding gates.
    pub gating: bool,
    pub findings: Vec<DecidedFinding>,
}

impl DecidedResult {
    /// The most severe finding's severity among those not waived (the rule's own when
    /// there are none).
    pub fn effective_severity(&self) -> Severity {
        self.findings
            .iter()
            .filter(|f| !f.waived())
            .map(|f| f.severity)
            .max()
            .unwrap_or(self.rule.severity)
    }
}

/// One image with the gate's decision.
pub struct DecidedImage<D> {
    pub details: D,
    pub path: String,
    pub unreadable: Option<String>,
    pub results: Vec<DecidedResult>,
    /// Baseline findings this scan no longer makes.
    pub fixed: Vec<FixedFinding>,
    /// What the gate has to say about the image (no baseline image to compare with).
    pub notes: Vec<String>,
    pub summary: Summary,
}

/// The gate's answer for a run.
pub struct Decision<D> {
    pub images: Vec<DecidedImage<D>>,
    /// Every waiver loaded, with how it fared.
    pub waivers: Vec<WaiverInfo>,
    /// All images together: counts summed, the worst verdict.
    pub summary: Summary,
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

/// A finding of the baseline report that this scan no longer makes.
#[derive(Debug, Clone)]
pub struct FixedFinding {
    pub rule: String,
    pub path: Option<GuestPath>,
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
    /// Adds one image's summary to a run's: counts summed, the worse verdict kept.
    pub fn add(&mut self, one: &Summary) {
        self.images += 1;
        self.rules += one.rules;
        self.results.pass += one.results.pass;
        self.results.fail += one.results.fail;
        self.results.waived += one.results.waived;
        self.results.error += one.results.error;
        self.results.skipped += one.results.skipped;
        self.findings += one.findings;
        self.waived += one.waived;
        self.known += one.known;
        self.fixed += one.fixed;
        for (severity, count) in &one.failing {
            *self.failing.entry(*severity).or_insert(0) += count;
        }
        self.incomplete |= one.incomplete;
        self.verdict = self.verdict.max(one.verdict);
    }

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
    /// The exit code of a run or command with this verdict: the one table of them.
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
