//! Command-line arguments (clap), resolved into the options each command takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Offline, read-only auditor for machine images.
///
/// amiscan opens a disk image without mounting it, without root and without booting it,
/// finds its partitions and filesystems, assembles the guest's file tree from its
/// /etc/fstab, judges it against rules and lets you inspect it.
///
/// Image formats: raw (and raw EBS snapshot dumps), qcow2, VMDK, VHD, VHDX and VDI, detected
/// by their content. Partition tables and volumes: GPT, MBR and LVM2. Filesystems: ext2,
/// ext3, ext4, XFS and vfat (the EFI system partition).
///
/// IMAGE is an image file, or the disks of one machine joined with `+` (`root.img+data.img`,
/// or `xvda=root.img+xvdf=data.img` to name them as the guest does).
///
/// Exit codes: 0 success (for `scan`: no failing rule at or above --fail-on), 1 failing
/// rules, 2 usage error or unreadable image, 3 partly read (the output says what was
/// skipped; for `scan`, nothing failed but a clean result is not proven).
#[derive(Debug, Parser)]
#[command(name = "amiscan", version = env!("AMISCAN_VERSION_LINE"), max_term_width = 100)]
pub struct Cli {
    /// When to colour tables and verdicts: `auto` colours a terminal unless NO_COLOR is
    /// set; machine formats (JSON, SARIF, JUnit, JSON Lines, Markdown) are never coloured.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always colour, even into a pipe or with NO_COLOR set.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge the image against the rule pack: leftovers from the build, weak defaults.
    ///
    /// Exit codes: 0 no failing rule at or above --fail-on, 1 failing rules, 2 usage error
    /// or unreadable image, 3 nothing failed but something could not be read.
    Scan(Box<ScanArgs>),
    /// List, explain and validate rules.
    Rules {
        #[command(subcommand)]
        action: RulesCommand,
    },
    /// Describe the image: container, partitions, filesystems, mount points and the OS.
    Inspect {
        /// The disk image to read (opened read-only).
        image: PathBuf,
        /// `table` for people, `json` for programs.
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// List a directory of the guest, like `ls`.
    Ls {
        /// The disk image to read (opened read-only).
        image: PathBuf,
        /// Guest path to list (default `/`). Symlinks resolve inside the guest.
        #[arg(default_value = "/")]
        path: String,
        /// Long listing: mode, owner, size, modification time, symlink targets.
        #[arg(short = 'l', long = "long")]
        long: bool,
        /// List subdirectories recursively.
        #[arg(short = 'R', long = "recursive")]
        recursive: bool,
        /// Look inside this volume (e.g. `p3`) instead of the guest's mount tree.
        #[arg(long)]
        volume: Option<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Print a guest file's contents to standard output, like `cat`.
    Cat {
        /// The disk image to read (opened read-only).
        image: PathBuf,
        /// Guest path of the file. Symlinks resolve inside the guest.
        path: String,
        /// Look inside this volume (e.g. `p3`) instead of the guest's mount tree.
        #[arg(long)]
        volume: Option<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Inventory every file of the guest (walked in parallel), one JSON object per line.
    Files {
        /// The disk image to read (opened read-only).
        image: PathBuf,
        /// Add a content hash of every regular file.
        #[arg(long, value_enum)]
        hash: Option<HashAlgorithm>,
        /// Do not hash files larger than this many bytes (they get `"hash_skipped": true`).
        /// Sparse files are read in full, holes included.
        #[arg(long, value_name = "BYTES", default_value_t = crate::walk::DEFAULT_HASH_LIMIT)]
        hash_max_size: u64,
        /// `jsonl`: one JSON object per file; `table`: a table for people.
        #[arg(long, value_enum, default_value_t = ListFormat::Jsonl)]
        format: ListFormat,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Give up after this many seconds: exit 3, nothing listed is proven complete.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Print the version; with --verbose, also how this binary was built and what it reads.
    Version {
        /// Add the cargo features, target, compiler, and the image formats and filesystems
        /// this build reads.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Print a shell completion script for amiscan to standard output.
    ///
    /// For bash: `amiscan completions bash > ~/.local/share/bash-completion/completions/amiscan`;
    /// zsh: into a directory of $fpath as `_amiscan`; fish:
    /// `~/.config/fish/completions/amiscan.fish`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, or write one page per command.
    ///
    /// `amiscan man | man -l -` reads it; `amiscan man --out DIR` writes amiscan.1 and a
    /// page per subcommand (amiscan-scan.1, amiscan-rules-list.1 and so on) for installing
    /// into a man1 directory.
    Man {
        /// Write one page per command into this directory instead of printing amiscan(1).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// How the image is read, shared by every command that opens one.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ReadArgs {
    /// Read structures whose checksum does not match instead of refusing them (forensic
    /// reading of a damaged image). The result is always marked incomplete.
    #[arg(long)]
    pub ignore_checksums: bool,
    /// With `-` as the image (standard input, copied to $TMPDIR first): refuse more than
    /// this many bytes (default 64 GiB).
    #[arg(long, value_name = "BYTES")]
    pub stdin_max_size: Option<u64>,
    /// List at most this many entries of the guest (default 4 000 000, about 210 bytes of
    /// memory each); beyond it the rest is not listed and the result is incomplete (exit 3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_entries: Option<u64>,
}

impl ReadArgs {
    /// The walk's entry cap, when given.
    pub fn max_entries(&self) -> Option<usize> {
        self.max_entries
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub fn open_options(self) -> crate::guest::OpenOptions {
        crate::guest::OpenOptions {
            stdin_max_size: self
                .stdin_max_size
                .unwrap_or(crate::image::DEFAULT_STDIN_MAX),
            checksums: if self.ignore_checksums {
                crate::checksums::ChecksumPolicy::Ignore
            } else {
                crate::checksums::ChecksumPolicy::Verify
            },
        }
    }
}

/// Rule selection shared by `scan` and `rules`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuleArgs {
    /// Add the rules of a pack file, or of every *.yaml file in a directory; a rule with an
    /// id already loaded replaces it. Repeatable.
    #[arg(long = "rules", value_name = "FILE|DIR")]
    pub packs: Vec<PathBuf>,
    /// Add the secret rules of a gitleaks configuration (TOML: rules with id, regex,
    /// secretGroup, keywords, entropy, path and allowlists), as the rule `creds.gitleaks`.
    /// What cannot be honoured is said on stderr. Repeatable.
    #[arg(long = "secrets-config", value_name = "TOML")]
    pub secrets_configs: Vec<PathBuf>,
    /// Run only these rules: ids, id globs (`sshd.*`) or tags, comma-separated or repeated.
    #[arg(long, value_name = "IDS|TAGS")]
    pub select: Vec<String>,
    /// Do not run these rules: ids, id globs or tags.
    #[arg(long, value_name = "IDS|TAGS")]
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// The disk images to scan (opened read-only), one after another; quoted globs
    /// (`'out/*.qcow2'`) are expanded. One combined report; the exit code is the worst
    /// image's.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// What standard output shows; `FORMAT=FILE` writes that format to a file instead, like
    /// --output (repeatable).
    #[arg(long, value_name = "FORMAT[=FILE]", value_parser = FormatChoiceParser)]
    pub format: Vec<FormatChoice>,
    /// Also write the report to a file, in the format its extension names (.json, .jsonl,
    /// .ndjson, .md, .sarif, .sarif.json, .xml for JUnit, .txt) or `FORMAT=FILE` (table,
    /// json, jsonl, markdown, sarif, junit). Repeatable.
    #[arg(long = "output", value_name = "[FORMAT=]FILE")]
    pub outputs: Vec<String>,
    /// Exit 1 when a finding at this severity or above is neither waived nor in the
    /// baseline (`never`: only report).
    #[arg(long, value_name = "SEVERITY", default_value = "medium",
          value_parser = ["critical", "high", "medium", "low", "info", "never"])]
    pub fail_on: String,
    /// Waiver file (YAML; docs/waivers.md). Repeatable. Without it, `.amiscan-waivers.yaml`
    /// in the working directory and next to each image is read when present.
    #[arg(long = "waivers", value_name = "FILE")]
    pub waivers: Vec<PathBuf>,
    /// Do not read `.amiscan-waivers.yaml` files unless named with --waivers.
    #[arg(long)]
    pub no_default_waivers: bool,
    /// An earlier JSON report: fail only on findings it does not have (same rule, path,
    /// subject and secret fingerprint), and list what was fixed since.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
    /// Write a POSIX shell script with the clean-up commands for the failing rules, to run
    /// as the last provisioning step before capture (never run by amiscan). One image only.
    #[arg(long, value_name = "FILE")]
    pub remediation_script: Option<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Require every sshd_config occurrence of a keyword to conform, not only the value
    /// sshd uses (SCAP Security Guide parity; stricter than sshd itself).
    #[arg(long)]
    pub sshd_strict: bool,
    /// Read every volume's free space and journal for what deleted files left there
    /// (rules residue.*): credentials, keys, host keys, histories removed without
    /// shredding. The default; kept for scripts that say so.
    #[arg(long, overrides_with = "no_residue")]
    pub residue: bool,
    /// Do not read free space and journals: the residue rules are skipped.
    #[arg(long, overrides_with = "residue")]
    pub no_residue: bool,
    /// Read at most this many bytes of content per file for credential rules (after
    /// decompression; default 4 GiB, or the rules' own `max_size`). Files with more are
    /// scanned up to the cap and counted in `stats.secrets.truncated`.
    #[arg(long, value_name = "BYTES")]
    pub secrets_max_size: Option<u64>,
    /// Judge dates (end of life) as of this day, YYYY-MM-DD, instead of today.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Give up after this many seconds for the whole run: exit 3 with the reason on
    /// stderr, and no report (default: no limit).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Also report on stderr what was not judged and why: matches an allowlist removed
    /// (kind, place and fingerprint, never the value), files only partly scanned.
    #[arg(short, long)]
    pub verbose: bool,
    /// Show progress on stderr even when it is not a terminal (plain lines, for CI logs).
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// Print only errors on stderr: no progress, notes or waiver warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Attach KEY=VALUE to each image's report, in every format (repeatable): build id,
    /// region, pipeline. KEY is letters, digits, `_`, `.` and `-`; each KEY once.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Record the SHA-256 of each image file (one per disk of `a.img+b.img`) in the
    /// report, as `sha256sum` computes it; each file is read once more, whole.
    #[arg(long)]
    pub image_digest: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, severity, check kind, title.
    List {
        /// `table` for a terminal, `json` for programs, `markdown` for docs/rules.md.
        #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Show everything about a rule: why it matters, how to fix it, what it checks (for
    /// credential rules, every kind of secret it finds).
    Explain {
        /// The rule's id, as `rules list` shows it (e.g. `sshd.permit-root-login`), or an id
        /// glob (`'creds.*'`) for every matching rule.
        id: String,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// List every kind of secret the credential rules find: rule, kind, provider, shape,
    /// how it is checked, how to revoke it.
    Detectors {
        /// `table` for a terminal, `json` for programs, `markdown` for docs/secrets.md.
        #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Validate rule pack files (problems are reported as FILE:LINE:COLUMN) and run every
    /// credential detector's examples and counterexamples.
    Check {
        /// Rule pack files, or directories whose *.yaml files are checked.
        #[arg(required = true, value_name = "FILE|DIR")]
        files: Vec<PathBuf>,
    },
}

/// Renderings of a scan report: `report::Format`, named and explained for `--help`.
pub use crate::report::Format as ReportFormat;

impl ValueEnum for ReportFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Self::Table,
            Self::Json,
            Self::Jsonl,
            Self::Markdown,
            Self::Sarif,
            Self::Junit,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match self {
            Self::Table => ("table", "Rules and findings for a terminal"),
            Self::Json => ("json", "The JSON contract (docs/json-schema.md)"),
            Self::Jsonl => ("jsonl", "One JSON object per finding, for log pipelines"),
            Self::Markdown => (
                "markdown",
                "A summary and the failing findings, for a pull-request comment or job summary",
            ),
            Self::Sarif => (
                "sarif",
                "SARIF 2.1.0, for GitHub code scanning and other SARIF viewers",
            ),
            Self::Junit => (
                "junit",
                "JUnit XML: a test suite per image, a test case per rule (GitLab, Jenkins, Azure)",
            ),
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}

/// A `--format` value: a rendering, for standard output or (`FORMAT=FILE`) for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatChoice {
    pub format: ReportFormat,
    pub file: Option<PathBuf>,
}

/// Parses `FORMAT` or `FORMAT=FILE`, and lists the formats in `--help` as clap does for
/// plain value enums.
#[derive(Debug, Clone, Copy)]
pub struct FormatChoiceParser;

impl clap::builder::TypedValueParser for FormatChoiceParser {
    type Value = FormatChoice;

    fn parse_ref(
        &self,
        _command: &clap::Command,
        _argument: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<FormatChoice, clap::Error> {
        let invalid =
            |message: String| clap::Error::raw(clap::error::ErrorKind::InvalidValue, message);
        let text = value
            .to_str()
            .ok_or_else(|| invalid("--format: not valid UTF-8\n".to_string()))?;
        let (name, file) = match text.split_once('=') {
            Some((_, "")) => return Err(invalid(format!("--format {text}: no file after `=`\n"))),
            Some((name, file)) => (name, Some(PathBuf::from(file))),
            None => (text, None),
        };
        let format = ReportFormat::from_str(name, true).map_err(|_| {
            let known: Vec<String> = ReportFormat::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|v| v.get_name().to_string())
                .collect();
            invalid(format!(
                "--format {text}: unknown format `{name}` (one of {})\n",
                known.join(", ")
            ))
        })?;
        Ok(FormatChoice { format, file })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ReportFormat::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// A table for a terminal.
    Table,
    /// Every field of every rule, as JSON.
    Json,
    /// The rule reference (docs/rules.md).
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    /// A table for a terminal.
    Table,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One JSON object per line.
    Jsonl,
    /// A table for a terminal.
    Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
}
