//! The guest: the operating system's view of the disk, assembled offline.
//!
//! Owns opening each volume's filesystem, finding the OS root, joining the other volumes
//! at the paths the guest's /etc/fstab gives them, and identifying the OS. It reports
//! every volume it could not use and every fstab entry it could not honour.

pub mod fstab;
pub mod os_release;
mod path;
pub mod tree;

use std::io::Read;
use std::sync::Arc;

use crate::checksums::ChecksumPolicy;
use crate::filesystems::ext4::Ext4Fs;
use crate::filesystems::fat::FatFs;
use crate::filesystems::xfs::XfsFs;
use crate::filesystems::{FileKind, Filesystem};
use crate::image::{BlockSource, OpenedImage, Placement};
use crate::volumes::{Content, Layout, Volume};
use fstab::{DeviceSpec, FstabEntry};
pub use os_release::OsRelease;
pub use path::GuestPath;
pub use tree::{display_path, Located, Mount, ResolveError, Tree};

/// Why a guest could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The image argument itself is malformed (an empty part of `DISK+DISK`): a usage error.
    #[error("{0}")]
    Argument(String),
    /// A disk image could not be opened.
    #[error(transparent)]
    Image(#[from] crate::image::OpenError),
    /// A disk's partition table could not be read.
    #[error("{image}: {source}")]
    Table {
        image: String,
        source: crate::volumes::TableError,
    },
}

/// How a guest's disks are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Whether checksum mismatches are refused (the default) or let through and counted.
    pub checksums: ChecksumPolicy,
    /// The most bytes a disk given as `-` (standard input) may hold.
    pub stdin_max_size: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            checksums: ChecksumPolicy::default(),
            stdin_max_size: crate::image::DEFAULT_STDIN_MAX,
        }
    }
}

/// Opens the image read-only (or each of the disks an argument joins with `+`), finds
/// the volumes and assembles the guest, verifying every checksum.
pub fn open(argument: &std::path::Path) -> Result<Guest, OpenError> {
    open_with(argument, OpenOptions::default())
}

/// Like `open`, with the given options.
pub fn open_with(argument: &std::path::Path, options: OpenOptions) -> Result<Guest, OpenError> {
    let name = argument.display().to_string();
    let args = crate::image::disks::split_image_argument(argument)
        .map_err(|e| OpenError::Argument(e.to_string()))?;
    let mut disks = Vec::with_capacity(args.len());
    let mut inputs = Vec::with_capacity(args.len());
    for arg in args {
        let opened =
            crate::image::open_argument(&arg.path, options.checksums, options.stdin_max_size)?;
        inputs.push(crate::volumes::DiskInput {
            name: arg.name,
            source: Arc::clone(&opened.disk),
        });
        disks.push(GuestDisk {
            path: arg.path.display().to_string(),
            image: opened,
        });
    }
    let layout =
        crate::volumes::discover_disks_with(&inputs, options.checksums).map_err(|source| {
            OpenError::Table {
                image: name.clone(),
                source,
            }
        })?;
    if let Some((disk, shape)) = not_a_disk(&disks, &layout) {
        return Err(OpenError::Image(crate::image::OpenError::NotAnImage {
            path: disk.path.clone(),
            shape,
        }));
    }
    Ok(assemble_with(disks, &name, layout, options))
}

/// The first disk in which nothing at all was recognised (no container, no partition
/// table, no filesystem or volume signature) and whose shape rules out a disk (too short,
/// ragged, or text), with why. A disk-shaped file that holds something unknown is read,
/// and left incomplete, never refused.
fn not_a_disk<'a>(
    disks: &'a [GuestDisk],
    layout: &Layout,
) -> Option<(&'a GuestDisk, crate::image::NotDiskShape)> {
    disks.iter().enumerate().find_map(|(index, disk)| {
        let table = layout.disks.get(index)?;
        let nothing_found = disk.image.format == crate::image::ContainerFormat::Raw
            && table.scheme == crate::volumes::Scheme::None
            && layout
                .volumes
                .iter()
                .filter(|v| v.disk == index)
                .all(|v| v.identity.content == Content::Unknown);
        if !nothing_found {
            return None;
        }
        crate::image::not_disk_shaped(disk.image.disk.as_ref()).map(|shape| (disk, shape))
    })
}

