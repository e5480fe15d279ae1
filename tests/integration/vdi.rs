//! VirtualBox VDI images made by `qemu-img convert -O vdi` (dynamic, and fixed with
//! `static=on`): the virtual disk amiscan reads equals the raw disk they were made from
//! byte for byte (and `qemu-img compare` agrees the two are the same disk), `files --hash
//! sha256` lists the same files with the same hashes, and damaged copies fail cleanly.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use amiscan::image::{open_image, vdi, BlockSource, ContainerFormat, MemoryImage};
use std::sync::Arc;

use crate::util::{amiscan, inspect_json, manifest_dir, Rng, Scratch};

fn no_images(name: &str) -> PathBuf {
    panic!("the vdi suite copies no built image ({name})")
}

fn run_tool(program: &str, args: &[&OsStr]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A 24 MiB raw disk holding an ext4 filesystem with some files, the last MiB never
/// written (so the dynamic VDI has unallocated blocks inside the disk).
fn raw_disk(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("etc/ssh")).unwrap();
    fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    fs::write(tree.join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
    let mut rng = Rng(0x5d1);
    let big: Vec<u8> = (0..3 << 20).map(|_| rng.next() as u8).collect();
    fs::write(tree.join("big.bin"), big).unwrap();
    let raw = dir.join("disk.raw");
    run_tool(
        "mke2fs",
        &[
            OsStr::new("-q"),
            OsStr::new("-F"),
            OsStr::new("-t"),
            OsStr::new("ext4"),
            OsStr::new("-d"),
            tree.as_os_str(),
            raw.as_os_str(),
            OsStr::new("24M"),
        ],
    );
    raw
}

fn convert(raw: &Path, out: &Path, options: &[&str]) {
    let mut args: Vec<&OsStr> = ["convert", "-q", "-f", "raw", "-O", "vdi"]
        .iter()
        .map(OsStr::new)
        .collect();
    for option in options {
        args.push(OsStr::new("-o"));
        args.push(OsStr::new(option));
    }
    args.push(raw.as_os_str());
    args.push(out.as_os_str());
    run_tool("qemu-img", &args);
}

fn read_whole(disk: &dyn BlockSource) -> Vec<u8> {
    let mut out = vec![0u8; disk.len() as usize];
    for (i, chunk) in out.chunks_mut(1 << 20).enumerate() {
        disk.read_exact_at(i as u64 * (1 << 20), chunk).unwrap();
    }
    out
}

#[test]
fn dynamic_and_static_vdi_read_like_the_raw_disk() {
    let scratch = Scratch::new("vdi", "round-trip", no_images);
    let raw = raw_disk(&scratch.dir);
    let raw_bytes = fs::read(&raw).unwrap();
    let listing = |image: &Path| {
        let run = amiscan([
            OsStr::new("files"),
            OsStr::new("--hash"),
            OsStr::new("sha256"),
            image.as_os_str(),
        ]);
        run.expect_code(0);
        run.stdout
    };
    let raw_listing = listing(&raw);
    assert!(String::from_utf8_lossy(&raw_listing).contains("big.bin"));
    for (name, options, subformat) in [
        ("dynamic.vdi", &[][..], "dynamic"),
        ("static.vdi", &["static=on"][..], "fixed"),
    ] {
        let image = scratch.dir.join(name);
        convert(&raw, &image, options);
        let compare = crate::util::tool_command("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "vdi"])
            .arg(&raw)
            .arg(&image)
            .status()
            .unwrap();
        assert!(
            compare.success(),
            "qemu-img compare: {name} differs from the raw disk"
        );

        let opened = open_image(&image).unwrap();
        assert_eq!(opened.format, ContainerFormat::Vdi);
        assert_eq!(opened.info.subformat.as_deref(), Some(subformat));
        assert!(
            read_whole(opened.disk.as_ref()) == raw_bytes,
            "{name}: bytes differ"
        );

        assert_eq!(listing(&image), raw_listing, "{name}: files --hash differs");
        let (run, report) = inspect_json(&image);
        run.expect_code(0);
        assert_eq!(report["image"]["format"], "vdi", "{report:#}");
        assert_eq!(report["image"]["virtual_size"], raw_bytes.len() as u64);
    }
    // The dynamic image stores only the blocks written.
    let dynamic = fs::metadata(scratch.dir.join("dynamic.vdi")).unwrap().len();
    let fixed = fs::metadata(scratch.dir.join("static.vdi")).unwrap().len();
    assert!(dynamic < fixed, "{dynamic} >= {fixed}");
}

/// A copy cut short, or with its block map pointing past the end, is refused when opened
/// (exit 2, naming the file and the map entry), never read as zeros.
#[test]
fn truncated_and_damaged_vdi_are_refused() {
    let scratch = Scratch::new("vdi", "damaged", no_images);
    let raw = raw_disk(&scratch.dir);
    let image = scratch.dir.join("disk.vdi");
    convert(&raw, &image, &[]);
    let bytes = fs::read(&image).unwrap();
    let cut = scratch.dir.join("cut.vdi");
    fs::write(&cut, &bytes[..bytes.len() - (1 << 20)]).unwrap();
    let run = amiscan([OsStr::new("inspect"), cut.as_os_str()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cut.vdi") && run.stderr.contains("VDI block map entry"),
        "{}",
        run.stderr
    );
    // A parent UUID: a differencing layer whose unwritten blocks are elsewhere.
    let mut child = bytes.clone();
    child[0x1B8] = 1;
    let path = scratch.dir.join("child.vdi");
    fs::write(&path, child).unwrap();
    let run = amiscan([OsStr::new("inspect"), path.as_os_str()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("parent UUID"), "{}", run.stderr);
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = manifest_dir().join("fuzz/corpus/vdi");
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Opens and reads a whole disk; the bytes read.
fn exercise(bytes: Vec<u8>) -> Option<u64> {
    let opened = vdi::open_source(Arc::new(MemoryImage::new(bytes)), "fuzz.vdi").ok()?;
    Some(amiscan::fuzzing::read_whole_disk(opened.disk.as_ref()))
}

/// The committed seeds (fuzz/make-seeds.sh) open and read, and seeded damage of each
/// returns without a panic.
#[test]
fn vdi_fuzz_corpus_replays() {
    let inputs = corpus();
    let seeds: Vec<_> = inputs
        .iter()
        .filter(|(n, _)| !n.starts_with("found-"))
        .collect();
    assert!(seeds.len() >= 3, "fuzz/corpus/vdi: seeds missing");
    for (name, bytes) in &inputs {
        let read = exercise(bytes.clone());
        if !name.starts_with("found-") {
            assert!(
                read.is_some_and(|r| r > 0),
                "{name}: a seed must open and read"
            );
        }
    }
    for (name, original) in seeds {
        let mut rng = Rng(0x0d1 ^ original.len() as u64);
        for round in 0..200 {
            let mut bytes = original.clone();
            if round % 5 == 4 {
                bytes.truncate(rng.below_u64(bytes.len() as u64) as usize);
            } else {
                for _ in 0..1 + rng.below_u64(6) {
                    // The header and the block map lie in the first 1 KiB.
                    let at = rng.below_u64(1024.min(bytes.len() as u64)) as usize;
                    bytes[at] = rng.next() as u8;
                }
            }
            let _ = (name, exercise(bytes));
        }
    }
}
