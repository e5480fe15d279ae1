//! What the readers' tests share: scratch directories and the filesystem tools that live
//! in sbin, which a normal user's PATH may lack. Compiled with the `test-support` feature,
//! for the readers' tests the integration binary runs.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory under the system temp dir, removed on drop.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory named after the reader (`family`) and the test (`tag`).
    pub(crate) fn new(family: &str, tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("amiscan-{family}-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The path of a tool from /usr/sbin, /sbin, /usr/bin or /bin, else its bare name.
pub(crate) fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
