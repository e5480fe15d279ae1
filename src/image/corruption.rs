//! What kind of damage a corrupt on-disk structure shows. Shared by every layer that reads
//! untrusted bytes (containers, partition tables, filesystems), so that callers and tests
//! match one enum instead of an error's text.

/// The kind of corruption an error reports; the message's text says the same in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorruptKind {
    /// A stored checksum (CRC, one's-complement sum) does not match the bytes it covers.
    Checksum,
    /// A magic number, cookie or signature is missing: the bytes are not the structure
    /// they should be.
    Magic,
    /// An offset, size, count or index points outside what holds it (the file, the disk,
    /// the table, the block).
    OutOfRange,
    /// The bytes end before the structure does: the file or region is too short for it.
    Truncated,
    /// The structure's bytes could not be read at all.
    Unreadable,
    /// A chain of references comes back to where it has been.
    Loop,
    /// A size or count exceeds a bound this reader sets, or does not fit in memory.
    TooLarge,
    /// A field holds a value the format does not allow, or one another field contradicts.
    Invalid,
}
