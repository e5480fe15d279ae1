//! The keyword prefilter: one Aho-Corasick automaton over every detector's keywords, mapping
//! each keyword to the detectors that own it.
//!
//! Case-insensitivity is had by searching a folded copy of the chunk for the folded
//! keywords: a case-sensitive automaton keeps its SIMD prefilter (Teddy), which a
//! case-insensitive one gives up, and folding a chunk costs a fraction of the search.
//! Folding is ASCII lowercasing followed by `x ^ (x << 4)` (a bijection on bytes: the low
//! nibble is kept, the high one is xor-ed with it): Teddy tells candidates apart by the
//! high and low nibbles of each byte, and all lowercase letters share two high nibbles, so
//! on plain lowercase text one position in ten or so was a false candidate; scrambled,
//! letters spread over every high nibble.
//!
//! Teddy looks for the first three bytes of each pattern, so the automaton is given each
//! keyword from its rarest three-byte window on (`secret_access_key` from `t_a`, not from
//! the `sec` of every "second" and "section"); the bytes before the window are compared
//! after a hit. The search finds the longest pattern at each position where one starts
//! (leftmost-longest, restarted one byte after each match: Teddy serves no overlapping
//! search), and the shorter patterns that are prefixes of it are checked at the same
//! position, so a keyword inside another (`sk_` in `sk_live_`) is never hidden. Keywords shorter than three bytes (Twilio's `sk`) are searched
//! apart, one SIMD substring search each: in the automaton they would force Teddy onto
//! two-byte fingerprints, whose false candidates cost more than the rest of the search.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::memmem;

use std::sync::OnceLock;

use super::common_trigrams::COMMON_TRIGRAMS;
use super::window_index::{Indexed, WindowIndex};

/// One byte folded: ASCII case removed, then the low nibble mixed into the high one.
pub fn fold(byte: u8) -> u8 {
    let lower = byte.to_ascii_lowercase();
    lower ^ (lower << 4)
}

/// Keywords shorter than this are searched one by one, outside the automaton.
const SHORT: usize = 3;

/// Bytes roughly from most to least frequent in text and source code (lowercased); bytes
/// not listed count as rarest. Only the order matters: it breaks ties between windows the
/// trigram table does not rank.
const COMMON: &[u8] = b" e\nta\toinsrhldcumpfgwy,.b/_-=v\"k0:1x2();3'j4q5z6789>[]<{}*#$!&%+?@^`|~";

/// How common a byte is: higher is more common.
fn commonness(byte: u8) -> usize {
    COMMON
        .iter()
        .position(|&c| c == byte)
        .map_or(0, |rank| COMMON.len() - rank)
}

/// How common a three-byte window is in ordinary text, higher being more common: first by
/// its rank among the most frequent trigrams (0 when not among them), then by its bytes.
/// Ranking by bytes alone picked `ret` for `secret` and `con` for `azconfig.io`, windows
/// of every other line of source code: a sixteenth of the positions of the benchmark's
/// text sent the search to compare keywords.
fn window_commonness(window: &[u8]) -> (usize, usize) {
    static RANKS: OnceLock<HashMap<[u8; 3], usize>> = OnceLock::new();
    let ranks = RANKS.get_or_init(|| {
        COMMON_TRIGRAMS
            .iter()
            .enumerate()
            .map(|(rank, trigram)| (*trigram, COMMON_TRIGRAMS.len() - rank))
            .collect()
    });
    let by_rank = <[u8; 3]>::try_from(window)
        .ok()
        .and_then(|w| ranks.get(&w).copied())
        .unwrap_or(0);
    (by_rank, window.iter().map(|&b| commonness(b)).sum())
}

/// The offset of the rarest three-byte window of `keyword` (at least three bytes long).
fn anchor(keyword: &[u8]) -> usize {
    keyword
        .windows(SHORT)
        .enumerate()
        .min_by_key(|(offset, window)| (window_commonness(window), *offset))
        .map_or(0, |(offset, _)| offset)
}

struct Keyword {
    /// Folded.
    bytes: Vec<u8>,
    /// Where the automaton's pattern starts within the keyword.
    anchor: usize,
    /// Automaton keywords whose patterns are prefixes of this one's (itself included).
    implied: Vec<usize>,
    /// Detector indices.
    owners: Vec<usize>,
}

/// How the keywords of three bytes or more are searched.
enum Long {
    /// Up to `TEDDY_LIMIT` keywords: Aho-Corasick with its SIMD searcher.
    Automaton(AhoCorasick),
    /// More: the hashed window index.
    Windows(WindowIndex),
}

/// Past this many keywords the automaton's SIMD searcher gives way to a DFA, and the
/// window index is the faster search.
const TEDDY_LIMIT: usize = 64;

