//! Why a rule pack's contents cannot be used: a check's parameters, a path pattern, a fix
//! template or a `--select`/`--ignore` selector. Says what is wrong, not where: `PackError`
//! adds FILE:LINE:COLUMN at the file level.

use std::fmt;

use super::placeholder::Placeholder;
use crate::secrets::DetectorError;

/// A problem in what a pack (or a selector) asks for.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("path pattern `{pattern}` must be absolute or start with `~/`")]
    RelativePattern { pattern: String },
    #[error("path pattern `{pattern}`: {source}")]
    Glob {
        pattern: String,
        source: globset::Error,
    },
    /// Every glob compiled alone but the set of them did not.
    #[error("{0}")]
    GlobSet(#[source] globset::Error),
    /// A problem in one of a check's pattern lists.
    #[error("{list}: {source}")]
    InList {
        list: PatternList,
        source: Box<SpecError>,
    },
    #[error("{0}")]
    EmptyList(EmptyList),
    #[error("{0}")]
    MissingField(Missing),
    #[error("give exactly one of `fail_on` and `pass_on`")]
    FailOrPassOn,
    #[error("`fix.{0}` is empty")]
    EmptyFix(FixField),
    #[error("pattern `{name}`: {source}")]
    Regex { name: String, source: regex::Error },
    #[error("`{filter}.{field}`: {source}")]
    FilterRegex {
        filter: FixFilter,
        field: FilterField,
        source: regex::Error,
    },
    #[error("release {id} {version}: `eol` must be YYYY-MM-DD")]
    InvalidEol { id: String, version: String },
    #[error("`{field}` must be octal mode bits like \"0002\", not `{value}`")]
    InvalidMode { field: ModeField, value: String },
    #[error(
        "unknown placeholder `{{{name}}}` (known: {{path}}, {{subject}}, {{line}}; \
         write `${{{name}}}` for a shell variable)"
    )]
    UnknownPlaceholder { name: String },
    /// A problem in one of the fix's templates.
    #[error("`fix.{field}`: {source}")]
    InFix {
        field: FixField,
        source: Box<SpecError>,
    },
    #[error(
        "`fix.once` runs once for the rule, not per finding: `{{{}}}` has no value there (use `each`)",
        placeholder.name()
    )]
    PlaceholderInOnce { placeholder: Placeholder },
    #[error(transparent)]
    Detector(#[from] DetectorError),
    #[error("selector `{selector}`: {source}")]
    InvalidSelector {
        selector: String,
        source: globset::Error,
    },
    #[error("`{selector}` matches no rule id or tag (see `amiscan rules list`)")]
    UnknownSelector { selector: String },
}

/// What kind of mistake a `SpecError` is, for callers and tests to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// A path pattern is relative or not a valid glob.
    InvalidPattern,
    /// A regex does not compile.
    InvalidRegex,
    /// A list that must hold something is empty.
    EmptyList,
    /// A field that must be given (or one of several) is missing.
    MissingField,
    /// Fields that exclude each other were both given, or neither.
    ExclusiveFields,
    /// A field is given but empty.
    EmptyField,
    /// A field's value is not of the form it must have.
    InvalidValue,
    /// A fix template names a placeholder that does not exist or has no value there.
    InvalidPlaceholder,
    /// A secrets detector cannot be compiled.
    InvalidDetector,
    /// A selector is not a valid glob.
    InvalidSelector,
    /// A selector matches no rule.
    UnknownSelector,
}

impl SpecError {
    pub fn kind(&self) -> SpecErrorKind {
        match self {
            SpecError::RelativePattern { .. } | SpecError::Glob { .. } | SpecError::GlobSet(_) => {
                SpecErrorKind::InvalidPattern
            }
            SpecError::InList { source, .. } | SpecError::InFix { source, .. } => source.kind(),
            SpecError::EmptyList(_) => SpecErrorKind::EmptyList,
            SpecError::MissingField(_) => SpecErrorKind::MissingField,
            SpecError::FailOrPassOn => SpecErrorKind::ExclusiveFields,
            SpecError::EmptyFix(_) => SpecErrorKind::EmptyField,
            SpecError::Regex { .. } | SpecError::FilterRegex { .. } => SpecErrorKind::InvalidRegex,
            SpecError::InvalidEol { .. } | SpecError::InvalidMode { .. } => {
                SpecErrorKind::InvalidValue
            }
            SpecError::UnknownPlaceholder { .. } | SpecError::PlaceholderInOnce { .. } => {
                SpecErrorKind::InvalidPlaceholder
            }
            SpecError::Detector(_) => SpecErrorKind::InvalidDetector,
            SpecError::InvalidSelector { .. } => SpecErrorKind::InvalidSelector,
            SpecError::UnknownSelector { .. } => SpecErrorKind::UnknownSelector,
        }
    }

    /// The same problem, found in one of a check's pattern lists.
    pub fn in_list(self, list: PatternList) -> Self {
        SpecError::InList {
            list,
            source: Box::new(self),
        }
    }
}

/// A check's list of path patterns, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternList {
    Paths,
    Exclude,
    /// A secrets detector's own `paths`.
    DetectorPaths {
        detector: String,
    },
}

impl fmt::Display for PatternList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternList::Paths => f.write_str("paths"),
            PatternList::Exclude => f.write_str("exclude"),
            PatternList::DetectorPaths { detector } => write!(f, "detector `{detector}` paths"),
        }
    }
}

/// A list a check kind needs at least one entry in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyList {
    Paths,
    ContentPatterns,
    ServiceNames,
    PackageNames,
    Detectors,
}

impl fmt::Display for EmptyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmptyList::Paths => "`paths` must name at least one pattern",
            EmptyList::ContentPatterns => "`patterns` must hold at least one regex",
            EmptyList::ServiceNames => "`names` must list at least one service",
            EmptyList::PackageNames => "`names` must list at least one package",
            EmptyList::Detectors => "`detectors` must hold at least one detector",
        })
    }
}

/// Fields of which at least one must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A permissions check's `any_bits` or `owners`.
    BitsOrOwners,
    /// A fix's `each` or `once`.
    FixCommand,
    /// A fix filter's `path`, `subject` or `message`.
    FilterField(FixFilter),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::BitsOrOwners => f.write_str("give `any_bits` or `owners`"),
            Missing::FixCommand => f.write_str("`fix` needs `each`, `once` or both"),
            Missing::FilterField(filter) => write!(
                f,
                "`{filter}` needs at least one of `path`, `subject`, `message`"
            ),
        }
    }
}

/// A fix's command templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixField {
    Each,
    Once,
}

impl fmt::Display for FixField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FixField::Each => "each",
            FixField::Once => "once",
        })
    }
}

/// A fix's finding filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixFilter {
    Only,
    Except,
}

impl fmt::Display for FixFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FixFilter::Only => "fix.only",
            FixFilter::Except => "fix.except",
        })
    }
}

/// The fields a fix filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterField {
    Path,
    Subject,
    Message,
}

impl fmt::Display for FilterField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterField::Path => "path",
            FilterField::Subject => "subject",
            FilterField::Message => "message",
        })
    }
}

/// A permissions check's mode fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeField {
    AnyBits,
    UnlessBits,
}

impl fmt::Display for ModeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModeField::AnyBits => "any_bits",
            ModeField::UnlessBits => "unless_bits",
        })
    }
}
