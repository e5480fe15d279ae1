//! `kind: secrets` — credentials in file contents, anywhere in the guest. Every secrets
//! check of the selected rules is served by one pass over the guest's regular files
//! ([`run_pass`]): one combined scanner (keyword prefilter, then full regexes on candidate
//! regions), files in parallel, compressed files read inside. Findings carry the kind of
//! secret, the line and a fingerprint — never the secret.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use md5::{Digest, Md5};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{validate_patterns, CheckReport};
use crate::facts::dpkg_files::PackageFiles;
use crate::filesystems::FileKind;
use crate::guest::display_path;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::globs::PathMatcher;
use crate::rules::Severity;
use crate::secrets::{DetectorSpec, Limits, Scanner};

/// Content read per file unless a rule says otherwise: generous, because a sparse log can
/// claim gigabytes while holding a few lines of text.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;

/// Each compiled secrets check gets a key, so the shared pass can hand it its findings.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    /// The kind of secret, shown in findings ("AWS access key ID").
    pub name: String,
    /// Rust regex over bytes; the secret is the group named `secret`, else group 1, else
    /// the whole match.
    pub regex: String,
    /// Literals one of which every match contains (ASCII case-insensitive): the prefilter.
    pub keywords: Vec<String>,
    /// Shannon entropy (bits per character) the secret must reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_entropy: Option<f64>,
    /// Exact values never reported: documented example keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_values: Vec<String>,
    /// Regexes over the secret that mark placeholders (`^x+$`, `\$\{`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_regexes: Vec<String>,
    /// Only files matching these globs count for this detector (credential stores named
    /// by path); every scanned file when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
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
    pub detectors: Vec<Detector>,
    /// Content read per file (after decompression); larger files are counted as
    /// truncated in the report's statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    pub message: String,
}

fn every_file() -> Vec<String> {
    vec!["/**".to_string()]
}

#[derive(Debug, Clone)]
pub struct Compiled {
    key: usize,
    spec: Spec,
}

impl Detector {
    fn engine_spec(&self) -> DetectorSpec {
        DetectorSpec {
            name: self.name.clone(),
            regex: self.regex.clone(),
            keywords: self.keywords.clone(),
            min_entropy: self.min_entropy,
            allow_values: self.allow_values.clone(),
            allow_regexes: self.allow_regexes.clone(),
        }
    }
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, String> {
        if self.detectors.is_empty() {
            return Err("`detectors` must hold at least one detector".into());
        }
        validate_patterns(&self.paths, "paths")?;
        validate_patterns(&self.exclude, "exclude")?;
        for detector in &self.detectors {
            validate_patterns(
                &detector.paths,
                &format!("detector `{}` paths", detector.name),
            )?;
        }
        let specs: Vec<DetectorSpec> = self.detectors.iter().map(Detector::engine_spec).collect();
        Scanner::new(&specs)?;
        Ok(Compiled {
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            spec: self.clone(),
        })
    }
}

