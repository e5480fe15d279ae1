//! The parallel inventory walk: every node of a mount tree, with metadata and, on request,
//! content hashes. Directories are read and files hashed on all cores (rayon); the result
//! is sorted by path, so it is the same at any thread count.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::filesystems::{FileKind, Filesystem, Metadata, NodeId};
use crate::guest::tree::{display_path, Tree};

/// Deeper trees than this are reported, not followed: real systems stay far below it, and
/// a crafted one must not exhaust the stack.
pub const MAX_DEPTH: usize = 1000;
const READ_CHUNK: usize = 256 * 1024;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What to collect besides metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Hash regular files no larger than this many bytes; `None` hashes nothing. The bound
    /// exists because a sparse file may claim terabytes (lastlog with large UIDs does), and
    /// hashing reads every byte, holes included.
    pub sha256_up_to: Option<u64>,
}

/// The default bound on the size of a file `files --hash` reads.
pub const DEFAULT_HASH_LIMIT: u64 = 16 << 30;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Guest path (absolute).
    pub path: Vec<u8>,
    /// Index of the volume the node lives on.
    pub volume: usize,
    /// Index of the tree mount holding the node, and the node in its filesystem: lets a
    /// later reader open the file without resolving its path again.
    pub mount: usize,
    pub node: NodeId,
    pub meta: Metadata,
    /// Symlink target, as stored.
    pub target: Option<Vec<u8>>,
    pub sha256: Option<[u8; 32]>,
    /// The file was larger than the hash bound and was not read.
    pub hash_skipped: bool,
}

/// A node or directory that could not be read; the walk goes on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    pub path: Vec<u8>,
    pub volume: usize,
    pub message: String,
}

/// Everything one walk found.
#[derive(Debug, Default)]
pub struct Inventory {
    pub entries: Vec<Entry>,
    pub errors: Vec<WalkError>,
    pub bytes_read: u64,
}

struct Walker<'a> {
    tree: &'a Tree,
    options: WalkOptions,
    bytes_read: AtomicU64,
}

/// Entries in batches (one per worker task) so that merging moves batch headers rather
/// than copying entries; they are copied once, when the walk is flattened and sorted.
type Found = (Vec<Vec<Entry>>, Vec<WalkError>);

fn push_entry(found: &mut Found, entry: Entry) {
    match found.0.last_mut() {
        Some(batch) => batch.push(entry),
        None => found.0.push(vec![entry]),
    }
}

