//! Arbitrary bytes as an rpm package database: as `rpmdb.sqlite` (SQLite header, table
//! b-trees, overflow chains, records, then rpm header blobs), as a Berkeley DB hash
//! `Packages` file (metadata, bucket chains, overflow items), and as one header blob.
//!
//! Seeds (`corpus/rpmdb/`): an `rpmdb.sqlite` written by rpm 4.18 holding one package
//! (`rpm --initdb`, `rpm -i --justdb`, then `VACUUM` with 512-byte pages to keep it small),
//! and a Berkeley DB hash file of the same header blob written by `db5.3_load` with
//! 512-byte pages.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::facts::rpmdb::exercise(data);
});
