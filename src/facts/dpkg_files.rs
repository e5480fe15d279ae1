//! Which files Debian packages shipped, and their MD5 as shipped: /var/lib/dpkg/info/
//! *.md5sums and the `Conffiles:` of /var/lib/dpkg/status. A file whose content still has
//! that digest is distribution content, not something the publisher left behind.

use std::collections::HashMap;

use super::{FactError, GuestFiles};

/// md5sums files larger than this are not real (the largest Debian ones are a few MiB).
const MAX_MD5SUMS_BYTES: u64 = 64 << 20;
/// Packages (md5sums files) read at most.
const MAX_PACKAGES: usize = 50_000;

/// A packaged file's shipped digest and its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub md5: [u8; 16],
    pub package: String,
}

#[derive(Debug, Clone, Default)]
pub struct PackageFiles {
    by_path: HashMap<String, Shipped>,
}

impl PackageFiles {
    /// The package file at a guest path. On merged-/usr systems dpkg records `/lib/x`
    /// while the walk sees `/usr/lib/x`, so both spellings are tried.
    pub fn get(&self, path: &str) -> Option<&Shipped> {
        self.by_path.get(path).or_else(|| {
            path.strip_prefix("/usr")
                .filter(|rest| {
                    ["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"]
                        .iter()
                        .any(|dir| rest.starts_with(dir))
                })
                .and_then(|rest| self.by_path.get(rest))
        })
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

fn parse_hex(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (index, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(index * 2..index * 2 + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// `md5  relative/path` lines.
fn parse_md5sums(text: &str, package: &str, into: &mut HashMap<String, Shipped>) {
    for line in text.lines() {
        let Some((hex, path)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        if let Some(md5) = parse_hex(hex.trim()) {
            let path = format!("/{}", path.trim_start().trim_start_matches('/'));
            into.insert(
                path,
                Shipped {
                    md5,
                    package: package.to_string(),
                },
            );
        }
    }
}

/// `Conffiles:` continuation lines ` /etc/x md5` of each status stanza.
fn parse_conffiles(status: &str, into: &mut HashMap<String, Shipped>) {
    let mut package = String::new();
    let mut in_conffiles = false;
    for line in status.lines() {
        if let Some(name) = line.strip_prefix("Package:") {
            package = name.trim().to_string();
            in_conffiles = false;
        } else if line.starts_with("Conffiles:") {
            in_conffiles = true;
        } else if in_conffiles && line.starts_with(' ') {
            let mut fields = line.split_whitespace();
            if let (Some(path), Some(hex)) = (fields.next(), fields.next()) {
                if let Some(md5) = parse_hex(hex) {
                    into.insert(
                        path.to_string(),
                        Shipped {
                            md5,
                            package: package.clone(),
                        },
                    );
                }
            }
        } else {
            in_conffiles = false;
        }
    }
}

/// Reads every package's shipped digests. Empty when the guest has no dpkg database.
pub fn read(files: &dyn GuestFiles) -> Result<PackageFiles, FactError> {
    let mut by_path = HashMap::new();
    let dir = "/var/lib/dpkg/info";
    if let Some(mut items) = files.list(dir)? {
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items.iter().take(MAX_PACKAGES) {
            let name = String::from_utf8_lossy(&item.name);
            let Some(package) = name.strip_suffix(".md5sums") else {
                continue;
            };
            let package = package.split(':').next().unwrap_or(package);
            let path = format!("{dir}/{name}");
            if let Some(bytes) = files.read(&path, MAX_MD5SUMS_BYTES)? {
                parse_md5sums(&String::from_utf8_lossy(&bytes), package, &mut by_path);
            }
        }
    }
    if let Some(status) = files.read("/var/lib/dpkg/status", MAX_MD5SUMS_BYTES)? {
        parse_conffiles(&String::from_utf8_lossy(&status), &mut by_path);
    }
    Ok(PackageFiles { by_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5sums_and_conffiles_are_read() {
        let mut map = HashMap::new();
        parse_md5sums(
            "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/x/README\nbad line\n",
            "x",
            &mut map,
        );
        parse_conffiles(
            "Package: y\nStatus: install ok installed\nConffiles:\n /etc/y.conf 0123456789abcdef0123456789abcdef\n /etc/z obsolete\nDescription: d\n",
            &mut map,
        );
        let files = PackageFiles { by_path: map };
        assert_eq!(files.get("/usr/share/doc/x/README").unwrap().package, "x");
        assert_eq!(files.get("/etc/y.conf").unwrap().package, "y");
        assert!(files.get("/etc/z").is_none());
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn merged_usr_paths_find_their_package() {
        let mut map = HashMap::new();
        parse_md5sums(
            "d41d8cd98f00b204e9800998ecf8427e  lib/x/key.pem\n",
            "x",
            &mut map,
        );
        let files = PackageFiles { by_path: map };
        assert!(files.get("/usr/lib/x/key.pem").is_some());
        assert!(files.get("/usr/share/x").is_none());
    }
}
