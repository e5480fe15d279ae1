//! Whether a file is shaped like a disk at all: the test that tells a text file, or a few
//! stray bytes, from a raw disk whose contents amiscan does not recognise.
//!
//! Owns only the shape (size and first bytes). The caller decides with it, and only after
//! every container, partition table and filesystem probe has come back empty: a raw disk
//! holding btrfs, NTFS or nothing but zeros is a disk, read as incomplete, never refused.

use std::fmt;

use super::BlockSource;

/// The sector every disk is made of; a disk is a whole number of them.
const SECTOR: u64 = 512;
/// How much of the start is read to tell text from a disk: more than any boot sector,
/// partition table or superblock area, all of which hold NUL bytes.
const TEXT_WINDOW: usize = 64 << 10;

/// Why bytes that nothing recognised cannot be a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDiskShape {
    /// Fewer bytes than one sector.
    SmallerThanSector { len: u64 },
    /// Not a whole number of sectors.
    PartialSector { len: u64 },
    /// The first bytes hold no NUL or other binary control byte and read as UTF-8 text.
    Text,
}

impl fmt::Display for NotDiskShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SmallerThanSector { len } => {
                write!(
                    f,
                    "it is {len} bytes, smaller than one {SECTOR}-byte sector"
                )
            }
            Self::PartialSector { len } => write!(
                f,
                "its {len} bytes are not a whole number of {SECTOR}-byte sectors"
            ),
            Self::Text => f.write_str("its first bytes are text"),
        }
    }
}

/// Why `source` cannot be a disk, judged by its shape alone; `None` when it may be one.
/// Text is named first, as the likeliest mistake (a file given in place of an image).
/// Reads at most `TEXT_WINDOW` bytes; a read that fails says nothing, so it is no reason.
pub fn not_disk_shaped(source: &dyn BlockSource) -> Option<NotDiskShape> {
    let len = source.len();
    let window = usize::try_from(len).map_or(TEXT_WINDOW, |len| len.min(TEXT_WINDOW));
    let mut head = vec![0u8; window];
    let cut = (window as u64) < len;
    if source.read_exact_at(0, &mut head).is_ok() && !head.is_empty() && is_text(&head, cut) {
        return Some(NotDiskShape::Text);
    }
    if len < SECTOR {
        return Some(NotDiskShape::SmallerThanSector { len });
    }
    if !len.is_multiple_of(SECTOR) {
        return Some(NotDiskShape::PartialSector { len });
    }
    None
}

/// No NUL byte, no control character a text file does not hold (tab, line ends, form
/// feed and the escape of coloured logs are allowed), and valid UTF-8; when `cut`, the
/// window may end inside a character.
fn is_text(bytes: &[u8], cut: bool) -> bool {
    let control = |b: &u8| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b);
    if bytes.iter().any(control) {
        return false;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        // `error_len() == None`: the bytes end in the middle of a character.
        Err(e) => cut && e.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MemoryImage;

    fn shape(bytes: Vec<u8>) -> Option<NotDiskShape> {
        not_disk_shaped(&MemoryImage::new(bytes))
    }

    #[test]
    fn short_and_ragged_files_are_not_disks() {
        assert_eq!(
            shape(vec![1, 2, 3]),
            Some(NotDiskShape::SmallerThanSector { len: 3 })
        );
        assert_eq!(shape(b"abc".to_vec()), Some(NotDiskShape::Text));
        assert_eq!(
            shape(vec![0; 1000]),
            Some(NotDiskShape::PartialSector { len: 1000 })
        );
    }

    #[test]
    fn text_is_not_a_disk_but_zeros_and_binary_may_be() {
        assert_eq!(shape(vec![b' '; 8192]), Some(NotDiskShape::Text));
        assert_eq!(
            shape("é".repeat(512).into_bytes()),
            Some(NotDiskShape::Text)
        );
        assert_eq!(shape(vec![0; 4096]), None);
        let mut one_nul = vec![b'a'; 4096];
        one_nul[4000] = 0;
        assert_eq!(shape(one_nul), None);
        // Invalid UTF-8 without a NUL is not text.
        assert_eq!(shape(vec![0xff; 4096]), None);
    }

    #[test]
    fn a_character_cut_at_the_window_is_still_text() {
        // Byte TEXT_WINDOW - 1 starts a two-byte character that the window cuts.
        let mut text = vec![b'a'; TEXT_WINDOW - 1];
        text.extend_from_slice("é".as_bytes());
        text.resize(TEXT_WINDOW + 512, b'a');
        assert_eq!(shape(text), Some(NotDiskShape::Text));
        // The same cut at the very end of the file is no character at all.
        let mut ragged = vec![b'a'; 1023];
        ragged.push(0xc3);
        assert_eq!(shape(ragged), None);
        let mut ragged = vec![0; 1023];
        ragged.push(b'a');
        assert_eq!(shape(ragged), None);
    }
}
