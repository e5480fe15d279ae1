//! Criterion benchmarks: reading each container's whole virtual disk through amiscan, with
//! one and two worker threads. Build the inputs with `benches/make-container-images.sh`;
//! `benches/compare-containers.sh` times `qemu-img convert -O raw` on the same files.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;

use amiscan::image::open_image;

const CHUNK: u64 = 1 << 20;

fn images() -> Vec<PathBuf> {
    let dir = Path::new("target/bench-images/containers");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Reads every byte of the virtual disk in 1 MiB chunks spread over the pool's threads.
fn read_all(path: &Path) -> u64 {
    let opened = open_image(path).unwrap_or_else(|e| panic!("{e}"));
    let len = opened.disk.len();
    (0..len.div_ceil(CHUNK))
        .into_par_iter()
        .map_init(
            || vec![0u8; CHUNK as usize],
            |buf, index| {
                let start = index * CHUNK;
                let n = (len - start).min(CHUNK) as usize;
                let slice = buf.get_mut(..n).unwrap_or_else(|| panic!("chunk"));
                opened
                    .disk
                    .read_exact_at(start, slice)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                u64::from(slice.iter().fold(0u8, |acc, b| acc ^ b))
            },
        )
        .sum()
}

fn bench_containers(c: &mut Criterion) {
    let images = images();
    if images.is_empty() {
        eprintln!("no container images: run benches/make-container-images.sh first");
        return;
    }
    let mut group = c.benchmark_group("read-virtual-disk");
    group.sample_size(10);
    for path in &images {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(opened) = open_image(path) else {
            eprintln!("{name}: not readable, skipped");
            continue;
        };
        group.throughput(Throughput::Bytes(opened.disk.len()));
        for threads in [1usize, 2] {
            let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(threads).build() else {
                continue;
            };
            group.bench_function(format!("{name}/{threads}-threads"), |b| {
                b.iter(|| pool.install(|| read_all(path)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_containers);
criterion_main!(benches);
