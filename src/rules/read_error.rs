//! Why a check could not read a guest file it needed: the guest path (its bytes) and the
//! cause. Checks turn it into the text of a result's `reason` only when they report it.

use std::io;

use crate::filesystems::FsError;
use crate::guest::{GuestPath, ResolveError};

/// A guest file or directory that could not be read during evaluation.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The node's mount is not in the tree (an inventory from another tree).
    #[error("{}: no such mount", path.display())]
    NoMount { path: GuestPath },
    /// The filesystem refused the node; offsets are already image-absolute.
    #[error("{}: {source}", path.display())]
    Fs { path: GuestPath, source: FsError },
    /// The path could not be resolved (the error names the path itself).
    #[error("{0}")]
    Resolve(#[source] ResolveError),
    /// The file opened but reading its contents failed.
    #[error("{}: reading the file: {source}", path.display())]
    Io { path: GuestPath, source: io::Error },
    /// The secret scanner's read failed; the caller's message names the path already.
    #[error("{source}")]
    Scan { path: GuestPath, source: io::Error },
}

/// What kind of failure a `ReadError` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorKind {
    NoMount,
    Filesystem,
    Resolve,
    Io,
}

impl ReadError {
    pub fn kind(&self) -> ReadErrorKind {
        match self {
            ReadError::NoMount { .. } => ReadErrorKind::NoMount,
            ReadError::Fs { .. } => ReadErrorKind::Filesystem,
            ReadError::Resolve(_) => ReadErrorKind::Resolve,
            ReadError::Io { .. } | ReadError::Scan { .. } => ReadErrorKind::Io,
        }
    }

    /// The guest path that could not be read, when the error carries it as bytes.
    pub fn path(&self) -> Option<&GuestPath> {
        match self {
            ReadError::NoMount { path }
            | ReadError::Fs { path, .. }
            | ReadError::Io { path, .. }
            | ReadError::Scan { path, .. } => Some(path),
            ReadError::Resolve(_) => None,
        }
    }
}
