//! `amiscan ls`: a directory of the guest, like `ls [-l] [-R]`.

use std::io::Write;

use super::render::{mode_string, utc_time};
use super::{CommandError, Outcome};
use crate::filesystems::{FileKind, FsError, Metadata, NodeId};
use crate::guest::{display_path, GuestPath, Tree};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub long: bool,
    pub recursive: bool,
}

struct Listed {
    name: Vec<u8>,
    path: Vec<u8>,
    mount: usize,
    node: NodeId,
    meta: Metadata,
    target: Option<Vec<u8>>,
}

/// Why a directory could not be listed; the caller names the directory itself.
#[derive(Debug, thiserror::Error)]
enum ListError {
    /// A mount index from the tree that the tree no longer has.
    #[error("mount vanished")]
    MountVanished,
    #[error("{0}")]
    ReadDir(#[source] FsError),
    /// One child's metadata, named because it is not the directory the caller names.
    #[error("{}: {source}", path.display())]
    Metadata { path: GuestPath, source: FsError },
}

/// The children of a directory, with mount points showing the mounted filesystem's root.
fn children(tree: &Tree, mount: usize, dir: NodeId, path: &[u8]) -> Result<Vec<Listed>, ListError> {
    let parent = tree.mount(mount).ok_or(ListError::MountVanished)?;
    let mut listed = Vec::new();
    let entries = parent
        .fs
        .read_dir(dir)
        .map_err(|e| ListError::ReadDir(e.rebase(&parent.offset)))?;
    for entry in entries {
        let mut child_path = path.to_vec();
        if child_path != b"/" {
            child_path.push(b'/');
        }
        child_path.extend_from_slice(&entry.name);
        let (mount, node) = match tree.mount_at(&child_path) {
            Some(m) => (m, tree.mount(m).map(|m| m.fs.root()).unwrap_or(entry.node)),
            None => (mount, entry.node),
        };
        let owner = tree.mount(mount).ok_or(ListError::MountVanished)?;
        let fs = &owner.fs;
        let meta = fs.metadata(node).map_err(|e| ListError::Metadata {
            path: GuestPath::new(child_path.as_slice()),
            source: e.rebase(&owner.offset),
        })?;
        let target = if meta.kind == FileKind::Symlink {
            fs.read_link(node).ok()
        } else {
            None
        };
        listed.push(Listed {
            name: entry.name,
            path: child_path,
            mount,
            node,
            meta,
            target,
        });
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listed)
}

fn write_entry(item: &Listed, style: Style, out: &mut dyn Write) -> std::io::Result<()> {
    let name = display_path(&item.name);
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
            name: path.to_vec(),
            path: path.to_vec(),
            mount: located.mount,
            node: located.node,
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
        let items = match children(tree, mount, dir, &dir_path) {
            Ok(items) => items,
            Err(e) => {
                writeln!(err, "amiscan: {}: {e}", display_path(&dir_path))?;
                incomplete = true;
                continue;
            }
        };
        for item in &items {
            write_entry(item, style, out)?;
        }
        if style.recursive {
            for item in items.iter().rev().filter(|i| i.meta.kind == FileKind::Dir) {
                pending.push((item.mount, item.node, item.path.clone()));
            }
        }
    }
    Ok(Outcome::from_incomplete(incomplete))
}
