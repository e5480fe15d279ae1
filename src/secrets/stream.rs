//! One file's content as a stream of chunks through a fixed window: keyword search over
//! each chunk, candidate regions around keyword hits, detector regexes over the regions,
//! and line numbers counted across chunks.
//!
//! The window holds `context` bytes before the chunk being searched and `context` plus the
//! longest keyword after it, so the region around any keyword hit (±`context`, cut to whole
//! lines) lies inside the window whatever the chunk boundaries are. A match is reported
//! once: per detector, matches starting before the end of the last one reported are
//! skipped, which removes the copies found again from the overlap.

use std::cell::RefCell;
use std::io::{self, Read};

use super::prefilter::fold_into;
use super::{fingerprint, FileScan, Hit, MatchContext, Scanner, MAX_HITS_PER_FILE};

/// A NUL byte this early means a binary file.
pub const BINARY_PROBE: usize = 8 << 10;

/// Chunk and region sizes.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Bytes searched for keywords per step.
    pub chunk: usize,
    /// How far a candidate region reaches on either side of a keyword hit; also the
    /// longest match found whole.
    pub context: usize,
}

impl Geometry {
    pub const DEFAULT: Geometry = Geometry {
        chunk: 256 << 10,
        context: 4 << 10,
    };
}

/// What scanning the content produced.
#[derive(Debug, Default)]
pub struct Outcome {
    scan: FileScan,
    /// The content reader failed; what was read before was scanned.
    error: Option<io::Error>,
}

impl Outcome {
    pub fn failed(error: io::Error) -> Self {
        Outcome {
            scan: FileScan::default(),
            error: Some(error),
        }
    }

    /// Plain content: a read error is the caller's.
    pub fn into_scan(self, compressed: Option<&'static str>) -> io::Result<FileScan> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(FileScan {
                compressed,
                ..self.scan
            }),
        }
    }

    /// Decompressed content: a decoder error means damaged data, scanned up to there.
    pub fn into_damaged_scan(self, compressed: &'static str) -> FileScan {
        FileScan {
            compressed: Some(compressed),
            truncated: self.scan.truncated || self.error.is_some(),
            ..self.scan
        }
    }
}

/// Buffers reused across the files one thread scans: a fresh 260 KiB window per file would
/// cost more than scanning a small file.
#[derive(Default)]
struct Workspace {
    window: Vec<u8>,
    /// The window's searched span, folded for the keyword search, at the same positions.
    folded: Vec<u8>,
    /// Candidate regions per detector, for the chunk at hand.
    regions: Vec<Vec<(usize, usize)>>,
    /// The detectors whose region lists are not empty: most files meet a few keywords,
    /// so a chunk's work is proportional to those, not to the catalogue.
    touched: Vec<usize>,
    found: Vec<Found>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// A match, before its line is known.
#[derive(Debug)]
struct Found {
    /// Position in the window.
    at: usize,
    /// The secret's absolute byte range in the content.
    secret: (u64, u64),
    detector: usize,
    fingerprint: String,
    allow_reason: Option<String>,
}

/// A match with its line: (absolute offset of its reported position, the secret's absolute
/// range, the hit).
type Placed = (u64, (u64, u64), Hit);

/// What a content scan looks at: files are probed for binary content and skipped when it
/// is; raw byte ranges (a volume's free space) hold text and binary alike and are read
/// whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    File,
    Raw,
}

pub fn scan_content(
    scanner: &Scanner,
    content: &mut dyn Read,
    max_bytes: u64,
    geometry: Geometry,
    enabled: Option<&[bool]>,
    kind: Content,
) -> Outcome {
    let mut run = |workspace: &mut Workspace| {
        run(
            scanner, content, max_bytes, geometry, enabled, kind, workspace,
        )
    };
    WORKSPACE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut workspace) => run(&mut workspace),
        Err(_) => run(&mut Workspace::default()),
    })
}

/// Reading state of one file.
struct Reader<'r> {
    content: &'r mut dyn Read,
    /// Content bytes that may still be read.
    budget: u64,
    bytes: u64,
    ended: bool,
    truncated: bool,
    error: Option<io::Error>,
}

impl Reader<'_> {
    /// Reads into `window[*len..want]` until it is full or the content ends.
    fn fill(&mut self, window: &mut [u8], len: &mut usize, want: usize) {
        while *len < want && !self.ended {
            if self.budget == 0 {
                // Only whether there is more matters: one byte says it.
                let mut probe = [0u8; 1];
                self.truncated = loop {
                    match self.content.read(&mut probe) {
                        Ok(n) => break n > 0,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // The bytes within the budget were read; what follows is unread,
                        // readable or not.
                        Err(_) => break true,
                    }
                };
                self.ended = true;
                break;
            }
            let room = (want - *len).min(usize::try_from(self.budget).unwrap_or(usize::MAX));
            let Some(target) = window.get_mut(*len..*len + room) else {
                self.ended = true;
                break;
            };
            match self.content.read(target) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    let n = n.min(room);
                    *len += n;
                    self.budget -= n as u64;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.ended = true;
                }
            }
        }
    }
}

