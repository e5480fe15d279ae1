//! What every container format shares: the result of opening one, what it reports about
//! itself, and errors that name the file, the structure and the byte offset.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use super::{BlockSource, CorruptKind};

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
    /// Container checksums that did not match and were let through because the image was
    /// opened with `ChecksumPolicy::Ignore`: what was read from those structures was not
    /// verified, so a result built on it is incomplete.
    pub checksums_ignored: u64,
}

/// A container that cannot be opened, or whose tables turned out corrupt while reading.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{path}: cannot open: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {structure} at byte {offset}: {detail}")]
    Corrupt {
        path: String,
        /// The structure's name; literal for most, numbered for table entries and lines.
        structure: Cow<'static, str>,
        offset: u64,
        kind: CorruptKind,
        detail: String,
    },
    #[error("{path}: {feature} is not supported: {detail}")]
    Unsupported {
        path: String,
        feature: Cow<'static, str>,
        detail: String,
    },
}

impl ContainerError {
    pub fn corrupt(
        kind: CorruptKind,
        path: impl Into<String>,
        structure: impl Into<Cow<'static, str>>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Self::Corrupt {
            path: path.into(),
            structure: structure.into(),
            offset,
            kind,
            detail: detail.into(),
        }
    }

    /// The kind of corruption, when the container is corrupt.
    pub fn corrupt_kind(&self) -> Option<CorruptKind> {
        match self {
            Self::Corrupt { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The container error a failed read carries, when the read failed because the
    /// container's own tables are corrupt (see `corrupt_read`).
    pub fn beneath(error: &io::Error) -> Option<&Self> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Self>())
    }
}

/// The error a container's `read_exact_at` returns when its tables are corrupt: it names
/// the file, the structure and the byte offset, and surfaces as an unreadable file or
/// directory in the walk (an incomplete result), never as zeros. The typed error rides
/// inside the `io::Error` (its text is the error's own), so the layers above can tell a
/// corrupt container from a corrupt filesystem with `ContainerError::beneath`.
pub fn corrupt_read(
    kind: CorruptKind,
    path: &str,
    structure: impl Into<Cow<'static, str>>,
    offset: u64,
    detail: impl Into<String>,
) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        ContainerError::corrupt(kind, path, structure, offset, detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_read_keeps_the_typed_error_and_its_text() {
        let e = corrupt_read(
            CorruptKind::OutOfRange,
            "d.vhd",
            "VHD BAT",
            1536,
            "no entry",
        );
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "d.vhd: VHD BAT at byte 1536: no entry");
        let beneath = ContainerError::beneath(&e).unwrap();
        assert_eq!(beneath.corrupt_kind(), Some(CorruptKind::OutOfRange));
        assert!(ContainerError::beneath(&io::Error::other("disk gone")).is_none());
    }
}
