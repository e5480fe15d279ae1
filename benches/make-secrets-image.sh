#!/usr/bin/env bash
# Builds the secret-scanning benchmark corpus from real Debian packages: the contents of a
# typical server's packages plus text-heavy ones (kernel and its modules, firmware, Python
# with its test suite, Perl, GCC and the C++ headers, Go's standard library sources, TeX
# Live, LibreOffice, documentation with gzip-compressed changelogs), about 1.5 GB in
# 50 000+ files. The packages are only unpacked (dpkg-deb -x), never installed.
#   target/bench-images/secrets-tree/   the files, for the grep and read-only comparisons
#   target/bench-images/secrets.img     the same tree in an ext4 filesystem (mkfs.ext4 -d)
# Needs apt-get (Debian or Ubuntu with the usual archive), dpkg-deb and mkfs.ext4.
# Usage: benches/make-secrets-image.sh [OUTDIR]   (default target/bench-images)
set -euo pipefail
out=${1:-target/bench-images}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -f "$out/secrets.img" ] && [ -d "$out/secrets-tree" ] && exit 0

# The package list, shared with make-packaged-image.sh.
source "$(dirname "$0")/secrets-packages.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${packages[@]}" >/dev/null)
rm -rf "$out/secrets-tree" "$out/secrets.img"
mkdir -p "$out/secrets-tree"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$out/secrets-tree"
done
bytes=$(du -sb "$out/secrets-tree" | cut -f1)
files=$(find "$out/secrets-tree" -type f | wc -l)
# Room for the data plus metadata, and enough inodes.
size_mb=$(( bytes / 1000000 * 13 / 10 + 256 ))
mkfs.ext4 -q -F -N $(( files + files / 4 + 10000 )) -d "$out/secrets-tree" "$out/secrets.img" "${size_mb}M"
echo "built $out/secrets.img: $files files, $bytes bytes, from ${#packages[@]} packages"