impl Compiled {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let Some(pass) = ctx.secrets_pass() else {
            return CheckReport::unknown("the secrets pass did not run");
        };
        CheckReport {
            findings: pass.findings.get(&self.key).cloned().unwrap_or_default(),
            unknown: pass.unknown.get(&self.key).cloned().unwrap_or_default(),
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

/// What the pass found, by check key.
#[derive(Debug, Default)]
pub struct SecretsPass {
    pub findings: HashMap<usize, Vec<Finding>>,
    pub unknown: HashMap<usize, Vec<String>>,
    pub stats: SecretStats,
    /// `path:line kind fingerprint (reason)` lines for `--verbose`.
    pub allowlisted: Vec<String>,
    /// Files only partly read or skipped as too large, for `--verbose`.
    pub notes: Vec<String>,
}

struct CheckPlan<'c> {
    check: &'c Compiled,
    matcher: PathMatcher,
    detector_paths: Vec<Option<PathMatcher>>,
    /// Index of this check's first detector in the combined scanner.
    first: usize,
}

/// Runs every secrets check's detectors over the guest's regular files in one pass.
pub fn run_pass(checks: &[&Compiled], ctx: &ScanContext<'_>) -> SecretsPass {
    let mut pass = SecretsPass::default();
    let mut plans = Vec::new();
    let mut detectors = Vec::new();
    for check in checks {
        let matcher = match PathMatcher::new(&check.spec.paths, &check.spec.exclude, ctx.homes()) {
            Ok(matcher) => matcher,
            Err(e) => {
                pass.unknown.entry(check.key).or_default().push(e);
                continue;
            }
        };
        let detector_paths = check
            .spec
            .detectors
            .iter()
            .map(|d| {
                (!d.paths.is_empty())
                    .then(|| PathMatcher::new(&d.paths, &[], ctx.homes()).ok())
                    .flatten()
            })
            .collect();
        plans.push(CheckPlan {
            check,
            matcher,
            detector_paths,
            first: detectors.len(),
        });
        detectors.extend(check.spec.detectors.iter().map(Detector::engine_spec));
    }
    let scanner = match Scanner::new(&detectors) {
        Ok(scanner) => scanner,
        Err(e) => {
            for plan in &plans {
                pass.unknown
                    .entry(plan.check.key)
                    .or_default()
                    .push(e.clone());
            }
            return pass;
        }
    };
    let max_bytes = ctx.options.secrets_max_size.unwrap_or_else(|| {
        checks
            .iter()
            .map(|c| c.spec.max_size.unwrap_or(DEFAULT_MAX_SIZE))
            .max()
            .unwrap_or(DEFAULT_MAX_SIZE)
    });
    let limits = Limits {
        max_bytes,
        decompress: true,
    };
    let candidates: Vec<&crate::walk::Entry> = ctx
        .inventory
        .entries
        .iter()
        .filter(|e| e.meta.kind == FileKind::File)
        .filter(|e| plans.iter().any(|p| p.matcher.is_match(&e.path)))
        .collect();
    let scanned: Vec<(
        &crate::walk::Entry,
        Result<crate::secrets::FileScan, String>,
    )> = candidates
        .par_iter()
        .map(|entry| {
            let outcome = ctx.open_entry(entry).and_then(|mut reader| {
                scanner
                    .scan(&mut reader, &limits)
                    .map_err(|e| e.to_string())
            });
            (*entry, outcome)
        })
        .collect();

    let mut package_files: Option<Result<PackageFiles, String>> = None;
    for (entry, outcome) in scanned {
        let path = display_path(&entry.path);
        let scan = match outcome {
            Ok(scan) => scan,
            Err(e) => {
                pass.stats.unreadable += 1;
                for plan in plans.iter().filter(|p| p.matcher.is_match(&entry.path)) {
                    pass.unknown
                        .entry(plan.check.key)
                        .or_default()
                        .push(format!("{path} could not be read: {e}"));
                }
                continue;
            }
        };
        let stats = &mut pass.stats;
        stats.files_scanned += 1;
        stats.bytes_scanned += scan.bytes;
        stats.compressed += usize::from(scan.compressed.is_some());
        stats.skipped_binary += usize::from(scan.binary);
        if scan.truncated {
            stats.truncated += 1;
            pass.notes.push(format!(
                "{path}: only the first {max_bytes} bytes were scanned"
            ));
        }
        for hit in &scan.allowlisted {
            stats.allowlisted += 1;
            let kind = detectors
                .get(hit.detector)
                .map(|d| d.name.as_str())
                .unwrap_or("");
            pass.allowlisted.push(format!(
                "{path}:{} {kind} {} (allowlisted: {})",
                hit.line,
                hit.fingerprint,
                hit.allow_reason.as_deref().unwrap_or("allowlist")
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
            if let Some(Some(only)) = plan.detector_paths.get(local) {
                if !only.is_match(&entry.path) {
                    continue;
                }
            }
            let Some(spec) = plan.check.spec.detectors.get(local) else {
                continue;
            };
            let compressed = scan
                .compressed
                .map(|c| format!(", inside {c}-compressed content"))
                .unwrap_or_default();
            let mut finding = Finding::at(
                path.clone(),
                format!("{} ({}{compressed})", plan.check.spec.message, spec.name),
            )
            .line(usize::try_from(hit.line).unwrap_or(0))
            .subject(spec.name.clone());
            finding.fingerprint = Some(hit.fingerprint.clone());
            if let Some(package) = &shipped {
                pass.stats.package_content += 1;
                finding.message = format!(
                    "{} — shipped unmodified by package {package} (distribution content)",
                    finding.message
                );
                finding = finding.severity(Severity::Info);
            }
            pass.findings
                .entry(plan.check.key)
                .or_default()
                .push(finding);
        }
    }
    pass
}

/// The package that shipped this file, when its content still has the shipped MD5.
fn shipped_unmodified(
    ctx: &ScanContext<'_>,
    package_files: &mut Option<Result<PackageFiles, String>>,
    path: &str,
) -> Option<String> {
    let files = package_files.get_or_insert_with(|| {
        crate::facts::dpkg_files::read(ctx.files()).map_err(|e| e.to_string())
    });
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
