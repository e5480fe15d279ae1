//! The remediation script (`scan --remediation-script FILE`): turns the failing rules of
//! one image and their findings into a POSIX shell script for the publisher to run as the
//! last provisioning step before capture. It only writes text; amiscan never runs it. What
//! a rule's `fix` does not handle is listed as `# manual` comments, so nothing is dropped.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::gate::{DecidedImage, ResultStatus};
use crate::guest::GuestPath;
use crate::rules::engine::Finding;
use crate::rules::pack::{Placeholder, Segment, Template};
use crate::rules::Rule;

/// The rules that still fail in a decided image, with their findings no waiver covers:
/// what the script cleans up.
pub fn failing<D>(image: &DecidedImage<D>) -> Vec<(&Rule, Vec<&Finding>)> {
    image
        .results
        .iter()
        .filter(|result| result.status == ResultStatus::Fail)
        .map(|result| {
            let findings = result
                .findings
                .iter()
                .filter(|f| !f.waived())
                .map(|f| &f.finding)
                .collect();
            (result.rule.as_ref(), findings)
        })
        .collect()
}

/// Writes the script for `failing`: rules with status fail and their findings that are not
/// waived. Rules come out in id order and findings in report order, whatever the input
/// order, so the same scan gives the same script byte for byte.
pub fn write_script(
    out: &mut dyn std::io::Write,
    image_name: &str,
    failing: &[(&Rule, Vec<&Finding>)],
) -> std::io::Result<()> {
    let mut rules: Vec<(&Rule, Vec<&Finding>)> = failing
        .iter()
        .map(|(rule, findings)| {
            let mut findings = findings.clone();
            findings.sort();
            findings.dedup();
            (*rule, findings)
        })
        .filter(|(_, findings)| !findings.is_empty())
        .collect();
    rules.sort_by(|a, b| a.0.id.cmp(&b.0.id));

    let mut body = String::new();
    let mut counts = Counts::default();
    for (rule, findings) in &rules {
        section(&mut body, rule, findings, &mut counts);
    }
    if rules.is_empty() {
        body.push_str("\n# No rule failed: there is nothing to clean up.\n");
    }

    let mut script = String::new();
    header(&mut script, image_name, rules.len(), &counts);
    script.push_str(PROLOGUE);
    script.push_str(&body);
    script.push_str(EPILOGUE);
    out.write_all(script.as_bytes())
}

#[derive(Debug, Default)]
struct Counts {
    handled: usize,
    manual: usize,
}

fn header(script: &mut String, image_name: &str, rules: usize, counts: &Counts) {
    let _ = writeln!(script, "#!/bin/sh");
    let _ = writeln!(
        script,
        "# Remediation script for {}, written by amiscan {} (scan --remediation-script).",
        comment_text(image_name),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        script,
        "# {rules} failing rule(s): {} finding(s) handled by commands, {} left for review (# manual).",
        counts.handled, counts.manual
    );
    script.push_str(
        "#
# Run it as root as the last provisioning step on the build instance, right before the
# image is captured; or against a copy of the guest's file tree, with
# AMISCAN_ROOT=/path/to/the/copy. Review it first: it deletes files and edits
# configuration. amiscan never runs it. Findings that need a person's judgement are listed
# as `# manual` comments. It stops at the first command that fails; where a helper
# declines to touch something (a symlink leading out of the tree, a missing file) it says
# so, carries on, and exits 1 at the end.
set -eu
",
    );
}

