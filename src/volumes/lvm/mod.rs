//! LVM2: physical volumes found among the disk's volumes become logical volumes, each a
//! volume like a partition (id `VG/LV`) whose bytes are its segments mapped onto the PVs.
//!
//! Owns the PV label and metadata area (`label`), the metadata text format (`text`), the
//! volume group description (`vg`) and the segment mapping (`source`). Linear and striped
//! segments are read; every other segment type (thin, RAID, mirror, cache, VDO, snapshot)
//! is listed with its type and not read. Knows nothing of filesystems.

mod label;
mod source;
mod text;
mod vg;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{probe, Identity, Scheme, Volume};
use crate::image::BlockSource;
use source::{LvSource, MappedSegment};
use vg::VolumeGroup;

/// A volume group as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeGroupInfo {
    pub name: String,
    pub uuid: String,
    pub seqno: u64,
    /// Bytes per extent.
    pub extent_size: u64,
    pub physical_volumes: Vec<PhysicalVolumeInfo>,
    pub logical_volumes: Vec<LogicalVolumeInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhysicalVolumeInfo {
    pub name: String,
    pub uuid: String,
    /// The volume holding it, or `None` when it is not in the image.
    pub volume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogicalVolumeInfo {
    pub name: String,
    pub uuid: String,
    pub size: u64,
    /// `linear`, `striped`, or the segment type LVM names (`thin`, `raid1`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub segments: Vec<SegmentInfo>,
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentInfo {
    pub start_extent: u64,
    pub extent_count: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub stripes: usize,
    pub stripe_size: Option<u64>,
}

/// For fuzzing: parses `text` as LVM2 metadata and builds its VG; returns how many LVs
/// it describes (0 when refused).
pub fn parse_metadata(text: &[u8]) -> usize {
    text::parse(text)
        .ok()
        .and_then(|top| vg::from_metadata(&top).ok())
        .map_or(0, |vg| vg.lvs.len())
}

/// One PV found in the image: where it is, and its VG description.
struct FoundPv {
    volume: usize,
    uuid: String,
    vg: Option<VolumeGroup>,
}

/// Reads every LVM2 PV among `volumes` (a broken one gets its `problem` set), and returns
/// the logical volumes of their volume groups, with the groups' descriptions.
pub fn logical_volumes(volumes: &mut [Volume]) -> (Vec<Volume>, Vec<VolumeGroupInfo>) {
    let mut found = Vec::new();
    for (index, volume) in volumes.iter_mut().enumerate() {
        if volume.identity.content != probe::Content::Lvm2Member || volume.problem.is_some() {
            continue;
        }
        let Some(source) = volume.source.clone() else {
            continue;
        };
        let absolute = |offset: u64| volume.offset.saturating_add(offset);
        match label::read_pv(source.as_ref()) {
            Err(e) => {
                volume.problem = Some(format!(
                    "{} at byte {} of the image: {}",
                    e.structure,
                    absolute(e.offset),
                    e.detail
                ));
            }
            Ok(pv) => {
                let vg = match pv.metadata.as_deref().map(text::parse) {
                    None => None,
                    Some(Err(e)) => {
                        volume.problem = Some(format!(
                            "LVM2 metadata text at byte {} of the metadata: {}",
                            e.at, e.detail
                        ));
                        continue;
                    }
                    Some(Ok(top)) => match vg::from_metadata(&top) {
                        Ok(vg) => Some(vg),
                        Err(e) => {
                            volume.problem = Some(format!("LVM2 metadata: {e}"));
                            continue;
                        }
                    },
                };
                found.push(FoundPv {
                    volume: index,
                    uuid: pv.uuid,
                    vg,
                });
            }
        }
    }
    // The newest description of each VG (all its PVs normally carry the same).
    let mut groups: BTreeMap<String, VolumeGroup> = BTreeMap::new();
    for vg in found.iter().filter_map(|pv| pv.vg.clone()) {
        let newer = groups
            .get(&vg.uuid)
            .is_none_or(|known| vg.seqno > known.seqno);
        if newer {
            groups.insert(vg.uuid.clone(), vg);
        }
    }
    let mut lvs = Vec::new();
    let mut infos = Vec::new();
    for vg in groups.values() {
        // PV index in the VG → the image volume holding it.
        let holders: Vec<Option<usize>> = vg
            .pvs
            .iter()
            .map(|pv| {
                let plain: String = pv.uuid.chars().filter(|c| *c != '-').collect();
                found.iter().find(|f| f.uuid == plain).map(|f| f.volume)
            })
            .collect();
        for lv in vg.lvs.iter().filter(|lv| !lv.hidden) {
            lvs.push(lv_volume(vg, lv, &holders, volumes));
        }
        infos.push(info(vg, &holders, volumes));
    }
    (lvs, infos)
}

fn lv_kind(lv: &vg::LogicalVolume) -> String {
    let mut kinds: Vec<&str> = lv.segments.iter().map(|s| s.kind.as_str()).collect();
    kinds.dedup();
    match kinds.as_slice() {
        ["striped"] if lv.segments.iter().all(|s| s.stripes.len() == 1) => "linear".into(),
        [] => "unknown".into(),
        _ => kinds.join("+"),
    }
}

fn lv_volume(
    vg: &VolumeGroup,
    lv: &vg::LogicalVolume,
    holders: &[Option<usize>],
    volumes: &[Volume],
) -> Volume {
    let mapped = map_segments(vg, lv, holders, volumes);
    let (disk, first_offset) = mapped
        .as_ref()
        .ok()
        .and_then(|(_, offset)| *offset)
        .unwrap_or((0, 0));
    let (source, problem) = match mapped {
        Ok((segments, _)) => (
            Some(Arc::new(LvSource::new(segments)) as Arc<dyn BlockSource>),
            None,
        ),
        Err(reason) => (None, Some(reason.to_string())),
    };
    let (identity, problem) = match source.as_deref().map(probe::identify) {
        Some(Ok(identity)) => (identity, problem),
        Some(Err(failure)) => (Identity::unknown(), Some(failure.to_string())),
        None => (Identity::unknown(), problem),
    };
    Volume {
        id: format!("{}/{}", vg.name, lv.name),
        disk,
        scheme: Scheme::Lvm,
        partition: None,
        type_id: Some(lv_kind(lv)),
        // The id already names the LV.
        name: None,
        part_uuid: None,
        offset: first_offset,
        size: lv.extents().saturating_mul(vg.extent_size),
        identity,
        source,
        problem,
    }
}

/// Why a logical volume cannot be read from the disks given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum MapError {
    #[error("LVM2 metadata of VG {vg}: {problem}")]
    Metadata {
        vg: String,
        problem: vg::MetadataError,
    },
    #[error("LVM2 {0} logical volume: not read (linear and striped volumes are)")]
    UnsupportedType(String),
    #[error("a stripe names no PV")]
    NoSuchPv,
    #[error(
        "PV {pv} ({uuid}) of VG {vg} is not in the image (a guest of several disks is given as DISK+DISK)"
    )]
    MissingPv {
        pv: String,
        uuid: String,
        vg: String,
    },
    #[error("its PV lies outside the disk")]
    PvOutsideDisk,
    #[error("segment {segment} lies past the end of PV {pv} (volume {volume})")]
    PastPv {
        segment: usize,
        pv: String,
        volume: String,
    },
    #[error("the logical volume has no segments")]
    NoSegments,
}

