//! Which packages the guest has installed, from its package managers' own databases: dpkg
//! (`/var/lib/dpkg/status`, and distroless `status.d/`), rpm (`rpmdb.sqlite`, Berkeley DB
//! `Packages`; SUSE's ndb `Packages.db` is reported as present but unreadable) and apk
//! (`/lib/apk/db/installed`). Decoding rpm's containers is [`super::rpmdb`]'s job; deciding
//! whether a package is acceptable is the rules' job.
//!
//! A database that exists but cannot be decoded is listed with `readable: false` and the
//! problem, so callers report an error instead of concluding that nothing is installed.

use std::collections::BTreeMap;
use std::fmt;

use super::{
    child_path, rpmdb, services::canonical_path, FactError, FactErrorKind, GuestFiles, Origin,
};
use crate::filesystems::FileKind;

/// Package databases larger than this are not read (the largest real ones, rpm databases
/// of full desktop installs, stay well under 200 MiB).
pub const MAX_DATABASE_BYTES: u64 = 512 << 20;

/// Distroless images keep one status file per package; more than this is not an image.
const MAX_STATUS_D_FILES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Manager {
    Dpkg,
    Rpm,
    Apk,
}

impl Manager {
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Dpkg => "dpkg",
            Manager::Rpm => "rpm",
            Manager::Apk => "apk",
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package database found in the guest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Database {
    pub manager: Manager,
    pub path: String,
    /// `false` when the file exists but could not be decoded: its packages are unknown.
    pub readable: bool,
    pub problem: Option<String>,
    /// Installed packages it lists (0 when unreadable).
    pub packages: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub name: String,
    /// dpkg's `Version`, rpm's `[epoch:]version-release`, apk's `V:`.
    pub version: Option<String>,
    pub architecture: Option<String>,
    pub manager: Manager,
    /// The database file, and for text databases the line of the package's name (rpm: 0).
    pub origin: Origin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packages {
    /// Sorted by path.
    pub databases: Vec<Database>,
    /// By package name. A name installed more than once (dpkg multi-arch, rpm multilib,
    /// or two managers) keeps the entry that sorts first by manager, version,
    /// architecture and origin, so the result does not depend on file order.
    pub installed: BTreeMap<String, Package>,
}

impl Packages {
    /// True when some database was found but could not be read.
    pub fn incomplete(&self) -> bool {
        self.databases.iter().any(|d| !d.readable)
    }

    fn add(&mut self, package: Package) {
        match self.installed.get(&package.name) {
            Some(existing) if sort_key(existing) <= sort_key(&package) => {}
            _ => {
                self.installed.insert(package.name.clone(), package);
            }
        }
    }
}

fn sort_key(p: &Package) -> (Manager, &Option<String>, &Option<String>, &Origin) {
    (p.manager, &p.version, &p.architecture, &p.origin)
}

pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
pub const DPKG_STATUS_D: &str = "/var/lib/dpkg/status.d";
pub const APK_INSTALLED: &str = "/lib/apk/db/installed";

/// Where rpm keeps its database: the current location first, then the traditional one
/// (often a symlink to the first; each file is read once).
const RPM_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// Reads every package database the guest has.
pub fn read(files: &dyn GuestFiles) -> Result<Packages, FactError> {
    let mut out = Packages::default();
    read_dpkg(files, &mut out)?;
    read_rpm(files, &mut out)?;
    read_apk(files, &mut out)?;
    out.databases.sort();
    out.databases.dedup();
    Ok(out)
}

/// A whole database file, or the problem to record when it is larger than we read.
fn read_bounded(
    files: &dyn GuestFiles,
    path: &str,
) -> Result<Option<Result<Vec<u8>, FactError>>, FactError> {
    Ok(files.read(path, MAX_DATABASE_BYTES + 1)?.map(|bytes| {
        if bytes.len() as u64 > MAX_DATABASE_BYTES {
            Err(FactError::new(
                FactErrorKind::TooLarge,
                format!("larger than {} MiB; not read", MAX_DATABASE_BYTES >> 20),
            ))
        } else {
            Ok(bytes)
        }
    }))
}

fn unreadable(manager: Manager, path: &str, problem: String) -> Database {
    Database {
        manager,
        path: path.to_string(),
        readable: false,
        problem: Some(problem),
        packages: 0,
    }
}

// ---------------------------------------------------------------------------------------
// dpkg
// ---------------------------------------------------------------------------------------

/// One deb822 paragraph: lower-cased field names → (value of the first line, its line).
struct Stanza {
    fields: BTreeMap<String, (String, usize)>,
}

impl Stanza {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(|(v, _)| v.as_str())
    }
}

/// Splits a dpkg database into paragraphs. Continuation lines (leading space or tab) belong
/// to the previous field and are not needed for any field read here.
fn stanzas(text: &str) -> Vec<Stanza> {
    let mut out = Vec::new();
    let mut current = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(Stanza {
                    fields: std::mem::take(&mut current),
                });
            }
            continue;
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            current
                .entry(name.trim().to_ascii_lowercase())
                .or_insert_with(|| (value.trim().to_string(), index + 1));
        }
    }
    if !current.is_empty() {
        out.push(Stanza { fields: current });
    }
    out
}

