//! `kind: path` — files, directories or links that must not be in the image: matched by
//! glob, optionally only when non-empty, of certain types, or above a size.

use serde::{Deserialize, Serialize};

use super::{select_entries, validate_patterns, CheckReport, NodeType, ALL_TYPES};
use crate::filesystems::FileKind;
use crate::guest::display_path;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::spec_error::{EmptyList, PatternList, SpecError};
use crate::rules::ReadError;
use crate::walk::Entry;

/// When a matched path counts as a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// It exists at all.
    #[default]
    Exists,
    /// A file with at least one byte, a directory with at least one entry, or a symlink
    /// whose target is one of those.
    NonEmpty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Globs of guest paths; `~/` means every home directory.
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub condition: Condition,
    /// Node types that count (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<NodeType>,
    /// Only files at least this large count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
    /// What a finding says (the path, type and size are added).
    pub message: String,
    /// What findings are about ("PKCS#12 keystore"), when that is the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The file itself is the secret (a keystore): findings carry a fingerprint of its
    /// content, as secrets findings do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fingerprint: bool,
}

/// Bytes of a file read to fingerprint it; keystores are far smaller.
const MAX_FINGERPRINT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.paths.is_empty() {
            return Err(SpecError::EmptyList(EmptyList::Paths));
        }
        validate_patterns(&self.paths, PatternList::Paths)?;
        validate_patterns(&self.exclude, PatternList::Exclude)?;
        Ok(Compiled { spec: self.clone() })
    }
}

impl Compiled {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let spec = &self.spec;
        let mut report = CheckReport::default();
        let entries = select_entries(
            ctx,
            &spec.paths,
            &spec.exclude,
            &spec.types,
            &ALL_TYPES,
            &mut report,
        );
        for entry in entries {
            if spec.min_size.is_some_and(|min| entry.meta.size < min) {
                continue;
            }
            let description = match spec.condition {
                Condition::Exists => Some(describe(ctx, entry)),
                Condition::NonEmpty => match non_empty(ctx, entry) {
                    Ok(true) => Some(describe(ctx, entry)),
                    Ok(false) => None,
                    Err(e) => {
                        report.unknown.push(e.to_string());
                        None
                    }
                },
            };
            if let Some(description) = description {
                let mut finding =
                    Finding::at(&*entry.path, format!("{} ({description})", spec.message));
                finding.subject = spec.subject.clone();
                if spec.fingerprint && entry.meta.kind == FileKind::File {
                    match ctx.read_file(&entry.path, MAX_FINGERPRINT_BYTES) {
                        Ok(Some(bytes)) => {
                            finding.fingerprint = Some(crate::secrets::fingerprint(&bytes));
                        }
                        Ok(None) => {}
                        Err(e) => report.unknown.push(e.to_string()),
                    }
                }
                report.findings.push(finding);
            }
        }
        report
    }
}

/// "file, 411 bytes", "directory, 3 entries", "symlink to …".
pub fn describe(ctx: &ScanContext<'_>, entry: &Entry) -> String {
    match entry.meta.kind {
        FileKind::File => format!("file, {} bytes", entry.meta.size),
        FileKind::Dir => {
            let count = children(ctx, &entry.path);
            format!("directory, {count} entries")
        }
        FileKind::Symlink => format!(
            "symlink to {}",
            entry
                .target
                .as_deref()
                .map(display_path)
                .unwrap_or_default()
        ),
        other => other.as_str().to_string(),
    }
}

/// Entries anywhere below a directory.
fn children(ctx: &ScanContext<'_>, dir: &[u8]) -> usize {
    let mut prefix = dir.to_vec();
    if prefix.last() != Some(&b'/') {
        prefix.push(b'/');
    }
    ctx.entries_under(&prefix).len()
}

fn non_empty(ctx: &ScanContext<'_>, entry: &Entry) -> Result<bool, ReadError> {
    match entry.meta.kind {
        FileKind::File => Ok(entry.meta.size > 0),
        FileKind::Dir => Ok(children(ctx, &entry.path) > 0),
        FileKind::Symlink => {
            if let Some(bytes) = ctx.read_file(&entry.path, 1)? {
                return Ok(!bytes.is_empty());
            }
            Ok(ctx.directory_len(&entry.path)?.is_some_and(|len| len > 0))
        }
        _ => Ok(true),
    }
}
