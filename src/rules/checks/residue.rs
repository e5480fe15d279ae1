//! `kind: residue` — what deleted files left in a volume's free space and journal. A
//! snapshot copies every block, so a key removed with a plain `rm` is still on the image
//! for whoever launches or copies it. One pass ([`run_pass`]) serves every residue check:
//! each volume's areas (as its filesystem's free-space maps and journal inode say) are
//! read once, in parallel chunks, all-zero blocks skipped, and scanned by one scanner built
//! from the checks' own detectors and the detectors of the rules they name
//! (`detectors_from`), with the same allowlists and redaction as in files. Findings carry
//! the volume, the area and the image byte offset — never the content.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::secrets::{CheckKey, SecretsPass};
use super::{Check, CheckReport};
use crate::filesystems::residue::{Area, AreaKind};
use crate::filesystems::Filesystem;
use crate::guest::{Guest, GuestPath};
use crate::image::BlockSource;
use crate::rules::finding::ResidueAt;
use crate::rules::spec_error::EmptyList;
use crate::rules::{Finding, Rule, Severity, SpecError};
use crate::secrets::{Checked, DetectorSpec, Scanner};

/// Bytes read and scanned per work item: large enough for sequential reads, small enough
/// that a volume's free space spreads over every worker.
const CHUNK: u64 = 8 << 20;

/// Bytes read past a chunk's end, so a match that starts in the chunk is found whole (the
/// secrets engine's longest match is 4 KiB).
const OVERLAP: u64 = 8 << 10;

/// The unit of the zero and text tests: the smallest ext block; a FAT cluster may be
/// smaller, so a block can hold the end of one file and the start of another.
const BLOCK: usize = 1024;

/// Findings listed per check; the rest are counted.
const MAX_FINDINGS: usize = 1000;

/// Matches kept per piece, and in all: free space full of key-shaped text (a crafted
/// image, a dump of test data) costs a count, not memory. The rest are counted.
const MAX_MATCHES_PER_PIECE: usize = MAX_FINDINGS;
const MAX_MATCHES: usize = 20 * MAX_FINDINGS;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Rule ids or id globs (`creds.*`) whose secrets checks lend their detectors: those
    /// of checks that read every file, minus detectors scoped to files by path (a
    /// `.pgpass` line means nothing outside a `.pgpass`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors_from: Vec<String>,
    /// Detectors of this check's own (the remains of what clean-up guidance removes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors: Vec<DetectorSpec>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
    own: Checked,
    from: GlobSet,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.detectors.is_empty() && self.detectors_from.is_empty() {
            return Err(SpecError::EmptyList(EmptyList::Detectors));
        }
        let mut from = GlobSetBuilder::new();
        for pattern in &self.detectors_from {
            let glob = Glob::new(pattern).map_err(|source| SpecError::InvalidSelector {
                selector: pattern.clone(),
                source,
            })?;
            from.add(glob);
        }
        let from = from.build().map_err(|source| SpecError::InvalidSelector {
            selector: self.detectors_from.join(", "),
            source,
        })?;
        let own = crate::secrets::validate(&self.detectors)?;
        Ok(Compiled {
            spec: self.clone(),
            own,
            from,
        })
    }
}

impl Compiled {
    /// This check's share of the pass, found by its key.
    pub fn report(&self, key: &CheckKey, pass: Option<&ResiduePass>) -> CheckReport {
        let Some(pass) = pass else {
            return CheckReport::skipped("free space and journals were not read (--no-residue)");
        };
        CheckReport {
            findings: pass.findings.get(key).cloned().unwrap_or_default(),
            unknown: pass.unknown.get(key).cloned().unwrap_or_default(),
            skipped: None,
        }
    }
}

