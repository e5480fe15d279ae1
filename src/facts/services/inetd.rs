//! inetd's services: uncommented lines of /etc/inetd.conf and /etc/inetd.d/*.

use super::paths::basename;
use super::{EnabledService, Mechanism, Services, MAX_INCLUDES};
use crate::facts::{child_path, FactError, GuestFiles, Origin};

/// Uncommented lines of /etc/inetd.conf and /etc/inetd.d/* (inetutils reads the
/// directory; Debian's `update-inetd` disables a line by prefixing `#<off># `, which is a
/// comment like any other). A `host:` prefix on the service name is dropped, and a line
/// that is only `host:` sets the default address, not a service.
pub(super) fn read(files: &dyn GuestFiles, out: &mut Services) -> Result<(), FactError> {
    let mut paths = vec!["/etc/inetd.conf".to_string()];
    if let Some(mut items) = files.list("/etc/inetd.d")? {
        if items.len() > MAX_INCLUDES {
            return Err(FactError::too_large(
                "/etc/inetd.d",
                format!("{} entries; not read", items.len()),
            ));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items {
            let name = String::from_utf8_lossy(&item.name).into_owned();
            if name.starts_with('.') || name.ends_with('~') || name.contains(".dpkg-") {
                continue;
            }
            paths.push(child_path("/etc/inetd.d", &item.name));
        }
    }
    for path in paths {
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(first) = fields.first() else {
                continue;
            };
            if fields.len() < 6 {
                continue;
            }
            let service = first.rsplit_once(':').map_or(*first, |(_, s)| s);
            if service.is_empty() {
                continue;
            }
            let server = fields.get(5).copied().unwrap_or_default();
            let program = if basename(server) == "tcpd" {
                fields.get(6).map(|p| basename(p).to_string())
            } else {
                Some(basename(server).to_string())
            };
            out.enabled.push(EnabledService {
                name: service.to_string(),
                unit: None,
                unit_file: None,
                alias: None,
                wanted_by: None,
                program,
                mechanism: Mechanism::Inetd,
                origin: Origin {
                    path: path.clone(),
                    line: index + 1,
                },
            });
        }
    }
    Ok(())
}
