//! Volumes: the partition table of a disk and what each partition holds.
//!
//! Owns GPT and MBR decoding, the sanity of each disk's table (`TableProblem`s, typed) and
//! volume identification by magic bytes. Every partition is considered, whatever its type
//! or name; volumes that cannot be used are kept with the reason. Knows nothing of
//! filesystems' internals or of the guest's mount tree.

mod gpt;
pub mod lvm;
mod mbr;
pub mod probe;
mod sanity;

use std::fmt;
use std::sync::Arc;

use crate::checksums::{ChecksumGuard, ChecksumPolicy};
use crate::image::{BlockSource, CorruptKind, Window};
pub use probe::{Content, Identity};
use sanity::Span;
pub use sanity::{ProblemKind, TableProblem};

/// How the disk is partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Gpt,
    Mbr,
    /// A logical volume of an LVM2 volume group.
    Lvm,
    /// A filesystem written straight onto the disk.
    None,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gpt => "gpt",
            Self::Mbr => "mbr",
            Self::Lvm => "lvm",
            Self::None => "none",
        })
    }
}

/// A partition table that could not be read, naming the structure and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{structure} at byte {offset}: {detail}", Prefix("disk ", .disk))]
pub struct TableError {
    /// The disk's name in a guest of several disks, which the message starts with.
    pub disk: Option<String>,
    pub structure: &'static str,
    pub offset: u64,
    pub kind: CorruptKind,
    pub detail: String,
}

impl TableError {
    pub fn new(
        kind: CorruptKind,
        structure: &'static str,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            disk: None,
            structure,
            offset,
            kind,
            detail: detail.into(),
        }
    }
}

/// `LEAD NAME: ` before an error that concerns one named thing (a disk of several, an
/// LV), nothing when it names none.
pub(crate) struct Prefix<'a>(pub &'static str, pub &'a Option<String>);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(name) => write!(f, "{}{name}: ", self.0),
            None => Ok(()),
        }
    }
}

/// One entry of a partition table, before its contents are looked at.
#[derive(Debug, Clone)]
pub struct PartitionEntry {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    /// Byte offset on the disk of the table entry describing the partition.
    pub entry_at: u64,
    /// GPT type GUID, or the MBR type byte as `0xNN`.
    pub type_id: String,
    /// GPT partition name.
    pub name: Option<String>,
    /// The PARTUUID a Linux guest would see.
    pub part_uuid: Option<String>,
    /// Why the partition cannot be read, if it cannot.
    pub problem: Option<String>,
}

/// A volume of the guest: a partition, a whole disk when it has no table, or a logical
/// volume.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Stable identifier: `p<N>` for partition N, `disk` for an unpartitioned disk,
    /// `VG/LV` for a logical volume. A guest of several disks prefixes a disk's volumes
    /// with the disk's name (`disk2/p1`), and calls an unpartitioned disk by its name.
    pub id: String,
    /// Index of the disk (in `Layout::disks`) the volume lies on; a logical volume's is
    /// that of its first physical volume.
    pub disk: usize,
    pub scheme: Scheme,
    pub partition: Option<u32>,
    pub type_id: Option<String>,
    pub name: Option<String>,
    pub part_uuid: Option<String>,
    /// Byte offset of the volume within the disk.
    pub offset: u64,
    pub size: u64,
    pub identity: Identity,
    /// The volume's bytes, when it lies inside the disk.
    pub source: Option<Arc<dyn BlockSource>>,
    /// Why this volume cannot be read (set by discovery or later when mounting fails).
    pub problem: Option<String>,
}

impl Volume {
    /// Turns offsets within this volume into offsets on the image's disk.
    pub fn placement(&self) -> crate::image::Placement {
        self.source
            .clone()
            .map(crate::image::Placement::of)
            .unwrap_or_default()
    }
}

/// How one disk of the guest is partitioned.
#[derive(Debug, Clone)]
pub struct DiskTable {
    /// The disk's name in a guest of several disks (`disk2`, `xvdb`); `None` for a guest
    /// of one disk.
    pub name: Option<String>,
    pub scheme: Scheme,
    /// Sector size the partition table uses.
    pub sector_size: u64,
    /// A GPT disk whose MBR also lists ordinary partitions.
    pub hybrid_mbr: bool,
    /// What is wrong with the table, in the order found.
    pub problems: Vec<TableProblem>,
}

/// The guest's volumes, across all its disks.
#[derive(Debug, Clone)]
pub struct Layout {
    /// One per disk, in the order the disks were given.
    pub disks: Vec<DiskTable>,
    pub volumes: Vec<Volume>,
    /// LVM2 volume groups whose PVs are among the volumes; their logical volumes follow
    /// the partitions in `volumes`.
    pub volume_groups: Vec<lvm::VolumeGroupInfo>,
}

