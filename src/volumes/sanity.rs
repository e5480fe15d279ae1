//! Partition-table sanity: the typed problems a table can have, and the checks that need
//! the whole table at once (partitions that overlap or run past the end of the disk, a
//! hybrid MBR that disagrees with the GPT it mirrors).
//!
//! A problem is `incomplete` when it may hide data from the scan: a recognised volume
//! starting inside another partition's bytes, a partition whose tail is missing, a
//! checksum let through unverified. Everything else is a disagreement worth showing that
//! hides nothing, and stays a note. The GPT's own header checks live in `gpt.rs`, the
//! protective MBR's in `mbr.rs`; this module reads nothing from the disk.

use std::fmt;

use super::probe::Content;

/// Overlapping pairs listed one by one; past this a single problem says how many more
/// there are, so a crafted table of thousands of overlapping entries cannot make the
/// check quadratic in time or the report in size.
const MAX_OVERLAPS_LISTED: usize = 32;

/// What is wrong with a partition table; the names are stable in `inspect --format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// Two partitions share sectors.
    Overlap,
    /// A partition ends past the end of the disk.
    PastEnd,
    /// A table entry that describes no valid range (first LBA after last LBA).
    InvalidEntry,
    /// The primary GPT fails its checks; the backup copy is used, as Linux does.
    GptPrimaryDamaged,
    /// The backup GPT is missing or fails its checks; the primary is used.
    GptBackupDamaged,
    /// Primary and backup GPT both pass their checks but say different things.
    GptMismatch,
    /// The GPT's usable range, or an entry, lies where the GPT header says none may.
    GptRange,
    /// A GPT checksum failed and was let through because checksums are ignored.
    ChecksumIgnored,
    /// The MBR beside a GPT is not the protective MBR Linux needs to read the GPT.
    ProtectiveMbr,
    /// A hybrid MBR entry that matches no GPT entry.
    HybridMismatch,
    /// A logical partition that does not lie inside its extended partition.
    LogicalOutsideExtended,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overlap => "overlap",
            Self::PastEnd => "past-end",
            Self::InvalidEntry => "invalid-entry",
            Self::GptPrimaryDamaged => "gpt-primary-damaged",
            Self::GptBackupDamaged => "gpt-backup-damaged",
            Self::GptMismatch => "gpt-mismatch",
            Self::GptRange => "gpt-range",
            Self::ChecksumIgnored => "checksum-ignored",
            Self::ProtectiveMbr => "protective-mbr",
            Self::HybridMismatch => "hybrid-mismatch",
            Self::LogicalOutsideExtended => "logical-outside-extended",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of one disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableProblem {
    pub kind: ProblemKind,
    /// What is wrong, for people; callers decide on `kind` and `incomplete`, never on it.
    pub message: String,
    /// Byte offset on the disk of the structure concerned (the table entry, the header).
    pub offset: u64,
    /// True when the problem may hide data, so a clean scan would prove nothing.
    pub incomplete: bool,
}

impl TableProblem {
    pub fn new(kind: ProblemKind, offset: u64, incomplete: bool, message: String) -> Self {
        Self {
            kind,
            message,
            offset,
            incomplete,
        }
    }

    /// The line a guest's notes carry for this problem, naming the disk in a guest of
    /// several disks.
    pub fn note(&self, disk: Option<&str>) -> String {
        let disk = disk.map(|d| format!("disk {d}: ")).unwrap_or_default();
        format!("{disk}partition table: {}", self.message)
    }
}

/// One partition as the checks see it: where it lies, where its table entry is, and what
/// it was found to hold.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    /// Byte offset of the table entry describing it.
    pub entry_at: u64,
    pub content: Content,
}

impl Span {
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    fn bytes(&self) -> String {
        format!("bytes {}..{}", self.offset, self.end())
    }
}

