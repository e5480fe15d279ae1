//! Identifies what a volume holds from its magic bytes, with its label and UUID as blkid
//! reports them. Reads a few small headers; never parses a filesystem beyond them.

use crate::bytes::le32;
use std::cell::RefCell;

use crate::image::BlockSource;

/// What a volume holds, named as blkid names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Content {
    #[serde(rename = "ext2")]
    Ext2,
    #[serde(rename = "ext3")]
    Ext3,
    #[serde(rename = "ext4")]
    Ext4,
    /// An ext3/ext4 journal on a device of its own (`mkfs.ext4 -O journal_dev`): the log
    /// of another filesystem, holding no files.
    #[serde(rename = "jbd")]
    ExtJournal,
    #[serde(rename = "xfs")]
    Xfs,
    #[serde(rename = "vfat")]
    Vfat,
    #[serde(rename = "btrfs")]
    Btrfs,
    #[serde(rename = "swap")]
    Swap,
    #[serde(rename = "LVM2_member")]
    Lvm2Member,
    #[serde(rename = "crypto_LUKS")]
    CryptoLuks,
    #[serde(rename = "iso9660")]
    Iso9660,
    #[serde(rename = "unknown")]
    Unknown,
}

impl Content {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ext2 => "ext2",
            Self::Ext3 => "ext3",
            Self::Ext4 => "ext4",
            Self::ExtJournal => "jbd",
            Self::Xfs => "xfs",
            Self::Vfat => "vfat",
            Self::Btrfs => "btrfs",
            Self::Swap => "swap",
            Self::Lvm2Member => "LVM2_member",
            Self::CryptoLuks => "crypto_LUKS",
            Self::Iso9660 => "iso9660",
            Self::Unknown => "unknown",
        }
    }
}

/// A volume's content type and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub content: Content,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

impl Identity {
    pub fn unknown() -> Self {
        Self {
            content: Content::Unknown,
            label: None,
            uuid: None,
        }
    }
}

/// Reads small headers for the probes. A range past the end of the volume just means
/// "not this kind"; a read that fails inside the volume (a corrupt container, an I/O
/// error) is remembered, so that the volume is reported unreadable rather than unknown.
struct Reader<'a> {
    source: &'a dyn BlockSource,
    failure: RefCell<Option<ProbeError>>,
}

/// A header inside the volume that could not be read. The read's own error is kept
/// whole: beneath it may be the container's typed corruption (`ContainerError::beneath`).
#[derive(Debug, thiserror::Error)]
#[error("reading byte {offset} of the volume: {source}")]
pub struct ProbeError {
    pub offset: u64,
    pub source: std::io::Error,
}

impl Reader<'_> {
    fn at<const N: usize>(&self, offset: u64) -> Option<[u8; N]> {
        let inside = offset
            .checked_add(N as u64)
            .is_some_and(|end| end <= self.source.len());
        if !inside {
            return None;
        }
        let mut buf = [0u8; N];
        match self.source.read_exact_at(offset, &mut buf) {
            Ok(()) => Some(buf),
            Err(e) => {
                self.failure
                    .borrow_mut()
                    .get_or_insert(ProbeError { offset, source: e });
                None
            }
        }
    }
}

