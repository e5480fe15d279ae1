//! Which services the guest starts at boot, read from its configuration the way the init
//! systems read it: systemd (`.wants/`, `.requires/`, `.upholds/` symlinks, aliases, masks,
//! and the presets it applies on first boot), inetd, xinetd and SysV rc links. It also
//! lists the installed unit files, so callers can tell installed from enabled. It does not
//! follow `Wants=`/`Requires=` lines inside unit files, nor decide whether a service is
//! acceptable (that is the rules' job).
//!
//! The systemd rules follow systemd 252 (Debian 12) — the version whose `systemctl
//! --root` the tests compare against — and are documented where they are applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::{child_path, DirItem, FactError, GuestFiles, Origin};
use crate::filesystems::FileKind;

/// Symlinks followed for one path or unit name, as systemd's `UNIT_FILE_FOLLOW_SYMLINK_MAX`.
const MAX_SYMLINKS: usize = 64;

/// Entries read from one directory; real unit directories hold a few thousand at most.
const MAX_DIR_ENTRIES: usize = 100_000;

/// `Also=` chains and alias chains longer than this are cycles or hostile.
const MAX_CHAIN: usize = 32;

/// Files read by `include`/`includedir` in xinetd configuration, or in /etc/inetd.d.
const MAX_INCLUDES: usize = 10_000;

/// Preset rules: every rule may be matched against every unit name, so a hostile image
/// must not be able to make that product huge. Real systems have a few hundred.
const MAX_PRESET_RULES: usize = 10_000;

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

/// Where `systemctl enable` writes: `persistent_config`.
const PERSISTENT_CONFIG: &str = "/etc/systemd/system";

const PRESET_DIRS: [&str; 4] = [
    "/etc/systemd/system-preset",
    "/usr/local/lib/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
    "/lib/systemd/system-preset",
];

const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// How a unit or daemon comes to be started at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// A symlink under /etc/systemd/system: `systemctl enable` (or an administrator).
    Systemd(Link),
    /// A symlink in a vendor unit directory (/usr/lib, /lib, /usr/local/lib): enabled as
    /// shipped, whatever `systemctl is-enabled` says (usually `static`).
    Vendor(Link),
    /// Not enabled yet: systemd will enable it with `preset-all` on the first boot, because
    /// /etc/machine-id is missing or says `uninitialized`.
    PresetFirstBoot(Link),
    /// An uncommented line in /etc/inetd.conf or /etc/inetd.d/*.
    Inetd,
    /// A service in xinetd's configuration that is not disabled.
    Xinetd,
    /// An `S##name` link in /etc/rcN.d.
    SysV { runlevel: u8 },
}

/// The kind of symlink that enables a systemd unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    /// In `UNIT.wants/` (`WantedBy=`).
    Wants,
    /// In `UNIT.requires/` (`RequiredBy=`).
    Requires,
    /// In `UNIT.upholds/` (`UpheldBy=`).
    Upholds,
    /// A unit-directory symlink with another unit's name (`Alias=`): the unit is started
    /// whenever something pulls in that name.
    Alias,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = |l: &Link| match l {
            Link::Wants => "wants",
            Link::Requires => "requires",
            Link::Upholds => "upholds",
            Link::Alias => "alias",
        };
        match self {
            Mechanism::Systemd(l) => write!(f, "systemd ({})", link(l)),
            Mechanism::Vendor(l) => write!(f, "systemd vendor ({})", link(l)),
            Mechanism::PresetFirstBoot(l) => write!(f, "preset (first boot, {})", link(l)),
            Mechanism::Inetd => f.write_str("inetd"),
            Mechanism::Xinetd => f.write_str("xinetd"),
            Mechanism::SysV { runlevel } => write!(f, "sysv (rc{runlevel}.d)"),
        }
    }
}

/// One way one service is started at boot. A unit enabled several ways appears once per
/// way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnabledService {
    /// Unit name without its suffix (`getty@tty1`, `telnet`), the inetd/xinetd service
    /// name, or the SysV script name.
    pub name: String,
    /// The full name of the unit that is started (`getty@tty1.service`, `telnet.socket`).
    pub unit: Option<String>,
    /// The unit file that defines it (the template's for an instance).
    pub unit_file: Option<String>,
    /// The name it was enabled under, when that is an alias of `unit`.
    pub alias: Option<String>,
    /// The unit whose `.wants/`/`.requires/`/`.upholds/` directory holds the link.
    pub wanted_by: Option<String>,
    /// Basename of the daemon it runs, when known (`ExecStart=`, the inetd/xinetd server,
    /// the SysV script).
    pub program: Option<String>,
    pub mechanism: Mechanism,
    /// The symlink (line 0) or the configuration file and line.
    pub origin: Origin,
}

