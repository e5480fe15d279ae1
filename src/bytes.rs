//! Fixed-width integer fields of on-disk structures, read by byte offset. A shared utility,
//! not a layer: every parser reads its fields through these.
//!
//! The `leN`/`beN` readers return 0 for a field past the end of the slice: parsers size
//! their buffers from the structure's known length before decoding, so that only happens
//! on a short read, and a missing byte must never panic.

/// The `N` bytes at `at`, or `None` when they run past the end.
pub fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub fn le16(bytes: &[u8], at: usize) -> u16 {
    array(bytes, at).map_or(0, u16::from_le_bytes)
}

pub fn le32(bytes: &[u8], at: usize) -> u32 {
    array(bytes, at).map_or(0, u32::from_le_bytes)
}

pub fn le64(bytes: &[u8], at: usize) -> u64 {
    array(bytes, at).map_or(0, u64::from_le_bytes)
}

pub fn be16(bytes: &[u8], at: usize) -> u16 {
    array(bytes, at).map_or(0, u16::from_be_bytes)
}

pub fn be32(bytes: &[u8], at: usize) -> u32 {
    array(bytes, at).map_or(0, u32::from_be_bytes)
}

pub fn be64(bytes: &[u8], at: usize) -> u64 {
    array(bytes, at).map_or(0, u64::from_be_bytes)
}

/// A GUID as Microsoft formats store it (GPT, VHDX, VDI: the first three fields
/// little-endian), in the lower-case 8-4-4-4-12 form blkid and sgdisk show.
pub fn mixed_endian_guid(bytes: &[u8; 16]) -> String {
    let tail: String = bytes
        .get(8..)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i == 2 {
                format!("-{b:02x}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect();
    format!(
        "{:08x}-{:04x}-{:04x}-{tail}",
        le32(bytes, 0),
        le16(bytes, 4),
        le16(bytes, 6)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_in_both_orders_and_zero_past_the_end() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(le16(&bytes, 0), 0x0201);
        assert_eq!(le32(&bytes, 4), 0x0807_0605);
        assert_eq!(be16(&bytes, 0), 0x0102);
        assert_eq!(be32(&bytes, 0), 0x0102_0304);
        assert_eq!(le64(&bytes, 0), 0x0807_0605_0403_0201);
        assert_eq!(be64(&bytes, 0), 0x0102_0304_0506_0708);
        assert_eq!(le32(&bytes, 5), 0);
        assert_eq!(le32(&bytes, usize::MAX), 0);
        assert_eq!(array::<2>(&bytes, 7), None);
    }
}
