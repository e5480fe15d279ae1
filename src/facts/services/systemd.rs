//! The systemd unit search path: which file defines a unit name (masks, aliases,
//! templates), the installed unit files, and the `.wants/`, `.requires/`, `.upholds/` and
//! alias symlinks that enable units. First-boot presets are [`super::presets`]' job.

use std::collections::{BTreeSet, HashMap};

use super::names::{
    instance_of, stem, suffix, template_of, unit_name_kind, with_instance, NameKind,
};
use super::paths::{absolute, basename, canonical_path, parent};
use super::unit_file::{exec_program, parse_unit, UnitInfo};
use super::{
    EnabledService, Link, Mechanism, Services, UnitFile, MAX_CHAIN, MAX_DIR_ENTRIES, MAX_SYMLINKS,
};
use crate::facts::{DirItem, FactError, GuestFiles, Origin};
use crate::filesystems::FileKind;

/// Unit search path of the system manager, highest priority first, as systemd 252 built
/// for Debian lists it without the `/run` directories (empty in an image at rest).
const UNIT_DIRS: [(&str, bool); 6] = [
    ("/etc/systemd/system.control", true),
    ("/etc/systemd/system", true),
    ("/etc/systemd/system.attached", true),
    ("/usr/local/lib/systemd/system", false),
    ("/lib/systemd/system", false),
    ("/usr/lib/systemd/system", false),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resolved {
    /// No unit of that name (or a dangling link).
    Missing,
    /// A symlink to /dev/null or an empty file comes first.
    Masked { path: String },
    Unit {
        /// The unit's real name: the name asked for, or what an alias points at (an
        /// instance of the real template for an instance of an aliased template).
        real: String,
        /// Where the name was found in the search path.
        found: String,
        /// The unit file finally read (the template's for an instance).
        file: String,
    },
}

pub(super) struct UnitDir {
    pub(super) path: &'static str,
    canonical: String,
    config: bool,
}

pub(super) struct Systemd<'a> {
    pub(super) files: &'a dyn GuestFiles,
    pub(super) dirs: Vec<UnitDir>,
    resolved: HashMap<String, Resolved>,
    parsed: HashMap<String, UnitInfo>,
    listings: HashMap<String, Vec<DirItem>>,
}

impl<'a> Systemd<'a> {
    pub(super) fn new(files: &'a dyn GuestFiles) -> Result<Self, FactError> {
        let mut dirs: Vec<UnitDir> = Vec::new();
        for (path, config) in UNIT_DIRS {
            let canonical = canonical_path(files, path)?;
            // systemd drops a directory that is the same as one before it (merged /usr).
            if dirs.iter().any(|d| d.canonical == canonical) {
                continue;
            }
            dirs.push(UnitDir {
                path,
                canonical,
                config,
            });
        }
        Ok(Self {
            files,
            dirs,
            resolved: HashMap::new(),
            parsed: HashMap::new(),
            listings: HashMap::new(),
        })
    }