/// Counts from the pass, for the report's `stats.residue`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ResidueStats {
    /// Volumes whose areas were read.
    pub volumes: usize,
    /// Bytes in the areas (free space and journals).
    pub area_bytes: u64,
    /// Of those, the bytes in 1 KiB blocks that are not all zeros.
    pub nonzero_bytes: u64,
    /// Of those, the bytes in blocks of text (no NUL byte between their first and last
    /// non-zero byte): what the detectors ran over. Binary blocks are skipped, as binary
    /// files are by the secrets pass.
    pub text_bytes: u64,
    /// Matches an allowlist removed.
    pub allowlisted: usize,
    /// Findings beyond the per-check limit, counted only.
    pub findings_dropped: usize,
    /// Matches whose value a package ships in a live file, reported at `info`.
    pub package_content: usize,
}

/// What the pass found, by check key.
#[derive(Debug, Default)]
pub struct ResiduePass {
    pub findings: HashMap<CheckKey, Vec<Finding>>,
    pub unknown: HashMap<CheckKey, Vec<String>>,
    pub stats: ResidueStats,
}

/// Which check a detector of the combined scanner serves, and under what name.
struct Owner {
    check: usize,
    name: String,
}

/// The detectors of every check, combined: the checks' own, then those lent by the rules
/// each names, in `lenders` order (every rule loaded, selected or not).
fn combine(checks: &[(CheckKey, &Compiled)], lenders: &[Arc<Rule>]) -> (Checked, Vec<Owner>) {
    let mut parts: Vec<&Checked> = Vec::new();
    let mut owners = Vec::new();
    for (check_index, (_, check)) in checks.iter().enumerate() {
        parts.push(&check.own);
        owners.extend(check.spec.detectors.iter().map(|d| Owner {
            check: check_index,
            name: d.name.clone(),
        }));
        for rule in lenders.iter().filter(|r| check.from.is_match(&r.id)) {
            for lent in rule.checks.iter().filter_map(|c| match c {
                Check::Secrets(secrets) if secrets.reads_every_file() => Some(secrets),
                _ => None,
            }) {
                parts.push(lent.detectors());
                owners.extend(lent.spec().detectors.iter().map(|d| Owner {
                    check: check_index,
                    name: d.name.clone(),
                }));
            }
        }
    }
    (Checked::concat(parts), owners)
}

/// One volume's areas, as the pass reads them.
struct VolumeAreas<'g> {
    id: &'g str,
    source: &'g dyn BlockSource,
    fs: &'g dyn Filesystem,
    /// Where the guest mounts it, to turn a former path into a guest path.
    mount_point: Option<&'g [u8]>,
    areas: Vec<Area>,
}

/// A piece of an area: `range` is scanned; `read_end` reaches past it into the same
/// contiguous range so that matches starting in it are found whole.
struct Piece {
    volume: usize,
    area: AreaKind,
    range: Range<u64>,
    read_end: u64,
}

/// What scanning one piece came to: the non-zero bytes of the piece proper, and the
/// matches that start in it.
struct PieceScan {
    nonzero: u64,
    text: u64,
    found: Vec<Found>,
    /// Matches beyond `MAX_MATCHES_PER_PIECE`, counted only.
    dropped: usize,
    /// Matches an allowlist removed.
    allowlisted: usize,
}

/// A match in a piece: the detector, where it starts in the volume, its fingerprint.
struct Found {
    detector: usize,
    at: u64,
    fingerprint: String,
}

