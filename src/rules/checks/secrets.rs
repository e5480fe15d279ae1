//! `kind: secrets` — credentials in file contents, anywhere in the guest. Every secrets
//! check of the selected rules is served by one pass over the guest's regular files
//! ([`run_pass`]): one combined scanner (keyword prefilter, then full regexes on candidate
//! regions), files in parallel, compressed files read inside. Findings carry the kind of
//! secret, the line and a fingerprint — never the secret. The pass reports the bytes it
//! reads into the scan's progress display, when there is one.

use std::collections::HashMap;
use std::io::Read;

use md5::{Digest, Md5};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{validate_patterns, CheckReport};
use crate::facts::dpkg_files::PackageFiles;
use crate::facts::FactError;
use crate::filesystems::FileKind;
use crate::guest::{display_path, GuestPath};
use crate::names::escape_for_terminal;
use crate::progress::{Phase, Progress};
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::globs::{PathLists, PathMatcher};
use crate::rules::spec_error::{EmptyList, PatternList, SpecError};
use crate::rules::ReadError;
use crate::rules::Severity;
use crate::secrets::{DetectorSpec, Limits, Scanner};

/// Content read per file unless a rule says otherwise: generous, because a sparse log can
/// claim gigabytes while holding a few lines of text.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;

/// Bytes a worker reads before adding them to the progress counter.
const PROGRESS_BATCH: u64 = 4 << 20;

/// Which secrets check of which rule: how the shared pass hands each check its findings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckKey {
    pub rule: String,
    /// The check's position in its rule.
    pub index: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Files scanned; every regular file when absent.
    #[serde(default = "every_file")]
    pub paths: Vec<String>,
    /// Narrow, explained exceptions (see the rule's description).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// One secrets engine detector each (its Debug never shows allowlisted values).
    pub detectors: Vec<DetectorSpec>,
    /// Content read per file (after decompression); larger files are counted as
    /// truncated in the report's statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    pub message: String,
}

/// Every secrets detector of `rules` (of secrets and residue checks), with the rule it
/// belongs to, in pack order.
pub fn detectors_of<'r>(
    rules: impl Iterator<Item = &'r crate::rules::Rule>,
) -> Vec<(&'r crate::rules::Rule, &'r DetectorSpec)> {
    rules
        .flat_map(|rule| {
            rule.specs.iter().flat_map(move |spec| match spec {
                super::CheckSpec::Secrets(spec) => {
                    spec.detectors.iter().map(|d| (rule, d)).collect::<Vec<_>>()
                }
                super::CheckSpec::Residue(spec) => {
                    spec.detectors.iter().map(|d| (rule, d)).collect::<Vec<_>>()
                }
                _ => Vec::new(),
            })
        })
        .collect()
}

impl Spec {
    /// A check of every regular file with these detectors.
    pub fn many(detectors: Vec<DetectorSpec>) -> Self {
        Spec {
            paths: every_file(),
            exclude: Vec::new(),
            detectors,
            max_size: None,
            message: "secret".into(),
        }
    }

    pub fn single(detector: DetectorSpec) -> Self {
        Self::many(vec![detector])
    }
}

fn every_file() -> Vec<String> {
    vec!["/**".to_string()]
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
    /// The detectors as checked at load, which the pass's scanner is built from.
    detectors: crate::secrets::Checked,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.detectors.is_empty() {
            return Err(SpecError::EmptyList(EmptyList::Detectors));
        }
        validate_patterns(&self.paths, PatternList::Paths)?;
        validate_patterns(&self.exclude, PatternList::Exclude)?;
        for detector in &self.detectors {
            validate_patterns(
                &detector.paths,
                PatternList::DetectorPaths {
                    detector: detector.name.clone(),
                },
            )?;
            PathRegexes::new(detector).map_err(|source| SpecError::Regex {
                name: format!("{} (path regexes)", detector.name),
                source,
            })?;
        }
        let detectors = crate::secrets::validate(&self.detectors)?;
        Ok(Compiled {
            spec: self.clone(),
            detectors,
        })
    }
}

