//! Arbitrary bytes as a VirtualBox VDI file: header, block map; then the whole virtual
//! disk is read in 64 KiB chunks (at most 64 MiB).
#![no_main]

use std::sync::Arc;

use amiscan::image::{BlockSource, MemoryImage};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let file: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(data.to_vec()));
    if let Ok(opened) = amiscan::image::vdi::open_source(file, "fuzz.vdi") {
        read_disk(opened.disk.as_ref());
    }
});

fn read_disk(disk: &dyn BlockSource) {
    let end = disk.len().min(64 << 20);
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        let _ = disk.read_exact_at(at, &mut buf[..n]);
        at += n as u64;
    }
}
