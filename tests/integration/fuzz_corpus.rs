//! Hostile-input tests on the stable toolchain: replays the committed fuzz corpus and
//! drives every parser with seeded mutations (byte flips, truncations) of real images.
//! Each input must return within a deadline and never panic.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::util;

use util::Rng;

use amiscan::fuzzing::{
    exercise_configs, exercise_disk, exercise_ext4_journal, exercise_filesystem, exercise_lvm,
    exercise_xfs,
};

/// Generous for a debug build on a loaded 2-core machine; a hang runs forever.
const DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut inputs: Vec<_> = std::fs::read_dir(repo().join("fuzz/corpus").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

/// Runs `f` on its own thread so a panic is reported with its input, and a hang fails
/// after the deadline instead of stalling the suite.
fn must_return(what: &str, bytes: Vec<u8>, f: fn(&[u8]) -> usize) {
    let (done, wait) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| f(&bytes));
            let _ = done.send(result.is_ok());
        })
        .unwrap();
    match wait.recv_timeout(DEADLINE) {
        Ok(true) => {
            handle.join().unwrap();
        }
        Ok(false) => panic!("{what}: a parser panicked"),
        Err(_) => panic!("{what}: did not return within {DEADLINE:?} (hang?)"),
    }
}

/// The whole images made by `fuzz/make-seeds.sh`; inputs the fuzzer found (`found-*`)
/// are mostly damaged and only replayed.
fn seeds(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    corpus(dir)
        .into_iter()
        .filter(|(path, _)| {
            !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("found-"))
        })
        .collect()
}

/// Flips bytes where the metadata lives: the first 64 KiB of the input and the first
/// 64 KiB after each 32 KiB boundary that starts a partition in our seeds.
fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.below(4) {
        0 => {
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
        }
        _ => {
            let flips = 1 + rng.below(16);
            for _ in 0..flips {
                let region = rng.below(bytes.len() / 32768 + 1) * 32768;
                let at = (region + rng.below(65536)).min(bytes.len().saturating_sub(1));
                if let Some(b) = bytes.get_mut(at) {
                    *b = match rng.below(3) {
                        0 => 0,
                        1 => 0xff,
                        _ => rng.next() as u8,
                    };
                }
            }
        }
    }
    bytes
}

#[test]
fn committed_disk_corpus_replays() {
    let inputs = corpus("disk");
    assert!(
        inputs.len() >= 3,
        "seed corpus missing: run fuzz/make-seeds.sh"
    );
    for (path, bytes) in inputs {
        must_return(&path.display().to_string(), bytes, exercise_disk);
    }
}

#[test]
fn committed_filesystem_corpus_replays() {
    let inputs = corpus("filesystem");
    assert!(
        inputs.len() >= 4,
        "seed corpus missing: run fuzz/make-seeds.sh"
    );
    for (path, bytes) in inputs {
        must_return(&path.display().to_string(), bytes, exercise_filesystem);
    }
}

/// The seeds are real filesystems: each reader must find their files, or the mutation
/// tests below would only be exercising the rejection of garbage.
#[test]
fn seeds_are_read_not_rejected() {
    for (path, bytes) in seeds("filesystem") {
        assert!(
            exercise_filesystem(&bytes) > 3,
            "{}: the reader found no files in a valid seed",
            path.display()
        );
    }
    for (path, bytes) in seeds("disk") {
        assert!(
            exercise_disk(&bytes) > 3,
            "{}: no files found in a valid seed disk",
            path.display()
        );
    }
}

fn mutation_run(dir: &str, f: fn(&[u8]) -> usize, rounds: usize) {
    for (path, original) in seeds(dir) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ original.len() as u64);
        for round in 0..rounds {
            let mutated = mutate(&original, &mut rng);
            let what = format!("{} mutation round {round}", Path::new(&path).display());
            must_return(&what, mutated, f);
        }
    }
}

#[test]
fn mutated_filesystems_never_panic_or_hang() {
    mutation_run("filesystem", exercise_filesystem, 150);
}

/// XFS volumes in the sparse encoding of `exercise_xfs`: the seeds are read (every file
/// found), the committed corpus replays, and seeded mutations of the sectors return.
#[test]
fn xfs_corpus_replays_and_mutations_return() {
    let inputs = corpus("xfs");
    assert!(
        inputs.len() >= 3,
        "xfs seed corpus missing: run fuzz/make-seeds.sh"
    );
    for (path, bytes) in &inputs {
        must_return(&path.display().to_string(), bytes.clone(), exercise_xfs);
    }
    for (path, bytes) in seeds("xfs") {
        assert!(
            exercise_xfs(&bytes) > 40,
            "{}: the reader found no files in a valid seed",
            path.display()
        );
    }
    mutation_run("xfs", exercise_xfs, 150);
}

/// Decodes the sparse encoding of `exercise_xfs` and `exercise_ext4_journal` into a
/// whole volume.
fn unsparse(bytes: &[u8]) -> Vec<u8> {
    let sectors = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let mut volume = vec![0u8; sectors * 512];
    for record in bytes[4..].chunks(516) {
        let sector = u32::from_le_bytes(record[..4].try_into().unwrap()) as usize;
        volume[sector * 512..][..record.len() - 4].copy_from_slice(&record[4..]);
    }
    volume
}