impl Layout {
    /// True when some disk's partition table may hide data (see `TableProblem`), so a clean
    /// scan of the volumes proves nothing.
    pub fn incomplete(&self) -> bool {
        self.disks
            .iter()
            .any(|d| d.problems.iter().any(|p| p.incomplete))
    }
}

/// One disk of a guest, as handed to discovery.
pub struct DiskInput {
    /// Set for a guest of several disks: it prefixes the disk's volume ids.
    pub name: Option<String>,
    pub source: Arc<dyn BlockSource>,
}

/// Finds the partition table of a one-disk guest, identifies every volume, and adds the
/// logical volumes of the LVM2 PVs among them.
pub fn discover(disk: &Arc<dyn BlockSource>) -> Result<Layout, TableError> {
    discover_disks(&[DiskInput {
        name: None,
        source: Arc::clone(disk),
    }])
}

/// Finds each disk's partition table (GPT first, as Linux does, then MBR, else a bare
/// volume), identifies every volume, and adds the logical volumes of the LVM2 PVs among
/// them, whichever disks those PVs are on.
pub fn discover_disks(disks: &[DiskInput]) -> Result<Layout, TableError> {
    discover_disks_with(disks, ChecksumPolicy::Verify)
}

/// `discover_disks` with a checksum policy for the partition tables' CRCs: with
/// `Ignore`, a GPT with no copy that passes its checks is read all the same, and the
/// table's problems say so (which makes the result incomplete).
pub fn discover_disks_with(
    disks: &[DiskInput],
    policy: ChecksumPolicy,
) -> Result<Layout, TableError> {
    let guard = ChecksumGuard::new(policy);
    let mut layout = Layout {
        disks: Vec::with_capacity(disks.len()),
        volumes: Vec::new(),
        volume_groups: Vec::new(),
    };
    for (index, input) in disks.iter().enumerate() {
        let (table, mut volumes) =
            discover_partitions(&input.source, &guard).map_err(|e| TableError {
                disk: input.name.clone(),
                ..e
            })?;
        for volume in &mut volumes {
            volume.disk = index;
            if let Some(name) = &input.name {
                volume.id = match volume.scheme {
                    Scheme::None => name.clone(),
                    _ => format!("{name}/{}", volume.id),
                };
            }
        }
        layout.disks.push(DiskTable {
            name: input.name.clone(),
            ..table
        });
        layout.volumes.extend(volumes);
    }
    let (lvs, groups) = lvm::logical_volumes(&mut layout.volumes);
    layout.volumes.extend(lvs);
    layout.volume_groups = groups;
    Ok(layout)
}

fn discover_partitions(
    disk: &Arc<dyn BlockSource>,
    guard: &ChecksumGuard,
) -> Result<(DiskTable, Vec<Volume>), TableError> {
    let header = mbr::read_header(disk)?;
    if let Some(sector) = gpt::detect_sector_size(disk.as_ref())? {
        let gpt = gpt::read(disk, sector, guard)?;
        let hybrid_mbr = header.as_ref().is_some_and(|h| {
            mbr::is_protective(h) && h.iter().any(|(_, e)| e.is_used() && e.sys != 0xee)
        });
        let (mut problems, mirrors) = mbr::beside_gpt(header.as_ref(), disk.len(), sector);
        problems.extend(gpt.problems);
        let (volumes, spans) = volumes_from(disk, Scheme::Gpt, gpt.entries);
        problems.extend(sanity::past_end(&spans, disk.len()));
        problems.extend(sanity::overlaps(&spans));
        let mirrors: Vec<Span> = mirrors
            .iter()
            .map(|m| probed_span(disk, m.number, m.offset, m.size, m.entry_at))
            .collect();
        problems.extend(sanity::hybrid_mismatches(&mirrors, &spans));
        let backup_only: Vec<Span> = gpt
            .backup_only
            .iter()
            .map(|e| probed_span(disk, e.number, e.offset, e.size, e.entry_at))
            .collect();
        problems.extend(sanity::backup_only(&backup_only, &spans));
        let table = DiskTable {
            name: None,
            scheme: Scheme::Gpt,
            sector_size: sector,
            hybrid_mbr,
            problems,
        };
        return Ok((table, volumes));
    }
    // A bare filesystem's boot sector can end in 0x55AA too (vfat does), so a filesystem
    // recognised at byte 0 wins over a partition table that would be a guess.
    let (whole, unreadable) = match probe::identify(disk.as_ref()) {
        Ok(identity) => (identity, None),
        Err(failure) => (Identity::unknown(), Some(failure.to_string())),
    };
    let bare = match whole.content {
        Content::Unknown => false,
        Content::Vfat => looks_like_bare_fat(disk.as_ref()),
        _ => true,
    };
    let header = header.filter(|h| mbr::has_partitions(h) && !mbr::is_protective(h));
    if let (false, Some(header)) = (bare, header) {
        let mbr = mbr::read(disk, &header)?;
        let mut problems = mbr.problems;
        let (volumes, spans) = volumes_from(disk, Scheme::Mbr, mbr.entries);
        problems.extend(sanity::past_end(&spans, disk.len()));
        problems.extend(sanity::overlaps(&spans));
        if let Some(extended) = mbr.extended {
            let container = Span {
                number: extended.number,
                offset: extended.offset,
                size: extended.size,
                entry_at: extended.entry_at,
                content: Content::Unknown,
            };
            // Only the logical partitions inside hold data, and each is checked itself.
            problems.extend(
                sanity::past_end(&[container], disk.len())
                    .into_iter()
                    .map(|p| TableProblem {
                        incomplete: false,
                        ..p
                    }),
            );
            problems.extend(sanity::container_overlaps(&container, &spans));
        }
        let table = DiskTable {
            name: None,
            scheme: Scheme::Mbr,
            sector_size: 512,
            hybrid_mbr: false,
            problems,
        };
        return Ok((table, volumes));
    }
    let table = DiskTable {
        name: None,
        scheme: Scheme::None,
        sector_size: 512,
        hybrid_mbr: false,
        problems: Vec::new(),
    };
    let volume = Volume {
        id: "disk".into(),
        disk: 0,
        scheme: Scheme::None,
        partition: None,
        type_id: None,
        name: None,
        part_uuid: None,
        offset: 0,
        size: disk.len(),
        problem: unreadable.or_else(|| {
            (whole.content == Content::Unknown)
                .then(|| "no partition table and no recognised filesystem".to_string())
        }),
        identity: whole,
        source: Some(Arc::clone(disk)),
    };
    Ok((table, vec![volume]))
}

