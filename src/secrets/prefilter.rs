//! The keyword prefilter: one Aho-Corasick automaton over every detector's keywords, mapping
//! each keyword to the detectors that own it.
//!
//! Case-insensitivity is had by searching an ASCII-lowercased copy of the chunk for the
//! lowercased keywords: a case-sensitive automaton keeps its SIMD prefilter (Teddy), which
//! a case-insensitive one gives up, and lowercasing a chunk costs less than a tenth of the
//! search. Leftmost-longest matches, with each search restarted one byte after the previous
//! match's start, find every position where a keyword starts; a keyword that is a prefix
//! of a longer one found at the same position (`sk` in `sk_live_`) is accounted for by
//! giving the longer keyword the shorter one's detectors too.
//!
//! Keywords shorter than three bytes (Twilio's `sk`) are searched apart, one SIMD substring
//! search each: in the automaton they would force Teddy onto two-byte fingerprints, whose
//! false candidates cost more than the whole search does without them.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::memmem;

use super::DetectorSpec;

/// Keywords shorter than this are searched one by one, outside the automaton.
const SHORT: usize = 3;

pub struct Prefilter {
    automaton: AhoCorasick,
    /// Per keyword: detector indices, including those of the automaton's keywords that are
    /// its prefixes. The automaton's keywords come first, in pattern-id order, then the
    /// short ones in `short` order.
    owners: Vec<Vec<usize>>,
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
    pub fn new(detectors: &[DetectorSpec]) -> Result<Self, String> {
        let mut keywords: Vec<Vec<u8>> = Vec::new();
        let mut direct: Vec<Vec<usize>> = Vec::new();
        for (index, spec) in detectors.iter().enumerate() {
            for keyword in &spec.keywords {
                let folded = keyword.as_bytes().to_ascii_lowercase();
                let slot = match keywords.iter().position(|k| *k == folded) {
                    Some(slot) => slot,
                    None => {
                        keywords.push(folded);
                        direct.push(Vec::new());
                        keywords.len() - 1
                    }
                };
                if let Some(list) = direct.get_mut(slot) {
                    if !list.contains(&index) {
                        list.push(index);
                    }
                }
            }
        }
        // Long keywords first, so that their automaton pattern ids are their indices.
        let mut order: Vec<usize> = (0..keywords.len()).collect();
        order.sort_by_key(|&i| keywords.get(i).map_or(0, |k| usize::from(k.len() < SHORT)));
        let keywords: Vec<Vec<u8>> = order.iter().filter_map(|&i| keywords.get(i).cloned()).collect();
        let direct: Vec<Vec<usize>> = order.iter().filter_map(|&i| direct.get(i).cloned()).collect();
        let automaton_keywords = keywords.iter().filter(|k| k.len() >= SHORT).count();
        let (long, short) = keywords.split_at(automaton_keywords);
        let owners = keywords
            .iter()
            .enumerate()
            .map(|(index, keyword)| {
                let mut owners: Vec<usize> = direct.get(index).cloned().unwrap_or_default();
                if index < automaton_keywords {
                    for (other, list) in long.iter().zip(&direct) {
                        if keyword.starts_with(other) {
                            owners.extend(list.iter().copied());
                        }
                    }
                }
                owners.sort_unstable();
                owners.dedup();
                owners
            })
            .collect();
        let longest = keywords.iter().map(Vec::len).max().unwrap_or(0);
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(long)
            .map_err(|e| format!("keywords: {e}"))?;
        let short = short
            .iter()
            .map(|k| memmem::Finder::new(k).into_owned())
            .collect();
        Ok(Prefilter {
            automaton,
            owners,
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
        self.owners.get(keyword).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every position in `lowered[span]` where a keyword starts (`lowered` being ASCII
    /// lowercase), with the longest keyword starting there; short keywords after the rest.
    pub fn find<'h>(
        &'h self,
        lowered: &'h [u8],
        span: std::ops::Range<usize>,
    ) -> impl Iterator<Item = KeywordHit> + 'h {
        let mut from = span.start;
        let end = span.end.min(lowered.len());
        let searched = lowered.get(span.start..end).unwrap_or_default();
        let long = std::iter::from_fn(move || {
            if from >= end {
                return None;
            }
            let found = self
                .automaton
                .find(Input::new(lowered).span(from..end))?;
            from = found.start() + 1;
            Some(KeywordHit {
                keyword: found.pattern().as_usize(),
                start: found.start(),
                end: found.end(),
            })
        });
        let short = self.short.iter().enumerate().flat_map(move |(i, finder)| {
            let keyword = self.automaton_keywords + i;
            let len = finder.needle().len();
            finder.find_iter(searched).map(move |at| KeywordHit {
                keyword,
                start: span.start + at,
                end: span.start + at + len,
            })
        });
        long.chain(short)
    }
}

/// `source` ASCII-lowercased into `target` (same length).
pub fn lowercase_into(source: &[u8], target: &mut [u8]) {
    for (t, s) in target.iter_mut().zip(source) {
        *t = s.to_ascii_lowercase();
    }
}
