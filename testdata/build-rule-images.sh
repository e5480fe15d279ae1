#!/usr/bin/env bash
# Builds the images tests/scan_rules.rs and tests/rule_packs.rs scan, from the source trees
# in testdata/rules/<case>/ (plain text files, committed), into testdata/build/rules/
# (git-ignored). Everything secret-looking or binary is made here, at build time: password
# hashes (fake, well-formed strings that no password produces; the committed files hold
# `@HASH:scheme:seed@` placeholders), SSH keys (ssh-keygen), log and dump files, and so is
# everything git cannot carry: modes, symlinks, empty directories, and systemd's enablement
# links, which `systemctl --root` makes exactly as systemd does.
#
#   rules/leaky.img    GPT: p1 ext4 root (UUID $LEAKY_ROOT_UUID), p2 ext4 /home (UUID
#                      $LEAKY_HOME_UUID, mounted through the root's /etc/fstab), so `~/` in a
#                      rule reaches across mounts. Every built-in rule fails on it.
#   rules/sealed.img   bare ext4 (label rootfs). Every built-in rule passes or is skipped,
#                      through the tricky passing cases (first sshd value wins, locked hash
#                      prefixes, comment-only and empty files, a masked unit, a package in
#                      `config-files` state, an empty machine-id with a symlink to it…).
#   rules/tricky.img   bare ext4 (label cloudimg-rootfs). Subtle failures: Match blocks, an
#                      Include inside a Match block, the ChallengeResponseAuthentication
#                      alias, AuthorizedKeysFile with %u, a home outside /home, an FTP
#                      server installed but not enabled, a SysV rc link, a second UID 0.
#   rules/<case>/tree  the tree each image was made from, after the build-time steps (the
#                      tests read expected strings, such as the fake hashes, from it).
#
# `build-rule-images.sh --disk CASE TREE OUT` only lays TREE out as CASE.img is laid out
# (tests/remediation.rs rebuilds an image from a copy its remediation script cleaned).
#
# Runs once: testdata/build/rules/.complete holds the sha256 of this script and of every
# file in testdata/rules/; when it matches, the script exits at once. Otherwise it builds
# into a temporary directory, moves it into place and writes the stamp last. It first runs
# build-images.sh (under testdata/build/.lock), because that script clears all of
# testdata/build/ when it rebuilds; after that, it cannot do so during a test run. Callers
# serialise runs of this script with `flock testdata/build/.lock-rules bash …`.
#
# Needs: ssh-keygen (openssh-client), systemctl (systemd), mke2fs, sgdisk, python3.
# Works without root (files are then owned by the user); as root, home directories are
# given to their accounts' uids.
set -euo pipefail
export LC_ALL=C TZ=UTC
export PATH="$PATH:/usr/sbin:/sbin"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
out="$build/rules"
stamp="$out/.complete"
sources="$here/rules"

LEAKY_DISK_GUID=6b1f0c2e-4d3a-4b8e-9f7a-2c1d0e9f8a01
LEAKY_P1_GUID=1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c01
LEAKY_P2_GUID=1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c02
LEAKY_ROOT_UUID=4c1e5a7b-2d3f-4e8a-9b6c-0d1e2f3a4b51
LEAKY_HOME_UUID=8f2a6c4e-1b3d-4a5f-8e7c-9d0b1a2c3e62
LEAKY_MACHINE_ID=3f9c2b7e5d1a4c8e9b0f6a2d4e8c1b57

# mkext OUT SIZE TREE MKE2FS-ARGS...: an ext4 image of TREE in a sparse file.
mkext() {
    local file="$1" size="$2" tree="$3"
    shift 3
    rm -f "$file"
    truncate -s "$size" "$file"
    mke2fs -q -F -t ext4 -b 4096 -I 256 "$@" -d "$tree" "$file"
}