/// Every partition that ends past the end of the disk. Its tail is not in the image, so
/// whatever it holds cannot be read whole.
pub fn past_end(spans: &[Span], disk_len: u64) -> Vec<TableProblem> {
    spans
        .iter()
        .filter(|s| s.end() > disk_len)
        .map(|s| {
            TableProblem::new(
                ProblemKind::PastEnd,
                s.entry_at,
                true,
                format!(
                    "partition {} ({}, entry at byte {}) ends {} bytes past the end of the {disk_len}-byte disk",
                    s.number,
                    s.bytes(),
                    s.entry_at,
                    s.end().saturating_sub(disk_len)
                ),
            )
        })
        .collect()
}

/// Every pair of partitions sharing bytes, the later-starting one named second. The pair
/// hides data when the later one holds recognised content: a filesystem starting inside
/// another partition is written over by it or writes over it, and which bytes the guest
/// sees depends on which it mounts.
pub fn overlaps(spans: &[Span]) -> Vec<TableProblem> {
    let mut sorted: Vec<&Span> = spans.iter().filter(|s| s.size > 0).collect();
    sorted.sort_by_key(|s| (s.offset, s.number));
    let mut problems = Vec::new();
    let mut more = false;
    for (index, later) in sorted.iter().enumerate() {
        for earlier in sorted.get(..index).unwrap_or_default() {
            if earlier.end() <= later.offset {
                continue;
            }
            if problems.len() >= MAX_OVERLAPS_LISTED {
                more = true;
                break;
            }
            let hides = later.content != Content::Unknown;
            problems.push(overlap(earlier, later, hides));
        }
        if more {
            // The rest are not looked at, so they count as hiding data.
            problems.push(TableProblem::new(
                ProblemKind::Overlap,
                later.entry_at,
                true,
                format!(
                    "more than {MAX_OVERLAPS_LISTED} pairs of partitions overlap; the rest are not listed and may hide data"
                ),
            ));
            break;
        }
    }
    problems
}

fn overlap(earlier: &Span, later: &Span, hides: bool) -> TableProblem {
    let shared_end = earlier.end().min(later.end());
    let shared = format!("bytes {}..{shared_end}", later.offset);
    let message = if hides {
        format!(
            "partition {} ({}, {}) starts inside partition {} ({}): they share {shared}, so what either holds there cannot be trusted",
            later.number,
            later.bytes(),
            later.content.as_str(),
            earlier.number,
            earlier.bytes(),
        )
    } else {
        format!(
            "partitions {} ({}) and {} ({}) overlap in {shared}; partition {} holds no recognised content",
            earlier.number,
            earlier.bytes(),
            later.number,
            later.bytes(),
            later.number,
        )
    };
    TableProblem::new(ProblemKind::Overlap, later.entry_at, hides, message)
}

/// A primary partition sharing bytes with the extended partition, whose bytes belong to
/// the EBR chain and the logical partitions. What a logical partition holds is checked
/// pair by pair with `overlaps`, so this only notes the table's inconsistency.
pub fn container_overlaps(extended: &Span, spans: &[Span]) -> Vec<TableProblem> {
    spans
        .iter()
        .filter(|s| s.number <= 4 && s.size > 0)
        .filter(|s| s.offset < extended.end() && extended.offset < s.end())
        .map(|s| {
            TableProblem::new(
                ProblemKind::Overlap,
                s.entry_at,
                false,
                format!(
                    "primary partition {} ({}) overlaps extended partition {} ({}), which holds the logical partitions' tables",
                    s.number,
                    s.bytes(),
                    extended.number,
                    extended.bytes()
                ),
            )
        })
        .collect()
}

/// A hybrid MBR entry (an ordinary MBR partition beside the protective one) must
/// describe exactly the bytes of a GPT entry: firmware and tools that read the MBR see
/// those.
pub fn hybrid_mismatches(mbr: &[Span], gpt: &[Span]) -> Vec<TableProblem> {
    unmatched(
        mbr,
        gpt,
        ProblemKind::HybridMismatch,
        "hybrid MBR entry",
        "no GPT entry",
    )
}

/// Partitions the backup GPT lists that the primary (the copy used) does not.
pub fn backup_only(backup: &[Span], primary: &[Span]) -> Vec<TableProblem> {
    unmatched(
        backup,
        primary,
        ProblemKind::GptMismatch,
        "backup GPT entry",
        "no entry of the primary GPT",
    )
}

