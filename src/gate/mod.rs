//! The gate: decides which findings fail a run. A finding gates unless a waiver covers it,
//! the baseline already knew it, or it is below `--fail-on`; an image's verdict and the
//! run's (the worst image's) follow. It decides on the engine's results and returns them
//! decided (`decision`); reading waiver files and baselines lives in the submodules, and
//! rendering in `report`, which only reads what the gate decided.

pub mod baseline;
pub mod decision;
pub mod waivers;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::date::Date;
use crate::rules::{FailOn, Rule, RuleResult, Status};
use baseline::{Baseline, BaselineImage, Key};
pub use decision::{
    BaselineState, Counts, DecidedFinding, DecidedImage, DecidedResult, Decision, FixedFinding,
    ResultStatus, Scanned, Summary, Verdict, WaiverInfo, WaiverRef, WaiverState,
};
use waivers::Waiver;

/// Everything the gate weighs besides the findings.
pub struct Gate<'a> {
    pub fail_on: FailOn,
    pub waivers: &'a [Waiver],
    pub baseline: Option<&'a Baseline>,
    /// The day waiver expiry is judged on (`--as-of` or today, UTC).
    pub today: Date,
    /// Every rule id loaded, selected or not: a waiver for another id names no rule.
    pub known_rules: &'a BTreeSet<String>,
}

/// How each waiver fared across the images.
#[derive(Default, Clone)]
struct WaiverTally {
    evaluated: bool,
    matched: usize,
}

