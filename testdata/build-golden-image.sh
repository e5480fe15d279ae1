#!/usr/bin/env bash
# Builds the small image tests/golden.rs renders in every report format, into
# testdata/build/golden/ (git-ignored):
#
#   golden/golden.img   a bare ext4 filesystem (no partition table; UUID $GOLDEN_UUID)
#                       holding a tiny Debian 12 guest whose scan, with the rules and the
#                       waivers tests/golden/waivers.yaml selects, gives every kind of
#                       result: failing rules (above and below --fail-on), passing ones, a
#                       fully waived rule, a partly waived one, one whose waiver expired,
#                       a skipped rule (no package database) and an `error` (its /etc/fstab
#                       mounts /var/log from a volume the image does not hold).
#   golden/tree         the tree the image was made from.
#
# Every byte that reaches a report is fixed here (UUID, label, sizes, file contents), so
# the golden files compare exactly. Runs once per version of this script (stamp:
# golden/.complete); callers serialise runs with
# `flock testdata/build/.lock-golden bash testdata/build-golden-image.sh`.
#
# Needs: mke2fs (e2fsprogs).
set -euo pipefail
export LC_ALL=C TZ=UTC
export PATH="$PATH:/usr/sbin:/sbin"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
out="$build/golden"
stamp="$out/.complete"

mkdir -p "$build"
# build-images.sh clears testdata/build/ when it rebuilds: let it run first.
flock "$build/.lock" bash "$here/build-images.sh"

want="$(sha256sum "$script" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

GOLDEN_UUID=6a0c3f51-8d2e-4b7a-9c15-0e4f2d6b8a31
MISSING_UUID=00000000-dead-4bad-8bad-000000000001

rm -rf "$build"/.tmp-golden.*
tmp="$(mktemp -d "$build/.tmp-golden.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
t="$tmp/tree"
mkdir -p "$t"/{etc/ssh,root,home/admin,tmp,var/log,var/lib}
chmod 1777 "$t/tmp"
chmod 700 "$t/root"

cat >"$t/etc/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
OS
cat >"$t/etc/fstab" <<FSTAB
UUID=$GOLDEN_UUID / ext4 defaults 0 1
UUID=$MISSING_UUID /var/log ext4 defaults 0 2
FSTAB
cat >"$t/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/bash
admin:x:1000:1000:Admin:/home/admin:/bin/bash
PW
# admin's hash is a made-up sha512crypt string, not any real password's.
cat >"$t/etc/shadow" <<'SH'
root:*:20000:0:99999:7:::
admin:$6$goldensalt$Qm9vYmFyYmF6cXV4Cg.notarealhashnotarealhashnotarealhashnotarealhashnotarealhash0:20000:0:99999:7:::
SH
chmod 640 "$t/etc/shadow"
cat >"$t/etc/ssh/sshd_config" <<'SSHD'
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
SSHD
printf 'placeholder host key material\n' >"$t/etc/ssh/ssh_host_ed25519_key"
chmod 600 "$t/etc/ssh/ssh_host_ed25519_key"
printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoldenGoldenGoldenGoldenGoldenGoldenGold0 build@host\n' \
    >"$t/etc/ssh/ssh_host_ed25519_key.pub"
printf '0123456789abcdef0123456789abcdef\n' >"$t/etc/machine-id"
printf 'sudo apt-get update\n' >"$t/root/.bash_history"
printf 'ls\n' >"$t/home/admin/.bash_history"
printf 'scratch\n' >"$t/tmp/build-scratch.txt"

rm -rf "$out"
mkdir -p "$out"
mke2fs -q -F -t ext4 -b 1024 -L golden -U "$GOLDEN_UUID" -E root_owner=0:0 -d "$t" \
    "$tmp/golden.img" 2M
mv "$tmp/golden.img" "$out/golden.img"
cp -a "$t" "$out/tree"
echo "$want" >"$out/.complete.new"
mv "$out/.complete.new" "$stamp"
