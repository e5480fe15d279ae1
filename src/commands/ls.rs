//! `amiscan ls`: a directory of the guest, like `ls [-l] [-R]`.

use std::io::Write;

use super::render::{mode_string, utc_time};
use super::{CommandError, Outcome};
use crate::filesystems::{DirEntry, FileKind, FsError, Metadata, NodeId};
use crate::guest::{display_path, Tree};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub long: bool,
    pub recursive: bool,
}

/// One line of the listing.
struct Listed<'a> {
    name: &'a [u8],
    meta: Metadata,
    target: Option<Vec<u8>>,
}

/// A child of a listed directory, with mount points showing the mounted filesystem's
/// root.
struct Child {
    path: Vec<u8>,
    mount: usize,
    node: NodeId,
}

/// Why a directory could not be listed; the caller names the directory itself.
#[derive(Debug, thiserror::Error)]
enum ListError {
    /// A mount index from the tree that the tree no longer has.
    #[error("mount vanished")]
    MountVanished,
    #[error("{0}")]
    ReadDir(#[source] FsError),
}

/// The names of a directory, sorted. Only names and node numbers are held, and each
/// line is written as soon as its metadata is read, so that a directory of millions of
/// names costs tens of bytes per name (see docs/security.md).
fn sorted_entries(tree: &Tree, mount: usize, dir: NodeId) -> Result<Vec<DirEntry>, ListError> {
    let parent = tree.mount(mount).ok_or(ListError::MountVanished)?;
    let mut entries = parent
        .fs
        .read_dir(dir)
        .map_err(|e| ListError::ReadDir(e.rebase(&parent.offset)))?;
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn locate_child(tree: &Tree, mount: usize, dir_path: &[u8], entry: &DirEntry) -> Child {
    let mut path = dir_path.to_vec();
    if path != b"/" {
        path.push(b'/');
    }
    path.extend_from_slice(&entry.name);
    let (mount, node) = match tree.mount_at(&path) {
        Some(m) => (m, tree.mount(m).map(|m| m.fs.root()).unwrap_or(entry.node)),
        None => (mount, entry.node),
    };
    Child { path, mount, node }
}

/// The child's metadata and, for a symlink, its target.
fn describe<'a>(tree: &Tree, child: &Child, name: &'a [u8]) -> Result<Listed<'a>, String> {
    let owner = tree
        .mount(child.mount)
        .ok_or_else(|| ListError::MountVanished.to_string())?;
    let fs = &owner.fs;
    let meta = fs
        .metadata(child.node)
        .map_err(|e| e.rebase(&owner.offset).to_string())?;
    let target = if meta.kind == FileKind::Symlink {
        fs.read_link(child.node).ok()
    } else {
        None
    };
    Ok(Listed { name, meta, target })
}

fn write_entry(item: &Listed, style: Style, out: &mut dyn Write) -> std::io::Result<()> {
    let name = display_path(item.name);
    if !style.long {
        return writeln!(out, "{name}");
    }
    let size = match item.meta.rdev {
        Some((major, minor)) => format!("{major}, {minor}"),
        None => item.meta.size.to_string(),
    };
    let target = item
        .target
        .as_ref()
        .map(|t| format!(" -> {}", display_path(t)))
        .unwrap_or_default();
    writeln!(
        out,
        "{} {:>3} {:>5} {:>5} {:>10} {} {name}{target}",
        mode_string(&item.meta),
        item.meta.nlink,
        item.meta.uid,
        item.meta.gid,
        size,
        utc_time(item.meta.mtime),
    )
}

pub fn run(
    tree: &Tree,
    path: &[u8],
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let located = tree
        .resolve(path, true)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let owner = tree
        .mount(located.mount)
        .ok_or_else(|| CommandError::Usage(format!("{}: not found", display_path(path))))?;
    let meta = owner.fs.metadata(located.node).map_err(|e| {
        CommandError::Image(format!(
            "{}: {}",
            display_path(path),
            e.rebase(&owner.offset)
        ))
    })?;
    if meta.kind != FileKind::Dir {
        let item = Listed {
            name: path,
            meta,
            target: None,
        };
        write_entry(&item, style, out)?;
        return Ok(Outcome::Complete);
    }
    let mut incomplete = false;
    // Directories still to list, as (mount, node, path); a stack keeps -R depth-first.
    let mut pending = vec![(located.mount, located.node, located.canonical.clone())];
    let mut first = true;
    let mut listed_dirs = 0usize;
    while let Some((mount, dir, dir_path)) = pending.pop() {
        listed_dirs += 1;
        if listed_dirs > 1_000_000 {
            writeln!(err, "amiscan: ls: stopped after a million directories")?;
            incomplete = true;
            break;
        }
        if style.recursive {
            if !first {
                writeln!(out)?;
            }
            writeln!(out, "{}:", display_path(&dir_path))?;
        }
        first = false;
        let entries = match sorted_entries(tree, mount, dir) {
            Ok(entries) => entries,
            Err(e) => {
                writeln!(err, "amiscan: {}: {e}", display_path(&dir_path))?;
                incomplete = true;
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in &entries {
            let child = locate_child(tree, mount, &dir_path, entry);
            match describe(tree, &child, &entry.name) {
                Ok(item) => {
                    write_entry(&item, style, out)?;
                    if style.recursive && item.meta.kind == FileKind::Dir {
                        subdirs.push((child.mount, child.node, child.path));
                    }
                }
                Err(e) => {
                    writeln!(err, "amiscan: {}: {e}", display_path(&child.path))?;
                    incomplete = true;
                }
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(Outcome::from_incomplete(incomplete))
}
