#!/usr/bin/env bash
# Converts the benchmark image (benches/make-walk-image.sh) into every container format
# with qemu-img, for benches/containers.rs and benches/compare-containers.sh.
# Usage: benches/make-container-images.sh [OUTDIR]   (default target/bench-images)
set -euo pipefail
out=${1:-target/bench-images}
bash "$(dirname "$0")/make-walk-image.sh" "$out" >/dev/null
dir="$out/containers"
mkdir -p "$dir"
src="$out/walk.img"
convert() { # name, qemu-img convert arguments...
  local name=$1; shift
  [ -f "$dir/$name" ] || qemu-img convert "$@" "$src" "$dir/$name"
}
ln -sfn ../walk.img "$dir/walk.raw"
convert walk.qcow2 -O qcow2
convert walk-deflate.qcow2 -O qcow2 -c
convert walk-zstd.qcow2 -O qcow2 -c -o compression_type=zstd
convert walk-stream.vmdk -O vmdk -o subformat=streamOptimized
convert walk-sparse.vmdk -O vmdk -o subformat=monolithicSparse
convert walk-dynamic.vhd -O vpc -o subformat=dynamic
convert walk.vhdx -O vhdx
ls -l "$dir"
