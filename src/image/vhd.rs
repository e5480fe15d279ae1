//! vhd containers (not readable yet).

use std::path::Path;

use super::{ContainerError, Opened};

/// Opens a VHD image read-only; `footer_at` is where the detected footer copy lies.
pub fn open(path: &Path, footer_at: u64) -> Result<Opened, ContainerError> {
    let _ = footer_at;
    Err(ContainerError::Unsupported {
        path: path.display().to_string(),
        feature: "the vhd container".into(),
        detail: "not readable yet".into(),
    })
}
