//! Benchmarks of the secret scanner alone, and the tree-walking helper that
//! benches/compare-secrets.sh times.
//!
//! `cargo bench --bench secrets` (criterion): scanning an in-memory corpus with the sample
//! detectors, against copying the same bytes through the same chunked reads. The corpus is
//! the text files of target/bench-images/secrets-tree/ (benches/make-secrets-image.sh), up
//! to 64 MiB, or generated log-like text when the tree is missing.
//!
//! `secrets-BINARY tree scan|read DIR [THREADS]`: walks DIR (no symlinks followed), and
//! scans (or only reads) every regular file on THREADS rayon threads; prints files, bytes,
//! hits per detector and the time on stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use rayon::prelude::*;

use amiscan::secrets::{sample_detectors, Limits, Scanner};

const TREE: &str = "target/bench-images/secrets-tree";
/// The per-file cap both modes use.
const MAX_BYTES: u64 = 64 << 20;
const CHUNK: usize = 256 << 10;

fn files_under(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((entry.path(), size));
            }
        }
    }
    out.sort();
    out
}

/// Text files of the tree (no NUL in the first 8 KiB), up to `budget` bytes in all.
fn text_corpus(budget: usize) -> Vec<Vec<u8>> {
    let root = Path::new(TREE);
    let mut corpus = Vec::new();
    let mut total = 0;
    if root.is_dir() {
        for (path, size) in files_under(root) {
            if size == 0 || size > 4 << 20 {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if bytes.iter().take(8192).any(|&b| b == 0) || bytes.starts_with(&[0x1f, 0x8b]) {
                continue;
            }
            total += bytes.len();
            corpus.push(bytes);
            if total >= budget {
                break;
            }
        }
    }
    if corpus.is_empty() {
        let line = b"Jan  1 00:00:00 host sshd[1234]: Accepted publickey for admin from 10.0.0.1 port 52144 ssh2: ED25519 SHA256:abcdefghijklmnop\n";
        let file: Vec<u8> = line.iter().copied().cycle().take(256 << 10).collect();
        corpus = vec![file; budget / (256 << 10)];
    }
    corpus
}

/// Reads `reader` to the end (or the cap) in 256 KiB chunks: the no-matching baseline.
fn read_only(reader: &mut dyn Read, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    while total < MAX_BYTES {
        match reader.read(buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    total
}

fn bench_engine(c: &mut Criterion) {
    let corpus = text_corpus(64 << 20);
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let scanner = match Scanner::new(&sample_detectors()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let limits = Limits {
        max_bytes: MAX_BYTES,
        decompress: true,
    };
    let mut group = c.benchmark_group(format!("secrets-text-{}-files", corpus.len()));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("scan/all-detectors", |b| {
        b.iter(|| {
            let mut hits = 0;
            for file in &corpus {
                let mut reader = file.as_slice();
                if let Ok(scan) = scanner.scan(&mut reader, &limits) {
                    hits += scan.hits.len();
                }
            }
            hits
        })
    });
    let mut buf = vec![0u8; CHUNK];
    group.bench_function("read/plain", |b| {
        b.iter(|| {
            let mut total = 0;
            for file in &corpus {
                let mut reader = file.as_slice();
                total += read_only(&mut reader, &mut buf);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench_engine);

/// The `tree` helper: scan or read every file of a directory in parallel.
fn tree(mode: &str, root: &Path, threads: Option<usize>) -> Result<(), String> {
    if let Some(threads) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let files = files_under(root);
    let scanner = Scanner::new(&sample_detectors()).map_err(|e| e.to_string())?;
    let names: Vec<String> = sample_detectors().into_iter().map(|d| d.name).collect();
    let limits = Limits {
        max_bytes: MAX_BYTES,
        decompress: true,
    };
    let stats: [AtomicU64; 8] = Default::default();
    let [bytes, binary, compressed, truncated, errors, allowlisted, dropped, _] = &stats;
    let per_detector: Vec<AtomicU64> = names.iter().map(|_| AtomicU64::new(0)).collect();
    let scan_mode = match mode {
        "scan" => true,
        "read" => false,
        other => return Err(format!("unknown mode {other}: scan or read")),
    };
    files.par_iter().for_each_init(
        || vec![0u8; CHUNK],
        |buf, (path, _)| {
            let Ok(mut file) = std::fs::File::open(path) else {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if !scan_mode {
                bytes.fetch_add(read_only(&mut file, buf), Ordering::Relaxed);
                return;
            }
            match scanner.scan(&mut file, &limits) {
                Ok(scan) => {
                    bytes.fetch_add(scan.bytes, Ordering::Relaxed);
                    binary.fetch_add(u64::from(scan.binary), Ordering::Relaxed);
                    compressed.fetch_add(u64::from(scan.compressed.is_some()), Ordering::Relaxed);
                    truncated.fetch_add(u64::from(scan.truncated), Ordering::Relaxed);
                    allowlisted.fetch_add(scan.allowlisted.len() as u64, Ordering::Relaxed);
                    dropped.fetch_add(scan.hits_dropped, Ordering::Relaxed);
                    for hit in &scan.hits {
                        if let Some(count) = per_detector.get(hit.detector) {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        },
    );
    let took = started.elapsed();
    let on_disk: u64 = files.iter().map(|(_, size)| size).sum();
    eprintln!(
        "{mode}: {} files, {on_disk} bytes on disk, {} content bytes read, {:.3} s, {:.0} MB/s of files",
        files.len(),
        bytes.load(Ordering::Relaxed),
        took.as_secs_f64(),
        on_disk as f64 / took.as_secs_f64() / 1e6
    );
    if scan_mode {
        eprintln!(
            "  binary {}, decompressed {}, truncated {}, errors {}, allowlisted {}, dropped {}",
            binary.load(Ordering::Relaxed),
            compressed.load(Ordering::Relaxed),
            truncated.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            allowlisted.load(Ordering::Relaxed),
            dropped.load(Ordering::Relaxed)
        );
        for (name, count) in names.iter().zip(&per_detector) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                eprintln!("  {count:6} {name}");
            }
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("tree") {
        let mode = args.get(1).map(String::as_str).unwrap_or("scan");
        let root = args
            .get(2)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(TREE));
        let threads = args.get(3).and_then(|t| t.parse().ok());
        if let Err(e) = tree(mode, &root, threads) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
