#!/usr/bin/env bash
# Times the default `amiscan scan` against the walk alone (`amiscan files`) on the
# 100 000-file benchmark image, and on the sealed Debian image when it has been built
# (testdata/build-sealed-debian.sh). Medians of five runs; figures go to
# docs/performance.md. Usage: benches/scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
benches/make-walk-image.sh target/bench-images >/dev/null
cargo build --release -q
bin=target/release/amiscan

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_runs() {
    for _ in 1 2 3 4 5; do
        /usr/bin/time -f "%e %M" "$@" >/dev/null 2>>"$tmp" || true
    done
    echo "$(awk '{print $1}' "$tmp" | median) s, peak RSS $(awk '{print $2}' "$tmp" | median) KB"
    : >"$tmp"
}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

for image in target/bench-images/walk.img testdata/build/sealed-debian/sealed-debian.img; do
    [ -f "$image" ] || continue
    echo "$image"
    echo "  scan --format json: $(time_runs "$bin" scan "$image" --format json)"
    echo "  files (walk only):  $(time_runs "$bin" files "$image")"
done
