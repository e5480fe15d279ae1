//! ext2, ext3 and ext4, read directly from the volume's bytes.

use std::sync::Arc;

use super::{DirEntry, FileReader, Filesystem, FsError, Metadata, NodeId};
use crate::image::BlockSource;

/// An ext2/3/4 filesystem.
#[derive(Debug)]
pub struct Ext4Fs {
    _source: Arc<dyn BlockSource>,
}

impl Ext4Fs {
    pub fn open(source: Arc<dyn BlockSource>) -> Result<Self, FsError> {
        let _ = source;
        Err(FsError::Unsupported {
            feature: "ext4 (reader not written yet)".into(),
        })
    }
}

impl Filesystem for Ext4Fs {
    fn type_name(&self) -> &'static str {
        "ext4"
    }
    fn root(&self) -> NodeId {
        2
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