# leaky_disk TREE OUT SCRATCH: the leaky image's disk from TREE: GPT, p1 the root
# filesystem, which holds /home as an empty mount point, p2 what is under /home.
leaky_disk() {
    local tree="$1" disk="$2" scratch="$3"
    cp -a "$tree" "$scratch/leaky-root"
    find "$scratch/leaky-root/home" -mindepth 1 -delete
    mkext "$scratch/leaky-root.fs" 24M "$scratch/leaky-root" -L root -U "$LEAKY_ROOT_UUID"
    if [[ "${LEAKY_RESIDUE:-0}" == 1 ]]; then
        # What a builder removed with plain rm: debugfs's rm frees the blocks and leaves
        # what they hold, as the kernel does (residue.secrets, residue.unshredded).
        printf '[default]\naws_access_key_id = AKIA4R7YQNPW2KXD5VTM\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn8yX4cL3vGk9QeR2mT7pW5sJ0hA6dF1uK8zN4oE3bY root@builder\n' \
            >"$scratch/deleted"
        debugfs -w -R "write $scratch/deleted /root/deleted-credentials" "$scratch/leaky-root.fs" >/dev/null 2>&1
        debugfs -w -R "rm /root/deleted-credentials" "$scratch/leaky-root.fs" >/dev/null 2>&1
        rm -f "$scratch/deleted"
    fi
    mkext "$scratch/leaky-home.fs" 8M "$tree/home" -L home -U "$LEAKY_HOME_UUID"
    rm -rf "$scratch/leaky-root"
    rm -f "$disk"
    truncate -s 34M "$disk"
    # p1: sectors 2048..51199 (24 MiB at 1 MiB); p2: 51200..67583 (8 MiB at 25 MiB).
    sgdisk -U "$LEAKY_DISK_GUID" \
        -n 1:2048:51199 -t 1:8300 -c 1:root -u 1:"$LEAKY_P1_GUID" \
        -n 2:51200:67583 -t 2:8302 -c 2:home -u 2:"$LEAKY_P2_GUID" \
        "$disk" >/dev/null
    dd if="$scratch/leaky-root.fs" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$scratch/leaky-home.fs" of="$disk" bs=1M seek=25 conv=notrunc,sparse status=none
    rm -f "$scratch"/leaky-*.fs
}

# case_disk CASE TREE OUT SCRATCH: the disk image of rule case CASE (leaky, sealed, tricky)
# from TREE.
case_disk() {
    case "$1" in
        leaky) leaky_disk "$2" "$3" "$4" ;;
        sealed) mkext "$3" 16M "$2" -L rootfs ;;
        tricky) mkext "$3" 16M "$2" -L cloudimg-rootfs ;;
        *) echo "build-rule-images.sh: no rule case $1" >&2; return 2 ;;
    esac
}

