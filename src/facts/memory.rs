//! [`GuestFiles`] over files held in memory: what fuzzing feeds the fact readers, so they
//! see crafted configuration without a filesystem image around it. Directories are
//! implied by the files' paths; there are no symlinks.

use std::collections::BTreeMap;

use super::{DirItem, FactError, GuestFiles};
use crate::filesystems::FileKind;

#[derive(Debug, Clone, Default)]
pub struct MemoryFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemoryFiles {
    pub fn add(&mut self, path: &str, content: &[u8]) {
        self.files.insert(path.to_string(), content.to_vec());
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.files.keys().any(|p| p.starts_with(&prefix))
    }
}

impl GuestFiles for MemoryFiles {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FactError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self.files.get(path).map(|bytes| {
            bytes
                .get(..limit.min(bytes.len()))
                .unwrap_or(bytes)
                .to_vec()
        }))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<DirItem>>, FactError> {
        if !self.is_dir(path) {
            return Ok(None);
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut items: BTreeMap<Vec<u8>, FileKind> = BTreeMap::new();
        for file in self.files.keys() {
            if let Some(rest) = file.strip_prefix(&prefix) {
                let (name, kind) = match rest.split_once('/') {
                    Some((dir, _)) => (dir, FileKind::Dir),
                    None => (rest, FileKind::File),
                };
                items.insert(name.as_bytes().to_vec(), kind);
            }
        }
        Ok(Some(
            items
                .into_iter()
                .map(|(name, kind)| DirItem { name, kind })
                .collect(),
        ))
    }

    fn read_link(&self, _path: &str) -> Result<Option<Vec<u8>>, FactError> {
        Ok(None)
    }

    fn kind(&self, path: &str) -> Result<Option<FileKind>, FactError> {
        Ok(if self.files.contains_key(path) {
            Some(FileKind::File)
        } else if self.is_dir(path) || path == "/" {
            Some(FileKind::Dir)
        } else {
            None
        })
    }
}