/// Per-file matching state.
struct Matches {
    /// Per detector: absolute end of the last match reported.
    done_until: Vec<u64>,
    hits: Vec<Placed>,
    allowlisted: Vec<Placed>,
    dropped: u64,
}

fn run(
    scanner: &Scanner,
    content: &mut dyn Read,
    max_bytes: u64,
    geometry: Geometry,
    enabled: Option<&[bool]>,
    kind: Content,
    workspace: &mut Workspace,
) -> Outcome {
    let context = geometry.context.max(1);
    let chunk = geometry.chunk.max(1);
    // The longest keyword of all detectors, whichever automaton runs: the window's size.
    let longest = scanner.prefilter.longest();
    let capacity = context + chunk + context + longest;
    for buffer in [&mut workspace.window, &mut workspace.folded] {
        if buffer.len() < capacity {
            buffer.resize(capacity, 0);
        }
    }
    let Workspace {
        window,
        folded,
        regions,
        touched,
        found,
    } = workspace;
    let window = window.get_mut(..capacity).unwrap_or_default();
    for &detector in touched.iter() {
        if let Some(list) = regions.get_mut(detector) {
            list.clear();
        }
    }
    touched.clear();
    if regions.len() != scanner.detectors.len() {
        regions.iter_mut().for_each(Vec::clear);
        regions.resize_with(scanner.detectors.len(), Vec::new);
    }
    found.clear();

    let mut reader = Reader {
        content,
        budget: max_bytes,
        bytes: 0,
        ended: false,
        truncated: false,
        error: None,
    };
    let mut len = 0usize;
    reader.fill(window, &mut len, BINARY_PROBE.min(capacity));
    // A sparse file's holes read as zeros: a leading run of them says nothing about what
    // follows (a 2 GiB log with a few lines at its end is text), so it is read past — within
    // `max_bytes`, like any content — and the probe looks at the first bytes after it.
    // Offsets still count from the content's start.
    let mut skipped = 0u64;
    while let Some(filled) = window.get(..len).filter(|f| !f.is_empty()) {
        match filled.iter().position(|&b| b != 0) {
            Some(0) => break,
            Some(start) => {
                window.copy_within(start..len, 0);
                len -= start;
                skipped += start as u64;
                reader.fill(window, &mut len, BINARY_PROBE.min(capacity));
                break;
            }
            None if reader.ended => break,
            None => {
                skipped += len as u64;
                len = 0;
                reader.fill(window, &mut len, BINARY_PROBE.min(capacity));
            }
        }
    }
    let probe = window.get(..len.min(BINARY_PROBE)).unwrap_or_default();
    if kind == Content::File && memchr::memchr(0, probe).is_some() {
        return Outcome {
            scan: FileScan {
                binary: true,
                bytes: reader.bytes,
                ..FileScan::default()
            },
            error: reader.error,
        };
    }

    let mut matches = Matches {
        done_until: vec![0; scanner.detectors.len()],
        hits: Vec::new(),
        allowlisted: Vec::new(),
        dropped: 0,
    };
    // Absolute offset and line number of window[0]; bytes before `searched` were searched.
    let mut base = skipped;
    let mut line_base = 1u64;
    let mut searched = 0usize;
    loop {
        reader.fill(window, &mut len, capacity);
        let haystack = window.get(..len).unwrap_or_default();
        let limit = if reader.ended {
            len
        } else {
            len.saturating_sub(context + longest)
        };
        let step = Step {
            scanner,
            enabled,
            haystack,
            base,
            context,
            at_end: reader.ended,
        };
        step.search(searched, limit, folded, regions, touched);
        step.evaluate(regions, touched, found, &mut matches);
        step.number_lines(found, line_base, &mut matches);
        if reader.ended {
            break;
        }
        // Keep `context` bytes before the next search position.
        let keep_from = limit.saturating_sub(context);
        line_base += count_newlines(haystack.get(..keep_from).unwrap_or_default());
        window.copy_within(keep_from..len, 0);
        len -= keep_from;
        base += keep_from as u64;
        searched = limit - keep_from;
    }

    let Matches {
        mut hits,
        mut allowlisted,
        dropped,
        ..
    } = matches;
    yield_generic_matches(scanner, &mut hits, &allowlisted);
    // File order; matches of different detectors may be found out of order across chunks.
    hits.sort_by_key(|(at, _, hit)| (*at, hit.detector));
    allowlisted.sort_by_key(|(at, _, hit)| (*at, hit.detector));
    Outcome {
        scan: FileScan {
            hits: hits.into_iter().map(|(_, _, hit)| hit).collect(),
            allowlisted: allowlisted.into_iter().map(|(_, _, hit)| hit).collect(),
            hits_dropped: dropped,
            binary: false,
            truncated: reader.truncated,
            compressed: None,
            bytes: reader.bytes,
        },
        error: reader.error,
    }
}

