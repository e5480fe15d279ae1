#!/usr/bin/env bash
# What the CI formats and several images per run cost: the default scan of the 100 000-file
# benchmark image with the JSON report alone, with every rendering written at once
# (table, JSON, JSON Lines, Markdown, SARIF, JUnit), with a waiver file and a baseline, and
# two images in one run against two runs. Medians of five runs; figures go to
# docs/performance.md. Usage: benches/formats.sh
set -euo pipefail
cd "$(dirname "$0")/.."
benches/make-walk-image.sh target/bench-images >/dev/null
cargo build --release -q
bin=$PWD/target/release/amiscan
work=$(mktemp -d)
tmp=$(mktemp)
trap 'rm -rf "$work" "$tmp"' EXIT
cp target/bench-images/walk.img "$work/a.img"
cp target/bench-images/walk.img "$work/b.img"
cd "$work"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_runs() {
    for _ in 1 2 3 4 5; do
        /usr/bin/time -f "%e %M" "$@" >/dev/null 2>>"$tmp" || true
    done
    # /usr/bin/time appends its line last; amiscan's own stderr lines come before it.
    echo "$(grep -E '^[0-9.]+ [0-9]+$' "$tmp" | awk '{print $1}' | median) s, peak RSS $(grep -E '^[0-9.]+ [0-9]+$' "$tmp" | awk '{print $2}' | median) KB"
    : >"$tmp"
}

"$bin" scan a.img --format json --no-default-waivers >baseline.json || true
cat >waivers.yaml <<'YAML'
waivers:
  - rule: cleanup.tmp
    reason: benchmark
  - rule: history.shell
    paths: ["/home/**"]
    reason: benchmark
YAML
echo "json only:             $(time_runs "$bin" scan a.img --format json --no-default-waivers)"
echo "all six renderings:    $(time_runs "$bin" scan a.img --format json --no-default-waivers \
    --output r.txt --output r.jsonl --output r.md --output r.sarif --output junit=r.xml)"
echo "waivers + baseline:    $(time_runs "$bin" scan a.img --format json --waivers waivers.yaml \
    --baseline baseline.json)"
echo "two images, one run:   $(time_runs "$bin" scan a.img b.img --format json --no-default-waivers)"
echo "two images, two runs:  $(time_runs sh -c "'$bin' scan a.img --format json --no-default-waivers; '$bin' scan b.img --format json --no-default-waivers")"
ls -l r.* baseline.json | awk '{print "  " $5 " bytes  " $9}'
