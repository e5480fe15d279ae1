#!/usr/bin/env bash
# Scripted comparison for docs/performance.md (XFS): median wall time of `files` and
# `files --hash sha256` over the same 100 000-file tree on XFS and on ext4, in one session
# with a warm page cache, and (as root, where loop devices exist) the kernel's own view of
# the XFS image through a read-only loop mount: `find -printf` for metadata and
# `find | xargs sha256sum` for contents.
# Usage: benches/compare-xfs.sh [RUNS]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
bash benches/make-walk-image.sh target/bench-images >/dev/null
cargo build --release --quiet
bin=target/release/amiscan
ext4=target/bench-images/walk.img
xfs=target/bench-images/walk-xfs.img

median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }
declare -A result
measure() { # key, label, command...
  local key=$1 label=$2; shift 2
  "$@" >/dev/null 2>&1 # warm the cache
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N)
    times+=("$(( (end - start) / 1000 ))")
  done
  result[$key]=$(printf '%s\n' "${times[@]}" | median)
  awk -v l="$label" -v us="${result[$key]}" -v n="$runs" 'BEGIN {printf "%-44s median %.3f s over %d runs\n", l, us / 1e6, n}'
}
ratio() { awk -v a="${result[$1]}" -v b="${result[$2]}" -v l="$3" 'BEGIN {printf "%-44s %.2fx\n", l, a / b}'; }

echo "$(nproc) cores; $(find target/bench-images/walk-tree -type f | wc -l) files"
for threads in 1 2; do
  measure "ext4-meta-$threads" "ext4 files, $threads thread(s)" $bin files "$ext4" --threads "$threads"
  measure "xfs-meta-$threads" "xfs files, $threads thread(s)" $bin files "$xfs" --threads "$threads"
  measure "ext4-hash-$threads" "ext4 files --hash sha256, $threads thread(s)" $bin files "$ext4" --hash sha256 --threads "$threads"
  measure "xfs-hash-$threads" "xfs files --hash sha256, $threads thread(s)" $bin files "$xfs" --hash sha256 --threads "$threads"
  ratio "xfs-meta-$threads" "ext4-meta-$threads" "xfs / ext4, files, $threads thread(s)"
  ratio "xfs-hash-$threads" "ext4-hash-$threads" "xfs / ext4, --hash, $threads thread(s)"
done

if [ "$(id -u)" = 0 ] && mnt=$(mktemp -d) && mount -o loop,ro "$xfs" "$mnt" 2>/dev/null; then
  trap 'umount "$mnt"; rmdir "$mnt"' EXIT
  measure "kernel-meta" "kernel: find -printf over the loop mount" \
    find "$mnt" -printf '%p %m %U %G %s %T@\n'
  measure "kernel-hash" "kernel: find | xargs sha256sum (1 process)" \
    sh -c "cd $mnt && find . -type f -print0 | xargs -0 sha256sum"
  measure "kernel-hash-2" "kernel: find | xargs -P2 sha256sum" \
    sh -c "cd $mnt && find . -type f -print0 | xargs -0 -P2 -n 5000 sha256sum"
  ratio "xfs-meta-1" "kernel-meta" "amiscan xfs files (1 thread) / kernel find"
  ratio "xfs-hash-2" "kernel-hash-2" "amiscan xfs --hash (2 threads) / kernel -P2"
else
  echo "kernel comparison skipped: needs root and a loop device"
fi
