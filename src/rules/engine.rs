//! Runs compiled rules against a scan context and turns each check's report into a result
//! with a status. Results come out in rule-id order, findings sorted, so reports are the
//! same at any thread count.

use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use super::checks::residue::{self, ResiduePass};
use super::checks::secrets::{self, CheckKey, SecretsPass};
use super::checks::{Check, CheckReport};
pub use super::finding::Finding;
use super::{Rule, ScanContext, Severity};

/// A rule's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Something the rule needed could not be read: neither pass nor fail.
    Error,
    /// The rule does not apply to this guest (no sshd, no OS release…).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// One rule's outcome.
#[derive(Debug, Clone)]
pub struct RuleResult {
    pub rule: Arc<Rule>,
    pub status: Status,
    pub findings: Vec<Finding>,
    /// Why the rule was skipped or could not decide; also notes what a failing rule could
    /// not read.
    pub reason: Option<String>,
}

impl RuleResult {
    /// The most severe finding's severity (the rule's own when it has no findings).
    pub fn severity(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity.unwrap_or(self.rule.severity))
            .max()
            .unwrap_or(self.rule.severity)
    }

    fn from_report(rule: Arc<Rule>, report: CheckReport) -> Self {
        let CheckReport {
            mut findings,
            unknown,
            skipped,
        } = report;
        findings.sort();
        findings.dedup();
        let unknown = (!unknown.is_empty()).then(|| distinct_reasons(&unknown));
        let (status, reason) = if !findings.is_empty() {
            (Status::Fail, unknown)
        } else if let Some(unknown) = unknown {
            (Status::Error, Some(unknown))
        } else if let Some(skipped) = skipped {
            (Status::Skipped, Some(skipped))
        } else {
            (Status::Pass, None)
        };
        Self {
            rule,
            status,
            findings,
            reason,
        }
    }
}

/// Reasons joined once per distinct cause, in the order first met, with a count when one
/// repeats (several checks of a rule meeting the same unreadable file say it once).
fn distinct_reasons(reasons: &[String]) -> String {
    // An index, not a scan of `distinct`: a rule may meet thousands of unreadable paths.
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut distinct: Vec<(&str, usize)> = Vec::new();
    for reason in reasons {
        let at = *index.entry(reason.as_str()).or_insert_with(|| {
            distinct.push((reason.as_str(), 0));
            distinct.len() - 1
        });
        if let Some((_, count)) = distinct.get_mut(at) {
            *count += 1;
        }
    }
    distinct
        .iter()
        .map(|(reason, count)| match count {
            1 => (*reason).to_string(),
            n => format!("{reason} (×{n})"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every secrets check of `rules` with its key, in rule order: what the shared pass runs.
pub fn secrets_checks(rules: &[Arc<Rule>]) -> Vec<(CheckKey, &secrets::Compiled)> {
    checks_of(rules, |check| match check {
        Check::Secrets(check) => Some(check),
        _ => None,
    })
}

/// Every residue check of `rules` with its key, in rule order: what the residue pass runs.
pub fn residue_checks(rules: &[Arc<Rule>]) -> Vec<(CheckKey, &residue::Compiled)> {
    checks_of(rules, |check| match check {
        Check::Residue(check) => Some(check),
        _ => None,
    })
}

/// Every check of `rules` that `pick` chooses, with its key, in rule order: the checks a
/// shared pass (secrets, residue) serves.
pub fn checks_of<'r, T>(
    rules: &'r [Arc<Rule>],
    pick: impl Fn(&'r Check) -> Option<&'r T> + Copy,
) -> Vec<(CheckKey, &'r T)> {
    rules
        .iter()
        .flat_map(|rule| {
            rule.checks
                .iter()
                .enumerate()
                .filter_map(move |(index, check)| {
                    pick(check).map(|check| {
                        (
                            CheckKey {
                                rule: rule.id.clone(),
                                index,
                            },
                            check,
                        )
                    })
                })
        })
        .collect()
}

/// The passes that read for many checks at once, run before the rules by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passes<'p> {
    /// The shared secrets pass over the guest's files (`secrets_checks`,
    /// `secrets::run_pass`).
    pub secrets: Option<&'p SecretsPass>,
    /// The residue pass over free space and journals (`residue::run_pass`); without it
    /// residue checks are skipped.
    pub residue: Option<&'p ResiduePass>,
}

/// Evaluates every rule (in parallel) and returns results in rule-id order; secrets and
/// residue checks take their share of `passes`.
pub fn evaluate(rules: &[Arc<Rule>], ctx: &ScanContext<'_>, passes: Passes<'_>) -> Vec<RuleResult> {
    let mut results: Vec<RuleResult> = rules
        .par_iter()
        .map(|rule| {
            let report = match &ctx.no_root {
                Some(reason) => CheckReport::unknown(reason.clone()),
                None => CheckReport::merge(rule.checks.iter().enumerate().map(|(index, check)| {
                    match check {
                        Check::Secrets(check) => {
                            let key = CheckKey {
                                rule: rule.id.clone(),
                                index,
                            };
                            check.report(&key, passes.secrets)
                        }
                        Check::Residue(check) => {
                            let key = CheckKey {
                                rule: rule.id.clone(),
                                index,
                            };
                            check.report(&key, passes.residue)
                        }
                        other => other.evaluate(ctx, rule.severity),
                    }
                })),
            };
            RuleResult::from_report(Arc::clone(rule), report)
        })
        .collect();
    results.sort_by(|a, b| a.rule.id.cmp(&b.rule.id));
    results
}

#[cfg(test)]
mod tests {
    use super::distinct_reasons;

    #[test]
    fn a_reason_is_said_once_per_cause_in_first_seen_order() {
        let reasons: Vec<String> = [
            "b unreadable",
            "a unreadable",
            "b unreadable",
            "b unreadable",
        ]
        .iter()
        .map(|r| r.to_string())
        .collect();
        assert_eq!(
            distinct_reasons(&reasons),
            "b unreadable (×3); a unreadable"
        );
        assert_eq!(distinct_reasons(&reasons[1..2]), "a unreadable");
    }
}