/// Whether a `Status:` value means the package's files are installed and configured:
/// the third word is `installed`, or one of the trigger states dpkg moves configured
/// packages through. `not-installed`, `config-files`, `half-installed`, `unpacked` and
/// `half-configured` are not (dpkg-query's `${db:Status-Status}` is that third word).
pub fn dpkg_status_installed(status: &str) -> bool {
    matches!(
        status.split_whitespace().nth(2),
        Some("installed" | "triggers-pending" | "triggers-awaited")
    )
}

fn dpkg_package(stanza: &Stanza, path: &str, need_status: bool) -> Option<Package> {
    let (name, line) = stanza.fields.get("package")?;
    let installed = match stanza.get("status") {
        Some(status) => dpkg_status_installed(status),
        None => !need_status,
    };
    if !installed || name.is_empty() {
        return None;
    }
    Some(Package {
        name: name.clone(),
        version: stanza.get("version").map(str::to_string),
        architecture: stanza.get("architecture").map(str::to_string),
        manager: Manager::Dpkg,
        origin: Origin {
            path: path.to_string(),
            line: *line,
        },
    })
}

fn read_dpkg(files: &dyn GuestFiles, out: &mut Packages) -> Result<(), FactError> {
    if let Some(bytes) = read_bounded(files, DPKG_STATUS)? {
        match bytes {
            Err(problem) => {
                out.databases
                    .push(unreadable(Manager::Dpkg, DPKG_STATUS, problem.to_string()))
            }
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let mut count = 0;
                for stanza in stanzas(&text) {
                    if let Some(package) = dpkg_package(&stanza, DPKG_STATUS, true) {
                        count += 1;
                        out.add(package);
                    }
                }
                out.databases.push(Database {
                    manager: Manager::Dpkg,
                    path: DPKG_STATUS.to_string(),
                    readable: true,
                    problem: None,
                    packages: count,
                });
            }
        }
    }
    // Distroless: one control paragraph per package, written without a Status field
    // because only installed packages get one; `*.md5sums` files sit beside them.
    let Some(mut entries) = files.list(DPKG_STATUS_D)? else {
        return Ok(());
    };
    if entries.len() > MAX_STATUS_D_FILES {
        out.databases.push(unreadable(
            Manager::Dpkg,
            DPKG_STATUS_D,
            format!("{} entries; not read", entries.len()),
        ));
        return Ok(());
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut count = 0;
    for entry in entries {
        if entry.name.ends_with(b".md5sums") || entry.name.starts_with(b".") {
            continue;
        }
        if !matches!(entry.kind, FileKind::File | FileKind::Symlink) {
            continue;
        }
        let path = child_path(DPKG_STATUS_D, &entry.name);
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        for stanza in stanzas(&text) {
            if let Some(package) = dpkg_package(&stanza, &path, false) {
                count += 1;
                out.add(package);
            }
        }
    }
    out.databases.push(Database {
        manager: Manager::Dpkg,
        path: DPKG_STATUS_D.to_string(),
        readable: true,
        problem: None,
        packages: count,
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------
// rpm
// ---------------------------------------------------------------------------------------

fn read_rpm(files: &dyn GuestFiles, out: &mut Packages) -> Result<(), FactError> {
    let mut seen_dirs: Vec<String> = Vec::new();
    for dir in RPM_DIRS {
        let real = canonical_path(files, dir)?;
        if seen_dirs.contains(&real) {
            continue;
        }
        seen_dirs.push(real);
        if files.kind(dir)?.is_none() {
            continue;
        }
        let sqlite = format!("{dir}/rpmdb.sqlite");
        if let Some(bytes) = read_bounded(files, &sqlite)? {
            let decoded = bytes.and_then(|bytes| {
                if bytes.is_empty() {
                    // SQLite treats an empty file as an empty database.
                    return Ok(Vec::new());
                }
                // The database is then as unknown as if its own file had failed.
                let in_wal = |e: FactError| FactError {
                    kind: e.kind,
                    path: None,
                    message: format!("write-ahead log: {e}"),
                };
                let wal = match read_bounded(files, &format!("{sqlite}-wal")) {
                    Ok(Some(Ok(wal))) => Some(wal),
                    Ok(Some(Err(problem))) => return Err(in_wal(problem)),
                    Ok(None) => None,
                    Err(e) => return Err(in_wal(e)),
                };
                rpmdb::read_sqlite(&bytes, wal.as_deref())
            });
            record_rpm(out, &sqlite, decoded);
        }
        let bdb = format!("{dir}/Packages");
        if let Some(bytes) = read_bounded(files, &bdb)? {
            record_rpm(out, &bdb, bytes.and_then(|b| rpmdb::read_bdb(&b)));
        }
        let ndb = format!("{dir}/Packages.db");
        if files.read(&ndb, 0)?.is_some() {
            out.databases.push(unreadable(
                Manager::Rpm,
                &ndb,
                "rpm ndb databases (SUSE) are not supported".to_string(),
            ));
        }
    }
    Ok(())
}

fn record_rpm(out: &mut Packages, path: &str, decoded: Result<Vec<rpmdb::RpmHeader>, FactError>) {
    match decoded {
        Err(problem) => out
            .databases
            .push(unreadable(Manager::Rpm, path, problem.to_string())),
        Ok(headers) => {
            out.databases.push(Database {
                manager: Manager::Rpm,
                path: path.to_string(),
                readable: true,
                problem: None,
                packages: headers.len(),
            });
            for header in headers {
                out.add(Package {
                    version: header.evr(),
                    name: header.name,
                    architecture: header.arch,
                    manager: Manager::Rpm,
                    origin: Origin {
                        path: path.to_string(),
                        line: 0,
                    },
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// apk
// ---------------------------------------------------------------------------------------

/// apk's installed database: paragraphs of `X:value` lines, `P:` the name, `V:` the
/// version, `A:` the architecture (apk-tools' `doc/apk-package.5`, "installed database").
fn read_apk(files: &dyn GuestFiles, out: &mut Packages) -> Result<(), FactError> {
    let Some(bytes) = read_bounded(files, APK_INSTALLED)? else {
        return Ok(());
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(problem) => {
            out.databases
                .push(unreadable(Manager::Apk, APK_INSTALLED, problem.to_string()));
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut count = 0;
    let mut current: Option<Package> = None;
    let mut finish = |current: &mut Option<Package>, out: &mut Packages| {
        if let Some(package) = current.take() {
            count += 1;
            out.add(package);
        }
    };
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            finish(&mut current, out);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "P" if current.is_none() && !value.is_empty() => {
                current = Some(Package {
                    name: value.to_string(),
                    version: None,
                    architecture: None,
                    manager: Manager::Apk,
                    origin: Origin {
                        path: APK_INSTALLED.to_string(),
                        line: index + 1,
                    },
                });
            }
            "V" => {
                if let Some(p) = current.as_mut() {
                    p.version.get_or_insert_with(|| value.to_string());
                }
            }
            "A" => {
                if let Some(p) = current.as_mut() {
                    p.architecture.get_or_insert_with(|| value.to_string());
                }
            }
            _ => {}
        }
    }
    finish(&mut current, out);
    out.databases.push(Database {
        manager: Manager::Apk,
        path: APK_INSTALLED.to_string(),
        readable: true,
        problem: None,
        packages: count,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_states_that_count_as_installed() {
        assert!(dpkg_status_installed("install ok installed"));
        assert!(dpkg_status_installed("hold ok installed"));
        assert!(dpkg_status_installed("deinstall ok installed"));
        assert!(dpkg_status_installed("install ok triggers-pending"));
        assert!(!dpkg_status_installed("deinstall ok config-files"));
        assert!(!dpkg_status_installed("install reinstreq half-installed"));
        assert!(!dpkg_status_installed("install ok unpacked"));
        assert!(!dpkg_status_installed("purge ok not-installed"));
        assert!(!dpkg_status_installed(""));
    }
}
