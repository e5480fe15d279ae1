//! Arbitrary bytes as one volume, for the ext2/3/4 and FAT readers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::exercise_filesystem(data);
});
