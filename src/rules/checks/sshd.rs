//! `kind: sshd` — one keyword of sshd's configuration as sshd itself computes it: the
//! effective global value (first obtained value wins, drop-ins included first), plus any
//! Match block that sets a failing value for some connections. With `--sshd-strict`, every
//! occurrence must conform too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CheckReport;
use crate::facts::sshd::SshdConfig;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::spec_error::SpecError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The sshd_config keyword (case-insensitive; aliases such as
    /// ChallengeResponseAuthentication are folded by the reader).
    pub keyword: String,
    /// Values that fail the rule (lower case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_on: Vec<String>,
    /// Values that pass the rule; anything else fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_on: Vec<String>,
    /// Other keywords' effective values that must hold for a value to count as failing
    /// (KbdInteractiveAuthentication only reaches passwords when UsePAM is yes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub only_when: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.fail_on.is_empty() == self.pass_on.is_empty() {
            return Err(SpecError::FailOrPassOn);
        }
        let mut spec = self.clone();
        spec.keyword = crate::facts::sshd::canonical_keyword(&spec.keyword)
            .unwrap_or(&spec.keyword)
            .to_ascii_lowercase();
        for values in [&mut spec.fail_on, &mut spec.pass_on] {
            for value in values.iter_mut() {
                *value = value.to_ascii_lowercase();
            }
        }
        spec.only_when = spec
            .only_when
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.into_iter().map(|v| v.to_ascii_lowercase()).collect(),
                )
            })
            .collect();
        Ok(Compiled { spec })
    }
}

impl Compiled {
    fn fails(&self, value: &str) -> bool {
        if self.spec.pass_on.is_empty() {
            self.spec.fail_on.iter().any(|v| v == value)
        } else {
            !self.spec.pass_on.iter().any(|v| v == value)
        }
    }

    /// The conditions in `only_when`, judged on effective global values.
    fn applies(&self, config: &SshdConfig) -> bool {
        self.spec
            .only_when
            .iter()
            .all(|(keyword, values)| values.contains(&config.effective(keyword).normalised))
    }

    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let config = match ctx.sshd() {
            Ok(Some(config)) => config,
            Ok(None) => return CheckReport::skipped("the image has no sshd"),
            Err(e) => return CheckReport::unknown(e.to_string()),
        };
        let keyword = &self.spec.keyword;
        let conditions = || {
            self.spec
                .only_when
                .keys()
                .map(|k| {
                    let e = config.effective(k);
                    format!("{} {}", e.keyword, e.value)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut findings = Vec::new();
        if !self.applies(config) {
            return CheckReport::default();
        }
        let when = if self.spec.only_when.is_empty() {
            String::new()
        } else {
            format!(" while {}", conditions())
        };
        let effective = config.effective(keyword);
        if self.fails(&effective.normalised) {
            let finding = match &effective.origin {
                Some(origin) => Finding::at(
                    origin.path.clone(),
                    format!(
                        "{} {}{when}: sshd uses this value",
                        effective.keyword, effective.value
                    ),
                )
                .line(origin.line),
                None => Finding {
                    path: None,
                    line: None,
                    subject: None,
                    message: format!(
                        "{} is not set: OpenSSH's compiled-in default {}{when} applies",
                        effective.keyword, effective.value
                    ),
                    severity: None,
                    residue: None,
                    fingerprint: None,
                },
            };
            findings.push(finding.subject(effective.keyword.clone()));
        }
        for block in &config.match_blocks {
            for setting in block.settings.iter().filter(|s| &s.keyword == keyword) {
                if self.fails(&setting.normalised) {
                    findings.push(
                        Finding::at(
                            setting.origin.path.clone(),
                            format!(
                                "`Match {}` (line {} of {}) sets {} {}{when} for the connections it matches",
                                block.criteria,
                                block.origin.line,
                                block.origin.path,
                                effective.keyword,
                                setting.value
                            ),
                        )
                        .line(setting.origin.line)
                        .subject(effective.keyword.clone()),
                    );
                }
            }
        }
        if ctx.options.sshd_strict {
            for setting in config
                .occurrences
                .iter()
                .filter(|s| &s.keyword == keyword && s.match_block.is_none())
            {
                if Some(&setting.origin) == effective.origin.as_ref()
                    || !self.fails(&setting.normalised)
                {
                    continue;
                }
                findings.push(
                    Finding::at(
                        setting.origin.path.clone(),
                        format!(
                            "{} {}: not the value sshd uses, but --sshd-strict asks every occurrence to conform",
                            effective.keyword, setting.value
                        ),
                    )
                    .line(setting.origin.line)
                    .subject(effective.keyword.clone()),
                );
            }
        }
        CheckReport::findings(findings)
    }
}
