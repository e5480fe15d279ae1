//! The PV label and metadata area against a PV made by lvm2 (`fuzz/corpus/lvm/linear`:
//! the first 16 KiB of a PV of VG `seedlinear` with LVs root, my-lv and var), and each
//! checksum and bound damaged on purpose.

use std::sync::Arc;

use super::label::{lvm_crc, read_pv};
use crate::image::{BlockSource, CorruptKind, MemoryImage};

const INITIAL_CRC: u32 = 0xf597_a6cf;
const MDA: usize = 4096;

fn seed() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/lvm/linear"
    ))
    .unwrap()
}

fn pv(bytes: Vec<u8>) -> Arc<dyn BlockSource> {
    Arc::new(MemoryImage::new(bytes))
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Recomputes the metadata area header's CRC after an edit.
fn reseal_mda(bytes: &mut [u8]) {
    let crc = lvm_crc(INITIAL_CRC, &bytes[MDA + 4..MDA + 512]);
    bytes[MDA..MDA + 4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_pv_made_by_lvm2_is_read() {
    let label = read_pv(pv(seed()).as_ref()).unwrap();
    assert_eq!(label.uuid.len(), 32);
    let text = label.metadata.unwrap();
    let top = super::text::parse(&text).unwrap();
    let vg = super::vg::from_metadata(&top).unwrap();
    assert_eq!(vg.name, "seedlinear");
    let names: Vec<&str> = vg.lvs.iter().map(|lv| lv.name.as_str()).collect();
    assert_eq!(names, ["root", "my-lv", "var"]);
    assert_eq!(vg.extent_size, 4 << 20);
}

#[test]
fn label_crc_is_checked() {
    let mut bytes = seed();
    bytes[512 + 100] ^= 1; // inside the PV header, covered by the label's CRC
    let e = read_pv(pv(bytes).as_ref()).unwrap_err();
    assert_eq!(
        (e.structure, e.offset, e.kind),
        ("LVM2 label", 512 + 16, CorruptKind::Checksum)
    );
}

#[test]
fn metadata_area_header_crc_is_checked() {
    let mut bytes = seed();
    bytes[MDA + 200] ^= 1;
    let e = read_pv(pv(bytes).as_ref()).unwrap_err();
    assert_eq!(
        (e.structure, e.offset, e.kind),
        (
            "LVM2 metadata area header",
            MDA as u64,
            CorruptKind::Checksum
        )
    );
}

#[test]
fn metadata_text_checksum_is_checked() {
    let mut bytes = seed();
    let offset = le64(&bytes, MDA + 40) as usize;
    bytes[MDA + offset + 10] ^= 1;
    let e = read_pv(pv(bytes).as_ref()).unwrap_err();
    assert_eq!(e.structure, "LVM2 metadata text");
    assert_eq!(e.offset, (MDA + offset) as u64);
}

/// The newest text may wrap past the end of the circular buffer and continue right after
/// the area's header: moved there by hand, it must read back the same.
#[test]
fn metadata_wrapping_around_the_area_is_joined() {
    let bytes = seed();
    let offset = le64(&bytes, MDA + 40) as usize;
    let size = le64(&bytes, MDA + 48) as usize;
    let text = bytes[MDA + offset..MDA + offset + size].to_vec();
    // A small area that ends 100 bytes into the text.
    let area = 512 + 2 * size;
    let new_offset = area - 100;
    let mut pv_bytes = vec![0u8; MDA + area];
    pv_bytes[..MDA + 512].copy_from_slice(&bytes[..MDA + 512]);
    pv_bytes[MDA + new_offset..MDA + area].copy_from_slice(&text[..100]);
    pv_bytes[MDA + 512..MDA + 512 + size - 100].copy_from_slice(&text[100..]);
    pv_bytes[MDA + 32..MDA + 40].copy_from_slice(&(area as u64).to_le_bytes());
    pv_bytes[MDA + 40..MDA + 48].copy_from_slice(&(new_offset as u64).to_le_bytes());
    reseal_mda(&mut pv_bytes);
    // The PV header's metadata area size must agree: patch it and reseal the label.
    let header = 512 + 32;
    let mut at = header + 40;
    let mut lists = 0;
    while lists < 2 {
        if le64(&pv_bytes, at) == 0 && le64(&pv_bytes, at + 8) == 0 {
            lists += 1;
        } else if lists == 1 {
            pv_bytes[at + 8..at + 16].copy_from_slice(&(area as u64).to_le_bytes());
        }
        at += 16;
    }
    let crc = lvm_crc(INITIAL_CRC, &pv_bytes[512 + 20..1024]);
    pv_bytes[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
    let label = read_pv(pv(pv_bytes).as_ref()).unwrap();
    assert_eq!(label.metadata.unwrap(), text);
}

#[test]
fn committed_metadata_outside_its_area_is_refused() {
    let mut bytes = seed();
    bytes[MDA + 48..MDA + 56].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    reseal_mda(&mut bytes);
    let e = read_pv(pv(bytes).as_ref()).unwrap_err();
    assert_eq!(
        (e.structure, e.offset, e.kind),
        (
            "LVM2 metadata area header",
            MDA as u64 + 40,
            CorruptKind::TooLarge
        )
    );
}

#[test]
fn a_truncated_metadata_area_is_an_error_not_a_panic() {
    let mut bytes = seed();
    bytes.truncate(MDA + 600);
    let e = read_pv(pv(bytes).as_ref()).unwrap_err();
    assert!(e.detail.contains("past the end"), "{}", e.detail);
    assert_eq!(e.kind, CorruptKind::OutOfRange);
}

/// Two stripes of 4 KiB chunks over two PVs, then a linear segment: every byte of the LV
/// comes from where dm-stripe would take it, including reads across chunk and segment
/// boundaries.
#[test]
fn striped_and_linear_segments_map_like_device_mapper() {
    use super::source::{LvSource, MappedSegment};
    const CHUNK: usize = 4096;
    let pattern = |pv: u8, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| pv.wrapping_mul(101) ^ (i / 7) as u8)
            .collect()
    };
    let (a, b) = (pattern(1, 64 * 1024), pattern(2, 64 * 1024));
    let (pa, pb) = (pv(a.clone()), pv(b.clone()));
    let striped_len = 8 * CHUNK; // 4 chunks on each PV, from byte 8192 of each
    let lv = LvSource::new(vec![
        MappedSegment {
            start: 0,
            len: striped_len as u64,
            stripes: vec![(Arc::clone(&pa), 8192), (Arc::clone(&pb), 8192)],
            chunk: CHUNK as u64,
        },
        MappedSegment {
            start: striped_len as u64,
            len: 3 * CHUNK as u64,
            stripes: vec![(Arc::clone(&pb), 49152)],
            chunk: 3 * CHUNK as u64,
        },
    ]);
    let mut expected = Vec::new();
    for chunk in 0..8 {
        let (source, row) = if chunk % 2 == 0 {
            (&a, chunk / 2)
        } else {
            (&b, chunk / 2)
        };
        let at = 8192 + row * CHUNK;
        expected.extend_from_slice(&source[at..at + CHUNK]);
    }
    expected.extend_from_slice(&b[49152..49152 + 3 * CHUNK]);
    assert_eq!(lv.len(), expected.len() as u64);
    for (offset, len) in [
        (0, expected.len()),
        (4000, 300),
        (CHUNK * 7 + 10, CHUNK + 100),
        (1, 1),
    ] {
        let mut buf = vec![0u8; len];
        lv.read_exact_at(offset as u64, &mut buf).unwrap();
        assert_eq!(
            buf,
            expected[offset..offset + len],
            "read of {len} at {offset}"
        );
    }
    let mut past = [0u8; 2];
    assert!(lv
        .read_exact_at(expected.len() as u64 - 1, &mut past)
        .is_err());
}

/// Offsets in errors are disk offsets: a byte of a striped LV maps through its stripe's PV
/// and that PV's partition to the disk.
#[test]
fn lv_bytes_map_to_disk_offsets_through_stripes_and_partitions() {
    use super::source::{LvSource, MappedSegment};
    use crate::image::Window;
    const CHUNK: u64 = 4096;
    let disk = pv(vec![0u8; 200 * 1024]);
    let part = |start: u64| -> Arc<dyn BlockSource> {
        Arc::new(Window::new(Arc::clone(&disk), start, 64 * 1024).unwrap())
    };
    let lv = LvSource::new(vec![MappedSegment {
        start: 0,
        len: 8 * CHUNK,
        stripes: vec![(part(0), 8192), (part(100_000), 8192)],
        chunk: CHUNK,
    }]);
    assert_eq!(lv.disk_offset(5), Some(8192 + 5));
    assert_eq!(lv.disk_offset(CHUNK + 5), Some(100_000 + 8192 + 5));
    assert_eq!(lv.disk_offset(2 * CHUNK), Some(8192 + CHUNK));
    assert_eq!(lv.disk_offset(8 * CHUNK), None);
}
