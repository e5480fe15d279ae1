//! [`GuestFiles`] over a directory on the host that holds a guest's root file system — the
//! tree an image is built from. Tests run fact readers on it and on the built image, and
//! compare both with the real tools (`sshd -T`, `systemctl --root`) run on the same tree.
//! Symlinks are resolved by hand, inside the directory, exactly as the guest sees them.

use super::{DirItem, FactError, GuestFiles};
use crate::filesystems::FileKind;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Symlinks followed while resolving one path, as Linux allows.
const MAX_SYMLINKS: usize = 40;

/// A guest root file system unpacked in a host directory.
#[derive(Debug, Clone)]
pub struct HostDir {
    root: PathBuf,
}

impl HostDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Resolves a guest path to a host path, following symlinks inside the root;
    /// `Ok(None)` when a component is missing.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Option<PathBuf>, FactError> {
        let mut pending: Vec<Vec<u8>> = split(path.as_bytes());
        pending.reverse();
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut links = 0usize;
        while let Some(component) = pending.pop() {
            if component == b"." {
                continue;
            }
            if component == b".." {
                names.pop();
                continue;
            }
            names.push(component);
            let host = self.host_path(&names);
            let meta = match fs::symlink_metadata(&host) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
                Err(e) => return Err(FactError::unreadable(path, e.to_string())),
            };
            let last = pending.is_empty();
            if meta.file_type().is_symlink() && (!last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FactError::unreadable(
                        path,
                        "too many levels of symbolic links",
                    ));
                }
                let target =
                    fs::read_link(&host).map_err(|e| FactError::unreadable(path, e.to_string()))?;
                let target = target.as_os_str().as_bytes();
                names.pop();
                if target.first() == Some(&b'/') {
                    names.clear();
                }
                let mut parts = split(target);
                parts.reverse();
                pending.extend(parts);
            } else if !last && !meta.is_dir() {
                return Ok(None);
            }
        }
        Ok(Some(self.host_path(&names)))
    }

    fn host_path(&self, names: &[Vec<u8>]) -> PathBuf {
        let mut host = self.root.clone();
        for name in names {
            host.push(std::ffi::OsStr::from_bytes(name));
        }
        host
    }
}

fn split(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn kind_of(file_type: fs::FileType) -> FileKind {
    if file_type.is_dir() {
        FileKind::Dir
    } else if file_type.is_symlink() {
        FileKind::Symlink
    } else if file_type.is_file() {
        FileKind::File
    } else if file_type.is_block_device() {
        FileKind::BlockDevice
    } else if file_type.is_char_device() {
        FileKind::CharDevice
    } else if file_type.is_fifo() {
        FileKind::Fifo
    } else {
        FileKind::Socket
    }
}

impl GuestFiles for HostDir {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FactError> {
        let Some(host) = self.resolve(path, true)? else {
            return Ok(None);
        };
        if !host.is_file() {
            return Ok(None);
        }
        let file = fs::File::open(&host).map_err(|e| FactError::unreadable(path, e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| FactError::unreadable(path, e.to_string()))?;
        Ok(Some(bytes))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<DirItem>>, FactError> {
        let Some(host) = self.resolve(path, true)? else {
            return Ok(None);
        };
        if !host.is_dir() {
            return Ok(None);
        }
        let mut items = Vec::new();
        for entry in fs::read_dir(&host).map_err(|e| FactError::unreadable(path, e.to_string()))? {
            let entry = entry.map_err(|e| FactError::unreadable(path, e.to_string()))?;
            let file_type = entry
                .file_type()
                .map_err(|e| FactError::unreadable(path, e.to_string()))?;
            items.push(DirItem {
                name: entry.file_name().as_bytes().to_vec(),
                kind: kind_of(file_type),
            });
        }
        Ok(Some(items))
    }

    fn read_link(&self, path: &str) -> Result<Option<Vec<u8>>, FactError> {
        let Some(host) = self.resolve(path, false)? else {
            return Ok(None);
        };
        match fs::read_link(&host) {
            Ok(target) => Ok(Some(target.as_os_str().as_bytes().to_vec())),
            Err(_) => Ok(None),
        }
    }

    fn kind(&self, path: &str) -> Result<Option<FileKind>, FactError> {
        let Some(host) = self.resolve(path, false)? else {
            return Ok(None);
        };
        match fs::symlink_metadata(Path::new(&host)) {
            Ok(meta) => Ok(Some(kind_of(meta.file_type()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FactError::unreadable(path, e.to_string())),
        }
    }
}
