#!/usr/bin/env bash
# Builds the VHD and VHDX images tests/vhd.rs reads, into testdata/build/vhd/ (git-ignored),
# by converting foundation images of testdata/build-images.sh with qemu-img, and records
# qemu-img's own raw conversion of each one beside it: the tests compare what amiscan reads
# through its VHD/VHDX readers with what qemu reads, byte for byte.
#
# Runs once: when testdata/build/vhd/.complete holds the sha256 of this script and the
# foundation build's stamp, it exits at once. Otherwise it builds into a temporary
# directory and moves it into place, writing the stamp last. Callers that may run
# concurrently (the test binaries do) run it as
#   flock testdata/build/.lock-vhd bash testdata/build-vhd.sh
# It runs build-images.sh first (under testdata/build/.lock; a no-op when that is built)
# and then holds a shared lock on testdata/build/.lock, so the foundation images are not
# rebuilt while they are being converted.
#
# Images (name: how it is made, from debian-gpt.img and split-gpt.img each):
#   NAME-fixed.vhd     qemu-img convert -O vpc -o subformat=fixed   (size rounded to CHS)
#   NAME-dynamic.vhd   qemu-img convert -O vpc -o subformat=dynamic (size rounded to CHS)
#   NAME-force.vhd     qemu-img convert -O vpc -o subformat=dynamic,force_size=on (exact size)
#   NAME-dynamic.vhdx  qemu-img convert -O vhdx                      (dynamic, 32 MiB blocks)
#   NAME-fixed.vhdx    qemu-img convert -O vhdx -o subformat=fixed
#   NAME-1m.vhdx       qemu-img convert -O vhdx -o block_size=1M
# and interleave.vhdx: a 5 GiB dynamic VHDX in 1 MiB blocks written with qemu-io on both
# sides of 4 GiB, where the BAT's first sector bitmap entry sits between payload entries.
# raw/IMAGE.raw is `qemu-img convert -f vpc|vhdx -O raw IMAGE` of each (sparse).
set -euo pipefail
export LC_ALL=C TZ=UTC

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
testdata="$(dirname "$script")"
build="$testdata/build"
out="$build/vhd"
stamp="$out/.complete"

mkdir -p "$build"
flock "$build/.lock" bash "$testdata/build-images.sh"
want="$(sha256sum "$script" | cut -d' ' -f1) $(cat "$build/.complete")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

for tool in qemu-img qemu-io sha256sum; do
    command -v "$tool" >/dev/null || { echo "build-vhd.sh: $tool is required" >&2; exit 1; }
done

# Keep the foundation images from being rebuilt (and moved away) while they are read.
exec 9<"$build/.lock"
flock -s 9

started=$SECONDS
rm -rf "$build"/.vhd-tmp.*
tmp="$(mktemp -d "$build/.vhd-tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/raw"

convert() { # convert FORMAT OPTIONS SOURCE NAME
    local format=$1 options=$2 source=$3 name=$4
    if [[ -n "$options" ]]; then
        qemu-img convert -f raw -O "$format" -o "$options" "$build/$source" "$tmp/$name"
    else
        qemu-img convert -f raw -O "$format" "$build/$source" "$tmp/$name"
    fi
}

force=""
if qemu-img create -f vpc -o help 2>/dev/null | grep -q force_size; then
    force=",force_size=on"
fi

for base in debian-gpt split-gpt; do
    convert vpc subformat=fixed "$base.img" "$base-fixed.vhd"
    convert vpc subformat=dynamic "$base.img" "$base-dynamic.vhd"
    convert vpc "subformat=dynamic$force" "$base.img" "$base-force.vhd"
    convert vhdx "" "$base.img" "$base-dynamic.vhdx"
    convert vhdx subformat=fixed "$base.img" "$base-fixed.vhdx"
    convert vhdx block_size=1M "$base.img" "$base-1m.vhdx"
done

qemu-img create -q -f vhdx -o block_size=1M "$tmp/interleave.vhdx" 5G
qemu-io -f vhdx \
    -c 'write -P 0x11 0 64k' \
    -c 'write -P 0x22 4294963200 8k' \
    -c 'write -P 0x33 4296015872 1M' \
    -c 'write -P 0x44 5368708608 512' \
    "$tmp/interleave.vhdx" >/dev/null

for image in "$tmp"/*.vhd "$tmp"/*.vhdx; do
    name="$(basename "$image")"
    format=vhdx
    [[ "$name" == *.vhd ]] && format=vpc
    qemu-img convert -f "$format" -O raw "$image" "$tmp/raw/$name.raw"
done

rm -rf "$out"
mv "$tmp" "$out"
echo "$want" >"$out/.complete.new"
mv "$out/.complete.new" "$stamp"
trap - EXIT
echo "build-vhd.sh: built $(find "$out" -maxdepth 1 -name '*.vhd*' | wc -l) images in $((SECONDS - started)) s" >&2
