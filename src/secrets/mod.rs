//! The secret scanner: one streaming pass over a file's bytes evaluates every detector
//! together, and what it finds leaves this module only as a fingerprint.
//!
//! Owns: compiling detector specifications, the keyword prefilter, chunked reading with a
//! carried overlap, decompression of gzip/xz/zstd content by magic bytes, binary skipping,
//! allowlists and entropy checks, fingerprints. Does not own: which files are scanned, how
//! findings are reported, or rule-pack parsing (`rules::checks::secrets` does that).
//!
//! How a file is scanned: an Aho-Corasick automaton over every detector's keywords (ASCII
//! case-insensitive) runs over each chunk; only a keyword hit makes the detectors owning
//! that keyword run their full regex, and only over the whole lines within ±4 KiB of the hit
//! (the candidate region). Regions of one detector within a chunk are merged first, so a
//! dense keyword costs at most one regex pass over the chunk, never one per hit.

mod common_trigrams;
mod decompress;
mod detectors;
mod error;
mod examples;
mod fingerprint;
mod lazy;
mod prefilter;
mod stream;
#[cfg(test)]
mod tests;
mod validate;
mod window_index;

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

pub use detectors::sample_detectors;
pub use examples::{check_fixtures, Fixture, FixtureFailure};
pub use fingerprint::{fingerprint, shannon_entropy};

use decompress::{Compression, Tracked};
pub use error::{DetectorError, DetectorErrorKind, DetectorProblem};
use lazy::LazyRegex;
use prefilter::Prefilter;
use stream::Geometry;
pub use validate::Validator;

/// Matches listed per file (hits and allowlisted together); more are counted in
/// `FileScan::hits_dropped`. A crafted file full of keys must not grow a report (or the
/// memory holding it) with its size.
pub const MAX_HITS_PER_FILE: usize = 1000;

/// Keywords longer than this are refused: the carried overlap between chunks holds the
/// longest keyword, and nothing real needs more.
pub const MAX_KEYWORD_LEN: usize = 256;

/// One kind of secret.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    /// The kind shown in findings ("AWS access key ID").
    pub name: String,
    /// A stable identifier (kebab-case), for the catalogue's documentation and fixtures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Who issues the credential ("GitHub").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// How a user revokes or rotates it, one line (docs/secrets.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<String>,
    /// Rust regex over bytes; the secret is the group named `secret`, else group 1, else the
    /// whole match (also when the chosen group did not take part in the match). A match must
    /// lie within 4 KiB of one of its keywords.
    pub regex: String,
    /// Literals, at least one; a match must contain one (ASCII case-insensitive). They feed
    /// the prefilter, so a common word makes the detector's regex run more often.
    pub keywords: Vec<String>,
    /// Shannon entropy (bits per byte) the secret must reach: for weak patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_entropy: Option<f64>,
    /// Exact secrets never reported (documented example keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_values: Vec<String>,
    /// Regexes over the secret that mark it as a placeholder (`^x+$`, `EXAMPLE`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_regexes: Vec<String>,
    /// Which files the caller runs this detector on, as the caller's path globs (credential
    /// stores named by path); every file when empty. The scanner itself does not read it:
    /// it scans what it is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A regex over the file's guest path without its leading `/` (`etc/app/.env`): the
    /// caller runs this detector only on files whose path matches (gitleaks' `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// Regexes over the same path: files whose path matches one are not reported by this
    /// detector (gitleaks' allowlist `paths`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_path_regexes: Vec<String>,
    /// A structural check each match must pass (a checksum, an encoded header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<Validator>,
    /// A weak pattern (`password = …`): its match is dropped when a specific detector
    /// matched the same secret, so one credential is reported once, by its kind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generic: bool,
    /// The capture group (by number) holding the secret, for patterns written for other
    /// tools (gitleaks' `secretGroup`); a group named `secret` is preferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_group: Option<usize>,
    /// Regexes over the whole match that mark it as not a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_match_regexes: Vec<String>,
    /// Regexes over the line holding the match that mark it as not a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_line_regexes: Vec<String>,
    /// Words that, found in the secret (ASCII case-insensitive), mark it as not a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopwords: Vec<String>,
    /// Text as found in a file, each holding one credential of this kind, which the
    /// detector must report (`rules check` runs them). Never shown in rule listings.
    #[serde(default, skip_serializing)]
    pub examples: Vec<String>,
    /// Near misses (placeholders, documentation values, wrong shapes) the detector must not
    /// report.
    #[serde(default, skip_serializing)]
    pub counterexamples: Vec<String>,
    /// Run the regex over all content, without keywords: only for patterns imported from
    /// other tools that name no keyword and hold no literal to derive one from. Slow.
    #[serde(skip)]
    pub without_keywords: bool,
    /// A match need not contain a keyword, only lie within 4 KiB of one: for patterns
    /// imported from tools whose keywords gate the file, not the match.
    #[serde(skip)]
    pub keyword_nearby: bool,
}