pub struct Prefilter {
    long: Long,
    /// The automaton's keywords (pattern id order), then the short ones.
    keywords: Vec<Keyword>,
    automaton_keywords: usize,
    short: Vec<memmem::Finder<'static>>,
    longest: usize,
}

/// One keyword occurrence in a haystack.
#[derive(Debug, Clone, Copy)]
pub struct KeywordHit {
    pub keyword: usize,
    pub start: usize,
    pub end: usize,
}

impl Prefilter {
    /// The keywords of `detectors`, each given with its index (what `owners` returns).
    pub fn new(detectors: &[(usize, &[Vec<u8>])]) -> Result<Self, super::DetectorError> {
        Self::with_limit(detectors, TEDDY_LIMIT)
    }

    /// Like `new`, with the automaton used up to `automaton_limit` keywords (tests compare
    /// the two searches on one keyword set).
    fn with_limit(
        detectors: &[(usize, &[Vec<u8>])],
        automaton_limit: usize,
    ) -> Result<Self, super::DetectorError> {
        let mut keywords: Vec<Keyword> = Vec::new();
        let mut known: HashMap<Vec<u8>, usize> = HashMap::new();
        for &(index, detector_keywords) in detectors {
            for keyword in detector_keywords {
                let lower = keyword.to_ascii_lowercase();
                let folded: Vec<u8> = lower.iter().map(|&b| fold(b)).collect();
                match known.get(&folded).and_then(|&k| keywords.get_mut(k)) {
                    Some(known) if !known.owners.contains(&index) => known.owners.push(index),
                    Some(_) => {}
                    None => {
                        known.insert(folded.clone(), keywords.len());
                        keywords.push(Keyword {
                            anchor: if lower.len() >= SHORT {
                                anchor(&lower)
                            } else {
                                0
                            },
                            bytes: folded,
                            owners: vec![index],
                            implied: Vec::new(),
                        })
                    }
                }
            }
        }
        // Automaton keywords first, so that their pattern ids are their indices.
        keywords.sort_by_key(|k| k.bytes.len() < SHORT);
        let automaton_keywords = keywords.iter().filter(|k| k.bytes.len() >= SHORT).count();
        let patterns: Vec<Vec<u8>> = keywords
            .iter()
            .take(automaton_keywords)
            .map(|k| k.bytes.get(k.anchor..).unwrap_or_default().to_vec())
            .collect();
        // Only the automaton needs them (the window index compares whole keywords).
        let implied_needed = automaton_keywords <= automaton_limit;
        for (keyword, pattern) in keywords
            .iter_mut()
            .zip(&patterns)
            .filter(|_| implied_needed)
        {
            keyword.implied = (0..patterns.len())
                .filter(|&other| patterns.get(other).is_some_and(|o| pattern.starts_with(o)))
                .collect();
        }
        let (long, short) = keywords.split_at(automaton_keywords);
        let long = if long.len() <= automaton_limit {
            Long::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(
                        long.iter()
                            .map(|k| k.bytes.get(k.anchor..).unwrap_or_default()),
                    )
                    .map_err(super::DetectorError::Keywords)?,
            )
        } else {
            Long::Windows(WindowIndex::new(&indexed(long).collect::<Vec<_>>()))
        };
        let short = short
            .iter()
            .map(|k| memmem::Finder::new(&k.bytes).into_owned())
            .collect();
        let longest = keywords.iter().map(|k| k.bytes.len()).max().unwrap_or(0);
        Ok(Prefilter {
            long,
            keywords,
            automaton_keywords,
            short,
            longest,
        })
    }

    /// The longest keyword, in bytes.
    pub fn longest(&self) -> usize {
        self.longest
    }

    pub fn owners(&self, keyword: usize) -> &[usize] {
        self.keywords
            .get(keyword)
            .map(|k| k.owners.as_slice())
            .unwrap_or_default()
    }

    /// Every keyword occurrence starting in `folded[span]` (`folded` made by `fold_into`)
    /// and ending by `end`; short keywords after the rest.
    pub fn find<'h>(
        &'h self,
        folded: &'h [u8],
        span: std::ops::Range<usize>,
        end: usize,
    ) -> impl Iterator<Item = KeywordHit> + 'h {
        let end = end.min(folded.len());
        let (from, limit) = (span.start.min(end), span.end);
        let mut long = Vec::new();
        match &self.long {
            Long::Automaton(automaton) => {
                let mut at = from;
                while at < end {
                    let Some(found) = automaton.find(Input::new(folded).span(at..end)) else {
                        break;
                    };
                    at = found.start() + 1;
                    let implied = self
                        .keywords
                        .get(found.pattern().as_usize())
                        .map(|k| k.implied.as_slice())
                        .unwrap_or_default();
                    for &index in implied {
                        let Some(keyword) = self.keywords.get(index) else {
                            continue;
                        };
                        let Some(start) = found.start().checked_sub(keyword.anchor) else {
                            continue;
                        };
                        let before = keyword.bytes.get(..keyword.anchor);
                        if (from..limit).contains(&start)
                            && folded.get(start..found.start()) == before
                        {
                            long.push(KeywordHit {
                                keyword: index,
                                start,
                                end: start + keyword.bytes.len(),
                            });
                        }
                    }
                }
            }
            Long::Windows(index) => {
                let mut found = Vec::new();
                index.find(
                    folded.get(..end).unwrap_or_default(),
                    from,
                    limit,
                    &mut found,
                );
                long.extend(found.into_iter().map(|(keyword, start, end)| KeywordHit {
                    keyword,
                    start,
                    end,
                }));
            }
        }
        let searched = folded.get(from..end).unwrap_or_default();
        let short = self.short.iter().enumerate().flat_map(move |(i, finder)| {
            let keyword = self.automaton_keywords + i;
            let len = finder.needle().len();
            finder
                .find_iter(searched)
                .map(move |at| KeywordHit {
                    keyword,
                    start: from + at,
                    end: from + at + len,
                })
                .filter(move |hit| hit.start < limit)
        });
        long.into_iter().chain(short)
    }
}

