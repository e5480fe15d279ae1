//! A volume group as its metadata describes it: physical volumes, extent size, logical
//! volumes and their segments. Only what the text says, checked for consistency; which
//! PVs are present is decided by the caller.

use super::text::{Section, Value};
use crate::image::CorruptKind;
use crate::volumes::Prefix;

/// Sectors are LVM's unit for sizes in metadata.
pub(crate) const SECTOR: u64 = 512;

#[derive(Debug, Clone)]
pub(crate) struct PhysicalVolume {
    /// The metadata's name for it (`pv0`).
    pub name: String,
    /// With dashes, as the metadata writes it.
    pub uuid: String,
    /// Byte offset of the first extent within the PV.
    pub pe_start: u64,
    pub pe_count: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Stripe {
    /// Index into the VG's physical volumes.
    pub pv: usize,
    pub start_extent: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub start_extent: u64,
    pub extent_count: u64,
    /// The segment type as LVM names it (`striped`, `thin`, `raid1`, `mirror`, …).
    pub kind: String,
    pub stripes: Vec<Stripe>,
    /// Bytes per stripe chunk, for more than one stripe.
    pub stripe_size: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct LogicalVolume {
    pub name: String,
    pub uuid: String,
    pub segments: Vec<Segment>,
    /// Not visible to users (a thin pool's data or metadata, a RAID image, …).
    pub hidden: bool,
    /// Why its segments cannot be used, when the metadata about them is inconsistent.
    pub problem: Option<MetadataError>,
}

impl LogicalVolume {
    pub(crate) fn extents(&self) -> u64 {
        self.segments.iter().map(|s| s.extent_count).sum()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct VolumeGroup {
    pub name: String,
    pub uuid: String,
    pub seqno: u64,
    pub extent_size: u64,
    pub pvs: Vec<PhysicalVolume>,
    pub lvs: Vec<LogicalVolume>,
}

/// Sanity bounds: LVM itself refuses extents over 16 GiB and VGs beyond these counts are
/// not made by any tool.
const MAX_EXTENT_SECTORS: u64 = 1 << 25;
const MAX_SEGMENTS: usize = 10_000;
const MAX_STRIPES: usize = 128;

/// What in a volume group's metadata LVM itself would refuse, and which LV (and segment)
/// it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{detail}", Prefix("", .within))]
pub(crate) struct MetadataError {
    /// `LV` or `LV segmentN`, which the message starts with.
    pub within: Option<String>,
    pub kind: CorruptKind,
    pub detail: String,
}

impl MetadataError {
    fn new(kind: CorruptKind, detail: impl Into<String>) -> Self {
        Self {
            within: None,
            kind,
            detail: detail.into(),
        }
    }

    /// The same error, said of `subject` (an LV, or one of its segments).
    fn within(self, subject: String) -> Self {
        Self {
            within: Some(subject),
            ..self
        }
    }
}

fn positive(section: &Section, key: &str) -> Result<u64, MetadataError> {
    section
        .int(key)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            MetadataError::new(
                CorruptKind::Invalid,
                format!("{key} is missing or negative"),
            )
        })
}

/// Builds the VG described by a parsed metadata text (its only top-level section).
pub(crate) fn from_metadata(top: &Section) -> Result<VolumeGroup, MetadataError> {
    let (name, vg) = top.sections().next().ok_or_else(|| {
        MetadataError::new(
            CorruptKind::Invalid,
            "the metadata describes no volume group",
        )
    })?;
    let extent_sectors = positive(vg, "extent_size")?;
    if extent_sectors == 0 || extent_sectors > MAX_EXTENT_SECTORS {
        return Err(MetadataError::new(
            CorruptKind::Invalid,
            format!("extent size of {extent_sectors} sectors"),
        ));
    }
    let mut pvs = Vec::new();
    for (pv_name, pv) in vg
        .section("physical_volumes")
        .ok_or_else(|| MetadataError::new(CorruptKind::Invalid, "no physical_volumes section"))?
        .sections()
    {
        pvs.push(PhysicalVolume {
            name: pv_name.to_string(),
            uuid: pv
                .str("id")
                .ok_or_else(|| {
                    MetadataError::new(CorruptKind::Invalid, format!("{pv_name} has no id"))
                })?
                .to_string(),
            pe_start: positive(pv, "pe_start")?
                .checked_mul(SECTOR)
                .ok_or_else(|| MetadataError::new(CorruptKind::OutOfRange, "pe_start overflows"))?,
            pe_count: positive(pv, "pe_count")?,
        });
    }
    let mut lvs = Vec::new();
    if let Some(section) = vg.section("logical_volumes") {
        for (lv_name, lv) in section.sections() {
            // One LV's inconsistent segments leave the others readable.
            let parsed = logical_volume(lv_name, lv, &pvs, extent_sectors);
            lvs.push(parsed.unwrap_or_else(|problem| LogicalVolume {
                name: lv_name.to_string(),
                uuid: lv.str("id").unwrap_or_default().to_string(),
                segments: Vec::new(),
                hidden: false,
                problem: Some(problem),
            }));
        }
    }
    Ok(VolumeGroup {
        name: name.to_string(),
        uuid: vg.str("id").unwrap_or_default().to_string(),
        seqno: positive(vg, "seqno").unwrap_or(0),
        extent_size: extent_sectors * SECTOR,
        pvs,
        lvs,
    })
}

fn logical_volume(
    name: &str,
    lv: &Section,
    pvs: &[PhysicalVolume],
    extent_sectors: u64,
) -> Result<LogicalVolume, MetadataError> {
    let visible = lv
        .list("status")
        .is_some_and(|s| s.iter().any(|v| v == &Value::Str("VISIBLE".into())));
    let mut segments = Vec::new();
    for (key, seg) in lv.sections().filter(|(k, _)| k.starts_with("segment")) {
        if segments.len() >= MAX_SEGMENTS {
            return Err(MetadataError::new(
                CorruptKind::TooLarge,
                format!("more than {MAX_SEGMENTS} segments"),
            )
            .within(name.to_string()));
        }
        let what = |e: MetadataError| e.within(format!("{name} {key}"));
        let bad = |kind: CorruptKind, detail: String| what(MetadataError::new(kind, detail));
        let kind = seg
            .str("type")
            .ok_or_else(|| bad(CorruptKind::Invalid, "no type".into()))?
            .to_string();
        let start_extent = positive(seg, "start_extent").map_err(what)?;
        let extent_count = positive(seg, "extent_count").map_err(what)?;
        let mut stripes = Vec::new();
        let mut stripe_size = None;
        if kind == "striped" {
            let count =
                usize::try_from(positive(seg, "stripe_count").map_err(what)?).unwrap_or(usize::MAX);
            let list = seg
                .list("stripes")
                .ok_or_else(|| bad(CorruptKind::Invalid, "no stripes".into()))?;
            if count == 0 || count > MAX_STRIPES || list.len() != count * 2 {
                return Err(bad(
                    CorruptKind::Invalid,
                    format!("{count} stripes listed as {} items", list.len()),
                ));
            }
            if !extent_count.is_multiple_of(count as u64) {
                return Err(bad(
                    CorruptKind::Invalid,
                    format!("{extent_count} extents do not divide into {count} stripes"),
                ));
            }
            for pair in list.chunks_exact(2) {
                let (Some(Value::Str(pv_name)), Some(Value::Int(start))) =
                    (pair.first(), pair.get(1))
                else {
                    return Err(bad(
                        CorruptKind::Invalid,
                        "a stripe is not a PV name and an extent".into(),
                    ));
                };
                let pv = pvs.iter().position(|p| &p.name == pv_name).ok_or_else(|| {
                    bad(CorruptKind::Invalid, format!("names unknown PV {pv_name}"))
                })?;
                let start_extent = u64::try_from(*start)
                    .map_err(|_| bad(CorruptKind::Invalid, "negative extent".into()))?;
                let per_stripe = extent_count / count as u64;
                let fits = start_extent
                    .checked_add(per_stripe)
                    .is_some_and(|end| pvs.get(pv).is_some_and(|p| end <= p.pe_count));
                if !fits {
                    return Err(bad(
                        CorruptKind::OutOfRange,
                        format!(
                            "extents {start_extent}..+{per_stripe} lie past the end of {pv_name}"
                        ),
                    ));
                }
                stripes.push(Stripe { pv, start_extent });
            }
            if count > 1 {
                let sectors = positive(seg, "stripe_size").map_err(what)?;
                if sectors == 0
                    || sectors > extent_sectors
                    || !extent_sectors.is_multiple_of(sectors)
                {
                    return Err(bad(
                        CorruptKind::Invalid,
                        format!("stripe size of {sectors} sectors"),
                    ));
                }
                stripe_size = Some(sectors * SECTOR);
            }
        }
        segments.push(Segment {
            start_extent,
            extent_count,
            kind,
            stripes,
            stripe_size,
        });
    }
    segments.sort_by_key(|s| s.start_extent);
    let mut next = 0u64;
    for seg in &segments {
        if seg.start_extent != next || seg.extent_count == 0 {
            return Err(MetadataError::new(
                CorruptKind::Invalid,
                format!("segments do not cover its extents contiguously (gap or overlap at extent {next})"),
            )
            .within(name.to_string()));
        }
        next = seg
            .start_extent
            .checked_add(seg.extent_count)
            .ok_or_else(|| {
                MetadataError::new(CorruptKind::OutOfRange, "extent count overflows")
                    .within(name.to_string())
            })?;
    }
    Ok(LogicalVolume {
        name: name.to_string(),
        uuid: lv.str("id").unwrap_or_default().to_string(),
        segments,
        hidden: !visible,
        problem: None,
    })
}
