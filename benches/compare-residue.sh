#!/usr/bin/env bash
# Scripted comparison for docs/performance.md (residue): what `scan --residue` costs, and
# how fast the residue pass reads free space against plain sequential reads of the same
# byte ranges. Two images, both from benches/make-secrets-image.sh:
#   secrets.img   as mkfs.ext4 -d made it: the free space is all zeros (a clean build);
#   residue.img   the same after a loop mount and `rm -rf` of usr/share, usr/lib/gcc and
#                 usr/lib/libreoffice (about 700 MB): the free space holds what they held.
# For each image, median wall time and peak RSS of
#   (a) the scan without residue (--no-residue: 0.4.0's default scan);
#   (b) the default scan (residue included);
#   (c) `--select 'residue.*'`, and (d) the same with --no-residue (open and walk
#       alone): (c) minus (d) is the residue pass;
#   (e) reading the free ranges dumpe2fs lists, in order, with 8 MiB preads (python), and
#   (f) `cat` of the whole image: the sequential-read baselines.
# Warm page cache, in one session. Building residue.img needs root (loop mount).
# Usage: benches/compare-residue.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bash benches/make-secrets-image.sh target/bench-images >/dev/null
cargo build --release --quiet
bin=target/release/amiscan
dir=target/bench-images
if [ ! -f "$dir/residue.img" ]; then
  mnt=$(mktemp -d)
  cp --sparse=always "$dir/secrets.img" "$dir/residue.img.tmp"
  mount -o loop "$dir/residue.img.tmp" "$mnt"
  rm -rf "$mnt/usr/share" "$mnt/usr/lib/gcc" "$mnt/usr/lib/libreoffice"
  sync
  umount "$mnt"
  rmdir "$mnt"
  mv "$dir/residue.img.tmp" "$dir/residue.img"
fi

median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }
rss=$(mktemp)
ranges=$(mktemp)
measure() { # label, command...
  local label=$1; shift
  "$@" >/dev/null 2>&1 || true # warm the cache
  local times=() mems=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f %M -o "$rss" "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
    mems+=("$(cat "$rss")")
  done
  printf '%-58s %8.3f s %8s MB\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | median)" \
    "$(( $(printf '%s\n' "${mems[@]}" | median | cut -d. -f1) / 1024 ))"
}

reader=$(mktemp --suffix=.py)
trap 'rm -f "$rss" "$ranges" "$reader"' EXIT
cat >"$reader" <<'EOF'
# Reads the byte ranges listed in argv[2] (start end per line) of argv[1], in order.
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
total = 0
for line in open(sys.argv[2]):
    start, end = map(int, line.split())
    while start < end:
        n = min(8 << 20, end - start)
        total += len(os.pread(fd, n, start))
        start += n
print(total)
EOF

free_ranges() { # image → ranges file
  dumpe2fs "$1" 2>/dev/null | python3 -c '
import re, sys
block = None
for line in sys.stdin:
    if line.startswith("Block size:"):
        block = int(line.split()[-1])
    m = re.match(r"\s+Free blocks: (.*)", line)
    if m and m.group(1).strip():
        for part in m.group(1).split(","):
            a, _, b = part.strip().partition("-")
            b = b or a
            print(int(a) * block, (int(b) + 1) * block)
' >"$ranges"
}

for image in secrets residue; do
  img="$dir/$image.img"
  free_ranges "$img"
  echo "== $image.img: $(awk '{s += $2 - $1} END {printf "%.0f", s / 1048576}' "$ranges") MiB free in $(wc -l <"$ranges") ranges"
  $bin inspect "$img" | grep -i unallocated || true
  measure "(a) scan --no-residue" $bin scan --no-residue --fail-on never "$img"
  measure "(b) scan (default, with residue)" $bin scan --fail-on never "$img"
  measure "(c) scan --select 'residue.*'" $bin scan --select 'residue.*' --fail-on never "$img"
  measure "(d) scan --select 'residue.*' --no-residue (walk only)" $bin scan --select 'residue.*' --no-residue --fail-on never "$img"
  measure "(e) read the free ranges (8 MiB preads)" python3 "$reader" "$img" "$ranges"
  measure "(f) cat the whole image" cat "$img"
  measure "(g) inspect (measures the free space)" $bin inspect "$img"
done
