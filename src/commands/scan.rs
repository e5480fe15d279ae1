//! `amiscan scan`: the arguments resolved (`scan_plan`), each image scanned by
//! `crate::scan` with a progress display, the gate's decision rendered once in every
//! format asked for, and the worst verdict as the exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::display::{Display, Mode};
use super::scan_plan::{plan, Plan};
use super::{CommandError, Outcome};
use crate::cli::{ReportFormat, ScanArgs};
use crate::gate::{Decision, WaiverState};
use crate::report::terminal::Terminal;
use crate::report::{self, ImageDetails, Report, RunInfo};
use crate::scan;

pub use super::scan_plan::load_pack;

/// Scans one image with a progress display on stderr; `--verbose` lists what was not read.
fn scan_image(
    path: &Path,
    config: &scan::ScanConfig,
    args: &ScanArgs,
    err: &mut dyn Write,
) -> Result<crate::gate::Scanned<ImageDetails>, CommandError> {
    let display = Display::start(
        Mode::for_stderr(args.progress, args.quiet),
        &path.display().to_string(),
    );
    let scanned = scan::scan_image(path, config, display.progress());
    // The display clears its line before anything else reaches stderr.
    display.finish();
    let scanned = scanned.map_err(super::open_error)?;
    if args.verbose && !args.quiet {
        let image = crate::names::escape_for_terminal(path.display().to_string().as_bytes());
        for line in &scanned.not_read {
            writeln!(err, "amiscan: {image}: {line}")?;
        }
    }
    Ok(scanned.scanned)
}

fn write_file(
    path: &Path,
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CommandError> {
    let fail = |e: std::io::Error| CommandError::Usage(format!("{what} {}: {e}", path.display()));
    let mut file = std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(fail)?;
    write(&mut file).and_then(|()| file.flush()).map_err(fail)
}

/// What a user should hear about waivers on stderr, even when the report goes to a file.
fn waiver_warnings(report: &Report) -> Vec<String> {
    report
        .waivers
        .iter()
        .filter(|w| {
            matches!(
                w.state,
                WaiverState::Expired | WaiverState::Unmatched | WaiverState::UnknownRule
            )
        })
        .map(|w| format!("waiver {} ({}) {}", w.source, w.rule, w.describe()))
        .collect()
}

/// `--label KEY=VALUE` arguments as a map; a malformed or repeated KEY is a usage error,
/// so a typo never reaches a fleet inventory.
fn labels(args: &[String]) -> Result<BTreeMap<String, String>, CommandError> {
    let mut labels = BTreeMap::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(CommandError::Usage(format!(
                "--label {arg}: expected KEY=VALUE"
            )));
        };
        let valid = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            return Err(CommandError::Usage(format!(
                "--label {arg}: KEY must be letters, digits, `_`, `.` or `-`"
            )));
        }
        if labels.insert(key.to_string(), value.to_string()).is_some() {
            return Err(CommandError::Usage(format!(
                "--label {key}: given more than once"
            )));
        }
    }
    Ok(labels)
}

/// The time now, RFC 3339 in UTC to the second.
fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// Says on stderr what a user should hear whatever the report's format: the notes of
/// images whose report goes elsewhere, why each incomplete image is incomplete (one line
/// each), waiver files picked up unasked, waivers to act on.
fn warn(plan: &Plan, args: &ScanArgs, report: &Report, err: &mut dyn Write) -> std::io::Result<()> {
    if plan.stdout_format != ReportFormat::Table {
        for image in &report.images {
            for note in &image.notes {
                writeln!(err, "amiscan: {}: {note}", image.image.path)?;
            }
        }
    }
    if args.waivers.is_empty() {
        // Files picked up without being named: say so, so none waives in silence.
        let mut files: Vec<(&str, usize)> = Vec::new();
        for waiver in &plan.config.waivers {
            let file = waiver.source.rsplit_once(':').map_or("", |(file, _)| file);
            match files.iter_mut().find(|(f, _)| *f == file) {
                Some((_, count)) => *count += 1,
                None => files.push((file, 1)),
            }
        }
        for (file, count) in files {
            writeln!(err, "amiscan: {count} waiver(s) read from {file}")?;
        }
    }
    for image in &report.images {
        if let Some(line) = report::not_read::stderr_summary(image) {
            let shown = crate::names::escape_for_terminal(image.image.path.as_bytes());
            writeln!(err, "amiscan: {shown}: {line}")?;
        }
    }
    for warning in waiver_warnings(report) {
        writeln!(err, "amiscan: {warning}")?;
    }
    Ok(())
}

pub fn run(
    args: &ScanArgs,
    terminal: &Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let plan = plan(args)?;
    if !args.quiet {
        for notice in &plan.notices {
            writeln!(err, "amiscan: {notice}")?;
        }
    }
    let labels = labels(&args.labels)?;
    let config = &plan.config;
    let mut images = Vec::with_capacity(config.images.len());
    for path in &config.images {
        let mut image = match scan_image(path, config, args, err) {
            Ok(image) => image,
            Err(CommandError::Output(e)) => return Err(CommandError::Output(e)),
            Err(e) => {
                writeln!(err, "amiscan: {e}")?;
                scan::unreadable(path, e.to_string())
            }
        };
        if args.image_digest {
            // Before the gate decides, so the report is built once with everything in it.
            match scan::file_digests(path) {
                Ok(digests) => image.details.image.digests = digests,
                Err(e) => writeln!(
                    err,
                    "amiscan: {}: --image-digest: {e}",
                    crate::names::escape_for_terminal(path.display().to_string().as_bytes())
                )?,
            }
        }
        images.push(image);
    }
    let decision: Decision<ImageDetails> = scan::decide(config, images);
    let run = RunInfo {
        labels,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let report = Report::new(&decision, &config.rules, config.baseline.as_ref(), run);
    if !args.quiet {
        warn(&plan, args, &report, err)?;
    }
    match plan.stdout_format {
        ReportFormat::Table => report::table::write_to(&report, terminal, out)?,
        format => report::write(&report, format, out)?,
    }
    for (format, path) in &plan.outputs {
        write_file(path, "--output", |file| {
            report::write(&report, *format, file)
        })?;
    }
    if let (Some(path), Some(image)) = (&args.remediation_script, decision.images.first()) {
        if image.unreadable.is_none() {
            let failing = report::remediation::failing(image);
            write_file(path, "--remediation-script", |file| {
                report::remediation::write_script(file, &image.path, &failing)
            })?;
        }
    }
    Ok(Outcome::from(decision.summary.verdict))
}
