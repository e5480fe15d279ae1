#!/usr/bin/env bash
# Builds the VMDK images tests/vmdk.rs reads, from the foundation images of
# build-images.sh, into testdata/build/vmdk/ (git-ignored).
#
# Runs once: testdata/build/vmdk/.complete holds the sha256 of this script and of the
# foundation images' stamp; when it matches, the script exits at once. It builds into a
# temporary directory and moves it into place before writing the stamp, so an interrupted
# build is simply redone. Callers serialise it: `flock testdata/build/.lock-vmdk bash
# testdata/build-vmdk.sh` (it takes testdata/build/.lock itself to build the foundation
# images first).
#
# Images (NAME.vmdk; file names are the contract with the tests), for BASE in debian-gpt
# and split-gpt:
#   BASE-streamOptimized.vmdk       qemu-img: compressed grains behind grain markers,
#                                   grain directory in the header
#   BASE-monolithicSparse.vmdk      qemu-img: one hosted sparse extent
#   BASE-monolithicFlat.vmdk        qemu-img: descriptor + BASE-monolithicFlat-flat.vmdk
#   BASE-twoGbMaxExtentSparse.vmdk  qemu-img: descriptor + one -s001.vmdk sparse extent
#   BASE-twoGbMaxExtentFlat.vmdk    qemu-img: descriptor + one -f001.vmdk flat extent
# and
#   debian-gpt-zeroed.vmdk          qemu-img monolithicSparse with zeroed_grain=on, then
#                                   qemu-io `write -z` over parts of the BIOS boot
#                                   partition (grain table entries 1: zeroed grains)
#   debian-gpt-vmware-stream.vmdk   streamOptimized as VMware writes it (written here in
#                                   Python): grains first, each grain table after its
#                                   grains behind a marker, the grain directory at the end,
#                                   gdOffset 0xffffffffffffffff in the header and the real
#                                   one in the footer
#   debian-gpt-compact.vmdk         monolithicSparse with 4 KiB grains written here:
#                                   zeroed-grain flag, every other all-zero grain stored as
#                                   GTE 1 and the others left unallocated
#   split-gpt-multi.vmdk            hand-written descriptor: split-gpt.img cut into three
#                                   FLAT extents of different sizes (the second at sector
#                                   2048 of a file that starts with junk) and a ZERO extent
#                                   of 2 MiB at the end; qemu does not read ZERO extents,
#                                   so split-gpt-multi.expected.raw is the disk it presents
#   split-gpt-multi-flat.vmdk       the same three FLAT extents without the ZERO one, all RW
#                                   (the other has the second RDONLY, which qemu skips)
#
# `bash testdata/build-vmdk.sh --seeds` instead writes the fuzz seeds, small VMDKs of a
# 1 MiB raw disk, into fuzz/corpus/vmdk/.
set -euo pipefail
export LC_ALL=C TZ=UTC

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
out="$build/vmdk"

for tool in qemu-img qemu-io python3 sha256sum flock dd truncate; do
    command -v "$tool" >/dev/null || { echo "build-vmdk.sh: $tool is required" >&2; exit 1; }
done