/// One rule: its commands, then what is left for review.
fn section(body: &mut String, rule: &Rule, findings: &[&Finding], counts: &mut Counts) {
    let _ = writeln!(
        body,
        "\n# ---- {} ({}): {}",
        rule.id,
        rule.severity,
        comment_text(&rule.title)
    );
    let mut manual: Vec<(&Finding, Option<String>)> = Vec::new();
    let Some(fix) = &rule.fix else {
        manual.extend(findings.iter().map(|f| (*f, None)));
        manual_block(body, rule, &manual);
        counts.manual += manual.len();
        return;
    };
    let mut handled: Vec<&Finding> = Vec::new();
    for finding in findings {
        if fix.handles(
            finding.path.as_ref().map(GuestPath::as_bytes),
            finding.subject.as_deref(),
            &finding.message,
        ) {
            handled.push(finding);
        } else {
            manual.push((finding, None));
        }
    }
    // Each finding's command, rendered before anything is written, so a finding whose
    // values are missing joins the manual list and `once` only runs for real work.
    let mut commands: Vec<(&Finding, Option<String>)> = Vec::new();
    for finding in handled {
        match &fix.each {
            None => commands.push((finding, None)),
            Some(template) => match render(template, finding) {
                Ok(command) => commands.push((finding, Some(command))),
                Err(missing) => manual.push((
                    finding,
                    Some(format!(
                        "no {} to fill in {{{}}}",
                        missing.name(),
                        missing.name()
                    )),
                )),
            },
        }
    }
    if !commands.is_empty() {
        if let Some(once) = &fix.once {
            if fix.each.is_none() {
                for (finding, _) in &commands {
                    let _ = writeln!(body, "# {}", describe(finding));
                }
            }
            let _ = writeln!(body, "{once}");
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for (finding, command) in &commands {
            let Some(command) = command else { continue };
            let _ = writeln!(body, "# {}", describe(finding));
            // Two findings in one file (two keys in one credentials file) need one command.
            if seen.insert(command.as_str()) {
                let _ = writeln!(body, "{command}");
            }
        }
        counts.handled += commands.len();
    }
    manual.sort_by(|a, b| a.0.cmp(b.0));
    counts.manual += manual.len();
    manual_block(body, rule, &manual);
}

fn manual_block(body: &mut String, rule: &Rule, manual: &[(&Finding, Option<String>)]) {
    if manual.is_empty() {
        return;
    }
    let first = rule
        .remediation
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let first = first
        .strip_prefix('#')
        .map(str::trim_start)
        .unwrap_or(first);
    let _ = writeln!(body, "# manual ({}): {}", rule.id, comment_text(first));
    // What lies in free space is fixed where the image is built, not on it: the whole
    // remedy (shred, zero-fill, fstrim) goes with the findings.
    if manual.iter().any(|(finding, _)| finding.residue.is_some()) {
        for line in rule
            .remediation
            .lines()
            .skip_while(|l| l.trim().is_empty())
            .skip(1)
        {
            let _ = writeln!(body, "#   {}", comment_text(line.trim_end()));
        }
    }
    for (finding, why) in manual {
        match why {
            Some(why) => {
                let _ = writeln!(body, "#   {} [{why}]", describe(finding));
            }
            None => {
                let _ = writeln!(body, "#   {}", describe(finding));
            }
        }
    }
}

/// A finding on one comment line: `path:line (subject): message`.
fn describe(finding: &Finding) -> String {
    let mut text = String::new();
    if let Some(path) = &finding.path {
        text.push_str(&path.display());
        if let Some(line) = finding.line {
            let _ = write!(text, ":{line}");
        }
    }
    if let Some(subject) = &finding.subject {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "({subject})");
    }
    if !text.is_empty() {
        text.push_str(": ");
    }
    text.push_str(&finding.message);
    if let Some(severity) = finding.severity {
        let _ = write!(text, " [{severity}]");
    }
    comment_text(&text)
}

/// Text safe to put after `#`: control characters (a newline would end the comment and
/// start a command) and the invisible ones that reorder or hide text are escaped.
fn comment_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Bidirectional overrides, zero-width characters and the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}'
    )
}

/// One finding's command: the template with every placeholder replaced by a shell-quoted
/// value. Values that need escapes are built by `printf` into a variable first, so the
/// script stays one readable line per command whatever bytes a guest path holds.
fn render(template: &Template, finding: &Finding) -> Result<String, Placeholder> {
    let mut prelude = String::new();
    let mut command = String::new();
    for segment in &template.segments {
        match segment {
            Segment::Text(text) => command.push_str(text),
            Segment::Value(Placeholder::Line) => {
                let line = finding.line.ok_or(Placeholder::Line)?;
                let _ = write!(command, "{line}");
            }
            Segment::Value(placeholder) => {
                let bytes = match placeholder {
                    Placeholder::Path => finding
                        .path
                        .as_ref()
                        .map(GuestPath::as_bytes)
                        .filter(|bytes| bytes.starts_with(b"/"))
                        .map(<[u8]>::to_vec)
                        .ok_or(Placeholder::Path)?,
                    _ => finding
                        .subject
                        .as_deref()
                        .map(|s| s.as_bytes().to_vec())
                        .ok_or(Placeholder::Subject)?,
                };
                let variable = format!("amiscan_{}", placeholder.name());
                match single_quoted(&bytes) {
                    Some(quoted) => command.push_str(&quoted),
                    None => {
                        let assignment = format!(
                            "{variable}=$(printf '{}_'); {variable}=${{{variable}%_}}\n",
                            printf_format(&bytes)
                        );
                        if !prelude.contains(&assignment) {
                            prelude.push_str(&assignment);
                        }
                        let _ = write!(command, "\"${variable}\"");
                    }
                }
            }
        }
    }
    Ok(prelude + &command)
}