# --disk CASE TREE OUT: only lays TREE out as CASE.img is (tests/remediation.rs rebuilds an
# image from a copy its remediation script cleaned); no stamp, no other image.
if [[ "${1:-}" == --disk ]]; then
    if [[ $# -ne 4 ]]; then
        echo "usage: build-rule-images.sh --disk leaky|sealed|tricky TREE OUT" >&2
        exit 2
    fi
    scratch="$(mktemp -d "$(dirname "$4")/.rule-disk.XXXXXX")"
    trap 'rm -rf "$scratch"' EXIT
    case_disk "$2" "$3" "$4" "$scratch"
    exit 0
fi

mkdir -p "$build"
flock "$build/.lock" bash "$here/build-images.sh"

want="$(
    sha256sum "$script" | cut -d' ' -f1
    cd "$sources" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
)"
want="$(echo "$want" | tr '\n' ' ')"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

for tool in ssh-keygen openssl systemctl mke2fs sgdisk python3 sha256sum truncate dd; do
    command -v "$tool" >/dev/null || { echo "build-rule-images.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
rm -rf "$build"/.tmp-rules.* "$build"/.old-rules.*
tmp="$(mktemp -d "$build/.tmp-rules.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
if [[ "$(id -u)" == 0 ]]; then is_root=1; else is_root=0; fi

# prepare CASE: copies the committed tree, gives it the modes of a real system (git keeps
# only the executable bit, and a checkout follows the user's umask), merges /usr as Debian
# 12 and Ubuntu 22.04 do, and fills in the fake password hashes.
prepare() {
    local case="$1" tree="$tmp/$1/tree"
    mkdir -p "$tree"
    cp -R "$sources/$case/." "$tree/"
    chmod 755 "$tree"
    find "$tree" -type d -exec chmod 755 {} +
    find "$tree" -type f -exec chmod 644 {} +
    for dir in usr/sbin usr/bin usr/local/bin etc/init.d; do
        if [[ -d "$tree/$dir" ]]; then find "$tree/$dir" -type f -exec chmod 755 {} +; fi
    done
    mkdir -p "$tree/usr/bin" "$tree/usr/sbin" "$tree/usr/lib" "$tree/var/tmp" "$tree/tmp"
    ln -s usr/bin "$tree/bin"
    ln -s usr/sbin "$tree/sbin"
    ln -s usr/lib "$tree/lib"
    chmod 1777 "$tree/tmp" "$tree/var/tmp"
    chmod 640 "$tree/etc/shadow"
    if [[ -d "$tree/root" ]]; then chmod 700 "$tree/root"; fi
    if [[ -d "$tree/root/.ssh" ]]; then chmod 700 "$tree/root/.ssh"; fi
    python3 - "$tree" <<'PY'
import os, random, re, sys

tree = sys.argv[1]
CRYPT = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

def fake(scheme, seed):
    """A well-formed crypt(3) string of random characters: no password hashes to it."""
    r = random.Random(f"amiscan fake hash {scheme} {seed}")
    pick = lambda n: "".join(r.choice(CRYPT) for _ in range(n))
    if scheme == "sha512crypt":
        return f"$6${pick(16)}${pick(86)}"
    if scheme == "yescrypt":
        return f"$y$j9T${pick(22)}${pick(43)}"
    if scheme == "md5crypt":
        return f"$1${pick(8)}${pick(22)}"
    raise SystemExit(f"unknown fake hash scheme {scheme}")

pattern = re.compile(rb"@HASH:([a-z0-9]+):([A-Za-z0-9_-]+)@")
for dirpath, _, names in os.walk(tree):
    for name in names:
        path = os.path.join(dirpath, name)
        if os.path.islink(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if b"@HASH:" not in data:
            continue
        data = pattern.sub(lambda m: fake(m[1].decode(), m[2].decode()).encode(), data)
        with open(path, "wb") as f:
            f.write(data)
PY
}

# binaries TREE: files that are binary in real systems, made from seeded random bytes.
binaries() {
    python3 - "$1" "$LEAKY_MACHINE_ID" <<'PY'
import os, random, struct, sys

tree, machine_id = sys.argv[1], sys.argv[2]
r = random.Random("amiscan leaky binaries")

def put(rel, data, mode=0o644):
    path = os.path.join(tree, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)

# wtmp: one utmp(5) record (384 bytes on x86-64), a login from a documentation address.
record = struct.pack("<hxxi32s4s32s256shhiii4I20x", 7, 812, b"pts/0", b"ts/0", b"admin",
                     b"203.0.113.7", 0, 0, 0, 1717409642, 0, 0xCB007107, 0, 0, 0)
assert len(record) == 384, len(record)
put("var/log/wtmp", record, 0o664)
# A journal file: systemd-journald's magic, then random "entries".
put(f"var/log/journal/{machine_id}/system.journal", b"LPKSHHRH" + r.randbytes(8184), 0o640)
# A core dump: an ELF header and memory.
put("var/crash/core.1", b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<H", 4) + r.randbytes(12270), 0o600)
# A keytab: format version 0x0502, then an entry.
put("etc/krb5.keytab", b"\x05\x02" + struct.pack(">i", 90) + r.randbytes(90), 0o600)
put("var/lib/systemd/random-seed", r.randbytes(512), 0o600)
PY
}

# keypair PATH COMMENT: an ed25519 key pair with no passphrase.
keypair() {
    ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1" </dev/null >/dev/null
}

# quiet CMD...: runs CMD, showing its output only when it fails (systemctl --root tells of
# every link it makes, and warns that the targets do not exist in the tree).
quiet() {
    local log
    if ! log="$("$@" 2>&1)"; then
        echo "build-rule-images.sh: $* failed:" >&2
        echo "$log" >&2
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# leaky: everything a careless bake leaves behind.
# ---------------------------------------------------------------------------------------
prepare leaky
t="$tmp/leaky/tree"
chmod 644 "$t/etc/shadow"           # readable by everyone
chmod 600 "$t/etc/shadow-"
chmod 666 "$t/opt/app/settings.ini" # writable by everyone
chmod 4755 "$t/usr/local/bin/backup-helper"
binaries "$t"
quiet ssh-keygen -A -f "$t"        # host keys, as the openssh-server postinst makes them
keypair "$tmp/builder" "builder@build-host"
mkdir -p "$t/root/.ssh"
chmod 700 "$t/root/.ssh"
{
    echo "# added by the build pipeline"
    cat "$tmp/builder.pub"
} >"$t/root/.ssh/authorized_keys"
chmod 600 "$t/root/.ssh/authorized_keys"
rm -f "$tmp/builder" "$tmp/builder.pub"
mkdir -p "$t/home/admin/.ssh"
chmod 700 "$t/home/admin/.ssh"
keypair "$t/home/admin/.ssh/deploy.txt" "deploy@ci"   # a private key under a harmless name
# Credentials (creds.*), generated now so no secret is ever committed: an AWS key pair,
# GitHub, Slack and Google tokens and a database URL with its password in an environment
# file, a .netrc password and a TLS key outside ~/.ssh.
python3 - "$t" <<'PY'
import os, secrets, string, sys
root = sys.argv[1]
b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
alnum = string.ascii_letters + string.digits
key_id = "AKIA" + "".join(secrets.choice(b32) for _ in range(16))
secret = "".join(secrets.choice(alnum + "+/") for _ in range(40))
import zlib
base62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
random_part = "".join(secrets.choice(alnum) for _ in range(30))
value, checksum = zlib.crc32(random_part.encode()), ""
for _ in range(6):  # GitHub's token checksum: CRC-32 of the random part, base62
    value, digit = divmod(value, 62)
    checksum = base62[digit] + checksum
token = "ghp_" + random_part + checksum
slack = "xoxb-" + "".join(secrets.choice(string.digits) for _ in range(12)) + "-" + \
    "".join(secrets.choice(string.digits) for _ in range(13)) + "-" + \
    "".join(secrets.choice(alnum) for _ in range(24))
google = "AIza" + "".join(secrets.choice(alnum + "_-") for _ in range(35))
db_password = "".join(secrets.choice(alnum) for _ in range(18))
os.makedirs(f"{root}/root/.aws", exist_ok=True)
with open(f"{root}/root/.aws/credentials", "w") as f:
    f.write(f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
os.makedirs(f"{root}/opt/app", exist_ok=True)
with open(f"{root}/opt/app/deploy.env", "w") as f:
    f.write(f"GITHUB_TOKEN={token}\nSLACK_BOT_TOKEN={slack}\nGOOGLE_MAPS_API_KEY={google}\n"
            f"DATABASE_URL=postgres://app:{db_password}@db.internal:5432/app\n")
with open(f"{root}/home/admin/.netrc", "w") as f:
    f.write("machine git.internal.example login deploy password " + "".join(secrets.choice(alnum) for _ in range(20)) + "\n")
PY
mkdir -p "$t/etc/ssl/private"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/etc/ssl/private/leaky.key" 2>/dev/null
quiet systemctl --root="$t" enable vsftpd.service rpcbind.service
ln -s "instances/i-0a1b2c3d4e5f60718" "$t/var/lib/cloud/instance"
if [[ $is_root == 1 ]]; then
    chown -R 1000:1000 "$t/home/admin"
fi
LEAKY_RESIDUE=1 case_disk leaky "$t" "$tmp/leaky.img" "$tmp"

# ---------------------------------------------------------------------------------------
# sealed: what a careful publisher ships.
# ---------------------------------------------------------------------------------------
prepare sealed
t="$tmp/sealed/tree"
mkdir -p "$t/home/admin/.ssh" "$t/root/.ssh"
chmod 700 "$t/home/admin/.ssh" "$t/root/.ssh"
# Only public material in ~/.ssh: a public key (its private half is thrown away) and
# known_hosts.
keypair "$tmp/admin" "admin@workstation"
mv "$tmp/admin.pub" "$t/home/admin/.ssh/id_ed25519.pub"
rm -f "$tmp/admin"
keypair "$tmp/gitserver" "git.example.internal"
echo "git.example.internal $(cut -d' ' -f1,2 "$tmp/gitserver.pub")" >"$t/home/admin/.ssh/known_hosts"
rm -f "$tmp/gitserver" "$tmp/gitserver.pub"
# /tmp holds only an empty directory; the other directories rules look into are empty.
mkdir -p "$t/tmp/.X11-unix" "$t/var/log/journal" "$t/var/lib/dhcp" "$t/var/crash" \
    "$t/var/lib/cloud/instances" "$t/var/lib/cloud/data" "$t/var/lib/cloud/sem" \
    "$t/var/spool/cron/crontabs" "$t/var/mail" "$t/var/lib/dbus" "$t/var/log/amazon/ssm"
chmod 1777 "$t/tmp/.X11-unix"
chmod 1730 "$t/var/spool/cron/crontabs"
ln -s /etc/machine-id "$t/var/lib/dbus/machine-id"
quiet systemctl --root="$t" enable ssh.service
quiet systemctl --root="$t" mask telnet.socket
if [[ $is_root == 1 ]]; then
    chown -R 1000:1000 "$t/home/admin"
    chown 0:42 "$t/etc/shadow"
fi
case_disk sealed "$t" "$tmp/sealed.img" "$tmp"

# ---------------------------------------------------------------------------------------
# tricky: failures that only a careful reading finds.
# ---------------------------------------------------------------------------------------
prepare tricky
t="$tmp/tricky/tree"
mkdir -p "$t/etc/ssh/keys"
keypair "$tmp/ops" "ops@bastion"
cp "$tmp/ops.pub" "$t/etc/ssh/keys/admin"     # AuthorizedKeysFile /etc/ssh/keys/%u
rm -f "$tmp/ops" "$tmp/ops.pub"
mkdir -p "$t/etc/rc3.d"
ln -s ../init.d/telnetd "$t/etc/rc3.d/S01telnetd"
quiet systemctl --root="$t" enable ssh.service   # vsftpd stays disabled
if [[ $is_root == 1 ]]; then
    chown -R 1000:1000 "$t/home/admin"
    chown -R 1001:1001 "$t/srv/tester"
    chown -R 1002:1002 "$t/home/deploy"
    chown 0:42 "$t/etc/shadow"
fi
case_disk tricky "$t" "$tmp/tricky.img" "$tmp"

# ---------------------------------------------------------------------------------------
# Into place, stamp last.
# ---------------------------------------------------------------------------------------
old="$(mktemp -d "$build/.old-rules.XXXXXX")"
if [[ -d "$out" ]]; then mv "$out" "$old/"; fi
mv "$tmp" "$out"
trap - EXIT
echo "$want" >"$out/.complete.new"
mv "$out/.complete.new" "$stamp"
rm -rf "$old"
echo "build-rule-images.sh: built 3 images in $((SECONDS - started)) s" >&2
