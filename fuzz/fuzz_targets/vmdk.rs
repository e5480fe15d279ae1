//! Arbitrary bytes as a VMDK held in memory: the sparse header ("KDMV", versions 1-3),
//! the footer of stream-optimized extents, the embedded or stand-alone text descriptor,
//! the grain directory and tables, zeroed-grain entries, grain markers and their zlib
//! data. The whole virtual disk is read in 64 KiB chunks (at most 64 MiB). Extent files
//! cannot be named from memory and are refused; ZERO and NOACCESS extents are read.
//!
//! Seeds (`corpus/vmdk/`, made by `testdata/build-vmdk.sh --seeds`) are VMDKs of a 1 MiB
//! raw disk holding text, random bytes and zero gaps: qemu-img streamOptimized and
//! monolithicSparse (zeroed grains), a VMware-style stream with its directory at the end
//! and a footer, a 4 KiB-grain sparse extent, and a descriptor of ZERO extents.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::image::vmdk::exercise(data);
});
