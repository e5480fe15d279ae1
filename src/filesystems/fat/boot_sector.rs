//! The boot sector's BIOS parameter block: where the FAT, the root directory and the
//! clusters of one FAT volume lie, and which FAT width it uses.

use super::{le16, le32};
use crate::filesystems::FsError;
use crate::image::BlockSource;
use crate::image::CorruptKind;

const STRUCTURE: &str = "FAT boot sector";

/// Microsoft's cluster-count thresholds: fewer than 4085 clusters is FAT12, fewer than
/// 65525 is FAT16.
const FAT12_CLUSTER_LIMIT: u64 = 4085;
const FAT16_CLUSTER_LIMIT: u64 = 65525;

/// The width of the allocation table's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl FatType {
    /// The highest cluster count the entry width can address: above it, entry values collide
    /// with the bad-cluster and end-of-chain markers.
    fn max_clusters(self) -> u64 {
        match self {
            Self::Fat12 => 0xFF4,
            Self::Fat16 => 0xFFF4,
            Self::Fat32 => 0x0FFF_FFF4,
        }
    }

    fn entry_bits(self) -> u64 {
        match self {
            Self::Fat12 => 12,
            Self::Fat16 => 16,
            Self::Fat32 => 32,
        }
    }
}

/// Where the root directory's entries live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RootDir {
    /// FAT12 and FAT16: a fixed region between the FATs and the data region.
    Fixed { offset: u64, entries: u32 },
    /// FAT32: an ordinary cluster chain.
    Chain { first_cluster: u32 },
}

/// The volume's layout, every field checked against the others when parsed.
#[derive(Debug, Clone)]
pub(super) struct Geometry {
    pub fat_type: FatType,
    /// Bytes in one cluster: a power of two from 512 to 512 KiB.
    pub cluster_size: u32,
    /// Byte offset of the FAT that is read (the active one when FAT32 mirroring is off).
    pub fat_offset: u64,
    /// Bytes in one FAT.
    pub fat_len: u64,
    pub root: RootDir,
    /// Byte offset of cluster 2.
    pub data_offset: u64,
    /// Usable clusters, numbered 2..cluster_count+2; see `parse` for the clamping.
    pub cluster_count: u32,
}