/// Each of `extra` that no entry of `listed` describes exactly. One hides data when it
/// starts a recognised volume that no listed partition starts at, because that volume
/// is not scanned; otherwise it is a note.
fn unmatched(
    extra: &[Span],
    listed: &[Span],
    kind: ProblemKind,
    what: &str,
    nothing: &str,
) -> Vec<TableProblem> {
    extra
        .iter()
        .filter(|e| {
            !listed
                .iter()
                .any(|l| l.offset == e.offset && l.size == e.size)
        })
        .map(|e| {
            let unscanned =
                e.content != Content::Unknown && !listed.iter().any(|l| l.offset == e.offset);
            let covered = listed
                .iter()
                .find(|l| l.offset < e.end() && e.offset < l.end())
                .map(|l| format!("it overlaps partition {} ({})", l.number, l.bytes()))
                .unwrap_or_else(|| "no listed partition covers it".to_string());
            let holds = if unscanned {
                format!(
                    "; it holds {}, which no listed partition starts at, so it is not scanned",
                    e.content.as_str()
                )
            } else {
                String::new()
            };
            TableProblem::new(
                kind,
                e.entry_at,
                unscanned,
                format!(
                    "{what} {} ({}) matches {nothing}: {covered}{holds}",
                    e.number,
                    e.bytes()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(number: u32, offset: u64, size: u64, content: Content) -> Span {
        Span {
            number,
            offset,
            size,
            entry_at: 446 + 16 * u64::from(number - 1),
            content,
        }
    }

    #[test]
    fn a_filesystem_starting_inside_another_partition_hides_data() {
        let problems = overlaps(&[
            span(1, 1 << 20, 8 << 20, Content::Ext4),
            span(2, 5 << 20, 8 << 20, Content::Ext4),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert_eq!(p.kind, ProblemKind::Overlap);
        assert!(p.incomplete);
        assert_eq!(p.offset, 462);
        assert!(
            p.message.contains("bytes 5242880..9437184"),
            "{}",
            p.message
        );
    }

    #[test]
    fn an_empty_partition_overlapping_a_filesystem_is_a_note() {
        let problems = overlaps(&[
            span(2, 5 << 20, 8 << 20, Content::Unknown),
            span(1, 1 << 20, 8 << 20, Content::Ext4),
        ]);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].incomplete);
    }

    #[test]
    fn adjacent_and_empty_partitions_do_not_overlap() {
        assert!(overlaps(&[
            span(1, 0, 10, Content::Ext4),
            span(2, 10, 10, Content::Ext4),
            span(3, 5, 0, Content::Ext4),
        ])
        .is_empty());
    }

    #[test]
    fn thousands_of_overlaps_are_capped_and_fail_closed() {
        let spans: Vec<Span> = (1..=2000)
            .map(|n| span(n, u64::from(n), 1 << 30, Content::Unknown))
            .collect();
        let problems = overlaps(&spans);
        assert_eq!(problems.len(), MAX_OVERLAPS_LISTED + 1);
        assert!(problems.last().is_some_and(|p| p.incomplete));
    }

    #[test]
    fn past_end_names_the_partition_and_the_overshoot() {
        let problems = past_end(
            &[
                span(1, 0, 100, Content::Ext4),
                span(2, 100, 50, Content::Ext4),
            ],
            120,
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].incomplete);
        assert!(
            problems[0].message.contains("30 bytes past"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_hybrid_entry_must_match_a_gpt_entry_exactly() {
        let gpt = [span(1, 1 << 20, 8 << 20, Content::Vfat)];
        assert!(hybrid_mismatches(&[span(2, 1 << 20, 8 << 20, Content::Vfat)], &gpt).is_empty());
        let shifted = hybrid_mismatches(&[span(2, 2 << 20, 8 << 20, Content::Ext4)], &gpt);
        assert_eq!(shifted.len(), 1);
        assert!(shifted[0].incomplete, "{shifted:?}");
        let shorter = hybrid_mismatches(&[span(2, 1 << 20, 4 << 20, Content::Vfat)], &gpt);
        assert!(!shorter[0].incomplete, "{shorter:?}");
    }
}
