#!/usr/bin/env bash
# Builds every disk image the integration tests (tests/images.rs) read, from real tools,
# into testdata/build/ (git-ignored). Nothing binary is committed: the source trees the
# images are made from are generated here too, under testdata/build/trees/, and the tests
# compare what amiscan reads from each image against those trees.
#
# Runs once: when testdata/build/.complete holds the sha256 of this script, it exits at
# once. Otherwise it builds everything into a temporary directory inside testdata/build/,
# moves the results into place and writes the stamp last, so an interrupted build leaves
# no stamp and is simply redone. It does not lock: callers that may run concurrently
# (the test binaries do) run it as `flock testdata/build/.lock bash testdata/build-images.sh`.
#
# Works without root (files are then owned by the user, and the images record that) and
# as root, as in CI, where a few files are also given away (uid/gid 1000, and gid 42 for
# etc/shadow) so that ownership is carried into the images and checked.
#
# Images (file names are the contract with the tests):
#   bare-ext4.img    ext4 (4 KiB blocks) holding trees/basic, no partition table
#   ext2.img         ext2 of trees/basic, bare
#   ext3.img         ext3 of trees/basic, bare
#   ext4-1k.img      ext4 with 1 KiB blocks, trees/basic, bare
#   ext4-no64.img    ext4 without 64bit and metadata_csum, trees/basic, bare
#   ext4-inline.img  ext4 with inline_data, trees/basic, bare
#   debian-gpt.img   laid out like Debian's cloud images: GPT; p14 BIOS boot (EF02, 3 MiB at
#                    sector 2048, no filesystem); p15 EFI system partition (EF00, FAT16,
#                    trees/efi); p1 ext4 root labelled `rootfs` after them (trees/debian-root:
#                    basic plus an fstab mounting p1 at / and p15 at /boot/efi by PARTUUID)
#   hybrid-gpt.img   debian-gpt.img with a hybrid MBR (sgdisk -h 15: a protective 0xEE entry
#                    plus an MBR entry for the ESP, as some BIOS-and-UEFI images carry)
#   mbr-logical.img  MBR: p1 primary ext4 root (trees/mbr-root), p2 extended, p5 logical ext4
#                    /var (trees/mbr-var), p6 logical ext2 /srv (trees/mbr-srv); the fstab
#                    names them /dev/sda1, /dev/xvda5 and /dev/nvme0n1p6
#   split-gpt.img    GPT: p1 root (trees/split-root), p2 /var by UUID= (trees/split-var), p3
#                    /home by LABEL=home (trees/split-home); the fstab also has a nofail line
#                    for a volume that is not in the image
#   gpt-4k.img       GPT written for 4096-byte sectors, one ext4 partition of trees/basic
#   bigdir.img       bare ext4 (-N 60000) whose directory /many holds 50 000 empty files
#                    f00001..f50000 and one non-empty file (trees/bigdir); e2fsck -D then
#                    indexes the directory (htree), as a kernel-grown directory would be
#   incomplete.img   MBR: p1 ext4 root (trees/incomplete-root) whose fstab mounts p2, a btrfs
#                    volume amiscan cannot read, at /data without nofail
#   corrupt-gpt.img  GPT: p1 ext4 (trees/corrupt-p1), p2 ext4 (trees/corrupt-p2), truncated
#                    so that p2 ends past the end of the image and the backup GPT header is
#                    gone; the primary header is intact
#
# Source trees (testdata/build/trees/): basic, efi, debian-root, mbr-root, mbr-var, mbr-srv,
# split-root, split-var, split-home, bigdir, incomplete-root, corrupt-p1, corrupt-p2.
# Every modification time in them is set to a fixed, even number of seconds (FAT keeps
# two-second times), one of them before 1970.
set -euo pipefail
export LC_ALL=C TZ=UTC
# mkfs and partitioning tools live in sbin, which a normal user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
# mtools: do not refuse images whose geometry it finds unusual.
export MTOOLS_SKIP_CHECK=1

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
out="$(dirname "$script")/build"
stamp="$out/.complete"
want="$(sha256sum "$script" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

