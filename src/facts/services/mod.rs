//! Which services the guest starts at boot, read from its configuration the way the init
//! systems read it: systemd (`.wants/`, `.requires/`, `.upholds/` symlinks, aliases, masks,
//! and the presets it applies on first boot), inetd, xinetd and SysV rc links. It also
//! lists the installed unit files, so callers can tell installed from enabled. It does not
//! follow `Wants=`/`Requires=` lines inside unit files, nor decide whether a service is
//! acceptable (that is the rules' job).
//!
//! The systemd rules follow systemd 252 (Debian 12) — the version whose `systemctl
//! --root` the tests compare against — and are documented where they are applied.

mod inetd;
mod names;
mod paths;
mod presets;
mod systemd;
mod sysv;
#[cfg(test)]
mod tests;
mod unit_file;
mod xinetd;

pub use paths::canonical_path;

use std::fmt;

use super::{FactError, GuestFiles, Origin};
use systemd::Systemd;

/// Symlinks followed for one path or unit name, as systemd's `UNIT_FILE_FOLLOW_SYMLINK_MAX`.
const MAX_SYMLINKS: usize = 64;

/// Entries read from one directory; real unit directories hold a few thousand at most.
const MAX_DIR_ENTRIES: usize = 100_000;

/// `Also=` chains and alias chains longer than this are cycles or hostile.
const MAX_CHAIN: usize = 32;

/// Files read by `include`/`includedir` in xinetd configuration, or in /etc/inetd.d.
const MAX_INCLUDES: usize = 10_000;

/// Where `systemctl enable` writes: `persistent_config`.
const PERSISTENT_CONFIG: &str = "/etc/systemd/system";

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
    inetd::read(files, &mut out)?;
    xinetd::read(files, &mut out)?;
    sysv::read(files, &mut out)?;
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

/// `fnmatch(pattern, name, FNM_NOESCAPE)`, as systemd matches preset rules against unit
/// names (see [`super::fnmatch`]).
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    super::fnmatch::text(pattern, name, super::fnmatch::NOESCAPE)
}