impl Compiled {
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The detectors as checked at load, in the order of `spec().detectors`.
    pub fn detectors(&self) -> &crate::secrets::Checked {
        &self.detectors
    }

    /// Whether this check reads every file (no `paths` narrower than `/**`): its
    /// detectors then look for a credential by its shape alone, which means something in
    /// bytes that belong to no file too.
    pub fn reads_every_file(&self) -> bool {
        self.spec.paths == every_file()
    }

    /// This check's share of the pass, found by its key.
    pub fn report(&self, key: &CheckKey, pass: Option<&SecretsPass>) -> CheckReport {
        let Some(pass) = pass else {
            return CheckReport::unknown("the secrets pass did not run");
        };
        CheckReport {
            findings: pass.findings.get(key).cloned().unwrap_or_default(),
            unknown: pass.unknown.get(key).cloned().unwrap_or_default(),
            skipped: None,
        }
    }
}

/// Counts from the pass, for the report's `stats.secrets`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SecretStats {
    pub files_scanned: usize,
    pub bytes_scanned: u64,
    pub compressed: usize,
    pub skipped_binary: usize,
    /// Files with more content than the size cap: only the first `max_size` bytes read.
    pub truncated: usize,
    pub unreadable: usize,
    /// Matches an allowlist removed (listed with `--verbose`).
    pub allowlisted: usize,
    /// Matches in files a package shipped unmodified, reported at `info`.
    pub package_content: usize,
}

impl SecretStats {
    /// Counts one file read whole or in part (not the matches in it).
    fn count_scanned(&mut self, scan: &crate::secrets::FileScan) {
        self.files_scanned += 1;
        self.bytes_scanned += scan.bytes;
        self.compressed += usize::from(scan.compressed.is_some());
        self.skipped_binary += usize::from(scan.binary);
        self.truncated += usize::from(scan.truncated);
    }

    fn add(&mut self, other: &SecretStats) {
        self.files_scanned += other.files_scanned;
        self.bytes_scanned += other.bytes_scanned;
        self.compressed += other.compressed;
        self.skipped_binary += other.skipped_binary;
        self.truncated += other.truncated;
        self.unreadable += other.unreadable;
        self.allowlisted += other.allowlisted;
        self.package_content += other.package_content;
    }
}

/// What the pass found, by check key.
#[derive(Debug, Default)]
pub struct SecretsPass {
    pub findings: HashMap<CheckKey, Vec<Finding>>,
    pub unknown: HashMap<CheckKey, Vec<String>>,
    pub stats: SecretStats,
    /// `path:line kind fingerprint (reason)` lines for `--verbose`.
    pub allowlisted: Vec<String>,
    /// Files only partly read, or not read at all and why, for `--verbose`; in inventory
    /// order, escaped for a terminal.
    pub notes: Vec<String>,
    /// Regular files no secrets check's paths select (excluded by the rules), not read.
    pub outside_paths: usize,
    /// The fingerprints of matches in files a package shipped unmodified: the same value
    /// in free space is most likely an earlier version of such a file (an upgrade frees
    /// the old one), distribution content too.
    pub package_fingerprints: std::collections::HashSet<String>,
}

impl SecretsPass {
    /// What the pass did not read or report, one line each, for `--verbose`.
    pub fn not_read(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .notes
            .iter()
            .map(|note| format!("secrets: {note}"))
            .collect();
        if self.stats.skipped_binary > 0 {
            lines.push(format!(
                "secrets: {} files not searched: binary (a NUL byte in their first 8 KiB)",
                self.stats.skipped_binary
            ));
        }
        if self.outside_paths > 0 {
            lines.push(format!(
                "secrets: {} regular files not read: outside every credential rule's paths",
                self.outside_paths
            ));
        }
        lines.extend(self.allowlisted.iter().map(|hit| format!("secrets: {hit}")));
        lines
    }
}

/// Bytes read (and bytes planned but not read) by one worker, added to the progress
/// counters a few MiB at a time and when the worker's share of the pass ends.
struct Tally<'p> {
    progress: &'p Progress,
    read: u64,
    credit: u64,
}

