//! A scan as a library call: a resolved, typed configuration in; each image opened, walked
//! and judged by the rules; the gate's decision out. Rendering and the command line are
//! the caller's (`commands::scan`); benches and tests call this directly.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::checksums::ChecksumPolicy;
use crate::gate::baseline::Baseline;
use crate::gate::waivers::Waiver;
use crate::gate::{Decision, Gate, Scanned};
use crate::guest::{self, display_path, Guest};
use crate::image::disks::split_image_argument;
use crate::names::escape_for_terminal;
use crate::progress::{Phase, Progress};
use crate::report::{FileDigest, ImageDetails, Stats};
use crate::rules::checks::secrets::SecretsPass;
use crate::rules::BlindSpot;
use crate::rules::{self, FailOn, Rule, ScanContext, ScanOptions};
use crate::walk::{self, Inventory, WalkOptions};

/// Everything a scan needs, resolved and checked before any image is opened.
pub struct ScanConfig {
    /// Image arguments, globs already expanded.
    pub images: Vec<PathBuf>,
    /// The rules that run.
    pub rules: Vec<Arc<Rule>>,
    /// Every rule id loaded, selected or not (a waiver for another id names no rule).
    pub known_rules: BTreeSet<String>,
    pub options: ScanOptions,
    pub fail_on: FailOn,
    pub waivers: Vec<Waiver>,
    pub baseline: Option<Baseline>,
    /// How images are read (checksums enforced or not).
    pub open: guest::OpenOptions,
    /// The walk's entry cap (`--max-entries`); `None` is the default.
    pub max_entries: Option<usize>,
    /// Read every volume's free space and journal for the residue rules (on unless
    /// `--no-residue`).
    pub residue: bool,
    /// Every rule loaded, selected or not: residue checks borrow the detectors of the
    /// rules they name (`detectors_from`) even when those rules are not selected.
    pub loaded_rules: Vec<Arc<Rule>>,
}

/// One image scanned, before the gate: what it found, and for `--verbose` what it did
/// not look at.
pub struct ImageScan {
    pub scanned: Scanned<ImageDetails>,
    /// What the scan did not read, one line each, escaped for a terminal.
    pub not_read: Vec<String>,
}

/// Scans one image: opens the guest, walks it, evaluates the rules. `progress` counts
/// what is done, for a display the caller owns.
pub fn scan_image(
    path: &Path,
    config: &ScanConfig,
    progress: Option<&Progress>,
) -> Result<ImageScan, guest::OpenError> {
    let started = Instant::now();
    let guest = guest::open_with(path, config.open)?;
    if let Some(progress) = progress {
        progress.opened(guest.volumes.iter().map(|v| v.volume.id.clone()).collect());
    }
    let inventory = walk::walk(
        &guest.tree,
        WalkOptions {
            progress,
            max_entries: config.max_entries,
            ..WalkOptions::default()
        },
    );
    let blind_spots = guest
        .unscanned_mount_points()
        .into_iter()
        .map(|(path, reason)| BlindSpot {
            path: path.to_vec(),
            reason: reason.to_string(),
        })
        .collect();
    let ctx = ScanContext::new(
        &guest.tree,
        &inventory,
        guest.os.as_ref(),
        config.options.clone(),
        blind_spots,
    )
    .with_progress(progress);
    // Every secrets check shares one pass over the files, run before the rules and handed
    // to them; it announces its own phases, and without it rules run right away.
    let secret_checks = rules::engine::secrets_checks(&config.rules);
    let secrets = (!secret_checks.is_empty() && ctx.no_root.is_none())
        .then(|| rules::checks::secrets::run_pass(&secret_checks, &ctx));
    if let (Some(progress), None) = (progress, &secrets) {
        progress.set_phase(Phase::Evaluating);
    }
    let residue_checks = rules::engine::residue_checks(&config.rules);
    let residue =
        (config.residue && !residue_checks.is_empty() && ctx.no_root.is_none()).then(|| {
            rules::checks::residue::run_pass(
                &residue_checks,
                &config.loaded_rules,
                &guest,
                secrets.as_ref(),
            )
        });
    let results = rules::evaluate(
        &config.rules,
        &ctx,
        rules::Passes {
            secrets: secrets.as_ref(),
            residue: residue.as_ref(),
        },
    );
    let secrets = secrets.as_ref();
    let stats = Stats {
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        files: inventory.entries.len(),
        bytes_read: ctx.bytes_read()
            + secrets.map_or(0, |p| p.stats.bytes_scanned)
            + residue.as_ref().map_or(0, |p| p.stats.area_bytes),
        secrets: secrets.map(|p| p.stats.clone()),
        residue: residue.as_ref().map(|p| p.stats.clone()),
        checksum_mismatches_ignored: (guest.checksums == ChecksumPolicy::Ignore)
            .then(|| guest.ignored_checksums()),
    };
    let not_read = not_read(&guest, &inventory, &ctx, secrets);
    Ok(ImageScan {
        scanned: Scanned {
            details: ImageDetails::of(&guest, &inventory, stats),
            path: guest.image_name.clone(),
            unreadable: None,
            incomplete: guest.incomplete(),
            results,
        },
        not_read,
    })
}

