//! xinetd's services: the service blocks of its configuration and includes, less those
//! disabled there or left out by the `defaults` block.

use std::collections::BTreeSet;

use super::paths::basename;
use super::{EnabledService, Mechanism, Services, MAX_INCLUDES};
use crate::facts::{child_path, FactError, GuestFiles, Origin};
use crate::filesystems::FileKind;

#[derive(Debug)]
struct XService {
    name: String,
    id: Option<String>,
    server: Option<String>,
    disabled: bool,
    internal: bool,
    origin: Origin,
}

#[derive(Debug, Default)]
struct XConfig {
    services: Vec<XService>,
    enabled: Option<BTreeSet<String>>,
    disabled: BTreeSet<String>,
}

/// xinetd.conf(5): `service NAME { attr = values }` blocks, a `defaults` block whose
/// `disabled` lists service ids to disable and whose `enabled`, when present, lists the
/// only ids that run; `disable = yes` or the `DISABLE` flag turns one service off.
/// `include FILE` and `includedir DIR` (skipping names with a dot or ending in `~`, in C
/// locale order) read further files.
pub(super) fn read(files: &dyn GuestFiles, out: &mut Services) -> Result<(), FactError> {
    let mut config = XConfig::default();
    let mut queue = vec!["/etc/xinetd.conf".to_string()];
    let mut read_files: BTreeSet<String> = BTreeSet::new();
    while let Some(path) = queue.pop() {
        // A file that includes itself (or a loop of them) is read once.
        if !read_files.insert(path.clone()) {
            continue;
        }
        if read_files.len() > MAX_INCLUDES {
            return Err(FactError::limit_reached(
                path,
                "too many xinetd include files",
            ));
        }
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        let mut includes = Vec::new();
        parse_xinetd(&text, &path, &mut config, &mut includes);
        // Parsed in order: later includes go to the bottom of the stack, so reverse.
        for include in includes.into_iter().rev() {
            match include {
                XInclude::File(file) => queue.push(file),
                XInclude::Dir(dir) => {
                    let Some(mut items) = files.list(&dir)? else {
                        continue;
                    };
                    items.sort_by(|a, b| a.name.cmp(&b.name));
                    for item in items.into_iter().rev() {
                        if item.name.contains(&b'.') || item.name.ends_with(b"~") {
                            continue;
                        }
                        if matches!(item.kind, FileKind::File | FileKind::Symlink) {
                            queue.push(child_path(&dir, &item.name));
                        }
                    }
                }
            }
        }
    }
    for service in config.services {
        let id = service.id.clone().unwrap_or_else(|| service.name.clone());
        if service.disabled || config.disabled.contains(&id) {
            continue;
        }
        if config
            .enabled
            .as_ref()
            .is_some_and(|only| !only.contains(&id))
        {
            continue;
        }
        let program = if service.internal {
            Some("internal".to_string())
        } else {
            service.server.as_deref().map(|s| basename(s).to_string())
        };
        out.enabled.push(EnabledService {
            name: service.name,
            unit: None,
            unit_file: None,
            alias: None,
            wanted_by: None,
            program,
            mechanism: Mechanism::Xinetd,
            origin: service.origin,
        });
    }
    Ok(())
}

enum XInclude {
    File(String),
    Dir(String),
}

fn parse_xinetd(text: &str, path: &str, config: &mut XConfig, includes: &mut Vec<XInclude>) {
    enum Block {
        None,
        Defaults,
        Service(XService),
    }
    let mut block = Block::None;
    let mut pending: Option<(String, bool, usize)> = None; // a header waiting for `{`
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        match &mut block {
            Block::None => {
                if line == "{" {
                    if let Some((name, is_defaults, line_no)) = pending.take() {
                        block = if is_defaults {
                            Block::Defaults
                        } else {
                            Block::Service(XService {
                                name,
                                id: None,
                                server: None,
                                disabled: false,
                                internal: false,
                                origin: Origin {
                                    path: path.to_string(),
                                    line: line_no,
                                },
                            })
                        };
                    }
                    continue;
                }
                match first {
                    "service" => {
                        if let Some(name) = words.next() {
                            pending = Some((name.to_string(), false, index + 1));
                        }
                    }
                    "defaults" => pending = Some((String::new(), true, index + 1)),
                    "includedir" => {
                        if let Some(dir) = words.next() {
                            includes.push(XInclude::Dir(dir.to_string()));
                        }
                    }
                    "include" => {
                        if let Some(file) = words.next() {
                            includes.push(XInclude::File(file.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            Block::Defaults | Block::Service(_) => {
                if line == "}" {
                    if let Block::Service(service) = std::mem::replace(&mut block, Block::None) {
                        config.services.push(service);
                    }
                    block = Block::None;
                    continue;
                }
                let Some((key, op, values)) = split_assignment(line) else {
                    continue;
                };
                let values: Vec<String> = values.split_whitespace().map(str::to_string).collect();
                match &mut block {
                    Block::Defaults => match key {
                        // Cumulative in defaults: `=` adds like `+=`.
                        "disabled" => match op {
                            "-=" => values.iter().for_each(|v| {
                                config.disabled.remove(v);
                            }),
                            _ => config.disabled.extend(values),
                        },
                        "enabled" => {
                            let set = config.enabled.get_or_insert_with(BTreeSet::new);
                            match op {
                                "-=" => values.iter().for_each(|v| {
                                    set.remove(v);
                                }),
                                _ => set.extend(values),
                            }
                        }
                        _ => {}
                    },
                    Block::Service(service) => match key {
                        "disable" => {
                            service.disabled = values
                                .first()
                                .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
                        }
                        "id" => service.id = values.first().cloned(),
                        "server" => service.server = values.first().cloned(),
                        "type" => service.internal = values.iter().any(|v| v == "INTERNAL"),
                        "flags" if values.iter().any(|v| v == "DISABLE") && op != "-=" => {
                            service.disabled = true;
                        }
                        _ => {}
                    },
                    Block::None => {}
                }
            }
        }
    }
}

/// `key op values` with `op` one of `=`, `+=`, `-=`.
pub(super) fn split_assignment(line: &str) -> Option<(&str, &str, &str)> {
    let eq = line.find('=')?;
    let (before, after) = line.split_at(eq);
    let after = after.get(1..).unwrap_or_default();
    let (key, op) = if let Some(key) = before.strip_suffix('+') {
        (key, "+=")
    } else if let Some(key) = before.strip_suffix('-') {
        (key, "-=")
    } else {
        (before, "=")
    };
    Some((key.trim(), op, after.trim()))
}
