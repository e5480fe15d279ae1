//! The gate: decides which findings fail a run. A finding gates unless a waiver covers it,
//! the baseline already knew it, or it is below `--fail-on`; an image's verdict and the
//! run's (the worst image's) follow. Reading waiver files and baselines lives in the
//! submodules; rendering lives in `report`.

pub mod baseline;
pub mod waivers;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::report::{
    BaselineInfo, BaselineState, ImageReport, Report, ResultStatus, RuleInfo, Summary, Tool,
    Verdict, WaiverInfo, WaiverRef, WaiverState, SCHEMA_VERSION,
};
use crate::rules::{Rule, Severity};
use baseline::{Baseline, Key};
use waivers::Waiver;

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

/// Everything the gate weighs besides the findings.
pub struct Gate<'a> {
    pub fail_on: FailOn,
    pub waivers: &'a [Waiver],
    pub baseline: Option<&'a Baseline>,
    /// The day waiver expiry is judged on (`--as-of` or today, UTC).
    pub today: (i32, u32, u32),
    /// Every rule id loaded, selected or not: a waiver for another id names no rule.
    pub known_rules: &'a BTreeSet<String>,
    /// The rules that ran (the selection), described in the report.
    pub rules: &'a [std::sync::Arc<Rule>],
}

/// How each waiver fared across the images.
#[derive(Default, Clone)]
struct WaiverTally {
    evaluated: bool,
    matched: usize,
}

