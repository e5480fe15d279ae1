//! `amiscan scan`: scan each image in turn (full parallelism inside each), let the gate
//! weigh waivers, the baseline and `--fail-on`, write the report in every format asked
//! for, and turn the worst verdict into an exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::render::civil_from_days;
use super::{open_guest, CommandError, Outcome};
use crate::cli::{ReportFormat, RuleArgs, ScanArgs};
use crate::gate::baseline::{self, Baseline};
use crate::gate::waivers::{self, Waiver, WaiverError};
use crate::gate::{FailOn, Gate};
use crate::progress::{Display, Mode};
use crate::report::{self, ImageReport, Report, ResultStatus, Stats, Verdict, WaiverState};
use crate::rules::checks::os_eol::parse_date;
use crate::rules::context::BlindSpot;
use crate::rules::{self, select, Pack, Rule, RuleResult, ScanContext, ScanOptions, Severity};
use crate::walk::{self, WalkOptions};

/// The built-in pack plus the user's `--rules` packs.
pub fn load_pack(args: &RuleArgs) -> Result<Pack, CommandError> {
    let mut pack = Pack::builtin().map_err(|errors| {
        CommandError::Usage(format!(
            "the built-in rule pack is invalid: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    for path in &args.packs {
        pack.load(path).map_err(located_errors)?;
    }
    Ok(pack)
}

/// Today's date in UTC as (year, month, day).
pub fn today_utc() -> (i32, u32, u32) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    (i32::try_from(year).unwrap_or(i32::MAX), month, day)
}

/// Writes a report in one format.
pub fn render(report: &Report, format: ReportFormat, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        ReportFormat::Table => report::table::write(report, out),
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::from)?;
            writeln!(out)
        }
        ReportFormat::Jsonl => report::jsonl::write(report, out),
        ReportFormat::Markdown => report::markdown::write(report, out),
        ReportFormat::Sarif => report::sarif::write(report, out),
        ReportFormat::Junit => report::junit::write(report, out),
    }
}

/// An `--output` argument: `FORMAT=FILE`, or a file whose extension names the format.
/// Checked before the scan starts, so a typo costs nothing.
fn output(spec: &str) -> Result<(ReportFormat, PathBuf), CommandError> {
    let named = |name: &str| match name {
        "table" | "txt" => Some(ReportFormat::Table),
        "json" => Some(ReportFormat::Json),
        "jsonl" | "ndjson" => Some(ReportFormat::Jsonl),
        "markdown" | "md" => Some(ReportFormat::Markdown),
        "sarif" => Some(ReportFormat::Sarif),
        "junit" | "xml" => Some(ReportFormat::Junit),
        _ => None,
    };
    if let Some((format, path)) = spec.split_once('=') {
        if let Some(format) = named(format) {
            return Ok((format, path.into()));
        }
    }
    let path = PathBuf::from(spec);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    // `report.sarif.json` is the name GitHub's documentation uses for SARIF.
    let extension = if name.ends_with(".sarif.json") {
        "sarif".to_string()
    } else {
        path.extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    };
    match named(&extension) {
        Some(format) => Ok((format, path)),
        None => Err(CommandError::Usage(format!(
            "--output {spec}: say the format (table=, json=, jsonl=, markdown=, sarif=, junit=) or use a .txt, .json, .jsonl, .ndjson, .md, .sarif or .xml file"
        ))),
    }
}

fn fail_on(text: &str) -> Result<FailOn, CommandError> {
    if text == "never" {
        return Ok(FailOn::Never);
    }
    Severity::parse(text)
        .map(FailOn::At)
        .ok_or_else(|| CommandError::Usage(format!("--fail-on: unknown severity `{text}`")))
}