/// A FAT boot sector that also validates as an MBR: trust the FAT reading when its total
/// sector count matches the disk.
fn looks_like_bare_fat(disk: &dyn BlockSource) -> bool {
    let mut boot = [0u8; 40];
    if disk.read_exact_at(0, &mut boot).is_err() {
        return false;
    }
    let small = boot
        .get(19..21)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes);
    let large = boot
        .get(32..36)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    let sectors = match (small, large) {
        (Some(0), Some(large)) => u64::from(large),
        (Some(small), _) => u64::from(small),
        _ => return false,
    };
    sectors > 0 && sectors.saturating_mul(512) <= disk.len()
}

/// What a range of the disk that is not a volume holds (a hybrid MBR entry, a partition
/// only the backup GPT lists), as a span for the sanity checks. A range outside the disk,
/// or one whose header cannot be read, counts as holding nothing recognised: what lies
/// there is reported by the checks of the volumes that do cover it.
fn probed_span(
    disk: &Arc<dyn BlockSource>,
    number: u32,
    offset: u64,
    size: u64,
    entry_at: u64,
) -> Span {
    let content = Window::new(Arc::clone(disk), offset, size)
        .and_then(|window| probe::identify(&window).ok())
        .map_or(Content::Unknown, |identity| identity.content);
    Span {
        number,
        offset,
        size,
        entry_at,
        content,
    }
}

/// The volumes of a table's entries, and each as a span for the sanity checks.
fn volumes_from(
    disk: &Arc<dyn BlockSource>,
    scheme: Scheme,
    entries: Vec<PartitionEntry>,
) -> (Vec<Volume>, Vec<Span>) {
    entries
        .into_iter()
        .map(|entry| {
            let source = if entry.problem.is_none() {
                Window::new(Arc::clone(disk), entry.offset, entry.size)
                    .map(|w| Arc::new(w) as Arc<dyn BlockSource>)
            } else {
                None
            };
            let (identity, unreadable) = match source.as_deref().map(probe::identify) {
                Some(Ok(identity)) => (identity, None),
                Some(Err(failure)) => (Identity::unknown(), Some(failure.to_string())),
                None => (Identity::unknown(), None),
            };
            let span = Span {
                number: entry.number,
                offset: entry.offset,
                size: entry.size,
                entry_at: entry.entry_at,
                content: identity.content,
            };
            let volume = Volume {
                id: format!("p{}", entry.number),
                disk: 0,
                scheme,
                partition: Some(entry.number),
                type_id: Some(entry.type_id),
                name: entry.name,
                part_uuid: entry.part_uuid,
                offset: entry.offset,
                size: entry.size,
                identity,
                source,
                problem: entry.problem.or(unreadable),
            };
            (volume, span)
        })
        .unzip()
}
