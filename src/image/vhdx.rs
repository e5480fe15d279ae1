//! vhdx containers (not readable yet).

use std::path::Path;

use super::{ContainerError, Opened};

/// Opens a vhdx image read-only.
pub fn open(path: &Path) -> Result<Opened, ContainerError> {
    Err(ContainerError::Unsupported {
        path: path.display().to_string(),
        feature: "the vhdx container".into(),
        detail: "not readable yet".into(),
    })
}
