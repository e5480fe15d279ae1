//! A mount tree: filesystems joined at guest paths, and path resolution inside it.
//!
//! Symlinks resolve inside the tree only: an absolute target restarts at the tree's root,
//! `..` never climbs above it, and a bounded number of links is followed (as Linux does).

use std::collections::HashMap;
use std::sync::Arc;

use crate::filesystems::{FileKind, Filesystem, FsError, NodeId};
use crate::image::Placement;

/// Linux's limit on symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 40;
/// Longest path accepted, in components, so a crafted link chain cannot grow without bound.
const MAX_COMPONENTS: usize = 4096;

/// One filesystem mounted at a guest path.
#[derive(Debug, Clone)]
pub struct Mount {
    /// The guest path, `/` for the root; always absolute with no trailing slash.
    pub path: Vec<u8>,
    /// Index of the volume in the disk layout.
    pub volume: usize,
    /// Where the volume lies on the disk, to turn filesystem offsets into image offsets.
    pub offset: Placement,
    pub fs: Arc<dyn Filesystem>,
}

/// Where a guest path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Index into the tree's mounts.
    pub mount: usize,
    pub node: NodeId,
    /// The path with every symlink resolved.
    pub canonical: Vec<u8>,
}

/// Why a guest path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: too many levels of symbolic links")]
    TooManyLinks { path: String },
    #[error("{path}: path too long")]
    TooLong { path: String },
    #[error("{path}: {source}")]
    Fs {
        path: String,
        volume: usize,
        source: FsError,
    },
}

/// Shows a guest path for messages; invalid UTF-8 is escaped, never dropped.
pub fn display_path(path: &[u8]) -> String {
    crate::names::escape_for_terminal(path)
}

/// Joins path components into an absolute path.
pub fn join(components: &[Vec<u8>]) -> Vec<u8> {
    if components.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for component in components {
        out.push(b'/');
        out.extend_from_slice(component);
    }
    out
}

fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty())
}

/// Filesystems joined at guest paths.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    mounts: Vec<Mount>,
    by_path: HashMap<Vec<u8>, usize>,
}

impl Tree {
    /// A tree from mounts; the one at `/` must be present for paths to resolve.
    pub fn new(mounts: Vec<Mount>) -> Self {
        let by_path = mounts
            .iter()
            .enumerate()
            .map(|(index, mount)| (mount.path.clone(), index))
            .collect();
        Self { mounts, by_path }
    }

    /// A tree holding one filesystem at `/`.
    pub fn single(fs: Arc<dyn Filesystem>, volume: usize, offset: Placement) -> Self {
        Self::new(vec![Mount {
            path: b"/".to_vec(),
            volume,
            offset,
            fs,
        }])
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The mount whose root is at exactly this guest path.
    pub fn mount_at(&self, path: &[u8]) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    pub fn mount(&self, index: usize) -> Option<&Mount> {
        self.mounts.get(index)
    }

    fn root(&self) -> Result<(usize, NodeId), ResolveError> {
        let index = self.mount_at(b"/").ok_or_else(|| ResolveError::NotFound {
            path: "/".to_string(),
        })?;
        let mount = self
            .mounts
            .get(index)
            .ok_or_else(|| ResolveError::NotFound {
                path: "/".to_string(),
            })?;
        Ok((index, mount.fs.root()))
    }

    fn fs_error(&self, path: &[Vec<u8>], mount: usize, source: FsError) -> ResolveError {
        let mount = self.mounts.get(mount);
        ResolveError::Fs {
            path: display_path(&join(path)),
            volume: mount.map(|m| m.volume).unwrap_or(0),
            source: source.rebase(&mount.map(|m| m.offset.clone()).unwrap_or_default()),
        }
    }

    /// Resolves `path` (absolute, or relative to `/`). With `follow_last` a symlink in the
    /// last component is followed too, as `stat` does; without it, as `lstat` does.
    pub fn resolve(&self, path: &[u8], follow_last: bool) -> Result<Located, ResolveError> {
        let root = self.root()?;
        // The stack holds the (mount, node) of each directory walked through, so `..` is a pop.
        let mut stack: Vec<(usize, NodeId)> = vec![root];
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut pending: Vec<Vec<u8>> = split(path).rev().map(<[u8]>::to_vec).collect();
        let mut links_followed = 0usize;

        while let Some(component) = pending.pop() {
            if component == b"." {
                continue;
            }
            if component == b".." {
                if names.pop().is_some() {
                    stack.pop();
                }
                continue;
            }
            let &(mount, dir) = stack.last().ok_or_else(|| ResolveError::NotFound {
                path: display_path(path),
            })?;
            names.push(component.clone());
            let here = join(&names);
            if let Some(child_mount) = self.mount_at(&here) {
                let fs_root = self
                    .mounts
                    .get(child_mount)
                    .map(|m| m.fs.root())
                    .unwrap_or(0);
                stack.push((child_mount, fs_root));
                continue;
            }
            let fs = &self
                .mounts
                .get(mount)
                .ok_or_else(|| ResolveError::NotFound {
                    path: display_path(&here),
                })?
                .fs;
            let dir_meta = fs
                .metadata(dir)
                .map_err(|e| self.fs_error(&names, mount, e))?;
            if dir_meta.kind != FileKind::Dir {
                return Err(ResolveError::NotADirectory {
                    path: display_path(&join(names.get(..names.len() - 1).unwrap_or_default())),
                });
            }
            let node = fs
                .lookup(dir, &component)
                .map_err(|e| self.fs_error(&names, mount, e))?
                .ok_or_else(|| ResolveError::NotFound {
                    path: display_path(&here),
                })?;
            let is_last = pending.is_empty();
            let meta = fs
                .metadata(node)
                .map_err(|e| self.fs_error(&names, mount, e))?;
            if meta.kind == FileKind::Symlink && (!is_last || follow_last) {
                links_followed += 1;
                if links_followed > MAX_SYMLINKS {
                    return Err(ResolveError::TooManyLinks {
                        path: display_path(path),
                    });
                }
                let target = fs
                    .read_link(node)
                    .map_err(|e| self.fs_error(&names, mount, e))?;
                names.pop();
                if target.first() == Some(&b'/') {
                    // An absolute target means the guest's own root, never the host's.
                    names.clear();
                    stack.truncate(1);
                }
                pending.extend(split(&target).rev().map(<[u8]>::to_vec));
                if pending.len() + names.len() > MAX_COMPONENTS {
                    return Err(ResolveError::TooLong {
                        path: display_path(path),
                    });
                }
                continue;
            }
            stack.push((mount, node));
        }
        let &(mount, node) = stack.last().ok_or_else(|| ResolveError::NotFound {
            path: display_path(path),
        })?;
        Ok(Located {
            mount,
            node,
            canonical: join(&names),
        })
    }
}