/// Why a guest read with `ChecksumPolicy::Ignore` is never complete.
pub const CHECKSUMS_NOT_ENFORCED: &str =
    "checksums are not enforced (--ignore-checksums): what was read is not proven intact";

/// Largest /etc/fstab or os-release amiscan will read; real ones are a few KiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The type GUID of a GRUB BIOS boot partition, which holds boot code and no filesystem.
const BIOS_BOOT_GUID: &str = "21686148-6449-6e6f-744e-656564454649";

/// What became of one volume.
#[derive(Debug, Clone)]
pub struct VolumeState {
    pub volume: Volume,
    pub fs: Option<Arc<dyn Filesystem>>,
    /// Guest path the volume is mounted at, if it is part of the guest tree.
    pub mount_point: Option<Vec<u8>>,
    /// Why the volume's files are not part of the scan, if they are not.
    pub not_scanned: Option<String>,
    /// True when the volume may hold files that went unread: the result is incomplete.
    pub incomplete: bool,
    /// Why a volume that was read may still be incomplete (a log not replayed).
    pub partial: Option<String>,
}

/// A problem met while assembling the guest, with whether it leaves the result incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What the note is about, so a report can group notes by cause without reading text.
    pub kind: NoteKind,
    pub message: String,
    pub incomplete: bool,
    /// The guest path left unscanned, when the note is about a mount.
    pub mount_point: Option<Vec<u8>>,
}

/// The cause a guest note reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoteKind {
    /// A partition-table problem (`volumes::sanity`); some hide data.
    PartitionTable,
    /// `--ignore-checksums`: what was read may be damaged.
    ChecksumsIgnored,
    /// A volume was read but may be missing recent changes (an XFS log not replayed).
    VolumePartial,
    /// No volume holds an operating-system root.
    NoOsRoot,
    /// /etc/fstab exists but could not be read, so no other volume is mounted.
    FstabUnreadable,
    /// An fstab entry names a device that is no volume of the image.
    MountMissing,
    /// An fstab entry names a volume that could not be read.
    MountNotScanned,
    /// An fstab mount point or volume given twice; the first entry is used.
    MountDuplicate,
}

impl NoteKind {
    /// The kind's name in reports (kebab-case, stable).
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::PartitionTable => "partition-table",
            NoteKind::ChecksumsIgnored => "checksums-ignored",
            NoteKind::VolumePartial => "volume-partial",
            NoteKind::NoOsRoot => "no-os-root",
            NoteKind::FstabUnreadable => "fstab-unreadable",
            NoteKind::MountMissing => "mount-missing",
            NoteKind::MountNotScanned => "mount-not-scanned",
            NoteKind::MountDuplicate => "mount-duplicate",
        }
    }
}

/// One disk of the guest, opened.
#[derive(Debug, Clone)]
pub struct GuestDisk {
    /// The image file as the user named it.
    pub path: String,
    pub image: OpenedImage,
}

/// The assembled guest.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The guest's disks in the order given; the first is the one it boots from.
    pub disks: Vec<GuestDisk>,
    /// The image argument as given (`root.img`, or `root.img+data.img` for several disks).
    pub image_name: String,
    pub layout: Layout,
    pub volumes: Vec<VolumeState>,
    pub tree: Tree,
    pub os: Option<OsRelease>,
    /// Index of the volume holding the OS root, if one was found.
    pub root_volume: Option<usize>,
    /// Why no operating-system root was found, when none was: the image is then
    /// incomplete in every command, whatever is shown at `/`.
    pub no_os_root: Option<String>,
    /// Whether checksums were enforced while reading this guest.
    pub checksums: ChecksumPolicy,
    pub notes: Vec<Note>,
}