impl Tally<'_> {
    fn flush(&mut self) {
        self.progress.add_bytes(std::mem::take(&mut self.read));
        self.progress.credit_bytes(std::mem::take(&mut self.credit));
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A file's reader that counts what the scanner takes from it.
struct Counted<'r, 't, 'p> {
    inner: &'r mut dyn Read,
    tally: &'t mut Tally<'p>,
    read: u64,
}

impl Read for Counted<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        self.read = self.read.saturating_add(n64);
        self.tally.read = self.tally.read.saturating_add(n64);
        if self.tally.read >= PROGRESS_BATCH {
            self.tally.flush();
        }
        Ok(n)
    }
}

/// Scans one file, counting into `tally` what is read and, as done for the ETA, what was
/// planned (`planned` bytes) but not read: a binary file stops after its first KiB, an
/// unreadable one reads nothing.
fn scan_counted(
    scanner: &Scanner,
    limits: &Limits,
    ctx: &ScanContext<'_>,
    entry: &crate::walk::Entry,
    enabled: &[bool],
    tally: Option<&mut Tally<'_>>,
) -> Result<crate::secrets::FileScan, ReadError> {
    let scan_failed = |source| ReadError::Scan {
        path: GuestPath::new(&*entry.path),
        source,
    };
    let Some(tally) = tally else {
        return ctx.open_entry(entry).and_then(|mut reader| {
            scanner
                .scan_only(&mut reader, limits, enabled)
                .map_err(scan_failed)
        });
    };
    let planned = entry.meta.size.min(limits.max_bytes);
    let mut read = 0;
    let outcome = ctx.open_entry(entry).and_then(|mut reader| {
        let mut counted = Counted {
            inner: &mut reader,
            tally: &mut *tally,
            read: 0,
        };
        let scanned = scanner.scan_only(&mut counted, limits, enabled);
        read = counted.read;
        scanned.map_err(scan_failed)
    });
    tally.credit = tally.credit.saturating_add(planned.saturating_sub(read));
    outcome
}

/// A detector's regexes over guest paths (`path_regex`, `allow_path_regexes`), matched
/// against the path without its leading `/`, as a scan of the root directory names it.
struct PathRegexes {
    only: Option<regex::bytes::Regex>,
    except: Vec<regex::bytes::Regex>,
}

impl PathRegexes {
    fn new(spec: &DetectorSpec) -> Result<Self, regex::Error> {
        Ok(PathRegexes {
            only: spec
                .path_regex
                .as_deref()
                .map(regex::bytes::Regex::new)
                .transpose()?,
            except: spec
                .allow_path_regexes
                .iter()
                .map(|r| regex::bytes::Regex::new(r))
                .collect::<Result<_, _>>()?,
        })
    }

    fn allows(&self, path: &[u8]) -> bool {
        let relative = path.strip_prefix(b"/").unwrap_or(path);
        self.only.as_ref().is_none_or(|r| r.is_match(relative))
            && !self.except.iter().any(|r| r.is_match(relative))
    }
}

/// Which detectors run on which file: a detector runs where its check's paths match and,
/// when it is scoped (`paths`, `path_regex`, `allow_path_regexes`), where its scope does.
/// Asked once per file, so what does not depend on the path is worked out beforehand.
struct Scopes {
    /// Per detector (combined order): the plan it belongs to.
    plan_of: Vec<usize>,
    /// Detectors with no scope of their own.
    unscoped: Vec<usize>,
    /// The flags of a file every plan matches (the usual case): the unscoped detectors.
    unscoped_flags: Vec<bool>,
    /// Detectors scoped by path regexes only.
    by_regexes: Vec<usize>,
    /// The detectors with `paths`, in the order of `lists`' lists.
    globbed: Vec<usize>,
    lists: Option<PathLists>,
    /// Per detector: its path regexes, if any.
    regexes: Vec<Option<PathRegexes>>,
}

/// What one worker reuses from file to file.
#[derive(Default)]
struct ScopeBuffers {
    plan_matches: Vec<bool>,
    enabled: Vec<bool>,
    lists: Vec<usize>,
}