/// ext4 volumes whose journal still holds transactions: the corpus replays, seeded
/// mutations return, and each seed reads as e2fsck recovers it (the journal replaced a
/// block of /etc/os-release).
#[test]
fn ext4_journal_corpus_replays_and_seeds_read_as_e2fsck_recovers() {
    let inputs = corpus("ext4_journal");
    assert!(
        inputs.len() >= 2,
        "ext4_journal seed corpus missing: run fuzz/make-seeds.sh"
    );
    for (path, bytes) in &inputs {
        must_return(
            &path.display().to_string(),
            bytes.clone(),
            exercise_ext4_journal,
        );
    }
    let dir = util::scratch_dir("fuzz_corpus", "ext4_journal");
    for (path, bytes) in seeds("ext4_journal") {
        assert!(
            exercise_ext4_journal(&bytes) >= 4,
            "{}: the reader found no files in a valid seed",
            path.display()
        );
        let image = dir.join(path.file_name().unwrap());
        std::fs::write(&image, unsparse(&bytes)).unwrap();
        let run = util::amiscan([
            "cat".as_ref(),
            image.as_os_str(),
            "--volume".as_ref(),
            "disk".as_ref(),
            "/etc/os-release".as_ref(),
        ]);
        let read = run.expect_code(0).stdout.clone();
        let recovered = dir.join("recovered");
        std::fs::copy(&image, &recovered).unwrap();
        let _ = crate::util::tool_command("e2fsck")
            .args(["-fy".as_ref(), recovered.as_os_str()])
            .output()
            .unwrap();
        let checker = util::tool(
            "debugfs",
            &["-R", "cat /etc/os-release", recovered.to_str().unwrap()],
        );
        assert!(
            read.starts_with(b"ID=fedora"),
            "{}: journal not replayed",
            path.display()
        );
        assert_eq!(read, checker.as_bytes(), "{}", path.display());
    }
    mutation_run("ext4_journal", exercise_ext4_journal, 150);
}

/// LVM2 physical volumes and metadata texts made by lvm2: the seeds are read (their LVs
/// found), the corpus replays, and seeded mutations return.
#[test]
fn lvm_corpus_replays_and_mutations_return() {
    let inputs = corpus("lvm");
    assert!(
        inputs.len() >= 3,
        "lvm seed corpus missing: run fuzz/make-seeds.sh"
    );
    for (path, bytes) in &inputs {
        must_return(&path.display().to_string(), bytes.clone(), exercise_lvm);
    }
    for (path, bytes) in seeds("lvm") {
        assert!(
            exercise_lvm(&bytes) >= 2,
            "{}: no logical volume found in a valid seed",
            path.display()
        );
    }
    mutation_run("lvm", exercise_lvm, 300);
}

/// A crafted v4 volume whose inline directories each list the next one 18 times, five
/// deep (found by reading the walk, not by the fuzzer): walked once per path it would be
/// 18^5 listings; each directory must be listed once.
#[test]
fn directories_with_many_parents_are_listed_once() {
    let dag = corpus("xfs")
        .into_iter()
        .find(|(path, _)| path.ends_with("found-632b27fa6b4e850e"))
        .map(|(_, bytes)| bytes)
        .unwrap();
    let started = std::time::Instant::now();
    let nodes = exercise_xfs(&dag);
    assert!(
        nodes < 200,
        "{nodes} nodes: directories were walked once per path"
    );
    assert!(started.elapsed() < DEADLINE);
}

#[test]
fn mutated_disks_never_panic_or_hang() {
    mutation_run("disk", exercise_disk, 100);
}

#[test]
fn mutated_sample_image_never_panics_or_hangs() {
    let original = std::fs::read(repo().join("testdata/sample.img")).unwrap();
    let mut rng = Rng(20_261_122);
    for round in 0..60 {
        let mutated = mutate(&original, &mut rng);
        must_return(&format!("sample.img round {round}"), mutated, exercise_disk);
    }
}

/// Guest configuration files and rule packs: the committed corpus, each seed's facts
/// really read (not rejected), and seeded mutations of every seed.
#[test]
fn configs_corpus_replays_and_mutations_return() {
    let inputs = corpus("configs");
    assert!(inputs.len() >= 10, "configs seed corpus missing");
    for (path, bytes) in &inputs {
        must_return(&path.display().to_string(), bytes.clone(), exercise_configs);
    }
    for (path, bytes) in seeds("configs").into_iter().filter(|(p, _)| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-leaky"))
    }) {
        assert!(
            exercise_configs(&bytes) > 10,
            "{}: the fact readers found nothing in a valid seed",
            path.display()
        );
    }
    mutation_run("configs", exercise_configs, 40);
}

/// The secret scanner: its committed corpus (seeds and compressed variants) replays, and
/// seeded mutations of each seed return.
#[test]
fn secrets_corpus_replays_and_mutations_return() {
    let inputs = corpus("secrets");
    assert!(inputs.len() >= 3, "secrets seed corpus missing");
    for (path, bytes) in &inputs {
        must_return(
            &path.display().to_string(),
            bytes.clone(),
            amiscan::secrets::exercise,
        );
    }
    mutation_run("secrets", amiscan::secrets::exercise, 40);
}