impl EnabledService {
    /// The symlink that enables a systemd unit: the one that exists, or for a first-boot
    /// preset the one systemd will create.
    pub fn link(&self) -> Option<String> {
        match self.mechanism {
            Mechanism::Systemd(_) | Mechanism::Vendor(_) => Some(self.origin.path.clone()),
            Mechanism::PresetFirstBoot(Link::Alias) => {
                Some(format!("{PERSISTENT_CONFIG}/{}", self.alias.as_deref()?))
            }
            Mechanism::PresetFirstBoot(link) => {
                let dir = match link {
                    Link::Requires => "requires",
                    Link::Upholds => "upholds",
                    _ => "wants",
                };
                Some(format!(
                    "{PERSISTENT_CONFIG}/{}.{dir}/{}",
                    self.wanted_by.as_deref()?,
                    self.unit.as_deref()?
                ))
            }
            _ => None,
        }
    }
}

/// A unit file name found in the unit search path, as the first directory holding it
/// defines it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnitFile {
    pub name: String,
    /// Where the name was found (the highest-priority directory).
    pub path: String,
    /// The unit it is another name for, when it is a symlink to one with another name.
    pub alias_of: Option<String>,
    pub masked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    /// Sorted.
    pub enabled: Vec<EnabledService>,
    /// Sorted by name.
    pub unit_files: Vec<UnitFile>,
    /// Unit names that are masked (a symlink to /dev/null or an empty file where systemd
    /// looks first): never started, whatever links point at them. Sorted.
    pub masked: Vec<String>,
    /// systemd will treat the next boot as the first one (see machine-id(5)).
    pub first_boot: bool,
}

/// Reads every boot-time service mechanism in the guest.
pub fn read(files: &dyn GuestFiles) -> Result<Services, FactError> {
    let mut systemd = Systemd::new(files)?;
    let mut out = Services::default();
    systemd.unit_files(&mut out)?;
    systemd.links(&mut out)?;
    out.first_boot = first_boot(files)?;
    if out.first_boot {
        systemd.presets(&mut out)?;
    }
    inetd(files, &mut out)?;
    xinetd(files, &mut out)?;
    sysv(files, &mut out)?;
    out.enabled.sort();
    out.enabled.dedup();
    out.unit_files.sort();
    out.masked.sort();
    out.masked.dedup();
    Ok(out)
}

/// machine-id(5), "First boot semantics": a first boot when /etc/machine-id cannot be read
/// (missing, a dangling link, not a file: PID 1 treats every read error alike) or its
/// first line is exactly `uninitialized`; an empty file is *not* a first boot. (The
/// kernel command line can override this; an image at rest has none.)
pub fn first_boot(files: &dyn GuestFiles) -> Result<bool, FactError> {
    Ok(match files.read_text("/etc/machine-id")? {
        None => true,
        Some(text) => text.lines().next() == Some("uninitialized"),
    })
}

// ---------------------------------------------------------------------------------------
// Paths and names
// ---------------------------------------------------------------------------------------

/// `path` with every symlink in it resolved inside the guest, as far as the path exists;
/// used to tell when two configured directories are the same one (merged /usr).
pub fn canonical_path(files: &dyn GuestFiles, path: &str) -> Result<String, FactError> {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0usize;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(component);
        let here = format!("/{}", done.join("/"));
        match files.kind(&here)? {
            Some(FileKind::Symlink) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FactError::new(path, "too many levels of symbolic links"));
                }
                let Some(target) = files.read_link(&here)? else {
                    break;
                };
                let target = String::from_utf8_lossy(&target).into_owned();
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(str::to_string),
                );
            }
            Some(_) => {}
            None => {
                // The rest does not exist: keep it as written.
                done.extend(pending.drain(..).rev());
                break;
            }
        }
    }
    Ok(format!("/{}", done.join("/")))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A symlink target made absolute against the directory holding the link.
fn absolute(link_dir: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{}", link_dir.trim_end_matches('/'), target)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Plain,
    Template,
    Instance,
}

/// systemd's `unit_name_is_valid`: allowed characters, a known suffix, at most one `@`
/// with a non-empty prefix.
fn unit_name_kind(name: &str) -> Option<NameKind> {
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    let (stem, suffix) = name.rsplit_once('.')?;
    if !UNIT_SUFFIXES.contains(&suffix) || stem.is_empty() {
        return None;
    }
    if !stem
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    {
        return None;
    }
    match stem.split_once('@') {
        None => Some(NameKind::Plain),
        Some((prefix, instance)) => {
            if prefix.is_empty() || instance.contains('@') {
                None
            } else if instance.is_empty() {
                Some(NameKind::Template)
            } else {
                Some(NameKind::Instance)
            }
        }
    }
}

fn stem(unit: &str) -> &str {
    unit.rsplit_once('.').map_or(unit, |(s, _)| s)
}

