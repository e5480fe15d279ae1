#!/usr/bin/env bash
# Builds testdata/sample.img: a tiny GPT disk laid out like a cloud image, with a root
# filesystem and a separate /home joined through /etc/fstab, holding the kind of leftovers
# amiscan exists to find. The image is committed so the README's first command needs
# nothing but cargo; re-run this script (it needs e2fsprogs and gdisk) to rebuild it.
set -euo pipefail
# Fixed creation times and hash seeds keep rebuilds close to byte-identical.
export E2FSPROGS_FAKE_TIME=1793534400
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../sample.img}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root=$work/root home=$work/home
mkdir -p "$root"/{etc/ssh,root,tmp,var/log,home,boot,usr/sbin} "$home"/admin/.ssh
cat > "$root/etc/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
OS
cat > "$root/etc/fstab" <<'FSTAB'
# <file system> <mount point> <type> <options> <dump> <pass>
PARTUUID=6b1f3c2a-0c1d-4e5f-8a9b-0c1d2e3f4a5b / ext4 rw,discard,errors=remount-ro 0 1
LABEL=home /home ext4 defaults 0 2
FSTAB
echo "ip-10-0-12-34" > "$root/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\n' > "$root/etc/passwd"
printf 'root:*:19700:0:99999:7:::\nadmin:$6$salt$hash:19700:0:99999:7:::\n' > "$root/etc/shadow"
chmod 0640 "$root/etc/shadow"
printf 'Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nPasswordAuthentication yes\n' > "$root/etc/ssh/sshd_config"
# Stands in for the sshd binary: amiscan judges sshd's configuration when sshd is installed.
printf '#!/bin/sh\n# placeholder for OpenSSH sshd in this sample image\n' > "$root/usr/sbin/sshd"
chmod 0755 "$root/usr/sbin/sshd"
echo "0123456789abcdef0123456789abcdef" > "$root/etc/machine-id"
printf 'sudo apt-get update\naws configure\n' > "$root/root/.bash_history"
ln -s ../usr/lib/os-release "$root/etc/os-release-link"
printf 'Nov 22 10:00:00 ip-10-0-12-34 sshd[1]: Server listening on 0.0.0.0 port 22.\n' > "$root/var/log/auth.log"
printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample builder@ci\n' > "$home/admin/.ssh/authorized_keys"
chmod 0700 "$home/admin/.ssh"
printf 'ls\ncat /etc/shadow\n' > "$home/admin/.bash_history"
# Credentials in the shapes the real ones have (an AWS key pair, a GitHub token whose
# checksum is right, an Ed25519 key made by `openssl genpkey`), made up for this sample:
# they open no account anywhere. The scan reports each with a fingerprint, never the value.
mkdir -p "$root/root/.aws" "$root/etc/ssl/private" "$home/admin/.config/gh"
cat > "$root/root/.aws/credentials" <<'AWS'
[default]
aws_access_key_id = AKIAZ2VOVGCMRUMYF63F
aws_secret_access_key = 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
AWS
chmod 0600 "$root/root/.aws/credentials"
cat > "$root/etc/ssl/private/app.key" <<'KEY'
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEILckcCwkrrpyl/fSt2z0MDchANNO1JAWSX9xK2rrtx+1
-----END PRIVATE KEY-----
KEY
chmod 0600 "$root/etc/ssl/private/app.key"
cat > "$home/admin/.config/gh/hosts.yml" <<'GH'
github.com:
    user: admin
    oauth_token: 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
    git_protocol: https
GH
if [ "$(id -u)" = 0 ]; then chown -R 1000:1000 "$home/admin"; fi
# SAMPLE_FIX=SCRIPT: run a clean-up script written by `amiscan scan --remediation-script`
# on the trees before the image is made, as a publisher runs it before capture (the test
# that the script leaves an image that scans clean). /home is its own filesystem, so it
# joins the root tree while the script runs.
if [ -n "${SAMPLE_FIX:-}" ]; then
  find "$home" -mindepth 1 -maxdepth 1 -exec mv {} "$root/home/" \;
  AMISCAN_ROOT="$root" sh "$SAMPLE_FIX"
  find "$root/home" -mindepth 1 -maxdepth 1 -exec mv {} "$home/" \;
fi
find "$root" "$home" -depth -exec touch -h -d '2026-11-01 12:00:00' {} +

mkfs.ext4 -q -F -b 1024 -L rootfs -U 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0 -N 64 -O ^has_journal -E hash_seed=5e1f0c3a-2b4d-4e6f-8a9b-0c1d2e3f4a5b \
  -E root_owner=0:0 -d "$root" "$work/root.fs" 384K
mkfs.ext4 -q -F -b 1024 -L home -U 1a2b3c4d-5e6f-4071-8293-a4b5c6d7e8f9 -N 32 -O ^has_journal -E hash_seed=5e1f0c3a-2b4d-4e6f-8a9b-0c1d2e3f4a5b \
  -E root_owner=0:0 -d "$home" "$work/home.fs" 128K

rm -f "$out"
truncate -s 600K "$out"
sgdisk -a 1 -n 1:64:831 -c 1:rootfs -u 1:6b1f3c2a-0c1d-4e5f-8a9b-0c1d2e3f4a5b -t 1:8300 \
  -n 2:832:1087 -c 2:home -t 2:8300 -U 9d8c7b6a-5f4e-4d3c-8b2a-190817263544 "$out" >/dev/null
dd if="$work/root.fs" of="$out" bs=512 seek=64 conv=notrunc status=none
dd if="$work/home.fs" of="$out" bs=512 seek=832 conv=notrunc status=none
echo "wrote $out ($(stat -c %s "$out") bytes)"
