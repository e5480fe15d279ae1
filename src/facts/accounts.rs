//! Local accounts from /etc/passwd and /etc/shadow, and what each password field means.
//! The hash itself never leaves this module: callers get its state and scheme only.

use super::{FactError, GuestFiles, Origin};

/// Lines read from one account file; more is not a real system.
const MAX_ACCOUNTS: usize = 100_000;

/// What a password field allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordState {
    /// Empty field: login without a password.
    Empty,
    /// `!`, `*` or `!!` prefix (or `x` in passwd with no shadow entry): no password login.
    Locked,
    /// A hash that a password can match.
    Usable,
}

/// One /etc/passwd line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: Option<u32>,
    pub home: String,
    pub shell: String,
    /// The passwd password field's state when it is not `x`; `None` when shadowed.
    pub inline_password: Option<(PasswordState, &'static str)>,
    pub origin: Origin,
}

/// One /etc/shadow line (the hash is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    pub name: String,
    pub state: PasswordState,
    /// The hashing scheme (`yescrypt`, `sha512crypt`, …) for usable hashes.
    pub scheme: &'static str,
    pub origin: Origin,
}

/// The guest's accounts.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub passwd: Vec<PasswdEntry>,
    pub shadow: Vec<ShadowEntry>,
    /// False when /etc/shadow does not exist.
    pub has_shadow: bool,
}

/// An account's effective password state, with the line that decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Password {
    pub name: String,
    pub state: PasswordState,
    pub scheme: &'static str,
    pub origin: Origin,
}

impl Accounts {
    /// Every account's password state: its shadow line, or (when it has none) its passwd
    /// field, where `x` means "look in shadow" and so, with no shadow line, no password.
    pub fn passwords(&self) -> Vec<Password> {
        let mut out: Vec<Password> = self
            .shadow
            .iter()
            .map(|s| Password {
                name: s.name.clone(),
                state: s.state,
                scheme: s.scheme,
                origin: s.origin.clone(),
            })
            .collect();
        for p in &self.passwd {
            if self.shadow.iter().any(|s| s.name == p.name) {
                continue;
            }
            let (state, scheme) = p.inline_password.unwrap_or((PasswordState::Locked, ""));
            out.push(Password {
                name: p.name.clone(),
                state,
                scheme,
                origin: p.origin.clone(),
            });
        }
        out
    }
}

/// The state of a crypt(3) password field, and the scheme of a usable hash.
pub fn classify(field: &str) -> (PasswordState, &'static str) {
    if field.is_empty() {
        return (PasswordState::Empty, "");
    }
    if field.starts_with('!') || field.starts_with('*') {
        return (PasswordState::Locked, "");
    }
    (PasswordState::Usable, scheme(field))
}

fn scheme(hash: &str) -> &'static str {
    let id = hash
        .strip_prefix('$')
        .and_then(|rest| rest.split('$').next())
        .unwrap_or("");
    match id {
        "y" => "yescrypt",
        "gy" => "gost-yescrypt",
        "7" => "scrypt",
        "6" => "sha512crypt",
        "5" => "sha256crypt",
        "2a" | "2b" | "2x" | "2y" => "bcrypt",
        "1" => "md5crypt",
        "sha1" => "sha1crypt",
        "md5" => "sunmd5",
        _ if hash.len() == 13 => "descrypt",
        _ if hash.starts_with('_') && hash.len() == 20 => "bsdicrypt",
        _ => "unrecognised format",
    }
}

/// Reads /etc/passwd and /etc/shadow. `Ok(None)` when the guest has no /etc/passwd.
pub fn read(files: &dyn GuestFiles) -> Result<Option<Accounts>, FactError> {
    let Some(passwd_text) = files.read_text("/etc/passwd")? else {
        return Ok(None);
    };
    let shadow_text = files.read_text("/etc/shadow")?;
    let passwd = parse_passwd(&passwd_text, "/etc/passwd");
    let shadow = shadow_text
        .as_deref()
        .map(|text| parse_shadow(text, "/etc/shadow"))
        .unwrap_or_default();
    Ok(Some(Accounts {
        passwd,
        shadow,
        has_shadow: shadow_text.is_some(),
    }))
}

