#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) cloud-style disk image from a real Debian root file system,
# twice: once sealed the way a careful publisher seals an AMI, once not, into
# testdata/build/sealed-debian/ (git-ignored). tests/sealed_debian.rs scans both; its
# tests are #[ignore]d because this script needs root and Debian's package mirror.
#
#   sealed-debian.img    GPT laid out like Debian's cloud images: p14 BIOS boot (EF02,
#                        3 MiB at sector 2048, no filesystem), p15 EFI system partition
#                        (EF00, 124 MiB, vfat), p1 ext4 root (the rest of 2 GiB, made with
#                        mkfs.ext4 -d from tree/). /etc/fstab mounts / by UUID=$SEALED_ROOT_UUID
#                        and /boot/efi by UUID=$ESP_UUID (the vfat serial).
#   unsealed-debian.img  the same layout (root UUID $UNSEALED_ROOT_UUID) from the same
#                        debootstrap run, not sealed: SSH host keys (ssh-keygen -A in the
#                        tree), a planted /root/.bash_history, the build host's /etc/hostname
#                        and /etc/resolv.conf, a populated /etc/machine-id, debootstrap's
#                        logs and its apt caches
#   tree/                the sealed root tree the sealed image was made from
#   manifest.txt         its packages: dpkg-query --admindir=tree/var/lib/dpkg -W
#   build-info.txt       what was asked of debootstrap, how long each step took, sizes
#   sealing-changes.txt  paths only in the unsealed tree, only in the sealed one, and in
#                        both with a different size (what sealing did, as a diff of listings)
#   leftovers.txt        what a strict auditor could still point at in the sealed tree
#                        (see the end of this script), so rules can be checked against it
#
# Neither image boots: no kernel, initramfs or boot loader is installed (the BIOS boot
# partition is zeros and the ESP holds only a grub.cfg stub). Everything an auditor reads is
# real: the packages' files, their postinst output, dpkg's database.
#
# Runs once: when testdata/build/sealed-debian/.complete holds the sha256 of this script,
# it exits at once (the mirror moves on, but the images are only rebuilt when this script
# changes or the directory is removed). Otherwise it builds everything in a temporary
# directory inside sealed-debian/, moves the results into place and writes the stamp last,
# so an interrupted build leaves no stamp and is simply redone. It serialises itself with
# flock on testdata/build/.lock-sealed-debian-build; the tests call it, like the other
# builders, under `flock testdata/build/.lock-sealed-debian` (a different file, taken
# first, so the two never deadlock). Downloaded packages are kept in sealed-debian/.cache/
# across rebuilds. Note that build-images.sh, when it rebuilds, clears all of
# testdata/build/, this directory included.
#
# Needs: root (debootstrap, chroot, files owned by other users), the Debian mirror
# (deb.debian.org), debootstrap (installed with apt-get when missing), mkfs.ext4, sgdisk,
# mkfs.vfat, mcopy.
set -euo pipefail
export LC_ALL=C TZ=UTC
# mkfs, debootstrap and partitioning tools live in sbin, which a normal user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
# mtools: do not refuse images whose geometry it finds unusual.
export MTOOLS_SKIP_CHECK=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
out="$build/sealed-debian"
stamp="$out/.complete"
want="$(sha256sum "$script" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    echo "build-sealed-debian.sh: needs root (debootstrap, chroot, file ownership)" >&2
    exit 1
fi

mkdir -p "$out"
exec 9>"$build/.lock-sealed-debian-build"
flock 9
# Another process may have finished the build while this one waited for the lock.
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    echo "build-sealed-debian.sh: installing debootstrap" >&2
    apt-get install -y debootstrap >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
