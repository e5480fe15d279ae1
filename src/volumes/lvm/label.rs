//! The on-disk side of an LVM2 physical volume: the label (`LABELONE` in one of the first
//! four sectors) with its PV header, the metadata area header, and the newest committed
//! metadata text in the area's circular buffer. Every checksum is verified.

use crate::bytes::{le32, le64};
use crate::image::{BlockSource, CorruptKind};
use crate::volumes::TableError;

const SECTOR: u64 = 512;
const LABEL_SCAN_SECTORS: u64 = 4;
const LABEL_ID: &[u8; 8] = b"LABELONE";
const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// The label header's CRC covers the sector from this byte (after id, sector and crc).
const LABEL_CRC_FROM: usize = 20;
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const MDA_HEADER_SIZE: u64 = 512;
const MDA_CRC_FROM: usize = 4;
/// LVM's CRC-32 starts from this value and is never inverted (lib/misc/crc.h).
const INITIAL_CRC: u32 = 0xf597_a6cf;
/// Location lists end with a zero entry; real PVs have one or two of each.
const MAX_LOCATIONS: usize = 8;
/// Metadata text larger than this is refused: real VGs with hundreds of LVs stay far
/// below, and the bound keeps a crafted size from becoming an allocation.
const MAX_METADATA_TEXT: u64 = 16 << 20;

/// What one PV's label and metadata area hold.
#[derive(Debug, Clone)]
pub(crate) struct PvLabel {
    /// The PV UUID as stored: 32 characters without dashes.
    pub uuid: String,
    /// The newest committed metadata text of the first readable metadata area, if the PV
    /// has one (a PV may carry none and rely on the VG's other PVs).
    pub metadata: Option<Vec<u8>>,
}

fn error(
    kind: CorruptKind,
    offset: u64,
    structure: &'static str,
    detail: impl Into<String>,
) -> TableError {
    TableError::new(kind, structure, offset, detail)
}

/// LVM's CRC-32 (the reflected 0xEDB88320 polynomial, no final inversion).
pub(crate) fn lvm_crc(mut crc: u32, data: &[u8]) -> u32 {
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn read(
    pv: &dyn BlockSource,
    offset: u64,
    len: u64,
    structure: &'static str,
) -> Result<Vec<u8>, TableError> {
    let end = offset.checked_add(len).filter(|end| *end <= pv.len());
    if end.is_none() {
        return Err(error(
            CorruptKind::OutOfRange,
            offset,
            structure,
            format!("{len} bytes at byte {offset} run past the end of the volume"),
        ));
    }
    let size = usize::try_from(len)
        .map_err(|_| error(CorruptKind::TooLarge, offset, structure, "too large"))?;
    let mut buf = vec![0u8; size];
    pv.read_exact_at(offset, &mut buf).map_err(|e| {
        error(
            CorruptKind::Unreadable,
            offset,
            structure,
            format!("read failed: {e}"),
        )
    })?;
    Ok(buf)
}

/// Reads and checks the label, the PV header and the newest metadata text.
pub(crate) fn read_pv(pv: &dyn BlockSource) -> Result<PvLabel, TableError> {
    let (label_at, sector) = (0..LABEL_SCAN_SECTORS)
        .find_map(|n| {
            let sector = read(pv, n * SECTOR, SECTOR, "LVM2 label").ok()?;
            (sector.get(..8) == Some(LABEL_ID.as_slice())).then_some((n * SECTOR, sector))
        })
        .ok_or_else(|| {
            error(
                CorruptKind::Magic,
                0,
                "LVM2 label",
                "no LABELONE in the first four sectors",
            )
        })?;
    let stored = le32(&sector, 16);
    let computed = lvm_crc(INITIAL_CRC, sector.get(LABEL_CRC_FROM..).unwrap_or(&[]));
    if stored != computed {
        return Err(error(
            CorruptKind::Checksum,
            label_at + 16,
            "LVM2 label",
            format!("CRC {stored:#010x} does not match the sector ({computed:#010x})"),
        ));
    }
    if le64(&sector, 8) != label_at / SECTOR {
        return Err(error(
            CorruptKind::Invalid,
            label_at + 8,
            "LVM2 label",
            "records another sector number",
        ));
    }
    if sector.get(24..32) != Some(LABEL_TYPE.as_slice()) {
        return Err(error(
            CorruptKind::Magic,
            label_at + 24,
            "LVM2 label",
            "not an LVM2 001 label",
        ));
    }
    let header_at = usize::try_from(le32(&sector, 20)).unwrap_or(usize::MAX);
    let header = sector
        .get(header_at..)
        .filter(|h| h.len() >= 40)
        .ok_or_else(|| {
            error(
                CorruptKind::OutOfRange,
                label_at + 20,
                "LVM2 PV header",
                "lies outside the label sector",
            )
        })?;
    let uuid_bytes = header.get(..32).unwrap_or(&[]);
    if !uuid_bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(error(
            CorruptKind::Invalid,
            label_at + header_at as u64,
            "LVM2 PV header",
            "PV UUID is not alphanumeric",
        ));
    }
    let uuid = String::from_utf8_lossy(uuid_bytes).into_owned();
    // Two zero-terminated location lists follow: data areas, then metadata areas.
    let mut at = 40usize;
    let mut lists: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            let offset = le64(header, at);
            let size = le64(header, at + 8);
            if header.get(at..at + 16).is_none() || list.len() > MAX_LOCATIONS {
                return Err(error(
                    CorruptKind::OutOfRange,
                    label_at + (header_at + at) as u64,
                    "LVM2 PV header",
                    "location list does not end inside the label sector",
                ));
            }
            at += 16;
            if offset == 0 && size == 0 {
                break;
            }
            list.push((offset, size));
        }
    }
    let [_, metadata_areas] = lists;
    let mut metadata = None;
    let mut failure = None;
    for (offset, size) in metadata_areas {
        match read_metadata_area(pv, offset, size) {
            Ok(text) => {
                metadata = Some(text);
                break;
            }
            Err(e) => failure = Some(e),
        }
    }
    if let (None, Some(e)) = (&metadata, failure) {
        return Err(e);
    }
    Ok(PvLabel { uuid, metadata })
}

