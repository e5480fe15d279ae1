//! Arbitrary bytes as a VHD file: footer, dynamic header, BAT, sector bitmaps; then the
//! whole virtual disk is read in 64 KiB chunks (at most 64 MiB).
#![no_main]

use std::sync::Arc;

use amiscan::image::{BlockSource, MemoryImage};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let file: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(data.to_vec()));
    if let Ok(opened) = amiscan::image::vhd::open_source(file, "fuzz.vhd") {
        amiscan::fuzzing::read_whole_disk(opened.disk.as_ref());
    }
});
