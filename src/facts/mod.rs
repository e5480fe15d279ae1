//! Facts about the guest's configuration, read from its files: effective sshd settings,
//! accounts, services enabled at boot, installed packages, home directories.
//!
//! Fact readers see the guest only through [`GuestFiles`], so the same parser runs on an
//! image's mount tree and, in tests, on the directory the image was built from (where the
//! real tools — `sshd -T`, `systemctl --root` — act as oracles). They never decide pass or
//! fail; that is the rules' job.

pub mod accounts;
pub mod dpkg_files;
mod error;
pub mod fnmatch;
pub mod host;
pub mod memory;
pub mod packages;
pub mod rpmdb;
pub mod services;
pub mod sqlite;
pub mod sshd;

pub use error::{FactError, FactErrorKind};

use crate::filesystems::FileKind;
use crate::guest::{ResolveError, Tree};
use std::io::Read;

/// Configuration files larger than this are not read whole (no real one comes close).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Where a fact came from: a guest path and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub path: String,
    pub line: usize,
}

/// One directory entry, as `lstat` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirItem {
    pub name: Vec<u8>,
    pub kind: FileKind,
}

/// Read access to the guest's files by absolute guest path. Symlinks resolve inside the
/// guest root only.
pub trait GuestFiles: Sync {
    /// A regular file's contents (symlinks followed), at most `limit` bytes. `Ok(None)` when
    /// the path does not exist or is not a regular file.
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FactError>;

    /// A directory's entries (symlinks in `path` followed), in no particular order.
    /// `Ok(None)` when the path does not exist or is not a directory.
    fn list(&self, path: &str) -> Result<Option<Vec<DirItem>>, FactError>;

    /// The target of the symlink at `path` (not followed). `Ok(None)` when the path does not
    /// exist or is not a symlink.
    fn read_link(&self, path: &str) -> Result<Option<Vec<u8>>, FactError>;

    /// The kind of node at `path` without following a final symlink; `Ok(None)` if absent.
    fn kind(&self, path: &str) -> Result<Option<FileKind>, FactError>;

    /// A text file (lossy UTF-8), at most [`MAX_CONFIG_BYTES`].
    fn read_text(&self, path: &str) -> Result<Option<String>, FactError> {
        Ok(self
            .read(path, MAX_CONFIG_BYTES)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// A resolved node: its mount, where it is, and its metadata.
struct Node<'t> {
    mount: &'t crate::guest::Mount,
    located: crate::guest::Located,
    meta: crate::filesystems::Metadata,
}

fn fs_failure<'a>(
    path: &'a str,
    placement: &'a crate::image::Placement,
) -> impl Fn(crate::filesystems::FsError) -> FactError + 'a {
    move |e| FactError::unreadable(path, e.rebase(placement).to_string())
}

/// Resolves a guest path; `Ok(None)` when it does not exist.
fn node<'t>(tree: &'t Tree, path: &str, follow: bool) -> Result<Option<Node<'t>>, FactError> {
    let located = match tree.resolve(path.as_bytes(), follow) {
        Ok(located) => located,
        Err(ResolveError::NotFound { .. } | ResolveError::NotADirectory { .. }) => return Ok(None),
        Err(other) => return Err(FactError::unreadable(path, other.to_string())),
    };
    let Some(mount) = tree.mount(located.mount) else {
        return Ok(None);
    };
    let meta = mount
        .fs
        .metadata(located.node)
        .map_err(fs_failure(path, &mount.offset))?;
    Ok(Some(Node {
        mount,
        located,
        meta,
    }))
}

impl GuestFiles for Tree {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FactError> {
        let Some(found) = node(self, path, true)?.filter(|n| n.meta.kind == FileKind::File) else {
            return Ok(None);
        };
        let reader = found
            .mount
            .fs
            .open(found.located.node)
            .map_err(fs_failure(path, &found.mount.offset))?;
        let mut bytes = Vec::new();
        reader
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| FactError::unreadable(path, format!("reading the file: {e}")))?;
        Ok(Some(bytes))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<DirItem>>, FactError> {
        let Some(found) = node(self, path, true)?.filter(|n| n.meta.kind == FileKind::Dir) else {
            return Ok(None);
        };
        let fail = fs_failure(path, &found.mount.offset);
        let fs = &found.mount.fs;
        let mut items = Vec::new();
        for entry in fs.read_dir(found.located.node).map_err(&fail)? {
            // A mount point shows the mounted filesystem's root, as the kernel does.
            let mut child = found.located.canonical.clone();
            if child.last() != Some(&b'/') {
                child.push(b'/');
            }
            child.extend_from_slice(&entry.name);
            let kind = match self.mount_at(&child) {
                Some(_) => FileKind::Dir,
                None => fs.metadata(entry.node).map_err(&fail)?.kind,
            };
            items.push(DirItem {
                name: entry.name,
                kind,
            });
        }
        Ok(Some(items))
    }

    fn read_link(&self, path: &str) -> Result<Option<Vec<u8>>, FactError> {
        let Some(found) = node(self, path, false)?.filter(|n| n.meta.kind == FileKind::Symlink)
        else {
            return Ok(None);
        };
        found
            .mount
            .fs
            .read_link(found.located.node)
            .map(Some)
            .map_err(fs_failure(path, &found.mount.offset))
    }

    fn kind(&self, path: &str) -> Result<Option<FileKind>, FactError> {
        Ok(node(self, path, false)?.map(|n| n.meta.kind))
    }
}

/// Joins a directory and a name into a guest path.
pub fn child_path(dir: &str, name: &[u8]) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        String::from_utf8_lossy(name)
    )
}
