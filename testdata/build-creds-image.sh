#!/usr/bin/env bash
# Builds the image tests/creds.rs scans for the credential rules (rules/creds.yaml), into
# testdata/build/creds/ (git-ignored). Nothing secret is committed: every key, token and
# password is generated here, at build time, from /dev/urandom and real tools (ssh-keygen,
# openssl, puttygen when installed), and written down in planted.json for the tests.
#
#   creds/creds.img     GPT: p1 ext4 root (UUID $CREDS_ROOT_UUID), p2 ext4 /home (UUID
#                       $CREDS_HOME_UUID, mounted through the root's /etc/fstab), a small
#                       Debian 12 guest (os-release, passwd, a dpkg status and md5sums, an
#                       sshd placeholder) with credentials planted where bakes leave them:
#                       ~/.aws, shell history, app configs in YAML, JSON, INI (one with CRLF
#                       line endings) and KEY=value files, /etc/environment, credential
#                       stores (.netrc, .pgpass, .git-credentials, docker, kube, gcloud,
#                       azure, npm, pypi, mysql, s3cmd, boto), PEM keys of every flavour,
#                       OpenSSH and PuTTY keys, a PKCS#12 keystore, tokens of every kind the
#                       rules know, rotated logs compressed with gzip, xz and zstd, tokens
#                       straddling 256 KiB read-buffer boundaries, and a 2 GiB sparse file
#                       with a token at its end (stored sparse: the image stays small).
#                       Decoys that must not fail sit beside them: documented example keys,
#                       placeholders, public keys and certificates, binaries holding
#                       key-shaped bytes, and keys a package shipped (checked against
#                       /var/lib/dpkg/info/*.md5sums) — unmodified ones (at most `info`)
#                       and modified or unlisted ones (which fail).
#   creds/planted.json  every planted value with the rule, guest path and line(s) that must
#                       report it, the decoys, and the files to be skipped (binary, too
#                       large). The tests read expectations only from here.
#   creds/tree          the tree the image was made from (home included), for debugging.
#
# Runs once: testdata/build/creds/.complete holds the sha256 of this script; when it
# matches, the script exits at once (the secrets stay those of the last build, so
# planted.json always matches the image). Otherwise it builds into a temporary directory,
# moves it into place and writes the stamp last. It first runs build-images.sh (under
# testdata/build/.lock), because that script clears all of testdata/build/ when it
# rebuilds. Callers serialise runs of this script with
# `flock testdata/build/.lock-creds bash testdata/build-creds-image.sh`.
#
# Needs: ssh-keygen (openssh-client), openssl, mke2fs (e2fsprogs), sgdisk (gdisk), gzip,
# xz (xz-utils), zstd, python3. Uses puttygen (putty-tools) when installed, for a second
# PuTTY key; the first is always written by this script in the documented
# PuTTY-User-Key-File-3 format around a real RSA key. Works without root; as root, homes
# are given to their accounts' uids.
set -euo pipefail
export LC_ALL=C TZ=UTC
export PATH="$PATH:/usr/sbin:/sbin"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
out="$build/creds"
stamp="$out/.complete"

mkdir -p "$build"
flock "$build/.lock" bash "$here/build-images.sh"

want="$(sha256sum "$script" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