/// Reads a metadata area's header and its committed text, unwrapping the circular buffer.
fn read_metadata_area(pv: &dyn BlockSource, start: u64, size: u64) -> Result<Vec<u8>, TableError> {
    const WHAT: &str = "LVM2 metadata area header";
    let header = read(pv, start, MDA_HEADER_SIZE, WHAT)?;
    let stored = le32(&header, 0);
    let computed = lvm_crc(INITIAL_CRC, header.get(MDA_CRC_FROM..).unwrap_or(&[]));
    if stored != computed {
        return Err(error(
            CorruptKind::Checksum,
            start,
            WHAT,
            format!("CRC {stored:#010x} does not match the header ({computed:#010x})"),
        ));
    }
    if header.get(4..20) != Some(MDA_MAGIC.as_slice()) {
        return Err(error(CorruptKind::Magic, start + 4, WHAT, "bad magic"));
    }
    if le32(&header, 20) != 1 {
        return Err(error(
            CorruptKind::Invalid,
            start + 20,
            WHAT,
            format!("version {}", le32(&header, 20)),
        ));
    }
    if le64(&header, 24) != start {
        return Err(error(
            CorruptKind::Invalid,
            start + 24,
            WHAT,
            "records another start offset",
        ));
    }
    let area = le64(&header, 32);
    if area != size || area <= MDA_HEADER_SIZE {
        return Err(error(
            CorruptKind::Invalid,
            start + 32,
            WHAT,
            format!("records an area of {area} bytes where the PV header says {size}"),
        ));
    }
    // raw_locn[0] is the committed metadata.
    let offset = le64(&header, 40);
    let len = le64(&header, 48);
    let checksum = le32(&header, 56);
    if len == 0 {
        return Err(error(
            CorruptKind::Invalid,
            start + 40,
            WHAT,
            "holds no committed metadata",
        ));
    }
    let buffer = area - MDA_HEADER_SIZE;
    if offset < MDA_HEADER_SIZE || offset >= area || len > buffer || len > MAX_METADATA_TEXT {
        return Err(error(
            CorruptKind::TooLarge,
            start + 40,
            WHAT,
            format!("metadata of {len} bytes at {offset} does not fit the {area}-byte area"),
        ));
    }
    // The text runs to the end of the area and continues after the header.
    let text_at = start.checked_add(offset).ok_or_else(|| {
        error(
            CorruptKind::OutOfRange,
            start + 40,
            WHAT,
            "metadata offset overflows",
        )
    })?;
    let first = len.min(area - offset);
    let mut text = read(pv, text_at, first, "LVM2 metadata text")?;
    if first < len {
        text.extend(read(
            pv,
            start + MDA_HEADER_SIZE,
            len - first,
            "LVM2 metadata text",
        )?);
    }
    let computed = lvm_crc(INITIAL_CRC, &text);
    if computed != checksum {
        return Err(error(
            CorruptKind::Checksum,
            text_at,
            "LVM2 metadata text",
            format!("checksum {checksum:#010x} recorded, {computed:#010x} computed"),
        ));
    }
    Ok(text)
}
