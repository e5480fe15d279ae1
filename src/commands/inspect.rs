//! `amiscan inspect`: what the image is made of, as a table or JSON.

use std::io::Write;

use serde::Serialize;

use super::render::human_size;
use super::{CommandError, Outcome};
use crate::cli::TableOrJson;
use crate::filesystems::unallocated::{self, Unallocated};
use crate::filesystems::FsDetails;
use crate::guest::{display_path, Guest, GuestDisk, OsRelease};
use crate::image::Snapshot;
use crate::report::terminal::{shorten_middle, Terminal, Tone};
use crate::volumes::lvm::VolumeGroupInfo;
use crate::volumes::{DiskTable, TableProblem};

#[derive(Serialize, Clone)]
struct ImageReport<'a> {
    path: &'a str,
    format: String,
    subformat: Option<&'a str>,
    virtual_size: u64,
    allocated_size: Option<u64>,
    backing_chain: &'a [String],
    snapshots: &'a [Snapshot],
    /// Extent or data files read besides the image file itself.
    extra_files: &'a [String],
}

#[derive(Serialize, Clone)]
struct TableReport {
    scheme: String,
    sector_size: u64,
    hybrid_mbr: bool,
}

#[derive(Serialize)]
struct VolumeReport {
    id: String,
    scheme: String,
    partition: Option<u32>,
    #[serde(rename = "type")]
    type_id: Option<String>,
    name: Option<String>,
    part_uuid: Option<String>,
    offset: u64,
    size: u64,
    filesystem: &'static str,
    label: Option<String>,
    uuid: Option<String>,
    mount_point: Option<String>,
    scanned: bool,
    error: Option<String>,
    /// The filesystem's format details, when it was opened.
    details: Option<FsDetails>,
    /// How much of the volume its free-space maps mark free, and how much of that holds
    /// data (what deleted files may have left): when the filesystem's reader knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    unallocated: Option<UnallocatedReport>,
}

/// The unallocated space of a volume, or why it could not be measured.
#[derive(Serialize)]
#[serde(untagged)]
enum UnallocatedReport {
    Measured(Unallocated),
    Unknown { error: String },
}

/// One disk of the guest with its partition table.
#[derive(Serialize, Clone)]
struct DiskReport<'a> {
    /// Set for a guest of several disks: the prefix of the disk's volume ids.
    name: Option<&'a str>,
    image: ImageReport<'a>,
    partition_table: TableReport,
    /// What is wrong with the disk's partition table; each is also one of the notes.
    problems: &'a [TableProblem],
}

#[derive(Serialize)]
struct InspectReport<'a> {
    /// The first disk's image (`path` is the argument as given); a guest always has one.
    image: Option<ImageReport<'a>>,
    /// The first disk's partition table.
    partition_table: Option<TableReport>,
    /// Every disk of the guest (one unless disks were joined with `+`).
    disks: Vec<DiskReport<'a>>,
    volumes: Vec<VolumeReport>,
    volume_groups: &'a [VolumeGroupInfo],
    os: Option<&'a OsRelease>,
    notes: Vec<&'a str>,
    complete: bool,
}

fn report(guest: &Guest) -> InspectReport<'_> {
    let volumes = guest
        .volumes
        .iter()
        .map(|state| {
            let v = &state.volume;
            VolumeReport {
                id: v.id.clone(),
                scheme: v.scheme.to_string(),
                partition: v.partition,
                type_id: v.type_id.clone(),
                name: v.name.clone(),
                part_uuid: v.part_uuid.clone(),
                offset: v.offset,
                size: v.size,
                filesystem: v.identity.content.as_str(),
                label: v.identity.label.clone(),
                uuid: v.identity.uuid.clone(),
                mount_point: state.mount_point.as_deref().map(display_path),
                scanned: state.fs.is_some(),
                error: state.not_scanned.clone(),
                details: state.fs.as_ref().and_then(|fs| fs.details()),
                unallocated: unallocated_of(state),
            }
        })
        .collect();
    let mut disks: Vec<DiskReport<'_>> = guest
        .disks
        .iter()
        .zip(&guest.layout.disks)
        .map(|(disk, table)| disk_report(disk, table))
        .collect();
    let mut first = disks.first().cloned();
    if let Some(first) = &mut first {
        first.image.path = &guest.image_name;
    }
    if let [only] = disks.as_mut_slice() {
        only.image.path = &guest.image_name;
    }
    InspectReport {
        image: first.as_ref().map(|d| d.image.clone()),
        partition_table: first.map(|d| d.partition_table),
        disks,
        volumes,
        volume_groups: &guest.layout.volume_groups,
        os: guest.os.as_ref(),
        notes: guest.notes.iter().map(|n| n.message.as_str()).collect(),
        complete: !guest.incomplete(),
    }
}

fn unallocated_of(state: &crate::guest::VolumeState) -> Option<UnallocatedReport> {
    let fs = state.fs.as_ref()?;
    let source = state.volume.source.as_ref()?;
    let block = fs.details().map_or(4096, |d| d.block_size);
    Some(
        match unallocated::measure(fs.as_ref(), source.as_ref(), block)? {
            Ok(measured) => UnallocatedReport::Measured(measured),
            Err(e) => UnallocatedReport::Unknown {
                error: e.rebase(&state.volume.placement()).to_string(),
            },
        },
    )
}

