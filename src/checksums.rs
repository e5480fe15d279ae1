//! Whether on-disk checksums are enforced: the one switch every reader of a checksummed
//! structure (partition tables, containers, filesystems, journals) consults.
//!
//! Verification is the default and the only mode a gate should use. `Ignore` exists for
//! forensic reading of a damaged image: a mismatch is then counted, not fatal, and the
//! scan still reports itself incomplete, because what it read was not verified.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a reader does when a stored checksum does not match the bytes it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// A mismatch is corruption: the structure is refused with an error naming it.
    #[default]
    Verify,
    /// A mismatch is counted and the structure is used anyway (`--ignore-checksums`).
    Ignore,
}

/// A reader's checksum policy together with the count of mismatches it let through.
#[derive(Debug, Default)]
pub struct ChecksumGuard {
    policy: ChecksumPolicy,
    ignored: AtomicU64,
}

impl ChecksumGuard {
    pub fn new(policy: ChecksumPolicy) -> Self {
        Self {
            policy,
            ignored: AtomicU64::new(0),
        }
    }

    pub fn policy(&self) -> ChecksumPolicy {
        self.policy
    }

    /// Decides on one comparison: `Ok` when the checksum matches or mismatches are
    /// ignored (then counted), otherwise the error `mismatch` builds.
    pub fn check<E>(&self, matches: bool, mismatch: impl FnOnce() -> E) -> Result<(), E> {
        if matches {
            return Ok(());
        }
        match self.policy {
            ChecksumPolicy::Verify => Err(mismatch()),
            ChecksumPolicy::Ignore => {
                self.ignored.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// How many mismatches were let through so far.
    pub fn ignored(&self) -> u64 {
        self.ignored.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_refuses_and_ignore_counts() {
        let verify = ChecksumGuard::new(ChecksumPolicy::Verify);
        assert_eq!(verify.check(true, || "bad"), Ok(()));
        assert_eq!(verify.check(false, || "bad"), Err("bad"));
        assert_eq!(verify.ignored(), 0);

        let ignore = ChecksumGuard::new(ChecksumPolicy::Ignore);
        assert_eq!(ignore.check(false, || "bad"), Ok(()));
        assert_eq!(ignore.check(true, || "bad"), Ok(()));
        assert_eq!(ignore.ignored(), 1);
    }
}