# Python writers for the layouts qemu-img does not produce.
writer() {
    python3 - "$@" <<'PY'
import os, struct, sys, zlib

SECTOR = 512

def header(version, flags, capacity, grain, desc_off, desc_sectors, gtes, gd_off, overhead,
           compress):
    h = struct.pack("<4sIIQQQQIQQQB4sH", b"KDMV", version, flags, capacity, grain, desc_off,
                    desc_sectors, gtes, 0, gd_off, overhead, 0, b"\n \r\n", compress)
    return h.ljust(SECTOR, b"\0")

def descriptor(create_type, capacity, name):
    text = (
        "# Disk DescriptorFile\nversion=1\nCID=5eed1e55\nparentCID=ffffffff\n"
        f'createType="{create_type}"\n\n# Extent description\n'
        f'RW {capacity} SPARSE "{name}"\n\n# The Disk Data Base\n#DDB\n\n'
        'ddb.virtualHWVersion = "4"\nddb.adapterType = "lsilogic"\n'
    ).encode()
    return text.ljust(-(-len(text) // SECTOR) * SECTOR + SECTOR, b"\0")

def pad(b):
    return b.ljust(-(-len(b) // SECTOR) * SECTOR, b"\0")

def marker(sectors, kind):
    return struct.pack("<QII", sectors, 0, kind).ljust(SECTOR, b"\0")

def stream(raw, path, grain=128, gtes=512):
    """streamOptimized the way VMware writes it: GD_AT_END and a footer."""
    data = open(raw, "rb").read()
    assert len(data) % SECTOR == 0
    capacity = len(data) // SECTOR
    gbytes = grain * SECTOR
    grains = -(-capacity // grain)
    tables = -(-grains // gtes)
    desc = descriptor("streamOptimized", capacity, os.path.basename(path))
    desc_sectors = len(desc) // SECTOR
    overhead = 1 + desc_sectors
    flags = 1 | (1 << 16) | (1 << 17)
    out = bytearray(header(3, flags, capacity, grain, 1, desc_sectors, gtes, 2**64 - 1,
                           overhead, 1))
    out += desc
    gd = []
    for t in range(tables):
        gt = []
        for g in range(t * gtes, min((t + 1) * gtes, grains)):
            chunk = data[g * gbytes:(g + 1) * gbytes]
            if chunk.count(0) == len(chunk):
                gt.append(0)
                continue
            gt.append(len(out) // SECTOR)
            comp = zlib.compress(chunk)
            out += pad(struct.pack("<QI", g * grain, len(comp)) + comp)
        if not any(gt):
            gd.append(0)
            continue
        gt += [0] * (gtes - len(gt))
        table = pad(struct.pack(f"<{gtes}I", *gt))
        out += marker(len(table) // SECTOR, 1)
        gd.append(len(out) // SECTOR)
        out += table
    directory = pad(struct.pack(f"<{len(gd)}I", *gd))
    out += marker(len(directory) // SECTOR, 2)
    gd_off = len(out) // SECTOR
    out += directory
    out += marker(1, 3)
    out += header(3, flags, capacity, grain, 1, desc_sectors, gtes, gd_off, overhead, 1)
    out += bytes(SECTOR)
    open(path, "wb").write(out)

def compact(raw, path, grain=8, gtes=512):
    """monolithicSparse with small grains and zeroed grains (GTE 1)."""
    data = open(raw, "rb").read()
    assert len(data) % SECTOR == 0
    capacity = len(data) // SECTOR
    gbytes = grain * SECTOR
    grains = -(-capacity // grain)
    tables = -(-grains // gtes)
    desc = descriptor("monolithicSparse", capacity, os.path.basename(path))
    desc_sectors = len(desc) // SECTOR
    gd_off = 1 + desc_sectors
    gd_sectors = len(pad(bytes(4 * tables))) // SECTOR
    gt_sectors = len(pad(bytes(4 * gtes))) // SECTOR
    first_gt = gd_off + gd_sectors
    overhead = first_gt + tables * gt_sectors
    gd = [first_gt + t * gt_sectors for t in range(tables)]
    gte = [0] * (tables * gtes)
    body = bytearray()
    for g in range(grains):
        chunk = data[g * gbytes:(g + 1) * gbytes]
        if chunk.count(0) == len(chunk):
            gte[g] = 1 if g % 2 == 0 else 0
            continue
        gte[g] = overhead + len(body) // SECTOR
        body += pad(chunk)
    out = bytearray(header(2, 1 | (1 << 2), capacity, grain, 1, desc_sectors, gtes, gd_off,
                           overhead, 0))
    out += desc
    out += pad(struct.pack(f"<{tables}I", *gd))
    for t in range(tables):
        out += pad(struct.pack(f"<{gtes}I", *gte[t * gtes:(t + 1) * gtes]))
    assert len(out) == overhead * SECTOR
    out += body
    open(path, "wb").write(out)

def seed_raw(path):
    """1 MiB: a few grains of text and random bytes, the rest zeros."""
    import random
    r = random.Random(1)
    b = bytearray(1 << 20)
    b[0:512] = (b"amiscan vmdk seed " * 29)[:510] + b"\x55\xaa"
    b[70000:75000] = r.randbytes(5000)
    b[200704:204800] = b"text " * 819 + b"!"
    b[(1 << 20) - 700:] = r.randbytes(700)
    open(path, "wb").write(b)

{"stream": stream, "compact": compact, "seed-raw": seed_raw}[sys.argv[1]](*sys.argv[2:])
PY
}

if [[ "${1:-}" == "--seeds" ]]; then
    corpus="$here/../fuzz/corpus/vmdk"
    mkdir -p "$corpus"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    writer seed-raw "$tmp/seed.raw"
    qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$tmp/seed.raw" \
        "$corpus/qemu-stream.vmdk"
    qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse,zeroed_grain=on \
        "$tmp/seed.raw" "$corpus/qemu-sparse.vmdk"
    qemu-io -f vmdk -c "write -z 196608 65536" "$corpus/qemu-sparse.vmdk" >/dev/null
    writer stream "$tmp/seed.raw" "$corpus/vmware-stream.vmdk"
    writer compact "$tmp/seed.raw" "$corpus/compact-sparse.vmdk"
    printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 2048 ZERO\nRDONLY 100 ZERO\nNOACCESS 8 ZERO\n' \
        >"$corpus/zero-descriptor.vmdk"
    ls -l "$corpus"
    exit 0
fi

mkdir -p "$build"
flock "$build/.lock" bash "$here/build-images.sh"

stamp="$out/.complete"
want="$(cat "$script" "$build/.complete" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

started=$SECONDS
rm -rf "$build"/.tmp-vmdk.* "$build"/.old-vmdk.*
tmp="$(mktemp -d "$build/.tmp-vmdk.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

for base in debian-gpt split-gpt; do
    for sub in streamOptimized monolithicSparse monolithicFlat twoGbMaxExtentSparse \
        twoGbMaxExtentFlat; do
        qemu-img convert -q -f raw -O vmdk -o "subformat=$sub" "$build/$base.img" \
            "$tmp/$base-$sub.vmdk"
    done
done

# Zeroed grains: p14 (BIOS boot, no filesystem) starts at 1 MiB and is 3 MiB long.
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse,zeroed_grain=on \
    "$build/debian-gpt.img" "$tmp/debian-gpt-zeroed.vmdk"
qemu-io -f vmdk -c "write -z 1M 256k" -c "write -z 2M 1M" -c "write -z 3200k 4k" \
    "$tmp/debian-gpt-zeroed.vmdk" >/dev/null

writer stream "$build/debian-gpt.img" "$tmp/debian-gpt-vmware-stream.vmdk"
writer compact "$build/debian-gpt.img" "$tmp/debian-gpt-compact.vmdk"

# Three FLAT extents of 14341, 30000 and the remaining sectors of split-gpt.img; the
# second sits at sector 2048 of its file, after 1 MiB of junk.
src="$build/split-gpt.img"
total=$(( $(stat -c %s "$src") / 512 ))
a=14341
b=30000
c=$(( total - a - b ))
dd if="$src" of="$tmp/split-gpt-multi-1.bin" bs=512 count=$a status=none
python3 -c 'import sys; sys.stdout.buffer.write((b"junk before the second extent\n" * 40000)[:1 << 20])' \
    >"$tmp/split-gpt-multi-2.bin"
dd if="$src" bs=512 skip=$a count=$b status=none >>"$tmp/split-gpt-multi-2.bin"
dd if="$src" of="$tmp/split-gpt-multi-3.bin" bs=512 skip=$((a + b)) status=none
multi() {
    printf '# Disk DescriptorFile\nversion=1\nCID=7a5e7a5e\nparentCID=ffffffff\n'
    printf 'createType="%s"\n\n# Extent description\n' "$1"
    printf 'RW %d FLAT "split-gpt-multi-1.bin" 0\n' $a
    printf '%s %d FLAT "split-gpt-multi-2.bin" 2048\n' "$3" $b
    printf 'RW %d FLAT "split-gpt-multi-3.bin" 0\n' $c
    if [[ "$2" == zero ]]; then printf 'RW 4096 ZERO\n'; fi
    printf '\n# The Disk Data Base\n#DDB\n\nddb.adapterType = "lsilogic"\n'
}
# QEMU skips RDONLY extent lines without a word (the disk comes out shorter), so the
# variant compared with qemu-img's reading has only RW ones.
multi twoGbMaxExtentFlat zero RDONLY >"$tmp/split-gpt-multi.vmdk"
multi twoGbMaxExtentFlat none RW >"$tmp/split-gpt-multi-flat.vmdk"
cp --sparse=always "$src" "$tmp/split-gpt-multi.expected.raw"
truncate -s +2M "$tmp/split-gpt-multi.expected.raw"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$want" >"$stamp"
echo "build-vmdk.sh: built $(ls "$out" | wc -l) files in $((SECONDS - started)) s" >&2