impl Scopes {
    fn new(plans: &[CheckPlan<'_>], detectors: &[DetectorSpec], homes: &[Vec<u8>]) -> Self {
        let mut plan_of = vec![0; detectors.len()];
        for (index, plan) in plans.iter().enumerate() {
            let count = plan.check.spec.detectors.len();
            for slot in plan_of.iter_mut().skip(plan.first).take(count) {
                *slot = index;
            }
        }
        let regexes: Vec<Option<PathRegexes>> = detectors
            .iter()
            .map(|d| {
                (d.path_regex.is_some() || !d.allow_path_regexes.is_empty())
                    .then(|| PathRegexes::new(d).ok())
                    .flatten()
            })
            .collect();
        let globbed: Vec<usize> = (0..detectors.len())
            .filter(|&i| detectors.get(i).is_some_and(|d| !d.paths.is_empty()))
            .collect();
        let unscoped: Vec<usize> = (0..detectors.len())
            .filter(|&i| {
                detectors.get(i).is_some_and(|d| d.paths.is_empty())
                    && regexes.get(i).is_some_and(Option::is_none)
            })
            .collect();
        let by_regexes = (0..detectors.len())
            .filter(|&i| {
                regexes.get(i).is_some_and(Option::is_some) && globbed.binary_search(&i).is_err()
            })
            .collect();
        let mut unscoped_flags = vec![false; detectors.len()];
        for &detector in &unscoped {
            if let Some(flag) = unscoped_flags.get_mut(detector) {
                *flag = true;
            }
        }
        let lists: Vec<&[String]> = globbed
            .iter()
            .filter_map(|&i| detectors.get(i).map(|d| d.paths.as_slice()))
            .collect();
        // Patterns were validated when the pack was loaded.
        let lists = (!lists.is_empty())
            .then(|| PathLists::new(&lists, homes).ok())
            .flatten();
        Scopes {
            plan_of,
            unscoped,
            unscoped_flags,
            by_regexes,
            globbed,
            lists,
            regexes,
        }
    }

    /// The detectors that run on `path`, as flags in combined order, in `buffers.enabled`.
    fn enabled<'b>(
        &self,
        path: &[u8],
        plans: &[CheckPlan<'_>],
        buffers: &'b mut ScopeBuffers,
    ) -> &'b [bool] {
        let ScopeBuffers {
            plan_matches,
            enabled,
            lists,
        } = buffers;
        plan_matches.clear();
        plan_matches.extend(plans.iter().map(|p| p.matcher.is_match(path)));
        let in_plan = |detector: usize| {
            self.plan_of
                .get(detector)
                .and_then(|&plan| plan_matches.get(plan))
                .copied()
                .unwrap_or(false)
        };
        enabled.clear();
        if plan_matches.iter().all(|&m| m) {
            enabled.extend_from_slice(&self.unscoped_flags);
        } else {
            enabled.resize(self.plan_of.len(), false);
            for &detector in &self.unscoped {
                if let Some(flag) = enabled.get_mut(detector) {
                    *flag = in_plan(detector);
                }
            }
        }
        let allowed_by_regexes = |detector: usize| match self.regexes.get(detector) {
            Some(Some(regexes)) => regexes.allows(path),
            _ => true,
        };
        for &detector in &self.by_regexes {
            if let Some(flag) = enabled.get_mut(detector) {
                *flag = in_plan(detector) && allowed_by_regexes(detector);
            }
        }
        if let Some(path_lists) = &self.lists {
            lists.clear();
            path_lists.matches_into(path, lists);
            for &list in lists.iter() {
                if let Some(&detector) = self.globbed.get(list) {
                    if in_plan(detector) && allowed_by_regexes(detector) {
                        if let Some(flag) = enabled.get_mut(detector) {
                            *flag = true;
                        }
                    }
                }
            }
        }
        enabled
    }
}

struct CheckPlan<'c> {
    key: &'c CheckKey,
    check: &'c Compiled,
    matcher: PathMatcher,
    /// Index of this check's first detector in the combined scanner.
    first: usize,
}

