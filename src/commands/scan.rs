//! `amiscan scan`: the command line resolved into a `ScanConfig` (a typo in any argument
//! costs nothing), each image scanned by `crate::scan` with a progress display, the gate's
//! decision rendered in every format asked for, and the worst verdict as the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::display::{Display, Mode};
use super::{CommandError, Outcome};
use crate::cli::{ReportFormat, RuleArgs, ScanArgs};
use crate::gate::waivers::{self, Waiver, WaiverError};
use crate::gate::{baseline, DecidedImage, Decision, ResultStatus, WaiverState};
use crate::report::{self, ImageDetails, Report};
use crate::rules::{select, FailOn, Finding, Pack, Rule, ScanOptions};
use crate::scan::{self, ScanConfig};

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
    FailOn::parse(text)
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

/// Everything `scan` resolved from its arguments before opening any image: the library's
/// configuration, and where the report goes.
struct Plan {
    config: ScanConfig,
    stdout_format: ReportFormat,
    outputs: Vec<(ReportFormat, PathBuf)>,
}

fn plan(args: &ScanArgs) -> Result<Plan, CommandError> {
    let pack = load_pack(&args.rules)?;
    let selected = select::select(&pack, &args.rules.select, &args.rules.ignore)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let today = match &args.as_of {
        Some(date) => crate::date::parse(date).ok_or_else(|| {
            CommandError::Usage(format!("--as-of: `{date}` is not a YYYY-MM-DD date"))
        })?,
        None => crate::date::today_utc(),
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
        .map(baseline::read)
        .transpose()
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    Ok(Plan {
        config: ScanConfig {
            known_rules: pack.rules().map(|r| r.id.clone()).collect(),
            images,
            rules: selected,
            options: ScanOptions {
                sshd_strict: args.sshd_strict,
                today,
                secrets_max_size: args.secrets_max_size,
            },
            fail_on: fail_on(&args.fail_on)?,
            waivers,
            baseline,
        },
        stdout_format,
        outputs,
    })
}

/// Scans one image with a progress display on stderr; `--verbose` lists what was not read.
fn scan_image(
    path: &Path,
    config: &ScanConfig,
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

/// The rules that still fail in the decided image, with their findings no waiver covers.
fn failing_for_script<D>(image: &DecidedImage<D>) -> Vec<(&Rule, Vec<&Finding>)> {
    image
        .results
        .iter()
        .filter(|result| result.status == ResultStatus::Fail)
        .map(|result| {
            let findings = result
                .findings
                .iter()
                .filter(|f| !f.waived())
                .map(|f| &f.finding)
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

/// Says on stderr what a user should hear whatever the report's format: the notes of
/// images whose report goes elsewhere, waiver files picked up unasked, waivers to act on.
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
    for warning in waiver_warnings(report) {
        writeln!(err, "amiscan: {warning}")?;
    }
    Ok(())
}

pub fn run(
    args: &ScanArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let plan = plan(args)?;
    let config = &plan.config;
    let mut images = Vec::with_capacity(config.images.len());
    for path in &config.images {
        match scan_image(path, config, args, err) {
            Ok(image) => images.push(image),
            Err(CommandError::Output(e)) => return Err(CommandError::Output(e)),
            Err(e) => {
                writeln!(err, "amiscan: {e}")?;
                images.push(scan::unreadable(path, e.to_string()));
            }
        }
    }
    let decision: Decision<ImageDetails> = scan::decide(config, images);
    let report = Report::new(&decision, &config.rules, config.baseline.as_ref());
    if !args.quiet {
        warn(&plan, args, &report, err)?;
    }
    render(&report, plan.stdout_format, out)?;
    for (format, path) in &plan.outputs {
        write_file(path, "--output", |file| render(&report, *format, file))?;
    }
    if let (Some(path), Some(image)) = (&args.remediation_script, decision.images.first()) {
        if image.unreadable.is_none() {
            let failing = failing_for_script(image);
            write_file(path, "--remediation-script", |file| {
                report::remediation::write_script(file, &image.path, &failing)
            })?;
        }
    }
    Ok(Outcome::from(decision.summary.verdict))
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