/// Drops each reported match of a generic detector whose secret overlaps a match of a
/// specific one (reported or allowlisted): the specific detector knows the format, so one
/// credential is reported once, under its own kind.
fn yield_generic_matches(scanner: &Scanner, hits: &mut Vec<Placed>, allowlisted: &[Placed]) {
    let generic = |detector: usize| scanner.detectors.get(detector).is_some_and(|d| d.generic);
    if !hits.iter().any(|(_, _, hit)| generic(hit.detector)) {
        return;
    }
    let specific: Vec<(u64, u64)> = hits
        .iter()
        .chain(allowlisted)
        .filter(|(_, _, hit)| !generic(hit.detector))
        .map(|(_, span, _)| *span)
        .collect();
    hits.retain(|(_, (start, end), hit)| {
        !generic(hit.detector) || !specific.iter().any(|&(s, e)| s < *end && *start < e)
    });
}

/// Newlines in `bytes`. Counted in byte-sized lanes, 255 bytes at a time, which the
/// compiler vectorises; a count into 64-bit lanes ran at a quarter of the speed.
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes
        .chunks(255)
        .map(|chunk| {
            let count = chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n')));
            u64::from(count)
        })
        .sum()
}

/// One chunk of one file.
struct Step<'a> {
    scanner: &'a Scanner,
    /// Which detectors run; all when `None`.
    enabled: Option<&'a [bool]>,
    haystack: &'a [u8],
    /// Absolute offset of haystack[0].
    base: u64,
    context: usize,
    /// The haystack ends where the content ends.
    at_end: bool,
}

