//! What rules evaluate against: the guest tree, its walked inventory, the home directories,
//! the places that could not be read, and facts read once and shared by every rule.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{BlindSpot, ReadError};
use crate::facts::{self, FactError, GuestFiles};
use crate::guest::{GuestPath, OsRelease, Tree};
use crate::progress::Progress;
use crate::walk::{Entry, Inventory};

/// Options that change how rules judge (not which rules run).
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Every sshd occurrence must conform, not only the effective value (SCAP parity).
    pub sshd_strict: bool,
    /// The day end-of-life checks compare against.
    pub today: crate::date::Date,
    /// Content read per file by the secrets pass, overriding the rules' `max_size`.
    pub secrets_max_size: Option<u64>,
}

/// A guest ready to be judged.
pub struct ScanContext<'a> {
    pub tree: &'a Tree,
    pub inventory: &'a Inventory,
    pub os: Option<&'a OsRelease>,
    pub options: ScanOptions,
    /// Guest paths that could not be read (unscanned mounts, unreadable directories and
    /// files): a rule whose paths reach into one of them cannot pass.
    pub blind_spots: Vec<BlindSpot>,
    /// No root filesystem was found: there is no guest to judge.
    pub no_root: Option<String>,
    bytes_read: AtomicU64,
    /// What checks chose not to read in full (a content rule's `max_size`, a symlink that
    /// leads to no regular file), for `--verbose`.
    partly_read: Mutex<Vec<String>>,
    progress: Option<&'a Progress>,
    accounts: OnceLock<Result<Option<facts::accounts::Accounts>, FactError>>,
    homes: OnceLock<Vec<Vec<u8>>>,
    sshd: OnceLock<Result<Option<facts::sshd::SshdConfig>, FactError>>,
    services: OnceLock<Result<facts::services::Services, FactError>>,
    packages: OnceLock<Result<facts::packages::Packages, FactError>>,
}

impl<'a> ScanContext<'a> {
    pub fn new(
        tree: &'a Tree,
        inventory: &'a Inventory,
        os: Option<&'a OsRelease>,
        options: ScanOptions,
        mut blind_spots: Vec<BlindSpot>,
    ) -> Self {
        blind_spots.extend(inventory.errors.iter().map(|e| BlindSpot {
            path: e.path.clone(),
            reason: e.message.clone(),
        }));
        let no_root = tree
            .mount_at(b"/")
            .is_none()
            .then(|| "no readable root filesystem in this image".to_string());
        Self {
            tree,
            inventory,
            os,
            options,
            blind_spots,
            no_root,
            bytes_read: AtomicU64::new(0),
            partly_read: Mutex::new(Vec::new()),
            progress: None,
            accounts: OnceLock::new(),
            homes: OnceLock::new(),
            sshd: OnceLock::new(),
            services: OnceLock::new(),
            packages: OnceLock::new(),
        }
    }

    /// Reports how far evaluation is into `progress` (the secrets pass's reading, file
    /// content read by checks).
    pub fn with_progress(mut self, progress: Option<&'a Progress>) -> Self {
        self.progress = progress;
        self
    }

