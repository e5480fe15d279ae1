//! Why detector specifications cannot be compiled. The messages name the detector and the
//! field, never a value: allow-listed values may be real secrets.

use super::MAX_KEYWORD_LEN;

/// A detector specification the scanner cannot use.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// One detector is invalid; `index` is its position in the slice given to the scanner.
    #[error("detector {index} ({name:?}): {problem}")]
    Invalid {
        index: usize,
        name: String,
        problem: DetectorProblem,
    },
    /// The combined keyword automaton could not be built (every keyword was valid alone).
    #[error("keywords: {0}")]
    Keywords(#[source] aho_corasick::BuildError),
}

/// What is wrong with one detector.
#[derive(Debug, thiserror::Error)]
pub enum DetectorProblem {
    #[error("`name` is empty")]
    EmptyName,
    #[error("`keywords` must hold at least one literal")]
    NoKeywords,
    #[error("a keyword is empty")]
    EmptyKeyword,
    #[error("a keyword is longer than {MAX_KEYWORD_LEN} bytes")]
    KeywordTooLong,
    #[error("regex: {0}")]
    Regex(String),
    #[error("keywords: {0}")]
    Keywords(#[source] aho_corasick::BuildError),
    #[error("`min_entropy` must be between 0 and 8 bits per byte, not {0}")]
    MinEntropy(f64),
    #[error("`allow_values` entry {0} is empty")]
    EmptyAllowValue(usize),
    #[error("allow_regexes: {0}")]
    AllowRegex(String),
    #[error("`secret_group` {0} is not a group of the regex")]
    SecretGroup(usize),
    #[error("a stopword is empty")]
    EmptyStopword,
}

/// What kind of mistake a `DetectorError` is, for callers and tests to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorErrorKind {
    /// A required field or list entry is empty.
    Empty,
    /// A value lies outside what the field allows.
    OutOfRange,
    /// `regex` or an `allow_regexes` entry does not compile.
    InvalidRegex,
    /// The keywords cannot be built into an automaton.
    InvalidKeywords,
}

impl DetectorError {
    pub fn kind(&self) -> DetectorErrorKind {
        match self {
            DetectorError::Invalid { problem, .. } => problem.kind(),
            DetectorError::Keywords(_) => DetectorErrorKind::InvalidKeywords,
        }
    }
}

impl DetectorProblem {
    pub fn kind(&self) -> DetectorErrorKind {
        match self {
            DetectorProblem::EmptyName
            | DetectorProblem::NoKeywords
            | DetectorProblem::EmptyKeyword
            | DetectorProblem::EmptyAllowValue(_)
            | DetectorProblem::EmptyStopword => DetectorErrorKind::Empty,
            DetectorProblem::KeywordTooLong
            | DetectorProblem::MinEntropy(_)
            | DetectorProblem::SecretGroup(_) => DetectorErrorKind::OutOfRange,
            DetectorProblem::Regex(_) | DetectorProblem::AllowRegex(_) => {
                DetectorErrorKind::InvalidRegex
            }
            DetectorProblem::Keywords(_) => DetectorErrorKind::InvalidKeywords,
        }
    }
}