/// `'…'` with each `'` written as `'\''`, when the value is printable text; `None` when it
/// holds control characters, invisible characters or bytes that are not UTF-8.
fn single_quoted(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.chars().any(|c| c.is_control() || invisible(c)) {
        return None;
    }
    Some(format!("'{}'", text.replace('\'', "'\\''")))
}

/// A `printf` format (inside single quotes) that prints exactly `bytes`: printable ASCII
/// as itself, `%` and `\` doubled, `'` closing and reopening the quotes, everything else
/// as a three-digit octal escape.
fn printf_format(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        match b {
            b'%' => out.push_str("%%"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("'\\''"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// Shell functions the templates call, the same in every script. Guest paths go in; each
/// helper finds them under `$AMISCAN_ROOT` itself.
const PROLOGUE: &str = r##"
AMISCAN_ROOT=${AMISCAN_ROOT:-}
while :; do
    case $AMISCAN_ROOT in
        */) AMISCAN_ROOT=${AMISCAN_ROOT%/} ;;
        *) break ;;
    esac
done
if [ -n "$AMISCAN_ROOT" ]; then
    case $AMISCAN_ROOT in
        /*) ;;
        *)
            echo "amiscan: AMISCAN_ROOT must be an absolute path, not $AMISCAN_ROOT" >&2
            exit 2
            ;;
    esac
    if [ ! -d "$AMISCAN_ROOT" ]; then
        echo "amiscan: AMISCAN_ROOT=$AMISCAN_ROOT is not a directory" >&2
        exit 2
    fi
fi
amiscan_unfixed=0
amiscan_tmp=
trap 'if [ -n "$amiscan_tmp" ]; then rm -rf "$amiscan_tmp"; fi' EXIT
trap 'exit 1' HUP INT TERM

# amiscan_skip MESSAGE: something the script would not touch; the script exits 1 at the end.
amiscan_skip() {
    printf 'amiscan: not fixed: %s\n' "$*" >&2
    amiscan_unfixed=1
}

amiscan_have() {
    command -v "$1" >/dev/null 2>&1
}

# amiscan_at GUEST-PATH: sets amiscan_p to the path under AMISCAN_ROOT. Refuses relative
# paths, `.` and `..` components, and in a copied tree a symlink above the last component:
# the guest resolves it inside itself, this shell would resolve it on the host.
amiscan_at() {
    case $1 in
        */)
            amiscan_skip "$1: not a file path"
            return 1
            ;;
        /*) ;;
        *)
            amiscan_skip "$1: not an absolute guest path"
            return 1
            ;;
    esac
    case $1/ in
        */./* | */../*)
            amiscan_skip "$1: has . or .. components"
            return 1
            ;;
    esac
    amiscan_p=$AMISCAN_ROOT$1
    if [ -z "$AMISCAN_ROOT" ]; then
        return 0
    fi
    amiscan_rest=${1#/}
    amiscan_dir=$AMISCAN_ROOT
    while :; do
        case $amiscan_rest in
            */*) ;;
            *) return 0 ;;
        esac
        amiscan_dir=$amiscan_dir/${amiscan_rest%%/*}
        amiscan_rest=${amiscan_rest#*/}
        if [ -L "$amiscan_dir" ]; then
            amiscan_skip "$1: ${amiscan_dir#"$AMISCAN_ROOT"} is a symlink in the copied tree; not followed"
            return 1
        fi
    done
}

# amiscan_one_link HOST-PATH: the path is a regular file with no other hard link, whose
# content is this finding's alone (shred overwrites the content every link shares).
amiscan_one_link() {
    [ -n "$(find "$1" -prune -type f -links 1 -print 2>/dev/null)" ]
}

