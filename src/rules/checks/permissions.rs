//! `kind: permissions` — mode bits and ownership of files selected by glob: world-writable
//! files, set-id programs, secrets readable by everyone, files not owned by root.

use serde::{Deserialize, Serialize};

use super::{select_entries, validate_patterns, CheckReport, NodeType};
use crate::guest::display_path;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::spec_error::{Missing, ModeField, PatternList, SpecError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Node types that count (all but symlinks when empty: a link's mode means nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<NodeType>,
    /// Octal mode bits any of which makes a finding ("0002" world-writable, "6000" set-id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_bits: Option<String>,
    /// Octal mode bits that excuse a node ("1000": a sticky directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_bits: Option<String>,
    /// UIDs allowed to own the node; any other owner is a finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<u32>>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
    any_bits: u32,
    unless_bits: u32,
}

fn octal(text: &Option<String>, field: ModeField) -> Result<u32, SpecError> {
    match text {
        None => Ok(0),
        Some(text) => u32::from_str_radix(text.trim_start_matches("0o"), 8)
            .ok()
            .filter(|bits| *bits <= 0o7777)
            .ok_or_else(|| SpecError::InvalidMode {
                field,
                value: text.clone(),
            }),
    }
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        validate_patterns(&self.paths, PatternList::Paths)?;
        validate_patterns(&self.exclude, PatternList::Exclude)?;
        let any_bits = octal(&self.any_bits, ModeField::AnyBits)?;
        let unless_bits = octal(&self.unless_bits, ModeField::UnlessBits)?;
        if any_bits == 0 && self.owners.is_none() {
            return Err(SpecError::MissingField(Missing::BitsOrOwners));
        }
        Ok(Compiled {
            spec: self.clone(),
            any_bits,
            unless_bits,
        })
    }
}

impl Compiled {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let spec = &self.spec;
        let mut report = CheckReport::default();
        // A symlink's mode means nothing, so links count only when the pack asks.
        let entries = select_entries(
            ctx,
            &spec.paths,
            &spec.exclude,
            &spec.types,
            &[NodeType::File, NodeType::Dir, NodeType::Other],
            &mut report,
        );
        for entry in entries {
            let mode = u32::from(entry.meta.permissions);
            let bad_bits = mode & self.any_bits != 0 && mode & self.unless_bits == 0;
            let bad_owner = spec
                .owners
                .as_ref()
                .is_some_and(|owners| !owners.contains(&entry.meta.uid));
            if bad_bits || bad_owner {
                report.findings.push(Finding::at(
                    &*entry.path,
                    format!(
                        "{} ({} {}, mode {:04o}, owner uid {})",
                        spec.message,
                        entry.meta.kind.as_str(),
                        display_path(&entry.path),
                        mode,
                        entry.meta.uid
                    ),
                ));
            }
        }
        report
    }
}
