//! What rules evaluate against: the guest tree, its walked inventory, the home directories,
//! the places that could not be read, and facts read once and shared by every rule; and,
//! for `--verbose`, the account of everything the scan did not look at.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::facts::{self, FactError, GuestFiles};
use crate::guest::{display_path, Guest, OsRelease, Tree};
use crate::names::escape_for_terminal;
use crate::progress::Progress;
use crate::walk::{Entry, Inventory};

/// Options that change how rules judge (not which rules run).
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Every sshd occurrence must conform, not only the effective value (SCAP parity).
    pub sshd_strict: bool,
    /// The date end-of-life checks compare against, as (year, month, day).
    pub today: (i32, u32, u32),
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
    homes: OnceLock<Vec<String>>,
    sshd: OnceLock<Result<Option<facts::sshd::SshdConfig>, FactError>>,
    services: OnceLock<Result<facts::services::Services, FactError>>,
    packages: OnceLock<Result<facts::packages::Packages, FactError>>,
    secrets: OnceLock<super::checks::secrets::SecretsPass>,
}

/// A guest path whose contents are unknown, and why.
#[derive(Debug, Clone)]
pub struct BlindSpot {
    pub path: Vec<u8>,
    pub reason: String,
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
            secrets: OnceLock::new(),
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
        let entries = &self.inventory.entries;
        let start = entries.partition_point(|e| e.path.as_slice() < prefix);
        let rest = entries.get(start..).unwrap_or_default();
        let len = rest.partition_point(|e| e.path.starts_with(prefix));
        rest.get(..len).unwrap_or_default()
    }

    /// The blind spots that could hide a path starting with `prefix`.
    pub fn blind_spots_for(&self, prefix: &[u8]) -> Vec<&BlindSpot> {
        self.blind_spots
            .iter()
            .filter(|spot| spot.path.starts_with(prefix) || prefix.starts_with(&spot.path))
            .collect()
    }

    /// A walked file's contents as a stream, by its node: no path is resolved again.
    pub fn open_entry(
        &self,
        entry: &crate::walk::Entry,
    ) -> Result<crate::filesystems::FileReader<'a>, String> {
        let mount = self
            .tree
            .mount(entry.mount)
            .ok_or_else(|| format!("{}: no such mount", display_path(&entry.path)))?;
        mount
            .fs
            .open(entry.node)
            .map_err(|e| format!("{}: {}", display_path(&entry.path), e.rebase(&mount.offset)))
    }

    /// A regular file's contents as a stream (no symlink is followed: callers pass paths
    /// the walk listed as regular files).
    pub fn open_file(&self, path: &[u8]) -> Result<crate::filesystems::FileReader<'a>, String> {
        let located = self.tree.resolve(path, false).map_err(|e| e.to_string())?;
        let mount = self
            .tree
            .mount(located.mount)
            .ok_or_else(|| format!("{}: no such mount", display_path(path)))?;
        mount
            .fs
            .open(located.node)
            .map_err(|e| format!("{}: {}", display_path(path), e.rebase(&mount.offset)))
    }

    /// The results of the shared secrets pass, once the engine has run it.
    pub fn secrets_pass(&self) -> Option<&super::checks::secrets::SecretsPass> {
        self.secrets.get()
    }

    pub fn set_secrets_pass(&self, pass: super::checks::secrets::SecretsPass) {
        let _ = self.secrets.set(pass);
    }

    /// What the scan did not look at, and why, one line each, for `--verbose`: volumes not
    /// scanned or not mounted, guest paths the walk could not read, mount points hiding
    /// files of the volume below, files the secrets pass did not read in full, matches an
    /// allowlist removed. In a stable order; escaped for a terminal; no file content.
    /// Records, for `--verbose`, something a check did not read in full. `line` must already
    /// be escaped for a terminal.
    pub fn note_partly_read(&self, line: String) {
        self.partly_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    pub fn skipped(&self, guest: &Guest) -> Vec<String> {
        let text = |message: &str| escape_for_terminal(message.as_bytes());
        let volume_id = |index: usize| {
            guest.volumes.get(index).map_or_else(
                || format!("#{}", index.saturating_add(1)),
                |state| state.volume.id.clone(),
            )
        };
        let mut lines = Vec::new();
        for state in &guest.volumes {
            let id = text(&state.volume.id);
            let kind = state.volume.identity.content.as_str();
            match (&state.fs, &state.mount_point) {
                (None, mount_point) => {
                    let at = mount_point
                        .as_deref()
                        .map(|path| format!(", the guest's {}", display_path(path)))
                        .unwrap_or_default();
                    let reason = state.not_scanned.as_deref().unwrap_or("unreadable");
                    lines.push(format!(
                        "skipped volume {id} ({kind}{at}): {}",
                        text(reason)
                    ));
                }
                (Some(_), None) => lines.push(format!(
                    "skipped volume {id} ({kind}): the guest does not mount it, so its files \
                     are not walked (`amiscan ls --volume {id}` lists them)"
                )),
                (Some(_), Some(_)) => {}
            }
        }
        for note in guest.notes.iter().filter(|n| n.incomplete) {
            if let Some(path) = &note.mount_point {
                let path = display_path(path);
                lines.push(format!("skipped {path}: {}", text(&note.message)));
            }
        }
        for error in &self.inventory.errors {
            lines.push(format!(
                "skipped {} (volume {}): {}",
                display_path(&error.path),
                text(&volume_id(error.volume)),
                text(&error.message)
            ));
        }
        for shadowed in &self.inventory.shadowed {
            let (below, over) = (volume_id(shadowed.volume), volume_id(shadowed.by_volume));
            let what = match &shadowed.hidden {
                Ok(count) => format!(
                    "{count} entries of volume {below} lie under the mount of volume {over}; \
                     not walked (the running guest does not see them either)"
                ),
                Err(e) => format!(
                    "the directory of volume {below} under the mount of volume {over} could \
                     not be listed: {e}"
                ),
            };
            lines.push(format!(
                "skipped {}: {}",
                display_path(&shadowed.path),
                text(&what)
            ));
        }
        let mut partly_read = self
            .partly_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Checks run in parallel: sort, so the list is the same at any thread count.
        partly_read.sort();
        partly_read.dedup();
        lines.extend(partly_read);
        if let Some(pass) = self.secrets_pass() {
            lines.extend(pass.notes.iter().map(|note| format!("secrets: {note}")));
            if pass.stats.skipped_binary > 0 {
                lines.push(format!(
                    "secrets: {} files not searched: binary (a NUL byte in their first 8 KiB)",
                    pass.stats.skipped_binary
                ));
            }
            if pass.outside_paths > 0 {
                lines.push(format!(
                    "secrets: {} regular files not read: outside every credential rule's paths",
                    pass.outside_paths
                ));
            }
            lines.extend(pass.allowlisted.iter().map(|hit| format!("secrets: {hit}")));
        }
        lines
    }

    pub fn accounts(&self) -> &Result<Option<facts::accounts::Accounts>, FactError> {
        self.accounts
            .get_or_init(|| facts::accounts::read(self.files()))
    }

    /// Home directories: every account's home from /etc/passwd, plus /root and each
    /// directory under /home, with symlinks resolved inside the guest so they name the
    /// paths the walk lists.
    pub fn homes(&self) -> &[String] {
        self.homes.get_or_init(|| {
            let mut homes = BTreeSet::new();
            homes.insert("/root".to_string());
            if let Ok(Some(accounts)) = self.accounts() {
                for account in &accounts.passwd {
                    if account.home.starts_with('/') {
                        homes.insert(account.home.clone());
                    }
                }
            }
            for entry in self.entries_under(b"/home/") {
                let rest = entry.path.get(b"/home/".len()..).unwrap_or_default();
                if !rest.contains(&b'/') && entry.meta.kind == crate::filesystems::FileKind::Dir {
                    homes.insert(display_path(&entry.path));
                }
            }
            homes
                .into_iter()
                .map(|home| match self.tree.resolve(home.as_bytes(), true) {
                    Ok(located) => display_path(&located.canonical),
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