# amiscan_remove GUEST-PATH: removes a symlink itself (never what it points to), a
# directory with what is in it, or a file, overwriting files with shred first when there
# is one (not a file with other hard links: their content is not only this finding's).
amiscan_remove() {
    amiscan_at "$1" || return 0
    if [ -L "$amiscan_p" ]; then
        rm -f -- "$amiscan_p" || amiscan_skip "$1: cannot remove the symlink"
    elif [ -d "$amiscan_p" ]; then
        if amiscan_have shred; then
            find "$amiscan_p" -xdev -type f -links 1 -exec shred -u -- {} + 2>/dev/null || :
        fi
        rm -rf -- "$amiscan_p" || amiscan_skip "$1: cannot remove the directory"
    elif [ -e "$amiscan_p" ]; then
        if amiscan_have shred && amiscan_one_link "$amiscan_p"; then
            shred -u -- "$amiscan_p" 2>/dev/null || :
        fi
        if [ -e "$amiscan_p" ]; then
            rm -f -- "$amiscan_p" || amiscan_skip "$1: cannot remove it"
        fi
    fi
}

# amiscan_truncate GUEST-PATH: empties a regular file in place, so it keeps its owner and
# mode (daemons expect their logs to exist); overwritten first with shred when there is one.
amiscan_truncate() {
    amiscan_at "$1" || return 0
    if [ -L "$amiscan_p" ]; then
        amiscan_skip "$1: a symlink; not emptied"
    elif [ -f "$amiscan_p" ]; then
        if amiscan_have shred && amiscan_one_link "$amiscan_p"; then
            shred -n 1 -- "$amiscan_p" 2>/dev/null || :
        fi
        true >"$amiscan_p" || amiscan_skip "$1: cannot empty it"
    fi
}

# amiscan_chmod MODE GUEST-PATH: chmod, but never through a symlink.
amiscan_chmod() {
    amiscan_at "$2" || return 0
    if [ -L "$amiscan_p" ]; then
        amiscan_skip "$2: a symlink; mode not changed"
    elif [ -e "$amiscan_p" ]; then
        chmod -- "$1" "$amiscan_p" || amiscan_skip "$2: cannot change its mode"
    fi
}

# amiscan_editable GUEST-PATH: amiscan_at, and the path is a regular file (reached through
# a symlink only on the live system). Fails quietly when there is no such file.
amiscan_editable() {
    amiscan_at "$1" || return 1
    if [ -n "$AMISCAN_ROOT" ] && [ -L "$amiscan_p" ]; then
        amiscan_skip "$1: a symlink in the copied tree; not followed"
        return 1
    fi
    [ -f "$amiscan_p" ]
}

# amiscan_tempdir: a private directory for rewritten files, removed when the script exits.
amiscan_tempdir() {
    if [ -z "$amiscan_tmp" ]; then
        amiscan_tmp=${TMPDIR:-/tmp}/amiscan-remediation.$$
        if ! (umask 077 && mkdir "$amiscan_tmp"); then
            amiscan_tmp=
            echo "amiscan: cannot create a private temporary directory" >&2
            exit 1
        fi
    fi
}

# amiscan_rewrite HOST-PATH AWK-PROGRAM: runs the program over the file and writes the
# output back with cat, so the file keeps its inode, owner and mode (no sed -i, which is
# not POSIX). The program reads its arguments from ENVIRON (amiscan_a, amiscan_b).
amiscan_rewrite() {
    amiscan_tempdir
    if ! awk "$2" <"$1" >"$amiscan_tmp/new"; then
        amiscan_skip "${1#"$AMISCAN_ROOT"}: awk failed; left as it was"
        return 1
    fi
    if ! cmp -s "$amiscan_tmp/new" "$1"; then
        if ! cat "$amiscan_tmp/new" >"$1"; then
            amiscan_skip "${1#"$AMISCAN_ROOT"}: cannot write it"
            return 1
        fi
    fi
    rm -f "$amiscan_tmp/new"
}