/// The keywords as the window index takes them; ids are positions in `keywords`.
fn indexed(keywords: &[Keyword]) -> impl Iterator<Item = Indexed<'_>> {
    keywords.iter().enumerate().map(|(id, k)| Indexed {
        id,
        bytes: &k.bytes,
        anchor: k.anchor,
    })
}

/// `source` folded into `target` (same length). A plain loop the compiler vectorises.
pub fn fold_into(source: &[u8], target: &mut [u8]) {
    for (t, s) in target.iter_mut().zip(source) {
        *t = fold(*s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_is_a_bijection_otherwise() {
        let mut seen = std::collections::HashSet::new();
        for byte in 0..=255u8 {
            assert_eq!(fold(byte), fold(byte.to_ascii_lowercase()));
            if !byte.is_ascii_uppercase() {
                assert!(seen.insert(fold(byte)), "{byte:#x}");
            }
        }
    }

    /// The window index finds exactly what the automaton finds, on text dense with
    /// keywords, keywords inside keywords and near misses.
    #[test]
    fn both_searches_find_the_same_occurrences() {
        let words = [
            "ghp_",
            "gho_",
            "glpat-",
            "sk_live_",
            "sk_",
            "xoxb-",
            "datadog",
            "dd_api_key",
            "akia",
            "secret_access_key",
            "access_key",
            "hvs.",
            "npm_",
            "aiza",
            "sg.",
        ];
        let keywords: Vec<Vec<Vec<u8>>> = words
            .iter()
            .enumerate()
            .map(|(i, w)| vec![w.as_bytes().to_vec(), format!("{w}{i}").into_bytes()])
            .collect();
        let detectors: Vec<(usize, &[Vec<u8>])> = keywords
            .iter()
            .enumerate()
            .map(|(i, k)| (i, k.as_slice()))
            .collect();
        let automaton = Prefilter::with_limit(&detectors, usize::MAX).unwrap();
        let windows = Prefilter::with_limit(&detectors, 0).unwrap();
        assert!(matches!(automaton.long, Long::Automaton(_)));
        assert!(matches!(windows.long, Long::Windows(_)));
        let mut text = String::new();
        for (i, w) in words.iter().cycle().take(400).enumerate() {
            let noise = ["", "x", "Sk_LIVE", "secret_", " ", "\n", "ghp"][i % 7];
            text.push_str(&format!("{noise}{}{w}{}", i % 3, i % 17));
        }
        let mut folded = vec![0u8; text.len()];
        fold_into(text.as_bytes(), &mut folded);
        let spans = [(0, folded.len()), (5, folded.len() / 2), (100, 101)];
        for (from, limit) in spans {
            let run = |p: &Prefilter| {
                let mut hits: Vec<(Vec<u8>, usize, usize)> = p
                    .find(&folded, from..limit, folded.len())
                    .map(|h| (p.keywords[h.keyword].bytes.clone(), h.start, h.end))
                    .collect();
                hits.sort();
                hits
            };
            let (a, b) = (run(&automaton), run(&windows));
            assert!(!a.is_empty() || limit - from < 10);
            assert_eq!(a, b, "span {from}..{limit}");
        }
    }

    #[test]
    fn anchors_avoid_common_windows() {
        assert_eq!(anchor(b"secret_access_key"), 12); // `s_k`
        assert_eq!(anchor(b"akia"), 0);
        assert_eq!(anchor(b"abc"), 0);
    }
}