for tool in mke2fs mkfs.ext4 mkfs.vfat mcopy mkfs.btrfs sgdisk sfdisk fdisk truncate dd python3 e2fsck \
    debugfs sha256sum; do
    command -v "$tool" >/dev/null || { echo "build-images.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
mkdir -p "$out"
# Leftovers of an interrupted build (callers serialise builds with flock).
rm -rf "$out"/.tmp.* "$out"/.old.*
tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
bigdir_pid=""
cleanup() {
    if [[ -n "$bigdir_pid" ]]; then kill "$bigdir_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

trees="$tmp/trees"
mkdir -p "$trees"
if [[ "$(id -u)" == 0 ]]; then is_root=1; else is_root=0; fi

# ---------------------------------------------------------------------------------------
# Source trees.
# ---------------------------------------------------------------------------------------
python3 - "$trees" <<'PY'
import os, random, sys

trees = sys.argv[1]

def put(path, data=b"", mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)

def rand(seed, n):
    return random.Random(seed).randbytes(n)

def mkdirs(path, mode=0o755):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)

DEBIAN_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

# --- basic: every kind of node and name the readers must get right -------------------
b = os.path.join(trees, "basic")
put(f"{b}/etc/os-release", DEBIAN_OS_RELEASE)
put(f"{b}/etc/hostname", "basic-host\n")
put(f"{b}/etc/motd", "Welcome to the amiscan test image.\n")
put(f"{b}/etc/shadow", "root:*:19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n", 0o640)
put(f"{b}/docs/readme.txt", "A small text file.\n")
put(f"{b}/docs/notes.md", "# Notes\n\n" + "".join(f"- line {i}\n" for i in range(200)))
for name, size in [("empty", 0), ("one", 1), ("4095", 4095), ("4096", 4096),
                   ("4097", 4097), ("1MiB", 1 << 20), ("5MiB", 5 << 20)]:
    put(f"{b}/sizes/{name}", rand(f"sizes/{name}", size))
put(f"{b}/nested/a/b/c/d/file.txt", "deep enough\n")
long_name = "this-is-a-deliberately-long-file-name-so-the-link-is-slow.txt"
put(f"{b}/nested/a/b/c/d/{long_name}", "reached through a slow symlink\n")
os.makedirs(f"{b}/links")
os.symlink("../docs/readme.txt", f"{b}/links/fast")             # fits in the inode
slow = f"../nested/a/b/c/d/{long_name}"
assert len(slow) > 60
os.symlink(slow, f"{b}/links/slow")                              # needs a data block
os.symlink("/etc/os-release", f"{b}/links/absolute")
os.symlink("does-not-exist", f"{b}/links/dangling")
os.symlink("loop-b", f"{b}/links/loop-a")
os.symlink("loop-a", f"{b}/links/loop-b")
os.symlink("../../docs", f"{b}/nested/a/docs-dir")                # a link to a directory
# Five levels up from three levels down: resolved inside the guest it stops at its root.
os.symlink("../../../../../etc/os-release", f"{b}/nested/a/b/escape")
put(f"{b}/hard/one", "one inode, two names\n")
os.link(f"{b}/hard/one", f"{b}/hard/two")
# Sparse: 64 MiB with a few bytes at 1 MiB and at 40 MiB (truncate + dd conv=notrunc).
put(f"{b}/sparse/holes.bin")
with open(f"{b}/sparse/holes.bin", "r+b") as f:
    f.truncate(64 << 20)
    f.seek(1 << 20); f.write(b"data at one MiB")
    f.seek(40 << 20); f.write(b"data at forty MiB")
os.makedirs(f"{b}/names")
put(os.path.join(f"{b}/names".encode(), b"caf\xe9"), b"latin-1 name\n")  # not UTF-8
put(f"{b}/names/new\nline", "a name with a newline\n")
put(f"{b}/names/\u00e9t\u00e9.txt", "a UTF-8 name\n")
put(f"{b}/perms/setuid", "#!/bin/sh\necho setuid\n", 0o4755)
put(f"{b}/perms/private", "secret\n", 0o600)
put(f"{b}/perms/group-sticky", "", 0o2750)
mkdirs(f"{b}/perms/sticky-dir", 0o1777)
os.makedirs(f"{b}/special")
os.mkfifo(f"{b}/special/fifo", 0o644)
os.chmod(f"{b}/special/fifo", 0o644)
deep = os.path.join(b, "deep", *[f"d{i:02d}" for i in range(1, 31)])
put(f"{deep}/bottom.txt", "thirty levels down\n")
put(f"{b}/home/user/notes.txt", "owned by uid 1000 when built as root\n")
put(f"{b}/old/1969.txt", "modified before the epoch\n")
mkdirs(f"{b}/empty-dir")

# --- efi: the EFI system partition of debian-gpt (FAT16) -----------------------------
e = os.path.join(trees, "efi")
put(f"{e}/EFI/debian/grubx64.efi", rand("grubx64", 180_000))
put(f"{e}/EFI/debian/shimx64.efi", rand("shimx64", 95_000))
put(f"{e}/EFI/debian/mmx64.efi", rand("mmx64", 80_000))
put(f"{e}/EFI/debian/BOOTX64.CSV", "shimx64.efi,debian,,This is the boot entry for debian\n")
put(f"{e}/EFI/debian/grub.cfg",
    "search.fs_uuid 7c3e0a51-9b2d-4e6f-8a1b-2c3d4e5f6071 root\n"
    "set prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n")
put(f"{e}/EFI/debian/Boot Manager Settings.Json", '{"timeout": 5, "default": "debian"}\n')
put(f"{e}/EFI/BOOT/BOOTX64.EFI", rand("bootx64", 95_000))
put(f"{e}/EFI/BOOT/fbx64.efi", rand("fbx64", 60_000))

# --- mbr-logical: root, /var and /srv ------------------------------------------------
r = os.path.join(trees, "mbr-root")
put(f"{r}/etc/os-release", 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
    'PRETTY_NAME="Ubuntu 22.04.4 LTS"\n')
put(f"{r}/etc/fstab",
    "# <file system> <mount point> <type> <options> <dump> <pass>\n"
    "/dev/sda1       /     ext4 errors=remount-ro 0 1\n"
    "/dev/xvda5      /var  ext4 defaults          0 2\n"
    "/dev/nvme0n1p6  /srv  ext2 defaults          0 2\n"
    "tmpfs           /tmp  tmpfs defaults         0 0\n")
put(f"{r}/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755)
mkdirs(f"{r}/var")
mkdirs(f"{r}/srv")
v = os.path.join(trees, "mbr-var")
put(f"{v}/log/syslog", "".join(f"Jan  1 00:00:{i % 60:02d} host kernel: line {i}\n"
                               for i in range(500)))
put(f"{v}/log/apt/history.log", "Start-Date: 2024-01-01  00:00:00\n")
put(f"{v}/lib/dpkg/status", "Package: base-files\nStatus: install ok installed\n\n"
    "Package: bash\nStatus: install ok installed\n")
mkdirs(f"{v}/cache")
s = os.path.join(trees, "mbr-srv")
put(f"{s}/www/index.html", "<!doctype html><title>srv</title><p>served from p6\n")
put(f"{s}/www/robots.txt", "User-agent: *\nDisallow:\n")

# --- split-gpt: root, /var by UUID, /home by LABEL -----------------------------------
r = os.path.join(trees, "split-root")
put(f"{r}/etc/os-release", 'NAME="Amazon Linux"\nVERSION_ID="2023"\nID="amzn"\n'
    'ID_LIKE="fedora"\nPRETTY_NAME="Amazon Linux 2023"\n')
put(f"{r}/etc/fstab",
    "UUID=1b7c2a10-0f3e-4d5c-9b8a-7e6f5d4c3b21  /            ext4  defaults,noatime  0 1\n"
    "UUID=2c8d3b21-1a4f-4e6d-8c9b-8f7a6e5d4c32  /var         ext4  defaults          0 2\n"
    "LABEL=home                                 /home        ext4  defaults          0 2\n"
    "UUID=0b5e55ed-dead-4bee-8f00-0123456789ab  /mnt/scratch ext4  defaults,nofail   0 2\n"
    "/swapfile                                  none         swap  sw                0 0\n")
mkdirs(f"{r}/var")
mkdirs(f"{r}/home")
mkdirs(f"{r}/mnt/scratch")
v = os.path.join(trees, "split-var")
put(f"{v}/log/messages", "system booted\n")
put(f"{v}/lib/rpm/rpmdb.sqlite", rand("rpmdb", 20_000))
h = os.path.join(trees, "split-home")
mkdirs(f"{h}/admin", 0o700)
put(f"{h}/admin/.bash_history", "sudo -i\ncat /etc/shadow\n", 0o600)
mkdirs(f"{h}/admin/.ssh", 0o700)
put(f"{h}/admin/.ssh/authorized_keys",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGFtaXNjYW4tdGVzdC1rZXktbm90LXJlYWw admin@test\n",
    0o600)

# --- bigdir: one directory of 50 000 empty files and one non-empty file ----------------
d = os.path.join(trees, "bigdir", "many")
os.makedirs(d)
for i in range(1, 50_001):
    open(os.path.join(d, f"f{i:05d}"), "wb").close()
put(f"{d}/zz-nonempty.txt", "the only file here with contents\n")

# --- incomplete: the root mounts a btrfs volume at /data without nofail ---------------
r = os.path.join(trees, "incomplete-root")
put(f"{r}/etc/os-release", 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.3"\n')
put(f"{r}/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 /data btrfs defaults 0 2\n")
mkdirs(f"{r}/data")

# --- corrupt-gpt: two small volumes ----------------------------------------------------
put(f"{trees}/corrupt-p1/etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.0\n')
put(f"{trees}/corrupt-p1/readme.txt", "partition 1 is whole\n")
put(f"{trees}/corrupt-p2/readme.txt", "partition 2 is cut off by the end of the image\n")
PY

# debian-root: basic plus the fstab a Debian cloud image has, and the ESP mount point.
cp -a "$trees/basic" "$trees/debian-root"
mkdir -p "$trees/debian-root/boot/efi"

# Fixed identifiers, so fstab entries and the tests can name them.
DEB_DISK_GUID=9a1d8c3e-1f7b-4c2a-9d3e-5b6a7c8d9e01
DEB_P1_GUID=5e4b1b4c-3b0e-4f2d-8a6b-1c2d3e4f5a61
DEB_P14_GUID=0d6c8f3b-7a2e-4c91-b5d4-e6f708192a14
DEB_P15_GUID=3f1e2d4c-5b6a-4798-8c9d-0e1f2a3b4c15
DEB_ROOT_UUID=7c3e0a51-9b2d-4e6f-8a1b-2c3d4e5f6071
DEB_ESP_ID=5CA1AB1E
SPLIT_ROOT_UUID=1b7c2a10-0f3e-4d5c-9b8a-7e6f5d4c3b21
SPLIT_VAR_UUID=2c8d3b21-1a4f-4e6d-8c9b-8f7a6e5d4c32
SPLIT_HOME_UUID=3d9e4c32-2b5a-4f7e-9dac-9a8b7f6e5d43

cat >"$trees/debian-root/etc/fstab" <<EOF
# /etc/fstab: static file system information.
PARTUUID=$DEB_P1_GUID / ext4 rw,discard,errors=remount-ro 0 1
PARTUUID=$DEB_P15_GUID /boot/efi vfat defaults 0 0
EOF

if [[ $is_root == 1 ]]; then
    for tree in basic debian-root; do
        chown -h 1000:1000 "$trees/$tree/home/user" "$trees/$tree/home/user/notes.txt" \
            "$trees/$tree/links/fast" "$trees/$tree/perms/private"
        chown 0:42 "$trees/$tree/etc/shadow"
    done
    chown -R 1000:1000 "$trees/split-home/admin"
    chown 0:42 "$trees/mbr-var/log/syslog"
fi

# Fixed, even modification times for everything (children before their directories,
# symlinks themselves rather than their targets). The root of each tree is left alone:
# it becomes a filesystem's root directory, whose times mke2fs does not copy.
python3 - "$trees" <<'PY'
import os, sys, zlib
trees = sys.argv[1]
for tree in sorted(os.listdir(trees)):
    top = os.path.join(trees, tree).encode()
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            t = 1_000_000_000 + 2 * (zlib.crc32(rel) % 150_000_000)
            if rel == b"old/1969.txt":
                t = -31_536_000
            os.utime(path, ns=(t * 10**9, t * 10**9), follow_symlinks=False)
PY

# ---------------------------------------------------------------------------------------
# Images.
# ---------------------------------------------------------------------------------------
img="$tmp"
# mkext OUT SIZE TREE MKE2FS-ARGS...: a filesystem image of TREE in a sparse file.
mkext() {
    local file="$1" size="$2" tree="$3"
    shift 3
    rm -f "$file"
    truncate -s "$size" "$file"
    mke2fs -q -F -I 256 "$@" -d "$tree" "$file"
}
# partition_start DISK N: byte offset of partition N, as sfdisk reads the table.
partition_start() {
    sfdisk --json "$1" | python3 -c '
import json, sys
n = sys.argv[1]
table = json.load(sys.stdin)["partitiontable"]
for p in table["partitions"]:
    # Nodes are the disk path plus the number ("p" between when the path ends in a digit).
    if p["node"][len(table["device"]):].lstrip("p") == n:
        print(p["start"] * table.get("sectorsize", 512))
        break
else:
    sys.exit(f"partition {n} not found")' "$2"
}
# place_at DISK BYTE FSFILE: copies a filesystem image into DISK at BYTE (keeps holes).
place_at() {
    dd if="$3" of="$1" bs=1M oflag=seek_bytes seek="$2" conv=notrunc,sparse status=none
}
# place DISK N FSFILE: copies a filesystem image into partition N.
place() {
    local at
    at="$(partition_start "$1" "$2")"
    place_at "$1" "$at" "$3"
}

# bigdir.img takes about two minutes (mke2fs -d is quadratic in directory size): start it
# first, in the background, and collect it at the end.
(
    mkext "$img/bigdir.img" 64M "$trees/bigdir" -t ext4 -b 4096 -N 60000 -L bigdir
    # Index the big directory, as the kernel would have; 1 means "fixed/optimised".
    rc=0; e2fsck -fyD "$img/bigdir.img" >/dev/null 2>&1 || rc=$?
    [[ $rc -le 1 ]] || { echo "e2fsck -D bigdir.img failed ($rc)" >&2; exit 1; }
) >"$tmp/bigdir.log" 2>&1 &
bigdir_pid=$!

# 1-2. Bare filesystems of trees/basic.
mkext "$img/bare-ext4.img" 32M "$trees/basic" -t ext4 -b 4096 -L basic
mkext "$img/ext2.img" 32M "$trees/basic" -t ext2 -b 4096
mkext "$img/ext3.img" 32M "$trees/basic" -t ext3 -b 4096
mkext "$img/ext4-1k.img" 32M "$trees/basic" -t ext4 -b 1024
mkext "$img/ext4-no64.img" 32M "$trees/basic" -t ext4 -b 4096 -O ^64bit,^metadata_csum
mkext "$img/ext4-inline.img" 32M "$trees/basic" -t ext4 -b 4096 -O inline_data
# mke2fs 1.47.0 -d with inline_data loses a file's trailing hole: i_size ends at the last
# data block (40 MiB + 4 KiB) instead of 64 MiB. Put back the size the source has.
want_size=$(stat -c %s "$trees/basic/sparse/holes.bin")
have_size=$(debugfs -R "stat /sparse/holes.bin" "$img/ext4-inline.img" 2>/dev/null |
    sed -n 's/.*Size: \([0-9]*\)$/\1/p' | head -1)
if [[ "$have_size" != "$want_size" ]]; then
    debugfs -w -R "sif /sparse/holes.bin size $want_size" "$img/ext4-inline.img" 2>/dev/null
    have_size=$(debugfs -R "stat /sparse/holes.bin" "$img/ext4-inline.img" 2>/dev/null |
        sed -n 's/.*Size: \([0-9]*\)$/\1/p' | head -1)
    [[ "$have_size" == "$want_size" ]] || { echo "cannot fix ext4-inline.img" >&2; exit 1; }
fi

# 3. debian-gpt.img: p14 BIOS boot at 2048 (3 MiB), p15 ESP (16 MiB), p1 root (32 MiB).
disk="$img/debian-gpt.img"
truncate -s 53M "$disk"
sgdisk -U "$DEB_DISK_GUID" \
    -n 14:2048:8191 -t 14:EF02 -c 14:"BIOS boot partition" -u 14:"$DEB_P14_GUID" \
    -n 15:8192:40959 -t 15:EF00 -c 15:"EFI System" -u 15:"$DEB_P15_GUID" \
    -n 1:40960:106495 -t 1:8300 -u 1:"$DEB_P1_GUID" \
    "$disk" >/dev/null
# The BIOS boot partition holds GRUB's core image, not a filesystem.
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random("core.img").randbytes(100_000))' \
    >"$tmp/core.img"
mkext "$tmp/deb-root.fs" 32M "$trees/debian-root" -t ext4 -b 4096 -L rootfs -U "$DEB_ROOT_UUID"
rm -f "$tmp/esp.fs"
truncate -s 16M "$tmp/esp.fs"
mkfs.vfat -F 16 -i "$DEB_ESP_ID" -n EFI "$tmp/esp.fs" >/dev/null
# -s recursive, -p keep attributes, -m keep modification times (written as UTC: TZ=UTC).
mcopy -s -p -m -i "$tmp/esp.fs" "$trees/efi/EFI" ::/
place "$disk" 14 "$tmp/core.img"
place "$disk" 15 "$tmp/esp.fs"
place "$disk" 1 "$tmp/deb-root.fs"
cp "$disk" "$img/hybrid-gpt.img"
sgdisk -h 15 "$img/hybrid-gpt.img" >/dev/null

# 4. mbr-logical.img: p1 root, p2 extended holding p5 (/var, ext4) and p6 (/srv, ext2).
disk="$img/mbr-logical.img"
truncate -s 48M "$disk"
sfdisk -q "$disk" >/dev/null <<'EOF'
label: dos
label-id: 0x5ca1ab1e
size=16MiB, type=83, bootable
type=5
size=16MiB, type=83
size=8MiB, type=83
EOF
mkext "$tmp/mbr-root.fs" 16M "$trees/mbr-root" -t ext4 -b 4096
mkext "$tmp/mbr-var.fs" 16M "$trees/mbr-var" -t ext4 -b 4096
mkext "$tmp/mbr-srv.fs" 8M "$trees/mbr-srv" -t ext2 -b 1024
place "$disk" 1 "$tmp/mbr-root.fs"
place "$disk" 5 "$tmp/mbr-var.fs"
place "$disk" 6 "$tmp/mbr-srv.fs"

# 5. split-gpt.img: p1 root, p2 /var (UUID=), p3 /home (LABEL=home).
disk="$img/split-gpt.img"
truncate -s 50M "$disk"
sgdisk -n 1:2048:+16M -c 1:root -n 2:0:+16M -c 2:var -n 3:0:+16M -c 3:home \
    -t 1:8300 -t 2:8300 -t 3:8302 "$disk" >/dev/null
mkext "$tmp/split-root.fs" 16M "$trees/split-root" -t ext4 -b 4096 -L root -U "$SPLIT_ROOT_UUID"
mkext "$tmp/split-var.fs" 16M "$trees/split-var" -t ext4 -b 4096 -L var -U "$SPLIT_VAR_UUID"
mkext "$tmp/split-home.fs" 16M "$trees/split-home" -t ext4 -b 4096 -L home -U "$SPLIT_HOME_UUID"
place "$disk" 1 "$tmp/split-root.fs"
place "$disk" 2 "$tmp/split-var.fs"
place "$disk" 3 "$tmp/split-home.fs"

# 6. gpt-4k.img: a GPT for 4096-byte logical sectors, one ext4 partition at LBA 256 (1 MiB).
# sfdisk before util-linux 2.39 has no --sector-size, but fdisk -b has long had one; its
# dialogue: new GPT, new partition 1 from 256 to 8447, then expert mode for the partition
# UUID, the disk GUID and the partition name.
disk="$img/gpt-4k.img"
truncate -s 34M "$disk"
printf '%s\n' g n 1 256 8447 x u 6A7B8C9D-0E1F-4A2B-8C3D-4E5F6A7B8C01 \
    i 4B2D6A1C-8E3F-4A5B-9C7D-0E1F2A3B4C5D n root r w |
    fdisk -b 4096 "$disk" >/dev/null
python3 - "$disk" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    f.seek(4096)
    header = f.read(92)
    assert header[:8] == b"EFI PART", "no GPT header at byte 4096"
    f.seek(int.from_bytes(header[72:80], "little") * 4096)
    entry = f.read(128)
first, last = int.from_bytes(entry[32:40], "little"), int.from_bytes(entry[40:48], "little")
assert (first, last) == (256, 8447), f"partition 1 is at LBA {first}..{last}"
PY
mkext "$tmp/gpt4k.fs" 32M "$trees/basic" -t ext4 -b 4096 -L root4k
place_at "$disk" $((256 * 4096)) "$tmp/gpt4k.fs"

# 8. incomplete.img: p1 ext4 root, p2 btrfs mounted at /data without nofail.
disk="$img/incomplete.img"
truncate -s 48M "$disk"
sfdisk -q "$disk" >/dev/null <<'EOF'
label: dos
label-id: 0x1dc0ffee
size=16MiB, type=83
type=83
EOF
mkext "$tmp/inc-root.fs" 16M "$trees/incomplete-root" -t ext4 -b 4096
rm -f "$tmp/inc-data.fs"
truncate -s 24M "$tmp/inc-data.fs"
# btrfs wants 114 MiB unless data and metadata share block groups (--mixed); it also
# prints a note on its defaults, even with -q.
mkfs.btrfs -q -f --mixed -L data -U 44444444-5555-4666-8777-888888888888 "$tmp/inc-data.fs" \
    >/dev/null
place "$disk" 1 "$tmp/inc-root.fs"
place "$disk" 2 "$tmp/inc-data.fs"

# 9. corrupt-gpt.img: p1 (8 MiB) and p2 (8 MiB), then cut in the middle of p2.
disk="$img/corrupt-gpt.img"
truncate -s 20M "$disk"
sgdisk -n 1:2048:+8M -n 2:0:+8M -t 1:8300 -t 2:8300 "$disk" >/dev/null
mkext "$tmp/corrupt-p1.fs" 8M "$trees/corrupt-p1" -t ext4 -b 1024
mkext "$tmp/corrupt-p2.fs" 8M "$trees/corrupt-p2" -t ext4 -b 1024
place "$disk" 1 "$tmp/corrupt-p1.fs"
place "$disk" 2 "$tmp/corrupt-p2.fs"
truncate -s 14M "$disk"
python3 - "$disk" <<'PY'
import sys, zlib
with open(sys.argv[1], "rb") as f:
    f.seek(512)
    header = bytearray(f.read(92))
assert header[:8] == b"EFI PART", "primary GPT header lost"
crc = int.from_bytes(header[16:20], "little")
header[16:20] = b"\0\0\0\0"
assert zlib.crc32(header) == crc, "primary GPT header CRC no longer matches"
PY

rm -f "$tmp"/*.fs "$tmp/core.img"

# 7. bigdir.img, built in the background.
if ! wait "$bigdir_pid"; then
    bigdir_pid=""
    echo "build-images.sh: building bigdir.img failed:" >&2
    cat "$tmp/bigdir.log" >&2
    exit 1
fi
bigdir_pid=""
rm -f "$tmp/bigdir.log"

# ---------------------------------------------------------------------------------------
# Into place: the old build moves aside, the new one in, and the stamp is written last.
# ---------------------------------------------------------------------------------------
rm -f "$stamp"
old="$(mktemp -d "$out/.old.XXXXXX")"
find "$out" -mindepth 1 -maxdepth 1 ! -name .lock ! -path "$tmp" ! -path "$old" \
    -exec mv -t "$old" {} +
find "$tmp" -mindepth 1 -maxdepth 1 -exec mv -t "$out" {} +
echo "$want" >"$out/.complete.new"
mv "$out/.complete.new" "$stamp"
rm -rf "$old"
echo "build-images.sh: built $(find "$out" -maxdepth 1 -name '*.img' | wc -l) images in $((SECONDS - started)) s" >&2
