//! The commands a user runs. Each turns an opened guest into output on a writer; none of
//! them parses disk structures itself.

mod cat;
mod detectors;
pub mod display;
mod files;
mod inspect;
mod ls;
mod manual;
pub mod render;
mod rules;
mod scan;
mod scan_plan;
pub mod stdout;
pub mod version;

use std::io::Write;
use std::path::Path;

use crate::checksums::ChecksumPolicy;
use crate::cli::{Cli, Command, ReadArgs};
use crate::gate::Verdict;
use crate::guest::{self, Guest, Tree};

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything the command needed was read.
    Complete,
    /// Something could not be read; the output says what. Exit code 3.
    Incomplete,
    /// The command's answer is "no": `scan` found failing rules, `rules check` found
    /// problems. Exit code 1.
    Failed,
    /// `scan`: an image could not be opened at all (the report says which) and none
    /// failed. Exit code 2.
    Unreadable,
}

impl Outcome {
    pub fn from_incomplete(incomplete: bool) -> Self {
        if incomplete {
            Self::Incomplete
        } else {
            Self::Complete
        }
    }

    /// The exit code, from the one table of them (`Verdict::exit_code`).
    pub fn exit_code(self) -> u8 {
        let verdict = match self {
            Self::Complete => Verdict::Pass,
            Self::Incomplete => Verdict::Incomplete,
            Self::Failed => Verdict::Fail,
            Self::Unreadable => Verdict::Error,
        };
        verdict.exit_code()
    }
}

impl From<Verdict> for Outcome {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Pass => Self::Complete,
            Verdict::Incomplete => Self::Incomplete,
            Verdict::Fail => Self::Failed,
            Verdict::Error => Self::Unreadable,
        }
    }
}

/// A command that could not run at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Image(String),
    #[error("{0}")]
    Usage(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// Opens the guest an image argument names, as a command's error.
fn open_guest(path: &Path, read: ReadArgs) -> Result<Guest, CommandError> {
    guest::open_with(path, read.open_options()).map_err(open_error)
}

/// A guest that could not be opened, as a command's error: a malformed argument is a
/// usage error, the rest an unreadable image.
fn open_error(error: guest::OpenError) -> CommandError {
    match error {
        guest::OpenError::Argument(message) => CommandError::Usage(message),
        other => CommandError::Image(other.to_string()),
    }
}

/// The tree a path argument refers to: the guest's, or one volume's with `--volume`.
fn pick_tree(guest: &Guest, volume: Option<&str>) -> Result<Tree, CommandError> {
    match volume {
        None if guest.tree.mounts().is_empty() => Err(CommandError::Image(format!(
            "{}: no readable filesystem in this image (see `amiscan inspect`)",
            guest.image_name
        ))),
        None => Ok(guest.tree.clone()),
        Some(id) => guest.volume_tree(id).ok_or_else(|| {
            CommandError::Usage(format!(
                "{}: no readable volume `{id}` (see `amiscan inspect` for volume ids)",
                guest.image_name
            ))
        }),
    }
}

/// True when `ancestor` is `path` or one of its parent directories.
fn is_within(path: &[u8], ancestor: &[u8]) -> bool {
    ancestor == b"/"
        || path == ancestor
        || (path.starts_with(ancestor) && path.get(ancestor.len()) == Some(&b'/'))
}

/// Which guest mounts a command warns about.
#[derive(Clone, Copy)]
enum Blind {
    /// Mounts amiscan could not read: what shows there is the filesystem below.
    Unscanned,
    /// Volumes read that may be incomplete (an XFS log not replayed).
    Partial,
}

/// Warns about `blind` guest mounts that a command's answer for `path` depends on: a
/// mount at or above it, or (for recursive listings) below it. Returns whether any was
/// found, which makes the answer incomplete.
fn warn_blind(
    guest: &Guest,
    blind: Blind,
    path: &[u8],
    include_below: bool,
    err: &mut dyn Write,
) -> std::io::Result<bool> {
    let mounts = match blind {
        Blind::Unscanned => guest.unscanned_mount_points(),
        Blind::Partial => guest.partial_mount_points(),
    };
    let mut found = false;
    for (mount, reason) in mounts {
        if !(is_within(path, mount) || (include_below && is_within(mount, path))) {
            continue;
        }
        found = true;
        let mount = guest::display_path(mount);
        let image = &guest.image_name;
        match blind {
            Blind::Unscanned => writeln!(
                err,
                "amiscan: {image}: {mount} is not scanned ({reason}); what is shown there comes from the filesystem below it"
            )?,
            Blind::Partial => writeln!(
                err,
                "amiscan: {image}: the volume at {mount} was read, but may be incomplete: {reason}"
            )?,
        }
    }
    Ok(found)
}

/// Says on `err` why nothing `ls` or `cat` shows is proven, if so: the image has no
/// operating-system root (what shows at a guest path is not the guest's), or checksums
/// were not enforced. Returns whether the answer is incomplete.
fn warn_unproven(guest: &Guest, volume_given: bool, err: &mut dyn Write) -> std::io::Result<bool> {
    let no_os_root = guest.no_os_root.as_deref().filter(|_| !volume_given);
    let unchecked =
        (guest.checksums == ChecksumPolicy::Ignore).then_some(guest::CHECKSUMS_NOT_ENFORCED);
    for reason in no_os_root.iter().chain(unchecked.iter()) {
        writeln!(err, "amiscan: {}: {reason}", guest.image_name)?;
    }
    Ok(no_os_root.is_some() || unchecked.is_some())
}

/// The guest path a command argument names, with `.`, `..` and repeated slashes folded
/// lexically (symlinks are resolved later, inside the guest).
fn lexical_path(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name => parts.push(name.to_vec()),
        }
    }
    guest::tree::join(&parts)
}

