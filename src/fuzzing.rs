//! One entry point that drives every parser from arbitrary bytes: used by the cargo-fuzz
//! targets in fuzz/ and by the stable-toolchain mutation and corpus-replay tests.
//!
//! It must return for every input: any panic or hang it exposes is a bug in a parser.

use std::sync::Arc;

use crate::filesystems::{ext4::Ext4Fs, fat::FatFs, xfs::XfsFs, Filesystem};
use crate::guest;
use crate::image::{BlockSource, ContainerFormat, MemoryImage, OpenedImage};
use crate::volumes;
use crate::walk::{walk, WalkOptions};

/// Hashing stays on, bounded so a crafted multi-terabyte sparse file cannot stall a run.
const FUZZ_WALK: WalkOptions = WalkOptions {
    sha256_up_to: Some(64 << 20),
    progress: None,
    max_entries: None,
};

/// Treats `bytes` as a whole disk: partition tables, volume probes, filesystems, the
/// guest tree and a hashing walk.
pub fn exercise_disk(bytes: &[u8]) -> usize {
    let disk: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes.to_vec()));
    let Ok(layout) = volumes::discover(&disk) else {
        return 0;
    };
    let image = OpenedImage {
        format: ContainerFormat::Raw,
        disk,
        allocated_size: None,
        info: Default::default(),
    };
    let disk = guest::GuestDisk {
        path: "fuzz".into(),
        image,
    };
    let guest = guest::assemble(vec![disk], "fuzz", layout);
    let _ = guest.tree.resolve(b"/etc/../etc/./os-release", true);
    walk(&guest.tree, FUZZ_WALK).entries.len()
}

/// Virtual disks of containers are read at most this far.
pub const CONTAINER_READ_LIMIT: u64 = 64 << 20;

/// Reads a container's virtual disk in 64 KiB chunks, up to `CONTAINER_READ_LIMIT`, as
/// the container fuzz targets and their corpus replays do; the bytes read without error.
pub fn read_whole_disk(disk: &dyn BlockSource) -> u64 {
    let end = disk.len().min(CONTAINER_READ_LIMIT);
    let mut buf = vec![0u8; 64 << 10];
    let (mut at, mut read) = (0u64, 0u64);
    while at < end {
        let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(0);
        let Some(chunk) = buf.get_mut(..n) else {
            break;
        };
        if disk.read_exact_at(at, chunk).is_ok() {
            read += n as u64;
        }
        at += n as u64;
    }
    read
}

/// Treats `bytes` as one filesystem volume, for each reader in turn.
pub fn exercise_filesystem(bytes: &[u8]) -> usize {
    let source: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes.to_vec()));
    let mut found = 0;
    if let Ok(fs) = Ext4Fs::open(Arc::clone(&source)) {
        found += walk_filesystem(Arc::new(fs));
    }
    if let Ok(fs) = XfsFs::open(Arc::clone(&source)) {
        found += walk_filesystem(Arc::new(fs));
    }
    if let Ok(fs) = FatFs::open(source) {
        found += walk_filesystem(Arc::new(fs));
    }
    found
}

/// Treats `bytes` as a sparse ext2/3/4 volume (the encoding of `exercise_xfs`) and walks
/// it: the smallest journal mke2fs makes is 1 MiB, too large to fuzz as raw bytes, and a
/// journal still to be replayed drives the descriptor, revoke, commit and tag readers.
pub fn exercise_ext4_journal(bytes: &[u8]) -> usize {
    Ext4Fs::open(sparse_volume(bytes))
        .map(|fs| walk_filesystem(Arc::new(fs)))
        .unwrap_or(0)
}

/// Virtual volumes for `exercise_xfs` and `exercise_ext4_journal` are at most this large (mkfs.xfs's smallest test
/// filesystems are 16 MiB).
const SPARSE_MAX_SECTORS: u32 = 1 << 17;
const SECTOR: usize = 512;

/// Treats `bytes` as a sparse XFS volume and walks it. XFS volumes are megabytes of
/// mostly zeros, too large for a fuzzer to mutate whole, so the input encodes only the
/// sectors that are not zero: a little-endian u32 volume length in sectors (capped),
/// then records of a little-endian u32 sector number and 512 bytes. A record past the
/// volume is ignored; a short last record is zero-padded.
pub fn exercise_xfs(bytes: &[u8]) -> usize {
    let source = sparse_volume(bytes);
    XfsFs::open(source)
        .map(|fs| walk_filesystem(Arc::new(fs)))
        .unwrap_or(0)
}

fn sparse_volume(bytes: &[u8]) -> Arc<dyn BlockSource> {
    let sectors = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
        .min(SPARSE_MAX_SECTORS);
    let mut sparse = crate::image::SparseMemory::new(u64::from(sectors) * SECTOR as u64);
    for record in bytes.get(4..).unwrap_or(&[]).chunks(4 + SECTOR) {
        let sector = record
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(u32::MAX, u32::from_le_bytes);
        if sector < sectors {
            sparse.write(
                u64::from(sector) * SECTOR as u64,
                record.get(4..).unwrap_or(&[]),
            );
        }
    }
    Arc::new(sparse)
}

