//! Command-line arguments (clap), resolved into the options each command takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Offline, read-only auditor for machine images.
///
/// amiscan opens a disk image (raw, or a raw EBS snapshot dump) without mounting it,
/// without root and without booting it, finds its partitions and filesystems, assembles
/// the guest's file tree from its /etc/fstab, and lets you inspect it.
///
/// Exit codes: 0 success, 2 usage error or unreadable image, 3 partly read (the output
/// says what was skipped).
#[derive(Debug, Parser)]
#[command(name = "amiscan", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe the image: container, partitions, filesystems, mount points and the OS.
    Inspect {
        /// The disk image to read (opened read-only).
        image: PathBuf,
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
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
        #[arg(long, value_enum, default_value_t = ListFormat::Jsonl)]
        format: ListFormat,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Jsonl,
    Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashAlgorithm {
    Sha256,
}
