#!/usr/bin/env bash
# Median wall time of `qemu-img convert -O raw` (written to /dev/shm, or the target dir when
# there is no /dev/shm) for each benchmark container, to compare with the criterion
# figures of `cargo bench --bench containers` taken in the same session.
# Usage: benches/compare-containers.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bash benches/make-container-images.sh >/dev/null
scratch=/dev/shm
[ -d "$scratch" ] || scratch=target
median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for img in target/bench-images/containers/*; do
  times=()
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    qemu-img convert -O raw "$img" "$scratch/amiscan-bench.raw"
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000 ))")
    rm -f "$scratch/amiscan-bench.raw"
  done
  us=$(printf '%s\n' "${times[@]}" | median)
  size=$(qemu-img info --output=json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  awk -v n="$(basename "$img")" -v us="$us" -v s="$size" -v r="$runs" \
    'BEGIN {printf "%-24s qemu-img convert -O raw: median %.3f s (%.0f MiB/s) over %d runs\n", n, us/1e6, s/1048576/(us/1e6), r}'
done
