//! Arbitrary bytes as guest configuration files (split at `\0\0`): sshd_config and
//! drop-ins, passwd, shadow, inetd, xinetd, dpkg status, apk db, systemd presets — and the
//! whole input as a YAML rule pack.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::exercise_configs(data);
});
