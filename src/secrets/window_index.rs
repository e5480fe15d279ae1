//! A keyword search that stays fast with a thousand keywords: each keyword is indexed by
//! one three-byte window of it (its rarest in ordinary text, chosen by the prefilter),
//! hashed into a table of flags. The text is read once, eight positions to a step: the
//! windows there are hashed and their flags or-ed, and only when one is set are the
//! keywords of that window compared in full.
//!
//! Why not the Aho-Corasick automaton here: past 64 keywords its SIMD searcher (Teddy)
//! gives way to a DFA whose every step waits for the previous one (the next state depends
//! on the last): about 0.4 GB/s per core on the benchmark's text, against about 1 GB/s
//! for this index (docs/performance.md). Sampling every second position (each keyword
//! indexed by two windows of different parity) was measured too: half the lookups, but
//! twice the flagged positions, and keywords of three bytes searched apart, for no gain.

/// log2 of the flag table's size. A flag per byte, not per bit: testing a bit takes a
/// variable shift, which cost a quarter of the search's speed; 256 KiB of flags sit in the
/// second-level cache, and fewer windows of text share a slot with a keyword's than in a
/// smaller table (1.4 % of positions flagged on the benchmark's text, against 2.3 % with
/// 64 KiB).
const BITS: u32 = 18;

/// Three bytes taken from the low bytes of `window`.
const WINDOW: u32 = 0x00FF_FFFF;

/// The table slot of a three-byte window (its bytes in the low 24 bits, first byte
/// lowest).
fn slot(window: u32) -> usize {
    ((window & WINDOW).wrapping_mul(0x9E37_79B1) >> (32 - BITS)) as usize
}

/// The three-byte window starting at `bytes[0]`, if there are three bytes.
fn window_at(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [a, b, c, ..] => Some(u32::from(*a) | (u32::from(*b) << 8) | (u32::from(*c) << 16)),
        _ => None,
    }
}

/// Positions looked at per step of the search.
const STEP: usize = 8;

/// One keyword as the index needs it.
pub struct Indexed<'k> {
    /// What `find` reports for it.
    pub id: usize,
    pub bytes: &'k [u8],
    /// Offset of the indexed window in `bytes` (at most `bytes.len() - 3`).
    pub anchor: usize,
}

pub struct WindowIndex {
    /// The keywords indexed (folded bytes, anchor, id), in the order given to `new`.
    keywords: Vec<(Vec<u8>, usize, usize)>,
    /// 1 where a keyword's window hashes.
    flags: Vec<u8>,
    /// Keyword indices grouped by slot: those of slot `s` are
    /// `entries[starts[s]..starts[s + 1]]`.
    starts: Vec<u32>,
    entries: Vec<u32>,
}

/// A keyword found: its id, and where it starts and ends in the haystack.
pub type Found = (usize, usize, usize);

