//! amiscan: an offline, read-only auditor for machine images.
//!
//! Data flows one way: `image` (block sources) → `volumes` (partition tables, volume
//! identification) → `filesystems` (ext2/3/4, vfat) → `guest` (the assembled mount tree)
//! → `walk` (parallel inventory) → `rules` (findings) → `gate` (waivers, baseline, verdict)
//! → `report` (renderings) → `commands` (what the user asked for).

pub mod bytes;
pub mod checksums;
pub mod cli;
pub mod commands;
pub mod crc32c;
pub mod date;
pub mod escapes;
pub mod facts;
pub mod filesystems;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;
pub mod gate;
pub mod guest;
pub mod image;
pub mod names;
pub mod progress;
pub mod report;
pub mod rules;
pub mod scan;
pub mod secrets;
pub mod volumes;
pub mod walk;