/// Runs every secrets check's detectors over the guest's regular files in one pass.
pub fn run_pass(checks: &[(CheckKey, &Compiled)], ctx: &ScanContext<'_>) -> SecretsPass {
    let mut pass = SecretsPass::default();
    let mut plans = Vec::new();
    let mut detectors = Vec::new();
    for (key, check) in checks {
        let matcher = match PathMatcher::new(&check.spec.paths, &check.spec.exclude, ctx.homes()) {
            Ok(matcher) => matcher,
            Err(e) => {
                pass.unknown
                    .entry(key.clone())
                    .or_default()
                    .push(e.to_string());
                continue;
            }
        };
        // A place the walk could not read may hold what this check looks for.
        for spot in matcher.blind_spots(&ctx.blind_spots) {
            pass.unknown.entry(key.clone()).or_default().push(format!(
                "{} could not be read: {}",
                display_path(&spot.path),
                spot.reason
            ));
        }
        plans.push(CheckPlan {
            key,
            check,
            matcher,
            first: detectors.len(),
        });
        detectors.extend(check.spec.detectors.iter().cloned());
    }
    let checked = crate::secrets::Checked::concat(plans.iter().map(|p| &p.check.detectors));
    let scanner = match Scanner::from_checked(checked) {
        Ok(scanner) => scanner,
        Err(e) => {
            let e = e.to_string();
            for plan in &plans {
                pass.unknown
                    .entry(plan.key.clone())
                    .or_default()
                    .push(e.clone());
            }
            return pass;
        }
    };
    let max_bytes = ctx.options.secrets_max_size.unwrap_or_else(|| {
        checks
            .iter()
            .map(|(_, c)| c.spec.max_size.unwrap_or(DEFAULT_MAX_SIZE))
            .max()
            .unwrap_or(DEFAULT_MAX_SIZE)
    });
    let limits = Limits {
        max_bytes,
        decompress: true,
    };
    let scopes = Scopes::new(&plans, &detectors, ctx.homes());
    let mut regular_files = 0usize;
    let candidates: Vec<&crate::walk::Entry> = ctx
        .inventory
        .entries
        .iter()
        .filter(|e| e.meta.kind == FileKind::File)
        .inspect(|_| regular_files += 1)
        .filter(|e| plans.iter().any(|p| p.matcher.is_match(&e.path)))
        .collect();
    pass.outside_paths = regular_files.saturating_sub(candidates.len());
    let progress = ctx.progress();
    if let Some(progress) = progress {
        // Sizes come from inodes: a hostile one only skews the estimate, so saturate.
        let planned = candidates
            .iter()
            .map(|e| e.meta.size.min(max_bytes))
            .fold(0u64, u64::saturating_add);
        progress.begin_reading(candidates.len(), planned);
    }
    // Most files hold nothing: they are only counted, so memory does not grow with a
    // guest's file count; the rest keep their outcome, in path order, for the findings.
    let (scanned, quiet) = candidates
        .par_iter()
        .fold(
            || {
                let tally = progress.map(|progress| Tally {
                    progress,
                    read: 0,
                    credit: 0,
                });
                let buffers = ScopeBuffers::default();
                (Vec::new(), SecretStats::default(), tally, buffers)
            },
            |(mut kept, mut quiet, mut tally, mut buffers), entry| {
                let enabled = scopes.enabled(&entry.path, &plans, &mut buffers);
                match scan_counted(&scanner, &limits, ctx, entry, enabled, tally.as_mut()) {
                    Ok(scan) if scan.is_quiet() => quiet.count_scanned(&scan),
                    outcome => kept.push((*entry, outcome)),
                }
                (kept, quiet, tally, buffers)
            },
        )
        .map(|(kept, quiet, _, _)| (kept, quiet))
        .reduce(
            || (Vec::new(), SecretStats::default()),
            |(mut kept, mut quiet), (more, more_quiet)| {
                kept.extend(more);
                quiet.add(&more_quiet);
                (kept, quiet)
            },
        );
    pass.stats.add(&quiet);
    for (detector, why) in scanner.failures() {
        let name = detectors.get(detector).map_or("?", |d| d.name.as_str());
        if let Some(plan) = plans.iter().rev().find(|p| detector >= p.first) {
            pass.unknown
                .entry(plan.key.clone())
                .or_default()
                .push(format!("detector {name:?} could not be compiled: {why}"));
        }
    }
    if let Some(progress) = progress {
        progress.set_phase(Phase::Evaluating);
    }

    let mut package_files: Option<Result<PackageFiles, FactError>> = None;
    for (entry, outcome) in scanned {
        let path = display_path(&entry.path);
        let scan = match outcome {
            Ok(scan) => scan,
            Err(e) => {
                pass.stats.unreadable += 1;
                pass.notes.push(format!(
                    "{path}: not read: {}",
                    escape_for_terminal(e.to_string().as_bytes())
                ));
                for plan in plans.iter().filter(|p| p.matcher.is_match(&entry.path)) {
                    pass.unknown
                        .entry(plan.key.clone())
                        .or_default()
                        .push(format!("{path} could not be read: {e}"));
                }
                continue;
            }
        };
        pass.stats.count_scanned(&scan);
        if scan.truncated {
            pass.notes.push(format!(
                "{path}: only the first {max_bytes} bytes were scanned"
            ));
        }
        for hit in &scan.allowlisted {
            pass.stats.allowlisted += 1;
            let kind = detectors
                .get(hit.detector)
                .map(|d| d.name.as_str())
                .unwrap_or("");
            // Names and reasons come from rule packs, which a user may write.
            pass.allowlisted.push(format!(
                "{path}:{} {} {} (allowlisted: {})",
                hit.line,
                escape_for_terminal(kind.as_bytes()),
                hit.fingerprint,
                escape_for_terminal(
                    hit.allow_reason
                        .as_deref()
                        .unwrap_or("allowlist")
                        .as_bytes()
                )
            ));
        }
        if scan.hits.is_empty() {
            continue;
        }
        let shipped = shipped_unmodified(ctx, &mut package_files, &path);
        for hit in &scan.hits {
            let Some(plan) = plans.iter().rev().find(|p| hit.detector >= p.first) else {
                continue;
            };
            let local = hit.detector - plan.first;
            if !plan.matcher.is_match(&entry.path) {
                continue;
            }
            let Some(spec) = plan.check.spec.detectors.get(local) else {
                continue;
            };
            let compressed = scan
                .compressed
                .map(|c| format!(", inside {c}-compressed content"))
                .unwrap_or_default();
            let mut finding = Finding::at(
                &*entry.path,
                format!("{} ({}{compressed})", plan.check.spec.message, spec.name),
            )
            .line(usize::try_from(hit.line).unwrap_or(0))
            .subject(spec.name.clone());
            finding.fingerprint = Some(hit.fingerprint.clone());
            if let Some(package) = &shipped {
                pass.stats.package_content += 1;
                pass.package_fingerprints.insert(hit.fingerprint.clone());
                finding.message = format!(
                    "{} — shipped unmodified by package {package} (distribution content)",
                    finding.message
                );
                finding = finding.severity(Severity::Info);
            }
            pass.findings
                .entry(plan.key.clone())
                .or_default()
                .push(finding);
        }
    }
    pass
}

