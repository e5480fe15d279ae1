#!/usr/bin/env bash
# Builds testdata/build/volume-kinds.img: a GPT disk whose partitions hold every kind of
# volume amiscan identifies but does not read, each made by its own real tool, so that
# `inspect` is tested against what blkid would say:
#   p1 ext4 root (label root), p2 swap (mkswap), p3 btrfs (mkfs.btrfs), p4 iso9660
#   (genisoimage), p5 LUKS2 (cryptsetup luksFormat on a file), p6 random bytes (unknown).
# LVM2 physical volumes are not included: pvcreate needs a block device, and the tests run
# without root and without loop devices.
# Idempotent: a stamp holding this script's sha256 skips the rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/build"
stamp="$out/.complete-volume-kinds"
want=$(sha256sum "$0" | cut -d' ' -f1)
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0
mkdir -p "$out"
tmp=$(mktemp -d "$out/.tmp-kinds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export E2FSPROGS_FAKE_TIME=1793534400

mkdir -p "$tmp/root/etc" "$tmp/iso"
printf 'ID=debian\nVERSION_ID=12\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' > "$tmp/root/etc/os-release"
printf 'LABEL=root / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n' > "$tmp/root/etc/fstab"
echo "instance-id: i-0123456789" > "$tmp/iso/meta-data"

mkfs.ext4 -q -F -L root -U 0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e -d "$tmp/root" "$tmp/p1" 8M
truncate -s 8M "$tmp/p2"
mkswap -L swap0 -U 66666666-7777-4888-9999-aaaaaaaaaaaa "$tmp/p2" >/dev/null 2>&1
truncate -s 128M "$tmp/p3"
mkfs.btrfs -q -L data -U 11111111-2222-4333-8444-555555555555 "$tmp/p3" >/dev/null
genisoimage -quiet -V CIDATA -o "$tmp/p4" "$tmp/iso"
truncate -s 20M "$tmp/p5"
printf 'not-a-real-secret' | cryptsetup luksFormat --batch-mode --type luks2 \
  --uuid bbbbbbbb-cccc-4ddd-8eee-ffffffffffff --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
  "$tmp/p5" - >/dev/null
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(6).randbytes(1 << 20))' > "$tmp/p6"

disk="$tmp/volume-kinds.img"
truncate -s 200M "$disk"
args=()
start=2048
n=1
for part in p1 p2 p3 p4 p5 p6; do
  sectors=$(( ($(stat -c %s "$tmp/$part") + 511) / 512 ))
  args+=(-n "$n:$start:$((start + sectors - 1))")
  start=$(( (start + sectors + 2047) / 2048 * 2048 ))
  n=$((n + 1))
done
sgdisk "${args[@]}" "$disk" >/dev/null
n=1
for part in p1 p2 p3 p4 p5 p6; do
  first=$(sgdisk -i "$n" "$disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  dd if="$tmp/$part" of="$disk" bs=512 seek="$first" conv=notrunc,sparse status=none
  n=$((n + 1))
done
mv "$disk" "$out/volume-kinds.img"
echo "$want" > "$stamp"