fn disk_report<'a>(disk: &'a GuestDisk, table: &'a DiskTable) -> DiskReport<'a> {
    let image = &disk.image;
    DiskReport {
        name: table.name.as_deref(),
        image: ImageReport {
            path: &disk.path,
            format: image.format.to_string(),
            virtual_size: image.disk.len(),
            allocated_size: image.allocated_size,
            subformat: image.info.subformat.as_deref(),
            backing_chain: &image.info.backing_chain,
            snapshots: &image.info.snapshots,
            extra_files: &image.info.extra_files,
        },
        partition_table: TableReport {
            scheme: table.scheme.to_string(),
            sector_size: table.sector_size,
            hybrid_mbr: table.hybrid_mbr,
        },
        problems: &table.problems,
    }
}

pub fn run(
    guest: &Guest,
    format: TableOrJson,
    term: &Terminal,
    out: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let report = report(guest);
    match format {
        TableOrJson::Json => {
            serde_json::to_writer_pretty(&mut *out, &report).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        TableOrJson::Table => write_table(&report, term, out)?,
    }
    Ok(Outcome::from_incomplete(guest.incomplete()))
}

/// Where the values of `Name:       value` lines start, and where their wrapped
/// continuations do.
const VALUE_COLUMN: usize = 12;

fn write_table(
    report: &InspectReport<'_>,
    term: &Terminal,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if report.disks.len() > 1 {
        writeln!(out, "Guest:      {} disks", report.disks.len())?;
    }
    for disk in &report.disks {
        if let Some(name) = disk.name {
            writeln!(out, "Disk:       {name}")?;
        }
        write_disk(disk, term, out)?;
    }
    write_guest(report, term, out)
}

/// Writes the text `write!` would, wrapped to the terminal's width under the value column.
macro_rules! field {
    ($term:expr, $out:expr, $($arg:tt)*) => {
        $term.write_wrapped($out, &format!($($arg)*), VALUE_COLUMN)
    };
}

fn write_disk(disk: &DiskReport<'_>, term: &Terminal, out: &mut dyn Write) -> std::io::Result<()> {
    let image = &disk.image;
    field!(term, out, "Image:      {}", image.path)?;
    match image.subformat {
        Some(sub) => field!(term, out, "Format:     {} ({sub})", image.format)?,
        None => field!(term, out, "Format:     {}", image.format)?,
    }
    for file in image.extra_files {
        field!(term, out, "Also reads: {file}")?;
    }
    for (depth, backing) in image.backing_chain.iter().enumerate() {
        field!(term, out, "Backing:    {}{backing}", "  ".repeat(depth))?;
    }
    for snapshot in image.snapshots {
        field!(
            term,
            out,
            "Snapshot:   {} {:?}{} (not scanned: the active layer is)",
            snapshot.id,
            snapshot.name,
            snapshot
                .date
                .map(|d| format!(", taken {}", super::render::utc_time(d)))
                .unwrap_or_default()
        )?;
    }
    let allocated = image
        .allocated_size
        .map(|a| format!(", {} allocated", human_size(a)))
        .unwrap_or_default();
    field!(
        term,
        out,
        "Size:       {} ({} bytes){allocated}",
        human_size(image.virtual_size),
        image.virtual_size
    )?;
    let table = &disk.partition_table;
    let hybrid = if table.hybrid_mbr { ", hybrid MBR" } else { "" };
    field!(
        term,
        out,
        "Partitions: {} ({}-byte sectors{hybrid})",
        table.scheme,
        table.sector_size
    )?;
    for problem in disk.problems {
        let effect = if problem.incomplete {
            "incomplete"
        } else {
            "note"
        };
        field!(
            term,
            out,
            "Problem:    {} ({effect}): {}",
            problem.kind,
            problem.message
        )?;
    }
    Ok(())
}

/// UUIDs shortened to this many columns when the full ones would not fit.
const SHORT_UUID: usize = 9;

/// How much of the volume table is shown: everything, or (when that would wrap) a
/// narrower table: no START column and no partition names (both are in `--format json`),
/// UUIDs without their middle, and whether each volume was read as yes or no.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Full,
    Narrow,
}

