//! Arbitrary bytes as a whole disk: partition tables, probes, filesystems, guest, walk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::exercise_disk(data);
});