impl Guest {
    /// The boot disk's image.
    pub fn first_image(&self) -> Option<&OpenedImage> {
        self.disks.first().map(|d| &d.image)
    }

    /// The bytes of all the guest's disks together.
    pub fn virtual_size(&self) -> u64 {
        self.disks
            .iter()
            .map(|d| d.image.disk.len())
            .fold(0, u64::saturating_add)
    }

    /// How many checksum mismatches the filesystems let through so far (only under
    /// `ChecksumPolicy::Ignore`; they count as they read).
    pub fn ignored_checksums(&self) -> u64 {
        let containers = self.disks.iter().map(|d| d.image.info.checksums_ignored);
        self.volumes
            .iter()
            .filter_map(|v| v.fs.as_ref())
            .map(|fs| fs.ignored_checksums())
            .chain(containers)
            .fold(0, u64::saturating_add)
    }

    /// True when some volume or mount could not be read, so a clean result proves nothing.
    pub fn incomplete(&self) -> bool {
        self.volumes.iter().any(|v| v.incomplete) || self.notes.iter().any(|n| n.incomplete)
    }

    /// Guest paths where the guest mounts something amiscan could not read, with why.
    pub fn unscanned_mount_points(&self) -> Vec<(&[u8], &str)> {
        let volumes = self
            .volumes
            .iter()
            .filter(|v| v.fs.is_none())
            .filter_map(|v| {
                let path = v.mount_point.as_deref()?;
                Some((path, v.not_scanned.as_deref().unwrap_or("unreadable")))
            });
        let missing = self
            .notes
            .iter()
            .filter(|n| n.incomplete)
            .filter_map(|n| Some((n.mount_point.as_deref()?, n.message.as_str())));
        volumes.chain(missing).collect()
    }

    /// Guest paths where the guest mounts a volume that was read but may be incomplete
    /// (an XFS log that was not replayed), with why.
    pub fn partial_mount_points(&self) -> Vec<(&[u8], &str)> {
        self.volumes
            .iter()
            .filter_map(|v| Some((v.mount_point.as_deref()?, v.partial.as_deref()?)))
            .collect()
    }

    /// A tree holding only one volume at `/`, for looking inside volumes the guest does not
    /// mount. `id` is a volume id such as `p3`.
    pub fn volume_tree(&self, id: &str) -> Option<Tree> {
        let (index, state) = self
            .volumes
            .iter()
            .enumerate()
            .find(|(_, v)| v.volume.id == id)?;
        let fs = state.fs.clone()?;
        Some(Tree::single(fs, index, state.volume.placement()))
    }
}

