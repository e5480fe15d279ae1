//! The integration tests: one binary, one module per suite, so the library and its
//! dependencies are linked once rather than once per suite.
//!
//! The suites run as threads of one process: anything process-wide (the image builds in
//! `util`, the scans some suites cache in a `OnceLock`, scratch directories) is shared, so
//! each suite keeps its own names for what it writes. Run one suite with
//! `cargo test --test integration lvm::`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod util;

mod ci_formats;
mod cli;
mod corruption;
mod creds;
mod ext_journal;
mod fail_closed;
mod fat;
mod fuzz_corpus;
mod gate;
mod golden;
mod guest_paths;
mod images;
mod inputs;
mod json_schema;
mod lvm;
mod packages_facts;
mod progress;
mod qcow2;
mod readers;
mod remediation;
mod report_formats;
mod residue;
mod rule_packs;
mod sample;
mod scan_rules;
mod sealed_debian;
mod secrets_catalogue;
mod services_facts;
mod sshd_oracle;
mod table_sanity;
mod unallocated;
mod vdi;
mod vhd;
mod vmdk;
mod xfs;
