//! A keyword search that stays fast with a thousand keywords: each keyword is indexed by
//! one three-byte window of it (its rarest, chosen by the prefilter), hashed into a bit
//! table that fits the first-level cache. The text is read once; at each position the
//! hash of the three bytes there is looked up, and only where its bit is set are the
//! keywords of that window compared in full.
//!
//! Why not the Aho-Corasick automaton here: past 64 keywords its SIMD searcher (Teddy)
//! gives way to a DFA whose every step waits for the previous one (the next state depends
//! on the last): about 0.4 GB/s per core on the benchmark's text, against about 0.75 GB/s
//! for this index with 999 keywords (docs/performance.md). Both are far from Teddy's
//! speed: a vectorised search for a thousand literals is the next step.

/// log2 of the bit table's size: 16 KiB, within a first-level data cache.
const BITS: u32 = 17;
const WORDS: usize = 1 << (BITS - 6);

/// The table slot of the three bytes `a b c` (as `find` computes it from its rolling
/// window).
fn slot(a: u8, b: u8, c: u8) -> usize {
    let window = u32::from(a) | (u32::from(b) << 8) | (u32::from(c) << 16);
    (window.wrapping_mul(0x9E37_79B1) >> (32 - BITS)) as usize
}

/// One keyword as the index needs it.
pub struct Indexed<'k> {
    pub bytes: &'k [u8],
    /// Offset of the indexed window in `bytes` (at most `bytes.len() - 3`).
    pub anchor: usize,
}

pub struct WindowIndex {
    /// The keywords indexed (folded bytes, anchor), in the order given to `new`.
    keywords: Vec<(Vec<u8>, usize)>,
    bits: Box<[u64; WORDS]>,
    /// Keyword indices grouped by slot: those of slot `s` are
    /// `entries[starts[s]..starts[s + 1]]`.
    starts: Vec<u32>,
    entries: Vec<u32>,
}

/// A keyword found: its index, and where it starts and ends in the haystack.
pub type Found = (usize, usize, usize);

impl WindowIndex {
    /// Indexes `keywords` (each at least three bytes long); their positions in the slice
    /// are the indices `find` reports.
    pub fn new(keywords: &[Indexed<'_>]) -> Self {
        let mut bits = Box::new([0u64; WORDS]);
        let mut slotted: Vec<(usize, u32)> = keywords
            .iter()
            .enumerate()
            .filter_map(|(index, keyword)| {
                let window = keyword.bytes.get(keyword.anchor..keyword.anchor + 3)?;
                let slot = slot(*window.first()?, *window.get(1)?, *window.get(2)?);
                Some((slot, u32::try_from(index).ok()?))
            })
            .collect();
        slotted.sort_unstable();
        let mut starts = vec![0u32; (1 << BITS) + 1];
        for &(slot, _) in &slotted {
            if let Some(word) = bits.get_mut(slot >> 6) {
                *word |= 1 << (slot & 63);
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
            keywords: keywords
                .iter()
                .map(|k| (k.bytes.to_vec(), k.anchor))
                .collect(),
            bits,
            starts,
            entries: slotted.into_iter().map(|(_, index)| index).collect(),
        }
    }

    /// Every occurrence in `haystack` of a keyword that starts in `from..limit` and ends by
    /// `haystack.len()`, in the order of their windows.
    pub fn find(&self, haystack: &[u8], from: usize, limit: usize, found: &mut Vec<Found>) {
        let Some(searched) = haystack.get(from..) else {
            return;
        };
        // The window rolls one byte at a time: the three bytes ending at `at + 2`.
        let mut window = 0u32;
        for (offset, &byte) in searched.iter().enumerate() {
            window = (window >> 8) | (u32::from(byte) << 16);
            if offset < 2 {
                continue;
            }
            let slot = (window.wrapping_mul(0x9E37_79B1) >> (32 - BITS)) as usize;
            let set = self
                .bits
                .get(slot >> 6)
                .is_some_and(|word| word & (1 << (slot & 63)) != 0);
            if !set {
                continue;
            }
            let at = from + offset - 2;
            let (Some(&first), Some(&last)) = (self.starts.get(slot), self.starts.get(slot + 1))
            else {
                continue;
            };
            let candidates = self
                .entries
                .get(first as usize..last as usize)
                .unwrap_or_default();
            for &index in candidates {
                let Some((bytes, anchor)) = self.keywords.get(index as usize) else {
                    continue;
                };
                let Some(start) = at.checked_sub(*anchor) else {
                    continue;
                };
                let end = start + bytes.len();
                if start >= from && start < limit && haystack.get(start..end) == Some(bytes) {
                    found.push((index as usize, start, end));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_occurrence_of_every_keyword_and_nothing_else() {
        let words: Vec<Vec<u8>> = (0..1000u32)
            .map(|i| format!("kw{i:04}_x").into_bytes())
            .collect();
        let keywords: Vec<Indexed<'_>> = words
            .iter()
            .map(|w| Indexed {
                bytes: w,
                anchor: 2,
            })
            .collect();
        let index = WindowIndex::new(&keywords);
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
}
