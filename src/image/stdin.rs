//! `-` as an image: standard input copied to a private temporary file first, because
//! every reader needs random access (partition tables at both ends of the disk,
//! superblocks, inode tables) and a pipe gives none. The copy is removed as soon as the
//! image is open; it is capped in size, and runs of zeros are skipped so that a raw
//! disk's unused space takes no room.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The image argument that means standard input.
pub const STDIN_ARGUMENT: &str = "-";
/// Largest image read from standard input unless `--stdin-max-size` says otherwise: more
/// than any root volume an AMI is built from, less than a full temporary directory.
pub const DEFAULT_STDIN_MAX: u64 = 64 << 30;
/// How many private directory names are tried before giving up (another process may hold
/// the same name).
const NAME_ATTEMPTS: u32 = 64;
/// Standard input is copied in pieces of this size; a piece of zeros becomes a hole.
const PIECE: usize = 1 << 20;

/// Why standard input could not be taken as an image.
#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    #[error(
        "standard input is a terminal; pipe an image into it (`cat disk.img | amiscan scan -`)"
    )]
    Terminal,
    #[error("standard input holds more than {limit} bytes (--stdin-max-size); save the image to a file and scan that")]
    TooLarge { limit: u64 },
    #[error("cannot copy standard input to {}: {source}", .place.display())]
    Io { place: PathBuf, source: io::Error },
}

/// Standard input as a file in a private directory; both are removed when dropped.
#[derive(Debug)]
pub struct Spool {
    directory: PathBuf,
    file: PathBuf,
}

impl Spool {
    /// The copy's path, to open as any image file is opened.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Nothing to tell the user if this fails: the directory's name says what it is.
        let _ = fs::remove_file(&self.file);
        let _ = fs::remove_dir(&self.directory);
    }
}

/// Copies standard input into a new private directory under the temporary directory
/// ($TMPDIR), refusing more than `limit` bytes. The directory is the copy's alone
/// (mode 0700), so a container's relative backing-file name finds nothing planted there.
pub fn spool(limit: u64) -> Result<Spool, StdinError> {
    use std::io::IsTerminal;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(StdinError::Terminal);
    }
    let temp = std::env::temp_dir();
    let directory = private_directory(&temp)?;
    let spool = Spool {
        file: directory.join("stdin.img"),
        directory,
    };
    let fail = |source| StdinError::Io {
        place: spool.file.clone(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&spool.file)
        .map_err(fail)?;
    copy_sparse(&mut stdin.lock(), &mut file, limit)?.map_err(fail)?;
    Ok(spool)
}

/// A new directory `amiscan-stdin-PID-N` in `temp`, readable by this user only.
fn private_directory(temp: &Path) -> Result<PathBuf, StdinError> {
    let pid = std::process::id();
    let mut last = None;
    for attempt in 0..NAME_ATTEMPTS {
        let path = temp.join(format!("amiscan-stdin-{pid}-{attempt}"));
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(source) => {
                return Err(StdinError::Io {
                    place: path,
                    source,
                })
            }
        }
    }
    Err(StdinError::Io {
        place: temp.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::other("no free directory name")),
    })
}

/// Copies `input` into `file`, at most `limit` bytes, leaving holes for pieces of zeros.
/// The outer error is the cap; the inner one an I/O failure.
fn copy_sparse(
    input: &mut dyn Read,
    file: &mut File,
    limit: u64,
) -> Result<io::Result<()>, StdinError> {
    let mut piece = vec![0u8; PIECE];
    let mut total: u64 = 0;
    loop {
        let got = match read_piece(input, &mut piece) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) => return Ok(Err(e)),
        };
        total = total.saturating_add(got as u64);
        if total > limit {
            return Err(StdinError::TooLarge { limit });
        }
        let bytes = piece.get(..got).unwrap_or_default();
        let written = if bytes.iter().all(|b| *b == 0) {
            file.seek(SeekFrom::Current(got as i64)).map(|_| ())
        } else {
            file.write_all(bytes)
        };
        if let Err(e) = written {
            return Ok(Err(e));
        }
    }
    // A trailing hole has no bytes written after it: the length says where the disk ends.
    // No sync: the copy is read back through the same page cache, then deleted.
    Ok(file.set_len(total))
}

/// Fills `piece` as far as `input` allows; fewer bytes only at the end of the input.
fn read_piece(input: &mut dyn Read, piece: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = piece.get_mut(filled..).filter(|r| !r.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(input: &[u8], limit: u64) -> Result<Vec<u8>, StdinError> {
        let dir = std::env::temp_dir();
        let directory = private_directory(&dir)?;
        let spool = Spool {
            file: directory.join("stdin.img"),
            directory,
        };
        let mut file = File::create(spool.path()).unwrap();
        copy_sparse(&mut &input[..], &mut file, limit)?.unwrap();
        Ok(fs::read(spool.path()).unwrap())
    }

    #[test]
    fn the_copy_is_exact_holes_included() {
        let mut disk = vec![0u8; 3 * PIECE + 7];
        disk[5] = 1;
        disk[2 * PIECE + 3] = 2;
        assert_eq!(copied(&disk, u64::MAX).unwrap(), disk);
        let zeros = vec![0u8; PIECE + 1];
        assert_eq!(copied(&zeros, u64::MAX).unwrap(), zeros);
        assert_eq!(copied(b"", 0).unwrap(), b"");
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        assert!(copied(&[1; 100], 100).is_ok());
        assert!(matches!(
            copied(&[1; 101], 100),
            Err(StdinError::TooLarge { limit: 100 })
        ));
    }
}
