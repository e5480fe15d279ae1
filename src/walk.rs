//! The parallel inventory walk: every node of a mount tree, with metadata and, on request,
//! content hashes. Directories are read and files hashed on all cores (rayon); the result
//! is sorted by path, so it is the same at any thread count. Reports how far it is into
//! an optional [`Progress`], in batches, so that showing progress does not slow it.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::filesystems::{FileKind, Filesystem, FsError, Metadata, NodeId};
use crate::guest::tree::{display_path, Mount, Tree};
use crate::image::Placement;
use crate::progress::{MountTotals, Progress};

/// Deeper trees than this are reported, not followed: real systems stay far below it, and
/// a crafted one must not exhaust the stack.
pub const MAX_DEPTH: usize = 1000;
/// More entries than this in one guest are reported, not listed (unless `--max-entries`
/// says otherwise): the inventory costs about 210 bytes per entry, so this keeps a crafted
/// image (a directory of tens of millions of names) under 1 GiB, while leaving room for
/// the largest real images (machine-learning AMIs with several Python environments hold
/// 1.5 to 2 million files).
pub const DEFAULT_MAX_ENTRIES: usize = 4_000_000;
const READ_CHUNK: usize = 256 * 1024;
/// Entries a worker collects before adding them to the progress counter: one atomic add
/// per this many nodes keeps the counter off the walk's profile.
const PROGRESS_BATCH: u64 = 256;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What to collect besides metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions<'p> {
    /// Hash regular files no larger than this many bytes; `None` hashes nothing. The bound
    /// exists because a sparse file may claim terabytes (lastlog with large UIDs does), and
    /// hashing reads every byte, holes included.
    pub sha256_up_to: Option<u64>,
    /// Where to count nodes walked and bytes hashed while the walk runs.
    pub progress: Option<&'p Progress>,
    /// Directory entries listed at most; `None` is `DEFAULT_MAX_ENTRIES`.
    pub max_entries: Option<usize>,
}

/// The default bound on the size of a file `files --hash` reads.
pub const DEFAULT_HASH_LIMIT: u64 = 16 << 30;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Guest path (absolute). Boxed slices, not vectors, here and below: a guest may hold
    /// millions of entries, and every word of this struct counts (see docs/security.md).
    pub path: Box<[u8]>,
    /// Index of the volume the node lives on.
    pub volume: usize,
    /// Index of the tree mount holding the node, and the node in its filesystem: lets a
    /// later reader open the file without resolving its path again.
    pub mount: usize,
    pub node: NodeId,
    pub meta: Metadata,
    /// Symlink target, as stored.
    pub target: Option<Box<[u8]>>,
    pub sha256: Option<Box<[u8; 32]>>,
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

/// A directory the walk did not enter on purpose: a mount point, whose contents on the
/// filesystem below are hidden by the filesystem mounted there (as on the running guest).
/// Recorded only when something is hidden.
#[derive(Debug)]
pub struct Shadowed {
    pub path: Vec<u8>,
    /// The volume whose directory is hidden.
    pub volume: usize,
    /// The volume mounted over it.
    pub by_volume: usize,
    /// Entries hidden there, or why the directory could not be listed.
    pub hidden: Result<usize, FsError>,
}

/// Everything one walk found.
#[derive(Debug, Default)]
pub struct Inventory {
    pub entries: Vec<Entry>,
    pub errors: Vec<WalkError>,
    /// Mount points hiding entries of the filesystem below, sorted by path.
    pub shadowed: Vec<Shadowed>,
    pub bytes_read: u64,
}

impl Inventory {
    /// Entries whose path starts with `prefix` (entries are sorted by path, so they are
    /// contiguous).
    pub fn entries_under(&self, prefix: &[u8]) -> &[Entry] {
        let start = self.entries.partition_point(|e| *e.path < *prefix);
        let rest = self.entries.get(start..).unwrap_or_default();
        let len = rest.partition_point(|e| e.path.starts_with(prefix));
        rest.get(..len).unwrap_or_default()
    }
}

struct Walker<'a> {
    tree: &'a Tree,
    options: WalkOptions<'a>,
    bytes_read: AtomicU64,
    /// Met at mount points only, so a lock costs nothing and keeps `Found` small: it is
    /// moved through every step of the fold.
    shadowed: Mutex<Vec<Shadowed>>,
    /// Directories listed so far, by (mount, node). No filesystem amiscan reads lets a
    /// directory have two parents; a crafted one that does would otherwise be walked once
    /// per path, which grows exponentially with depth. Locked once per directory.
    listed: Mutex<HashSet<(usize, NodeId)>>,
    /// Directory entries accepted so far, against the options' `max_entries`.
    entries_seen: std::sync::atomic::AtomicUsize,
}

