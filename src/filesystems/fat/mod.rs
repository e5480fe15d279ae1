//! FAT12, FAT16 and FAT32 (the EFI system partition), read-only.

use std::sync::Arc;

use super::{DirEntry, FileReader, Filesystem, FsError, Metadata, NodeId};
use crate::image::BlockSource;

/// A FAT filesystem.
#[derive(Debug)]
pub struct FatFs {
    _source: Arc<dyn BlockSource>,
}

impl FatFs {
    pub fn open(source: Arc<dyn BlockSource>) -> Result<Self, FsError> {
        let _ = source;
        Err(FsError::Unsupported {
            feature: "vfat (reader not written yet)".into(),
        })
    }
}

impl Filesystem for FatFs {
    fn type_name(&self) -> &'static str {
        "vfat"
    }
    fn root(&self) -> NodeId {
        0
    }
    fn metadata(&self, _node: NodeId) -> Result<Metadata, FsError> {
        Err(FsError::NotAFile)
    }
    fn read_dir(&self, _dir: NodeId) -> Result<Vec<DirEntry>, FsError> {
        Err(FsError::NotADirectory)
    }
    fn read_link(&self, _node: NodeId) -> Result<Vec<u8>, FsError> {
        Err(FsError::NotASymlink)
    }
    fn open(&self, _node: NodeId) -> Result<FileReader<'_>, FsError> {
        Err(FsError::NotAFile)
    }
}
