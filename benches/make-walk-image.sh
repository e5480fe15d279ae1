#!/usr/bin/env bash
# Builds the benchmark images: a bare ext4 filesystem (walk.img) and a bare XFS filesystem
# (walk-xfs.img, mkfs.xfs defaults, populated with -p: no mount) holding the same 100 000
# regular files in 100 directories (sizes 0..8 KiB, deterministic pseudo-random contents,
# about 400 MiB), plus the tree itself as a directory for the sha256sum comparison.
# Usage: benches/make-walk-image.sh [OUTDIR]   (default target/bench-images)
set -euo pipefail
out=${1:-target/bench-images}
mkdir -p "$out"
export PATH="$PATH:/usr/sbin:/sbin"
[ -f "$out/walk.img" ] && [ -f "$out/walk-xfs.img" ] && [ -d "$out/walk-tree" ] && exit 0
rm -rf "$out/walk-tree" "$out/walk.img" "$out/walk-xfs.img"
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
# The proto file lists the tree (directories and regular files only) in mkfs.xfs -p syntax.
(
  cd "$out/walk-tree"
  printf 'walk\n0 0\nd--755 0 0\n'
  for dir in dir*; do
    printf ' %s d--755 0 0\n' "$dir"
    for file in "$dir"/*; do printf '  %s ---644 0 0 %s\n' "${file#*/}" "$PWD/$file"; done
    printf ' $\n'
  done
  printf '$\n'
) > "$out/walk-xfs.proto"
truncate -s 1G "$out/walk-xfs.img"
mkfs.xfs -q -f -p "$out/walk-xfs.proto" "$out/walk-xfs.img"
rm -f "$out/walk-xfs.proto"
echo "built $out/walk.img and $out/walk-xfs.img"