    pub fn progress(&self) -> Option<&'a Progress> {
        self.progress
    }

    /// Counts file content read by checks, for the report's statistics.
    pub fn count_read(&self, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        if let Some(progress) = self.progress {
            progress.add_bytes(bytes);
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    pub fn files(&self) -> &dyn GuestFiles {
        self.tree
    }

    /// Inventory entries whose path starts with `prefix` (the inventory is sorted by path,
    /// so they are contiguous).
    pub fn entries_under(&self, prefix: &[u8]) -> &'a [Entry] {
        self.inventory.entries_under(prefix)
    }

    /// A walked file's contents as a stream, by its node: no path is resolved again.
    pub fn open_entry(
        &self,
        entry: &crate::walk::Entry,
    ) -> Result<crate::filesystems::FileReader<'a>, ReadError> {
        let mount = self
            .tree
            .mount(entry.mount)
            .ok_or_else(|| ReadError::NoMount {
                path: GuestPath::new(&*entry.path),
            })?;
        mount.fs.open(entry.node).map_err(|e| ReadError::Fs {
            path: GuestPath::new(&*entry.path),
            source: e.rebase(&mount.offset),
        })
    }

    /// A regular file's contents as a stream (no symlink is followed: callers pass paths
    /// the walk listed as regular files).
    pub fn open_file(&self, path: &[u8]) -> Result<crate::filesystems::FileReader<'a>, ReadError> {
        let located = self.tree.resolve(path, false).map_err(ReadError::Resolve)?;
        let mount = self
            .tree
            .mount(located.mount)
            .ok_or_else(|| ReadError::NoMount {
                path: GuestPath::new(path),
            })?;
        mount.fs.open(located.node).map_err(|e| ReadError::Fs {
            path: GuestPath::new(path),
            source: e.rebase(&mount.offset),
        })
    }

    /// A file's contents by its exact guest path, symlinks followed inside the guest, at
    /// most `limit` bytes; `Ok(None)` when the path leads to no regular file.
    pub fn read_file(&self, path: &[u8], limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
        let Some((mount, node, kind)) = self.follow(path)? else {
            return Ok(None);
        };
        if kind != crate::filesystems::FileKind::File {
            return Ok(None);
        }
        let reader = mount.fs.open(node).map_err(|e| ReadError::Fs {
            path: GuestPath::new(path),
            source: e.rebase(&mount.offset),
        })?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(reader, limit), &mut bytes).map_err(
            |source| ReadError::Io {
                path: GuestPath::new(path),
                source,
            },
        )?;
        Ok(Some(bytes))
    }

    /// How many entries the directory at `path` holds, symlinks followed inside the guest;
    /// `Ok(None)` when the path leads to no directory.
    pub fn directory_len(&self, path: &[u8]) -> Result<Option<usize>, ReadError> {
        let Some((mount, node, kind)) = self.follow(path)? else {
            return Ok(None);
        };
        if kind != crate::filesystems::FileKind::Dir {
            return Ok(None);
        }
        mount
            .fs
            .read_dir(node)
            .map(|entries| Some(entries.len()))
            .map_err(|e| ReadError::Fs {
                path: GuestPath::new(path),
                source: e.rebase(&mount.offset),
            })
    }

    /// The node a guest path leads to with symlinks followed, and its kind.
    fn follow(
        &self,
        path: &[u8],
    ) -> Result<
        Option<(
            &'a crate::guest::Mount,
            crate::filesystems::NodeId,
            crate::filesystems::FileKind,
        )>,
        ReadError,
    > {
        let located = match self.tree.resolve(path, true) {
            Ok(located) => located,
            Err(
                crate::guest::ResolveError::NotFound { .. }
                | crate::guest::ResolveError::NotADirectory { .. },
            ) => return Ok(None),
            Err(e) => return Err(ReadError::Resolve(e)),
        };
        let Some(mount) = self.tree.mount(located.mount) else {
            return Ok(None);
        };
        let meta = mount.fs.metadata(located.node).map_err(|e| ReadError::Fs {
            path: GuestPath::new(path),
            source: e.rebase(&mount.offset),
        })?;
        Ok(Some((mount, located.node, meta.kind)))
    }

    /// Records, for `--verbose`, something a check did not read in full. `line` must already
    /// be escaped for a terminal.
    pub fn note_partly_read(&self, line: String) {
        self.partly_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// What checks did not read in full, sorted (checks run in parallel, so the list is
    /// the same at any thread count).
    pub fn partly_read(&self) -> Vec<String> {
        let mut lines = self
            .partly_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        lines.sort();
        lines.dedup();
        lines
    }

    pub fn accounts(&self) -> &Result<Option<facts::accounts::Accounts>, FactError> {
        self.accounts
            .get_or_init(|| facts::accounts::read(self.files()))
    }

    /// Home directories as the guest's bytes: every account's home from /etc/passwd, plus
    /// /root and each directory under /home, with symlinks resolved inside the guest so
    /// they name the paths the walk lists.
    pub fn homes(&self) -> &[Vec<u8>] {
        self.homes.get_or_init(|| {
            let mut homes: BTreeSet<Vec<u8>> = BTreeSet::new();
            homes.insert(b"/root".to_vec());
            if let Ok(Some(accounts)) = self.accounts() {
                for account in &accounts.passwd {
                    if account.home.starts_with('/') {
                        homes.insert(account.home.as_bytes().to_vec());
                    }
                }
            }
            for entry in self.entries_under(b"/home/") {
                let rest = entry.path.get(b"/home/".len()..).unwrap_or_default();
                if !rest.contains(&b'/') && entry.meta.kind == crate::filesystems::FileKind::Dir {
                    homes.insert(entry.path.to_vec());
                }
            }
            homes
                .into_iter()
                .map(|home| match self.tree.resolve(&home, true) {
                    Ok(located) => located.canonical,
                    Err(_) => home,
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
    }

    pub fn sshd(&self) -> &Result<Option<facts::sshd::SshdConfig>, FactError> {
        self.sshd.get_or_init(|| facts::sshd::read(self.files()))
    }

    pub fn services(&self) -> &Result<facts::services::Services, FactError> {
        self.services
            .get_or_init(|| facts::services::read(self.files()))
    }

    pub fn packages(&self) -> &Result<facts::packages::Packages, FactError> {
        self.packages
            .get_or_init(|| facts::packages::read(self.files()))
    }
}