/// Reads every volume's free space and journal once and scans them for every residue
/// check. A volume whose areas cannot be listed (a reader that does not know its free
/// space, damaged bitmaps) or read leaves every check unknown: what was not read is never
/// a pass.
pub fn run_pass(
    checks: &[(CheckKey, &Compiled)],
    lenders: &[Arc<Rule>],
    guest: &Guest,
    secrets: Option<&SecretsPass>,
) -> ResiduePass {
    let mut pass = ResiduePass::default();
    let unknown_all = |pass: &mut ResiduePass, why: String| {
        for (key, _) in checks {
            pass.unknown
                .entry(key.clone())
                .or_default()
                .push(why.clone());
        }
    };
    let (checked, owners) = combine(checks, lenders);
    let scanner = match Scanner::from_checked(checked) {
        Ok(scanner) => scanner,
        Err(e) => {
            unknown_all(&mut pass, e.to_string());
            return pass;
        }
    };
    let enabled: Vec<bool> = (0..scanner.len()).map(|i| !scanner.is_scoped(i)).collect();

    let mut volumes = Vec::new();
    for state in &guest.volumes {
        let (Some(fs), Some(source)) = (&state.fs, &state.volume.source) else {
            continue;
        };
        let id = state.volume.id.as_str();
        match fs.residue_areas() {
            None => unknown_all(
                &mut pass,
                format!(
                    "volume {id} ({}): its free space is not known to this reader, so it \
                     was not read",
                    fs.type_name()
                ),
            ),
            Some(Err(e)) => unknown_all(
                &mut pass,
                format!(
                    "volume {id}: its free space could not be listed: {}",
                    e.rebase(&state.volume.placement())
                ),
            ),
            Some(Ok(areas)) => volumes.push(VolumeAreas {
                id,
                source: source.as_ref(),
                fs: fs.as_ref(),
                mount_point: state.mount_point.as_deref(),
                areas,
            }),
        }
    }
    pass.stats.volumes = volumes.len();
    pass.stats.area_bytes = volumes
        .iter()
        .flat_map(|v| &v.areas)
        .map(Area::bytes)
        .fold(0, u64::saturating_add);

    let pieces = pieces(&volumes);
    // In order: `collect` keeps the pieces' order whichever thread scanned each.
    let outcomes: Vec<Result<PieceScan, String>> = pieces
        .par_iter()
        .map(|piece| match volumes.get(piece.volume) {
            Some(volume) => scan_piece(&scanner, &enabled, volume.source, piece),
            None => Ok(PieceScan {
                nonzero: 0,
                text: 0,
                dropped: 0,
                allowlisted: 0,
                found: Vec::new(),
            }),
        })
        .collect();

    // Matches in order.
    let mut kept: Vec<(&Piece, Found)> = Vec::new();
    let mut failed: HashSet<(usize, AreaKind)> = HashSet::new();
    for (piece, outcome) in pieces.iter().zip(outcomes) {
        let Some(volume) = volumes.get(piece.volume) else {
            continue;
        };
        match outcome {
            Ok(scan) => {
                pass.stats.nonzero_bytes += scan.nonzero;
                pass.stats.text_bytes += scan.text;
                pass.stats.findings_dropped += scan.dropped;
                pass.stats.allowlisted += scan.allowlisted;
                for hit in scan.found {
                    if kept.len() >= MAX_MATCHES {
                        pass.stats.findings_dropped += 1;
                    } else {
                        kept.push((piece, hit));
                    }
                }
            }
            // The first failed read of each area is named; the area is unread either way.
            Err(e) if failed.insert((piece.volume, piece.area)) => unknown_all(
                &mut pass,
                format!(
                    "volume {}: {} not read: {e}",
                    volume.id,
                    piece.area.as_str()
                ),
            ),
            Err(_) => {}
        }
    }
    let former = former_paths(&volumes, &kept);
    let mut listed: HashMap<usize, usize> = HashMap::new();
    for ((piece, hit), formerly) in kept.into_iter().zip(former) {
        let Some(volume) = volumes.get(piece.volume) else {
            continue;
        };
        let Some(owner) = owners.get(hit.detector) else {
            continue;
        };
        let Some((key, check)) = checks.get(owner.check) else {
            continue;
        };
        let count = listed.entry(owner.check).or_default();
        if *count >= MAX_FINDINGS {
            pass.stats.findings_dropped += 1;
            continue;
        }
        *count += 1;
        let offset = volume.source.disk_offset(hit.at).unwrap_or(hit.at);
        let was = formerly
            .as_ref()
            .map(|path| format!(" (formerly {})", path.display()))
            .unwrap_or_default();
        let mut finding = Finding::in_residue(
            ResidueAt {
                volume: volume.id.to_string(),
                area: piece.area,
                offset,
                formerly,
            },
            format!(
                "{} ({}) in the {} of volume {}, at image offset {offset}{was}",
                check.spec.message,
                owner.name,
                piece.area.as_str(),
                volume.id
            ),
        )
        .subject(owner.name.clone());
        let shipped = secrets.is_some_and(|s| s.package_fingerprints.contains(&hit.fingerprint));
        if shipped {
            pass.stats.package_content += 1;
            finding.message = format!(
                "{} — the same value is in a file a package shipped unmodified \
                 (distribution content, likely an earlier version of it)",
                finding.message
            );
            finding = finding.severity(Severity::Info);
        }
        finding.fingerprint = Some(hit.fingerprint);
        pass.findings.entry(key.clone()).or_default().push(finding);
    }
    for findings in pass.findings.values_mut() {
        findings.sort();
    }
    pass
}

