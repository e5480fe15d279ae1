//! Rules: the pack format (YAML), the compiled rules, and their evaluation against a
//! guest. Rules read the guest through the walk's inventory and the facts readers; they
//! never touch disk structures. Reports are rendered elsewhere (`crate::report`).

pub mod blind_spot;
pub mod checks;
pub mod context;
pub mod engine;
pub mod finding;
pub mod gitleaks;
pub mod globs;
pub mod pack;
pub mod placeholder;
pub mod read_error;
pub mod select;
pub mod spec_error;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use blind_spot::BlindSpot;
pub use context::{ScanContext, ScanOptions};
pub use engine::{evaluate, Passes, RuleResult, Status};
pub use finding::Finding;
pub use pack::{Pack, PackError, Rule};
pub use read_error::{ReadError, ReadErrorKind};
pub use spec_error::{SpecError, SpecErrorKind};

/// How bad a failing rule is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step less severe (`info` stays `info`).
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            Severity::Low | Severity::Info => Severity::Info,
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// The least severity that fails a scan, or never.
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

    /// `never`, or a severity's name.
    pub fn parse(text: &str) -> Option<FailOn> {
        if text.eq_ignore_ascii_case("never") {
            return Some(FailOn::Never);
        }
        Severity::parse(text).map(FailOn::At)
    }

    pub fn gates(self, severity: Severity) -> bool {
        match self {
            FailOn::At(threshold) => severity >= threshold,
            FailOn::Never => false,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