/// What one worker task collected. Entries are in batches so that merging moves batch
/// headers rather than copying entries; they are copied once, when the walk is flattened
/// and sorted.
#[derive(Default)]
struct Found {
    batches: Vec<Vec<Entry>>,
    errors: Vec<WalkError>,
    /// Entries not yet added to the progress counter.
    uncounted: u64,
}

fn push_entry(found: &mut Found, entry: Entry) {
    match found.batches.last_mut() {
        Some(batch) => batch.push(entry),
        None => found.batches.push(vec![entry]),
    }
    found.uncounted += 1;
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

/// One vector of every batch's entries, grown from the largest batch: a large vector is
/// its own mapping, which grows in place without a copy, and each other batch is freed as
/// soon as it is moved, so the walk's peak memory is about its entries once, not twice.
fn flatten(mut batches: Vec<Vec<Entry>>) -> Vec<Entry> {
    let largest = batches.iter().enumerate().max_by_key(|(_, b)| b.capacity());
    let Some(largest) = largest.map(|(index, _)| index) else {
        return Vec::new();
    };
    let mut entries = batches.swap_remove(largest);
    entries.reserve_exact(batches.iter().map(Vec::len).sum());
    for batch in batches {
        entries.extend(batch);
    }
    entries
}

fn merge(mut a: Found, b: Found) -> Found {
    a.batches.extend(b.batches);
    a.errors.extend(b.errors);
    a.uncounted += b.uncounted;
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

    /// Adds what `found` holds uncounted to the progress counter, once there is a batch
    /// of it (or always, with `all`).
    fn report(&self, found: &mut Found, all: bool) {
        if let Some(progress) = self.options.progress {
            if found.uncounted >= PROGRESS_BATCH || (all && found.uncounted > 0) {
                progress.add_files(std::mem::take(&mut found.uncounted));
            }
        }
    }

    fn hash(
        &self,
        fs: &dyn Filesystem,
        node: NodeId,
        base: &Placement,
    ) -> Result<[u8; 32], String> {
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
                if let Some(progress) = self.options.progress {
                    progress.add_bytes(n as u64);
                }
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
        let (fs, volume, base) = (owner.fs.as_ref(), owner.volume, &owner.offset);
        let meta = match fs.metadata(node) {
            Ok(meta) => meta,
            Err(e) => {
                found
                    .errors
                    .push(self.error(&path, volume, e.rebase(base).to_string()));
                return;
            }
        };
        let mut entry = Entry {
            path: path.into_boxed_slice(),
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
                Ok(target) => entry.target = Some(target.into_boxed_slice()),
                Err(e) => {
                    let message = e.rebase(base).to_string();
                    found.errors.push(self.error(&entry.path, volume, message));
                }
            },
            FileKind::File => match self.options.sha256_up_to {
                Some(limit) if entry.meta.size > limit => entry.hash_skipped = true,
                Some(_) => match self.hash(fs, node, base) {
                    Ok(digest) => entry.sha256 = Some(Box::new(digest)),
                    Err(e) => found.errors.push(self.error(&entry.path, volume, e)),
                },
                None => {}
            },
            FileKind::Dir => {
                let below = self.visit_children(mount, node, &entry.path, ancestors);
                push_entry(found, entry);
                let merged = merge(std::mem::take(found), below);
                *found = merged;
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
        let (fs, volume, base) = (owner.fs.as_ref(), owner.volume, &owner.offset);
        let failed = |message: String| Found {
            errors: vec![self.error(path, volume, message)],
            ..Found::default()
        };
        if ancestors.contains(&dir) {
            let message = "directory loop: a directory contains one of its ancestors".to_string();
            return failed(message);
        }
        if ancestors.len() >= MAX_DEPTH {
            return failed(format!(
                "deeper than {MAX_DEPTH} levels; not walked further"
            ));
        }
        let first_visit = self
            .listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((mount, dir));
        if !first_visit {
            return failed(format!(
                "directory (inode {dir}) is also reached by another path: a directory with two parents, listed once"
            ));
        }
        let children = match fs.read_dir(dir) {
            Ok(children) => children,
            Err(e) => return failed(e.rebase(base).to_string()),
        };
        let seen = self
            .entries_seen
            .fetch_add(children.len(), std::sync::atomic::Ordering::Relaxed);
        let max_entries = self.options.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
        if seen.saturating_add(children.len()) > max_entries {
            return failed(format!(
                "the guest holds more than {max_entries} entries (--max-entries); this \
                 directory's {} are not listed",
                children.len()
            ));
        }
        let mut ancestors = ancestors.to_vec();
        ancestors.push(dir);
        // Each worker fills its own accumulator; only whole batches are merged.
        children
            .into_par_iter()
            .fold(Found::default, |mut found, child| {
                let child_path = child_path(path, &child.name);
                // A mount point shows the mounted filesystem, walked on its own.
                match self.tree.mount_at(&child_path) {
                    None => self.visit(&mut found, mount, child.node, child_path, &ancestors),
                    Some(over) => self.shadow(owner, child.node, child_path, over),
                }
                self.report(&mut found, false);
                found
            })
            .reduce(Found::default, merge)
    }

    /// Records a mount point's directory on the filesystem below when it holds entries,
    /// which the guest never sees and the walk does not list. Cold: kept out of the
    /// per-child closure, which the compiler then inlines into the fold.
    #[cold]
    fn shadow(&self, owner: &Mount, node: NodeId, path: Vec<u8>, over: usize) {
        let fs = owner.fs.as_ref();
        let hidden = match fs.metadata(node) {
            Ok(meta) if meta.kind != FileKind::Dir => Ok(1),
            Ok(_) => fs.read_dir(node).map(|children| children.len()),
            Err(e) => Err(e),
        };
        let hidden = hidden.map_err(|e| e.rebase(&owner.offset));
        if matches!(hidden, Ok(0)) {
            return;
        }
        let shadowed = Shadowed {
            path,
            volume: owner.volume,
            by_volume: self.tree.mount(over).map_or(owner.volume, |m| m.volume),
            hidden,
        };
        self.shadowed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shadowed);
    }
}

/// Walks every mount of the tree; the result is sorted by path.
pub fn walk(tree: &Tree, options: WalkOptions<'_>) -> Inventory {
    let walker = Walker {
        tree,
        options,
        bytes_read: AtomicU64::new(0),
        shadowed: Mutex::new(Vec::new()),
        listed: Mutex::new(HashSet::new()),
        entries_seen: std::sync::atomic::AtomicUsize::new(0),
    };
    if let Some(progress) = options.progress {
        let mounts: Vec<MountTotals> = tree
            .mounts()
            .iter()
            .map(|mount| MountTotals {
                path: display_path(&mount.path),
                volume: mount.volume,
                usage: mount.fs.usage(),
            })
            .collect();
        progress.begin_walk(&mounts, options.sha256_up_to.is_some());
    }
    let found = tree
        .mounts()
        .par_iter()
        .enumerate()
        .fold(Found::default, |mut found, (index, mount)| {
            if let Some(progress) = options.progress {
                progress.mount_started(index);
            }
            walker.visit(&mut found, index, mount.fs.root(), mount.path.clone(), &[]);
            walker.report(&mut found, true);
            if let Some(progress) = options.progress {
                progress.mount_finished(index);
            }
            found
        })
        .reduce(Found::default, merge);
    let Found {
        batches,
        mut errors,
        uncounted,
    } = found;
    if let Some(progress) = options.progress {
        progress.add_files(uncounted);
    }
    let mut entries = flatten(batches);
    entries.par_sort_unstable_by(|a, b| a.path.cmp(&b.path).then(a.volume.cmp(&b.volume)));
    errors.sort_by(|a, b| a.path.cmp(&b.path).then(a.message.cmp(&b.message)));
    let mut shadowed = walker
        .shadowed
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    shadowed.sort_by(|a, b| a.path.cmp(&b.path).then(a.volume.cmp(&b.volume)));
    Inventory {
        entries,
        errors,
        shadowed,
        bytes_read: walker.bytes_read.load(Ordering::Relaxed),
    }
}

/// A walk error as one line for stderr.
pub fn describe_error(error: &WalkError) -> String {
    format!("{}: {}", display_path(&error.path), error.message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::sync::Arc;

    /// Guests hold up to `DEFAULT_MAX_ENTRIES` entries by default; docs/security.md's memory bound assumes this.
    #[test]
    fn an_entry_stays_within_128_bytes() {
        assert!(std::mem::size_of::<super::Entry>() <= 128);
    }

    use super::*;
    use crate::filesystems::{DirEntry, FileReader, FsError};

    /// A filesystem in memory: node `n` is `nodes[n]`, the root is node 0.
    #[derive(Debug, Default)]
    struct MemFs {
        nodes: Vec<(FileKind, Vec<DirEntry>)>,
    }

    impl MemFs {
        fn add(&mut self, parent: Option<NodeId>, name: &str, kind: FileKind) -> NodeId {
            let node = self.nodes.len() as NodeId;
            self.nodes.push((kind, Vec::new()));
            if let Some(parent) = parent {
                self.nodes[parent as usize].1.push(DirEntry {
                    name: name.as_bytes().to_vec(),
                    node,
                });
            }
            node
        }

        /// A root holding `dirs` directories of `files` files each.
        fn populated(dirs: usize, files: usize) -> Self {
            let mut fs = Self::default();
            let root = fs.add(None, "", FileKind::Dir);
            for d in 0..dirs {
                let dir = fs.add(Some(root), &format!("d{d}"), FileKind::Dir);
                for f in 0..files {
                    fs.add(Some(dir), &format!("f{f}"), FileKind::File);
                }
            }
            fs
        }
    }

    impl Filesystem for MemFs {
        fn type_name(&self) -> &'static str {
            "memory"
        }

        fn root(&self) -> NodeId {
            0
        }

        fn metadata(&self, node: NodeId) -> Result<Metadata, FsError> {
            let (kind, _) = self.nodes.get(node as usize).ok_or(FsError::NotAFile)?;
            Ok(Metadata {
                kind: *kind,
                permissions: 0o644,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: 0,
                mtime_nsec: 0,
                inode: node,
                nlink: 1,
                rdev: None,
            })
        }

        fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>, FsError> {
            match self.nodes.get(dir as usize) {
                Some((FileKind::Dir, children)) => Ok(children.clone()),
                _ => Err(FsError::NotADirectory),
            }
        }

        fn read_link(&self, _: NodeId) -> Result<Vec<u8>, FsError> {
            Err(FsError::NotASymlink)
        }

        fn open(&self, _: NodeId) -> Result<FileReader<'_>, FsError> {
            Ok(Box::new(std::io::empty()))
        }
    }

    /// A root filesystem with 2 files under /mnt, and a second one mounted over /mnt.
    fn two_mounts() -> Tree {
        let mut root = MemFs::populated(60, 70);
        let mnt = root.add(Some(0), "mnt", FileKind::Dir);
        root.add(Some(mnt), "hidden-1", FileKind::File);
        root.add(Some(mnt), "hidden-2", FileKind::File);
        root.add(Some(0), "empty-mount", FileKind::Dir);
        let mount = |path: &[u8], volume: usize, fs: MemFs| Mount {
            path: path.to_vec(),
            volume,
            offset: Placement::default(),
            fs: Arc::new(fs),
        };
        Tree::new(vec![
            mount(b"/", 0, root),
            mount(b"/mnt", 1, MemFs::populated(3, 5)),
            mount(b"/empty-mount", 2, MemFs::populated(0, 0)),
        ])
    }

    #[test]
    fn progress_counts_every_entry_on_any_number_of_threads() {
        let tree = two_mounts();
        let plain = walk(&tree, WalkOptions::default());
        // /, 60 dirs, 4 200 files, /mnt with 3 dirs of 5 files, /empty-mount.
        assert_eq!(plain.entries.len(), 1 + 60 + 4_200 + 1 + 3 + 15 + 1);
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let progress = Progress::new();
            let options = WalkOptions {
                progress: Some(&progress),
                ..WalkOptions::default()
            };
            let counted = pool.install(|| walk(&tree, options));
            assert_eq!(counted.entries, plain.entries);
            assert_eq!(progress.files(), counted.entries.len() as u64, "{threads}");
        }
    }

    #[test]
    fn a_mount_point_hiding_entries_is_recorded() {
        let inventory = walk(&two_mounts(), WalkOptions::default());
        assert_eq!(inventory.shadowed.len(), 1);
        let shadowed = inventory.shadowed.first();
        assert_eq!(
            shadowed.map(|s| (s.path.as_slice(), s.volume, s.by_volume)),
            Some((&b"/mnt"[..], 0, 1))
        );
        assert!(shadowed.is_some_and(|s| matches!(s.hidden, Ok(2))));
        assert!(!inventory
            .entries
            .iter()
            .any(|e| e.path.ends_with(b"hidden-1")));
    }
}
