//! Arbitrary bytes as a qcow2 image held in memory: header, extensions, snapshot table,
//! L1/L2 tables, standard, zero, compressed (deflate, zstd) and extended-L2 clusters.
//! Backing files cannot be named from memory and are refused.
//!
//! Seeds (`corpus/qcow2/`) are small qemu-img conversions of a 256 KiB raw disk holding
//! text, random bytes and zero gaps: 512-byte clusters, deflate and zstd compression with
//! 4 KiB clusters, extended L2 with 16 KiB clusters (converted with `-S 512`, so
//! subclusters are partly allocated), version 2, and an internal snapshot.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::image::qcow2::exercise(data);
});
