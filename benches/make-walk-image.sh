#!/usr/bin/env bash
# Builds the benchmark image: a bare ext4 filesystem holding 100 000 regular files in
# 100 directories (sizes 0..8 KiB, deterministic pseudo-random contents, about 400 MiB),
# plus the same tree as a directory for the sha256sum comparison.
# Usage: benches/make-walk-image.sh [OUTDIR]   (default target/bench-images)
set -euo pipefail
out=${1:-target/bench-images}
mkdir -p "$out"
[ -f "$out/walk.img" ] && [ -d "$out/walk-tree" ] && exit 0
rm -rf "$out/walk-tree" "$out/walk.img"
python3 - "$out/walk-tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(20261122)
pool = rng.randbytes(1 << 20)
for d in range(100):
    dir_path = os.path.join(root, f"dir{d:03}")
    os.makedirs(dir_path)
    for f in range(1000):
        size = rng.randrange(0, 8192)
        start = rng.randrange(0, len(pool) - size)
        with open(os.path.join(dir_path, f"file{f:04}.dat"), "wb") as fh:
            fh.write(pool[start:start + size])
PY
mkfs.ext4 -q -F -N 110000 -d "$out/walk-tree" "$out/walk.img" 1G
echo "built $out/walk.img"
