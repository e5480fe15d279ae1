//! What rules evaluate against: the guest tree, its walked inventory, the home directories,
//! the places that could not be read, and facts read once and shared by every rule.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::facts::{self, FactError, GuestFiles};
use crate::guest::{display_path, OsRelease, Tree};
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
            accounts: OnceLock::new(),
            homes: OnceLock::new(),
            sshd: OnceLock::new(),
            services: OnceLock::new(),
            packages: OnceLock::new(),
            secrets: OnceLock::new(),
        }
    }

    /// Counts file content read by checks, for the report's statistics.
    pub fn count_read(&self, bytes: usize) {
        self.bytes_read
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
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
            .map_err(|e| format!("{}: {}", display_path(&entry.path), e.rebase(mount.offset)))
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
            .map_err(|e| format!("{}: {}", display_path(path), e.rebase(mount.offset)))
    }

    /// The results of the shared secrets pass, once the engine has run it.
    pub fn secrets_pass(&self) -> Option<&super::checks::secrets::SecretsPass> {
        self.secrets.get()
    }

    pub fn set_secrets_pass(&self, pass: super::checks::secrets::SecretsPass) {
        let _ = self.secrets.set(pass);
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