fn suffix(unit: &str) -> &str {
    unit.rsplit_once('.').map_or("", |(_, s)| s)
}

/// `prefix@.suffix` for an instance or template name.
fn template_of(unit: &str) -> Option<String> {
    let (prefix, _) = stem(unit).split_once('@')?;
    Some(format!("{prefix}@.{}", suffix(unit)))
}

fn instance_of(unit: &str) -> Option<&str> {
    stem(unit)
        .split_once('@')
        .map(|(_, i)| i)
        .filter(|i| !i.is_empty())
}

/// `template` (`a@.service`) with `instance` filled in.
fn with_instance(template: &str, instance: &str) -> String {
    let prefix = stem(template).trim_end_matches('@');
    format!("{prefix}@{instance}.{}", suffix(template))
}

/// `fnmatch(pattern, name, FNM_NOESCAPE)`: `*`, `?` and `[...]` (with `!`/`^` negation
/// and ranges); backslash is an ordinary character. Iterative, so hostile patterns cannot
/// exhaust the stack; the single backtrack point keeps it linear for `*`.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let c = n.get(ni).copied().unwrap_or_default();
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
                continue;
            }
            Some('[') => {
                if let Some((matched, next)) = bracket(&p, pi, c) {
                    if matched {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                } else if c == '[' {
                    pi += 1;
                    ni += 1;
                    continue;
                }
            }
            Some(literal) if *literal == c => {
                pi += 1;
                ni += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

/// A bracket expression at `p[at] == '['` tested against `c`: whether it matched and the
/// index after it; `None` when it is not closed (then `[` is literal).
fn bracket(p: &[char], at: usize, c: char) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let end = *p.get(i + 2)?;
            if ch <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if ch == c {
                matched = true;
            }
            i += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Unit files
// ---------------------------------------------------------------------------------------

/// What systemd's `[Install]`, `ExecStart=` and activation settings say, from the unit
/// file itself (drop-ins are not read).
#[derive(Debug, Clone, Default)]
struct UnitInfo {
    wanted_by: Vec<String>,
    required_by: Vec<String>,
    upheld_by: Vec<String>,
    alias: Vec<String>,
    also: Vec<String>,
    default_instance: Option<String>,
    exec_start: Option<String>,
    /// `Service=` of a socket, `Unit=` of a timer or path unit.
    activates: Option<String>,
    accept: bool,
}

/// Parses the settings above from a unit file. A list setting assigned the empty string
/// is reset, as systemd's `config_parse_strv` does.
fn parse_unit(text: &str) -> UnitInfo {
    let mut info = UnitInfo::default();
    let mut section = String::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(raw) = lines.next() {
        logical.push_str(raw);
        // A trailing backslash continues the line (comment lines in between are skipped).
        if logical.ends_with('\\') {
            logical.pop();
            logical.push(' ');
            while let Some(next) = lines.peek() {
                if next.trim_start().starts_with(['#', ';']) {
                    lines.next();
                } else {
                    break;
                }
            }
            if lines.peek().is_some() {
                continue;
            }
        }
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let list = |target: &mut Vec<String>| {
            if value.is_empty() {
                target.clear();
            } else {
                target.extend(value.split_whitespace().map(str::to_string));
            }
        };
        match (section.as_str(), key) {
            ("Install", "WantedBy") => list(&mut info.wanted_by),
            ("Install", "RequiredBy") => list(&mut info.required_by),
            ("Install", "UpheldBy") => list(&mut info.upheld_by),
            ("Install", "Alias") => list(&mut info.alias),
            ("Install", "Also") => list(&mut info.also),
            ("Install", "DefaultInstance") => {
                info.default_instance = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            ("Service", "ExecStart") => {
                if value.is_empty() {
                    info.exec_start = None;
                } else if info.exec_start.is_none() {
                    info.exec_start = Some(value.to_string());
                }
            }
            ("Socket", "Service") | ("Timer", "Unit") | ("Path", "Unit") => {
                info.activates = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            ("Socket", "Accept") => {
                info.accept = matches!(
                    value.to_ascii_lowercase().as_str(),
                    "yes" | "true" | "on" | "1"
                );
            }
            _ => {}
        }
    }
    info
}

/// The executable's basename from an `ExecStart=` value (prefix characters `@-:+!`
/// stripped).
fn exec_program(exec: &str) -> Option<String> {
    let command = exec.trim_start_matches(['@', '-', ':', '+', '!']);
    let first = command.split_whitespace().next()?;
    let first = first.trim_matches(['"', '\'']);
    let name = basename(first);
    (!name.is_empty()).then(|| name.to_string())
}

/// systemd's install-time specifiers that depend only on the unit name; others make the
/// value unusable (`None`), as an unresolvable specifier does in `systemctl enable`.
fn expand_specifiers(value: &str, unit: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = value.chars();
    let stem = stem(unit);
    let prefix = stem.split_once('@').map_or(stem, |(p, _)| p);
    let instance = instance_of(unit).unwrap_or("");
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            'n' => out.push_str(unit),
            'N' => out.push_str(stem),
            'p' | 'P' => out.push_str(prefix),
            'i' | 'I' => out.push_str(instance),
            'j' | 'J' => out.push_str(prefix.rsplit('-').next().unwrap_or(prefix)),
            _ => return None,
        }
    }
    Some(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
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

struct UnitDir {
    path: &'static str,
    canonical: String,
    config: bool,
}

struct Systemd<'a> {
    files: &'a dyn GuestFiles,
    dirs: Vec<UnitDir>,
    resolved: HashMap<String, Resolved>,
    parsed: HashMap<String, UnitInfo>,
    listings: HashMap<String, Vec<DirItem>>,
}

impl<'a> Systemd<'a> {
    fn new(files: &'a dyn GuestFiles) -> Result<Self, FactError> {
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

    fn list(&mut self, path: &str) -> Result<Vec<DirItem>, FactError> {
        if let Some(items) = self.listings.get(path) {
            return Ok(items.clone());
        }
        let mut items = self.files.list(path)?.unwrap_or_default();
        if items.len() > MAX_DIR_ENTRIES {
            return Err(FactError::new(
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

    fn info(&mut self, file: &str) -> Result<UnitInfo, FactError> {
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
    fn resolve(&mut self, name: &str) -> Result<Resolved, FactError> {
        self.resolve_depth(name, 0)
    }

    fn resolve_depth(&mut self, name: &str, depth: usize) -> Result<Resolved, FactError> {
        if let Some(r) = self.resolved.get(name) {
            return Ok(r.clone());
        }
        if depth > MAX_CHAIN {
            return Err(FactError::new(name, "unit alias chain too long (a loop?)"));
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
        Err(FactError::new(path, "too many levels of symbolic links"))
    }

    /// The unit's daemon, from its own `ExecStart=` or the service it activates.
    fn program(&mut self, unit: &str, file: &str) -> Result<Option<String>, FactError> {
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

    /// Every unit name in the search path, as the highest-priority directory defines it.
    fn unit_files(&mut self, out: &mut Services) -> Result<(), FactError> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let dirs: Vec<&'static str> = self.dirs.iter().map(|d| d.path).collect();
        for dir in dirs {
            for item in self.list(dir)? {
                let name = String::from_utf8_lossy(&item.name).into_owned();
                if matches!(item.kind, FileKind::File | FileKind::Symlink)
                    && unit_name_kind(&name).is_some()
                {
                    names.insert(name);
                }
            }
        }
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
    fn links(&mut self, out: &mut Services) -> Result<(), FactError> {
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

    /// What `systemctl preset-all --preset-mode=enable-only` would add, which systemd 252
    /// runs on the first boot: every unit name in the search path that is not an alias,
    /// not masked, and whose first matching preset rule is `enable` (or which no rule
    /// matches: systemd's default is to enable) is enabled from its `[Install]` section.
    /// Only links that do not exist yet are reported.
    fn presets(&mut self, out: &mut Services) -> Result<(), FactError> {
        let rules = read_presets(self.files)?;
        // In search-path order, each name once (the order only decides which of two units
        // claiming one alias gets it, which systemd leaves to directory order anyway).
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
        let mut planned: BTreeMap<String, (String, String, Link, Option<String>, Origin)> =
            BTreeMap::new();
        for name in names {
            let Resolved::Unit { real, .. } = self.resolve(&name)? else {
                continue;
            };
            if real != name {
                continue;
            }
            let Some((rule, instances)) = query_presets(&rules, &name) else {
                continue;
            };
            if instances.is_empty() {
                self.plan_install(&name, &rule, &mut planned, 0)?;
            } else {
                for instance in instances {
                    self.plan_install(&instance, &rule, &mut planned, 0)?;
                }
            }
        }
        for (link, (unit, file, kind, owner, origin)) in planned {
            if self.files.kind(&link)?.is_some() {
                continue;
            }
            let program = self.program(&unit, &file)?;
            out.enabled.push(EnabledService {
                name: stem(&unit).to_string(),
                alias: (kind == Link::Alias).then(|| basename(&link).to_string()),
                unit: Some(unit),
                unit_file: Some(file),
                wanted_by: owner,
                program,
                mechanism: Mechanism::PresetFirstBoot(kind),
                origin,
            });
        }
        Ok(())
    }

    /// The links `systemctl enable NAME` would create, keyed by link path: (unit, unit
    /// file, kind, owning unit, the preset rule responsible).
    #[allow(clippy::type_complexity)]
    fn plan_install(
        &mut self,
        name: &str,
        rule: &Origin,
        planned: &mut BTreeMap<String, (String, String, Link, Option<String>, Origin)>,
        depth: usize,
    ) -> Result<(), FactError> {
        if depth > MAX_CHAIN {
            return Ok(());
        }
        let Resolved::Unit { real, file, .. } = self.resolve(name)? else {
            return Ok(());
        };
        let info = self.info(&file)?;
        let kind = unit_name_kind(&real);
        // A template is enabled through its default instance, or not at all.
        let unit = match kind {
            Some(NameKind::Template) => info
                .default_instance
                .as_deref()
                .map(|i| with_instance(&real, i)),
            _ => Some(real.clone()),
        };
        if let Some(unit) = &unit {
            for (list, link) in [
                (&info.wanted_by, Link::Wants),
                (&info.required_by, Link::Requires),
                (&info.upheld_by, Link::Upholds),
            ] {
                for target in list {
                    let Some(mut target) = expand_specifiers(target, unit) else {
                        continue;
                    };
                    match unit_name_kind(&target) {
                        None => continue,
                        Some(NameKind::Template) => {
                            if let Some(instance) = instance_of(unit) {
                                target = with_instance(&target, instance);
                            }
                        }
                        _ => {}
                    }
                    let dir_suffix = match link {
                        Link::Wants => "wants",
                        Link::Requires => "requires",
                        _ => "upholds",
                    };
                    let path = format!("{PERSISTENT_CONFIG}/{target}.{dir_suffix}/{unit}");
                    planned.entry(path).or_insert_with(|| {
                        (
                            unit.clone(),
                            file.clone(),
                            link,
                            Some(target.clone()),
                            rule.clone(),
                        )
                    });
                }
            }
        }
        for alias in &info.alias {
            let Some(mut alias) = expand_specifiers(alias, &real) else {
                continue;
            };
            if suffix(&alias) != suffix(&real) {
                continue;
            }
            match (unit_name_kind(&alias), kind) {
                (Some(NameKind::Template), Some(NameKind::Instance)) => {
                    if let Some(instance) = instance_of(&real) {
                        alias = with_instance(&alias, instance);
                    }
                }
                (Some(NameKind::Plain), Some(NameKind::Plain))
                | (Some(NameKind::Template), Some(NameKind::Template))
                | (Some(NameKind::Instance), Some(NameKind::Instance)) => {}
                _ => continue,
            }
            if alias == real {
                continue;
            }
            let path = format!("{PERSISTENT_CONFIG}/{alias}");
            planned
                .entry(path)
                .or_insert_with(|| (real.clone(), file.clone(), Link::Alias, None, rule.clone()));
        }
        for also in &info.also {
            if let Some(also) = expand_specifiers(also, &real) {
                if unit_name_kind(&also).is_some() && also != real {
                    self.plan_install(&also, rule, planned, depth + 1)?;
                }
            }
        }
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

// ---------------------------------------------------------------------------------------
// Presets
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PresetAction {
    Enable,
    Disable,
    /// systemd ≥ 254: leave the unit alone (stops the search like the others).
    Ignore,
}

#[derive(Debug, Clone)]
struct PresetRule {
    action: PresetAction,
    pattern: String,
    instances: Vec<String>,
    origin: Origin,
}

/// The preset rules in order: `*.preset` files from every preset directory, a file in an
/// earlier directory hiding one of the same name in a later one (a symlink to /dev/null
/// or an empty file hides it and contributes nothing), all sorted by file name.
fn read_presets(files: &dyn GuestFiles) -> Result<Vec<PresetRule>, FactError> {
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_dirs: Vec<String> = Vec::new();
    for dir in PRESET_DIRS {
        let canonical = canonical_path(files, dir)?;
        if seen_dirs.contains(&canonical) {
            continue;
        }
        seen_dirs.push(canonical);
        let Some(items) = files.list(dir)? else {
            continue;
        };
        if items.len() > MAX_DIR_ENTRIES {
            return Err(FactError::new(
                dir,
                format!("{} entries; not read", items.len()),
            ));
        }
        for item in items {
            let name = String::from_utf8_lossy(&item.name).into_owned();
            if name.starts_with('.') || !name.ends_with(".preset") || chosen.contains_key(&name) {
                continue;
            }
            if !matches!(item.kind, FileKind::File | FileKind::Symlink) {
                continue;
            }
            chosen.insert(name.clone(), child_path(dir, &item.name));
        }
    }
    let mut rules = Vec::new();
    for path in chosen.into_values() {
        if files.read_link(&path)?.as_deref() == Some(b"/dev/null".as_slice()) {
            continue;
        }
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            let origin = Origin {
                path: path.clone(),
                line: index + 1,
            };
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            let action = match word {
                "enable" => PresetAction::Enable,
                "disable" => PresetAction::Disable,
                "ignore" => PresetAction::Ignore,
                _ => continue,
            };
            let mut words = rest.split_whitespace();
            let Some(pattern) = words.next() else {
                continue;
            };
            let instances: Vec<String> = words.map(str::to_string).collect();
            // Instances are only allowed after a template name; otherwise systemd ignores
            // the line.
            if !instances.is_empty()
                && (action != PresetAction::Enable
                    || unit_name_kind(pattern) != Some(NameKind::Template))
            {
                continue;
            }
            if rules.len() >= MAX_PRESET_RULES {
                return Err(FactError::new(
                    &path,
                    format!("more than {MAX_PRESET_RULES} preset rules; not read"),
                ));
            }
            rules.push(PresetRule {
                action,
                pattern: pattern.to_string(),
                instances,
                origin,
            });
        }
    }
    Ok(rules)
}

/// The first rule matching `name`: `Some((rule origin, instances to enable))` when it says
/// enable (instances empty: enable `name` itself), `None` for disable/ignore. With no
/// matching rule systemd enables, and so do we (origin line 0: no file).
fn query_presets(rules: &[PresetRule], name: &str) -> Option<(Origin, Vec<String>)> {
    for rule in rules {
        let mut instances = Vec::new();
        let mut matched = false;
        if !rule.instances.is_empty() && template_of(name).as_deref() == Some(rule.pattern.as_str())
        {
            match unit_name_kind(name) {
                Some(NameKind::Template) => {
                    instances = rule
                        .instances
                        .iter()
                        .map(|i| with_instance(name, i))
                        .collect();
                    matched = true;
                }
                _ => {
                    matched =
                        instance_of(name).is_some_and(|i| rule.instances.iter().any(|r| r == i))
                }
            }
        }
        if !matched && !fnmatch(&rule.pattern, name) {
            continue;
        }
        return match rule.action {
            PresetAction::Enable => Some((rule.origin.clone(), instances)),
            PresetAction::Disable | PresetAction::Ignore => None,
        };
    }
    Some((
        Origin {
            path: "(no preset rule: systemd's default is enable)".to_string(),
            line: 0,
        },
        Vec::new(),
    ))
}

// ---------------------------------------------------------------------------------------
// inetd
// ---------------------------------------------------------------------------------------

/// Uncommented lines of /etc/inetd.conf and /etc/inetd.d/* (inetutils reads the
/// directory; Debian's `update-inetd` disables a line by prefixing `#<off># `, which is a
/// comment like any other). A `host:` prefix on the service name is dropped, and a line
/// that is only `host:` sets the default address, not a service.
fn inetd(files: &dyn GuestFiles, out: &mut Services) -> Result<(), FactError> {
    let mut paths = vec!["/etc/inetd.conf".to_string()];
    if let Some(mut items) = files.list("/etc/inetd.d")? {
        if items.len() > MAX_INCLUDES {
            return Err(FactError::new(
                "/etc/inetd.d",
                format!("{} entries; not read", items.len()),
            ));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items {
            let name = String::from_utf8_lossy(&item.name).into_owned();
            if name.starts_with('.') || name.ends_with('~') || name.contains(".dpkg-") {
                continue;
            }
            paths.push(child_path("/etc/inetd.d", &item.name));
        }
    }
    for path in paths {
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = fields.first() else {
                continue;
            };
            if fields.len() < 6 {
                continue;
            }
            let service = first.rsplit_once(':').map_or(*first, |(_, s)| s);
            if service.is_empty() {
                continue;
            }
            let server = fields.get(5).copied().unwrap_or_default();
            let program = if basename(server) == "tcpd" {
                fields.get(6).map(|p| basename(p).to_string())
            } else {
                Some(basename(server).to_string())
            };
            out.enabled.push(EnabledService {
                name: service.to_string(),
                unit: None,
                unit_file: None,
                alias: None,
                wanted_by: None,
                program,
                mechanism: Mechanism::Inetd,
                origin: Origin {
                    path: path.clone(),
                    line: index + 1,
                },
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// xinetd
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct XService {
    name: String,
    id: Option<String>,
    server: Option<String>,
    disabled: bool,
    internal: bool,
    origin: Origin,
}

#[derive(Debug, Default)]
struct XConfig {
    services: Vec<XService>,
    enabled: Option<BTreeSet<String>>,
    disabled: BTreeSet<String>,
}

/// xinetd.conf(5): `service NAME { attr = values }` blocks, a `defaults` block whose
/// `disabled` lists service ids to disable and whose `enabled`, when present, lists the
/// only ids that run; `disable = yes` or the `DISABLE` flag turns one service off.
/// `include FILE` and `includedir DIR` (skipping names with a dot or ending in `~`, in C
/// locale order) read further files.
fn xinetd(files: &dyn GuestFiles, out: &mut Services) -> Result<(), FactError> {
    let mut config = XConfig::default();
    let mut queue = vec!["/etc/xinetd.conf".to_string()];
    let mut read_files: BTreeSet<String> = BTreeSet::new();
    while let Some(path) = queue.pop() {
        // A file that includes itself (or a loop of them) is read once.
        if !read_files.insert(path.clone()) {
            continue;
        }
        if read_files.len() > MAX_INCLUDES {
            return Err(FactError::new(path, "too many xinetd include files"));
        }
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        let mut includes = Vec::new();
        parse_xinetd(&text, &path, &mut config, &mut includes);
        // Parsed in order: later includes go to the bottom of the stack, so reverse.
        for include in includes.into_iter().rev() {
            match include {
                XInclude::File(file) => queue.push(file),
                XInclude::Dir(dir) => {
                    let Some(mut items) = files.list(&dir)? else {
                        continue;
                    };
                    items.sort_by(|a, b| a.name.cmp(&b.name));
                    for item in items.into_iter().rev() {
                        if item.name.contains(&b'.') || item.name.ends_with(b"~") {
                            continue;
                        }
                        if matches!(item.kind, FileKind::File | FileKind::Symlink) {
                            queue.push(child_path(&dir, &item.name));
                        }
                    }
                }
            }
        }
    }
    for service in config.services {
        let id = service.id.clone().unwrap_or_else(|| service.name.clone());
        if service.disabled || config.disabled.contains(&id) {
            continue;
        }
        if config
            .enabled
            .as_ref()
            .is_some_and(|only| !only.contains(&id))
        {
            continue;
        }
        let program = if service.internal {
            Some("internal".to_string())
        } else {
            service.server.as_deref().map(|s| basename(s).to_string())
        };
        out.enabled.push(EnabledService {
            name: service.name,
            unit: None,
            unit_file: None,
            alias: None,
            wanted_by: None,
            program,
            mechanism: Mechanism::Xinetd,
            origin: service.origin,
        });
    }
    Ok(())
}

enum XInclude {
    File(String),
    Dir(String),
}

fn parse_xinetd(text: &str, path: &str, config: &mut XConfig, includes: &mut Vec<XInclude>) {
    enum Block {
        None,
        Defaults,
        Service(XService),
    }
    let mut block = Block::None;
    let mut pending: Option<(String, bool, usize)> = None; // a header waiting for `{`
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        match &mut block {
            Block::None => {
                if line == "{" {
                    if let Some((name, is_defaults, line_no)) = pending.take() {
                        block = if is_defaults {
                            Block::Defaults
                        } else {
                            Block::Service(XService {
                                name,
                                id: None,
                                server: None,
                                disabled: false,
                                internal: false,
                                origin: Origin {
                                    path: path.to_string(),
                                    line: line_no,
                                },
                            })
                        };
                    }
                    continue;
                }
                match first {
                    "service" => {
                        if let Some(name) = words.next() {
                            pending = Some((name.to_string(), false, index + 1));
                        }
                    }
                    "defaults" => pending = Some((String::new(), true, index + 1)),
                    "includedir" => {
                        if let Some(dir) = words.next() {
                            includes.push(XInclude::Dir(dir.to_string()));
                        }
                    }
                    "include" => {
                        if let Some(file) = words.next() {
                            includes.push(XInclude::File(file.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            Block::Defaults | Block::Service(_) => {
                if line == "}" {
                    if let Block::Service(service) = std::mem::replace(&mut block, Block::None) {
                        config.services.push(service);
                    }
                    block = Block::None;
                    continue;
                }
                let Some((key, op, values)) = split_assignment(line) else {
                    continue;
                };
                let values: Vec<String> = values.split_whitespace().map(str::to_string).collect();
                match &mut block {
                    Block::Defaults => match key {
                        // Cumulative in defaults: `=` adds like `+=`.
                        "disabled" => match op {
                            "-=" => values.iter().for_each(|v| {
                                config.disabled.remove(v);
                            }),
                            _ => config.disabled.extend(values),
                        },
                        "enabled" => {
                            let set = config.enabled.get_or_insert_with(BTreeSet::new);
                            match op {
                                "-=" => values.iter().for_each(|v| {
                                    set.remove(v);
                                }),
                                _ => set.extend(values),
                            }
                        }
                        _ => {}
                    },
                    Block::Service(service) => match key {
                        "disable" => {
                            service.disabled = values
                                .first()
                                .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
                        }
                        "id" => service.id = values.first().cloned(),
                        "server" => service.server = values.first().cloned(),
                        "type" => service.internal = values.iter().any(|v| v == "INTERNAL"),
                        "flags" if values.iter().any(|v| v == "DISABLE") && op != "-=" => {
                            service.disabled = true;
                        }
                        _ => {}
                    },
                    Block::None => {}
                }
            }
        }
    }
}

/// `key op values` with `op` one of `=`, `+=`, `-=`.
fn split_assignment(line: &str) -> Option<(&str, &str, &str)> {
    let eq = line.find('=')?;
    let (before, after) = line.split_at(eq);
    let after = after.get(1..).unwrap_or_default();
    let (key, op) = if let Some(key) = before.strip_suffix('+') {
        (key, "+=")
    } else if let Some(key) = before.strip_suffix('-') {
        (key, "-=")
    } else {
        (before, "=")
    };
    Some((key.trim(), op, after.trim()))
}

// ---------------------------------------------------------------------------------------
// SysV
// ---------------------------------------------------------------------------------------

/// `S##name` links in /etc/rc2.d … /etc/rc5.d (the multi-user runlevels). On a systemd
/// guest, a native unit of the same name takes precedence over the script; callers can
/// check `unit_files`.
fn sysv(files: &dyn GuestFiles, out: &mut Services) -> Result<(), FactError> {
    for runlevel in 2u8..=5 {
        let dir = format!("/etc/rc{runlevel}.d");
        let Some(mut items) = files.list(&dir)? else {
            continue;
        };
        if items.len() > MAX_DIR_ENTRIES {
            return Err(FactError::new(
                dir,
                format!("{} entries; not read", items.len()),
            ));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items {
            let entry = String::from_utf8_lossy(&item.name).into_owned();
            let Some(rest) = entry.strip_prefix('S') else {
                continue;
            };
            let name = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            if name.len() == rest.len() || name.is_empty() {
                continue;
            }
            let path = format!("{dir}/{entry}");
            let program = match files.read_link(&path)? {
                Some(target) => basename(&String::from_utf8_lossy(&target)).to_string(),
                None => name.to_string(),
            };
            out.enabled.push(EnabledService {
                name: name.to_string(),
                unit: None,
                unit_file: None,
                alias: None,
                wanted_by: None,
                program: Some(program),
                mechanism: Mechanism::SysV { runlevel },
                origin: Origin { path, line: 0 },
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_follows_fnmatch_noescape() {
        assert!(fnmatch("*", "anything.service"));
        assert!(fnmatch("avahi-daemon.*", "avahi-daemon.socket"));
        assert!(!fnmatch("avahi-daemon.*", "avahi-daemon"));
        assert!(fnmatch(
            "systemd-journal-gatewayd.*",
            "systemd-journal-gatewayd.socket"
        ));
        assert!(fnmatch("getty@?.service", "getty@1.service"));
        assert!(fnmatch("[a-c]x", "bx"));
        assert!(!fnmatch("[!a-c]x", "bx"));
        assert!(fnmatch("a\\b", "a\\b"));
        assert!(fnmatch("[x", "[x"));
        // Many stars against a long name that fails late: must stay fast.
        assert!(fnmatch("*a*a*a*a*a*b", &format!("{}b", "a".repeat(40))));
        assert!(!fnmatch("*a*a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn unit_names_are_classified() {
        assert_eq!(unit_name_kind("ssh.service"), Some(NameKind::Plain));
        assert_eq!(unit_name_kind("getty@.service"), Some(NameKind::Template));
        assert_eq!(
            unit_name_kind("getty@tty1.service"),
            Some(NameKind::Instance)
        );
        assert_eq!(unit_name_kind("foo.conf"), None);
        assert_eq!(unit_name_kind("@x.service"), None);
        assert_eq!(unit_name_kind("a@b@c.service"), None);
        assert_eq!(
            with_instance("getty@.service", "tty1"),
            "getty@tty1.service"
        );
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
    }

    #[test]
    fn exec_start_prefixes_are_stripped() {
        assert_eq!(
            exec_program("-/usr/sbin/in.tftpd --listen").as_deref(),
            Some("in.tftpd")
        );
        assert_eq!(
            exec_program("@/usr/sbin/sshd sshd -D").as_deref(),
            Some("sshd")
        );
        assert_eq!(exec_program("!!/bin/x").as_deref(), Some("x"));
    }

    #[test]
    fn install_sections_reset_on_empty_assignment() {
        let info = parse_unit("[Install]\nWantedBy=a.target b.target\nWantedBy=\nWantedBy=c.target\nAlias=x.service \\\n  y.service\n");
        assert_eq!(info.wanted_by, vec!["c.target"]);
        assert_eq!(info.alias, vec!["x.service", "y.service"]);
    }

    #[test]
    fn xinetd_assignments_split() {
        assert_eq!(
            split_assignment("disabled += a b"),
            Some(("disabled", "+=", "a b"))
        );
        assert_eq!(
            split_assignment("disable = yes"),
            Some(("disable", "=", "yes"))
        );
    }
}
