//! What a rule found: a typed value (the guest path as bytes, a line, a subject, a
//! fingerprint) that the gate decides on and only renderers turn into text.

use super::Severity;
use crate::filesystems::residue::AreaKind;
use crate::guest::GuestPath;

/// Where on the image a finding outside every file lies: the residue of a volume.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResidueAt {
    /// The volume's id (`p1`, `vg/root`).
    pub volume: String,
    pub area: AreaKind,
    /// Byte offset of the match's first byte on the image's virtual disk.
    pub offset: u64,
    /// The guest path of the deleted file that held it, where the filesystem can tell.
    pub formerly: Option<GuestPath>,
}

/// One thing a rule found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Guest path in the assembled tree, as the guest's bytes.
    pub path: Option<GuestPath>,
    /// 1-based line in `path`.
    pub line: Option<u64>,
    /// The account, keyword, service or package the finding is about.
    pub subject: Option<String>,
    pub message: String,
    /// When not the rule's own severity (an installed-but-disabled service, say).
    pub severity: Option<Severity>,
    /// A secret's short, non-reversible fingerprint (never the secret).
    pub fingerprint: Option<String>,
    /// For a finding in a volume's free space or journal rather than in a file.
    pub residue: Option<ResidueAt>,
}

impl Finding {
    pub fn at(path: impl Into<GuestPath>, message: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            line: None,
            subject: None,
            message: message.into(),
            severity: None,
            fingerprint: None,
            residue: None,
        }
    }

    /// A finding in a volume's residue, outside every file.
    pub fn in_residue(residue: ResidueAt, message: impl Into<String>) -> Self {
        Self {
            path: None,
            line: None,
            subject: None,
            message: message.into(),
            severity: None,
            fingerprint: None,
            residue: Some(residue),
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