fn has_glob_characters(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The images named on the command line, with globs the shell left alone expanded (in
/// sorted order). A path that exists is taken as it is, even with `*` in its name.
fn expand_images(arguments: &[PathBuf]) -> Result<Vec<PathBuf>, CommandError> {
    let mut images = Vec::new();
    for argument in arguments {
        let text = argument.to_string_lossy();
        if argument.exists() || !has_glob_characters(&text) {
            images.push(argument.clone());
            continue;
        }
        let mut matched: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| CommandError::Usage(format!("image pattern `{text}`: {e}")))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if matched.is_empty() {
            return Err(CommandError::Usage(format!(
                "image pattern `{text}` matches no file"
            )));
        }
        matched.sort();
        images.append(&mut matched);
    }
    Ok(images)
}

/// Problems in a rule pack or waiver file, one FILE:LINE:COLUMN line each.
fn located_errors(errors: Vec<WaiverError>) -> CommandError {
    CommandError::Usage(
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `--waivers` files, or the default files when none is given.
fn load_waivers(args: &ScanArgs, images: &[PathBuf]) -> Result<Vec<Waiver>, CommandError> {
    if args.waivers.is_empty() {
        if args.no_default_waivers {
            return Ok(Vec::new());
        }
        return waivers::load_defaults(images).map_err(located_errors);
    }
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for path in &args.waivers {
        match waivers::load(path) {
            Ok(mut found) => all.append(&mut found),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(located_errors(errors))
    }
}

/// Everything `scan` resolved from its arguments before opening any image.
struct Plan {
    images: Vec<PathBuf>,
    selected: Vec<std::sync::Arc<Rule>>,
    known_rules: std::collections::BTreeSet<String>,
    options: ScanOptions,
    fail_on: FailOn,
    stdout_format: ReportFormat,
    outputs: Vec<(ReportFormat, PathBuf)>,
    waivers: Vec<Waiver>,
    baseline: Option<Baseline>,
}

fn plan(args: &ScanArgs) -> Result<Plan, CommandError> {
    let pack = load_pack(&args.rules)?;
    let selected = select::select(&pack, &args.rules.select, &args.rules.ignore)
        .map_err(CommandError::Usage)?;
    let today = match &args.as_of {
        Some(date) => parse_date(date).ok_or_else(|| {
            CommandError::Usage(format!("--as-of: `{date}` is not a YYYY-MM-DD date"))
        })?,
        None => today_utc(),
    };
    let mut outputs = args
        .outputs
        .iter()
        .map(|spec| output(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stdout_formats = Vec::new();
    for choice in &args.format {
        match &choice.file {
            Some(file) => outputs.push((choice.format, file.clone())),
            None => stdout_formats.push(choice.format),
        }
    }
    let stdout_format = match stdout_formats.as_slice() {
        [] => ReportFormat::Table,
        [one] => *one,
        _ => {
            return Err(CommandError::Usage(
                "--format: standard output takes one format; write the others with FORMAT=FILE"
                    .to_string(),
            ))
        }
    };
    let images = expand_images(&args.images)?;
    if args.remediation_script.is_some() && images.len() != 1 {
        return Err(CommandError::Usage(format!(
            "--remediation-script writes the clean-up of one image; {} images were given",
            images.len()
        )));
    }
    let waivers = load_waivers(args, &images)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(baseline::load)
        .transpose()
        .map_err(CommandError::Usage)?;
    Ok(Plan {
        known_rules: pack.rules().map(|r| r.id.clone()).collect(),
        images,
        selected,
        options: ScanOptions {
            sshd_strict: args.sshd_strict,
            today,
            secrets_max_size: args.secrets_max_size,
        },
        fail_on: fail_on(&args.fail_on)?,
        stdout_format,
        outputs,
        waivers,
        baseline,
    })
}

/// Scans one image: what it found, and the engine's results (for the remediation script).
fn scan_image(
    path: &Path,
    plan: &Plan,
    args: &ScanArgs,
    err: &mut dyn Write,
) -> Result<(ImageReport, Vec<RuleResult>), CommandError> {
    let started = Instant::now();
    let display = Display::start(
        Mode::for_stderr(args.progress, args.quiet),
        &path.display().to_string(),
    );
    let progress = display.progress();
    let guest = open_guest(path)?;
    if let Some(progress) = progress {
        progress.opened(&guest);
    }
    let inventory = walk::walk(
        &guest.tree,
        WalkOptions {
            progress,
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
        plan.options.clone(),
        blind_spots,
    )
    .with_progress(progress);
    if let Some(progress) = progress {
        // The secrets pass announces its own phases; without one, rules run right away.
        let reads_contents = plan.selected.iter().any(|rule| {
            rule.checks
                .iter()
                .any(|check| matches!(check, rules::checks::Check::Secrets(_)))
        });
        if !reads_contents {
            progress.set_phase(crate::progress::Phase::Evaluating);
        }
    }
    let results = rules::evaluate(&plan.selected, &ctx);
    // The display clears its line before anything else reaches stderr.
    display.finish();
    let secrets = ctx.secrets_pass();
    if args.verbose && !args.quiet {
        let image = crate::names::escape_for_terminal(guest.image_name.as_bytes());
        for line in ctx.skipped(&guest) {
            writeln!(err, "amiscan: {image}: {line}")?;
        }
    }
    let stats = Stats {
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        files: inventory.entries.len(),
        bytes_read: ctx.bytes_read() + secrets.map_or(0, |p| p.stats.bytes_scanned),
        secrets: secrets.map(|p| p.stats.clone()),
    };
    let report = ImageReport::scanned(&guest, &results, stats);
    Ok((report, results))
}

/// The rules that still fail in the gated image, with their unwaived findings.
fn failing_for_script<'a>(
    image: &ImageReport,
    results: &'a [RuleResult],
) -> Vec<(&'a Rule, Vec<&'a rules::engine::Finding>)> {
    image
        .results
        .iter()
        .zip(results)
        .filter(|(info, _)| info.status == ResultStatus::Fail)
        .map(|(info, result)| {
            let findings = info
                .findings
                .iter()
                .zip(&result.findings)
                .filter(|(f, _)| !f.waived())
                .map(|(_, f)| f)
                .collect();
            (result.rule.as_ref(), findings)
        })
        .collect()
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

pub fn run(
    args: &ScanArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let plan = plan(args)?;
    let mut images = Vec::with_capacity(plan.images.len());
    let mut kept_results = Vec::new();
    for path in &plan.images {
        match scan_image(path, &plan, args, err) {
            Ok((image, results)) => {
                images.push(image);
                if args.remediation_script.is_some() {
                    kept_results = results;
                }
            }
            Err(CommandError::Output(e)) => return Err(CommandError::Output(e)),
            Err(e) => {
                writeln!(err, "amiscan: {e}")?;
                images.push(ImageReport::unreadable(
                    path.display().to_string(),
                    e.to_string(),
                ));
            }
        }
    }
    let gate = Gate {
        fail_on: plan.fail_on,
        waivers: &plan.waivers,
        baseline: plan.baseline.as_ref(),
        today: plan.options.today,
        known_rules: &plan.known_rules,
        rules: &plan.selected,
    };
    let report = gate.decide(images);
    if !args.quiet {
        let to_file = plan.stdout_format != ReportFormat::Table;
        for image in report.images.iter().filter(|_| to_file) {
            for note in &image.notes {
                writeln!(err, "amiscan: {}: {note}", image.image.path)?;
            }
        }
        if args.waivers.is_empty() {
            // Files picked up without being named: say so, so none waives in silence.
            let mut files: Vec<(&str, usize)> = Vec::new();
            for waiver in &plan.waivers {
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
        for warning in waiver_warnings(&report) {
            writeln!(err, "amiscan: {warning}")?;
        }
    }
    render(&report, plan.stdout_format, out)?;
    for (format, path) in &plan.outputs {
        write_file(path, "--output", |file| render(&report, *format, file))?;
    }
    if let (Some(path), Some(image)) = (&args.remediation_script, report.images.first()) {
        if image.error.is_none() {
            let failing = failing_for_script(image, &kept_results);
            write_file(path, "--remediation-script", |file| {
                report::remediation::write_script(file, &image.image.path, &failing)
            })?;
        }
    }
    Ok(match report.summary.verdict {
        Verdict::Pass => Outcome::Complete,
        Verdict::Fail => Outcome::Failed,
        Verdict::Incomplete => Outcome::Incomplete,
        Verdict::Error => Outcome::Unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_formats_follow_the_extension_or_the_prefix() {
        let format = |spec: &str| output(spec).map(|(f, _)| f).ok();
        assert_eq!(format("r.sarif"), Some(ReportFormat::Sarif));
        assert_eq!(format("r.sarif.json"), Some(ReportFormat::Sarif));
        assert_eq!(format("junit.xml"), Some(ReportFormat::Junit));
        assert_eq!(format("sarif=r.out"), Some(ReportFormat::Sarif));
        assert_eq!(format("R.JSON"), Some(ReportFormat::Json));
        assert_eq!(format("report.pdf"), None);
    }
}