// Hand-written so that an allowlisted value, which a user may have copied from a real
// finding, never reaches a log through `{:?}`.
impl std::fmt::Debug for DetectorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorSpec")
            .field("name", &self.name)
            .field("regex", &self.regex)
            .field("keywords", &self.keywords)
            .field("min_entropy", &self.min_entropy)
            .field(
                "allow_values",
                &format_args!("[{} redacted]", self.allow_values.len()),
            )
            .field("allow_regexes", &self.allow_regexes)
            .field("paths", &self.paths)
            .field("validate", &self.validate)
            .field("generic", &self.generic)
            .finish_non_exhaustive()
    }
}

/// What to read of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Content bytes (after decompression) read at most; the rest is not read and the scan
    /// says `truncated`.
    pub max_bytes: u64,
    /// Decompress gzip, xz and zstd content, recognised by its magic bytes (one level).
    pub decompress: bool,
}

/// One match of a detector. Carries no part of the secret except through `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index into the slice given to `Scanner::new`.
    pub detector: usize,
    /// 1-based line of the match's first byte, in the (decompressed) content.
    pub line: u64,
    /// Byte offset of the secret's first byte in the (decompressed) content.
    pub offset: u64,
    pub fingerprint: String,
    /// Why an allowlist removed the match (`FileScan::allowlisted` only).
    pub allow_reason: Option<String>,
}

/// The result of scanning one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileScan {
    /// In file order.
    pub hits: Vec<Hit>,
    /// Matches an allowlist or the entropy threshold removed, with the reason.
    pub allowlisted: Vec<Hit>,
    /// Matches beyond `MAX_HITS_PER_FILE` (hits and allowlisted together), not listed.
    pub hits_dropped: u64,
    /// A NUL byte in the first 8 KiB of (decompressed) content: skipped, no hits.
    pub binary: bool,
    /// Content beyond `max_bytes` was not read, or a compressed stream ended early or was
    /// corrupt (the content before that point was scanned).
    pub truncated: bool,
    /// "gzip", "xz" or "zstd" when the content was decompressed.
    pub compressed: Option<&'static str>,
    /// Content bytes scanned.
    pub bytes: u64,
}

impl FileScan {
    /// Nothing to report beyond the counts: no match, allowlisted or not, and nothing
    /// left unread.
    pub fn is_quiet(&self) -> bool {
        self.hits.is_empty() && self.allowlisted.is_empty() && !self.truncated
    }
}

/// Compiled detectors; build once, share between threads.
pub struct Scanner {
    detectors: Vec<Detector>,
    prefilter: Prefilter,
    /// The keywords of the detectors not scoped to files by path only: most files are
    /// scanned by these alone, so the common words of configuration-file detectors
    /// (`password`, `key`) cost nothing there. `None` when no detector is scoped.
    unscoped: Option<Prefilter>,
    /// Per detector: scoped to files by path.
    scoped: Vec<bool>,
    /// The detectors without keywords, whose regexes run over all content.
    everywhere: Vec<usize>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.detectors.iter().map(|d| d.name.as_str()).collect();
        f.debug_struct("Scanner")
            .field("detectors", &names)
            .finish()
    }
}

/// Which capture group holds the secret.
#[derive(Debug, Clone, Copy)]
enum SecretGroup {
    Named(usize),
    First,
    Whole,
}

#[derive(Clone)]
struct Detector {
    name: String,
    regex: LazyRegex,
    group: SecretGroup,
    /// The detector's own keywords, lowercased, to check that a match contains one (only
    /// matches are checked, so a plain search is enough).
    keywords: Vec<Vec<u8>>,
    min_entropy: Option<f64>,
    allow_values: Vec<Vec<u8>>,
    allow_regexes: Vec<LazyRegex>,
    allow_match_regexes: Vec<LazyRegex>,
    allow_line_regexes: Vec<LazyRegex>,
    /// Lowercased.
    stopwords: Vec<Vec<u8>>,
    validate: Option<Validator>,
    generic: bool,
    /// No keywords: the regex runs over all content.
    everywhere: bool,
    keyword_nearby: bool,
    /// Scoped to files by path (`paths`, `path_regex`).
    scoped: bool,
}