impl Geometry {
    /// Reads and checks the boot sector of `source`.
    pub fn parse(source: &dyn BlockSource) -> Result<Self, FsError> {
        let mut sector = [0u8; 512];
        source
            .read_exact_at(0, &mut sector)
            .map_err(|e| FsError::io(STRUCTURE, 0, e))?;
        let b: &[u8] = &sector;
        let byte = |at: usize| b.get(at).copied().unwrap_or(0);

        let bytes_per_sector = u64::from(le16(b, 11));
        if !(512..=4096).contains(&bytes_per_sector) || !bytes_per_sector.is_power_of_two() {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                11,
                format!(
                    "bytes per sector is {bytes_per_sector}, not a power of two from 512 to 4096"
                ),
            ));
        }
        let sectors_per_cluster = u64::from(byte(13));
        if !sectors_per_cluster.is_power_of_two() {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                13,
                format!("sectors per cluster is {sectors_per_cluster}, not a power of two"),
            ));
        }
        let reserved = u64::from(le16(b, 14));
        if reserved == 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                14,
                "no reserved sectors (the boot sector is one)",
            ));
        }
        let fat_count = u64::from(byte(16));
        if fat_count == 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                16,
                "number of FATs is 0",
            ));
        }
        let root_entries = u64::from(le16(b, 17));
        let total_sectors = match le16(b, 19) {
            0 => u64::from(le32(b, 32)),
            small => u64::from(small),
        };
        if total_sectors == 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                19,
                "total sector count is 0",
            ));
        }
        // A zero 16-bit FAT size marks the FAT32 extended BPB. Linux (and mkfs.fat, which
        // makes such volumes) then reads FAT32 whatever the cluster count; Microsoft's count
        // rule would read a small FAT32 volume as FAT16 and find garbage. For volumes that
        // follow the specification both rules agree.
        let fat32_layout = le16(b, 22) == 0;
        let (fat_sectors, fat_size_at) = if fat32_layout {
            (u64::from(le32(b, 36)), 36)
        } else {
            (u64::from(le16(b, 22)), 22)
        };
        if fat_sectors == 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                fat_size_at,
                "FAT size is 0 sectors",
            ));
        }
        if fat32_layout && root_entries != 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                17,
                format!("a FAT32 volume with a fixed root directory of {root_entries} entries"),
            ));
        }

        // No overflow: every factor is at most 32 bits wide and the sums stay below 2^50.
        let root_dir_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
        let root_sector = reserved + fat_count * fat_sectors;
        let data_sector = root_sector + root_dir_sectors;
        if data_sector >= total_sectors {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                STRUCTURE,
                19,
                format!(
                    "the data region would start at sector {data_sector}, \
                     past the volume's {total_sectors} sectors"
                ),
            ));
        }
        let declared_clusters = (total_sectors - data_sector) / sectors_per_cluster;
        let fat_type = if fat32_layout {
            FatType::Fat32
        } else if declared_clusters < FAT12_CLUSTER_LIMIT {
            FatType::Fat12
        } else if declared_clusters < FAT16_CLUSTER_LIMIT {
            FatType::Fat16
        } else {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                22,
                format!(
                    "{declared_clusters} clusters need FAT32, but the boot sector has a \
                     FAT12/16 layout"
                ),
            ));
        };

        let mut active_fat = 0;
        if fat_type == FatType::Fat32 {
            let flags = le16(b, 40);
            // Bit 7 turns mirroring off; only the FAT named in bits 0-3 is then current.
            if flags & 0x80 != 0 {
                active_fat = u64::from(flags & 0x0F);
                if active_fat >= fat_count {
                    return Err(FsError::corrupt(
                        CorruptKind::Invalid,
                        STRUCTURE,
                        40,
                        format!("active FAT {active_fat} of only {fat_count}"),
                    ));
                }
            }
        }

        let cluster_size = bytes_per_sector * sectors_per_cluster;
        let fat_len = fat_sectors * bytes_per_sector;
        let data_offset = data_sector * bytes_per_sector;
        // Clusters the FAT has no entry for, or whose bytes lie past the end of the source,
        // cannot be read; clamping here (as Linux clamps to the FAT's size) turns any
        // reference to them into a range error, and bounds everything sized by the count.
        let in_fat = (fat_len * 8 / fat_type.entry_bits()).saturating_sub(2);
        let in_source = source.len().saturating_sub(data_offset) / cluster_size;
        let cluster_count = declared_clusters
            .min(in_fat)
            .min(in_source)
            .min(fat_type.max_clusters());
        let cluster_count = u32::try_from(cluster_count).unwrap_or(0);

        let root = match fat_type {
            FatType::Fat32 => {
                let first_cluster = le32(b, 44);
                if first_cluster < 2 || u64::from(first_cluster) >= u64::from(cluster_count) + 2 {
                    return Err(FsError::corrupt(
                        CorruptKind::OutOfRange,
                        STRUCTURE,
                        44,
                        format!(
                            "root directory cluster {first_cluster} is outside the volume's \
                             clusters 2..{}",
                            u64::from(cluster_count) + 2
                        ),
                    ));
                }
                RootDir::Chain { first_cluster }
            }
            FatType::Fat12 | FatType::Fat16 => RootDir::Fixed {
                offset: root_sector * bytes_per_sector,
                entries: u32::try_from(root_entries).unwrap_or(0),
            },
        };

        Ok(Self {
            fat_type,
            cluster_size: u32::try_from(cluster_size).unwrap_or(512),
            fat_offset: (reserved + active_fat * fat_sectors) * bytes_per_sector,
            fat_len,
            root,
            data_offset,
            cluster_count,
        })
    }

    /// Byte offset of a cluster's first byte. Callers pass only clusters already checked
    /// to lie in 2..cluster_count+2, so this cannot overflow.
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + u64::from(cluster.saturating_sub(2)) * u64::from(self.cluster_size)
    }

    /// One past the highest valid cluster number.
    pub fn cluster_end(&self) -> u64 {
        u64::from(self.cluster_count) + 2
    }

    /// True when `cluster` names a data cluster of this volume.
    pub fn is_data_cluster(&self, cluster: u32) -> bool {
        cluster >= 2 && u64::from(cluster) < self.cluster_end()
    }

    /// One past the last byte of the data region.
    pub fn data_end(&self) -> u64 {
        self.data_offset + u64::from(self.cluster_count) * u64::from(self.cluster_size)
    }
}