/// The volumes, one row each. A reason for not scanning follows the table, where it has
/// the whole width.
fn volume_table(volumes: &[VolumeReport], term: &Terminal, layout: Layout) -> String {
    let narrow = layout == Layout::Narrow;
    let mut rows = term.table();
    if narrow {
        rows.set_header(["VOLUME", "SIZE", "FS", "LABEL", "UUID", "MOUNT", "READ"]);
    } else {
        rows.set_header([
            "VOLUME", "START", "SIZE", "FS", "LABEL", "UUID", "MOUNT", "STATUS",
        ]);
    }
    for v in volumes {
        let (status, tone) = match (&v.error, narrow) {
            (None, false) => ("scanned", Tone::Good),
            (None, true) => ("yes", Tone::Good),
            (Some(_), false) => ("not scanned", Tone::Unproven),
            (Some(_), true) => ("no", Tone::Unproven),
        };
        let uuid = v.uuid.clone().unwrap_or_default();
        let mut row = Vec::with_capacity(8);
        match (&v.name, narrow) {
            (Some(name), false) => row.push(term.cell(format!("{} ({name})", v.id), Tone::Plain)),
            _ => row.push(term.cell(&v.id, Tone::Plain)),
        }
        if !narrow {
            row.push(term.cell(v.offset, Tone::Plain));
        }
        row.extend([
            term.cell(human_size(v.size), Tone::Plain),
            term.cell(v.filesystem, Tone::Plain),
            term.cell(v.label.clone().unwrap_or_default(), Tone::Plain),
            term.cell(
                if narrow {
                    shorten_middle(&uuid, SHORT_UUID)
                } else {
                    uuid
                },
                Tone::Plain,
            ),
            term.cell(v.mount_point.clone().unwrap_or_default(), Tone::Plain),
            term.cell(status, tone),
        ]);
        rows.add_row(row);
    }
    let text = rows.to_string();
    // A cell wrapped over lines makes the table taller than its rows.
    let wrapped = text.lines().count() > volumes.len() + 4;
    match (wrapped, layout) {
        (false, _) => text,
        (true, Layout::Full) => volume_table(volumes, term, Layout::Narrow),
        (true, Layout::Narrow) => {
            // Volume ids, mount points, types, sizes and the answer stay whole while
            // the labels can wrap; UUIDs wrap last of all.
            term.keep_whole(&mut rows, &[0, 5, 2, 1, 6, 4]);
            rows.to_string()
        }
    }
}

fn write_guest(
    report: &InspectReport<'_>,
    term: &Terminal,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let os = report
        .os
        .and_then(|os| os.pretty_name.clone().or_else(|| os.id.clone()))
        .unwrap_or_else(|| "not identified".into());
    field!(term, out, "OS:         {os}")?;

    writeln!(out, "{}", volume_table(&report.volumes, term, Layout::Full))?;
    for v in &report.volumes {
        if let Some(reason) = &v.error {
            field!(term, out, "{}: not scanned: {reason}", v.id)?;
        }
    }
    for v in &report.volumes {
        if let Some(d) = &v.details {
            let version = d
                .version
                .map(|n| format!(" version {n}"))
                .unwrap_or_default();
            field!(term, out,
                "{}: {}{version}, {}-byte blocks, {}-byte inodes, {}-byte directory blocks, {} {}, log {}{}",
                v.id,
                v.filesystem,
                d.block_size,
                d.inode_size,
                d.dir_block_size,
                d.allocation_groups,
                if v.filesystem == "xfs" { "allocation groups" } else { "block groups" },
                d.log,
                if d.realtime { ", realtime subvolume (not in the image)" } else { "" }
            )?;
            field!(term, out, "{}: features {}", v.id, d.features.join(" "))?;
        }
        match &v.unallocated {
            Some(UnallocatedReport::Measured(u)) => field!(
                term,
                out,
                "{}: unallocated {}, of which not zero {}",
                v.id,
                human_size(u.bytes),
                human_size(u.nonzero_bytes)
            )?,
            Some(UnallocatedReport::Unknown { error }) => field!(
                term,
                out,
                "{}: unallocated space not measured: {error}",
                v.id
            )?,
            None => {}
        }
    }
    for vg in report.volume_groups {
        let pvs: Vec<String> = vg
            .physical_volumes
            .iter()
            .map(|pv| {
                format!(
                    "{} on {}",
                    pv.name,
                    pv.volume.as_deref().unwrap_or("(missing)")
                )
            })
            .collect();
        field!(
            term,
            out,
            "VG {}: {}-byte extents, seqno {}, PVs {}",
            vg.name,
            vg.extent_size,
            vg.seqno,
            pvs.join(", ")
        )?;
        for lv in &vg.logical_volumes {
            let segments: Vec<String> = lv
                .segments
                .iter()
                .map(|s| {
                    let stripes = if s.stripes > 1 {
                        format!(" x{} stripes", s.stripes)
                    } else {
                        String::new()
                    };
                    format!("{}+{} {}{stripes}", s.start_extent, s.extent_count, s.kind)
                })
                .collect();
            field!(
                term,
                out,
                "  LV {}/{}: {}, {} ({}){}",
                vg.name,
                lv.name,
                human_size(lv.size),
                lv.kind,
                segments.join(", "),
                if lv.hidden { ", hidden" } else { "" }
            )?;
        }
    }
    // The table problems were shown under their disk; the other notes follow.
    let shown: Vec<String> = report
        .disks
        .iter()
        .flat_map(|d| d.problems.iter().map(|p| p.note(d.name)))
        .collect();
    for note in report
        .notes
        .iter()
        .filter(|n| !shown.iter().any(|s| s == *n))
    {
        field!(term, out, "note: {note}")?;
    }
    if !report.complete {
        field!(term, out,
            "incomplete: some volumes or mounts could not be read, or a partition table may hide data (see above)"
        )?;
    }
    Ok(())
}
