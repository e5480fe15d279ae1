#!/usr/bin/env bash
# Scripted comparison for docs/performance.md: median wall time of amiscan's metadata walk
# and `files --hash sha256` at 1 and 2 threads, against sha256sum over the same files
# extracted to a directory, all in one session with a warm page cache.
# Usage: benches/compare.sh [RUNS]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
bash benches/make-walk-image.sh target/bench-images >/dev/null
cargo build --release --quiet
bin=target/release/amiscan
img=target/bench-images/walk.img
tree=target/bench-images/walk-tree

median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }
measure() { # label, command...
  local label=$1; shift
  "$@" >/dev/null 2>&1 # warm the cache
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N)
    times+=("$(( (end - start) / 1000 ))")
  done
  local us
  us=$(printf '%s\n' "${times[@]}" | median)
  awk -v l="$label" -v us="$us" -v n="$runs" 'BEGIN {printf "%-36s median %.3f s over %d runs\n", l, us / 1e6, n}'
}
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$tree" -type f | wc -l)
echo "tree: $files files, $bytes bytes; $(nproc) cores"
measure "walk metadata, 1 thread" $bin files "$img" --threads 1
measure "walk metadata, 2 threads" $bin files "$img" --threads 2
measure "files --hash sha256, 1 thread" $bin files "$img" --hash sha256 --threads 1
measure "files --hash sha256, 2 threads" $bin files "$img" --hash sha256 --threads 2
measure "sha256sum over the extracted tree" sh -c "cd $tree && find . -type f -print0 | xargs -0 sha256sum"
measure "sha256sum, 2 processes (xargs -P2)" sh -c "cd $tree && find . -type f -print0 | xargs -0 -P2 -n 5000 sha256sum"
measure "cat of the extracted tree (read only)" sh -c "cd $tree && find . -type f -print0 | xargs -0 cat"