# amiscan_lock_password USER: locks the password as passwd -l does: `!` before the hash,
# an empty field becomes `!`, fields starting with `!` or `*` are locked already. In
# /etc/shadow, and in /etc/passwd where the hash is kept there (not `x`).
amiscan_lock_password() {
    amiscan_a=$1
    export amiscan_a
    for amiscan_file in /etc/shadow /etc/passwd; do
        if amiscan_editable "$amiscan_file"; then
            amiscan_b=$amiscan_file
            export amiscan_b
            amiscan_rewrite "$amiscan_p" '
                BEGIN { FS = OFS = ":" }
                $1 == ENVIRON["amiscan_a"] && NF > 1 && $2 !~ /^[!*]/ &&
                    !(ENVIRON["amiscan_b"] == "/etc/passwd" && $2 == "x") { $2 = "!" $2 }
                { print }' || :
        fi
    done
}

# amiscan_sshd_set KEYWORD VALUE: sshd uses the first value it reads, so the setting goes
# to the top of /etc/ssh/sshd_config, ahead of any Include; other occurrences outside
# Match blocks in that file are commented out. Match blocks are left alone: the script
# lists findings in them as manual.
amiscan_sshd_set() {
    if ! amiscan_editable /etc/ssh/sshd_config; then
        amiscan_skip "/etc/ssh/sshd_config: not a file here; set $1 $2 by hand"
        return 0
    fi
    amiscan_a=$1
    amiscan_b=$2
    export amiscan_a amiscan_b
    amiscan_rewrite "$amiscan_p" '
        function keyword(s) { sub(/^[ \t]+/, "", s); sub(/[ \t=].*/, "", s); return tolower(s) }
        BEGIN {
            key = tolower(ENVIRON["amiscan_a"])
            alias = key
            if (key == "kbdinteractiveauthentication") alias = "challengeresponseauthentication"
            note = "# amiscan: " ENVIRON["amiscan_a"] " comes first: sshd uses the first value it reads."
            setting = ENVIRON["amiscan_a"] " " ENVIRON["amiscan_b"]
            print note
            print setting
        }
        {
            k = keyword($0)
            if (k == "match") in_match = 1
            if (!in_match && ($0 == note || $0 == setting)) next
            if (!in_match && (k == key || k == alias)) { print "# amiscan: " $0; next }
            print
        }' || :
}

