//! The facts layer's one error: what went wrong (a kind callers and tests match on), the
//! guest path concerned when there is one, and the message users see. Deciding what a
//! failed fact means for a rule is the rules' job.

use std::fmt;

/// What went wrong, as far as the facts layer can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactErrorKind {
    /// The guest's files could not be read: I/O, corruption, a path that does not resolve,
    /// too many levels of symbolic links.
    Unreadable,
    /// One file or directory larger than is ever read whole.
    TooLarge,
    /// Past one of a reader's bounds over the whole read (files included, lines, blocks,
    /// rules, chains): a real system stays far below them, a hostile one does not.
    LimitReached,
    /// Bytes that do not decode as the format they should hold (package databases).
    Malformed,
    /// Configuration its own program would refuse (sshd's arguments and Match criteria).
    Rejected,
}

/// A fact could not be established; rules that need it report `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FactError {
    pub kind: FactErrorKind,
    /// The guest path concerned; `None` for a problem inside bytes the caller read (the
    /// caller names the file).
    pub path: Option<String>,
    pub message: String,
}

impl fmt::Display for FactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl FactError {
    /// An error about bytes the caller already holds: the caller names the file.
    pub fn new(kind: FactErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: None,
            message: message.into(),
        }
    }

    fn at(kind: FactErrorKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: Some(path.into()),
            message: message.into(),
        }
    }

    pub fn unreadable(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::at(FactErrorKind::Unreadable, path, message)
    }

    pub fn too_large(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::at(FactErrorKind::TooLarge, path, message)
    }

    pub fn limit_reached(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::at(FactErrorKind::LimitReached, path, message)
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(FactErrorKind::Malformed, message)
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(FactErrorKind::Rejected, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_path_when_there_is_one() {
        let e = FactError::unreadable("/etc/passwd", "Permission denied");
        assert_eq!(e.to_string(), "/etc/passwd: Permission denied");
        assert_eq!(e.kind, FactErrorKind::Unreadable);
        let e = FactError::malformed("header has no package name");
        assert_eq!(e.to_string(), "header has no package name");
        assert_eq!(e.kind, FactErrorKind::Malformed);
    }
}
