#!/usr/bin/env bash
# Scripted comparison for docs/performance.md (secret scanning): over every regular file of
# the Debian package tree built by benches/make-secrets-image.sh, median wall time and peak
# RSS of
#   (a) the secret engine (sample detectors, 64 MiB per-file cap, gzip/xz/zstd decoded),
#       walking the extracted directory with rayon (the `tree scan` mode of the secrets
#       bench binary);
#   (b) reading every file to the end with the same walk and no matching (`tree read`);
#   (c) grep -rEc with the same regexes as one alternation (LC_ALL=C), and grep -rEcI,
#       which skips binary files as the engine does (grep decodes no compressed file);
#   (d) `amiscan scan secrets.img --select creds.*` when the binary has those rules;
# all in one session with a warm page cache.
# Usage: benches/compare-secrets.sh [RUNS] [THREADS]   (defaults 5, all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
threads=${2:-}
bash benches/make-secrets-image.sh target/bench-images >/dev/null
cargo build --release --quiet
bench=$(cargo bench --bench secrets --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "secrets" and m.get("executable"):
        print(m["executable"])')
tree=target/bench-images/secrets-tree
img=target/bench-images/secrets.img

# The sample detectors (src/secrets/detectors.rs) in POSIX ERE: no (?:), no (?i:) (the
# key names are spelled with bracket classes), and multi-line parts dropped (grep works
# on lines, and the engine reports PEM and PuTTY keys by their first line too).
ci() { python3 -c 'import sys; print("".join("[%s%s]" % (c.upper(), c.lower()) if c.isalpha() else c for c in sys.argv[1]))' "$1"; }
aws_secret_name="($(ci aws)_?$(ci secret)_?($(ci access)_?)?$(ci key)|$(ci secret)_?$(ci access)_?$(ci key))"
patterns=(
  '\b(A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b'
  "${aws_secret_name}[\"']?[ 	]*(=>|:=|[:=])[ 	]*[\"']?[A-Za-z0-9/+]{40}([^A-Za-z0-9/+=]|\$)"
  '-----BEGIN (RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----'
  'PuTTY-User-Key-File-[23]: [A-Za-z0-9@.-]+'
  '\bgh[pousr]_[A-Za-z0-9]{36}\b'
  '\bgithub_pat_[A-Za-z0-9_]{82}\b'
  '\bglpat-[A-Za-z0-9_-]{20,}([^A-Za-z0-9_-]|$)'
  '\bxox[baprs]-[0-9]{6,15}-[0-9A-Za-z][0-9A-Za-z-]{8,250}[0-9A-Za-z]'
  '\b(sk|rk)_live_[0-9A-Za-z]{24,247}\b'
  '\bAIza[0-9A-Za-z_-]{35}([^0-9A-Za-z_-]|$)'
  '\bSG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43}([^0-9A-Za-z_-]|$)'
  '\bnpm_[A-Za-z0-9]{36}\b'
  'pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}'
  '\bhv[sb]\.[A-Za-z0-9_-]{24,}([^A-Za-z0-9_-]|$)'
  'AccountKey=[A-Za-z0-9+/]{86}=='
  '\bSK[0-9a-fA-F]{32}\b'
  '"private_key_id"[ 	]*:[ 	]*"[0-9a-f]{40}"'
)
alternation=$(IFS='|'; echo "${patterns[*]}")

median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }
rss=$(mktemp)
trap 'rm -f "$rss"' EXIT
measure() { # label, command...
  local label=$1; shift
  "$@" >/dev/null 2>&1 || true # warm the cache
  local times=() peak=0
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f %M -o "$rss" "$@" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000 ))")
    local kb; kb=$(tail -1 "$rss")
    (( kb > peak )) && peak=$kb
  done
  local us
  us=$(printf '%s\n' "${times[@]}" | median)
  awk -v l="$label" -v us="$us" -v n="$runs" -v kb="$peak" -v b="$bytes" \
    'BEGIN {printf "%-46s median %7.3f s over %d runs  %6.0f MB/s  peak RSS %4.0f MB\n", l, us / 1e6, n, b / us, kb / 1024}'
}
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$tree" -type f | wc -l)
echo "tree: $files files, $bytes bytes; $(nproc) cores; threads ${threads:-all}"
"$bench" tree scan "$tree" $threads # hit counts per detector, once
export RAYON_NUM_THREADS=${threads:-$(nproc)}
measure "(a) engine: scan every file" "$bench" tree scan "$tree" $threads
measure "(b) same walk, read only" "$bench" tree read "$tree" $threads
measure "(c) LC_ALL=C grep -rEc (one alternation)" env LC_ALL=C grep -rEc -e "$alternation" "$tree"
measure "(c') LC_ALL=C grep -rEcI (binary files skipped)" env LC_ALL=C grep -rEcI -e "$alternation" "$tree"
if target/release/amiscan rules list 2>/dev/null | grep -q '^creds\.' ||
   target/release/amiscan scan --select 'creds.*' --format json --fail-on never "$img" >/dev/null 2>&1; then
  measure "(d) amiscan scan secrets.img --select creds.*" target/release/amiscan scan --select 'creds.*' --format json --fail-on never "$img"
else
  echo "(d) amiscan scan --select creds.*: not available in this build"
fi