/// Treats `bytes` as one LVM2 physical volume (label, metadata area, metadata text) and
/// as a metadata text on its own; reads the start of every logical volume found.
pub fn exercise_lvm(bytes: &[u8]) -> usize {
    let source: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes.to_vec()));
    let mut pv = [volumes::Volume {
        id: "p1".into(),
        disk: 0,
        scheme: volumes::Scheme::Gpt,
        partition: Some(1),
        type_id: None,
        name: None,
        part_uuid: None,
        offset: 0,
        size: source.len(),
        identity: volumes::Identity {
            content: volumes::Content::Lvm2Member,
            label: None,
            uuid: None,
        },
        source: Some(source),
        problem: None,
    }];
    let (lvs, _) = volumes::lvm::logical_volumes(&mut pv);
    let mut head = [0u8; 4096];
    let readable = lvs
        .iter()
        .filter_map(|lv| lv.source.as_ref())
        .filter(|source| {
            let n = head.len().min(usize::try_from(source.len()).unwrap_or(0));
            head.get_mut(..n)
                .is_some_and(|buf| source.read_exact_at(0, buf).is_ok())
        })
        .count();
    lvs.len() + readable + volumes::lvm::parse_metadata(bytes)
}

/// Walks every node of one filesystem with hashing on, as the walk of a scan would.
pub fn walk_filesystem(fs: Arc<dyn Filesystem>) -> usize {
    // The free-space maps and journal ranges the residue pass reads (areas only: the
    // bytes in them are the secrets engine's, fuzzed on its own).
    let areas = match fs.residue_areas() {
        Some(Ok(areas)) => {
            // And the former paths of the first free bytes, read back from the journal.
            let starts: Vec<u64> = areas
                .iter()
                .flat_map(|a| a.ranges.iter().take(4).map(|r| r.start))
                .collect();
            let named = fs.former_paths(&starts).iter().flatten().count();
            areas.iter().map(|a| a.ranges.len()).sum::<usize>() + named
        }
        _ => 0,
    };
    let tree = guest::Tree::single(fs, 0, crate::image::Placement::default());
    walk(&tree, FUZZ_WALK).entries.len() + areas
}

/// Guest configuration files that fuzzing fills from one input, split at `\0\0` markers,
/// in this order.
const CONFIG_PATHS: [&str; 12] = [
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d/10-a.conf",
    "/etc/ssh/sshd_config.d/20-b.conf",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/inetd.conf",
    "/etc/xinetd.conf",
    "/etc/xinetd.d/svc",
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/etc/systemd/system-preset/50-x.preset",
    "/etc/os-release",
];

/// Splits `bytes` into guest configuration files and runs every fact reader on them; the
/// whole input is also read as a rule pack.
pub fn exercise_configs(bytes: &[u8]) -> usize {
    let mut files = crate::facts::memory::MemoryFiles::default();
    files.add("/usr/sbin/sshd", b"");
    for (path, content) in CONFIG_PATHS.iter().zip(split_files(bytes)) {
        files.add(path, content);
    }
    let mut found = 0;
    if let Ok(Some(config)) = crate::facts::sshd::read(&files) {
        found += config.occurrences.len() + config.authorized_keys_files().len();
        let _ = config.effective("passwordauthentication");
    }
    if let Ok(Some(accounts)) = crate::facts::accounts::read(&files) {
        found += accounts.passwords().len();
    }
    if let Ok(services) = crate::facts::services::read(&files) {
        found += services.enabled.len();
    }
    if let Ok(packages) = crate::facts::packages::read(&files) {
        found += packages.installed.len();
    }
    found + exercise_rule_pack(bytes) + exercise_gate_inputs(bytes)
}

/// Reads `bytes` as a waiver file and as a baseline report: both come from the user's
/// repository, but a crafted one must still only ever be an error.
pub fn exercise_gate_inputs(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let waivers = match crate::gate::waivers::parse("fuzz.yaml", &text) {
        Ok(waivers) => waivers
            .iter()
            .filter(|w| {
                w.covers(
                    Some(&crate::guest::GuestPath::from("/etc/shadow")),
                    Some("root"),
                )
            })
            .count(),
        Err(errors) => errors.len(),
    };
    let baseline = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|report| crate::gate::baseline::from_value("fuzz.json", &report).ok())
        .map_or(0, |b| b.images.iter().map(|i| i.findings.len()).sum());
    waivers + baseline
}

/// The pieces of `bytes` between `\0\0` markers.
fn split_files(bytes: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(2).position(|w| w == b"\0\0") {
        pieces.push(rest.get(..at).unwrap_or_default());
        rest = rest.get(at.saturating_add(2)..).unwrap_or_default();
    }
    pieces.push(rest);
    pieces
}

/// Reads `bytes` as a YAML rule pack.
pub fn exercise_rule_pack(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    match crate::rules::pack::parse("fuzz.yaml", &text) {
        Ok(rules) => rules.len(),
        Err(errors) => errors.len(),
    }
}