/// Where a match lies, for the allowlists that look beyond the secret.
pub(crate) struct MatchContext<'h> {
    pub secret: &'h [u8],
    pub whole: &'h [u8],
    pub line: &'h [u8],
}

impl Scanner {
    /// Compiles `detectors`; an error names the detector and what is wrong with it.
    pub fn new(detectors: &[DetectorSpec]) -> Result<Self, DetectorError> {
        Self::from_checked(validate(detectors)?)
    }

    /// A scanner over detectors `validate` checked.
    pub fn from_checked(checked: Checked) -> Result<Self, DetectorError> {
        let Checked(compiled) = checked;
        let scoped: Vec<bool> = compiled.iter().map(|d| d.scoped).collect();
        let everywhere = (0..compiled.len())
            .filter(|&i| compiled.get(i).is_some_and(|d| d.everywhere))
            .collect();
        let keywords = |include: &dyn Fn(&Detector) -> bool| {
            compiled
                .iter()
                .enumerate()
                .filter(|(_, d)| include(d))
                .map(|(index, d)| (index, d.keywords.as_slice()))
                .collect::<Vec<_>>()
        };
        let prefilter = Prefilter::new(&keywords(&|_| true))?;
        let unscoped = if scoped.contains(&true) {
            Some(Prefilter::new(&keywords(&|d| !d.scoped))?)
        } else {
            None
        };
        Ok(Scanner {
            detectors: compiled,
            prefilter,
            unscoped,
            scoped,
            everywhere,
        })
    }

    /// Compiles every regex now, as scans compile them on first use: what `rules check`
    /// runs, so a pattern too large to compile is found before a scan meets it.
    pub fn compile_all(&self) -> Result<(), DetectorError> {
        for (index, detector) in self.detectors.iter().enumerate() {
            let invalid = |problem| DetectorError::Invalid {
                index,
                name: detector.name.clone(),
                problem,
            };
            detector
                .regex
                .compile()
                .map_err(|e| invalid(DetectorProblem::Regex(e)))?;
            for allow in detector
                .allow_regexes
                .iter()
                .chain(&detector.allow_match_regexes)
                .chain(&detector.allow_line_regexes)
            {
                allow
                    .compile()
                    .map_err(|e| invalid(DetectorProblem::AllowRegex(e)))?;
            }
        }
        Ok(())
    }

    /// Detectors whose regex (or an allowlist pattern) could not be compiled when a scan
    /// first needed it: the index and why. Such a detector found nothing.
    pub fn failures(&self) -> Vec<(usize, String)> {
        self.detectors
            .iter()
            .enumerate()
            .filter_map(|(index, d)| {
                std::iter::once(&d.regex)
                    .chain(&d.allow_regexes)
                    .chain(&d.allow_match_regexes)
                    .chain(&d.allow_line_regexes)
                    .find_map(|r| r.failed())
                    .map(|why| (index, why.to_string()))
            })
            .collect()
    }

    /// The keyword automaton for a file on which `enabled` detectors run.
    fn prefilter_for(&self, enabled: Option<&[bool]>) -> &Prefilter {
        let scoped_enabled = |flags: &[bool]| {
            flags
                .iter()
                .zip(&self.scoped)
                .any(|(&enabled, &scoped)| enabled && scoped)
        };
        match (&self.unscoped, enabled) {
            (Some(unscoped), Some(flags)) if !scoped_enabled(flags) => unscoped,
            _ => &self.prefilter,
        }
    }

