//! Arbitrary bytes as a VHDX file: headers, region tables, metadata, BAT; then the
//! whole virtual disk is read in 64 KiB chunks (at most 64 MiB).
#![no_main]

use std::sync::Arc;

use amiscan::image::{BlockSource, MemoryImage};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let file: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(data.to_vec()));
    if let Ok(opened) = amiscan::image::vhdx::open_source(file, "fuzz.vhdx") {
        amiscan::fuzzing::read_whole_disk(opened.disk.as_ref());
    }
});