fn child_path(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(parent.len() + name.len() + 1);
    path.extend_from_slice(parent);
    if parent != b"/" {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

fn merge(mut a: Found, b: Found) -> Found {
    a.0.extend(b.0);
    a.1.extend(b.1);
    a
}

impl Walker<'_> {
    fn error(&self, path: &[u8], volume: usize, message: String) -> WalkError {
        WalkError {
            path: path.to_vec(),
            volume,
            message,
        }
    }

    fn hash(&self, fs: &dyn Filesystem, node: NodeId, base: u64) -> Result<[u8; 32], String> {
        let mut reader = fs.open(node).map_err(|e| e.rebase(base).to_string())?;
        let mut hasher = Sha256::new();
        // One buffer per worker: a fresh 256 KiB allocation per file costs more than
        // hashing a small file.
        READ_BUFFER.with_borrow_mut(|buf| {
            buf.resize(READ_CHUNK, 0);
            loop {
                let n = reader.read(buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                hasher.update(buf.get(..n).unwrap_or_default());
                self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(hasher.finalize().into())
        })
    }

    /// Adds one node and, for a directory, everything below it, to `found`.
    fn visit(
        &self,
        found: &mut Found,
        mount: usize,
        node: NodeId,
        path: Vec<u8>,
        ancestors: &[NodeId],
    ) {
        let Some(owner) = self.tree.mount(mount) else {
            return;
        };
        let (fs, volume, base) = (owner.fs.as_ref(), owner.volume, owner.offset);
        let meta = match fs.metadata(node) {
            Ok(meta) => meta,
            Err(e) => {
                found
                    .1
                    .push(self.error(&path, volume, e.rebase(base).to_string()));
                return;
            }
        };
        let mut entry = Entry {
            path,
            volume,
            mount,
            node,
            meta,
            target: None,
            sha256: None,
            hash_skipped: false,
        };
        match entry.meta.kind {
            FileKind::Symlink => match fs.read_link(node) {
                Ok(target) => entry.target = Some(target),
                Err(e) => {
                    let message = e.rebase(base).to_string();
                    found.1.push(self.error(&entry.path, volume, message));
                }
            },
            FileKind::File => match self.options.sha256_up_to {
                Some(limit) if entry.meta.size > limit => entry.hash_skipped = true,
                Some(_) => match self.hash(fs, node, base) {
                    Ok(digest) => entry.sha256 = Some(digest),
                    Err(e) => found.1.push(self.error(&entry.path, volume, e)),
                },
                None => {}
            },
            FileKind::Dir => {
                let below = self.visit_children(mount, node, &entry.path, ancestors);
                push_entry(found, entry);
                found.0.extend(below.0);
                found.1.extend(below.1);
                return;
            }
            _ => {}
        }
        push_entry(found, entry);
    }

    fn visit_children(
        &self,
        mount: usize,
        dir: NodeId,
        path: &[u8],
        ancestors: &[NodeId],
    ) -> Found {
        let Some(owner) = self.tree.mount(mount) else {
            return Found::default();
        };
        let (fs, volume, base) = (owner.fs.as_ref(), owner.volume, owner.offset);
        if ancestors.contains(&dir) {
            let message = "directory loop: a directory contains one of its ancestors".to_string();
            return (Vec::new(), vec![self.error(path, volume, message)]);
        }
        if ancestors.len() >= MAX_DEPTH {
            let message = format!("deeper than {MAX_DEPTH} levels; not walked further");
            return (Vec::new(), vec![self.error(path, volume, message)]);
        }
        let children = match fs.read_dir(dir) {
            Ok(children) => children,
            Err(e) => {
                let message = e.rebase(base).to_string();
                return (Vec::new(), vec![self.error(path, volume, message)]);
            }
        };
        let mut ancestors = ancestors.to_vec();
        ancestors.push(dir);
        // Each worker fills its own accumulator; only whole batches are merged.
        children
            .into_par_iter()
            .fold(Found::default, |mut found, child| {
                let child_path = child_path(path, &child.name);
                // A mount point shows the mounted filesystem, walked on its own.
                if self.tree.mount_at(&child_path).is_none() {
                    self.visit(&mut found, mount, child.node, child_path, &ancestors);
                }
                found
            })
            .reduce(Found::default, merge)
    }
}

/// Walks every mount of the tree; the result is sorted by path.
pub fn walk(tree: &Tree, options: WalkOptions) -> Inventory {
    let walker = Walker {
        tree,
        options,
        bytes_read: AtomicU64::new(0),
    };
    let (batches, mut errors) = tree
        .mounts()
        .par_iter()
        .enumerate()
        .fold(Found::default, |mut found, (index, mount)| {
            walker.visit(&mut found, index, mount.fs.root(), mount.path.clone(), &[]);
            found
        })
        .reduce(Found::default, merge);
    let mut entries = Vec::with_capacity(batches.iter().map(Vec::len).sum());
    for batch in batches {
        entries.extend(batch);
    }
    entries.par_sort_unstable_by(|a, b| a.path.cmp(&b.path).then(a.volume.cmp(&b.volume)));
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.message.cmp(&b.message)));
    Inventory {
        entries,
        errors,
        bytes_read: walker.bytes_read.load(Ordering::Relaxed),
    }
}

/// A walk error as one line for stderr.
pub fn describe_error(error: &WalkError) -> String {
    format!("{}: {}", display_path(&error.path), error.message)
}