    /// The number of detectors.
    pub fn len(&self) -> usize {
        self.detectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    /// Scans one file as a stream: reads at most `limits.max_bytes` bytes of content (after
    /// decompression), in memory independent of the file's size. An error is a failed read
    /// of `reader` itself; corrupt compressed content is not an error but a `truncated`
    /// scan of what could be decompressed.
    pub fn scan(&self, reader: &mut dyn Read, limits: &Limits) -> io::Result<FileScan> {
        self.scan_with(reader, limits, Geometry::DEFAULT, None)
    }

    /// Like `scan`, running only the detectors `enabled` marks (one flag per detector, in
    /// the order given to `Scanner::new`): the caller's path scopes, so a detector scoped
    /// to other files neither costs time nor takes a secret from a generic detector.
    pub fn scan_only(
        &self,
        reader: &mut dyn Read,
        limits: &Limits,
        enabled: &[bool],
    ) -> io::Result<FileScan> {
        self.scan_with(reader, limits, Geometry::DEFAULT, Some(enabled))
    }

    /// Scans raw bytes (a volume's free space, its journal), binary and text alike, with
    /// the detectors `enabled` marks; hit offsets count from the start of `bytes`.
    pub fn scan_raw(&self, bytes: &[u8], enabled: &[bool]) -> FileScan {
        let mut content = bytes;
        let outcome = stream::scan_content(
            self,
            &mut content,
            u64::MAX,
            Geometry::DEFAULT,
            Some(enabled),
            stream::Content::Raw,
        );
        // Reading a slice cannot fail.
        outcome.into_scan(None).unwrap_or_default()
    }

    /// Whether detector `index` is scoped to files by path (`paths`, `path_regex`): it
    /// has no meaning in bytes that belong to no file.
    pub fn is_scoped(&self, index: usize) -> bool {
        self.scoped.get(index).copied().unwrap_or(false)
    }

    fn scan_with(
        &self,
        reader: &mut dyn Read,
        limits: &Limits,
        geometry: Geometry,
        enabled: Option<&[bool]>,
    ) -> io::Result<FileScan> {
        let scan_content = |content: &mut dyn Read| {
            stream::scan_content(
                self,
                content,
                limits.max_bytes,
                geometry,
                enabled,
                stream::Content::File,
            )
        };
        if !limits.decompress {
            let outcome = scan_content(reader);
            return outcome.into_scan(None);
        }
        let mut header = [0u8; decompress::MAGIC_LEN];
        let got = read_up_to(reader, &mut header)?;
        let header = header.get(..got).unwrap_or_default();
        let mut tracked = Tracked::new(reader);
        let kind = Compression::sniff(header);
        let outcome = {
            let raw = header.chain(&mut tracked);
            match kind {
                None => {
                    let mut raw = raw;
                    scan_content(&mut raw)
                }
                Some(kind) => match kind.decoder(raw) {
                    Ok(mut content) => scan_content(&mut content),
                    Err(e) => stream::Outcome::failed(e),
                },
            }
        };
        // A failed read of the file itself is an error whatever the decoder made of it;
        // anything else a decoder reports means the compressed data is damaged.
        if let Some(e) = tracked.take_error() {
            return Err(e);
        }
        match kind {
            None => outcome.into_scan(None),
            Some(kind) => Ok(outcome.into_damaged_scan(kind.name())),
        }
    }
}

/// Checks every detector as `Scanner::new` would, without building the shared keyword
/// automaton: what loading a rule pack needs, at a fraction of the cost. What it returns
/// is what a scanner is built from ([`Scanner::from_checked`]), so a pack's regexes are
/// parsed once per run, not again for each scan.
pub fn validate(detectors: &[DetectorSpec]) -> Result<Checked, DetectorError> {
    compile_each(detectors).map(Checked)
}

/// Detectors checked by [`validate`], in the order of their specs.
#[derive(Clone, Default)]
pub struct Checked(Vec<Detector>);

impl Checked {
    /// `parts` one after the other, as a scanner over their specs concatenated takes them.
    pub fn concat<'c>(parts: impl IntoIterator<Item = &'c Checked>) -> Checked {
        Checked(
            parts
                .into_iter()
                .flat_map(|c| c.0.iter().cloned())
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|d| d.name.as_str()))
            .finish()
    }
}

fn compile_each(detectors: &[DetectorSpec]) -> Result<Vec<Detector>, DetectorError> {
    use rayon::prelude::*;
    // In parallel: parsing a catalogue's hundreds of regexes is most of a scan's start-up.
    let compiled: Vec<Result<Detector, DetectorProblem>> =
        detectors.par_iter().map(Detector::compile).collect();
    // The first invalid detector is named, whichever thread found it.
    compiled
        .into_iter()
        .zip(detectors)
        .enumerate()
        .map(|(index, (result, spec))| {
            result.map_err(|problem| DetectorError::Invalid {
                index,
                name: spec.name.clone(),
                problem,
            })
        })
        .collect()
}

