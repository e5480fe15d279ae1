//! CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of ext4's metadata
//! (metadata_csum) and journal (jbd2), of VHDX headers, region tables and metadata, and of
//! every XFS v5 metadata block. A shared utility, not a layer: the `crc32c` crate computes
//! it with the processor's CRC instructions where they exist (ext4 and XFS check every
//! inode they read).

/// Continues a CRC-32C over `data` from the raw register value `crc`, without the initial
/// and final inversions (as jbd2's `jbd2_chksum` chains it).
pub fn update(crc: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!crc, data)
}

/// The standard CRC-32C of `data` (initial and final inversion), as VHDX uses it.
pub fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_known_vectors() {
        assert_eq!(super::checksum(b""), 0);
        assert_eq!(super::checksum(b"123456789"), 0xE306_9283);
        assert_eq!(super::checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(super::checksum(&[0xffu8; 32]), 0x62A8_AB43);
        // Chaining raw registers as jbd2 does equals one pass.
        let chained = !super::update(super::update(!0, b"1234"), b"56789");
        assert_eq!(chained, 0xE306_9283);
    }
}
