//! A sparse ext4 volume whose journal still has transactions to replay.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::exercise_ext4_journal(data);
});