/// Runs the parsed command line, writing results to `out` and diagnostics to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CommandError> {
    let terminal = stdout::decide(cli.color, &stdout::Environment::current());
    match cli.command {
        Command::Scan(args) => scan::run(&args, &terminal, out, err),
        Command::Rules { action } => rules::run(action, &terminal, out, err),
        Command::Inspect {
            image,
            format,
            read,
        } => {
            let guest = open_guest(&image, read)?;
            inspect::run(&guest, format, &terminal, out)
        }
        Command::Version { verbose } => {
            version::write(verbose, out)?;
            Ok(Outcome::Complete)
        }
        Command::Completions { shell } => {
            manual::completions(shell, out);
            Ok(Outcome::Complete)
        }
        Command::Man { out: dir } => {
            manual::man(dir.as_deref(), out)?;
            Ok(Outcome::Complete)
        }
        Command::Ls {
            image,
            path,
            long,
            recursive,
            volume,
            read,
        } => {
            let guest = open_guest(&image, read)?;
            let unproven = warn_unproven(&guest, volume.is_some(), err)?;
            if unproven && volume.is_none() && guest.tree.mounts().is_empty() {
                return Ok(Outcome::Incomplete);
            }
            let tree = pick_tree(&guest, volume.as_deref())?;
            let guest_path = lexical_path(path.as_bytes());
            let shadowed = unproven
                || volume.is_none()
                    && (warn_blind(&guest, Blind::Unscanned, &guest_path, recursive, err)?
                        | warn_blind(&guest, Blind::Partial, &guest_path, recursive, err)?);
            let listed = ls::run(
                &tree,
                path.as_bytes(),
                ls::Style { long, recursive },
                out,
                err,
            );
            match listed {
                // The path may well exist on the volume that was not read.
                Err(CommandError::Usage(message)) if shadowed => {
                    writeln!(err, "amiscan: {message}")?;
                    Ok(Outcome::Incomplete)
                }
                Ok(_) if shadowed => Ok(Outcome::Incomplete),
                other => other,
            }
        }
        Command::Cat {
            image,
            path,
            volume,
            read,
        } => {
            let guest = open_guest(&image, read)?;
            let unproven = warn_unproven(&guest, volume.is_some(), err)?;
            if unproven && volume.is_none() && guest.tree.mounts().is_empty() {
                return Ok(Outcome::Incomplete);
            }
            let tree = pick_tree(&guest, volume.as_deref())?;
            let guest_path = lexical_path(path.as_bytes());
            if volume.is_none() && warn_blind(&guest, Blind::Unscanned, &guest_path, false, err)? {
                return Ok(Outcome::Incomplete);
            }
            let partial = unproven
                || volume.is_none() && warn_blind(&guest, Blind::Partial, &guest_path, false, err)?;
            match cat::run(&tree, path.as_bytes(), out) {
                // The file may have been written to the log that was not replayed.
                Err(CommandError::Usage(message)) if partial => {
                    writeln!(err, "amiscan: {message}")?;
                    Ok(Outcome::Incomplete)
                }
                Ok(_) if partial => Ok(Outcome::Incomplete),
                other => other,
            }
        }
        Command::Files {
            image,
            hash,
            hash_max_size,
            format,
            threads: _,
            timeout: _,
            read,
        } => {
            let max_entries = read.max_entries();
            let guest = open_guest(&image, read)?;
            let options = crate::walk::WalkOptions {
                sha256_up_to: hash.map(|_| hash_max_size),
                max_entries,
                ..Default::default()
            };
            files::run(&guest, options, format, out, err)
        }
    }
}