impl WindowIndex {
    /// Indexes `keywords`; one whose anchor leaves no three bytes is left out (callers
    /// choose anchors that fit).
    pub fn new(keywords: &[Indexed<'_>]) -> Self {
        let mut flags = vec![0u8; 1 << BITS];
        let mut slotted: Vec<(usize, u32)> = Vec::new();
        let mut kept = Vec::new();
        for keyword in keywords {
            let window = keyword.bytes.get(keyword.anchor..).and_then(window_at);
            let (Some(window), Ok(index)) = (window, u32::try_from(kept.len())) else {
                continue;
            };
            kept.push((keyword.bytes.to_vec(), keyword.anchor, keyword.id));
            slotted.push((slot(window), index));
        }
        slotted.sort_unstable();
        let mut starts = vec![0u32; (1 << BITS) + 1];
        for &(slot, _) in &slotted {
            if let Some(flag) = flags.get_mut(slot) {
                *flag = 1;
            }
            if let Some(count) = starts.get_mut(slot + 1) {
                *count += 1;
            }
        }
        for index in 1..starts.len() {
            let before = starts.get(index - 1).copied().unwrap_or(0);
            if let Some(here) = starts.get_mut(index) {
                *here += before;
            }
        }
        WindowIndex {
            keywords: kept,
            flags,
            starts,
            entries: slotted.into_iter().map(|(_, index)| index).collect(),
        }
    }

    fn flag(&self, slot: usize) -> u8 {
        self.flags.get(slot).copied().unwrap_or(0)
    }

    /// Every occurrence in `haystack` of a keyword that starts in `from..limit` and ends by
    /// `haystack.len()`, in the order of their windows.
    pub fn find(&self, haystack: &[u8], from: usize, limit: usize, found: &mut Vec<Found>) {
        let mut at = from;
        // A step's windows come from two overlapping eight-byte loads; it branches only
        // when one of their flags is set.
        while let Some(bytes) = haystack.get(at..at + STEP + 4) {
            let (Some(low), Some(high)) = (
                bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
                bytes.get(4..12).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            ) else {
                break;
            };
            let (low, high) = (u64::from_le_bytes(low), u64::from_le_bytes(high));
            // The window at offset `o` of this step: bytes `o..o + 3`.
            let window = |o: usize| -> u32 {
                if o <= 4 {
                    (low >> (8 * o)) as u32
                } else {
                    (high >> (8 * (o - 4))) as u32
                }
            };
            let any = (0..STEP).fold(0u8, |any, o| any | self.flag(slot(window(o))));
            if any != 0 {
                for o in 0..STEP {
                    let slot = slot(window(o));
                    if self.flag(slot) != 0 {
                        self.verify(haystack, at + o, slot, from, limit, found);
                    }
                }
            }
            at += STEP;
        }
        while let Some(window) = haystack.get(at..).and_then(window_at) {
            let slot = slot(window);
            if self.flag(slot) != 0 {
                self.verify(haystack, at, slot, from, limit, found);
            }
            at += 1;
        }
    }

    /// Compares in full the keywords whose window hashes to `slot`, as if that window were
    /// at `at`.
    fn verify(
        &self,
        haystack: &[u8],
        at: usize,
        slot: usize,
        from: usize,
        limit: usize,
        found: &mut Vec<Found>,
    ) {
        let (Some(&first), Some(&last)) = (self.starts.get(slot), self.starts.get(slot + 1)) else {
            return;
        };
        let candidates = self
            .entries
            .get(first as usize..last as usize)
            .unwrap_or_default();
        for &index in candidates {
            let Some((bytes, anchor, id)) = self.keywords.get(index as usize) else {
                continue;
            };
            let Some(start) = at.checked_sub(*anchor) else {
                continue;
            };
            let end = start + bytes.len();
            if start >= from && start < limit && haystack.get(start..end) == Some(bytes) {
                found.push((*id, start, end));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(words: &[Vec<u8>], anchor: usize) -> WindowIndex {
        let keywords: Vec<Indexed<'_>> = words
            .iter()
            .enumerate()
            .map(|(id, w)| Indexed {
                id,
                bytes: w,
                anchor,
            })
            .collect();
        WindowIndex::new(&keywords)
    }

    #[test]
    fn finds_every_occurrence_of_every_keyword_and_nothing_else() {
        let words: Vec<Vec<u8>> = (0..1000u32)
            .map(|i| format!("kw{i:04}_x").into_bytes())
            .collect();
        let index = index(&words, 2);
        let text = b"..kw0007_x kw0999_xkw0007_x kw1000_x kw07_x kw0500_".to_vec();
        let mut found = Vec::new();
        index.find(&text, 0, text.len(), &mut found);
        found.sort_unstable();
        assert_eq!(found, vec![(7, 2, 10), (7, 19, 27), (999, 11, 19)]);
        // A keyword must start in the span and end within the haystack.
        let mut found = Vec::new();
        index.find(&text, 3, 19, &mut found);
        assert_eq!(found, vec![(999, 11, 19)]);
        let mut found = Vec::new();
        index.find(&text[..18], 0, 18, &mut found);
        assert_eq!(found, vec![(7, 2, 10)]);
    }

    /// A keyword at every offset of the eight-position steps, at the start, in the middle
    /// and at the end of the haystack, is found once.
    #[test]
    fn finds_each_occurrence_once_at_every_alignment() {
        let words = vec![b"secret_key".to_vec(), b"ghp_".to_vec()];
        let index = index(&words, 1);
        for len in 4..40 {
            for at in 0..=len - 4 {
                let mut text = vec![b'.'; len];
                text.get_mut(at..at + 4).unwrap().copy_from_slice(b"ghp_");
                for from in [0, 1, 3] {
                    let mut found = Vec::new();
                    index.find(&text, from, len, &mut found);
                    let expected = if at >= from {
                        vec![(1, at, at + 4)]
                    } else {
                        vec![]
                    };
                    assert_eq!(found, expected, "len {len} at {at} from {from}");
                }
            }
        }
    }
}