/// Account lines: not blank, not a comment, not a NIS `+`/`-` compat entry.
fn account_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .take(MAX_ACCOUNTS)
        .filter(|(_, line)| {
            let line = line.trim_end_matches('\r');
            !line.trim().is_empty()
                && !line.starts_with('#')
                && !line.starts_with('+')
                && !line.starts_with('-')
        })
        .map(|(index, line)| (index + 1, line.trim_end_matches('\r').split(':').collect()))
}

pub fn parse_passwd(text: &str, path: &str) -> Vec<PasswdEntry> {
    account_lines(text)
        .filter_map(|(line, fields)| {
            let name = fields.first()?.to_string();
            let password = fields.get(1).copied().unwrap_or("");
            Some(PasswdEntry {
                name,
                uid: fields.get(2).and_then(|uid| uid.parse().ok()),
                home: fields.get(5).copied().unwrap_or("").to_string(),
                shell: fields.get(6).copied().unwrap_or("").to_string(),
                inline_password: (password != "x").then(|| classify(password)),
                origin: Origin {
                    path: path.to_string(),
                    line,
                },
            })
        })
        .collect()
}

pub fn parse_shadow(text: &str, path: &str) -> Vec<ShadowEntry> {
    account_lines(text)
        .filter_map(|(line, fields)| {
            let name = fields.first()?.to_string();
            let (state, scheme) = classify(fields.get(1).copied().unwrap_or(""));
            Some(ShadowEntry {
                name,
                state,
                scheme,
                origin: Origin {
                    path: path.to_string(),
                    line,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_fields_follow_shadow5() {
        assert_eq!(classify("").0, PasswordState::Empty);
        assert_eq!(classify("!").0, PasswordState::Locked);
        assert_eq!(classify("!!").0, PasswordState::Locked);
        assert_eq!(classify("*").0, PasswordState::Locked);
        assert_eq!(classify("!$6$salt$hash").0, PasswordState::Locked);
        assert_eq!(classify("*LK*").0, PasswordState::Locked);
        assert_eq!(
            classify("$6$salt$hash"),
            (PasswordState::Usable, "sha512crypt")
        );
        assert_eq!(
            classify("$y$j9T$salt$hash"),
            (PasswordState::Usable, "yescrypt")
        );
        assert_eq!(
            classify("abcdefghijklm"),
            (PasswordState::Usable, "descrypt")
        );
    }

    #[test]
    fn accounts_without_shadow_lines_use_the_passwd_field() {
        let passwd = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nold:$1$a$b:1000:1000::/home/old:/bin/sh\nopen::1001:1001::/home/open:/bin/sh\nghost:x:1002:1002::/home/ghost:/bin/sh\n",
            "/etc/passwd",
        );
        let shadow = parse_shadow("root:*:19000:0:99999:7:::\n", "/etc/shadow");
        let accounts = Accounts {
            passwd,
            shadow,
            has_shadow: true,
        };
        let states: Vec<(String, PasswordState)> = accounts
            .passwords()
            .into_iter()
            .map(|p| (p.name, p.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("root".into(), PasswordState::Locked),
                ("old".into(), PasswordState::Usable),
                ("open".into(), PasswordState::Empty),
                ("ghost".into(), PasswordState::Locked),
            ]
        );
    }

    #[test]
    fn comments_blank_lines_and_nis_entries_are_not_accounts() {
        let passwd = parse_passwd("# c\n\n+::::::\n-bad\nroot:x:0:0::/root:/bin/sh\r\n", "p");
        assert_eq!(passwd.len(), 1);
        assert_eq!(passwd[0].shell, "/bin/sh");
        assert_eq!(passwd[0].origin.line, 5);
    }
}
