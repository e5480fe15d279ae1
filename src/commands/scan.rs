//! `amiscan scan`: open the image, walk the guest, evaluate the selected rules, report,
//! and turn the verdict into an exit code.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::render::civil_from_days;
use super::{open_guest, CommandError, Outcome};
use crate::cli::{ReportFormat, RuleArgs, ScanArgs};
use crate::report::{self, FailOn, ScanReport, Stats, Verdict};
use crate::rules::checks::os_eol::parse_date;
use crate::rules::context::BlindSpot;
use crate::rules::{self, select, Pack, ScanContext, ScanOptions, Severity};
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
        pack.load(path).map_err(|errors| {
            CommandError::Usage(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
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
pub fn render(
    report: &ScanReport,
    format: ReportFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        ReportFormat::Table => report::table::write(report, out),
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::from)?;
            writeln!(out)
        }
        ReportFormat::Jsonl => report::jsonl::write(report, out),
        ReportFormat::Markdown => report::markdown::write(report, out),
    }
}

/// An `--output` argument: `FORMAT=FILE`, or a file whose extension names the format.
/// Checked before the scan starts, so a typo costs nothing.
fn output(spec: &str) -> Result<(ReportFormat, std::path::PathBuf), CommandError> {
    let named = |name: &str| match name {
        "table" | "txt" => Some(ReportFormat::Table),
        "json" => Some(ReportFormat::Json),
        "jsonl" | "ndjson" => Some(ReportFormat::Jsonl),
        "markdown" | "md" => Some(ReportFormat::Markdown),
        _ => None,
    };
    if let Some((format, path)) = spec.split_once('=') {
        if let Some(format) = named(format) {
            return Ok((format, path.into()));
        }
    }
    let path = std::path::PathBuf::from(spec);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match named(&extension) {
        Some(format) => Ok((format, path)),
        None => Err(CommandError::Usage(format!(
            "--output {spec}: say the format (table=, json=, jsonl=, markdown=) or use a .txt, .json, .jsonl, .ndjson or .md file"
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

pub fn run(
    args: &ScanArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CommandError> {
    let started = Instant::now();
    let pack = load_pack(&args.rules)?;
    let selected = select::select(&pack, &args.rules.select, &args.rules.ignore)
        .map_err(CommandError::Usage)?;
    let today = match &args.as_of {
        Some(date) => parse_date(date).ok_or_else(|| {
            CommandError::Usage(format!("--as-of: `{date}` is not a YYYY-MM-DD date"))
        })?,
        None => today_utc(),
    };
    let fail_on = fail_on(&args.fail_on)?;
    let outputs = args
        .outputs
        .iter()
        .map(|spec| output(spec))
        .collect::<Result<Vec<_>, _>>()?;

    let guest = open_guest(&args.image)?;
    let inventory = walk::walk(&guest.tree, WalkOptions::default());
    let blind_spots = guest
        .unscanned_mount_points()
        .into_iter()
        .map(|(path, reason)| BlindSpot {
            path: path.to_vec(),
            reason: reason.to_string(),
        })
        .collect();
    let options = ScanOptions {
        sshd_strict: args.sshd_strict,
        today,
        secrets_max_size: args.secrets_max_size,
    };
    let ctx = ScanContext::new(
        &guest.tree,
        &inventory,
        guest.os.as_ref(),
        options,
        blind_spots,
    );
    let results = rules::evaluate(&selected, &ctx);
    let secrets = ctx.secrets_pass();
    if args.verbose {
        if let Some(pass) = secrets {
            for line in pass.allowlisted.iter().chain(&pass.notes) {
                writeln!(
                    err,
                    "amiscan: secrets: {}",
                    crate::names::escape_for_terminal(line.as_bytes())
                )?;
            }
        }
    }
    let stats = Stats {
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        files: inventory.entries.len(),
        bytes_read: ctx.bytes_read() + secrets.map_or(0, |p| p.stats.bytes_scanned),
        secrets: secrets.map(|p| p.stats.clone()),
    };
    let report = ScanReport::new(&guest, &results, fail_on, stats);
    if args.format != ReportFormat::Table {
        for note in &report.notes {
            writeln!(err, "amiscan: {}: {note}", guest.image_name)?;
        }
    }
    render(&report, args.format, out)?;
    for (format, path) in &outputs {
        let mut file = std::fs::File::create(path)
            .map(std::io::BufWriter::new)
            .map_err(|e| CommandError::Usage(format!("--output {}: {e}", path.display())))?;
        render(&report, *format, &mut file)
            .and_then(|()| file.flush())
            .map_err(|e| CommandError::Usage(format!("--output {}: {e}", path.display())))?;
    }
    Ok(match report.summary.verdict {
        Verdict::Pass => Outcome::Complete,
        Verdict::Fail => Outcome::Failed,
        Verdict::Incomplete => Outcome::Incomplete,
    })
}