impl Step<'_> {
    /// Finds keywords starting in `searched..limit` and records, per detector, the merged
    /// candidate regions around them.
    fn search(
        &self,
        searched: usize,
        limit: usize,
        folded: &mut [u8],
        regions: &mut [Vec<(usize, usize)>],
        touched: &mut Vec<usize>,
    ) {
        let prefilter = self.scanner.prefilter_for(self.enabled);
        let longest = self.scanner.prefilter.longest();
        let end = limit
            .saturating_add(longest.saturating_sub(1))
            .min(self.haystack.len());
        if searched >= end {
            return;
        }
        let (Some(source), Some(target)) = (
            self.haystack.get(searched..end),
            folded.get_mut(searched..end),
        ) else {
            return;
        };
        fold_into(source, target);
        let folded = folded.get(..end).unwrap_or_default();
        let enabled = |detector: usize| {
            self.enabled
                .is_none_or(|flags| flags.get(detector).copied().unwrap_or(false))
        };
        for &index in &self.scanner.everywhere {
            if let (true, Some(list)) = (enabled(index), regions.get_mut(index)) {
                if list.is_empty() {
                    touched.push(index);
                }
                list.push((self.region_start(searched), self.region_end(limit)));
            }
        }
        for hit in prefilter.find(folded, searched..limit, end) {
            for &detector in prefilter.owners(hit.keyword) {
                if !enabled(detector) {
                    continue;
                }
                let Some(list) = regions.get_mut(detector) else {
                    continue;
                };
                if list.is_empty() {
                    touched.push(detector);
                }
                let hi = self.region_end(hit.end);
                let reach = hit.start.saturating_sub(self.context);
                match list.last_mut() {
                    // Most hits of a common keyword fall inside the region before: extend
                    // it without looking for the new region's start, which lies between.
                    Some(last) if last.0 <= reach && reach <= last.1 => last.1 = last.1.max(hi),
                    _ => list.push((self.region_start(hit.start), hi)),
                }
            }
        }
    }

    /// The start of the candidate region for a hit at `start`: the first line start within
    /// `context` bytes before it, or exactly `context` bytes before it inside a longer line.
    fn region_start(&self, start: usize) -> usize {
        let lo = start.saturating_sub(self.context);
        if lo == 0 || self.haystack.get(lo - 1) == Some(&b'\n') {
            return lo;
        }
        let before = self.haystack.get(lo..start).unwrap_or_default();
        match memchr::memchr(b'\n', before) {
            Some(i) => lo + i + 1,
            None => lo,
        }
    }

    /// The end of the candidate region for a hit ending at `end`: the last line end within
    /// `context` bytes after it, or exactly `context` bytes after it inside a longer line.
    fn region_end(&self, end: usize) -> usize {
        let len = self.haystack.len();
        let hi = end.saturating_add(self.context).min(len);
        if (hi == len && self.at_end) || self.haystack.get(hi) == Some(&b'\n') {
            return hi;
        }
        let after = self.haystack.get(end..hi).unwrap_or_default();
        match memchr::memrchr(b'\n', after) {
            Some(i) => end + i,
            None => hi,
        }
    }

    /// Runs each detector's regex over its merged regions.
    fn evaluate(
        &self,
        regions: &mut [Vec<(usize, usize)>],
        touched: &mut Vec<usize>,
        found: &mut Vec<Found>,
        matches: &mut Matches,
    ) {
        // In detector order, as the cap on matches per file counts them.
        touched.sort_unstable();
        for index in touched.drain(..) {
            let Some(list) = regions.get_mut(index) else {
                continue;
            };
            let (Some(detector), Some(done_until)) = (
                self.scanner.detectors.get(index),
                matches.done_until.get_mut(index),
            ) else {
                list.clear();
                continue;
            };
            list.sort_unstable();
            let mut merged: Option<(usize, usize)> = None;
            let mut spans = Vec::new();
            for &(lo, hi) in list.iter() {
                merged = match merged {
                    Some((a, b)) if lo <= b => Some((a, b.max(hi))),
                    Some(done) => {
                        spans.push(done);
                        Some((lo, hi))
                    }
                    None => Some((lo, hi)),
                };
            }
            spans.extend(merged);
            list.clear();
            for (lo, hi) in spans {
                let Some(region) = self.haystack.get(lo..hi) else {
                    continue;
                };
                // Compiled on first use; one that cannot be is named by `Scanner::failures`.
                let Ok(regex) = detector.regex.get() else {
                    continue;
                };
                for caps in regex.captures_iter(region) {
                    let Some(whole) = caps.get(0) else {
                        continue;
                    };
                    let start = self.base + (lo + whole.start()) as u64;
                    if start < *done_until
                        || !(detector.everywhere
                            || detector.keyword_nearby
                            || detector.contains_keyword(whole.as_bytes()))
                    {
                        continue;
                    }
                    *done_until = self.base + (lo + whole.end()) as u64;
                    let Some(secret) = detector.secret(&caps) else {
                        continue;
                    };
                    if found.len() + matches.hits.len() + matches.allowlisted.len()
                        >= MAX_HITS_PER_FILE
                    {
                        matches.dropped += 1;
                        continue;
                    }
                    // A finding's line is where the secret is, or where an `at` group says
                    // (a PEM block is reported at its BEGIN line, not its first body line).
                    let at = caps
                        .name("at")
                        .or_else(|| caps.name("secret"))
                        .map_or(whole.start(), |m| m.start());
                    let secret_start = (secret.as_ptr() as usize)
                        .saturating_sub(region.as_ptr() as usize)
                        .min(region.len());
                    let line_start =
                        memchr::memrchr(b'\n', region.get(..whole.start()).unwrap_or_default())
                            .map_or(0, |i| i + 1);
                    let line_end =
                        memchr::memchr(b'\n', region.get(whole.end()..).unwrap_or_default())
                            .map_or(region.len(), |i| whole.end() + i);
                    let context = MatchContext {
                        secret,
                        whole: whole.as_bytes(),
                        line: region.get(line_start..line_end).unwrap_or_default(),
                    };
                    let secret_at = self.base + (lo + secret_start) as u64;
                    found.push(Found {
                        at: lo + at,
                        secret: (secret_at, secret_at + secret.len() as u64),
                        detector: index,
                        fingerprint: fingerprint(secret),
                        allow_reason: detector.allow_reason(&context),
                    });
                }
            }
        }
    }

    /// Gives each match of this chunk its line, counting newlines once through the window.
    fn number_lines(&self, found: &mut Vec<Found>, line_base: u64, matches: &mut Matches) {
        found.sort_by_key(|f| (f.at, f.detector));
        let mut at = 0usize;
        let mut line = line_base;
        for f in found.drain(..) {
            line += count_newlines(self.haystack.get(at..f.at).unwrap_or_default());
            at = f.at;
            let offset = self.base + f.at as u64;
            let hit = Hit {
                detector: f.detector,
                line,
                offset: f.secret.0,
                fingerprint: f.fingerprint,
                allow_reason: f.allow_reason,
            };
            if hit.allow_reason.is_some() {
                matches.allowlisted.push((offset, f.secret, hit));
            } else {
                matches.hits.push((offset, f.secret, hit));
            }
        }
    }
}