/// The standard 8-4-4-4-12 rendering of 16 bytes, as stored (big-endian fields).
pub fn uuid_string(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

/// A NUL-padded label field; `None` when empty.
fn label_from(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(bytes.get(..end).unwrap_or_default())
        .trim_end()
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// Identifies the volume: anything not recognised is `Unknown`; an error only when a
/// header could not be read, so nothing unreadable passes for "no filesystem".
pub fn identify(source: &dyn BlockSource) -> Result<Identity, ProbeError> {
    let r = Reader {
        source,
        failure: RefCell::new(None),
    };
    let found = probe_luks(&r)
        .or_else(|| probe_xfs(&r))
        .or_else(|| probe_ext(&r))
        .or_else(|| probe_btrfs(&r))
        .or_else(|| probe_lvm2(&r))
        .or_else(|| probe_swap(&r))
        .or_else(|| probe_iso9660(&r))
        .or_else(|| probe_vfat(&r));
    match (found, r.failure.into_inner()) {
        (Some(identity), _) => Ok(identity),
        (None, Some(failure)) => Err(failure),
        (None, None) => Ok(Identity::unknown()),
    }
}

fn probe_ext(r: &Reader<'_>) -> Option<Identity> {
    let sb: [u8; 256] = r.at(1024)?;
    if sb.get(0x38..0x3a)? != [0x53, 0xef] {
        return None;
    }
    let compat = le32(&sb, 0x5c);
    let incompat = le32(&sb, 0x60);
    let ro_compat = le32(&sb, 0x64);
    // An external journal carries an ext superblock too, but only to name itself: what
    // follows is a jbd2 log, not block groups (blkid calls it "jbd").
    const JOURNAL_DEV: u32 = 0x0008;
    // blkid's rule: anything ext3 cannot mount makes it ext4; a journal alone makes ext3.
    const EXT3_INCOMPAT: u32 = 0x0002 | 0x0004 | 0x0010; // filetype, recover, meta_bg
    const EXT3_RO_COMPAT: u32 = 0x0001 | 0x0002 | 0x0004; // sparse_super, large_file, btree_dir
    const HAS_JOURNAL: u32 = 0x0004;
    let content = if incompat & JOURNAL_DEV != 0 {
        Content::ExtJournal
    } else if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        Content::Ext4
    } else if compat & HAS_JOURNAL != 0 {
        Content::Ext3
    } else {
        Content::Ext2
    };
    let uuid: [u8; 16] = sb.get(0x68..0x78)?.try_into().ok()?;
    Some(Identity {
        content,
        label: label_from(sb.get(0x78..0x88)?),
        uuid: Some(uuid_string(&uuid)),
    })
}

/// What an external ext journal says of itself, for the volume's listing: the UUIDs of
/// the filesystems that use it, from the jbd2 superblock that follows the ext superblock
/// (`s_nr_users` at 0x40, 16-byte UUIDs from 0x100) in the block after the ext one. The count is checked against the
/// 48 slots the block has room for; an unreadable or foreign block just leaves them out.
pub fn describe_ext_journal(source: &dyn BlockSource) -> String {
    const NAME: &str = "ext4 external journal";
    const JBD2_MAGIC: u32 = 0xC03B_3998;
    const SUPERBLOCK_V2: u32 = 4;
    const MAX_USERS: usize = 48;
    let r = Reader {
        source,
        failure: RefCell::new(None),
    };
    let users = (|| {
        let sb: [u8; 256] = r.at(1024)?;
        let log_block_size = le32(&sb, 0x18);
        let block_size = 1024u64
            .checked_shl(log_block_size)
            .filter(|_| log_block_size <= 6)?;
        // The block after the one holding the ext superblock (e2fsprogs' rule).
        let at = if block_size == 1024 { 2048 } else { block_size };
        let jsb: [u8; 0x100 + 16 * MAX_USERS] = r.at(at)?;
        let be = |at: usize| Some(u32::from_be_bytes(jsb.get(at..at + 4)?.try_into().ok()?));
        if be(0)? != JBD2_MAGIC || be(4)? != SUPERBLOCK_V2 {
            return None;
        }
        let count = usize::try_from(be(0x40)?).ok()?.min(MAX_USERS);
        let uuids: Vec<String> = (0..count)
            .filter_map(|i| {
                let at = 0x100 + 16 * i;
                let uuid: [u8; 16] = jsb.get(at..at + 16)?.try_into().ok()?;
                Some(uuid_string(&uuid))
            })
            .collect();
        (!uuids.is_empty()).then(|| uuids.join(", "))
    })();
    match users {
        Some(uuids) => format!("{NAME} (for filesystem UUID {uuids}): holds no files"),
        None => format!("{NAME}: holds no files"),
    }
}

fn probe_xfs(r: &Reader<'_>) -> Option<Identity> {
    let sb: [u8; 120] = r.at(0)?;
    if sb.get(0..4)? != b"XFSB" {
        return None;
    }
    let uuid: [u8; 16] = sb.get(32..48)?.try_into().ok()?;
    Some(Identity {
        content: Content::Xfs,
        label: label_from(sb.get(108..120)?),
        uuid: Some(uuid_string(&uuid)),
    })
}

fn probe_btrfs(r: &Reader<'_>) -> Option<Identity> {
    let sb: [u8; 0x22b] = r.at(0x10000)?;
    if sb.get(0x40..0x48)? != b"_BHRfS_M" {
        return None;
    }
    let uuid: [u8; 16] = sb.get(0x20..0x30)?.try_into().ok()?;
    Some(Identity {
        content: Content::Btrfs,
        label: label_from(sb.get(0x12b..0x22b)?),
        uuid: Some(uuid_string(&uuid)),
    })
}

fn probe_swap(r: &Reader<'_>) -> Option<Identity> {
    // The signature sits at the end of the first page; 4 KiB pages cover real images.
    let magic: [u8; 10] = r.at(4096 - 10)?;
    if &magic != b"SWAPSPACE2" && &magic != b"SWAP-SPACE" {
        return None;
    }
    let header: [u8; 64] = r.at(1024)?;
    let uuid: [u8; 16] = header.get(12..28)?.try_into().ok()?;
    Some(Identity {
        content: Content::Swap,
        label: label_from(header.get(28..44)?),
        uuid: Some(uuid_string(&uuid)),
    })
}

fn probe_luks(r: &Reader<'_>) -> Option<Identity> {
    let header: [u8; 512] = r.at(0)?;
    if header.get(0..6)? != b"LUKS\xba\xbe" {
        return None;
    }
    Some(Identity {
        content: Content::CryptoLuks,
        label: None,
        uuid: label_from(header.get(168..208)?),
    })
}

fn probe_lvm2(r: &Reader<'_>) -> Option<Identity> {
    // The label may sit in any of the first four sectors.
    for sector in 0..4u64 {
        let label: [u8; 512] = r.at(sector * 512)?;
        if label.get(0..8)? != b"LABELONE" || label.get(24..32)? != b"LVM2 001" {
            continue;
        }
        let header_at = usize::try_from(le32(&label, 20)).ok()?;
        let raw = label.get(header_at..header_at.checked_add(32)?)?;
        let id = String::from_utf8_lossy(raw).to_string();
        // blkid shows the PV UUID as 6-4-4-4-4-4-6 groups.
        let groups = [6, 4, 4, 4, 4, 4, 6];
        let mut parts = Vec::new();
        let mut at = 0usize;
        for len in groups {
            parts.push(id.get(at..at + len).unwrap_or_default().to_string());
            at += len;
        }
        return Some(Identity {
            content: Content::Lvm2Member,
            label: None,
            uuid: Some(parts.join("-")),
        });
    }
    None
}

fn probe_iso9660(r: &Reader<'_>) -> Option<Identity> {
    let descriptor: [u8; 848] = r.at(0x8000)?;
    if descriptor.get(1..6)? != b"CD001" {
        return None;
    }
    // blkid's UUID for iso9660 is a volume date (modification, else creation), written
    // YYYY-MM-DD-HH-MM-SS-CC from the 16 digits the descriptor stores.
    let date = |at: usize| {
        descriptor
            .get(at..at + 16)
            .filter(|d| d.iter().all(u8::is_ascii_digit) && d.iter().any(|b| *b != b'0'))
            .map(|d| {
                let d = String::from_utf8_lossy(d);
                let part = |r: std::ops::Range<usize>| d.get(r).unwrap_or_default().to_string();
                [
                    part(0..4),
                    part(4..6),
                    part(6..8),
                    part(8..10),
                    part(10..12),
                    part(12..14),
                    part(14..16),
                ]
                .join("-")
            })
    };
    Some(Identity {
        content: Content::Iso9660,
        label: label_from(descriptor.get(40..72)?),
        uuid: date(830).or_else(|| date(813)),
    })
}

fn probe_vfat(r: &Reader<'_>) -> Option<Identity> {
    let boot: [u8; 512] = r.at(0)?;
    if boot.get(510..512)? != [0x55, 0xaa] {
        return None;
    }
    let bytes_per_sector = u16::from_le_bytes(boot.get(11..13)?.try_into().ok()?);
    let sectors_per_cluster = *boot.get(13)?;
    let fat_count = *boot.get(16)?;
    let sane = matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && (1..=4).contains(&fat_count);
    if !sane {
        return None;
    }
    // FAT32 keeps the 16-bit FAT size zero and its extended BPB further on.
    let fat32 = u16::from_le_bytes(boot.get(22..24)?.try_into().ok()?) == 0;
    let (id_at, label_at) = if fat32 { (0x43, 0x47) } else { (0x27, 0x2b) };
    let serial = le32(&boot, id_at);
    let label = label_from(boot.get(label_at..label_at + 11)?).filter(|l| l != "NO NAME");
    Some(Identity {
        content: Content::Vfat,
        label,
        uuid: Some(format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff)),
    })
}
