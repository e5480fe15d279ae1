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
# ext4 without metadata_csum, so that mutations are not all refused by a checksum: a
# fragmented sparse file (eight extents, hence an extent tree of depth 1) and user
# xattrs stored in the inodes; once with 64bit and flex_bg, once with neither.
cp -a "$work/tree" "$work/tree-x"
python3 - "$work/tree-x" <<'PY'
import os, sys
root = sys.argv[1]
with open(os.path.join(root, 'd/e/frag'), 'wb') as f:
    for i in range(8):
        f.seek(i * 2048)
        f.write(bytes([65 + i]) * 1024)
    f.truncate(16 * 1024)
os.setxattr(os.path.join(root, 'etc/os-release'), 'user.note', b'hello')
os.setxattr(os.path.join(root, 'd/e/frag'), 'user.k', b'v' * 40)
os.setxattr(os.path.join(root, 'd'), 'user.dir', b'x')
PY
mkfs.ext4 -q -F -b 1024 -N 32 -I 256 -O ^has_journal,^metadata_csum -d "$work/tree-x" \
  corpus/filesystem/ext4-nocsum 128K
mkfs.ext4 -q -F -b 1024 -N 32 -I 256 -O ^has_journal,^metadata_csum,^64bit,^flex_bg \
  -d "$work/tree-x" corpus/filesystem/ext4-nocsum-32bit 128K

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