fn open_filesystem(
    volume: &Volume,
    checksums: ChecksumPolicy,
) -> Result<Arc<dyn Filesystem>, (String, bool)> {
    if let Some(problem) = &volume.problem {
        return Err((problem.clone(), true));
    }
    let Some(source) = volume.source.clone() else {
        return Err(("volume lies outside the disk".into(), true));
    };
    let opened: Result<Arc<dyn Filesystem>, _> = match volume.identity.content {
        Content::Ext2 | Content::Ext3 | Content::Ext4 => {
            Ext4Fs::open_with(source, checksums).map(|fs| Arc::new(fs) as Arc<dyn Filesystem>)
        }
        Content::Vfat => FatFs::open(source).map(|fs| Arc::new(fs) as Arc<dyn Filesystem>),
        Content::Xfs => {
            XfsFs::open_with(source, checksums).map(|fs| Arc::new(fs) as Arc<dyn Filesystem>)
        }
        Content::Swap => return Err(("swap space holds no files".into(), false)),
        Content::ExtJournal => {
            return Err((
                crate::volumes::probe::describe_ext_journal(source.as_ref()),
                false,
            ))
        }
        Content::CryptoLuks => {
            return Err((
                "encrypted (LUKS): not scanned; amiscan reads no encrypted volume".into(),
                true,
            ))
        }
        Content::Lvm2Member => {
            return Err((
                "LVM2 physical volume: its logical volumes are listed as VG/LV".into(),
                false,
            ))
        }
        Content::Unknown => {
            let bios_boot = volume
                .type_id
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(BIOS_BOOT_GUID));
            if bios_boot {
                return Err((
                    "BIOS boot partition: boot code, no filesystem".into(),
                    false,
                ));
            }
            // Unrecognised bytes may be a filesystem amiscan does not know: unread data,
            // so the result is incomplete. A volume that is all zeros where sampled is
            // taken as empty.
            return Err(match sample_for_data(source.as_ref()) {
                Ok(None) => (
                    "no recognised filesystem; empty where sampled".into(),
                    false,
                ),
                Ok(Some(offset)) => (
                    format!(
                        "no recognised filesystem, but it holds data (non-zero bytes at byte \
                         {} of the image): not read",
                        volume.placement().disk_offset(offset)
                    ),
                    true,
                ),
                Err(e) => (
                    format!("no recognised filesystem, and it cannot be read: {e}"),
                    true,
                ),
            });
        }
        other => {
            return Err((
                format!("{} volumes are not readable yet", other.as_str()),
                true,
            ))
        }
    };
    let kind = volume.identity.content.as_str();
    let fs = opened.map_err(|e| {
        let at = e
            .offset()
            .map(|o| format!(" (byte {} of the image)", volume.placement().disk_offset(o)))
            .unwrap_or_default();
        (format!("{kind}: {e}{at}"), true)
    })?;
    // A root that is not a directory holds nothing to walk: taking it for an empty
    // filesystem would pass an image that was never read.
    match fs.metadata(fs.root()) {
        Ok(meta) if meta.kind == FileKind::Dir => Ok(fs),
        Ok(meta) => Err((
            format!(
                "{kind}: the root directory (inode {}) is a {}, not a directory",
                fs.root(),
                meta.kind.as_str()
            ),
            true,
        )),
        Err(e) => Err((
            format!(
                "{kind}: the root directory cannot be read: {}",
                e.rebase(&volume.placement())
            ),
            true,
        )),
    }
}

/// How much of an unrecognised volume is sampled for data: the first MiB (where every
/// filesystem and container keeps its headers) and `DATA_SAMPLES` windows spread over
/// the rest, so a multi-terabyte volume costs a few MiB of reads.
const DATA_SAMPLE_HEAD: u64 = 1 << 20;
const DATA_SAMPLES: u64 = 16;
const DATA_SAMPLE_WINDOW: u64 = 64 << 10;

/// The volume offset of the first non-zero byte found in the sampled windows, if any.
fn sample_for_data(source: &dyn BlockSource) -> std::io::Result<Option<u64>> {
    let len = source.len();
    let mut windows = vec![(0, DATA_SAMPLE_HEAD.min(len))];
    for i in 1..=DATA_SAMPLES {
        let start = len / (DATA_SAMPLES + 1) * i;
        windows.push((start, DATA_SAMPLE_WINDOW.min(len - start)));
    }
    windows.push((
        len.saturating_sub(DATA_SAMPLE_WINDOW),
        DATA_SAMPLE_WINDOW.min(len),
    ));
    let mut buf = vec![0u8; DATA_SAMPLE_HEAD as usize];
    for (start, window) in windows {
        let Some(chunk) = buf.get_mut(..usize::try_from(window).unwrap_or(0)) else {
            continue;
        };
        source.read_exact_at(start, chunk)?;
        if let Some(at) = chunk.iter().position(|b| *b != 0) {
            return Ok(Some(start + at as u64));
        }
    }
    Ok(None)
}