    pub(super) fn list(&mut self, path: &str) -> Result<Vec<DirItem>, FactError> {
        if let Some(items) = self.listings.get(path) {
            return Ok(items.clone());
        }
        let mut items = self.files.list(path)?.unwrap_or_default();
        if items.len() > MAX_DIR_ENTRIES {
            return Err(FactError::too_large(
                path,
                format!("{} entries; not read", items.len()),
            ));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        self.listings.insert(path.to_string(), items.clone());
        Ok(items)
    }

    fn in_unit_dir(&self, dir: &str) -> bool {
        self.dirs
            .iter()
            .any(|d| d.path == dir || d.canonical == dir)
    }

    pub(super) fn info(&mut self, file: &str) -> Result<UnitInfo, FactError> {
        if let Some(info) = self.parsed.get(file) {
            return Ok(info.clone());
        }
        let info = self
            .files
            .read_text(file)?
            .map(|t| parse_unit(&t))
            .unwrap_or_default();
        self.parsed.insert(file.to_string(), info.clone());
        Ok(info)
    }

    /// Resolves a unit name the way the manager loads it: the first search-path directory
    /// holding the name decides; a symlink to /dev/null or an empty file masks it; a
    /// symlink into a unit directory is an alias for the unit named by its target; an
    /// instance without a file of its own uses its template's.
    pub(super) fn resolve(&mut self, name: &str) -> Result<Resolved, FactError> {
        self.resolve_depth(name, 0)
    }

    fn resolve_depth(&mut self, name: &str, depth: usize) -> Result<Resolved, FactError> {
        if let Some(r) = self.resolved.get(name) {
            return Ok(r.clone());
        }
        if depth > MAX_CHAIN {
            return Err(FactError::limit_reached(
                name,
                "unit alias chain too long (a loop?)",
            ));
        }
        let mut result = Resolved::Missing;
        let dirs: Vec<&'static str> = self.dirs.iter().map(|d| d.path).collect();
        for dir in dirs {
            let path = format!("{dir}/{name}");
            if let Some(found) = self.resolve_in(&path, name, depth)? {
                result = found;
                break;
            }
        }
        if result == Resolved::Missing && unit_name_kind(name) == Some(NameKind::Instance) {
            if let (Some(template), Some(instance)) = (template_of(name), instance_of(name)) {
                result = match self.resolve_depth(&template, depth + 1)? {
                    Resolved::Unit { real, found, file } => Resolved::Unit {
                        real: with_instance(&real, instance),
                        found,
                        file,
                    },
                    other => other,
                };
            }
        }
        self.resolved.insert(name.to_string(), result.clone());
        Ok(result)
    }

    /// What the entry at `path` (in a unit directory) makes of `name`; `None` when there is
    /// no usable entry there (absent, a directory, or a dangling link) and the search goes
    /// on.
    fn resolve_in(
        &mut self,
        path: &str,
        name: &str,
        depth: usize,
    ) -> Result<Option<Resolved>, FactError> {
        let mut current = path.to_string();
        for hop in 0..=MAX_SYMLINKS {
            match self.files.kind(&current)? {
                None | Some(FileKind::Dir) => return Ok(None),
                Some(FileKind::File) => {
                    let empty = self.files.read(&current, 1)?.is_some_and(|b| b.is_empty());
                    if empty {
                        return Ok(Some(Resolved::Masked {
                            path: path.to_string(),
                        }));
                    }
                    return Ok(Some(Resolved::Unit {
                        real: name.to_string(),
                        found: path.to_string(),
                        file: current,
                    }));
                }
                Some(FileKind::Symlink) => {
                    let Some(target) = self.files.read_link(&current)? else {
                        return Ok(None);
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    if target == "/dev/null" {
                        return Ok(Some(Resolved::Masked {
                            path: path.to_string(),
                        }));
                    }
                    let link_dir = parent(&current).to_string();
                    let next = absolute(&link_dir, &target);
                    let target_name = basename(&next).to_string();
                    // Only the first link decides whether this is an alias: a link from the
                    // search path into a unit directory, to a unit of another name.
                    if hop == 0
                        && target_name != name
                        && unit_name_kind(&target_name).is_some()
                        && self.in_unit_dir(parent(&next))
                    {
                        return match self.resolve_depth(&target_name, depth + 1)? {
                            Resolved::Unit { real, file, .. } => Ok(Some(Resolved::Unit {
                                real,
                                found: path.to_string(),
                                file,
                            })),
                            Resolved::Masked { .. } => Ok(Some(Resolved::Masked {
                                path: path.to_string(),
                            })),
                            Resolved::Missing => Ok(None),
                        };
                    }
                    current = next;
                }
                Some(_) => return Ok(None),
            }
        }
        Err(FactError::unreadable(
            path,
            "too many levels of symbolic links",
        ))
    }

    /// The unit's daemon, from its own `ExecStart=` or the service it activates.
    pub(super) fn program(&mut self, unit: &str, file: &str) -> Result<Option<String>, FactError> {
        let info = self.info(file)?;
        match suffix(unit) {
            "service" => Ok(info.exec_start.as_deref().and_then(exec_program)),
            "socket" | "timer" | "path" => {
                let service = match &info.activates {
                    Some(service) => service.clone(),
                    None if info.accept && suffix(unit) == "socket" => {
                        let prefix = stem(unit).split_once('@').map_or(stem(unit), |(p, _)| p);
                        format!("{prefix}@.service")
                    }
                    None => format!("{}.service", stem(unit)),
                };
                match self.resolve(&service)? {
                    Resolved::Unit { file, .. } => {
                        let info = self.info(&file)?;
                        Ok(info.exec_start.as_deref().and_then(exec_program))
                    }
                    _ => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// The unit names in the search path, each once, in search-path order (directory by
    /// directory, each sorted by name).
    pub(super) fn unit_names(&mut self) -> Result<Vec<String>, FactError> {
        let mut names: Vec<String> = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let dirs: Vec<&'static str> = self.dirs.iter().map(|d| d.path).collect();
        for dir in dirs {
            for item in self.list(dir)? {
                let name = String::from_utf8_lossy(&item.name).into_owned();
                if matches!(item.kind, FileKind::File | FileKind::Symlink)
                    && unit_name_kind(&name).is_some()
                    && seen.insert(name.clone())
                {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    /// Every unit name in the search path, as the highest-priority directory defines it.
    pub(super) fn unit_files(&mut self, out: &mut Services) -> Result<(), FactError> {
        let names: BTreeSet<String> = self.unit_names()?.into_iter().collect();
        for name in names {
            match self.resolve(&name)? {
                Resolved::Missing => {}
                Resolved::Masked { path } => {
                    out.masked.push(name.clone());
                    out.unit_files.push(UnitFile {
                        name,
                        path,
                        alias_of: None,
                        masked: true,
                    });
                }
                Resolved::Unit { real, found, .. } => out.unit_files.push(UnitFile {
                    alias_of: (real != name).then_some(real),
                    name,
                    path: found,
                    masked: false,
                }),
            }
        }
        Ok(())
    }

    /// `.wants/`, `.requires/` and `.upholds/` symlinks in every unit directory, and alias
    /// symlinks in the configuration directories. As the manager does when it loads the
    /// dependencies, the link's *name* is what gets started (its target only has to exist);
    /// links that are not symlinks, point to /dev/null, or name a masked or missing unit
    /// start nothing.
    pub(super) fn links(&mut self, out: &mut Services) -> Result<(), FactError> {
        let dirs: Vec<(&'static str, bool)> =
            self.dirs.iter().map(|d| (d.path, d.config)).collect();
        for (dir, config) in dirs {
            for item in self.list(dir)? {
                let entry = String::from_utf8_lossy(&item.name).into_owned();
                if item.kind == FileKind::Dir {
                    let Some((owner, kind)) = dependency_dir(&entry) else {
                        continue;
                    };
                    let mechanism = if config {
                        Mechanism::Systemd(kind)
                    } else {
                        Mechanism::Vendor(kind)
                    };
                    let wants_dir = format!("{dir}/{entry}");
                    for link in self.list(&wants_dir)? {
                        let name = String::from_utf8_lossy(&link.name).into_owned();
                        if link.kind != FileKind::Symlink || unit_name_kind(&name).is_none() {
                            continue;
                        }
                        let path = format!("{wants_dir}/{name}");
                        if self.files.read_link(&path)?.as_deref() == Some(b"/dev/null".as_slice())
                        {
                            continue;
                        }
                        self.push_unit(out, &name, Some(owner.to_string()), mechanism, &path)?;
                    }
                } else if config
                    && item.kind == FileKind::Symlink
                    && unit_name_kind(&entry).is_some()
                {
                    if let Resolved::Unit { real, .. } = self.resolve(&entry)? {
                        if real != entry {
                            let path = format!("{dir}/{entry}");
                            self.push_unit(
                                out,
                                &entry,
                                None,
                                Mechanism::Systemd(Link::Alias),
                                &path,
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn push_unit(
        &mut self,
        out: &mut Services,
        name: &str,
        wanted_by: Option<String>,
        mechanism: Mechanism,
        origin: &str,
    ) -> Result<(), FactError> {
        let Resolved::Unit { real, file, .. } = self.resolve(name)? else {
            return Ok(());
        };
        let program = self.program(&real, &file)?;
        out.enabled.push(EnabledService {
            name: stem(&real).to_string(),
            alias: (real != name).then(|| name.to_string()),
            unit: Some(real),
            unit_file: Some(file),
            wanted_by,
            program,
            mechanism,
            origin: Origin {
                path: origin.to_string(),
                line: 0,
            },
        });
        Ok(())
    }
}

/// `NAME.wants` → (`NAME`, Wants), likewise `.requires` and `.upholds`.
fn dependency_dir(entry: &str) -> Option<(&str, Link)> {
    let (owner, kind) = entry.rsplit_once('.')?;
    let link = match kind {
        "wants" => Link::Wants,
        "requires" => Link::Requires,
        "upholds" => Link::Upholds,
        _ => return None,
    };
    unit_name_kind(owner)?;
    Some((owner, link))
}
