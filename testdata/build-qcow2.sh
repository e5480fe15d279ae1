#!/usr/bin/env bash
# Builds the qcow2 images tests/qcow2.rs reads, with qemu-img, from the foundation images
# of build-images.sh, into testdata/build/qcow2/ (git-ignored).
#
# Runs once: testdata/build/qcow2/.complete holds the sha256 of this script and the
# foundation images' stamp; when it matches, the script exits at once. Otherwise it
# builds everything into a temporary directory and moves it into place, writing the stamp
# last. It takes testdata/build/.lock itself to run build-images.sh; callers serialise
# runs of this script with `flock testdata/build/.lock-qcow2 bash testdata/build-qcow2.sh`.
#
# Every image presents the bytes of a foundation image (so its inventory equals the same
# source trees); backing file names are relative, so the directory can be moved.
#   plain.qcow2            debian-gpt.img, qemu-img's defaults (v3, 64 KiB clusters)
#   deflate.qcow2          debian-gpt.img, compressed (deflate)
#   zstd.qcow2             split-gpt.img, compressed with zstd (incompatible bit 3)
#   c4k.qcow2              mbr-logical.img, 4 KiB clusters
#   c2m.qcow2              debian-gpt.img, 2 MiB clusters (the last one partial)
#   v2.qcow2               debian-gpt.img, version 2 (compat=0.10)
#   v2-deflate.qcow2       debian-gpt.img, version 2, 16 KiB clusters, compressed
#   extl2.qcow2            debian-gpt.img, extended L2 entries (subclusters)
#   snapshot.qcow2         debian-gpt.img in the active layer; snapshot "snap1" holds
#                          garbled.raw (taken before the disk was rewritten), and
#                          "second snapshot" the final state
#   base.qcow2             garbled.raw: debian-gpt.img with seeded random ranges overwritten
#   base-zstd.qcow2        garbled.raw, zstd-compressed
#   base-short.raw         garbled.raw cut to 40 MiB (smaller than the overlays on it)
#   overlay.qcow2          debian-gpt.img as an overlay on base.qcow2 holding only the
#                          clusters that differ (qemu-img rebase in safe mode)
#   overlay-raw.qcow2      the same on base-short.raw (backing format raw)
#   overlay-zstdbase.qcow2 the same on base-zstd.qcow2
#   overlay-extl2.qcow2    the same on base.qcow2 with extended L2 entries (only the
#                          changed subclusters allocated)
#   sub/overlay-rel.qcow2  the same on ../base.qcow2 (a relative path up a directory)
#   chain.qcow2            an empty overlay on overlay.qcow2 (chain of three files)
set -euo pipefail
export LC_ALL=C TZ=UTC

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
out="$build/qcow2"
stamp="$out/.complete"

mkdir -p "$build"
flock "$build/.lock" bash "$here/build-images.sh"

want="$(sha256sum "$script" | cut -d' ' -f1) $(cat "$build/.complete")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

for tool in qemu-img python3 sha256sum truncate; do
    command -v "$tool" >/dev/null || { echo "build-qcow2.sh: $tool is required" >&2; exit 1; }
done

rm -rf "$build"/.tmp-qcow2.* "$build"/.old-qcow2.*
tmp="$(mktemp -d "$build/.tmp-qcow2.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

deb="$build/debian-gpt.img"
split="$build/split-gpt.img"
mbr="$build/mbr-logical.img"

q() { qemu-img "$@"; }

q convert -O qcow2 "$deb" plain.qcow2
q convert -c -O qcow2 "$deb" deflate.qcow2
q convert -c -O qcow2 -o compression_type=zstd "$split" zstd.qcow2
q convert -O qcow2 -o cluster_size=4k "$mbr" c4k.qcow2
q convert -O qcow2 -o cluster_size=2M "$deb" c2m.qcow2
q convert -O qcow2 -o compat=0.10 "$deb" v2.qcow2
q convert -c -O qcow2 -o compat=0.10,cluster_size=16k "$deb" v2-deflate.qcow2
q convert -O qcow2 -o extended_l2=on "$deb" extl2.qcow2

# The garbled disk: seeded random bytes over ranges of debian-gpt.img, 512-byte aligned
# but not cluster-aligned, including the primary GPT header.
python3 - "$deb" garbled.raw <<'PY'
import random, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
shutil.copyfile(src, dst)
rng = random.Random(20240601)
with open(dst, "r+b") as f:
    f.seek(0, 2)
    size = f.tell()
    ranges = [(512, 1024)]
    for _ in range(40):
        start = rng.randrange(0, size // 512) * 512
        length = rng.randrange(1, 192) * 512
        ranges.append((start, min(length, size - start)))
    for start, length in ranges:
        f.seek(start)
        f.write(rng.randbytes(length))
PY

q convert -O qcow2 garbled.raw base.qcow2
q convert -c -O qcow2 -o compression_type=zstd garbled.raw base-zstd.qcow2
cp garbled.raw base-short.raw
truncate -s 40M base-short.raw

# An overlay that presents debian-gpt.img on BACKING, holding only the clusters that
# differ: start empty on the real disk, then rebase (safe mode) onto the backing.
overlay() { # out backing backing-format [create options]
    local file="$1" backing="$2" format="$3"
    shift 3
    q create -q -f qcow2 "$@" -b "$deb" -F raw "$file"
    q rebase -q -b "$backing" -F "$format" "$file"
}
overlay overlay.qcow2 base.qcow2 qcow2
overlay overlay-raw.qcow2 base-short.raw raw
overlay overlay-zstdbase.qcow2 base-zstd.qcow2 qcow2
overlay overlay-extl2.qcow2 base.qcow2 qcow2 -o extended_l2=on
mkdir sub
overlay sub/overlay-rel.qcow2 ../base.qcow2 qcow2
overlay chain.qcow2 overlay.qcow2 qcow2

# Snapshots: snap1 holds the garbled disk; the active layer is then rewritten in place.
q convert -O qcow2 garbled.raw snapshot.qcow2
q snapshot -c snap1 snapshot.qcow2
q convert -n -O qcow2 "$deb" snapshot.qcow2
q snapshot -c "second snapshot" snapshot.qcow2

rm garbled.raw
for f in *.qcow2 sub/*.qcow2; do
    q check -q "$f" >/dev/null
done

cd "$build"
if [[ -d "$out" ]]; then mv "$out" "$(mktemp -d "$build/.old-qcow2.XXXXXX")"; fi
mv "$tmp" "$out"
rm -rf "$build"/.old-qcow2.*
trap - EXIT
echo "$want" > "$stamp"