/// Reads a regular file of at most 1 MiB from a tree, following symlinks inside it.
/// `Ok(None)` when the path does not lead to a regular file.
pub fn read_text(tree: &Tree, path: &[u8]) -> Result<Option<String>, ResolveError> {
    let located = match tree.resolve(path, true) {
        Ok(located) => located,
        Err(ResolveError::NotFound { .. } | ResolveError::NotADirectory { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(mount) = tree.mount(located.mount) else {
        return Ok(None);
    };
    let fs_error = |source: crate::filesystems::FsError| ResolveError::Fs {
        path: display_path(path),
        volume: mount.volume,
        source: source.rebase(&mount.offset),
    };
    let meta = mount.fs.metadata(located.node).map_err(fs_error)?;
    if meta.kind != FileKind::File {
        return Ok(None);
    }
    let reader = mount.fs.open(located.node).map_err(fs_error)?;
    let mut bytes = Vec::new();
    reader
        .take(MAX_CONFIG_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| ResolveError::Fs {
            path: display_path(path),
            volume: mount.volume,
            source: crate::filesystems::FsError::io("file contents", 0, e),
        })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn has_entry(fs: &Arc<dyn Filesystem>, dir: &[u8], name: &[u8]) -> bool {
    Tree::single(Arc::clone(fs), 0, Placement::default())
        .resolve(dir, true)
        .ok()
        .and_then(|dir| fs.lookup(dir.node, name).ok().flatten())
        .is_some()
}

/// Scores a filesystem as a candidate OS root: an os-release (in /etc or /usr/lib) and an
/// /etc/fstab each count. A score of 0 means no operating system was recognised on it.
fn root_score(fs: &Arc<dyn Filesystem>) -> u8 {
    u8::from(has_entry(fs, b"/etc", b"os-release"))
        + u8::from(has_entry(fs, b"/etc", b"fstab"))
        + u8::from(has_entry(fs, b"/usr/lib", b"os-release"))
}

/// Whether a volume may be taken as the guest's `/`. A vfat volume never is: it is an EFI
/// system partition or a data stick, and taking it for the root would judge a Linux
/// image's settings on a disk that holds none of them.
fn may_be_root(state: &VolumeState) -> bool {
    state.fs.is_some() && state.volume.identity.content != Content::Vfat
}

/// The note that makes an image without an operating-system root incomplete: rules about
/// the OS's settings cannot be judged on it, and passing them would prove nothing.
fn no_os_root_note(volumes: &[VolumeState], shown: Option<usize>) -> Note {
    const MARKERS: &str = "/etc/os-release, /usr/lib/os-release or /etc/fstab";
    let message = match shown.and_then(|i| volumes.get(i)) {
        Some(state) => format!(
            "no operating-system root found: no volume holds {MARKERS}; volume {} ({}) is \
             shown at / and its files are scanned, but the operating system's settings \
             cannot be judged",
            state.volume.id,
            state.volume.identity.content.as_str()
        ),
        None => {
            let vfat = volumes
                .iter()
                .filter(|v| v.fs.is_some() && !may_be_root(v))
                .map(|v| v.volume.id.as_str())
                .collect::<Vec<_>>();
            let also = if vfat.is_empty() {
                String::new()
            } else {
                format!(
                    " (vfat volume {} is never taken as the root: use --volume to look inside)",
                    vfat.join(", ")
                )
            };
            format!("no operating-system root found: no readable Linux filesystem{also}")
        }
    };
    Note {
        kind: NoteKind::NoOsRoot,
        message,
        incomplete: true,
        mount_point: None,
    }
}

/// Which volume an fstab device names.
fn match_device(entry: &FstabEntry, states: &[VolumeState], layout: &Layout) -> Option<usize> {
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    let found = |pred: &dyn Fn(&Volume) -> bool| states.iter().position(|s| pred(&s.volume));
    match &entry.device {
        DeviceSpec::Uuid(u) => found(&|v| eq(&v.identity.uuid, u)),
        DeviceSpec::Label(l) => found(&|v| v.identity.label.as_deref() == Some(l.as_str())),
        DeviceSpec::PartUuid(u) => found(&|v| eq(&v.part_uuid, u)),
        DeviceSpec::PartLabel(l) => found(&|v| v.name.as_deref() == Some(l.as_str())),
        DeviceSpec::Kernel(name) => {
            let (disk, part) = fstab::split_kernel_name(name)?;
            let disk = kernel_disk_index(&disk, layout)?;
            let table = layout.disks.get(disk)?;
            let on_disk = |v: &Volume| v.disk == disk && v.scheme != crate::volumes::Scheme::Lvm;
            match part {
                None if table.scheme == crate::volumes::Scheme::None => found(&on_disk),
                None => None,
                Some(n) => found(&|v| on_disk(v) && v.partition == Some(n)),
            }
        }
        DeviceSpec::LogicalVolume { vg, lv } => {
            let id = format!("{vg}/{lv}");
            found(&|v| v.scheme == crate::volumes::Scheme::Lvm && v.id == id)
        }
        DeviceSpec::Other(_) => None,
    }
}

/// Which of the guest's disks a kernel disk name (`xvdb`, `nvme1n1`) means: the disk
/// given that name, else the one at the position the name's letter or number gives
/// (`sda`, `xvda`, `nvme0n1` are the first disk, `sdb`, `nvme1n1` the second).
fn kernel_disk_index(disk: &str, layout: &Layout) -> Option<usize> {
    if let Some(named) = layout
        .disks
        .iter()
        .position(|d| d.name.as_deref() == Some(disk))
    {
        return Some(named);
    }
    let lettered = ["xvd", "sd", "vd", "hd"]
        .iter()
        .find_map(|prefix| disk.strip_prefix(prefix))
        .and_then(|letter| match letter.as_bytes() {
            [l @ b'a'..=b'z'] => Some(usize::from(l - b'a')),
            _ => None,
        });
    let numbered = || {
        let number = disk
            .strip_prefix("nvme")
            .and_then(|rest| rest.strip_suffix("n1"))
            .or_else(|| disk.strip_prefix("mmcblk"))?;
        number.parse::<usize>().ok()
    };
    let index = lettered.or_else(numbered)?;
    (index < layout.disks.len()).then_some(index)
}

/// Normalises an fstab mount point to a guest path without trailing slashes or `.` parts.
fn normalise_mount_point(path: &str) -> Vec<u8> {
    let parts: Vec<Vec<u8>> = path
        .as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect();
    tree::join(&parts)
}

/// Opens every volume and assembles the guest's mount tree, verifying every checksum.
pub fn assemble(disks: Vec<GuestDisk>, image_name: &str, layout: Layout) -> Guest {
    assemble_with(disks, image_name, layout, OpenOptions::default())
}

/// Like `assemble`, with the given options.
pub fn assemble_with(
    disks: Vec<GuestDisk>,
    image_name: &str,
    layout: Layout,
    options: OpenOptions,
) -> Guest {
    // A partition table's problems come first; those that may hide data leave it incomplete.
    let mut notes: Vec<Note> = layout
        .disks
        .iter()
        .flat_map(|disk| disk.problems.iter().map(move |p| (disk, p)))
        .map(|(disk, problem)| Note {
            kind: NoteKind::PartitionTable,
            message: problem.note(disk.name.as_deref()),
            incomplete: problem.incomplete,
            mount_point: None,
        })
        .collect();
    if options.checksums == ChecksumPolicy::Ignore {
        // Whatever is read may be damaged: a clean result would prove nothing.
        notes.push(Note {
            kind: NoteKind::ChecksumsIgnored,
            message: CHECKSUMS_NOT_ENFORCED.into(),
            incomplete: true,
            mount_point: None,
        });
    }
    let mut volumes: Vec<VolumeState> = layout
        .volumes
        .iter()
        .map(|volume| match open_filesystem(volume, options.checksums) {
            Ok(fs) => {
                let partial = fs.incomplete_reason();
                if let Some(reason) = &partial {
                    notes.push(Note {
                        kind: NoteKind::VolumePartial,
                        message: format!("volume {}: {reason}", volume.id),
                        incomplete: true,
                        mount_point: None,
                    });
                }
                VolumeState {
                    volume: volume.clone(),
                    fs: Some(fs),
                    mount_point: None,
                    not_scanned: None,
                    incomplete: partial.is_some(),
                    partial,
                }
            }
            Err((reason, incomplete)) => VolumeState {
                volume: volume.clone(),
                fs: None,
                mount_point: None,
                not_scanned: Some(reason),
                incomplete,
                partial: None,
            },
        })
        .collect();

    // The OS root is the filesystem that looks most like one; the first wins a tie. A disk
    // with no OS still shows its first readable filesystem at `/`, but is incomplete.
    let best = volumes
        .iter()
        .enumerate()
        .filter(|(_, s)| may_be_root(s))
        .filter_map(|(i, s)| s.fs.as_ref().map(|fs| (i, root_score(fs))))
        .max_by(|(ia, sa), (ib, sb)| sa.cmp(sb).then(ib.cmp(ia)));
    let root_volume = best.map(|(i, _)| i);
    let no_os_root = best
        .is_none_or(|(_, score)| score == 0)
        .then(|| no_os_root_note(&volumes, root_volume));
    if let Some(note) = &no_os_root {
        notes.push(note.clone());
    }

    let mut mounts = Vec::new();
    let mut os = None;
    if let Some(root) = root_volume {
        if let Some(state) = volumes.get_mut(root) {
            state.mount_point = Some(b"/".to_vec());
        }
        let root_fs = volumes.get(root).and_then(|s| s.fs.clone());
        if let Some(fs) = root_fs {
            mounts.push(Mount {
                path: b"/".to_vec(),
                volume: root,
                offset: volumes
                    .get(root)
                    .map(|s| s.volume.placement())
                    .unwrap_or_default(),
                fs: Arc::clone(&fs),
            });
            let root_offset = volumes
                .get(root)
                .map(|s| s.volume.placement())
                .unwrap_or_default();
            let root_only = Tree::single(Arc::clone(&fs), root, root_offset);
            let fstab_text = match read_text(&root_only, b"/etc/fstab") {
                Ok(text) => text.unwrap_or_default(),
                // Without the fstab the other volumes cannot be placed: say so, fail closed.
                Err(e) => {
                    notes.push(Note {
                        kind: NoteKind::FstabUnreadable,
                        message: format!(
                            "/etc/fstab cannot be read ({e}); other volumes are not mounted"
                        ),
                        incomplete: true,
                        mount_point: None,
                    });
                    String::new()
                }
            };
            for entry in fstab::parse(&fstab_text) {
                mount_fstab_entry(&entry, &layout, &mut volumes, &mut mounts, &mut notes);
            }
        }
    }
    let tree = Tree::new(mounts);
    if root_volume.is_some() {
        os = read_text(&tree, b"/etc/os-release")
            .ok()
            .flatten()
            .or_else(|| read_text(&tree, b"/usr/lib/os-release").ok().flatten())
            .map(|text| os_release::parse(&text));
    }
    Guest {
        disks,
        image_name: image_name.to_string(),
        layout,
        volumes,
        tree,
        os,
        root_volume,
        no_os_root: no_os_root.map(|note| note.message),
        checksums: options.checksums,
        notes,
    }
}

fn mount_fstab_entry(
    entry: &FstabEntry,
    layout: &Layout,
    volumes: &mut [VolumeState],
    mounts: &mut Vec<Mount>,
    notes: &mut Vec<Note>,
) {
    if !entry.is_disk_mount() {
        return;
    }
    let path = normalise_mount_point(&entry.mount_point);
    if path == b"/" {
        return;
    }
    let Some(index) = match_device(entry, volumes, layout) else {
        let optional = entry.optional();
        notes.push(Note {
            kind: NoteKind::MountMissing,
            message: format!(
                "/etc/fstab line {}: {} for {} is not a volume of this image{}",
                entry.line,
                entry.raw_device,
                entry.mount_point,
                if optional {
                    " (the entry is nofail/noauto)"
                } else {
                    "; that part of the guest tree is not scanned"
                }
            ),
            incomplete: !optional,
            mount_point: Some(path),
        });
        return;
    };
    if mounts.iter().any(|m| m.path == path) {
        notes.push(Note {
            kind: NoteKind::MountDuplicate,
            message: format!(
                "/etc/fstab line {}: {} is mounted twice; the first entry is used",
                entry.line, entry.mount_point
            ),
            incomplete: false,
            mount_point: None,
        });
        return;
    }
    let Some(state) = volumes.get_mut(index) else {
        return;
    };
    match (&state.fs, &state.mount_point) {
        (Some(fs), None) => {
            mounts.push(Mount {
                path: path.clone(),
                volume: index,
                offset: state.volume.placement(),
                fs: Arc::clone(fs),
            });
            state.mount_point = Some(path);
        }
        (Some(_), Some(_)) => notes.push(Note {
            kind: NoteKind::MountDuplicate,
            message: format!(
                "/etc/fstab line {}: volume {} is already mounted; {} is not mounted again",
                entry.line, state.volume.id, entry.mount_point
            ),
            incomplete: false,
            mount_point: None,
        }),
        (None, _) => {
            state.mount_point = Some(path);
            notes.push(Note {
                kind: NoteKind::MountNotScanned,
                message: format!(
                    "/etc/fstab line {}: {} should hold volume {}, which is not scanned: {}",
                    entry.line,
                    entry.mount_point,
                    state.volume.id,
                    state.not_scanned.as_deref().unwrap_or("unreadable")
                ),
                incomplete: true,
                mount_point: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::{DiskTable, Scheme};

    fn layout(names: &[Option<&str>]) -> Layout {
        Layout {
            disks: names
                .iter()
                .map(|name| DiskTable {
                    name: name.map(str::to_string),
                    scheme: Scheme::Gpt,
                    sector_size: 512,
                    hybrid_mbr: false,
                    problems: Vec::new(),
                })
                .collect(),
            volumes: Vec::new(),
            volume_groups: Vec::new(),
        }
    }

    #[test]
    fn kernel_disk_names_count_from_the_first_disk() {
        let two = layout(&[Some("disk1"), Some("disk2")]);
        for (name, index) in [
            ("sda", Some(0)),
            ("xvda", Some(0)),
            ("vdb", Some(1)),
            ("hdb", Some(1)),
            ("nvme0n1", Some(0)),
            ("nvme1n1", Some(1)),
            ("mmcblk1", Some(1)),
            ("sdc", None),
            ("nvme2n1", None),
            ("sdaa", None),
            ("loop0", None),
        ] {
            assert_eq!(kernel_disk_index(name, &two), index, "{name}");
        }
        assert_eq!(kernel_disk_index("sdb", &layout(&[None])), None);
    }

    #[test]
    fn a_disk_given_a_name_answers_to_it_first() {
        let named = layout(&[Some("xvda"), Some("sdf")]);
        assert_eq!(kernel_disk_index("sdf", &named), Some(1));
        assert_eq!(kernel_disk_index("xvdb", &named), Some(1));
        assert_eq!(kernel_disk_index("xvda", &named), Some(0));
    }
}