/// The LV's segments on the PVs of this image, with the image offset of its first byte.
#[allow(clippy::type_complexity)]
fn map_segments(
    vg: &VolumeGroup,
    lv: &vg::LogicalVolume,
    holders: &[Option<usize>],
    volumes: &[Volume],
) -> Result<(Vec<MappedSegment>, Option<(usize, u64)>), MapError> {
    if let Some(problem) = &lv.problem {
        return Err(MapError::Metadata {
            vg: vg.name.clone(),
            problem: problem.clone(),
        });
    }
    let mut mapped = Vec::new();
    let mut first_offset = None;
    for (n, seg) in lv.segments.iter().enumerate() {
        if seg.kind != "striped" {
            return Err(MapError::UnsupportedType(seg.kind.clone()));
        }
        let count = seg.stripes.len().max(1) as u64;
        let per_stripe = (seg.extent_count / count).saturating_mul(vg.extent_size);
        let mut stripes = Vec::new();
        for stripe in &seg.stripes {
            let pv = vg.pvs.get(stripe.pv).ok_or(MapError::NoSuchPv)?;
            let holder = holders
                .get(stripe.pv)
                .copied()
                .flatten()
                .and_then(|i| volumes.get(i))
                .ok_or_else(|| MapError::MissingPv {
                    pv: pv.name.clone(),
                    uuid: pv.uuid.clone(),
                    vg: vg.name.clone(),
                })?;
            let source = holder.source.clone().ok_or(MapError::PvOutsideDisk)?;
            let start = stripe
                .start_extent
                .checked_mul(vg.extent_size)
                .and_then(|b| b.checked_add(pv.pe_start))
                .filter(|start| {
                    start
                        .checked_add(per_stripe)
                        .is_some_and(|end| end <= source.len())
                })
                .ok_or_else(|| MapError::PastPv {
                    segment: n + 1,
                    pv: pv.name.clone(),
                    volume: holder.id.clone(),
                })?;
            first_offset.get_or_insert((holder.disk, holder.offset.saturating_add(start)));
            stripes.push((source, start));
        }
        let len = seg.extent_count.saturating_mul(vg.extent_size);
        mapped.push(MappedSegment {
            start: seg.start_extent.saturating_mul(vg.extent_size),
            len,
            chunk: seg.stripe_size.unwrap_or(len),
            stripes,
        });
    }
    if mapped.is_empty() {
        return Err(MapError::NoSegments);
    }
    Ok((mapped, first_offset))
}

fn info(vg: &VolumeGroup, holders: &[Option<usize>], volumes: &[Volume]) -> VolumeGroupInfo {
    VolumeGroupInfo {
        name: vg.name.clone(),
        uuid: vg.uuid.clone(),
        seqno: vg.seqno,
        extent_size: vg.extent_size,
        physical_volumes: vg
            .pvs
            .iter()
            .zip(holders)
            .map(|(pv, holder)| PhysicalVolumeInfo {
                name: pv.name.clone(),
                uuid: pv.uuid.clone(),
                volume: holder.and_then(|i| volumes.get(i)).map(|v| v.id.clone()),
            })
            .collect(),
        logical_volumes: vg
            .lvs
            .iter()
            .map(|lv| LogicalVolumeInfo {
                name: lv.name.clone(),
                uuid: lv.uuid.clone(),
                size: lv.extents().saturating_mul(vg.extent_size),
                kind: lv_kind(lv),
                hidden: lv.hidden,
                segments: lv
                    .segments
                    .iter()
                    .map(|s| SegmentInfo {
                        start_extent: s.start_extent,
                        extent_count: s.extent_count,
                        kind: s.kind.clone(),
                        stripes: s.stripes.len(),
                        stripe_size: s.stripe_size,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