# amiscan_disable_service NAME [FOUND-AT]: turns a service off where it was found enabled:
# an inetd line is commented out, an xinetd service gets `disable = yes`, a SysV start link
# is removed. A systemd unit is disabled (and stopped, on the live system), the link found
# is removed if systemctl left it, and a preset rule keeps it off on the first boot (an
# empty machine-id makes systemd apply presets then).
amiscan_disable_service() {
    amiscan_where=${2-}
    case $amiscan_where in
        /etc/inetd.conf | /etc/inetd.d/*)
            amiscan_inetd_off "$1" "$amiscan_where"
            return 0
            ;;
        /etc/xinetd.conf | /etc/xinetd.d/*)
            amiscan_xinetd_off "$1" "$amiscan_where"
            return 0
            ;;
        /etc/rc[0-9S].d/S*)
            amiscan_remove "$amiscan_where"
            return 0
            ;;
    esac
    case $1 in
        *.service | *.socket) ;;
        *)
            amiscan_skip "$1: not a systemd service or socket; turn it off by hand"
            return 0
            ;;
    esac
    if amiscan_have systemctl; then
        if [ -z "$AMISCAN_ROOT" ]; then
            systemctl disable --now -- "$1" || echo "amiscan: systemctl disable --now $1 failed" >&2
        else
            systemctl --root="$AMISCAN_ROOT" disable -- "$1" || echo "amiscan: systemctl --root disable $1 failed" >&2
        fi
    fi
    amiscan_preset_disable "$1"
    case $amiscan_where in
        "" | /etc/systemd/system-preset/* | /usr/lib/systemd/system-preset/* | /lib/systemd/system-preset/* | /usr/local/lib/systemd/system-preset/*) ;;
        /etc/systemd/system/*)
            if amiscan_at "$amiscan_where" && [ -L "$amiscan_p" ]; then
                amiscan_remove "$amiscan_where"
            fi
            ;;
        *) amiscan_skip "$1: enabled through $amiscan_where, which disabling does not change; mask the unit or remove the link by hand" ;;
    esac
}

# amiscan_preset_disable UNIT: a `disable` rule in a preset file that sorts before the
# distribution's.
amiscan_preset_disable() {
    amiscan_at /etc/systemd/system-preset/00-amiscan.preset || return 0
    if [ -n "$AMISCAN_ROOT" ] && [ -L "$amiscan_p" ]; then
        amiscan_skip "/etc/systemd/system-preset/00-amiscan.preset: a symlink in the copied tree; not followed"
        return 0
    fi
    if [ -f "$amiscan_p" ] && grep -qxF -- "disable $1" "$amiscan_p"; then
        return 0
    fi
    if ! mkdir -p -- "${amiscan_p%/*}"; then
        amiscan_skip "$1: cannot create /etc/systemd/system-preset"
        return 0
    fi
    if [ ! -e "$amiscan_p" ]; then
        echo "# Written by the amiscan remediation script: services it disabled stay off on the first boot." >"$amiscan_p" || :
    fi
    printf 'disable %s\n' "$1" >>"$amiscan_p" || amiscan_skip "$1: cannot write its preset rule"
}

# amiscan_inetd_off NAME GUEST-PATH: comments out the service's lines as update-inetd does.
amiscan_inetd_off() {
    if ! amiscan_editable "$2"; then
        amiscan_skip "$2: not a file here; turn $1 off by hand"
        return 0
    fi
    amiscan_a=$1
    export amiscan_a
    amiscan_rewrite "$amiscan_p" '
        /^[ \t]*#/ || NF < 6 { print; next }
        { service = $1; sub(/^.*:/, "", service) }
        service == ENVIRON["amiscan_a"] { print "#<off># " $0; next }
        { print }' || :
}

# amiscan_xinetd_off NAME GUEST-PATH: `disable = yes` in the service's blocks; any other
# disable line there is commented out.
amiscan_xinetd_off() {
    if ! amiscan_editable "$2"; then
        amiscan_skip "$2: not a file here; turn $1 off by hand"
        return 0
    fi
    amiscan_a=$1
    export amiscan_a
    amiscan_rewrite "$amiscan_p" '
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            sub(/[ \t\r]+$/, "", line)
        }
        state == 0 && $1 == "service" && $2 == ENVIRON["amiscan_a"] { state = 1 }
        state == 1 && line == "{" { state = 2; off = 0; print; next }
        state == 2 && line == "}" {
            if (!off) print "\tdisable\t\t= yes"
            state = 0
        }
        state == 2 && line ~ /^disable[ \t]*=/ {
            value = line
            sub(/^disable[ \t]*=[ \t]*/, "", value)
            if (tolower(value) == "yes") off = 1
            else { print "#" $0; next }
        }
        { print }' || :
}

# amiscan_clean_log GUEST-PATH: rotated, compressed and journal files are removed; a live
# log is emptied in place, so it keeps the owner and mode its daemon expects.
amiscan_clean_log() {
    case $1 in
        *.journal | *.journal~ | *.gz | *.xz | *.bz2 | *.zst | *.[0-9] | *.old | */imjournal.state)
            amiscan_remove "$1"
            ;;
        *) amiscan_truncate "$1" ;;
    esac
}

# amiscan_stop_service UNIT: on the live system, stops a daemon that would write again what
# the script removes.
amiscan_stop_service() {
    if [ -z "$AMISCAN_ROOT" ] && amiscan_have systemctl; then
        systemctl stop -- "$1" 2>/dev/null || :
    fi
}
"##;

const EPILOGUE: &str = r#"
if [ "$amiscan_unfixed" != 0 ]; then
    echo "amiscan: some findings were not fixed; see the messages above" >&2
    exit 1
fi
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_single_quoted() {
        assert_eq!(
            single_quoted(b"/a b/it's $(x)").as_deref(),
            Some("'/a b/it'\\''s $(x)'")
        );
        assert_eq!(single_quoted(b"/a\nb"), None);
        assert_eq!(single_quoted(b"/a\xffb"), None);
        assert_eq!(single_quoted("/a\u{202e}b".as_bytes()), None);
    }

    #[test]
    fn printf_formats_escape_what_printf_and_the_quotes_interpret() {
        assert_eq!(
            printf_format(b"/a%b\\c'd\ne\xff"),
            "/a%%b\\\\c'\\''d\\012e\\377"
        );
    }

    #[test]
    fn comments_cannot_end_early() {
        assert_eq!(comment_text("a\nb\u{202e}c"), "a\\u{a}b\\u{202e}c");
    }
}
