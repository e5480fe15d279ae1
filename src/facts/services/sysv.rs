//! SysV init's start links (`S##name`) in the multi-user runlevels.

use super::paths::basename;
use super::{EnabledService, Mechanism, Services, MAX_DIR_ENTRIES};
use crate::facts::{FactError, GuestFiles, Origin};

/// `S##name` links in /etc/rc2.d … /etc/rc5.d (the multi-user runlevels). On a systemd
/// guest, a native unit of the same name takes precedence over the script; callers can
/// check `unit_files`.
pub(super) fn read(files: &dyn GuestFiles, out: &mut Services) -> Result<(), FactError> {
    for runlevel in 2u8..=5 {
        let dir = format!("/etc/rc{runlevel}.d");
        let Some(mut items) = files.list(&dir)? else {
            continue;
        };
        if items.len() > MAX_DIR_ENTRIES {
            return Err(FactError::too_large(
                dir,
                format!("{} entries; not read", items.len()),
            ));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items {
            let entry = String::from_utf8_lossy(&item.name).into_owned();
            let Some(rest) = entry.strip_prefix('S') else {
                continue;
            };
            let name = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            if name.len() == rest.len() || name.is_empty() {
                continue;
            }
            let path = format!("{dir}/{entry}");
            let program = match files.read_link(&path)? {
                Some(target) => basename(&String::from_utf8_lossy(&target)).to_string(),
                None => name.to_string(),
            };
            out.enabled.push(EnabledService {
                name: name.to_string(),
                unit: None,
                unit_file: None,
                alias: None,
                wanted_by: None,
                program: Some(program),
                mechanism: Mechanism::SysV { runlevel },
                origin: Origin { path, line: 0 },
            });
        }
    }
    Ok(())
}
