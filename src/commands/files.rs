//! `amiscan files`: the full inventory of the guest, one JSON object per line or a table.
//!
//! Volumes the guest mounts appear at their guest paths; readable volumes it does not mount
//! are walked too (their paths are relative to the volume, and `volume` says which).

use std::io::Write;

use comfy_table::{presets::NOTHING, Table};
use serde::Serialize;

use super::render::{mode_string, utc_time};
use super::{CommandError, Outcome};
use crate::checksums::ChecksumPolicy;
use crate::cli::ListFormat;
use crate::guest::Guest;
use crate::names::{escape_for_terminal, json_text_and_bytes};
use crate::walk::{self, describe_error, Entry, Inventory, WalkOptions};

#[derive(Serialize)]
struct Record<'a> {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_base64: Option<String>,
    volume: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: String,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    inode: u64,
    nlink: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hash_skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdev: Option<[u32; 2]>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn record<'a>(entry: &Entry, volume: &'a str) -> Record<'a> {
    let (path, path_base64) = json_text_and_bytes(&entry.path);
    let (target, target_base64) = match &entry.target {
        Some(t) => {
            let (text, raw) = json_text_and_bytes(t);
            (Some(text), raw)
        }
        None => (None, None),
    };
    Record {
        path,
        path_base64,
        volume,
        kind: entry.meta.kind.as_str(),
        mode: format!("{:04o}", entry.meta.permissions),
        uid: entry.meta.uid,
        gid: entry.meta.gid,
        size: entry.meta.size,
        mtime: entry.meta.mtime,
        inode: entry.meta.inode,
        nlink: entry.meta.nlink,
        sha256: entry.sha256.as_ref().map(|d| hex(&d[..])),
        hash_skipped: entry.hash_skipped,
        target,
        target_base64,
        rdev: entry.meta.rdev.map(|(major, minor)| [major, minor]),
    }
}

/// Walks the guest tree, then each readable volume the guest does not mount.
fn inventory(guest: &Guest, options: WalkOptions) -> Inventory {
    let mut all = walk::walk(&guest.tree, options);
    for state in &guest.volumes {
        if state.mount_point.is_some() || state.fs.is_none() {
            continue;
        }
        let Some(tree) = guest.volume_tree(&state.volume.id) else {
            continue;
        };
        let found = walk::walk(&tree, options);
        all.entries.extend(found.entries);
        all.errors.extend(found.errors);
        all.bytes_read = all.bytes_read.saturating_add(found.bytes_read);
    }
    all
}

pub fn run(
    guest: &Guest,
    options: WalkOptions,
    format: ListFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let found = inventory(guest, options);
    let sha256 = options.sha256_up_to.is_some();
    let volume_id = |index: usize| {
        guest
            .volumes
            .get(index)
            .map(|v| v.volume.id.as_str())
            .unwrap_or("?")
    };
    match format {
        ListFormat::Jsonl => {
            for entry in &found.entries {
                serde_json::to_writer(&mut *out, &record(entry, volume_id(entry.volume)))
                    .map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
        }
        ListFormat::Table => {
            let mut table = Table::new();
            table.load_preset(NOTHING);
            let mut header = vec!["MODE", "UID", "GID", "SIZE", "MODIFIED", "VOLUME", "PATH"];
            if sha256 {
                header.push("SHA256");
            }
            table.set_header(header);
            for entry in &found.entries {
                let mut path = escape_for_terminal(&entry.path);
                if let Some(target) = &entry.target {
                    path.push_str(" -> ");
                    path.push_str(&escape_for_terminal(target));
                }
                let mut row = vec![
                    mode_string(&entry.meta),
                    entry.meta.uid.to_string(),
                    entry.meta.gid.to_string(),
                    entry.meta.size.to_string(),
                    utc_time(entry.meta.mtime),
                    volume_id(entry.volume).to_string(),
                    path,
                ];
                if sha256 {
                    let digest = match (&entry.sha256, entry.hash_skipped) {
                        (Some(d), _) => hex(&d[..]),
                        (None, true) => "(not hashed: too large)".to_string(),
                        (None, false) => String::new(),
                    };
                    row.push(digest);
                }
                table.add_row(row);
            }
            writeln!(out, "{table}")?;
        }
    }
    for error in &found.errors {
        writeln!(
            err,
            "amiscan: {}: {}",
            guest.image_name,
            describe_error(error)
        )?;
    }
    for note in guest.notes.iter().filter(|n| n.incomplete) {
        writeln!(err, "amiscan: {}: {}", guest.image_name, note.message)?;
    }
    // A volume read only in part has its reason among the notes above.
    for state in guest
        .volumes
        .iter()
        .filter(|v| v.incomplete && v.fs.is_none())
    {
        writeln!(
            err,
            "amiscan: {}: volume {} not scanned: {}",
            guest.image_name,
            state.volume.id,
            state.not_scanned.as_deref().unwrap_or("unreadable")
        )?;
    }
    if guest.checksums == ChecksumPolicy::Ignore {
        writeln!(
            err,
            "amiscan: {}: {} checksum mismatches let through",
            guest.image_name,
            guest.ignored_checksums()
        )?;
    }
    Ok(Outcome::from_incomplete(
        guest.incomplete() || !found.errors.is_empty(),
    ))
}
