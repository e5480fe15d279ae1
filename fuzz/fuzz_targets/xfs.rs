//! Arbitrary bytes as a sparse XFS volume (see `amiscan::fuzzing::exercise_xfs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::exercise_xfs(data);
});
