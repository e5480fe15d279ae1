//! CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of ext4's journal
//! (jbd2) and of VHDX headers, region tables and metadata. A shared utility, not a layer.

/// Built at compile time, where an out-of-range index fails the build instead of panicking.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time, where a bad index fails the build"
)]
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Continues a CRC-32C over `data` from the raw register value `crc`, without the initial
/// and final inversions (as jbd2's `jbd2_chksum` chains it).
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    for byte in data {
        let index = usize::from((crc as u8) ^ byte);
        crc = (crc >> 8) ^ TABLE.get(index).copied().unwrap_or(0);
    }
    crc
}

/// The standard CRC-32C of `data` (initial and final inversion), as VHDX uses it.
pub fn checksum(data: &[u8]) -> u32 {
    !update(!0, data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_known_vectors() {
        assert_eq!(super::checksum(b""), 0);
        assert_eq!(super::checksum(b"123456789"), 0xE306_9283);
        assert_eq!(super::checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(super::checksum(&[0xffu8; 32]), 0x62A8_AB43);
    }
}