impl Gate<'_> {
    /// Decides every image and the run.
    pub fn decide(&self, mut images: Vec<ImageReport>) -> Report {
        let mut tallies = vec![WaiverTally::default(); self.waivers.len()];
        for image in &mut images {
            self.decide_image(image, &mut tallies);
        }
        let waivers = self
            .waivers
            .iter()
            .zip(&tallies)
            .map(|(waiver, tally)| WaiverInfo {
                source: waiver.source.clone(),
                rule: waiver.rule.clone(),
                paths: waiver.paths.clone(),
                subjects: waiver.subjects.clone(),
                images: waiver.images.clone(),
                reason: waiver.reason.clone(),
                expires: waiver.expires.as_ref().map(|(text, _)| text.clone()),
                state: if !self.known_rules.contains(&waiver.rule) {
                    WaiverState::UnknownRule
                } else if waiver.expired(self.today) {
                    WaiverState::Expired
                } else if tally.matched > 0 {
                    WaiverState::Applied
                } else if tally.evaluated {
                    WaiverState::Unmatched
                } else {
                    WaiverState::NotEvaluated
                },
                matched: tally.matched,
            })
            .collect();
        let mut summary = Summary::new(self.fail_on);
        for image in &images {
            let one = &image.summary;
            summary.images += 1;
            summary.rules += one.rules;
            summary.results.pass += one.results.pass;
            summary.results.fail += one.results.fail;
            summary.results.waived += one.results.waived;
            summary.results.error += one.results.error;
            summary.results.skipped += one.results.skipped;
            summary.findings += one.findings;
            summary.waived += one.waived;
            summary.known += one.known;
            summary.fixed += one.fixed;
            for (severity, count) in &one.failing {
                *summary.failing.entry(*severity).or_insert(0) += count;
            }
            summary.incomplete |= one.incomplete;
            summary.verdict = summary.verdict.max(one.verdict);
        }
        summary.exit_code = summary.verdict.exit_code();
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool::this(),
            images,
            waivers,
            baseline: self.baseline.map(|b| BaselineInfo {
                path: b.path.clone(),
                schema_version: b.schema_version,
            }),
            rules: {
                let mut rules: Vec<RuleInfo> = self
                    .rules
                    .iter()
                    .map(|r| RuleInfo::from(r.as_ref()))
                    .collect();
                rules.sort_by(|a, b| a.id.cmp(&b.id));
                rules
            },
            summary,
        }
    }

    fn decide_image(&self, image: &mut ImageReport, tallies: &mut [WaiverTally]) {
        let image_path = Path::new(&image.image.path);
        let covering: Vec<(usize, &Waiver)> = self
            .waivers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.covers_image(image_path))
            .collect();
        let earlier = self.baseline.map(|b| b.for_image(&image.image.path));
        if let Some(None) = earlier {
            image.notes.push(format!(
                "the baseline has no image named like {}: every finding counts as new",
                image.image.path
            ));
        }
        let earlier = earlier.flatten();
        let mut present: BTreeSet<Key> = BTreeSet::new();
        for result in &mut image.results {
            let decided = matches!(result.status, ResultStatus::Pass | ResultStatus::Fail);
            for (index, _) in covering.iter().filter(|(_, w)| w.rule == result.rule) {
                if let Some(tally) = tallies.get_mut(*index) {
                    tally.evaluated |= decided;
                }
            }
            for finding in &mut result.findings {
                let candidates = covering.iter().filter(|(_, w)| {
                    w.rule == result.rule
                        && w.covers(finding.path.as_deref(), finding.subject.as_deref())
                });
                let mut chosen: Option<(usize, &Waiver)> = None;
                for &(index, waiver) in candidates {
                    if let Some(tally) = tallies.get_mut(index) {
                        tally.matched += 1;
                    }
                    let better = match chosen {
                        None => true,
                        Some((_, current)) => {
                            current.expired(self.today) && !waiver.expired(self.today)
                        }
                    };
                    if better {
                        chosen = Some((index, waiver));
                    }
                }
                finding.waiver = chosen.map(|(_, w)| WaiverRef {
                    source: w.source.clone(),
                    reason: w.reason.clone(),
                    expires: w.expires.as_ref().map(|(text, _)| text.clone()),
                    expired: w.expired(self.today),
                });
                let key: Key = (
                    result.rule.clone(),
                    finding.path.clone(),
                    finding.subject.clone(),
                    finding.fingerprint.clone(),
                );
                finding.baseline = self.baseline.map(|_| match earlier {
                    Some(known) if known.knows(&key) => BaselineState::Known,
                    _ => BaselineState::New,
                });
                present.insert(key);
                finding.gating = !finding.waived()
                    && finding.baseline != Some(BaselineState::Known)
                    && self.fail_on.gates(finding.severity);
            }
            result.gating = result.findings.iter().any(|f| f.gating);
            if result.status == ResultStatus::Fail && result.findings.iter().all(|f| f.waived()) {
                result.status = ResultStatus::Waived;
            }
        }
        if let Some(known) = earlier {
            let still_decided: BTreeSet<&str> = image
                .results
                .iter()
                .filter(|r| {
                    matches!(
                        r.status,
                        ResultStatus::Pass | ResultStatus::Fail | ResultStatus::Waived
                    )
                })
                .map(|r| r.rule.as_str())
                .collect();
            let mut fixed_keys = BTreeSet::new();
            // A finding is fixed only when its rule decided now; a rule that errored or
            // was not selected proves nothing about it.
            image.fixed = known
                .findings
                .iter()
                .filter(|f| still_decided.contains(f.rule.as_str()))
                .filter(|f| {
                    let key = baseline::key(f);
                    !present.contains(&key) && fixed_keys.insert(key)
                })
                .cloned()
                .collect();
            image.fixed.sort_by(|a, b| {
                (&a.rule, &a.path, &a.subject, &a.fingerprint).cmp(&(
                    &b.rule,
                    &b.path,
                    &b.subject,
                    &b.fingerprint,
                ))
            });
        }
        image.summary = self.summarise(image);
    }

    fn summarise(&self, image: &ImageReport) -> Summary {
        let mut summary = Summary::new(self.fail_on);
        summary.images = 1;
        summary.rules = image.results.len();
        let mut gating = false;
        let mut any_error = false;
        for result in &image.results {
            gating |= result.gating;
            match result.status {
                ResultStatus::Pass => summary.results.pass += 1,
                ResultStatus::Fail => {
                    summary.results.fail += 1;
                    *summary
                        .failing
                        .entry(result.effective_severity())
                        .or_insert(0) += 1;
                }
                ResultStatus::Waived => summary.results.waived += 1,
                ResultStatus::Error => {
                    summary.results.error += 1;
                    any_error = true;
                }
                ResultStatus::Skipped => summary.results.skipped += 1,
            }
            summary.findings += result.findings.len();
            summary.waived += result.findings.iter().filter(|f| f.waived()).count();
            summary.known += result
                .findings
                .iter()
                .filter(|f| f.baseline == Some(BaselineState::Known))
                .count();
        }
        summary.fixed = image.fixed.len();
        summary.incomplete = image.guest_incomplete || any_error;
        summary.verdict = if image.error.is_some() {
            Verdict::Error
        } else if gating {
            Verdict::Fail
        } else if summary.incomplete {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        };
        summary.exit_code = summary.verdict.exit_code();
        summary
    }
}
