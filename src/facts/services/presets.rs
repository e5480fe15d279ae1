//! systemd's presets, applied on the first boot: the `*.preset` files and their rules,
//! the first rule matching a unit, and the links `systemctl enable` would then create.

use std::collections::BTreeMap;

use super::names::{
    instance_of, stem, suffix, template_of, unit_name_kind, with_instance, NameKind,
};
use super::paths::{basename, canonical_path};
use super::systemd::{Resolved, Systemd};
use super::unit_file::expand_specifiers;
use super::{
    fnmatch, EnabledService, Link, Mechanism, Services, MAX_CHAIN, MAX_DIR_ENTRIES,
    PERSISTENT_CONFIG,
};
use crate::facts::{child_path, FactError, GuestFiles, Origin};
use crate::filesystems::FileKind;

/// Where preset files are looked for, highest priority first.
const PRESET_DIRS: [&str; 4] = [
    "/etc/systemd/system-preset",
    "/usr/local/lib/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
    "/lib/systemd/system-preset",
];

/// Preset rules: every rule may be matched against every unit name, so a hostile image
/// must not be able to make that product huge. Real systems have a few hundred.
const MAX_PRESET_RULES: usize = 10_000;

impl Systemd<'_> {
    /// What `systemctl preset-all --preset-mode=enable-only` would add, which systemd 252
    /// runs on the first boot: every unit name in the search path that is not an alias,
    /// not masked, and whose first matching preset rule is `enable` (or which no rule
    /// matches: systemd's default is to enable) is enabled from its `[Install]` section.
    /// Only links that do not exist yet are reported.
    pub(super) fn presets(&mut self, out: &mut Services) -> Result<(), FactError> {
        let rules = read_presets(self.files)?;
        // In search-path order, each name once (the order only decides which of two units
        // claiming one alias gets it, which systemd leaves to directory order anyway).
        let names = self.unit_names()?;
        let mut planned: BTreeMap<String, (String, String, Link, Option<String>, Origin)> =
            BTreeMap::new();
        for name in names {
            let Resolved::Unit { real, .. } = self.resolve(&name)? else {
                continue;
            };
            if real != name {
                continue;
            }
            let Some((rule, instances)) = query_presets(&rules, &name) else {
                continue;
            };
            if instances.is_empty() {
                self.plan_install(&name, &rule, &mut planned, 0)?;
            } else {
                for instance in instances {
                    self.plan_install(&instance, &rule, &mut planned, 0)?;
                }
            }
        }
        for (link, (unit, file, kind, owner, origin)) in planned {
            if self.files.kind(&link)?.is_some() {
                continue;
            }
            let program = self.program(&unit, &file)?;
            out.enabled.push(EnabledService {
                name: stem(&unit).to_string(),
                alias: (kind == Link::Alias).then(|| basename(&link).to_string()),
                unit: Some(unit),
                unit_file: Some(file),
                wanted_by: owner,
                program,
                mechanism: Mechanism::PresetFirstBoot(kind),
                origin,
            });
        }
        Ok(())
    }

    /// The links `systemctl enable NAME` would create, keyed by link path: (unit, unit
    /// file, kind, owning unit, the preset rule responsible).
    #[allow(clippy::type_complexity)]
    fn plan_install(
        &mut self,
        name: &str,
        rule: &Origin,
        planned: &mut BTreeMap<String, (String, String, Link, Option<String>, Origin)>,
        depth: usize,
    ) -> Result<(), FactError> {
        if depth > MAX_CHAIN {
            return Ok(());
        }
        let Resolved::Unit { real, file, .. } = self.resolve(name)? else {
            return Ok(());
        };
        let info = self.info(&file)?;
        let kind = unit_name_kind(&real);
        // A template is enabled through its default instance, or not at all.
        let unit = match kind {
            Some(NameKind::Template) => info
                .default_instance
                .as_deref()
                .map(|i| with_instance(&real, i)),
            _ => Some(real.clone()),
        };
        if let Some(unit) = &unit {
            for (list, link) in [
                (&info.wanted_by, Link::Wants),
                (&info.required_by, Link::Requires),
                (&info.upheld_by, Link::Upholds),
            ] {
                for target in list {
                    let Some(mut target) = expand_specifiers(target, unit) else {
                        continue;
                    };
                    match unit_name_kind(&target) {
                        None => continue,
                        Some(NameKind::Template) => {
                            if let Some(instance) = instance_of(unit) {
                                target = with_instance(&target, instance);
                            }
                        }
                        _ => {}
                    }
                    let dir_suffix = match link {
                        Link::Wants => "wants",
                        Link::Requires => "requires",
                        _ => "upholds",
                    };
                    let path = format!("{PERSISTENT_CONFIG}/{target}.{dir_suffix}/{unit}");
                    planned.entry(path).or_insert_with(|| {
                        (
                            unit.clone(),
                            file.clone(),
                            link,
                            Some(target.clone()),
                            rule.clone(),
                        )
                    });
                }
            }
        }
        for alias in &info.alias {
            let Some(mut alias) = expand_specifiers(alias, &real) else {
                continue;
            };
            if suffix(&alias) != suffix(&real) {
                continue;
            }
            match (unit_name_kind(&alias), kind) {
                (Some(NameKind::Template), Some(NameKind::Instance)) => {
                    if let Some(instance) = instance_of(&real) {
                        alias = with_instance(&alias, instance);
                    }
                }
                (Some(NameKind::Plain), Some(NameKind::Plain))
                | (Some(NameKind::Template), Some(NameKind::Template))
                | (Some(NameKind::Instance), Some(NameKind::Instance)) => {}
                _ => continue,
            }
            if alias == real {
                continue;
            }
            let path = format!("{PERSISTENT_CONFIG}/{alias}");
            planned
                .entry(path)
                .or_insert_with(|| (real.clone(), file.clone(), Link::Alias, None, rule.clone()));
        }
        for also in &info.also {
            if let Some(also) = expand_specifiers(also, &real) {
                if unit_name_kind(&also).is_some() && also != real {
                    self.plan_install(&also, rule, planned, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PresetAction {
    Enable,
    Disable,
    /// systemd ≥ 254: leave the unit alone (stops the search like the others).
    Ignore,
}

#[derive(Debug, Clone)]
struct PresetRule {
    action: PresetAction,
    pattern: String,
    instances: Vec<String>,
    origin: Origin,
}

/// The preset rules in order: `*.preset` files from every preset directory, a file in an
/// earlier directory hiding one of the same name in a later one (a symlink to /dev/null
/// or an empty file hides it and contributes nothing), all sorted by file name.
fn read_presets(files: &dyn GuestFiles) -> Result<Vec<PresetRule>, FactError> {
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_dirs: Vec<String> = Vec::new();
    for dir in PRESET_DIRS {
        let canonical = canonical_path(files, dir)?;
        if seen_dirs.contains(&canonical) {
            continue;
        }
        seen_dirs.push(canonical);
        let Some(items) = files.list(dir)? else {
            continue;
        };
        if items.len() > MAX_DIR_ENTRIES {
            return Err(FactError::too_large(
                dir,
                format!("{} entries; not read", items.len()),
            ));
        }
        for item in items {
            let name = String::from_utf8_lossy(&item.name).into_owned();
            if name.starts_with('.') || !name.ends_with(".preset") || chosen.contains_key(&name) {
                continue;
            }
            if !matches!(item.kind, FileKind::File | FileKind::Symlink) {
                continue;
            }
            chosen.insert(name.clone(), child_path(dir, &item.name));
        }
    }
    let mut rules = Vec::new();
    for path in chosen.into_values() {
        if files.read_link(&path)?.as_deref() == Some(b"/dev/null".as_slice()) {
            continue;
        }
        let Some(text) = files.read_text(&path)? else {
            continue;
        };
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            let origin = Origin {
                path: path.clone(),
                line: index + 1,
            };
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            let action = match word {
                "enable" => PresetAction::Enable,
                "disable" => PresetAction::Disable,
                "ignore" => PresetAction::Ignore,
                _ => continue,
            };
            let mut words = rest.split_whitespace();
            let Some(pattern) = words.next() else {
                continue;
            };
            let instances: Vec<String> = words.map(str::to_string).collect();
            // Instances are only allowed after a template name; otherwise systemd ignores
            // the line.
            if !instances.is_empty()
                && (action != PresetAction::Enable
                    || unit_name_kind(pattern) != Some(NameKind::Template))
            {
                continue;
            }
            if rules.len() >= MAX_PRESET_RULES {
                return Err(FactError::limit_reached(
                    &path,
                    format!("more than {MAX_PRESET_RULES} preset rules; not read"),
                ));
            }
            rules.push(PresetRule {
                action,
                pattern: pattern.to_string(),
                instances,
                origin,
            });
        }
    }
    Ok(rules)
}

/// The first rule matching `name`: `Some((rule origin, instances to enable))` when it says
/// enable (instances empty: enable `name` itself), `None` for disable/ignore. With no
/// matching rule systemd enables, and so do we (origin line 0: no file).
fn query_presets(rules: &[PresetRule], name: &str) -> Option<(Origin, Vec<String>)> {
    for rule in rules {
        let mut instances = Vec::new();
        let mut matched = false;
        if !rule.instances.is_empty() && template_of(name).as_deref() == Some(rule.pattern.as_str())
        {
            match unit_name_kind(name) {
                Some(NameKind::Template) => {
                    instances = rule
                        .instances
                        .iter()
                        .map(|i| with_instance(name, i))
                        .collect();
                    matched = true;
                }
                _ => {
                    matched =
                        instance_of(name).is_some_and(|i| rule.instances.iter().any(|r| r == i))
                }
            }
        }
        if !matched && !fnmatch(&rule.pattern, name) {
            continue;
        }
        return match rule.action {
            PresetAction::Enable => Some((rule.origin.clone(), instances)),
            PresetAction::Disable | PresetAction::Ignore => None,
        };
    }
    Some((
        Origin {
            path: "(no preset rule: systemd's default is enable)".to_string(),
            line: 0,
        },
        Vec::new(),
    ))
}
