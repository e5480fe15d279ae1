//! One entry point that drives every parser from arbitrary bytes: used by the cargo-fuzz
//! targets in fuzz/ and by the stable-toolchain mutation and corpus-replay tests.
//!
//! It must return for every input: any panic or hang it exposes is a bug in a parser.

use std::sync::Arc;

use crate::filesystems::{ext4::Ext4Fs, fat::FatFs, Filesystem};
use crate::guest;
use crate::image::{BlockSource, ContainerFormat, MemoryImage, OpenedImage};
use crate::volumes;
use crate::walk::{walk, WalkOptions};

/// Hashing stays on, bounded so a crafted multi-terabyte sparse file cannot stall a run.
const FUZZ_WALK: WalkOptions = WalkOptions {
    sha256_up_to: Some(64 << 20),
};

/// Treats `bytes` as a whole disk: partition tables, volume probes, filesystems, the
/// guest tree and a hashing walk.
pub fn exercise_disk(bytes: &[u8]) -> usize {
    let disk: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes.to_vec()));
    let Ok(layout) = volumes::discover(&disk) else {
        return 0;
    };
    let image = OpenedImage {
        format: ContainerFormat::Raw,
        disk,
        allocated_size: None,
        info: Default::default(),
    };
    let guest = guest::assemble(image, "fuzz", layout);
    let _ = guest.tree.resolve(b"/etc/../etc/./os-release", true);
    walk(&guest.tree, FUZZ_WALK).entries.len()
}

/// Treats `bytes` as one filesystem volume, for each reader in turn.
pub fn exercise_filesystem(bytes: &[u8]) -> usize {
    let source: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes.to_vec()));
    let mut found = 0;
    if let Ok(fs) = Ext4Fs::open(Arc::clone(&source)) {
        found += walk_one(Arc::new(fs));
    }
    if let Ok(fs) = FatFs::open(source) {
        found += walk_one(Arc::new(fs));
    }
    found
}

fn walk_one(fs: Arc<dyn Filesystem>) -> usize {
    let tree = guest::Tree::single(fs, 0, 0);
    walk(&tree, FUZZ_WALK).entries.len()
}