/// Reads until `buf` is full or the reader ends.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n.min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Detector {
    fn compile(spec: &DetectorSpec) -> Result<Self, DetectorProblem> {
        if spec.name.trim().is_empty() {
            return Err(DetectorProblem::EmptyName);
        }
        if spec.keywords.is_empty() && !spec.without_keywords {
            return Err(DetectorProblem::NoKeywords);
        }
        for keyword in &spec.keywords {
            if keyword.is_empty() {
                return Err(DetectorProblem::EmptyKeyword);
            }
            if keyword.len() > MAX_KEYWORD_LEN {
                return Err(DetectorProblem::KeywordTooLong);
            }
        }
        let (regex, captures) = LazyRegex::new(&spec.regex).map_err(DetectorProblem::Regex)?;
        let group = if let Some(index) = captures.secret {
            SecretGroup::Named(index)
        } else if let Some(index) = spec.secret_group.filter(|&g| g > 0) {
            if index >= captures.groups {
                return Err(DetectorProblem::SecretGroup(index));
            }
            SecretGroup::Named(index)
        } else if captures.groups > 1 {
            SecretGroup::First
        } else {
            SecretGroup::Whole
        };
        let keywords = spec
            .keywords
            .iter()
            .map(|k| k.as_bytes().to_ascii_lowercase())
            .collect();
        if let Some(min) = spec.min_entropy {
            if !(0.0..=8.0).contains(&min) {
                return Err(DetectorProblem::MinEntropy(min));
            }
        }
        // The values themselves stay out of messages: they may be real secrets.
        if let Some(index) = spec.allow_values.iter().position(String::is_empty) {
            return Err(DetectorProblem::EmptyAllowValue(index));
        }
        let compile_all = |patterns: &[String]| {
            patterns
                .iter()
                .map(|pattern| {
                    LazyRegex::new(pattern)
                        .map(|(regex, _)| regex)
                        .map_err(DetectorProblem::AllowRegex)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let allow_regexes = compile_all(&spec.allow_regexes)?;
        let allow_match_regexes = compile_all(&spec.allow_match_regexes)?;
        let allow_line_regexes = compile_all(&spec.allow_line_regexes)?;
        if spec.stopwords.iter().any(String::is_empty) {
            return Err(DetectorProblem::EmptyStopword);
        }
        Ok(Detector {
            name: spec.name.clone(),
            regex,
            group,
            keywords,
            min_entropy: spec.min_entropy,
            allow_values: spec
                .allow_values
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            allow_regexes,
            allow_match_regexes,
            allow_line_regexes,
            stopwords: spec
                .stopwords
                .iter()
                .map(|w| w.as_bytes().to_ascii_lowercase())
                .collect(),
            validate: spec.validate,
            generic: spec.generic,
            everywhere: spec.keywords.is_empty(),
            scoped: !spec.paths.is_empty() || spec.path_regex.is_some(),
            keyword_nearby: spec.keyword_nearby,
        })
    }

    /// Whether `whole` contains one of the detector's keywords, ASCII case ignored.
    fn contains_keyword(&self, whole: &[u8]) -> bool {
        let lower = whole.to_ascii_lowercase();
        self.keywords
            .iter()
            .any(|k| memchr::memmem::find(&lower, k).is_some())
    }

    /// The bytes of a match that are the secret.
    fn secret<'h>(&self, caps: &regex::bytes::Captures<'h>) -> Option<&'h [u8]> {
        let chosen = match self.group {
            SecretGroup::Named(index) => caps.get(index),
            SecretGroup::First => caps.get(1),
            SecretGroup::Whole => None,
        };
        chosen.or_else(|| caps.get(0)).map(|m| m.as_bytes())
    }

    /// Why a match is not reported, if it is not.
    fn allow_reason(&self, at: &MatchContext<'_>) -> Option<String> {
        let secret = at.secret;
        if self.allow_values.iter().any(|v| v.as_slice() == secret) {
            return Some("listed in allow_values".into());
        }
        // An allowlist pattern that could not be compiled allows nothing: more is
        // reported, not less (and `Scanner::failures` names it).
        let found = |list: &[LazyRegex], target: &[u8]| {
            list.iter()
                .find(|r| r.get().is_ok_and(|r| r.is_match(target)))
                .map(|r| r.pattern().to_string())
        };
        if let Some(pattern) = found(&self.allow_regexes, secret) {
            return Some(format!("matches allow_regexes `{pattern}`"));
        }
        if let Some(pattern) = found(&self.allow_match_regexes, at.whole) {
            return Some(format!("matches allow_match_regexes `{pattern}`"));
        }
        if let Some(pattern) = found(&self.allow_line_regexes, at.line) {
            return Some(format!("its line matches allow_line_regexes `{pattern}`"));
        }
        if !self.stopwords.is_empty() {
            let lower = secret.to_ascii_lowercase();
            if let Some(word) = self
                .stopwords
                .iter()
                .find(|w| memchr::memmem::find(&lower, w).is_some())
            {
                return Some(format!(
                    "contains the stopword `{}`",
                    String::from_utf8_lossy(word)
                ));
            }
        }
        if let Some(reason) = self.validate.and_then(|v| v.reject(secret, at.whole)) {
            return Some(format!("not a credential: {reason}"));
        }
        if let Some(min) = self.min_entropy {
            let entropy = shannon_entropy(secret);
            if entropy < min {
                return Some(format!(
                    "entropy {entropy:.2} below min_entropy {min:.2} bits per byte"
                ));
            }
        }
        None
    }
}