impl Gate<'_> {
    /// Decides every image and the run.
    pub fn decide<D>(&self, images: Vec<Scanned<D>>) -> Decision<D> {
        let mut tallies = vec![WaiverTally::default(); self.waivers.len()];
        let images: Vec<DecidedImage<D>> = images
            .into_iter()
            .map(|image| self.decide_image(image, &mut tallies))
            .collect();
        let waivers = self
            .waivers
            .iter()
            .zip(&tallies)
            .map(|(waiver, tally)| self.waiver_info(waiver, tally))
            .collect();
        let mut summary = Summary::new(self.fail_on);
        for image in &images {
            summary.add(&image.summary);
        }
        summary.exit_code = summary.verdict.exit_code();
        Decision {
            images,
            waivers,
            summary,
        }
    }

    fn waiver_info(&self, waiver: &Waiver, tally: &WaiverTally) -> WaiverInfo {
        WaiverInfo {
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
        }
    }

    fn decide_image<D>(&self, image: Scanned<D>, tallies: &mut [WaiverTally]) -> DecidedImage<D> {
        let image_path = Path::new(&image.path);
        let covering: Vec<(usize, &Waiver)> = self
            .waivers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.covers_image(image_path))
            .collect();
        let mut notes = Vec::new();
        let earlier = self.baseline.map(|b| b.for_image(&image.path));
        if let Some(None) = earlier {
            notes.push(format!(
                "the baseline has no image named like {}: every finding counts as new",
                image.path
            ));
        }
        let earlier = earlier.flatten();
        let mut present: BTreeSet<Key> = BTreeSet::new();
        let results: Vec<DecidedResult> = image
            .results
            .into_iter()
            .map(|result| self.decide_result(result, &covering, tallies, earlier, &mut present))
            .collect();
        let fixed = earlier
            .map(|known| fixed_findings(known, &results, &present))
            .unwrap_or_default();
        let summary = self.summarise(
            &results,
            fixed.len(),
            image.incomplete,
            image.unreadable.is_some(),
        );
        DecidedImage {
            details: image.details,
            path: image.path,
            unreadable: image.unreadable,
            results,
            fixed,
            notes,
            summary,
        }
    }

    fn decide_result(
        &self,
        result: RuleResult,
        covering: &[(usize, &Waiver)],
        tallies: &mut [WaiverTally],
        earlier: Option<&BaselineImage>,
        present: &mut BTreeSet<Key>,
    ) -> DecidedResult {
        let RuleResult {
            rule,
            status,
            findings,
            reason,
        } = result;
        let decided = matches!(status, Status::Pass | Status::Fail);
        for (index, _) in covering.iter().filter(|(_, w)| w.rule == rule.id) {
            if let Some(tally) = tallies.get_mut(*index) {
                tally.evaluated |= decided;
            }
        }
        let findings: Vec<DecidedFinding> = findings
            .into_iter()
            .map(|finding| {
                let waiver = self.choose_waiver(&rule, &finding, covering, tallies);
                let key: Key = (
                    rule.id.clone(),
                    finding.path.clone(),
                    finding.subject.clone(),
                    finding.fingerprint.clone(),
                );
                let baseline = self.baseline.map(|_| match earlier {
                    Some(known) if known.knows(&key) => BaselineState::Known,
                    _ => BaselineState::New,
                });
                present.insert(key);
                let severity = finding.severity.unwrap_or(rule.severity);
                let mut decided = DecidedFinding {
                    finding,
                    severity,
                    gating: false,
                    waiver,
                    baseline,
                };
                decided.gating = !decided.waived()
                    && decided.baseline != Some(BaselineState::Known)
                    && self.fail_on.gates(severity);
                decided
            })
            .collect();
        let mut status = ResultStatus::from(status);
        if status == ResultStatus::Fail && findings.iter().all(DecidedFinding::waived) {
            status = ResultStatus::Waived;
        }
        DecidedResult {
            gating: findings.iter().any(|f| f.gating),
            rule,
            status,
            reason,
            findings,
        }
    }

    /// The waiver that covers a finding: an unexpired one before an expired one, else the
    /// first in file order. Every covering waiver counts the match.
    fn choose_waiver(
        &self,
        rule: &Arc<Rule>,
        finding: &crate::rules::Finding,
        covering: &[(usize, &Waiver)],
        tallies: &mut [WaiverTally],
    ) -> Option<WaiverRef> {
        let candidates = covering.iter().filter(|(_, w)| {
            w.rule == rule.id && w.covers(finding.path.as_ref(), finding.subject.as_deref())
        });
        let mut chosen: Option<&Waiver> = None;
        for &(index, waiver) in candidates {
            if let Some(tally) = tallies.get_mut(index) {
                tally.matched += 1;
            }
            let better = match chosen {
                None => true,
                Some(current) => current.expired(self.today) && !waiver.expired(self.today),
            };
            if better {
                chosen = Some(waiver);
            }
        }
        chosen.map(|w| WaiverRef {
            source: w.source.clone(),
            reason: w.reason.clone(),
            expires: w.expires.as_ref().map(|(text, _)| text.clone()),
            expired: w.expired(self.today),
        })
    }

    fn summarise(
        &self,
        results: &[DecidedResult],
        fixed: usize,
        guest_incomplete: bool,
        unreadable: bool,
    ) -> Summary {
        let mut summary = Summary::new(self.fail_on);
        summary.images = 1;
        summary.rules = results.len();
        let mut gating = false;
        let mut any_error = false;
        for result in results {
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
        summary.fixed = fixed;
        summary.incomplete = guest_incomplete || any_error;
        summary.verdict = if unreadable {
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

/// Baseline findings this scan no longer makes. A finding is fixed only when its rule
/// decided now; a rule that errored or was not selected proves nothing about it.
fn fixed_findings(
    known: &BaselineImage,
    results: &[DecidedResult],
    present: &BTreeSet<Key>,
) -> Vec<FixedFinding> {
    let still_decided: BTreeSet<&str> = results
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                ResultStatus::Pass | ResultStatus::Fail | ResultStatus::Waived
            )
        })
        .map(|r| r.rule.id.as_str())
        .collect();
    let mut fixed_keys = BTreeSet::new();
    let mut fixed: Vec<FixedFinding> = known
        .findings
        .iter()
        .filter(|f| still_decided.contains(f.rule.as_str()))
        .filter(|f| {
            let key = baseline::key(f);
            !present.contains(&key) && fixed_keys.insert(key)
        })
        .cloned()
        .collect();
    fixed.sort_by(|a, b| {
        (&a.rule, &a.path, &a.subject, &a.fingerprint).cmp(&(
            &b.rule,
            &b.path,
            &b.subject,
            &b.fingerprint,
        ))
    });
    fixed
}
