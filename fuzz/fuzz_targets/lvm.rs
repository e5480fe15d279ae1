//! Arbitrary bytes as one LVM2 physical volume and as a metadata text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::exercise_lvm(data);
});