/// The former guest path of each free-space match, where its volume's reader can tell
/// (asked once per volume, only for volumes with matches).
fn former_paths(volumes: &[VolumeAreas<'_>], kept: &[(&Piece, Found)]) -> Vec<Option<GuestPath>> {
    let mut former = vec![None; kept.len()];
    for (index, volume) in volumes.iter().enumerate() {
        let asked: Vec<usize> = (0..kept.len())
            .filter(|&i| {
                kept.get(i)
                    .is_some_and(|(p, _)| p.volume == index && p.area == AreaKind::Free)
            })
            .collect();
        if asked.is_empty() {
            continue;
        }
        let offsets: Vec<u64> = asked
            .iter()
            .filter_map(|&i| kept.get(i).map(|(_, hit)| hit.at))
            .collect();
        let answers = volume.fs.former_paths(&offsets);
        for (&i, answer) in asked.iter().zip(answers) {
            let Some(path) = answer else { continue };
            let mut guest = volume
                .mount_point
                .filter(|m| *m != b"/")
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            guest.extend_from_slice(&path);
            if let Some(slot) = former.get_mut(i) {
                *slot = Some(GuestPath::from(guest));
            }
        }
    }
    former
}

/// Splits every area's ranges into chunks of at most `CHUNK` bytes.
fn pieces(volumes: &[VolumeAreas<'_>]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (volume_index, volume) in volumes.iter().enumerate() {
        for area in &volume.areas {
            for range in &area.ranges {
                let mut start = range.start;
                // Each step advances by CHUNK, so this ends.
                while start < range.end {
                    let end = start.saturating_add(CHUNK).min(range.end);
                    pieces.push(Piece {
                        volume: volume_index,
                        area: area.kind,
                        range: start..end,
                        read_end: end.saturating_add(OVERLAP).min(range.end),
                    });
                    start = end;
                }
            }
        }
    }
    pieces
}

thread_local! {
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads one piece and scans its non-zero stretches.
fn scan_piece(
    scanner: &Scanner,
    enabled: &[bool],
    source: &dyn BlockSource,
    piece: &Piece,
) -> Result<PieceScan, String> {
    BUFFER.with(|cell| {
        let mut buffer = cell.borrow_mut();
        // A piece is at most CHUNK + OVERLAP bytes by construction.
        let len = usize::try_from(piece.read_end.saturating_sub(piece.range.start))
            .map_err(|e| e.to_string())?
            .min((CHUNK + OVERLAP) as usize);
        buffer.resize(len, 0);
        let bytes = buffer.get_mut(..len).unwrap_or_default();
        source
            .read_exact_at(piece.range.start, bytes)
            .map_err(|e| format!("read error at volume offset {}: {e}", piece.range.start))?;
        let own_len = piece.range.end.saturating_sub(piece.range.start) as usize;
        let layout = Layout::of(bytes, own_len);
        let mut found = Vec::new();
        let mut dropped = 0usize;
        let mut allowlisted = 0usize;
        for stretch in layout.text {
            if stretch.start >= own_len {
                continue;
            }
            let Some(content) = bytes.get(stretch.clone()) else {
                continue;
            };
            let scan = scanner.scan_raw(content, enabled);
            let base = piece.range.start + stretch.start as u64;
            let starts_here = |offset: u64| base + offset < piece.range.end;
            // Beyond the scanner's own cap per call, matches are counted only.
            dropped += usize::try_from(scan.hits_dropped).unwrap_or(usize::MAX);
            allowlisted += scan
                .allowlisted
                .iter()
                .filter(|hit| starts_here(hit.offset))
                .count();
            for hit in scan.hits.into_iter().filter(|hit| starts_here(hit.offset)) {
                if found.len() >= MAX_MATCHES_PER_PIECE {
                    dropped += 1;
                } else {
                    found.push(Found {
                        detector: hit.detector,
                        at: base + hit.offset,
                        fingerprint: hit.fingerprint,
                    });
                }
            }
        }
        Ok(PieceScan {
            nonzero: layout.nonzero,
            text: layout.text_bytes,
            dropped,
            allowlisted,
            found,
        })
    })
}

/// What a block of free space holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Zero,
    /// A NUL byte between the first and the last non-zero byte: part of a binary file.
    Binary,
    /// Text, maybe after the zeros that end an earlier file's last block or before those
    /// that end its own.
    Text,
}

fn kind_of(block: &[u8]) -> Block {
    if is_zero(block) {
        return Block::Zero;
    }
    let first = block.iter().position(|&b| b != 0).unwrap_or(0);
    let last = block.iter().rposition(|&b| b != 0).unwrap_or(first);
    match block.get(first..=last) {
        Some(middle) if memchr::memchr(0, middle).is_none() => Block::Text,
        _ => Block::Binary,
    }
}

/// What a piece holds, block by block, looked at once.
struct Layout {
    /// Bytes of non-zero blocks within the piece proper (not its overlap).
    nonzero: u64,
    /// Bytes of text blocks within the piece proper.
    text_bytes: u64,
    /// The stretches of text blocks, adjacent ones joined, overlap included.
    text: Vec<Range<usize>>,
}

impl Layout {
    fn of(bytes: &[u8], own_len: usize) -> Layout {
        let mut layout = Layout {
            nonzero: 0,
            text_bytes: 0,
            text: Vec::new(),
        };
        for (index, block) in bytes.chunks(BLOCK).enumerate() {
            let start = index * BLOCK;
            let end = start + block.len();
            let own = end.min(own_len).saturating_sub(start) as u64;
            match kind_of(block) {
                Block::Zero => continue,
                Block::Binary => {
                    layout.nonzero += own;
                    continue;
                }
                Block::Text => {
                    layout.nonzero += own;
                    layout.text_bytes += own;
                }
            }
            match layout.text.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => layout.text.push(start..end),
            }
        }
        layout
    }
}

