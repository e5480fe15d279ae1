//! Check kinds: one module each. A check is compiled once from its YAML parameters (so a
//! bad regex or glob is a pack error, not a scan error) and evaluated against a scan
//! context, returning findings, what it could not read, or why it does not apply.

pub mod accounts;
pub mod content;
pub mod os_eol;
pub mod packages;
pub mod path;
pub mod permissions;
pub mod residue;
pub mod secrets;
pub mod services;
pub mod sshd;

use serde::{Deserialize, Serialize};

use super::context::ScanContext;
use super::spec_error::PatternList;
use super::BlindSpot;
use super::{Finding, SpecError};
use crate::guest::display_path;

/// A check as written in a pack: `kind` and its parameters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckSpec {
    Path(path::Spec),
    Content(content::Spec),
    Sshd(sshd::Spec),
    Accounts(accounts::Spec),
    Services(services::Spec),
    Packages(packages::Spec),
    Permissions(permissions::Spec),
    OsEndOfLife(os_eol::Spec),
    Secrets(secrets::Spec),
    Residue(residue::Spec),
}

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Path(_) => "path",
            CheckSpec::Content(_) => "content",
            CheckSpec::Sshd(_) => "sshd",
            CheckSpec::Accounts(_) => "accounts",
            CheckSpec::Services(_) => "services",
            CheckSpec::Packages(_) => "packages",
            CheckSpec::Permissions(_) => "permissions",
            CheckSpec::OsEndOfLife(_) => "os-end-of-life",
            CheckSpec::Secrets(_) => "secrets",
            CheckSpec::Residue(_) => "residue",
        }
    }

    /// Validates the parameters and prepares what evaluation needs.
    pub fn compile(&self) -> Result<Check, SpecError> {
        Ok(match self {
            CheckSpec::Path(spec) => Check::Path(spec.compile()?),
            CheckSpec::Content(spec) => Check::Content(spec.compile()?),
            CheckSpec::Sshd(spec) => Check::Sshd(spec.compile()?),
            CheckSpec::Accounts(spec) => Check::Accounts(spec.clone()),
            CheckSpec::Services(spec) => Check::Services(spec.compile()?),
            CheckSpec::Packages(spec) => Check::Packages(spec.compile()?),
            CheckSpec::Permissions(spec) => Check::Permissions(spec.compile()?),
            CheckSpec::OsEndOfLife(spec) => Check::OsEndOfLife(spec.compile()?),
            CheckSpec::Secrets(spec) => Check::Secrets(spec.compile()?),
            CheckSpec::Residue(spec) => Check::Residue(spec.compile()?),
        })
    }
}

/// A compiled check.
#[derive(Debug, Clone)]
pub enum Check {
    Path(path::Compiled),
    Content(content::Compiled),
    Sshd(sshd::Compiled),
    Accounts(accounts::Spec),
    Services(services::Compiled),
    Packages(packages::Compiled),
    Permissions(permissions::Compiled),
    OsEndOfLife(os_eol::Compiled),
    Secrets(secrets::Compiled),
    Residue(residue::Compiled),
}

impl Check {
    pub fn evaluate(&self, ctx: &ScanContext<'_>, severity: super::Severity) -> CheckReport {
        match self {
            Check::Path(check) => check.evaluate(ctx),
            Check::Content(check) => check.evaluate(ctx),
            Check::Sshd(check) => check.evaluate(ctx),
            Check::Accounts(check) => check.evaluate(ctx),
            Check::Services(check) => check.evaluate(ctx, severity),
            Check::Packages(check) => check.evaluate(ctx),
            Check::Permissions(check) => check.evaluate(ctx),
            Check::OsEndOfLife(check) => check.evaluate(ctx),
            // The shared pass decides secrets checks; the engine hands each its share.
            Check::Secrets(_) => CheckReport::unknown("the secrets pass did not run"),
            Check::Residue(_) => CheckReport::unknown("the residue pass did not run"),
        }
    }
}

/// What a check saw.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    /// What could not be read and might have changed the verdict.
    pub unknown: Vec<String>,
    /// Why the check does not apply to this guest.
    pub skipped: Option<String>,
}

impl CheckReport {
    pub fn findings(findings: Vec<Finding>) -> Self {
        Self {
            findings,
            ..Self::default()
        }
    }

    pub fn unknown(reason: impl Into<String>) -> Self {
        Self {
            unknown: vec![reason.into()],
            ..Self::default()
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            skipped: Some(reason.into()),
            ..Self::default()
        }
    }

    /// Several checks' reports as one: findings and unknowns add up; skipped only when
    /// every check was.
    pub fn merge(reports: impl Iterator<Item = CheckReport>) -> CheckReport {
        let mut merged = CheckReport::default();
        let mut all_skipped = true;
        let mut reasons = Vec::new();
        for report in reports {
            merged.findings.extend(report.findings);
            merged.unknown.extend(report.unknown);
            match report.skipped {
                Some(reason) => reasons.push(reason),
                None => all_skipped = false,
            }
        }
        if all_skipped && !reasons.is_empty() {
            merged.skipped = Some(reasons.join("; "));
        }
        merged
    }

    pub fn note_blind_spots(&mut self, spots: &[&BlindSpot]) {
        for spot in spots {
            self.unknown.push(format!(
                "{} could not be read: {}",
                display_path(&spot.path),
                spot.reason
            ));
        }
    }
}

/// A node type as named in packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeType {
    File,
    Dir,
    Symlink,
    Other,
}

impl NodeType {
    pub fn of(kind: crate::filesystems::FileKind) -> Self {
        use crate::filesystems::FileKind;
        match kind {
            FileKind::File => NodeType::File,
            FileKind::Dir => NodeType::Dir,
            FileKind::Symlink => NodeType::Symlink,
            _ => NodeType::Other,
        }
    }
}

/// The inventory entries a path-based check looks at: matched by its patterns (homes
/// expanded), of the wanted node types (`default_types` when the pack names none), plus
/// the unreadable places where a match could hide, already noted in the report.
fn select_entries<'a>(
    ctx: &ScanContext<'a>,
    paths: &[String],
    exclude: &[String],
    types: &[NodeType],
    default_types: &[NodeType],
    report: &mut CheckReport,
) -> Vec<&'a crate::walk::Entry> {
    let matcher = match super::globs::PathMatcher::new(paths, exclude, ctx.homes()) {
        Ok(matcher) => matcher,
        Err(e) => {
            report.unknown.push(e.to_string());
            return Vec::new();
        }
    };
    report.note_blind_spots(&matcher.blind_spots(&ctx.blind_spots));
    let wanted = if types.is_empty() {
        default_types
    } else {
        types
    };
    matcher
        .entries(ctx.inventory)
        .into_iter()
        .filter(|entry| wanted.contains(&NodeType::of(entry.meta.kind)))
        .collect()
}

/// Every node type, for checks that look at all of them by default.
const ALL_TYPES: [NodeType; 4] = [
    NodeType::File,
    NodeType::Dir,
    NodeType::Symlink,
    NodeType::Other,
];

/// Checks a list of path patterns from a pack.
fn validate_patterns(patterns: &[String], list: PatternList) -> Result<(), SpecError> {
    for pattern in patterns {
        super::globs::validate(pattern).map_err(|e| e.in_list(list.clone()))?;
    }
    Ok(())
}
