#!/usr/bin/env bash
# Writes small seed inputs for the fuzz targets, made by the real tools.
set -euo pipefail
cd "$(dirname "$0")"
export E2FSPROGS_FAKE_TIME=1793534400
mkdir -p corpus/disk corpus/filesystem
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/etc" "$work/tree/d/e"
printf 'ID=debian\nVERSION_ID=12\n' > "$work/tree/etc/os-release"
printf 'LABEL=efi /boot/efi vfat defaults 0 0\n' > "$work/tree/etc/fstab"
printf 'x%.0s' $(seq 1 3000) > "$work/tree/d/e/big"
ln -s ../etc/os-release "$work/tree/d/link"
ln -s "$(printf 'long/%.0s' $(seq 1 20))target" "$work/tree/d/slow-link"

mkfs.ext4 -q -F -b 1024 -N 32 -O ^has_journal -d "$work/tree" corpus/filesystem/ext4-1k 128K
mke2fs -q -F -t ext2 -b 1024 -N 32 -d "$work/tree" corpus/filesystem/ext2 96K
mkfs.ext4 -q -F -b 1024 -N 32 -O ^has_journal,inline_data -d "$work/tree" corpus/filesystem/ext4-inline 128K
truncate -s 200K "$work/fat.img"
mkfs.vfat -F 12 -n EFI "$work/fat.img" >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$work/fat.img" "$work/tree/etc" "$work/tree/d/e" ::/
cp "$work/fat.img" corpus/filesystem/fat12

# A GPT disk and an MBR disk with a logical partition, each holding the small filesystems.
truncate -s 400K corpus/disk/gpt
sgdisk -a 1 -n 1:40:295 -t 1:8300 -n 2:296:695 -t 2:ef00 -c 2:EFI corpus/disk/gpt >/dev/null
dd if=corpus/filesystem/ext4-1k of=corpus/disk/gpt bs=512 seek=40 conv=notrunc status=none
dd if="$work/fat.img" of=corpus/disk/gpt bs=512 seek=296 conv=notrunc status=none
truncate -s 300K corpus/disk/mbr
printf 'start=2, size=200, type=83\nstart=202, size=380, type=5\nstart=204, size=192, type=83\n' |
  sfdisk -q corpus/disk/mbr
dd if=corpus/filesystem/ext2 of=corpus/disk/mbr bs=512 seek=204 conv=notrunc status=none
cp corpus/filesystem/ext4-1k corpus/disk/bare-ext4
ls -l corpus/*
