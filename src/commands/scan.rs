//! `amiscan scan`: open the image, walk the guest, evaluate the selected rules, report,
//! and turn the verdict into an exit code.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::render::civil_from_days;
use super::{open_guest, CommandError, Outcome};
use crate::cli::{RuleArgs, ScanArgs, TableOrJson};
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
    match args.format {
        TableOrJson::Json => {
            for note in &report.notes {
                writeln!(err, "amiscan: {}: {note}", guest.image_name)?;
            }
            serde_json::to_writer_pretty(&mut *out, &report).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        TableOrJson::Table => report::table::write(&report, out)?,
    }
    Ok(match report.summary.verdict {
        Verdict::Pass => Outcome::Complete,
        Verdict::Fail => Outcome::Failed,
        Verdict::Incomplete => Outcome::Incomplete,
    })
}
