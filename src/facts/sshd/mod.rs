//! OpenSSH sshd's effective configuration, computed from the guest's files the way sshd
//! itself computes it (what `sshd -T` prints): which file is read, how lines are split into
//! tokens, `Include` globs, `Match` blocks, first-value-wins, aliases and compiled-in
//! defaults. It records what the files say and what sshd would reject; it neither judges
//! values (rules do) nor matches `Match` criteria against a connection (callers decide
//! which blocks apply, see [`SshdConfig::effective_for`]).
//!
//! sshd reads its configuration twice: once at startup with no connection, when only lines
//! outside `Match` blocks (and inside `Match all`) count, and again for each connection,
//! when only the `Match` blocks that apply count and override the startup values. Both
//! passes are modelled here, including the second pass's re-reading of `Include`s from
//! sshd's include cache, which can recurse where the first pass did not.
//!
//! Not modelled: values of keywords whose arguments need sshd's tables (cipher and key
//! algorithm names, listen addresses, `AuthenticationMethods` lists) are recorded as
//! written without checking them; `~` in `AuthorizedKeysFile` is not expanded.

mod arguments;
mod config;
mod keywords;
mod lines;
mod match_line;
mod parser;
#[cfg(test)]
mod tests;

pub use config::{Effective, MatchBlock, Setting, SshdConfig};
pub use keywords::canonical_keyword;

#[cfg(doc)]
use super::MAX_CONFIG_BYTES;
use super::{FactError, GuestFiles};

/// The configuration file sshd reads.
pub const MAIN_CONFIG: &str = "/etc/ssh/sshd_config";
/// SUSE's vendor file, which SUSE's sshd reads when [`MAIN_CONFIG`] does not exist.
pub const VENDOR_CONFIG: &str = "/usr/etc/ssh/sshd_config";
/// Where relative `Include` paths are resolved (sshd's compiled-in `SSHDIR`).
pub const SSH_DIR: &str = "/etc/ssh";
/// Where distributions install the sshd binary.
pub const SSHD_BINARIES: [&str; 4] = [
    "/usr/sbin/sshd",
    "/usr/bin/sshd",
    "/sbin/sshd",
    "/usr/local/sbin/sshd",
];

/// sshd's own limit on nested includes (`SERVCONF_MAX_DEPTH`); beyond it sshd exits.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Files parsed per pass, counting a file again each time it is included. Real systems
/// use a handful; the bound stops include fan-out from growing exponentially.
const MAX_FILE_PARSES: usize = 2048;
/// Configuration lines processed per pass.
const MAX_LINES: usize = 1_000_000;
/// Match blocks recorded.
const MAX_MATCH_BLOCKS: usize = 10_000;
/// Bytes of distinct configuration files read.
const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// Directories listed while expanding `Include` globs.
const MAX_GLOB_DIRS: usize = 1024;
/// Paths one `Include` glob may expand to.
const MAX_GLOB_MATCHES: usize = 4096;

/// Whether an sshd binary is present (any kind of node counts, a dangling symlink too).
pub fn sshd_installed(files: &dyn GuestFiles) -> Result<bool, FactError> {
    for path in SSHD_BINARIES {
        if files.kind(path)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// sshd's configuration, or `None` when no sshd binary is installed.
pub fn read(files: &dyn GuestFiles) -> Result<Option<SshdConfig>, FactError> {
    if !sshd_installed(files)? {
        return Ok(None);
    }
    read_config(files).map(Some)
}

/// Reads and interprets the configuration files whether or not sshd is installed.
///
/// A file that cannot be read (I/O error, larger than [`super::MAX_CONFIG_BYTES`]) or a
/// configuration past this module's resource bounds is an error: the result would be a
/// guess. Anything sshd itself would reject is recorded in [`SshdConfig::problems`].
pub fn read_config(files: &dyn GuestFiles) -> Result<SshdConfig, FactError> {
    let main = if files.kind(MAIN_CONFIG)?.is_some() {
        Some(MAIN_CONFIG)
    } else if files.kind(VENDOR_CONFIG)?.is_some() {
        Some(VENDOR_CONFIG)
    } else {
        None
    };
    parser::run(files, main)
}