/// Whether every byte is zero: ORed as words, which compiles to vector instructions, so
/// zeroed or trimmed space costs little more than reading it.
fn is_zero(block: &[u8]) -> bool {
    let mut words = block.chunks_exact(8);
    let folded = words
        .by_ref()
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or([0xFF; 8])))
        .fold(0u64, |acc, w| acc | w);
    folded == 0 && words.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretches_keep_text_blocks_and_join_neighbours() {
        let mut bytes = vec![0u8; BLOCK * 6 + 100];
        // Text that ends an earlier file's zeros, and text followed by its block's zeros.
        bytes[BLOCK + 700..BLOCK * 2].fill(b'a');
        bytes[BLOCK * 2..BLOCK * 2 + 9].fill(b'b');
        // A binary block: a NUL between non-zero bytes.
        bytes[BLOCK * 4] = 1;
        bytes[BLOCK * 4 + 2] = 1;
        bytes[BLOCK * 6 + 99] = b'c';
        let layout = Layout::of(&bytes, BLOCK * 5);
        assert_eq!(
            layout.text,
            vec![BLOCK..BLOCK * 3, BLOCK * 6..BLOCK * 6 + 100]
        );
        // Within the first five blocks: two of text, one binary.
        assert_eq!(
            (layout.nonzero, layout.text_bytes),
            (3 * BLOCK as u64, 2 * BLOCK as u64)
        );
        assert_eq!(kind_of(&bytes[BLOCK * 4..BLOCK * 5]), Block::Binary);
        assert!(Layout::of(&[0u8; 3], 3).text.is_empty());
        assert!(!is_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
