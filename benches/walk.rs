//! Criterion benchmarks of the inventory walk over the same 100 000-file tree on ext4 and
//! on XFS (`walk-100k` and `walk-100k-xfs`), with and
//! without a progress display's counters attached (`…+progress`: what `scan` pays for
//! showing progress; nothing is drawn).
//!
//! Build the image first: `benches/make-walk-image.sh` (or point AMISCAN_BENCH_IMAGE at
//! another image). Figures and how to compare them live in docs/performance.md.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};

use amiscan::guest::open as open_guest;
use amiscan::progress::Progress;
use amiscan::walk::{walk, WalkOptions, DEFAULT_HASH_LIMIT};

/// The benchmark images by group name; AMISCAN_BENCH_IMAGE replaces the ext4 one.
fn images() -> Vec<(&'static str, PathBuf)> {
    let ext4 = std::env::var_os("AMISCAN_BENCH_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-images/walk.img"));
    let xfs = PathBuf::from("target/bench-images/walk-xfs.img");
    [("walk-100k", ext4), ("walk-100k-xfs", xfs)]
        .into_iter()
        .filter(|(_, path)| {
            let found = path.exists();
            if !found {
                eprintln!(
                    "{} missing: run benches/make-walk-image.sh first",
                    path.display()
                );
            }
            found
        })
        .collect()
}

fn bench_walk(c: &mut Criterion) {
    for (group_name, path) in images() {
        bench_image(c, group_name, &path);
    }
}

fn bench_image(c: &mut Criterion, group_name: &str, path: &std::path::Path) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for threads in [1usize, 2] {
        let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool,
            Err(e) => {
                eprintln!("cannot build a {threads}-thread pool: {e}");
                return;
            }
        };
        for (name, sha256_up_to) in [("metadata", None), ("sha256", Some(DEFAULT_HASH_LIMIT))] {
            for with_progress in [false, true] {
                let suffix = if with_progress { "+progress" } else { "" };
                group.bench_function(format!("{name}{suffix}/{threads}-threads"), |b| {
                    b.iter(|| {
                        pool.install(|| {
                            let guest = open_guest(path).map_err(|e| e.to_string());
                            let guest = guest.unwrap_or_else(|e| panic!("{e}"));
                            let progress = Progress::new();
                            let options = WalkOptions {
                                sha256_up_to,
                                progress: with_progress.then_some(&progress),
                                max_entries: None,
                            };
                            let found = walk(&guest.tree, options);
                            (found.entries.len(), found.bytes_read, progress.files())
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_walk);
criterion_main!(benches);
