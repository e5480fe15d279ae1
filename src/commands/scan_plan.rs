//! `amiscan scan`'s arguments resolved into the library's `ScanConfig` and where the
//! report goes, before any image is opened: rule packs and the selection, `--as-of`,
//! `--fail-on`, `--format`/`--output`, image globs, waiver files, the baseline. A typo in
//! any of them costs nothing.

use std::path::PathBuf;

use super::CommandError;
use crate::cli::{ReportFormat, RuleArgs, ScanArgs};
use crate::gate::baseline;
use crate::gate::waivers::{self, Waiver, WaiverError};
use crate::rules::{select, FailOn, Pack, ScanOptions};
use crate::scan::ScanConfig;

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
    let mut configs = Vec::new();
    for path in &args.secrets_configs {
        let loaded = crate::rules::gitleaks::load(path)
            .map_err(|e| CommandError::Usage(format!("--secrets-config: {e}")))?;
        loaded
            .notices
            .into_iter()
            .for_each(|n| pack.add_notice(format!("--secrets-config: {n}")));
        configs.push((path.display().to_string(), loaded.detectors));
    }
    if let Some(rule) = crate::rules::gitleaks::rule(configs) {
        pack.add(rule);
    }
    Ok(pack)
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
pub struct Plan {
    /// What loading the rules said without failing, for stderr.
    pub notices: Vec<String>,
    pub config: ScanConfig,
    pub stdout_format: ReportFormat,
    pub outputs: Vec<(ReportFormat, PathBuf)>,
}

pub fn plan(args: &ScanArgs) -> Result<Plan, CommandError> {
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
        notices: pack.notices().to_vec(),
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
            max_entries: args.read.max_entries(),
            open: args.read.open_options(),
            // On unless turned off: the last of --residue and --no-residue wins.
            residue: !args.no_residue,
            loaded_rules: pack.rules().cloned().collect(),
        },
        stdout_format,
        outputs,
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
