//! What every container format shares: the result of opening one, what it reports about
//! itself, and errors that name the file, the structure and the byte offset.

use std::io;
use std::sync::Arc;

use super::BlockSource;

/// A container opened into the virtual disk it presents.
#[derive(Debug, Clone)]
pub struct Opened {
    pub disk: Arc<dyn BlockSource>,
    pub info: ContainerInfo,
}

/// An internal snapshot recorded in a container (qcow2). The active layer is what is read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub virtual_size: Option<u64>,
    /// Seconds since the epoch when the snapshot was taken.
    pub date: Option<i64>,
}

/// What a container says about itself, for `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContainerInfo {
    /// Container variant: qcow2 "v2"/"v3"; VMDK createType; VHD "fixed"/"dynamic".
    pub subformat: Option<String>,
    /// Bytes the container's files occupy on the host, when the format knows better than
    /// the file's own allocation (e.g. several extent files).
    pub allocated_size: Option<u64>,
    /// Backing files, nearest first, as resolved paths.
    pub backing_chain: Vec<String>,
    pub snapshots: Vec<Snapshot>,
    /// Extent or data files besides the one named on the command line.
    pub extra_files: Vec<String>,
}

/// A container that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{path}: cannot open: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {structure} at byte {offset}: {detail}")]
    Corrupt {
        path: String,
        structure: String,
        offset: u64,
        detail: String,
    },
    #[error("{path}: {feature} is not supported: {detail}")]
    Unsupported {
        path: String,
        feature: String,
        detail: String,
    },
}

impl ContainerError {
    pub fn corrupt(
        path: impl Into<String>,
        structure: impl Into<String>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Self::Corrupt {
            path: path.into(),
            structure: structure.into(),
            offset,
            detail: detail.into(),
        }
    }
}

/// The error a container's `read_exact_at` returns when its tables are corrupt: it names
/// the file, the structure and the byte offset, and surfaces as an unreadable file or
/// directory in the walk (an incomplete result), never as zeros.
pub fn corrupt_read(path: &str, structure: &str, offset: u64, detail: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{path}: {structure} at byte {offset}: {detail}"),
    )
}