/// The package that shipped this file, when its content still has the shipped MD5.
fn shipped_unmodified(
    ctx: &ScanContext<'_>,
    package_files: &mut Option<Result<PackageFiles, FactError>>,
    path: &str,
) -> Option<String> {
    let files = package_files.get_or_insert_with(|| crate::facts::dpkg_files::read(ctx.files()));
    let shipped = files.as_ref().ok()?.get(path)?;
    let mut reader = ctx.open_file(path.as_bytes()).ok()?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 256 << 10];
    loop {
        let read = reader.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        hasher.update(buffer.get(..read)?);
    }
    let digest: [u8; 16] = hasher.finalize().into();
    (digest == shipped.md5).then(|| shipped.package.clone())
}

/// The pass over a real ext4 image (mke2fs): run from the integration tests
/// (`tests/integration/readers.rs`), so `cargo test --lib` needs no external tool.
#[cfg(all(feature = "test-support", not(test)))]
pub mod tool_tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::missing_panics_doc
    )]

    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::progress::Progress;
    use crate::walk::{walk, WalkOptions};

    /// A bare ext4 image made by mke2fs from `files`, in a directory removed on drop.
    struct Image {
        dir: PathBuf,
    }

    impl Image {
        fn build(files: &[(&str, Vec<u8>)]) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "amiscan-secrets-pass-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, content) in files {
                let path = dir.join("src").join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, content).unwrap();
            }
            let mke2fs = ["/usr/sbin/mke2fs", "/sbin/mke2fs"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .unwrap_or("mke2fs");
            let status = Command::new(mke2fs)
                .args(["-q", "-F", "-t", "ext4", "-d"])
                .arg(dir.join("src"))
                .arg(dir.join("fs.img"))
                .arg("8M")
                .status()
                .unwrap();
            assert!(status.success());
            Self { dir }
        }

        fn path(&self) -> PathBuf {
            self.dir.join("fs.img")
        }
    }

    impl Drop for Image {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn check(max_size: u64) -> Compiled {
        Spec {
            paths: every_file(),
            exclude: vec!["/skip/**".into()],
            detectors: vec![DetectorSpec {
                name: "AWS access key ID".into(),
                regex: "AKIA[0-9A-Z]{16}".into(),
                keywords: vec!["akia".into()],
                min_entropy: None,
                allow_values: Vec::new(),
                allow_regexes: Vec::new(),
                ..DetectorSpec::default()
            }],
            max_size: Some(max_size),
            message: "a key".into(),
        }
        .compile()
        .unwrap()
    }

    pub fn the_pass_reports_its_reading_and_what_it_skipped() {
        let mut binary = vec![0u8; 100_000];
        binary[50_000] = b'A';
        let image = Image::build(&[
            ("etc/app.conf", b"key = AKIAQWERTYUIOPASDFGH\n".to_vec()),
            ("bin/tool", binary),
            ("var/log/big.log", b"line of text\n".repeat(20_000)),
            ("skip/excluded.txt", b"AKIAQWERTYUIOPASDFGH\n".to_vec()),
        ]);
        let guest = crate::guest::open(&image.path()).unwrap();
        let progress = Progress::new();
        let inventory = walk(
            &guest.tree,
            WalkOptions {
                progress: Some(&progress),
                ..WalkOptions::default()
            },
        );
        assert_eq!(progress.files(), inventory.entries.len() as u64);
        let ctx = ScanContext::new(
            &guest.tree,
            &inventory,
            guest.os.as_ref(),
            Default::default(),
            Vec::new(),
        )
        .with_progress(Some(&progress));
        let max_size = 64 << 10;
        let compiled = check(max_size);
        let key = CheckKey {
            rule: "test".into(),
            index: 0,
        };
        let pass = run_pass(&[(key, &compiled)], &ctx);
        assert_eq!(pass.findings.values().map(Vec::len).sum::<usize>(), 1);

        // Every planned byte was read or credited: the reading phase ends at 100 %.
        let planned: u64 = [26, 100_000, 260_000]
            .iter()
            .map(|s| s.min(&max_size))
            .sum();
        let accounted = progress.bytes() + progress.credited();
        // (A truncated file is read a little past the cap, to know that it is.)
        assert!(
            (planned..planned + 1024).contains(&accounted),
            "{accounted} for {planned} planned"
        );
        assert!(progress.credited() > 0, "the binary file stops early");
        assert_eq!(progress.phase(), Phase::Evaluating);

        let lines = pass.not_read();
        assert_eq!(
            lines,
            [
                "secrets: /var/log/big.log: only the first 65536 bytes were scanned",
                "secrets: 1 files not searched: binary (a NUL byte in their first 8 KiB)",
                "secrets: 1 regular files not read: outside every credential rule's paths",
            ]
        );
    }
}