for tool in ssh-keygen openssl mke2fs sgdisk gzip xz zstd python3 sha256sum md5sum truncate dd; do
    command -v "$tool" >/dev/null || { echo "build-creds-image.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
rm -rf "$build"/.tmp-creds.* "$build"/.old-creds.*
tmp="$(mktemp -d "$build/.tmp-creds.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
if [[ "$(id -u)" == 0 ]]; then is_root=1; else is_root=0; fi

CREDS_DISK_GUID=9d3c1e7a-5b2f-4c8d-8e6a-1f0b2c3d4e01
CREDS_P1_GUID=2b3c4d5e-6f70-4a8b-9c0d-1e2f3a4b5c01
CREDS_P2_GUID=2b3c4d5e-6f70-4a8b-9c0d-1e2f3a4b5c02
CREDS_ROOT_UUID=5d2f6b8c-3e4a-4f9b-8c7d-1e2f3a4b5c61
CREDS_HOME_UUID=9a3b7d5f-2c4e-4b6a-9f8d-0e1c2b3d4f72

# quiet CMD...: runs CMD, showing its output only when it fails.
quiet() {
    local log
    if ! log="$("$@" 2>&1)"; then
        echo "build-creds-image.sh: $* failed:" >&2
        echo "$log" >&2
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# Keys, made by the real tools into $keys (scratch; the tree gets copies).
# ---------------------------------------------------------------------------------------
keys="$tmp/keys"
mkdir -p "$keys"
rsa() { quiet openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
ec() { quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
selfsigned() { # selfsigned KEY CERT CN
    quiet openssl req -x509 -new -key "$1" -out "$2" -subj "/CN=$3" -days 825 -sha256
}
pass() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }

# PKCS#8 ("BEGIN PRIVATE KEY"): the TLS key in /etc/ssl/private.
rsa "$keys/server.key"
# Traditional ("BEGIN RSA PRIVATE KEY"), as `openssl rsa -traditional` writes it.
rsa "$keys/legacy.pkcs8"
quiet openssl rsa -in "$keys/legacy.pkcs8" -traditional -out "$keys/legacy.key"
# Traditional EC ("BEGIN EC PRIVATE KEY").
ec "$keys/ec.pkcs8"
quiet openssl pkey -in "$keys/ec.pkcs8" -traditional -out "$keys/ec.key"
# Encrypted PKCS#8 ("BEGIN ENCRYPTED PRIVATE KEY"); the passphrase is thrown away.
rsa "$keys/signing.plain"
quiet openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$keys/signing.plain" -out "$keys/signing.pem" \
    -passout "pass:$(pass)"
# Traditional DSA ("BEGIN DSA PRIVATE KEY").
quiet openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -out "$keys/dsa.params"
quiet openssl genpkey -paramfile "$keys/dsa.params" -out "$keys/dsa.pkcs8"
quiet openssl pkey -in "$keys/dsa.pkcs8" -traditional -out "$keys/dsa.key"
# Ed25519 in PKCS#8, and its public half (a decoy).
quiet openssl genpkey -algorithm ed25519 -out "$keys/jwt.key"
quiet openssl pkey -in "$keys/jwt.key" -pubout -out "$keys/jwt-public.pem"
# A certificate followed by its key in one file (a "bundle").
rsa "$keys/bundle.key"
selfsigned "$keys/bundle.key" "$keys/bundle.crt" "api.example.internal"
# A certificate alone (a decoy; its key is thrown away).
ec "$keys/app-ca.key"
selfsigned "$keys/app-ca.key" "$keys/app.crt" "app.example.internal"
# A PKCS#12 keystore (certificate + key), password thrown away.
rsa "$keys/p12.key"
selfsigned "$keys/p12.key" "$keys/p12.crt" "keystore.example.internal"
quiet openssl pkcs12 -export -in "$keys/p12.crt" -inkey "$keys/p12.key" -name app \
    -out "$keys/keystore.p12" -passout "pass:$(pass)"
# OpenSSH keys outside any ~/.ssh, one in a home but outside .ssh, and one inside ~/.ssh
# (which ssh.user-keypairs reports, not creds.private-keys).
ssh-keygen -q -t ed25519 -N '' -C deploy@ci -f "$keys/deploy_ed25519" </dev/null >/dev/null
ssh-keygen -q -t rsa -b 2048 -N '' -C jenkins@build -f "$keys/jenkins_rsa" </dev/null >/dev/null
ssh-keygen -q -t rsa -b 2048 -N '' -C admin@old-laptop -f "$keys/admin_backup_rsa" </dev/null >/dev/null
ssh-keygen -q -t ed25519 -N '' -C admin@workstation -f "$keys/admin_ed25519" </dev/null >/dev/null
ssh-keygen -q -t ed25519 -N '' -C deploy-key -f "$keys/deploy_key" </dev/null >/dev/null
# PuTTY: the script writes one PPK v3 around this RSA key; puttygen, if present, another.
rsa "$keys/ppk.pem"
have_puttygen=0
if command -v puttygen >/dev/null; then
    ssh-keygen -q -t ed25519 -N '' -C windows-build -f "$keys/putty_src" </dev/null >/dev/null
    quiet puttygen "$keys/putty_src" -O private -o "$keys/puttygen.ppk" --ppk-param version=3
    have_puttygen=1
fi
# Google service-account keys (PKCS#8, as Google issues them).
rsa "$keys/sa-app.pem"
rsa "$keys/sa-gcloud.pem"
# kubeconfig: a cluster CA certificate and a client key.
ec "$keys/kube-ca.key"
selfsigned "$keys/kube-ca.key" "$keys/kube-ca.crt" "kubernetes"
ec "$keys/kube-client.pkcs8"
quiet openssl pkey -in "$keys/kube-client.pkcs8" -traditional -out "$keys/kube-client.key"
selfsigned "$keys/kube-client.key" "$keys/kube-client.crt" "admin"
# Test keys a package ships (python3-example). "orig" is what the package shipped (its
# MD5 is in the md5sums file); the modified files hold another key.
rsa "$keys/pkg-test_key.pem"
ec "$keys/pkg-server.pem"
rsa "$keys/pkg-client_key.orig"
rsa "$keys/pkg-client_key.pem"
ec "$keys/pkg-client.orig"
ec "$keys/pkg-client.pem"
ec "$keys/pkg-extra.pem"

# ---------------------------------------------------------------------------------------
# The tree, the planted text files and planted.json (python3: exact lines and offsets).
# ---------------------------------------------------------------------------------------
t="$tmp/tree"
mkdir -p "$t"
python3 - "$t" "$keys" "$tmp/planted.json" "$have_puttygen" "$CREDS_ROOT_UUID" "$CREDS_HOME_UUID" <<'PY'
import base64, hashlib, hmac, json, os, random, re, shutil, string, struct, subprocess, sys, zlib

tree, keys, planted_json, have_puttygen, root_uuid, home_uuid = sys.argv[1:7]
have_puttygen = have_puttygen == "1"

ALNUM = string.ascii_letters + string.digits
B32 = string.ascii_uppercase + "234567"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"
DIGITS = string.digits
# Random values never look like the placeholders or examples an allowlist may name (a
# value that did would make a test fail once in a great while).
LOOKS_FAKE = re.compile(
    r"(?i)example|test|dummy|sample|fake|placeholder|changeme|abcd|1234|0000|xxxx|(.)\1\1\1")


def rnd(alphabet, n):
    """n characters of `alphabet`, uniformly from /dev/urandom."""
    limit = 256 - 256 % len(alphabet)
    while True:
        out = []
        while len(out) < n:
            for b in os.urandom(2 * n):
                if b < limit and len(out) < n:
                    out.append(alphabet[b % len(alphabet)])
        s = "".join(out)
        if not LOOKS_FAKE.search(s):
            return s


def b64(nbytes):
    while True:
        s = base64.b64encode(os.urandom(nbytes)).decode()
        if not LOOKS_FAKE.search(s):
            return s


def aws_id(prefix="AKIA"):
    return prefix + rnd(B32, 16)


def aws_secret():
    return b64(30)  # 40 characters of [A-Za-z0-9+/]


BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def with_checksum(prefix):
    """GitHub's and npm's token format: 30 random base62 characters, then their CRC-32 in
    6 base62 characters (a token whose checksum is wrong is not reported)."""
    random_part = rnd(ALNUM, 30)
    value, checksum = zlib.crc32(random_part.encode()), ""
    for _ in range(6):
        value, digit = divmod(value, 62)
        checksum = BASE62[digit] + checksum
    return prefix + random_part + checksum


def ghp(prefix="ghp_"):
    return with_checksum(prefix)


def github_pat():
    return "github_pat_" + rnd(ALNUM, 22) + "_" + rnd(ALNUM, 59)


def glpat():
    return "glpat-" + rnd(URLSAFE, 20)


def slack(kind="xoxb"):
    if kind == "xoxb":
        return "xoxb-" + rnd("123456789", 1) + rnd(DIGITS, 11) + "-" + rnd("123456789", 1) + rnd(DIGITS, 12) + "-" + rnd(ALNUM, 24)
    return "xoxp-" + rnd("123456789", 1) + rnd(DIGITS, 11) + "-" + rnd("123456789", 1) + rnd(DIGITS, 11) + "-" + rnd("123456789", 1) + rnd(DIGITS, 12) + "-" + rnd(HEX, 32)


def sk_live():
    return "sk_live_" + rnd(ALNUM, 24)


def aiza():
    return "AIza" + rnd(URLSAFE, 35)


def sendgrid():
    return "SG." + rnd(URLSAFE, 22) + "." + rnd(URLSAFE, 43)


def twilio_sk():
    return "SK" + rnd(HEX, 32)


def npm_token():
    return with_checksum("npm_")


def pypi_token():
    return "pypi-AgEIcHlwaS5vcmc" + rnd(URLSAFE, 60)


def vault_token():
    return "hvs." + rnd(URLSAFE, 91)


def azure_account_key():
    return b64(64)  # 88 characters, ending in "=="


def password(n=20):
    return rnd(ALNUM + "!%*+-._^~", n)  # nothing a format treats specially (: # = quotes)


FIXED = {  # characters at the start of a value that are the same in every such value
    "ghp_": 4, "gho_": 4, "ghu_": 4, "ghs_": 4, "ghr_": 4, "github_pat_": 11, "glpat-": 6,
    "xoxb-": 5, "xoxp-": 5, "sk_live_": 8, "AIza": 4, "SG.": 3, "SK": 2, "npm_": 4,
    "pypi-AgEIcHlwaS5vcmc": 20, "hvs.": 4, "AKIA": 4, "ASIA": 4, "ABIA": 4, "ACCA": 4,
    "IQoJb3JpZ2luX2VjE": 17,
}


def fixed_prefix(value):
    return max((n for p, n in FIXED.items() if value.startswith(p)), default=0)


# ---------------------------------------------------------------------------------------
# What the tests will expect.
# ---------------------------------------------------------------------------------------
SEVERITY = {"creds.aws": "critical", "creds.private-keys": "high", "creds.files": "high",
            "creds.tokens": "high", "creds.saas": "high", "creds.cloud": "critical",
            "creds.connection-strings": "high", "creds.passwords": "medium"}
# Kinds the catalogue files under a rule of their own rather than creds.tokens.
RULE_OF_KIND = {"slack": "creds.saas", "stripe": "creds.saas", "sendgrid": "creds.saas",
                "twilio": "creds.saas", "google-api": "creds.cloud", "google-sa": "creds.cloud",
                "azure": "creds.cloud"}
expect, leaks, decoys, not_in_rule, in_rule = [], [], [], [], []
binary, too_large, secret_paths = [], [], set()
leak_names = set()

SUBJECT = {
    "aws-id": ["access key", "key id"], "aws-secret": ["secret"], "aws-other": ["aws"],
    "github": ["github"], "gitlab": ["gitlab"], "slack": ["slack"], "stripe": ["stripe"],
    "google-api": ["google"], "google-sa": ["google", "service account", "service-account"],
    "sendgrid": ["sendgrid"], "twilio": ["twilio"], "npm": ["npm"], "pypi": ["pypi"],
    "vault": ["vault"], "azure": ["azure"],
    "pem": ["private key"], "openssh": ["openssh", "private key"], "putty": ["putty"],
    "pkcs12": ["pkcs#12", "pkcs12", "pkcs 12", "keystore"],
    "netrc": ["netrc"], "pgpass": ["pgpass", "postgres"], "git-credentials": ["git"],
    "docker": ["docker"], "kube": ["kube"], "gcloud": ["gcloud", "google"],
    "azure-cli": ["azure"], "npmrc": ["npm"], "pypirc": ["pypi"], "mycnf": ["mysql", "my.cnf"],
    "s3cfg": ["s3"], "boto": ["boto"], "env": [],
    "uri": ["url", "jdbc", "connection"], "generic": ["password"],
}


def leak(name, value, fixed=None):
    """A value no output may show (nor any 12 characters of it past its fixed prefix)."""
    if name in leak_names:
        raise SystemExit(f"duplicate leak name {name}")
    leak_names.add(name)
    leaks.append({"name": name, "value": value,
                  "fixed_prefix": fixed_prefix(value) if fixed is None else fixed})


def find(rule, path, lines, subject, value=None, name=None, tags=(), severity=None):
    """`rule` must report `path` at one of `lines` (None: a finding without a line)."""
    if not isinstance(lines, list):
        lines = [lines]
    if rule == "creds.tokens":
        rule = RULE_OF_KIND.get(subject, rule)
    secret_paths.add(path)
    expect.append({
        "name": name or f"{rule} at {path}:" + " or ".join(str(l) for l in lines),
        "rule": rule, "path": path, "lines": lines, "subject": SUBJECT[subject],
        "value": value, "severity": severity or SEVERITY[rule], "tags": list(tags),
    })


def decoy(path, line=None, allow="none", why=""):
    decoys.append({"path": path, "line": line, "allow": allow, "why": why})


def put(path, data, mode=0o644):
    full = os.path.join(tree, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(full, "wb") as f:
        f.write(data)
    os.chmod(full, mode)
    return data


def line_of(text, needle, what=None):
    if isinstance(text, bytes):
        text = text.decode()
    hits = [i + 1 for i, l in enumerate(text.split("\n")) if needle in l]
    if len(hits) != 1:
        raise SystemExit(f"{what or needle!r} is on lines {hits}")
    return hits[0]


def read_key(name):
    with open(os.path.join(keys, name)) as f:
        return f.read()


def pem_blocks(text):
    """(BEGIN line number, label, body lines) of every PEM block."""
    blocks, lines = [], text.split("\n")
    for i, l in enumerate(lines):
        m = re.match(r"-----BEGIN (.*)-----$", l)
        if m:
            body = []
            for b in lines[i + 1:]:
                if b.startswith("-----END"):
                    break
                if ":" not in b and b:
                    body.append(b)
            blocks.append((i + 1, m[1], body))
    return blocks


def leak_pem(name, text):
    """The body of every private-key block (the first line, mostly fixed DER, aside)."""
    n = 0
    for _, label, body in pem_blocks(text):
        if "PRIVATE KEY" not in label:
            continue
        for i, b in enumerate(body[1:-1]):
            leak(f"{name} body {n}.{i}", b, 0)
        n += 1
    if n == 0:
        raise SystemExit(f"{name}: no private key block")


def plant_key(path, text, subject, name, tags=(), mode=0o600, rule="creds.private-keys",
              severity=None):
    put(path, text, mode)
    for line, label, _ in pem_blocks(text):
        if "PRIVATE KEY" in label:
            find(rule, path, line, subject, name=f"{name} ({label})", tags=tags, severity=severity)
    leak_pem(name, text)


LOG_WORDS = ["GET", "POST", "PUT", "DELETE"]


def log_line(rng, day=1):
    return (f"2024-06-{day:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
            f"{rng.randrange(60):02d}Z INFO app.http: {rng.choice(LOG_WORDS)} "
            f"/api/v1/items/{rng.randrange(100000)} {rng.choice([200, 200, 204, 304, 404])} "
            f"{rng.randrange(1, 900)}ms\n")


def boundary_text(placements, total, seed, tail=None):
    """Bytes of a log-like text with each token at an exact byte offset.

    placements: (offset of the token's first byte, text before it on its line, token,
    text after it). Returns (data, [line of each token])."""
    rng = random.Random(seed)
    buf, lines = bytearray(), []
    for offset, before, token, after in placements:
        start = offset - len(before)
        while start - len(buf) > 200:
            buf += log_line(rng).encode()
        gap = start - len(buf)
        if gap < 0:
            raise SystemExit(f"placement at {offset} overlaps the previous one")
        if gap == 1:
            buf += b"\n"
        elif gap > 1:
            buf += b"#" * (gap - 1) + b"\n"
        lines.append(buf.count(b"\n") + 1)
        buf += (before + token + after + "\n").encode()
        if buf[offset:offset + len(token)] != token.encode():
            raise SystemExit(f"token not at {offset}")
    while len(buf) < total:
        buf += log_line(rng).encode()
    if tail is not None:
        lines.append(buf.count(b"\n") + 1)
        buf += tail.encode()  # no newline at the end of the file
    return bytes(buf), lines


# ---------------------------------------------------------------------------------------
# The base system.
# ---------------------------------------------------------------------------------------
put("/etc/os-release", """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
""")
put("/etc/debian_version", "12.5\n")
put("/etc/hostname", "app-server\n")
put("/etc/passwd", """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:105:65534::/run/sshd:/usr/sbin/nologin
admin:x:1000:1000:Debian:/home/admin:/bin/bash
tester:x:1001:1001:QA tester:/home/tester:/bin/bash
app:x:998:998:app service:/opt/app:/usr/sbin/nologin
jenkins:x:997:997:Jenkins:/var/lib/jenkins:/bin/bash
""")
put("/etc/group", """root:x:0:
daemon:x:1:
sudo:x:27:admin
ssl-cert:x:109:
nogroup:x:65534:
admin:x:1000:
tester:x:1001:
app:x:998:
jenkins:x:997:
""")
put("/etc/shadow", """root:*:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
sshd:*:19700:0:99999:7:::
admin:!:19700:0:99999:7:::
tester:!:19700:0:99999:7:::
app:!!:19700::::::
jenkins:!!:19700::::::
""", 0o640)
put("/etc/fstab", f"""# /etc/fstab: static file system information.
UUID={root_uuid} / ext4 rw,discard,errors=remount-ro 0 1
UUID={home_uuid} /home ext4 defaults,nodev 0 2
""")
put("/usr/sbin/sshd", "#!/bin/sh\n# amiscan test image: stands in for OpenSSH's sshd binary (never run).\nexit 0\n", 0o755)
put("/etc/ssh/sshd_config", """Include /etc/ssh/sshd_config.d/*.conf
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
""")

# dpkg: base-files, openssh-server and python3-example, which ships test keys.
pkg_files = {}  # guest path -> bytes the package shipped


def shipped(path, data):
    pkg_files[path] = data.encode() if isinstance(data, str) else data


init_py = '"""An example library (test fixtures included)."""\n__version__ = "2.1.0"\n'
put("/usr/lib/python3/dist-packages/example/__init__.py", init_py)
shipped("/usr/lib/python3/dist-packages/example/__init__.py", init_py)

# Shipped and unmodified: reported at most at `info`.
for path, name in [("/usr/share/doc/python3-example/test_key.pem", "pkg-test_key.pem"),
                   ("/usr/lib/python3/dist-packages/example/tests/server.pem", "pkg-server.pem")]:
    text = read_key(name)
    put(path, text)
    shipped(path, text)
    decoy(path, None, "info", "a private key shipped unmodified by python3-example (md5sums match)")
    leak_pem(name, text)
# Shipped, then replaced by another key: the MD5 no longer matches, so it fails.
for path, orig, now in [
        ("/usr/share/doc/python3-example/examples/client_key.pem", "pkg-client_key.orig", "pkg-client_key.pem"),
        ("/usr/lib/python3/dist-packages/example/tests/client.pem", "pkg-client.orig", "pkg-client.pem")]:
    shipped(path, read_key(orig))
    plant_key(path, read_key(now), "pem", f"modified package file {path}", tags=["package"], mode=0o644)
# In the package's directory but not in its md5sums: fails.
plant_key("/usr/lib/python3/dist-packages/example/tests/extra.pem", read_key("pkg-extra.pem"), "pem",
          "unlisted file in a package directory", tags=["package"], mode=0o644)

md5sums = "".join(f"{hashlib.md5(data).hexdigest()}  {path.lstrip('/')}\n"
                  for path, data in sorted(pkg_files.items()))
put("/var/lib/dpkg/info/python3-example.md5sums", md5sums)
dirs = sorted({os.path.dirname(p) for p in pkg_files})
put("/var/lib/dpkg/info/python3-example.list", "/.\n" + "".join(d + "\n" for d in dirs)
    + "".join(p + "\n" for p in sorted(pkg_files)))
put("/var/lib/dpkg/status", """Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u11
Description: Debian base system miscellaneous files

Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 1930
Maintainer: Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u10
Description: secure shell (SSH) server, for secure access from remote machines

Package: python3-example
Status: install ok installed
Priority: optional
Section: python
Installed-Size: 120
Maintainer: Example Maintainers <pkg-example@example.org>
Architecture: all
Source: python-example
Version: 2.1.0-1
Depends: python3:any
Description: example library for Python 3
 The package ships the key pairs its test suite uses.
""")

# ---------------------------------------------------------------------------------------
# AWS.
# ---------------------------------------------------------------------------------------
k1, s1, k2, s2 = aws_id("AKIA"), aws_secret(), aws_id("ASIA"), aws_secret()
session = "IQoJb3JpZ2luX2VjE" + b64(270)
text = f"""[default]
aws_access_key_id = {k1}
aws_secret_access_key = {s1}
region = us-east-1

[ci]
aws_access_key_id = {k2}
aws_secret_access_key = {s2}
aws_session_token = {session}
"""
p = "/root/.aws/credentials"
put(p, text, 0o600)
for v, kind in [(k1, "aws-id"), (s1, "aws-secret"), (k2, "aws-id"), (s2, "aws-secret")]:
    find("creds.aws", p, line_of(text, v), kind, v, tags=["aws-file"])
for n, v in [("root aws default id", k1), ("root aws default secret", s1),
             ("root aws ci id", k2), ("root aws ci secret", s2), ("root aws ci session", session)]:
    leak(n, v)

k, s = aws_id(), aws_secret()
text = f"""[default]
region = eu-central-1
output = json

[profile deploy]
region = eu-central-1
aws_access_key_id = {k}
aws_secret_access_key = {s}
"""
p = "/home/admin/.aws/config"
put(p, text, 0o600)
find("creds.aws", p, line_of(text, k), "aws-id", k, tags=["aws-file"])
find("creds.aws", p, line_of(text, s), "aws-secret", s, tags=["aws-file"])
leak("admin aws config id", k)
leak("admin aws config secret", s)

# A home named "tester": scanners that skip paths containing "test" miss it.
k, s = aws_id(), aws_secret()
text = f"[default]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n"
p = "/home/tester/.aws/credentials"
put(p, text, 0o600)
find("creds.aws", p, 2, "aws-id", k, tags=["aws-file", "test-path"])
find("creds.aws", p, 3, "aws-secret", s, tags=["aws-file", "test-path"])
leak("tester aws id", k)
leak("tester aws secret", s)

# ---------------------------------------------------------------------------------------
# Application configuration: YAML, KEY=value, JSON, INI with CRLF, /etc/environment.
# ---------------------------------------------------------------------------------------
k, s, xoxb = aws_id(), aws_secret(), slack("xoxb")
text = f"""# app configuration (rendered by the build pipeline)
server:
  listen: 0.0.0.0:8080
  workers: 4
storage:
  backend: s3
  bucket: app-assets-prod
  region: eu-west-1
  aws_access_key_id: {k}
  aws_secret_access_key: "{s}"
notifications:
  slack:
    channel: "#deploys"
    bot_token: {xoxb}
"""
p = "/opt/app/config.yaml"
put(p, text, 0o640)
find("creds.aws", p, line_of(text, k), "aws-id", k)
find("creds.aws", p, line_of(text, s), "aws-secret", s)
find("creds.tokens", p, line_of(text, xoxb), "slack", xoxb)
leak("app config aws id", k)
leak("app config aws secret", s)
leak("app config slack", xoxb)

k, s, sk, sg, tw, pw = aws_id(), aws_secret(), sk_live(), sendgrid(), twilio_sk(), password(24)
text = f"""# environment for app.service (EnvironmentFile=)
APP_ENV=production
LOG_LEVEL=info
AWS_ACCESS_KEY_ID={k}
AWS_SECRET_ACCESS_KEY={s}
STRIPE_SECRET_KEY={sk}
SENDGRID_API_KEY={sg}
TWILIO_API_KEY={tw}
DATABASE_URL=postgres://app@db.internal:5432/app
DATABASE_PASSWORD={pw}
"""
p = "/etc/app/app.env"
put(p, text, 0o640)
find("creds.aws", p, line_of(text, k), "aws-id", k, tags=["env"])
find("creds.aws", p, line_of(text, s), "aws-secret", s, tags=["env"])
find("creds.tokens", p, line_of(text, sk), "stripe", sk, tags=["env"])
find("creds.tokens", p, line_of(text, sg), "sendgrid", sg, tags=["env"])
find("creds.tokens", p, line_of(text, tw), "twilio", tw, name="Twilio key with TWILIO on its line", tags=["env"])
find("creds.files", p, [line_of(text, v) for v in (k, s, sk, sg, tw, pw)], "env",
     name="an .env file holding secrets", tags=["env"])
for n, v in [("app.env aws id", k), ("app.env aws secret", s), ("app.env stripe", sk),
             ("app.env sendgrid", sg), ("app.env twilio", tw), ("app.env db password", pw)]:
    leak(n, v)

pw, skb = password(24), rnd(HEX, 128)
text = f"RAILS_ENV=production\nDB_PASSWORD={pw}\nSECRET_KEY_BASE={skb}\n"
p = "/srv/app/production.env"
put(p, text, 0o640)
find("creds.files", p, [2, 3], "env", name="an .env file holding only generic secrets", tags=["env"])
leak("production.env db password", pw)
leak("production.env secret key base", skb)

k, s, hvs = aws_id(), aws_secret(), vault_token()
text = f"""PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AWS_DEFAULT_REGION="eu-west-1"
AWS_ACCESS_KEY_ID="{k}"
AWS_SECRET_ACCESS_KEY="{s}"
VAULT_TOKEN="{hvs}"
"""
p = "/etc/environment"
put(p, text)
find("creds.aws", p, 3, "aws-id", k, tags=["env"])
find("creds.aws", p, 4, "aws-secret", s, tags=["env"])
find("creds.tokens", p, 5, "vault", hvs, tags=["env"])
# Every secret here has a specific kind (AWS, Vault): the generic environment-file
# detector yields to them, so one credential is reported once.
leak("environment aws id", k)
leak("environment aws secret", s)
leak("environment vault", hvs)

# Connection strings with passwords: a database URL in a .env file (the case users report
# most), a MongoDB URI in YAML, a JDBC URL in Java properties; and a password assigned in
# an INI file, which only the generic configuration detectors see.
pg_pw, mongo_pw, jdbc_pw, ini_pw = rnd(ALNUM, 18), rnd(ALNUM, 20), rnd(ALNUM, 16), password(22)
text = f"NODE_ENV=production\nDATABASE_URL=postgres://app:{pg_pw}@db.internal:5432/prod\n"
p = "/srv/web/.env"
put(p, text, 0o600)
find("creds.connection-strings", p, 2, "uri", pg_pw, tags=["env"])
leak("web env postgres password", pg_pw)
text = ("storage:\n  retention_days: 30\n"
        f"  mongo: mongodb://reporting:{mongo_pw}@mongo-0.internal:27017/reports?authSource=admin\n")
p = "/etc/reporting/config.yml"
put(p, text, 0o640)
find("creds.connection-strings", p, 3, "uri", mongo_pw)
leak("reporting mongodb password", mongo_pw)
text = ("spring.application.name=orders\n"
        f"spring.datasource.url=jdbc:postgresql://db.internal:5432/orders?user=orders&password={jdbc_pw}\n")
p = "/opt/orders/application.properties"
put(p, text, 0o640)
find("creds.connection-strings", p, 2, "uri", jdbc_pw)
leak("orders jdbc password", jdbc_pw)
text = f"[database]\nhost = db.internal\nuser = billing\npassword = {ini_pw}\n"
p = "/etc/billing/billing.ini"
put(p, text, 0o640)
find("creds.passwords", p, 4, "generic", ini_pw)
leak("billing ini password", ini_pw)

gh, gl, gapi, sk_tw, tw_secret, npm, acct, asia = (ghp(), glpat(), aiza(), twilio_sk(),
                                                  rnd(ALNUM, 32), npm_token(), azure_account_key(), aws_id("ASIA"))
settings = {
    "service": "app",
    "github": {"token": gh},
    "gitlab": {"token": gl},
    "maps": {"api_key": gapi},
    "twilio": {"account_sid": "AC" + rnd(HEX, 32), "api_key": sk_tw, "api_secret": tw_secret},
    "npm": {"token": npm},
    "storage": {"connection_string": "DefaultEndpointsProtocol=https;AccountName=appassets;"
                                     f"AccountKey={acct};EndpointSuffix=core.windows.net"},
    "aws": {"access_key_id": asia, "region": "eu-west-1"},
}
text = json.dumps(settings, indent=2) + "\n"
p = "/srv/app/settings.json"
put(p, text, 0o640)
for v, kind, rule in [(gh, "github", "creds.tokens"), (gl, "gitlab", "creds.tokens"),
                      (gapi, "google-api", "creds.tokens"), (sk_tw, "twilio", "creds.tokens"),
                      (npm, "npm", "creds.tokens"), (acct, "azure", "creds.tokens"),
                      (asia, "aws-id", "creds.aws")]:
    find(rule, p, line_of(text, v), kind, v, tags=["json"],
         name=f"{kind} in settings.json" + (" (\"twilio\" two lines above)" if kind == "twilio" else ""))
for n, v in [("settings github", gh), ("settings gitlab", gl), ("settings google api", gapi),
             ("settings twilio sk", sk_tw), ("settings twilio secret", tw_secret),
             ("settings npm", npm), ("settings azure account key", acct), ("settings asia", asia)]:
    leak(n, v)

ghs, ghu, ghr = ghp("ghs_"), ghp("ghu_"), ghp("ghr_")
text = json.dumps({"app_id": 318273, "installation_token": ghs, "user_token": ghu,
                   "refresh_token": ghr}, indent=2) + "\n"
p = "/opt/app/github-app.json"
put(p, text, 0o640)
for v in (ghs, ghu, ghr):
    find("creds.tokens", p, line_of(text, v), "github", v, tags=["json"])
leak("github-app ghs", ghs)
leak("github-app ghu", ghu)
leak("github-app ghr", ghr)

# CRLF line endings (edited on Windows): lines count once, the secret ends before \r.
k, s, pat = aws_id(), aws_secret(), github_pat()
lines = ["; settings exported from the Windows build agent", "[aws]", "region=us-west-2",
         f"aws_access_key_id={k}", f"aws_secret_access_key={s}", "", "[github]", f"token={pat}", ""]
p = "/srv/app/appsettings.ini"
put(p, "\r\n".join(lines), 0o640)
find("creds.aws", p, 4, "aws-id", k, tags=["crlf"])
find("creds.aws", p, 5, "aws-secret", s, tags=["crlf"])
find("creds.tokens", p, 8, "github", pat, tags=["crlf"])
leak("crlf aws id", k)
leak("crlf aws secret", s)
leak("crlf github pat", pat)

# Build logs.
ghs2, abia, acca = ghp("ghs_"), aws_id("ABIA"), aws_id("ACCA")
text = f"""Cloud-init v. 23.1.2 running 'init-local' at Mon, 03 Jun 2024 10:11:12 +0000. Up 4.12 seconds.
Cloud-init v. 23.1.2 running 'modules:final' at Mon, 03 Jun 2024 10:11:40 +0000. Up 31.80 seconds.
+ apt-get install -y git awscli
Reading package lists...
+ git clone https://x-access-token:{ghs2}@github.com/example-org/app.git /opt/app/src
Cloning into '/opt/app/src'...
+ aws sts get-caller-identity
using bearer token {abia} for sts
using context credential {acca}
Cloud-init v. 23.1.2 finished at Mon, 03 Jun 2024 10:14:02 +0000. Up 173.40 seconds
"""
p = "/var/log/cloud-init-output.log"
put(p, text, 0o640)
find("creds.tokens", p, line_of(text, ghs2), "github", ghs2, tags=["log"])
find("creds.aws", p, line_of(text, abia), "aws-other", abia, tags=["log"])
find("creds.aws", p, line_of(text, acca), "aws-other", acca, tags=["log"])
leak("cloud-init ghs", ghs2)
leak("cloud-init abia", abia)
leak("cloud-init acca", acca)

# ---------------------------------------------------------------------------------------
# Google service-account JSON (a real generated key), gcloud, kube, docker, azure.
# ---------------------------------------------------------------------------------------
def service_account(pem_name, project):
    key = read_key(pem_name)
    key_id = rnd(HEX, 40)
    sa = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": key,
        "client_email": f"deployer@{project}.iam.gserviceaccount.com",
        "client_id": rnd("123456789", 1) + rnd(DIGITS, 20),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/deployer%40{project}.iam.gserviceaccount.com",
        "universe_domain": "googleapis.com",
    }
    text = json.dumps(sa, indent=2) + "\n"
    # The key ID identifies the key to revoke: its line is where creds.tokens reports it.
    lines = [line_of(text, '"type": "service_account"'), line_of(text, '"private_key_id": '),
             line_of(text, '"private_key": ')]
    return text, lines, key, key_id


text, lines, key, key_id = service_account("sa-app.pem", "app-prod-48213")
p = "/opt/app/service-account.json"
put(p, text, 0o640)
find("creds.tokens", p, lines, "google-sa", name="service-account JSON", tags=["json"])
leak_pem("service-account.json key", key)
leak("service-account.json key id", key_id)

text, lines, key, key_id = service_account("sa-gcloud.pem", "infra-builds-20931")
p = "/home/admin/.config/gcloud/application_default_credentials.json"
put(p, text, 0o600)
find("creds.tokens", p, lines, "google-sa", name="gcloud service-account JSON", tags=["json", "home"])
find("creds.files", p, lines, "gcloud", name="gcloud application default credentials", tags=["home"])
leak_pem("gcloud key", key)
leak("gcloud key id", key_id)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims):
    header = b64url(json.dumps({"alg": "RS256", "kid": rnd(URLSAFE, 43)}).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{header}.{body}.{b64url(os.urandom(256))}"


kube_token = jwt({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer",
                  "jti": rnd(HEX, 32)})
kube_key = read_key("kube-client.key")
kube_key_data = base64.b64encode(kube_key.encode()).decode()
text = f"""apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {base64.b64encode(read_key("kube-ca.crt").encode()).decode()}
    server: https://10.0.12.5:6443
  name: prod
contexts:
- context:
    cluster: prod
    user: deployer
  name: deployer@prod
current-context: deployer@prod
users:
- name: deployer
  user:
    token: {kube_token}
- name: admin
  user:
    client-certificate-data: {base64.b64encode(read_key("kube-client.crt").encode()).decode()}
    client-key-data: {kube_key_data}
"""
p = "/home/admin/.kube/config"
put(p, text, 0o600)
find("creds.files", p, line_of(text, "token: "), "kube", name="kubeconfig token", tags=["home"])
find("creds.files", p, line_of(text, "client-key-data: "), "kube", name="kubeconfig client key", tags=["home"])
leak("kube token signature", kube_token.rsplit(".", 1)[1], 0)
leak("kube client-key-data", kube_key_data, 120)
leak_pem("kube client key", kube_key)

docker_pw, docker_pw2 = password(24), password(32)
auth1 = base64.b64encode(f"deploy-bot:{docker_pw}".encode()).decode()
auth2 = base64.b64encode(f"examplecorp:{docker_pw2}".encode()).decode()
text = json.dumps({"auths": {"registry.example.com": {"auth": auth1},
                             "https://index.docker.io/v1/": {"auth": auth2}},
                   "credsStore": ""}, indent=2) + "\n"
p = "/home/admin/.docker/config.json"
put(p, text, 0o600)
find("creds.files", p, line_of(text, auth1), "docker", name="docker auth (registry.example.com)", tags=["home"])
find("creds.files", p, line_of(text, auth2), "docker", name="docker auth (docker hub)", tags=["home"])
leak("docker auth 1", auth1, 16)
leak("docker auth 2", auth2, 16)
leak("docker password 1", docker_pw)
leak("docker password 2", docker_pw2)

az_access = jwt({"aud": "https://management.core.windows.net/", "tid": rnd(HEX, 32), "oid": rnd(HEX, 32)})
az_refresh = "0.A" + rnd(URLSAFE, 300)
text = json.dumps([{
    "tokenType": "Bearer", "expiresIn": 3599, "expiresOn": "2024-06-03 11:14:02.000000",
    "resource": "https://management.core.windows.net/", "accessToken": az_access,
    "refreshToken": az_refresh, "identityProvider": "live.com", "_clientId": rnd(HEX, 32),
    "_authority": "https://login.microsoftonline.com/common"}], indent=2) + "\n"
p = "/home/admin/.azure/accessTokens.json"
put(p, text, 0o600)
find("creds.files", p, [line_of(text, '"accessToken"'), line_of(text, '"refreshToken"')], "azure-cli",
     name="azure CLI tokens", tags=["home"])
leak("azure access token signature", az_access.rsplit(".", 1)[1], 0)
leak("azure refresh token", az_refresh, 3)

# ---------------------------------------------------------------------------------------
# Credential stores in homes.
# ---------------------------------------------------------------------------------------
gh, pw = ghp(), password()
text = f"machine github.com\n  login deploy-bot\n  password {gh}\nmachine ftp.example.internal login backup password {pw}\n"
p = "/home/admin/.netrc"
put(p, text, 0o600)
find("creds.files", p, 3, "netrc", name="netrc github password", tags=["home"])
find("creds.files", p, 4, "netrc", name="netrc ftp password", tags=["home"])
find("creds.tokens", p, 3, "github", gh, tags=["home"])
leak("netrc github token", gh)
leak("netrc ftp password", pw)

pw = password()
text = f"# hostname:port:database:username:password\ndb.internal:5432:app:app:{pw}\n"
p = "/home/admin/.pgpass"
put(p, text, 0o600)
find("creds.files", p, 2, "pgpass", tags=["home"])
leak("pgpass password", pw)

gh, gl = ghp(), glpat()
text = f"https://deploy-bot:{gh}@github.com\nhttps://oauth2:{gl}@gitlab.example.com\n"
p = "/home/admin/.git-credentials"
put(p, text, 0o600)
find("creds.files", p, 1, "git-credentials", tags=["home"])
find("creds.files", p, 2, "git-credentials", tags=["home"])
find("creds.tokens", p, 1, "github", gh, tags=["home"])
find("creds.tokens", p, 2, "gitlab", gl, tags=["home"])
leak("git-credentials github", gh)
leak("git-credentials gitlab", gl)

gho = ghp("gho_")
text = f"github.com:\n    user: deploy-bot\n    oauth_token: {gho}\n    git_protocol: https\n"
p = "/home/admin/.config/gh/hosts.yml"
put(p, text, 0o600)
find("creds.tokens", p, 3, "github", gho, tags=["home"])
leak("gh hosts oauth token", gho)

npm, private_registry = npm_token(), rnd(HEX, 8) + "-" + rnd(HEX, 4) + "-" + rnd(HEX, 4) + "-" + rnd(HEX, 4) + "-" + rnd(HEX, 12)
text = f"""registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken={npm}
@example:registry=https://npm.example.internal/
//npm.example.internal/:_authToken={private_registry}
"""
p = "/home/admin/.npmrc"
put(p, text, 0o600)
find("creds.files", p, 2, "npmrc", tags=["home"])
find("creds.files", p, 4, "npmrc", name="npmrc token without an npm_ prefix", tags=["home"])
find("creds.tokens", p, 2, "npm", npm, tags=["home"])
leak("npmrc npm token", npm)
leak("npmrc private registry token", private_registry)

pypi = pypi_token()
text = f"[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\npassword = {pypi}\n"
p = "/home/admin/.pypirc"
put(p, text, 0o600)
find("creds.files", p, 7, "pypirc", tags=["home"])
find("creds.tokens", p, 7, "pypi", pypi, tags=["home"])
leak("pypirc token", pypi)

pw = password()
text = f"[distutils]\nindex-servers = internal\n\n[internal]\nrepository = https://pypi.example.internal/\nusername = release\npassword = {pw}\n"
p = "/root/.pypirc"
put(p, text, 0o600)
find("creds.files", p, 7, "pypirc", name="pypirc plain password")
leak("root pypirc password", pw)

pw = password()
text = f'[client]\nuser = app\npassword = "{pw}"\nhost = db.internal\n'
p = "/home/admin/.my.cnf"
put(p, text, 0o600)
find("creds.files", p, 3, "mycnf", tags=["home"])
leak("my.cnf password", pw)

k, s = aws_id(), aws_secret()
text = f"""[default]
access_key = {k}
secret_key = {s}
host_base = s3.amazonaws.com
host_bucket = %(bucket)s.s3.amazonaws.com
use_https = True
"""
p = "/home/admin/.s3cfg"
put(p, text, 0o600)
find("creds.files", p, [2, 3], "s3cfg", tags=["home"])
find("creds.aws", p, 2, "aws-id", k, tags=["home"])
leak("s3cfg id", k)
leak("s3cfg secret", s)

k, s = aws_id(), aws_secret()
text = f"[Credentials]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n\n[Boto]\ndebug = 0\n"
p = "/home/admin/.boto"
put(p, text, 0o600)
find("creds.files", p, [2, 3], "boto", tags=["home"])
find("creds.aws", p, 2, "aws-id", k, tags=["home"])
find("creds.aws", p, 3, "aws-secret", s, tags=["home"])
leak("boto id", k)
leak("boto secret", s)

# Shell history: real values between placeholder lines.
k, s, gh, pypi = aws_id(), aws_secret(), ghp(), pypi_token()
hist = [
    "sudo apt-get update",
    "aws configure list",
    f"export AWS_ACCESS_KEY_ID={k}",
    f"export AWS_SECRET_ACCESS_KEY={s}",
    "aws s3 sync dist/ s3://app-assets-prod/",
    "export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}",
    f"git clone https://{gh}@github.com/example-org/app.git",
    "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    'echo "aws_access_key_id = AKIAXXXXXXXXXXXXXXXX" >> ~/.aws/config.sample',
    f"twine upload --username __token__ --password {pypi} dist/*",
    "history -c",
]
p = "/home/admin/.bash_history"
put(p, "\n".join(hist) + "\n", 0o600)
find("creds.aws", p, 3, "aws-id", k, tags=["history"])
find("creds.aws", p, 4, "aws-secret", s, tags=["history"])
find("creds.tokens", p, 7, "github", gh, tags=["history"])
find("creds.tokens", p, 10, "pypi", pypi, tags=["history"])
for line, why in [(6, "${AWS_SECRET_ACCESS_KEY} is a reference, not a value"),
                  (8, "ghp_ followed by x characters is a placeholder"),
                  (9, "AKIAXXXXXXXXXXXXXXXX is a placeholder")]:
    decoy(p, line, "none", why)
leak("history aws id", k)
leak("history aws secret", s)
leak("history github", gh)
leak("history pypi", pypi)

# A fixture directory in the "tester" home: scanners that skip */test/* miss it.
sk = sk_live()
text = f"# fixtures for the integration tests (copied from production by mistake)\nSTRIPE_API_KEY={sk}\n"
p = "/home/tester/app/test/fixtures/.env"
put(p, text, 0o600)
find("creds.tokens", p, 2, "stripe", sk, tags=["test-path"])
leak("tester fixture stripe", sk)

# ---------------------------------------------------------------------------------------
# Private keys.
# ---------------------------------------------------------------------------------------
plant_key("/etc/ssl/private/server.key", read_key("server.key"), "pem", "server.key PKCS#8", mode=0o640)
plant_key("/etc/ssl/private/legacy.key", read_key("legacy.key"), "pem", "legacy.key traditional RSA", mode=0o640)
plant_key("/opt/app/certs/ec.key", read_key("ec.key"), "pem", "ec.key traditional EC")
plant_key("/opt/app/certs/signing.pem", read_key("signing.pem"), "pem", "signing.pem encrypted PKCS#8")
plant_key("/opt/legacy/dsa.key", read_key("dsa.key"), "pem", "dsa.key traditional DSA")
plant_key("/etc/app/jwt.key", read_key("jwt.key"), "pem", "jwt.key Ed25519 PKCS#8", mode=0o640)
plant_key("/srv/app/bundle.pem", read_key("bundle.crt") + read_key("bundle.key"), "pem",
          "bundle.pem certificate then key", mode=0o640)
plant_key("/opt/deploy/id_ed25519", read_key("deploy_ed25519"), "openssh", "OpenSSH ed25519 outside ~/.ssh")
plant_key("/var/backups/jenkins_rsa", read_key("jenkins_rsa"), "openssh", "OpenSSH RSA outside ~/.ssh")
plant_key("/home/admin/backup/id_rsa.old", read_key("admin_backup_rsa"), "openssh",
          "OpenSSH RSA in a home, outside .ssh", tags=["home"])

with open(os.path.join(keys, "keystore.p12"), "rb") as f:
    p12 = f.read()
put("/opt/keystore.p12", p12, 0o640)
find("creds.private-keys", "/opt/keystore.p12", None, "pkcs12", name="PKCS#12 keystore")

# Inside ~/.ssh: ssh.user-keypairs' finding, not creds.private-keys'.
key = read_key("admin_ed25519")
put("/home/admin/.ssh/id_ed25519", key, 0o600)
not_in_rule.append({"rule": "creds.private-keys", "path": "/home/admin/.ssh/id_ed25519",
                    "why": "ssh.user-keypairs covers ~/.ssh"})
in_rule.append({"rule": "ssh.user-keypairs", "path": "/home/admin/.ssh/id_ed25519",
                "why": "a private key in ~/.ssh"})
leak_pem("admin ~/.ssh key", key)


# PuTTY-User-Key-File-3, unencrypted, around a real RSA key (PuTTY's documented format:
# SSH wire encodings, base64 in 64-column lines, HMAC-SHA-256 with an empty key).
def rsa_numbers(pem_path):
    out = subprocess.run(["openssl", "rsa", "-in", pem_path, "-text", "-noout"], check=True,
                         capture_output=True, text=True).stdout
    fields, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\w+):\s*(\d+)?", line)
        if m and not line.startswith(" "):
            name = m[1]
            if m[2]:
                fields[name] = int(m[2])
                name = None
            else:
                fields[name] = ""
        elif name and line.startswith(" "):
            fields[name] += line.strip().replace(":", "")
    return {k: (v if isinstance(v, int) else int(v, 16)) for k, v in fields.items()}


def ssh_string(b):
    return struct.pack(">I", len(b)) + b


def mpint(n):
    return ssh_string(n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b"")


def lines64(data):
    s = base64.b64encode(data).decode()
    return [s[i:i + 64] for i in range(0, len(s), 64)]


rsa_n = rsa_numbers(os.path.join(keys, "ppk.pem"))
public_blob = ssh_string(b"ssh-rsa") + mpint(rsa_n["publicExponent"]) + mpint(rsa_n["modulus"])
private_blob = (mpint(rsa_n["privateExponent"]) + mpint(rsa_n["prime1"]) + mpint(rsa_n["prime2"])
                + mpint(rsa_n["coefficient"]))
comment = "deploy@windows-build"
mac = hmac.new(b"", ssh_string(b"ssh-rsa") + ssh_string(b"none") + ssh_string(comment.encode())
               + ssh_string(public_blob) + ssh_string(private_blob), hashlib.sha256).hexdigest()
pub_lines, priv_lines = lines64(public_blob), lines64(private_blob)
ppk = (f"PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: {comment}\n"
       f"Public-Lines: {len(pub_lines)}\n" + "".join(l + "\n" for l in pub_lines)
       + f"Private-Lines: {len(priv_lines)}\n" + "".join(l + "\n" for l in priv_lines)
       + f"Private-MAC: {mac}\n")
p = "/srv/app/keys/deploy.ppk"
put(p, ppk, 0o600)
find("creds.private-keys", p, 1, "putty", name="PuTTY key (written by the build script)")
for i, l in enumerate(priv_lines[:-1]):
    leak(f"deploy.ppk private {i}", l, 8 if i == 0 else 0)
if have_puttygen:
    text = read_key("puttygen.ppk")
    p = "/srv/app/keys/puttygen.ppk"
    put(p, text, 0o600)
    find("creds.private-keys", p, 1, "putty", name="PuTTY key (written by puttygen)")
    priv = text.split("Private-Lines:")[1].split("\n")[1:-2]
    for i, l in enumerate(priv):
        if len(l) >= 12:
            leak(f"puttygen.ppk private {i}", l, 0)

# ---------------------------------------------------------------------------------------
# Logs: plain, rotated and compressed (the tests read lines of the decompressed text).
# ---------------------------------------------------------------------------------------
rng = random.Random("amiscan creds logs")
gapi = aiza()
log = [log_line(rng) for _ in range(150)]
log[76] = f"2024-06-01T10:15:02Z WARN geocoder: request with key={gapi} returned 403\n"
p = "/var/log/app.log.1"
put(p, "".join(log), 0o640)
find("creds.tokens", p, 77, "google-api", gapi, tags=["log"])
leak("app.log.1 google api key", gapi)

# app.log.2.gz: 300 KiB of text; an access key id straddles decompressed byte 262144.
k = aws_id()
data, (line,) = boundary_text(
    [(262144 - 9, "2024-06-02T04:05:06Z DEBUG botocore.credentials: Found credentials in environment variables: ", k, "")],
    300 * 1024, "amiscan creds gz")
os.makedirs(os.path.join(tree, "var/log"), exist_ok=True)
p = "/var/log/app.log.2.gz"
put(p, subprocess.run(["gzip", "-9", "-n", "-c"], input=data, capture_output=True, check=True).stdout, 0o640)
find("creds.aws", p, line, "aws-id", k, tags=["compressed", "boundary"])
leak("app.log.2.gz aws id", k)

xoxp = slack("xoxp")
log = [log_line(rng, 3) for _ in range(200)]
log[119] = f"2024-06-03T08:09:10Z INFO notify: posting to #ops with token={xoxp}\n"
p = "/var/log/app.log.3.xz"
put(p, subprocess.run(["xz", "-c"], input="".join(log).encode(), capture_output=True, check=True).stdout, 0o640)
find("creds.tokens", p, 120, "slack", xoxp, tags=["compressed"])
leak("app.log.3.xz slack", xoxp)

sk = sk_live()
log = [log_line(rng, 4) for _ in range(100)]
log[41] = f"2024-06-04T01:02:03Z DEBUG billing: stripe.api_key={sk} charge ok\n"
p = "/var/log/app.log.4.zst"
put(p, subprocess.run(["zstd", "-q", "-c"], input="".join(log).encode(), capture_output=True, check=True).stdout, 0o640)
find("creds.tokens", p, 42, "stripe", sk, tags=["compressed"])
leak("app.log.4.zst stripe", sk)

# ---------------------------------------------------------------------------------------
# Tokens straddling 256 KiB read-buffer boundaries.
# ---------------------------------------------------------------------------------------
B = 262144
gh = ghp()
data, (line,) = boundary_text(
    [(B - 20, "2024-06-02T03:04:05Z DEBUG git: remote url https://", gh, "@github.com/example-org/app.git")],
    400 * 1024, "amiscan creds debug.log")
p = "/var/log/app/debug.log"
put(p, data, 0o640)
find("creds.tokens", p, line, "github", gh, name="ghp_ straddling byte 262144 (starts 20 bytes before)",
     tags=["boundary"])
leak("debug.log github", gh)

for offset in (-40, -39, -20, -1, 0, 1):
    gh = ghp()
    data, (line,) = boundary_text(
        [(B + offset, "2024-06-05T06:07:08Z INFO deploy: fetched with token=", gh, " scope=repo")],
        300 * 1024, f"amiscan creds shard {offset}")
    name = f"shard{offset:+03d}.log".replace("+", "p").replace("-", "m")
    p = f"/var/lib/app/shards/{name}"
    put(p, data, 0o640)
    find("creds.tokens", p, line, "github", gh,
         name=f"ghp_ (40 bytes) starting at 262144{offset:+d}", tags=["boundary"])
    leak(f"shard {offset} github", gh)

k, s, pat, gl = aws_id(), aws_secret(), github_pat(), glpat()
data, lines = boundary_text(
    [(B - 1, "2024-06-03T00:00:01Z,deploy,create-key,", k, ",ok"),
     (2 * B, "2024-06-03T00:00:02Z,deploy,rotate-key,aws_secret_access_key=", s, ",ok"),
     (3 * B - 92, "2024-06-03T00:00:03Z,deploy,pat,", pat, ",ok")],
    900 * 1024, "amiscan creds export.csv", tail=f"2024-06-03T23:59:59Z,deploy,gitlab,{gl}")
p = "/var/lib/app/export.csv"
put(p, data, 0o640)
find("creds.aws", p, lines[0], "aws-id", k, name="AKIA starting 1 byte before 262144", tags=["boundary"])
find("creds.aws", p, lines[1], "aws-secret", s,
     name="secret whose keyword ends at 524288 and value starts there", tags=["boundary"])
find("creds.tokens", p, lines[2], "github", pat, name="github_pat_ whose last byte is at 786432",
     tags=["boundary"])
find("creds.tokens", p, lines[3], "gitlab", gl, name="glpat- at the end of a file without a final newline",
     tags=["boundary"])
leak("export aws id", k)
leak("export aws secret", s)
leak("export github pat", pat)
leak("export gitlab", gl)

# The 2 GiB sparse file: the shell writes it (truncate, then dd at the end).
blob_token = ghp()
with open(os.path.join(keys, "blob-token"), "w") as f:
    f.write(f"token={blob_token}\n")
leak("sparse blob github", blob_token)
secret_paths.add("/var/lib/app/blob.dat")

# ---------------------------------------------------------------------------------------
# Decoys.
# ---------------------------------------------------------------------------------------
EXAMPLES = """# Configuring credentials

    $ aws configure
    AWS Access Key ID [None]: AKIAIOSFODNN7EXAMPLE
    AWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

Or write ~/.aws/credentials:

    [default]
    aws_access_key_id = AKIAIOSFODNN7EXAMPLE
    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

    [other]
    aws_access_key_id = AKIAI44QH8DHBEXAMPLE
    aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
"""
put("/usr/share/doc/aws-examples/README.md", EXAMPLES)
decoy("/usr/share/doc/aws-examples/README.md", None, "none", "AWS's documented example keys")
put("/opt/app/README.md", "# app\n\nSet your keys in /etc/app/app.env, e.g.\n\n    AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n    AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
decoy("/opt/app/README.md", None, "none", "AWS's documented example keys outside /usr/share/doc")
put("/srv/app/placeholder.env", """# copy to .env and fill in
AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX
AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}
GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
DB_PASSWORD=${DB_PASSWORD}
""")
decoy("/srv/app/placeholder.env", None, "none", "placeholders and ${VAR} references only")
put("/etc/app/deploy_key.pub", read_key("deploy_key.pub"))
decoy("/etc/app/deploy_key.pub", None, "none", "an OpenSSH public key")
put("/etc/app/jwt-public.pem", read_key("jwt-public.pem"))
decoy("/etc/app/jwt-public.pem", None, "none", "a PEM public key")
put("/opt/app/certs/app.crt", read_key("app.crt"))
decoy("/opt/app/certs/app.crt", None, "none", "a certificate")
put("/home/admin/.ssh/id_ed25519.pub", read_key("admin_ed25519.pub"))
decoy("/home/admin/.ssh/id_ed25519.pub", None, "none", "an OpenSSH public key in ~/.ssh")

# Binaries holding key-shaped bytes: skipped as binary.
with open("/usr/bin/true", "rb") as f:
    elf = f.read()
bin_key = aws_id()
put("/usr/local/bin/app-helper", elf + b"\0\0" + bin_key.encode() + os.urandom(64), 0o755)
decoy("/usr/local/bin/app-helper", None, "none", "an ELF binary with an access-key-shaped string")
binary.append("/usr/local/bin/app-helper")
leak("ELF AKIA", bin_key)
bin_token = ghp()
put("/var/lib/app/cache.bin", os.urandom(8192) + b"\0" + bin_token.encode() + b"\0" + os.urandom(8192), 0o640)
decoy("/var/lib/app/cache.bin", None, "none", "random binary data with a token-shaped string")
binary.append("/var/lib/app/cache.bin")
leak("cache.bin github", bin_token)

with open(planted_json, "w") as f:
    json.dump({
        "image": "creds.img",
        "expect": expect,
        "leaks": leaks,
        "decoys": decoys,
        "not_in_rule": not_in_rule,
        "in_rule": in_rule,
        "binary": binary,
        # NULs, then the token's line (the first line: no newline comes before it).
        "sparse": {"path": "/var/lib/app/blob.dat", "size": 2 << 30, "rule": "creds.tokens",
                   "line": 1, "subject": SUBJECT["github"], "value": blob_token},
        "secret_paths": sorted(secret_paths),
    }, f, indent=2)
    f.write("\n")
print(f"planted {len(expect)} expectations, {len(leaks)} values, {len(decoys)} decoys", file=sys.stderr)
PY

# The 2 GiB sparse file, token in its last bytes. It is stored sparse on the host and in
# the image (mke2fs -d copies only the data blocks).
blob="$t/var/lib/app/blob.dat"
truncate -s 2G "$blob"
token_size="$(stat -c %s "$keys/blob-token")"
dd if="$keys/blob-token" of="$blob" bs=1 seek=$(( (2 << 30) - token_size )) conv=notrunc status=none
chmod 640 "$blob"
[[ "$(stat -c %s "$blob")" == $((2 << 30)) ]] || { echo "build-creds-image.sh: blob.dat has the wrong size" >&2; exit 1; }

# Modes and owners.
chmod 755 "$t"
find "$t" -type d -exec chmod 755 {} +
chmod 700 "$t/root" "$t/root/.aws" "$t/home/admin" "$t/home/tester" "$t/home/admin/.ssh"
chmod 710 "$t/etc/ssl/private"
mkdir -p "$t/usr/bin" "$t/usr/sbin" "$t/usr/lib" "$t/tmp" "$t/var/tmp" "$t/var/lib/jenkins"
ln -s usr/bin "$t/bin"
ln -s usr/sbin "$t/sbin"
ln -s usr/lib "$t/lib"
chmod 1777 "$t/tmp" "$t/var/tmp"
if [[ $is_root == 1 ]]; then
    chown -R 1000:1000 "$t/home/admin"
    chown -R 1001:1001 "$t/home/tester"
    chown -R 998:998 "$t/opt/app"
    chown 997:997 "$t/var/lib/jenkins" "$t/var/backups/jenkins_rsa"
    chown 0:42 "$t/etc/shadow"
    chown -R 0:109 "$t/etc/ssl/private"
fi

# ---------------------------------------------------------------------------------------
# The image: root without /home's contents on p1, /home on p2.
# ---------------------------------------------------------------------------------------
mkext() { # mkext OUT SIZE TREE MKE2FS-ARGS...
    local file="$1" size="$2" tree="$3"
    shift 3
    rm -f "$file"
    truncate -s "$size" "$file"
    mke2fs -q -F -t ext4 -b 4096 -I 256 "$@" -d "$tree" "$file"
}
mv "$t/home" "$tmp/home"
mkdir "$t/home"
chmod 755 "$t/home"
mkext "$tmp/root.fs" 40M "$t" -L root -U "$CREDS_ROOT_UUID"
mkext "$tmp/home.fs" 16M "$tmp/home" -L home -U "$CREDS_HOME_UUID"
rmdir "$t/home"
mv "$tmp/home" "$t/home"
disk="$tmp/creds.img"
truncate -s 58M "$disk"
# p1: sectors 2048..83967 (40 MiB at 1 MiB); p2: 83968..116735 (16 MiB at 41 MiB).
sgdisk -U "$CREDS_DISK_GUID" \
    -n 1:2048:83967 -t 1:8300 -c 1:root -u 1:"$CREDS_P1_GUID" \
    -n 2:83968:116735 -t 2:8302 -c 2:home -u 2:"$CREDS_P2_GUID" \
    "$disk" >/dev/null
dd if="$tmp/root.fs" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$tmp/home.fs" of="$disk" bs=1M seek=41 conv=notrunc,sparse status=none
rm -f "$tmp"/*.fs
rm -rf "$keys"

# ---------------------------------------------------------------------------------------
# Into place, stamp last.
# ---------------------------------------------------------------------------------------
old="$(mktemp -d "$build/.old-creds.XXXXXX")"
if [[ -d "$out" ]]; then mv "$out" "$old/"; fi
mv "$tmp" "$out"
trap - EXIT
echo "$want" >"$out/.complete.new"
mv "$out/.complete.new" "$stamp"
rm -rf "$old"
echo "build-creds-image.sh: built creds.img in $((SECONDS - started)) s" >&2