# Volumes of megabytes of mostly zeros are stored sparse, as amiscan::fuzzing reads them
# (exercise_xfs, exercise_ext4_journal): u32 sector count, then (u32 sector number,
# 512 bytes) per non-zero sector.
sparse_seed() { # IMAGE SEED
  python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
out = [struct.pack('<I', len(data) // 512)]
for n in range(len(data) // 512):
    sector = data[n * 512:(n + 1) * 512]
    if any(sector):
        out.append(struct.pack('<I', n) + sector)
open(sys.argv[2], 'wb').write(b''.join(out))
PY
}

# XFS seeds for the `xfs` target: 16 MiB filesystems (mkfs.xfs allows that size only for
# its test suite, hence the variables), stored sparse.
mkdir -p corpus/xfs
for i in $(seq 1 40); do echo "$i" > "$work/tree/d/e/f$i"; done
{
  printf 'seed\n0 0\nd--755 0 0\n'
  printf 'etc d--755 0 0\n os-release ---644 0 0 %s\n $\n' "$work/tree/etc/os-release"
  printf 'd d--755 0 0\n link l--777 0 0 ../etc/os-release\n big ---600 1000 1000 %s\n' "$work/tree/d/e/big"
  printf ' many d--755 0 0\n'
  for i in $(seq 1 40); do printf '  file-%03d ---644 0 0 %s\n' "$i" "$work/tree/d/e/f$i"; done
  printf ' $\n $\n$\n'
} > "$work/xfs.proto"
for variant in "v5:" "v4:-m crc=0 -n ftype=0" "v5-1k:-b size=1024 -n size=8192"; do
  name=${variant%%:*}
  rm -f "$work/xfs.img"
  truncate -s 16M "$work/xfs.img"
  # shellcheck disable=SC2086
  TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f -d size=16m ${variant#*:} \
    -p "$work/xfs.proto" "$work/xfs.img" 2>/dev/null
  sparse_seed "$work/xfs.img" "corpus/xfs/$name"
done

# ext4 seeds for the `ext4_journal` target: 3 MiB volumes with a 1 MiB journal that still
# holds committed transactions (written by debugfs, flagged needs_recovery): a data block
# of /etc/os-release replaced, a revoke, and a second transaction; one with v3 journal
# checksums on a metadata_csum volume, one with no checksums at all on a 32-bit volume.
mkdir -p corpus/ext4_journal
printf 'ID=fedora\nVERSION_ID=41\n' > "$work/os-release-new"
truncate -s 1K "$work/os-release-new"
head -c 2048 /dev/zero | tr '\0' 'J' > "$work/two-blocks"
for variant in "csum-v3:-c:" "plain::-O ^metadata_csum,^64bit"; do
  name=${variant%%:*} flags=${variant#*:}
  rm -f "$work/ext4.img"
  # shellcheck disable=SC2086
  mkfs.ext4 -q -F -b 1024 -N 32 -J size=1 ${flags#*:} -d "$work/tree" "$work/ext4.img" 3M
  block=$(debugfs -R "bmap /etc/os-release 0" "$work/ext4.img" 2>/dev/null)
  printf 'jo %s\njw -b %s %s\njw -r %s\njc\njo\njw -b 2900,2901 %s\njc\n' \
    "${flags%%:*}" "$block" "$work/os-release-new" "$((block + 1))" "$work/two-blocks" > "$work/jcmds"
  debugfs -w -f "$work/jcmds" "$work/ext4.img" >/dev/null 2>&1
  sparse_seed "$work/ext4.img" "corpus/ext4_journal/$name"
done

# VDI seeds for the `vdi` target, made by qemu-img from a small raw disk (VDI blocks are
# 1 MiB, so each allocated block is a whole MiB): dynamic with one block written and one
# never written, fixed (static=on), and a dynamic disk with no block written at all.
mkdir -p corpus/vdi
truncate -s 2M "$work/vdi.raw"
dd if=corpus/filesystem/ext2 of="$work/vdi.raw" conv=notrunc status=none
qemu-img convert -q -f raw -O vdi "$work/vdi.raw" corpus/vdi/dynamic
truncate -s 1M "$work/vdi.raw"
qemu-img convert -q -f raw -O vdi -o static=on "$work/vdi.raw" corpus/vdi/static
truncate -s 0 "$work/vdi.raw"
truncate -s 3M "$work/vdi.raw"
qemu-img convert -q -f raw -O vdi "$work/vdi.raw" corpus/vdi/dynamic-empty

# LVM2 seeds for the `lvm` target (needs root for loop devices): the first 16 KiB of PVs
# made by lvm2 with activation off (label, metadata area header, metadata text), one with
# linear LVs and a dash in a name, one PV of a VG with a striped LV over two PVs; plus a
# metadata text on its own.
mkdir -p corpus/lvm
lvm_seed() { # NAME SIZE-MIB NPVS LVCREATE-ARGS...
  local name=$1 size=$2 count=$3; shift 3
  local loops=() conf="$work/lvm"
  mkdir -p "$conf"
  for i in $(seq 1 "$count"); do
    truncate -s "${size}M" "$work/pv$i.img"
    loops+=("$(losetup -f --show "$work/pv$i.img")")
  done
  local filter
  filter=$(printf '"a|^%s$|", ' "${loops[@]}")
  printf 'devices { filter = [ %s"r|.*|" ] }\nbackup { backup = 0 archive = 0 }\nglobal { activation = 0 }\n' \
    "$filter" > "$conf/lvm.conf"
  (
    export LVM_SYSTEM_DIR=$conf
    pvcreate -q "${loops[@]}"
    vgcreate -q "seed$name" "${loops[@]}"
    while [ $# -gt 0 ]; do
      # shellcheck disable=SC2086
      lvcreate -q -an -Zn -y $1 "seed$name"
      shift
    done
  ) >/dev/null 2>&1
  for loop in "${loops[@]}"; do losetup -d "$loop"; done
  head -c 16384 "$work/pv1.img" > "corpus/lvm/$name"
  rm -f "$work"/pv*.img
}
lvm_seed linear 16 1 "-L 4M -n root" "-L 4M -n my-lv" "-L 4M -n var"
lvm_seed striped 16 2 "-L 8M -i 2 -I 64k -n stripe" "-L 4M -n plain"
# The committed text, as the metadata area header's first raw location gives it.
python3 - corpus/lvm/linear corpus/lvm/text <<'PY'
import struct, sys
pv = open(sys.argv[1], 'rb').read()
mda = 4096
offset, size = struct.unpack_from('<QQ', pv, mda + 40)
open(sys.argv[2], 'wb').write(pv[mda + offset:mda + offset + size])
PY
ls -l corpus/*