#[cfg(any(test, feature = "test-support"))]
/// Scans `bytes` as file content with the sample detectors, twice (default geometry, and
/// tiny chunks with reads of varying sizes so chunk boundaries fall everywhere): the entry
/// point of the `secrets` fuzz target and its stable-toolchain corpus replay. Returns the
/// number of matches found.
pub fn exercise(bytes: &[u8]) -> usize {
    static SCANNER: std::sync::OnceLock<Option<Scanner>> = std::sync::OnceLock::new();
    let Some(scanner) = SCANNER
        .get_or_init(|| Scanner::new(&sample_detectors()).ok())
        .as_ref()
    else {
        return 0;
    };
    let limits = Limits {
        max_bytes: 1 << 20,
        decompress: true,
    };
    let mut found = 0;
    let mut whole = bytes;
    if let Ok(scan) = scanner.scan(&mut whole, &limits) {
        check_invariants(&scan);
        found += scan.hits.len() + scan.allowlisted.len();
    }
    let geometry = Geometry {
        chunk: 61,
        context: 4096,
    };
    let mut pieces = tests_support::Dribble::new(bytes);
    if let Ok(scan) = scanner.scan_with(&mut pieces, &limits, geometry, None) {
        check_invariants(&scan);
        found += scan.hits.len() + scan.allowlisted.len();
    }
    found
}

/// What holds for every scan; a violation is a bug the fuzzer should report.
#[cfg(any(test, feature = "test-support"))]
fn check_invariants(scan: &FileScan) {
    assert!(scan.hits.windows(2).all(|w| match w {
        [a, b] => a.line <= b.line,
        _ => true,
    }));
    assert!(scan
        .hits
        .iter()
        .all(|h| h.line >= 1 && h.allow_reason.is_none()));
    assert!(scan.allowlisted.iter().all(|h| h.allow_reason.is_some()));
    assert!(scan.hits.len() + scan.allowlisted.len() <= MAX_HITS_PER_FILE);
    assert!(!scan.binary || (scan.hits.is_empty() && scan.allowlisted.is_empty()));
    assert!(scan.bytes <= 1 << 20);
}

/// Readers for the fuzz entry point and the tests.
#[cfg(any(test, feature = "test-support"))]
pub(crate) mod tests_support {
    use std::io::{self, Read};

    /// Hands out the bytes in pieces of 1 to 64 bytes, sizes taken from the content.
    pub struct Dribble<'a> {
        rest: &'a [u8],
        turn: usize,
    }

    impl<'a> Dribble<'a> {
        pub fn new(bytes: &'a [u8]) -> Self {
            Dribble {
                rest: bytes,
                turn: 0,
            }
        }
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.turn = self.turn.wrapping_add(1);
            let seed = self.rest.first().copied().unwrap_or(0) as usize;
            let size = (seed ^ self.turn.wrapping_mul(37)) % 64 + 1;
            let size = size.min(buf.len()).min(self.rest.len());
            let (now, later) = self.rest.split_at(size);
            buf.get_mut(..size).unwrap_or_default().copy_from_slice(now);
            self.rest = later;
            Ok(size)
        }
    }
}
