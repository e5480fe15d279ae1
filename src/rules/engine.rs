//! Runs compiled rules against a scan context and turns each check's report into a result
//! with a status. Results come out in rule-id order, findings sorted, so reports are the
//! same at any thread count.

use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use super::checks::CheckReport;
use super::{Rule, ScanContext, Severity};

/// One thing a rule found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Guest path in the assembled tree.
    pub path: Option<String>,
    /// 1-based line in `path`.
    pub line: Option<u64>,
    /// The account, keyword, service or package the finding is about.
    pub subject: Option<String>,
    pub message: String,
    /// When not the rule's own severity (an installed-but-disabled service, say).
    pub severity: Option<Severity>,
    /// A secret's short, non-reversible fingerprint (never the secret).
    pub fingerprint: Option<String>,
}

impl Finding {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            line: None,
            subject: None,
            message: message.into(),
            severity: None,
            fingerprint: None,
        }
    }

    pub fn line(mut self, line: usize) -> Self {
        self.line = u64::try_from(line).ok().filter(|&l| l > 0);
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }
}

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
        let unknown = (!unknown.is_empty()).then(|| unknown.join("; "));
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

/// Evaluates every rule (in parallel) and returns results in rule-id order.
pub fn evaluate(rules: &[Arc<Rule>], ctx: &ScanContext<'_>) -> Vec<RuleResult> {
    // Every secrets check shares one pass over the files, run before the rules.
    let secret_checks: Vec<&super::checks::secrets::Compiled> = rules
        .iter()
        .flat_map(|rule| rule.checks.iter())
        .filter_map(|check| match check {
            super::checks::Check::Secrets(check) => Some(check),
            _ => None,
        })
        .collect();
    if !secret_checks.is_empty() && ctx.no_root.is_none() {
        ctx.set_secrets_pass(super::checks::secrets::run_pass(&secret_checks, ctx));
    }
    let mut results: Vec<RuleResult> = rules
        .par_iter()
        .map(|rule| {
            let report = match &ctx.no_root {
                Some(reason) => CheckReport::unknown(reason.clone()),
                None => {
                    CheckReport::merge(rule.checks.iter().map(|c| c.evaluate(ctx, rule.severity)))
                }
            };
            RuleResult::from_report(Arc::clone(rule), report)
        })
        .collect();
    results.sort_by(|a, b| a.rule.id.cmp(&b.rule.id));
    results
}
