#!/usr/bin/env bash
# Builds the precision corpus of the credential rules: the packages of the secrets
# benchmark (benches/secrets-packages.sh) plus base-files and a Java runtime, unpacked into
# a root tree that is sealed the way a publisher seals an image (no keys, no histories, no
# logs) and that carries dpkg's database as installing them would leave it: a status entry
# per package with its conffiles and their digests, and each package's md5sums. A default
# `amiscan scan` of it must report no gating credential finding; what it does report are
# notes on package-shipped files (test keys, documentation examples).
#   target/bench-images/packaged-tree/   the root tree
#   target/bench-images/packaged.img     the same tree in an ext4 filesystem
# Needs apt-get (Debian 12's archive), dpkg-deb and mkfs.ext4; not root.
# Usage: benches/make-packaged-image.sh [OUTDIR]   (default target/bench-images)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-target/bench-images}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -f "$out/packaged.img" ] && [ -d "$out/packaged-tree" ] && exit 0

source "$here/secrets-packages.sh"
packages+=(base-files openjdk-17-jre-headless)
debs="$out/packaged-debs"
mkdir -p "$debs"
(cd "$debs" && apt-get download "${packages[@]}" >/dev/null 2>&1)

tree="$out/packaged-tree"
rm -rf "$tree" "$out/packaged.img"
mkdir -p "$tree/var/lib/dpkg/info" "$tree/etc" "$tree/root" "$tree/home" "$tree/tmp"
status="$tree/var/lib/dpkg/status"
: > "$status"
for deb in "$debs"/*.deb; do
  dpkg-deb -x "$deb" "$tree"
  package=$(dpkg-deb -f "$deb" Package)
  control=$(mktemp -d)
  dpkg-deb -e "$deb" "$control"
  [ -f "$control/md5sums" ] && cp "$control/md5sums" "$tree/var/lib/dpkg/info/$package.md5sums"
  {
    dpkg-deb -f "$deb" Package Version Architecture Maintainer Description | sed '/^Description:/,$d'
    echo "Status: install ok installed"
    if [ -s "$control/conffiles" ]; then
      echo "Conffiles:"
      while read -r conffile; do
        [ -f "$tree$conffile" ] || continue
        echo " $conffile $(md5sum < "$tree$conffile" | cut -d' ' -f1)"
      done < "$control/conffiles"
    fi
    echo
  } >> "$status"
  rm -rf "$control"
done
# What a sealed image keeps of its own: accounts without passwords, a mount table by label.
cat > "$tree/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
EOF
cat > "$tree/etc/shadow" <<'EOF'
root:*:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
EOF
chmod 640 "$tree/etc/shadow"
printf 'root:x:0:\ndaemon:x:1:\n' > "$tree/etc/group"
echo "LABEL=root / ext4 defaults 0 1" > "$tree/etc/fstab"
# openssh-server's sshd_config is written by its postinst, which unpacking does not run.
mkdir -p "$tree/etc/ssh"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n' > "$tree/etc/ssh/sshd_config"
: > "$tree/etc/machine-id"
bytes=$(du -sb "$tree" | cut -f1)
files=$(find "$tree" -type f | wc -l)
size_mb=$(( bytes / 1000000 * 13 / 10 + 256 ))
mkfs.ext4 -q -F -L root -N $(( files + files / 4 + 10000 )) -d "$tree" "$out/packaged.img" "${size_mb}M"
echo "built $out/packaged.img: $files files, $bytes bytes, from $(ls "$debs" | wc -l) packages"