fi
for tool in debootstrap chroot mkfs.ext4 mkfs.vfat mcopy sgdisk truncate dd sha256sum \
    dpkg-query findmnt flock; do
    command -v "$tool" >/dev/null || { echo "build-sealed-debian.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
cache="$out/.cache/debootstrap"
mkdir -p "$cache"

# Unmounts whatever is still mounted below a directory (debootstrap mounts /proc, /sys and
# sometimes /dev in its target, and leaves them behind when it fails), deepest first.
unmount_below() {
    local dir="$1" m
    { findmnt -rn -o TARGET | grep -F "$dir/" || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}
# Leftovers of an interrupted build (this script holds the lock).
for old in "$out"/.tmp.* "$out"/.old.*; do
    [[ -e "$old" ]] || continue
    unmount_below "$old"
    rm -rf --one-file-system "$old"
done
tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
chmod 755 "$tmp"
cleanup() {
    unmount_below "$tmp"
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

# Fixed identifiers, so the fstabs and the tests can name them.
SEALED_ROOT_UUID=5ea1ed00-deb1-4a12-8c0d-0123456789ab
UNSEALED_ROOT_UUID=0be11ed0-deb1-4a12-8c0d-0123456789ab
ESP_ID=5EA1ED15        # vfat volume serial; fstab spells it 5EA1-ED15
ESP_UUID="${ESP_ID:0:4}-${ESP_ID:4:4}"
DISK_GUID=5ea1ed00-0000-4000-8000-000000000d15
P1_GUID=5ea1ed00-0000-4000-8000-000000000001
P14_GUID=5ea1ed00-0000-4000-8000-000000000014
P15_GUID=5ea1ed00-0000-4000-8000-000000000015

# ---------------------------------------------------------------------------------------
# 1. debootstrap.
# ---------------------------------------------------------------------------------------
# The package set of Debian's bookworm cloud images, as far as it makes sense without a
# kernel: systemd as init, OpenSSH, sudo, cloud-init with netplan + systemd-networkd (and
# isc-dhcp-client, which cloud-init's ephemeral DHCP uses), chrony, unattended-upgrades,
# amazon-ec2-utils, cron, logrotate, rsyslog, and the usual small tools.
# python3-cffi-backend is named because debootstrap does not resolve virtual packages
# (python3-cryptography depends on python3-cffi-backend-api-min/-max, which it provides).
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
INCLUDE=systemd-sysv,udev,dbus,openssh-server,sudo,cloud-init,cloud-guest-utils,netplan.io
INCLUDE+=,isc-dhcp-client,ca-certificates,netbase,iproute2,iputils-ping,chrony
INCLUDE+=,unattended-upgrades,amazon-ec2-utils,cron,logrotate,rsyslog,apt-utils,less
INCLUDE+=,bash-completion,curl,wget,vim-tiny,procps,kmod,python3-cffi-backend

base="$tmp/base"
echo "build-sealed-debian.sh: debootstrap $SUITE from $MIRROR" >&2
t0=$SECONDS
if ! debootstrap --variant=minbase --include="$INCLUDE" --cache-dir="$cache" \
    "$SUITE" "$base" "$MIRROR" >"$tmp/debootstrap.out" 2>&1; then
    echo "build-sealed-debian.sh: debootstrap failed:" >&2
    tail -n 30 "$tmp/debootstrap.out" >&2
    if [[ -f "$base/debootstrap/debootstrap.log" ]]; then
        tail -n 30 "$base/debootstrap/debootstrap.log" >&2
    fi
    exit 1
fi
debootstrap_seconds=$((SECONDS - t0))
unmount_below "$base"

# ---------------------------------------------------------------------------------------
# 2. What both images share: what an installed disk has that debootstrap does not write.
# ---------------------------------------------------------------------------------------
# openssh-server's postinst generates the host keys; if it did not (it always has so
# far), generate them the same way, inside the tree.
chroot "$base" ssh-keygen -A >/dev/null
# /dev, /run, /proc and /sys are mount points (devtmpfs, tmpfs, proc, sysfs) on a running
# system and empty on its disk; debootstrap fills /dev with device nodes and /run with
# its own state. Nothing sealing-related: an installed system's disk never has them. Done
# to both trees just before the images are made (chroot steps may still want /dev).
empty_mount_points() {
    local dir
    for dir in dev run proc sys; do
        mkdir -p "$1/$dir"
        find "$1/$dir" -mindepth 1 -delete
    done
}
# The fstab Debian's cloud images have, by filesystem UUID rather than PARTUUID, and the
# ESP's mount point.
mkdir -p "$base/boot/efi"
write_fstab() {
    cat >"$1/etc/fstab" <<EOF
# /etc/fstab: static file system information.
UUID=$2 / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1
UUID=$ESP_UUID /boot/efi vfat defaults 0 0
EOF
}
# APT sources as the cloud images have them (debootstrap writes only the release itself).
cat >"$base/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://security.debian.org/debian-security $SUITE-security main
EOF

# ---------------------------------------------------------------------------------------
# 3. Sealing. The guidance each step satisfies:
#   [IB]  EC2 Image Builder's Linux post-build clean-up script ("Required post-build
#         housekeeping" in its security best practices): deletes the cloud-init state and
#         logs, the SSH host key pairs and authorized_keys, instance logs, temporary files,
#         SSM agent state and the build instance's identity files (/etc/hostname among them).
#   [SH]  EC2 User Guide, guidelines for shared and public Linux AMIs: disable password-based
#         remote logins for root, remove SSH host key pairs, install public-key credentials
#         at boot rather than in the image, leave no credentials, histories or other
#         sensitive data, lock or leave no usable passwords.
#   [MP]  AWS Marketplace AMI requirements: no default or root passwords, SSH password
#         authentication disabled, no authorized keys, host keys regenerated at first boot.
#   [ID]  Per-instance identity regenerated at first boot: machine-id(5) (an empty
#         /etc/machine-id makes systemd generate one and run first-boot units),
#         `cloud-init clean --logs --machine-id`, DHCP leases, random seed.
#   [HOST] Nothing of the build host: debootstrap copies the host's /etc/hostname and
#         /etc/resolv.conf into the target.
# ---------------------------------------------------------------------------------------
sealed="$tmp/tree"
cp -a "$base" "$sealed"
t0=$SECONDS

# [IB][SH][MP] SSH host key pairs: every instance must get its own. cloud-init's ssh
# module (and Debian's sshd-keygen, on images without it) generates new ones at first boot.
rm -f "$sealed"/etc/ssh/ssh_host_*

# [IB][SH][MP] No authorized keys anywhere: root's whole ~/.ssh, and any user's
# authorized_keys (cloud-init installs the launch key pair's public key at boot).
rm -rf "$sealed/root/.ssh"
find "$sealed/home" -mindepth 3 -maxdepth 3 -path '*/.ssh/authorized_keys*' -delete 2>/dev/null || true

# [ID] machine-id: truncated to empty, not removed (an absent file on a read-only /etc
# breaks boot; an empty one means "uninitialised": generated at first boot, first-boot
# semantics for systemd units). dbus's copy, when it is a regular file rather than the
# symlink to /etc/machine-id, goes (dbus falls back to /etc/machine-id).
: >"$sealed/etc/machine-id"
if [[ -f "$sealed/var/lib/dbus/machine-id" && ! -L "$sealed/var/lib/dbus/machine-id" ]]; then
    rm -f "$sealed/var/lib/dbus/machine-id"
fi
# [ID] systemd's random seed and credential secret are per-machine secrets.
rm -f "$sealed/var/lib/systemd/random-seed" "$sealed/var/lib/systemd/credential.secret"

# [SH][MP] Root's password locked (passwd -l: "!" before the hash field; debootstrap
# leaves "*", which is already unusable, and becomes "!*").
chroot "$sealed" passwd -l root >/dev/null

# [SH][MP] sshd: no password or keyboard-interactive logins, root only with a key, no empty
# passwords. sshd uses the first value it reads for each keyword, and Debian's
# sshd_config includes sshd_config.d/*.conf at its top, so 00- wins over anything later
# (cloud-init's 50-cloud-init.conf included).
mkdir -p "$sealed/etc/ssh/sshd_config.d"
cat >"$sealed/etc/ssh/sshd_config.d/00-hardening.conf" <<'EOF'
# Hardening for a public image: keys only, and root only with a key.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitEmptyPasswords no
EOF
chmod 644 "$sealed/etc/ssh/sshd_config.d/00-hardening.conf"

# [IB][ID] cloud-init state (instance data, semaphores, user data) and its logs, so that
# the next boot is a first boot (what `cloud-init clean --logs` does); and the sudoers
# file cloud-init writes for the build instance's default user.
rm -rf "$sealed"/var/lib/cloud/* "$sealed"/var/log/cloud-init*
rm -f "$sealed/etc/sudoers.d/90-cloud-init-users"

# [IB] SSM agent state and logs (registration, documents, logs of the build instance), in
# case an agent was installed.
rm -rf "$sealed"/var/lib/amazon/ssm/* "$sealed"/var/log/amazon/ssm/*

# [IB][SH] Logs: debootstrap's own log goes, rotated and compressed logs go, the journal's
# files go, and every other log file is truncated to empty (kept, with its owner and mode:
# wtmp, btmp, lastlog and friends are expected to exist). Directories stay.
rm -f "$sealed/var/log/bootstrap.log"
find "$sealed/var/log" -type f \( -name '*.[0-9]' -o -name '*.[0-9].log' -o -name '*.gz' \
    -o -name '*.xz' -o -name '*.old' \) -delete
find "$sealed/var/log/journal" -mindepth 1 ! -type d -delete 2>/dev/null || true
find "$sealed/var/log" -type f -size +0 -exec truncate -s 0 {} +

# [IB][SH] Temporary files.
find "$sealed/tmp" "$sealed/var/tmp" -mindepth 1 -delete

# [IB][ID] DHCP leases (isc-dhclient, dhcpcd, NetworkManager, systemd-networkd).
rm -rf "$sealed"/var/lib/dhcp/*.leases "$sealed"/var/lib/dhcp/dhclient* \
    "$sealed"/var/lib/dhclient/* "$sealed"/var/lib/dhcpcd/* \
    "$sealed"/var/lib/NetworkManager/*.lease "$sealed"/var/lib/systemd/network/*

# [IB][SH] Shell and tool histories of root and of every user.
for home in "$sealed/root" "$sealed"/home/*; do
    [[ -d "$home" ]] || continue
    rm -f "$home"/.bash_history "$home"/.zsh_history "$home"/.sh_history \
        "$home"/.history "$home"/.python_history "$home"/.mysql_history \
        "$home"/.psql_history "$home"/.lesshst "$home"/.viminfo "$home"/.wget-hsts
done

# [SH] APT's downloaded lists and package cache: build artefacts, stale on first use
# (what `apt-get clean` and `rm -rf /var/lib/apt/lists/*` do in every image recipe).
find "$sealed/var/cache/apt" -type f -delete
find "$sealed/var/lib/apt/lists" -mindepth 1 ! -name partial ! -name lock -delete
find "$sealed/var/lib/apt/lists/partial" -mindepth 1 -delete 2>/dev/null || true

# [HOST][IB] The build host's identity: a neutral hostname (cloud-init sets the instance's
# at boot), and a resolv.conf naming no resolver (DHCP writes the instance's at boot).
echo localhost >"$sealed/etc/hostname"
rm -f "$sealed/etc/resolv.conf"
printf '%s\n' "# Written at boot by the network configuration (DHCP)." >"$sealed/etc/resolv.conf"
chmod 644 "$sealed/etc/hostname" "$sealed/etc/resolv.conf"

sealing_seconds=$((SECONDS - t0))

# The sealing must have done what it says; a silently failed step would make the tests
# meaningless.
problems=()
compgen -G "$sealed/etc/ssh/ssh_host_*" >/dev/null && problems+=("host keys left")
[[ -s "$sealed/etc/machine-id" ]] && problems+=("machine-id not empty")
root_hash="$(awk -F: '$1 == "root" { print $2 }' "$sealed/etc/shadow")"
[[ "$root_hash" == '!'* ]] || problems+=("root not locked: '$root_hash'")
awk -F: '$2 != "" && $2 !~ /^[!*]/ { bad = 1 } $2 == "" { bad = 1 } END { exit !bad }' \
    "$sealed/etc/shadow" && problems+=("an account in /etc/shadow has a usable or empty password")
[[ -n "$(find "$sealed/var/log" -type f -size +0)" ]] && problems+=("non-empty logs")
[[ -n "$(find "$sealed/var/lib/cloud" -mindepth 1 2>/dev/null)" ]] && problems+=("cloud-init state")
[[ -n "$(find "$sealed/tmp" "$sealed/var/tmp" -mindepth 1)" ]] && problems+=("temporary files")
[[ -e "$sealed/root/.bash_history" || -e "$sealed/root/.ssh" ]] && problems+=("root's history or .ssh")
if ((${#problems[@]})); then
    printf 'build-sealed-debian.sh: sealing incomplete: %s\n' "${problems[@]}" >&2
    exit 1
fi

# ---------------------------------------------------------------------------------------
# 4. The unsealed variant: the same debootstrap as it came, plus what a build leaves.
# ---------------------------------------------------------------------------------------
unsealed="$tmp/unsealed"
mv "$base" "$unsealed"
install -m 600 /dev/stdin "$unsealed/root/.bash_history" <<'EOF'
apt-get update
apt-get install -y nginx
curl -fsSL http://169.254.169.254/latest/meta-data/instance-id
vi /etc/ssh/sshd_config
systemctl restart ssh
history -c
EOF
write_fstab "$sealed" "$SEALED_ROOT_UUID"
write_fstab "$unsealed" "$UNSEALED_ROOT_UUID"
empty_mount_points "$sealed"
empty_mount_points "$unsealed"

# ---------------------------------------------------------------------------------------
# 5. Disk images: 2 GiB, p14 BIOS boot at 2048 (3 MiB), p15 ESP (124 MiB), p1 root after
#    them to the end, as Debian's cloud images are laid out.
# ---------------------------------------------------------------------------------------
DISK_SIZE=2G
P1_START=262144

# first_sector DISK N: the first sector of partition N, as sgdisk reads the table.
first_sector() {
    sgdisk -i "$2" "$1" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'
}
# place DISK N FSFILE: copies a filesystem image into partition N (keeps holes).
place() {
    dd if="$3" of="$1" bs=1M oflag=seek_bytes seek="$(($(first_sector "$1" "$2") * 512))" \
        conv=notrunc,sparse status=none
}
# make_disk OUT TREE ROOT_UUID
make_disk() {
    local disk="$1" tree="$2" uuid="$3" p1_sectors
    rm -f "$disk"
    truncate -s "$DISK_SIZE" "$disk"
    sgdisk -U "$DISK_GUID" \
        -n 14:2048:8191 -t 14:EF02 -c 14:"BIOS boot partition" -u 14:"$P14_GUID" \
        -n 15:8192:$((P1_START - 1)) -t 15:EF00 -c 15:"EFI System" -u 15:"$P15_GUID" \
        -n 1:$P1_START:0 -t 1:8300 -u 1:"$P1_GUID" \
        "$disk" >/dev/null
    p1_sectors="$(sgdisk -i 1 "$disk" | sed -n 's/^Partition size: \([0-9]*\) sectors.*/\1/p')"
    rm -f "$tmp/root.fs" "$tmp/esp.fs"
    truncate -s $((p1_sectors * 512)) "$tmp/root.fs"
    mkfs.ext4 -q -F -U "$uuid" -d "$tree" "$tmp/root.fs"
    truncate -s $(((P1_START - 8192) * 512)) "$tmp/esp.fs"
    mkfs.vfat -i "$ESP_ID" "$tmp/esp.fs" >/dev/null
    # The ESP holds only the stub grub.cfg Debian's shim/GRUB reads there (no binaries).
    rm -rf "$tmp/esp"
    mkdir -p "$tmp/esp/EFI/debian"
    printf '%s\n' "search.fs_uuid $uuid root" "set prefix=(\$root)'/boot/grub'" \
        'configfile $prefix/grub.cfg' >"$tmp/esp/EFI/debian/grub.cfg"
    mcopy -s -p -m -i "$tmp/esp.fs" "$tmp/esp/EFI" ::/
    place "$disk" 15 "$tmp/esp.fs"
    place "$disk" 1 "$tmp/root.fs"
    rm -f "$tmp/root.fs" "$tmp/esp.fs"
}
t0=$SECONDS
make_disk "$tmp/sealed-debian.img" "$sealed" "$SEALED_ROOT_UUID"
make_disk "$tmp/unsealed-debian.img" "$unsealed" "$UNSEALED_ROOT_UUID"
images_seconds=$((SECONDS - t0))
rm -rf "$tmp/esp"

# ---------------------------------------------------------------------------------------
# 6. Records: the package manifest, what sealing changed, what is left to flag.
# ---------------------------------------------------------------------------------------
dpkg-query --admindir="$sealed/var/lib/dpkg" -W >"$tmp/manifest.txt"

# listing TREE: "path<TAB>type<TAB>size" for every node, sorted.
listing() {
    (cd "$1" && find . -mindepth 1 -printf '/%P\t%y\t%s\n' | LC_ALL=C sort)
}
listing "$unsealed" >"$tmp/unsealed.list"
listing "$sealed" >"$tmp/sealed.list"
{
    echo "# What sealing changed: paths only in the unsealed tree (-), only in the sealed"
    echo "# tree (+), and in both with a different type or size (~ unsealed -> sealed)."
    python3 - "$tmp/unsealed.list" "$tmp/sealed.list" <<'PY'
import sys
def load(p):
    out = {}
    with open(p, "rb") as f:
        for line in f:
            path, kind, size = line.rstrip(b"\n").rsplit(b"\t", 2)
            out[path] = (kind.decode(), int(size))
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
w = sys.stdout.buffer
for p in sorted(set(a) | set(b)):
    if p not in b:
        w.write(b"- %s (%s, %d bytes)\n" % (p, a[p][0].encode(), a[p][1]))
    elif p not in a:
        w.write(b"+ %s (%s, %d bytes)\n" % (p, b[p][0].encode(), b[p][1]))
    elif a[p] != b[p] and not (a[p][0] == b[p][0] == "d"):
        w.write(b"~ %s (%s, %d -> %d bytes)\n" % (p, b[p][0].encode(), a[p][1], b[p][1]))
PY
} >"$tmp/sealing-changes.txt"
rm -f "$tmp/unsealed.list" "$tmp/sealed.list"
tree_files=$(find "$sealed" | wc -l)
unsealed_files=$(find "$unsealed" | wc -l)
rm -rf --one-file-system "$unsealed"

# What a strict auditor could still point at in the sealed tree. None of it is a leftover
# the guidance names; all of it is in every stock Debian 12 system.
(
    cd "$sealed"
    section() { printf '\n## %s\n' "$1"; }
    # owners: lines "PATH MODE UID GID" to "PATH MODE user:group", named by the guest's own
    # passwd and group (the host's would name the wrong groups).
    owners() {
        awk 'FILENAME == "etc/passwd" { split($0, f, ":"); u[f[3]] = f[1]; next }
            FILENAME == "etc/group" { split($0, f, ":"); g[f[3]] = f[1]; next }
            { n = split($0, f, " "); uid = f[n - 1]; gid = f[n]
              line = f[1]; for (i = 2; i <= n - 2; i++) line = line " " f[i]
              print line, (uid in u ? u[uid] : uid) ":" (gid in g ? g[gid] : gid) }' \
            etc/passwd etc/group -
    }
    echo "# Sealed tree: things a strict auditor might flag (paths are guest paths)."
    section "non-empty regular files under /var/log, /var/lib/cloud, /tmp, /var/tmp"
    find var/log var/lib/cloud tmp var/tmp -type f -size +0 -printf '/%p %s bytes\n' 2>/dev/null || true
    section "empty log files kept (truncated; owners and modes preserved)"
    find var/log -type f -size 0 -printf '/%p %M %U %G\n' | sort | owners
    section "set-user-ID and set-group-ID files"
    find . -xdev -type f \( -perm -4000 -o -perm -2000 \) -printf '/%P %M %U %G\n' | sort | owners
    section "set-group-ID directories"
    find . -xdev -type d -perm -2000 -printf '/%P %M %U %G\n' | sort | owners
    section "world-writable nodes (symlinks excluded; sticky directories show t)"
    find . -xdev ! -type l -perm -0002 -printf '/%P %M\n' | sort
    section "files with POSIX ACLs or file capabilities (extended attributes)"
    python3 - <<'PY'
import os
for top, dirs, files in os.walk(".", topdown=True):
    for name in sorted(dirs + files):
        path = os.path.join(top, name)
        try:
            attrs = [a for a in os.listxattr(path, follow_symlinks=False)
                     if a.startswith(("system.posix_acl", "security.capability"))]
        except OSError:
            continue
        if attrs:
            print(path[1:], " ".join(sorted(attrs)))
PY
    section "shadow, passwd and group backups (the '-' files shadow(5) tools keep)"
    find etc -maxdepth 1 -name '*-' -printf '/%p %M %U %G\n' | sort | owners
    section "root's entry in /etc/shadow and in /etc/shadow-"
    grep '^root:' etc/shadow | cut -d: -f1-2 | sed 's|^|/etc/shadow |'
    grep '^root:' etc/shadow- 2>/dev/null | cut -d: -f1-2 | sed 's|^|/etc/shadow- |' || true
    section "accounts with a login shell"
    awk -F: '$7 !~ /(nologin|false|sync)$/ { print $1 " uid=" $3 " shell=" $7 }' etc/passwd
    section "debconf's databases (passwords.dat among them) and dpkg's -old backups"
    find var/cache/debconf -type f -printf '/%p %s bytes %M\n' | sort
    find var/lib/dpkg -maxdepth 1 -name '*-old' -printf '/%p %s bytes %M\n' | sort
    section "files whose owner or group the guest's passwd or group does not name"
    find . -xdev -printf '/%P %U %G\n' | awk '
        FILENAME == "etc/passwd" { split($0, f, ":"); u[f[3]] = 1; next }
        FILENAME == "etc/group" { split($0, f, ":"); g[f[3]] = 1; next }
        { n = split($0, f, " "); if (!(f[n - 1] in u) || !(f[n] in g)) print }' \
        etc/passwd etc/group - | sort
    section "contents of /root and /home"
    find root home -mindepth 1 -printf '/%p %y %s bytes %M\n' | sort
    section "sudoers"
    find etc/sudoers etc/sudoers.d -type f -printf '/%p %M\n' | sort
    grep -hvE '^[[:space:]]*(#|$)' etc/sudoers etc/sudoers.d/* 2>/dev/null | sed 's/^/  /' || true
    section "telnet, ftp, rsh, inetd and similar servers among the packages"
    dpkg-query --admindir=var/lib/dpkg -W -f '${Package}\n' |
        grep -E '^(.*telnetd.*|.*ftpd.*|.*inetd|rsh-server|rsh-redone-server|nis)$' ||
        echo "(none)"
    section "/var/backups"
    find var/backups -mindepth 1 -printf '/%p %s bytes\n' | sort
    section "systemd/dbus identity files"
    for f in etc/machine-id var/lib/dbus/machine-id var/lib/systemd/random-seed \
        var/lib/systemd/credential.secret; do
        if [[ -L "$f" ]]; then echo "/$f -> $(readlink "$f")"
        elif [[ -e "$f" ]]; then echo "/$f $(stat -c '%s bytes' "$f")"
        else echo "/$f absent"; fi
    done
    section "SSH host keys"
    ls etc/ssh/ssh_host_* 2>/dev/null || echo "(none)"
    section "NOPASSWD anywhere under /etc (sudoers and cloud-init's default user)"
    grep -rn NOPASSWD etc 2>/dev/null | sed 's|^|/|' || echo "(none)"
    section "sshd settings that matter (effective order: sshd_config.d/*.conf first)"
    grep -rnE '^[[:space:]]*(PermitRootLogin|PasswordAuthentication|KbdInteractiveAuthentication|ChallengeResponseAuthentication|PermitEmptyPasswords|UsePAM|X11Forwarding|AllowTcpForwarding)' \
        etc/ssh/sshd_config.d etc/ssh/sshd_config 2>/dev/null || true
    section "cloud-init settings that matter (/etc/cloud/cloud.cfg)"
    grep -nE '^[[:space:]]*(disable_root|ssh_pwauth|lock_passwd|ssh_deletekeys|ssh_genkeytypes)' \
        etc/cloud/cloud.cfg etc/cloud/cloud.cfg.d/* 2>/dev/null || true
    section "/etc/hostname, /etc/hosts, /etc/resolv.conf"
    for f in etc/hostname etc/hosts etc/resolv.conf; do sed "s|^|/$f: |" "$f"; done
    section "private keys or key-like files outside /usr (PEM headers)"
    grep -rlE -- '-----BEGIN [A-Z ]*PRIVATE KEY-----' etc root var 2>/dev/null | sed 's|^|/|' || echo "(none)"
    section "/var/lib/apt/lists and /var/cache/apt"
    find var/lib/apt/lists var/cache/apt -printf '/%p %y\n' | sort
    section "services enabled at boot (systemd wants links)"
    find etc/systemd/system -name '*.wants' -type d -printf '%P\n' | sort | while read -r w; do
        printf '%s: %s\n' "$w" "$(ls "etc/systemd/system/$w" | tr '\n' ' ')"
    done
) >"$tmp/leftovers.txt"

{
    echo "built: $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
    echo "debootstrap: $(debootstrap --version 2>/dev/null | head -1)"
    echo "suite: $SUITE"
    echo "mirror: $MIRROR"
    echo "variant: minbase"
    echo "include: $INCLUDE"
    echo "packages installed: $(wc -l <"$tmp/manifest.txt")"
    echo "debootstrap seconds: $debootstrap_seconds"
    echo "sealing seconds: $sealing_seconds"
    echo "images seconds: $images_seconds"
    echo "sealed tree nodes (find tree | wc -l): $tree_files"
    echo "unsealed tree nodes: $unsealed_files"
    echo "sealed tree size: $(du -sh "$sealed" | cut -f1)"
    for img in sealed-debian.img unsealed-debian.img; do
        echo "$img: virtual $(stat -c %s "$tmp/$img") bytes, allocated $(du -h "$tmp/$img" | cut -f1)"
    done
    echo "script seconds (before moving into place): $((SECONDS - started))"
} >"$tmp/build-info.txt"

# ---------------------------------------------------------------------------------------
# Into place: the old build moves aside (the package cache stays), the new one in, and the
# stamp is written last.
# ---------------------------------------------------------------------------------------
rm -f "$stamp"
old="$(mktemp -d "$out/.old.XXXXXX")"
find "$out" -mindepth 1 -maxdepth 1 ! -name .cache ! -path "$tmp" ! -path "$old" \
    -exec mv -t "$old" {} +
rm -f "$tmp/debootstrap.out"
find "$tmp" -mindepth 1 -maxdepth 1 -exec mv -t "$out" {} +
echo "$want" >"$out/.complete.new"
mv "$out/.complete.new" "$stamp"
rm -rf --one-file-system "$old"
echo "build-sealed-debian.sh: built sealed-debian.img and unsealed-debian.img in" \
    "$((SECONDS - started)) s (debootstrap $debootstrap_seconds s)" >&2
