//! The readers' tests (and the secrets pass's) that build filesystems with external tools (mke2fs, debugfs, e2fsck,
//! mkfs.xfs, mkfs.vfat, fsck.fat, mtools…) and compare the reader with them. They look at
//! the readers' private structures, so they live beside the readers
//! (`src/filesystems/{ext4,xfs,fat}/tests.rs`, compiled only with the `test-support`
//! feature and never into the library's own unit tests) and run here as `#[test]`s, which
//! keeps `cargo test --lib` free of external tools.

use std::collections::BTreeSet;

use crate::util::manifest_dir;

/// One `#[test]` per function of the module imported as `library`, and `NAMES`, the list
/// `every_test_is_run` checks.
macro_rules! run_in_library {
    ($($(#[$attr:meta])* $name:ident,)*) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                library::$name();
            }
        )*

        pub const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

/// The `pub fn NAME()` of a library test file: each one is a test.
fn library_tests(file: &str) -> BTreeSet<String> {
    let path = manifest_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.strip_prefix("pub fn "))
        .filter_map(|rest| rest.split_once("()"))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// A test added to a reader's tests.rs and not listed here would never run.
#[test]
fn every_test_is_run() {
    for (file, names) in [
        ("src/filesystems/ext4/tests.rs", ext4::NAMES),
        ("src/filesystems/xfs/tests.rs", xfs::NAMES),
        ("src/filesystems/fat/tests.rs", fat::NAMES),
    ] {
        let listed: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(listed.len(), names.len(), "{file}: a test is listed twice");
        assert_eq!(listed, library_tests(file), "{file}: the tests listed here");
    }
}

mod ext4 {
    use amiscan::filesystems::ext4::tests as library;

    run_in_library! {
        ext4_default,
        ext4_32bit_descriptors_no_csum,
        ext4_1k_blocks,
        ext4_64k_blocks,
        ext4_128_byte_inodes,
        ext4_inline_data,
        ext4_inline_data_dir_continued_in_xattr,
        ext4_meta_bg,
        ext4_bigalloc,
        ext3_4k,
        ext3_1k_triple_indirect,
        ext2_4k,
        ext2_1k_128_byte_inodes,
        ext2_revision_0_without_filetype,
        ext4_htree_directory,
        ext3_htree_directory_1k,
        ext4_1k_htree_with_csum,
        sparse_file_streams_without_reading_holes,
        contiguous_data_is_read_in_large_chunks,
        mtime_epoch_and_nanoseconds,
        nodes_of_wrong_kind_are_refused,
        ext4fs_is_send_and_sync_and_shared_by_threads,
        corrupt_superblock_fields,
        unsupported_features_are_named,
        corrupt_extent_trees,
        corrupt_block_maps,
        corrupt_directories,
        corrupt_inline_data_and_symlinks,
        journal_replay_ext4_64bit_tags,
        journal_replay_ext4_csum_v3,
        journal_replay_ext4_1k_csum_v2,
        journal_replay_ext4_csum_v2_32bit_tags,
        journal_replay_ext3_32bit_tags,
        journal_replay_ext3_csum_v1,
        journal_features_refused_by_name,
        journal_corruption_never_panics,
        clean_checksummed_images_have_no_mismatch,
        checksum_seed_is_kept_across_a_new_uuid,
        superblock_checksum_mismatch_is_refused,
        group_descriptor_crc32c_mismatch_refuses_its_group,
        group_descriptor_crc16_mismatch_refuses_its_group,
        inode_checksum_mismatch_refuses_the_inode,
        extent_block_checksum_mismatch_refuses_the_file,
        directory_block_checksum_mismatch_refuses_the_directory,
        htree_index_checksum_mismatch_refuses_the_directory,
        htree_interior_node_checksum_mismatch_refuses_the_directory,
        journal_superblock_checksum_mismatch_is_not_replayed,
        random_byte_flips_never_panic,
        random_metadata_corruption_never_panics,
        #[ignore = "builds a 100 000-file image; run by hand in release mode"]
        metadata_walk_100k,
        usage_follows_the_superblock_counts,
        usage_clamps_hostile_counts,
        sizes_the_mapping_cannot_address_are_refused_by_every_operation,
        directories_read_their_blocks_as_the_kernel_does_and_unused_inodes_are_errors,
        directory_blocks_after_a_hole_are_read,
        corrupt_inline_data_xattr_records_are_refused,
        one_damaged_group_descriptor_spoils_only_its_group,
        block_references_name_the_real_cause,
        zeroed_journal_inode_is_replayed_through_the_superblock_backup,
        journal_superblock_checksum_is_verified_through_the_backup,
        deep_extent_trees_are_read_as_e2fsck_accepts_them,
    }
}

mod xfs {
    use amiscan::filesystems::xfs::tests as library;

    run_in_library! {
        xfs_v5_default,
        xfs_v4_without_ftype,
        xfs_64k_directory_blocks_and_1k_filesystem_blocks,
        xfs_512_byte_inodes_sparse_chunks_and_nrext64,
        xfs_is_send_and_sync_and_shared_by_threads,
        superblock_crc_and_fields_are_checked,
        unsupported_and_unknown_features_are_named,
        damaged_agi_makes_its_inodes_unreadable_and_the_volume_incomplete,
        inode_crc_number_and_fields_are_checked,
        directory_blocks_are_checked,
        shortform_directories_are_checked,
        extents_outside_the_filesystem_are_refused,
        random_corruption_never_panics_or_hangs,
        remote_symlink_blocks_need_their_v5_header,
    }
}

mod fat {
    use amiscan::filesystems::fat::tests as library;

    run_in_library! {
        fat_is_send_and_sync,
        fat12_round_trip,
        fat16_round_trip,
        fat32_round_trip,
        fat16_4k_sectors_round_trip,
        small_fat32_reads_as_fat32,
        dos_time_matches_linux,
        short_names_decode_code_page_437,
        boot_sector_corruption_is_reported,
        file_chain_loops_are_reported,
        directory_chain_loops_are_reported,
        chain_links_outside_the_volume_are_reported,
        broken_chains_are_seen_before_the_data_is_read,
        huge_first_clusters_are_reported,
        fat32_huge_first_cluster_is_reported,
        broken_long_names_fall_back_to_the_short_name,
        random_byte_flips_never_panic_or_hang,
    }
}

/// The secrets pass over a real ext4 image: its progress accounting and what it skipped.
#[test]
fn the_secrets_pass_reports_its_reading_and_what_it_skipped() {
    amiscan::rules::checks::secrets::tool_tests::the_pass_reports_its_reading_and_what_it_skipped();
}