/// An image that could not be opened, for the gate and the report.
pub fn unreadable(path: &Path, error: String) -> Scanned<ImageDetails> {
    let shown = path.display().to_string();
    Scanned {
        details: ImageDetails::unreadable(shown.clone()),
        path: shown,
        unreadable: Some(error),
        incomplete: true,
        results: Vec::new(),
    }
}

/// The SHA-256 of each file an image argument names (one per disk of `a.img+b.img`), read
/// whole from the start, as `sha256sum` reads it: what a fleet inventory keys images by.
pub fn file_digests(argument: &Path) -> std::io::Result<Vec<FileDigest>> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let disks = split_image_argument(argument)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut digests = Vec::with_capacity(disks.len());
    // One buffer for every file; the read loop ends at end of file.
    let mut buffer = vec![0u8; 1 << 20];
    for disk in disks {
        let mut file = std::fs::File::open(&disk.path)?;
        let mut hasher = Sha256::new();
        loop {
            let read = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(buffer.get(..read).unwrap_or_default());
        }
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        digests.push(FileDigest {
            path: disk.path.display().to_string(),
            sha256,
        });
    }
    Ok(digests)
}

/// Lets the gate decide every image and the run.
pub fn decide(config: &ScanConfig, images: Vec<Scanned<ImageDetails>>) -> Decision<ImageDetails> {
    Gate {
        fail_on: config.fail_on,
        waivers: &config.waivers,
        baseline: config.baseline.as_ref(),
        today: config.options.today,
        known_rules: &config.known_rules,
    }
    .decide(images)
}

/// What the scan did not look at, and why, one line each, for `--verbose`: volumes not
/// scanned or not mounted, guest paths the walk could not read, mount points hiding files
/// of the volume below, files checks did not read in full, matches an allowlist removed.
/// In a stable order; escaped for a terminal; no file content.
fn not_read(
    guest: &Guest,
    inventory: &Inventory,
    ctx: &ScanContext<'_>,
    secrets: Option<&SecretsPass>,
) -> Vec<String> {
    let text = |message: &str| escape_for_terminal(message.as_bytes());
    let volume_id = |index: usize| {
        guest.volumes.get(index).map_or_else(
            || format!("#{}", index.saturating_add(1)),
            |state| state.volume.id.clone(),
        )
    };
    let mut lines = Vec::new();
    for state in &guest.volumes {
        let id = text(&state.volume.id);
        let kind = state.volume.identity.content.as_str();
        match (&state.fs, &state.mount_point) {
            (None, mount_point) => {
                let at = mount_point
                    .as_deref()
                    .map(|path| format!(", the guest's {}", display_path(path)))
                    .unwrap_or_default();
                let reason = state.not_scanned.as_deref().unwrap_or("unreadable");
                lines.push(format!(
                    "skipped volume {id} ({kind}{at}): {}",
                    text(reason)
                ));
            }
            (Some(_), None) => lines.push(format!(
                "skipped volume {id} ({kind}): the guest does not mount it, so its files \
                 are not walked (`amiscan ls --volume {id}` lists them)"
            )),
            (Some(_), Some(_)) => {}
        }
    }
    for note in guest.notes.iter().filter(|n| n.incomplete) {
        if let Some(path) = &note.mount_point {
            let path = display_path(path);
            lines.push(format!("skipped {path}: {}", text(&note.message)));
        }
    }
    for error in &inventory.errors {
        lines.push(format!(
            "skipped {} (volume {}): {}",
            display_path(&error.path),
            text(&volume_id(error.volume)),
            text(&error.message)
        ));
    }
    for shadowed in &inventory.shadowed {
        let (below, over) = (volume_id(shadowed.volume), volume_id(shadowed.by_volume));
        let what = match &shadowed.hidden {
            Ok(count) => format!(
                "{count} entries of volume {below} lie under the mount of volume {over}; \
                 not walked (the running guest does not see them either)"
            ),
            Err(e) => format!(
                "the directory of volume {below} under the mount of volume {over} could \
                 not be listed: {e}"
            ),
        };
        lines.push(format!(
            "skipped {}: {}",
            display_path(&shadowed.path),
            text(&what)
        ));
    }
    lines.extend(ctx.partly_read());
    if let Some(pass) = secrets {
        lines.extend(pass.not_read());
    }
    lines
}
