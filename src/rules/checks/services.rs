//! `kind: services` — servers enabled at boot (systemd units and sockets, inetd, xinetd,
//! SysV links) or merely installed (package or unit file present), the latter at a lower
//! severity.

use serde::{Deserialize, Serialize};

use super::packages::{installed_matching, package_database_problems};
use super::CheckReport;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::spec_error::{EmptyList, SpecError};
use crate::rules::Severity;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Service names: systemd unit names without their suffix (`vsftpd`, `telnet` for
    /// telnet.socket, `tftp@` for a template), inetd/xinetd service names, server program
    /// names (`in.telnetd`), SysV script names.
    pub names: Vec<String>,
    /// Packages that install such a server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Severity of installed-but-not-enabled findings (default: one step below the rule's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_severity: Option<Severity>,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.names.is_empty() {
            return Err(SpecError::EmptyList(EmptyList::ServiceNames));
        }
        Ok(Compiled { spec: self.clone() })
    }
}

/// A unit name without its type suffix; a template instance keeps its `@`.
fn unit_stem(unit: &str) -> &str {
    let stem = unit.rsplit_once('.').map_or(unit, |(stem, _)| stem);
    match stem.split_once('@') {
        Some((base, _)) => stem.get(..=base.len()).unwrap_or(stem),
        None => stem,
    }
}

/// Only services and sockets start servers; a target or timer named like one
/// (`rpcbind.target`, shipped by systemd itself) does not. Non-systemd mechanisms
/// (inetd, xinetd, SysV) have no unit.
fn runs_a_server(unit: Option<&str>) -> bool {
    unit.is_none_or(|u| u.ends_with(".service") || u.ends_with(".socket"))
}

impl Compiled {
    fn named(&self, candidate: &str) -> bool {
        self.spec.names.iter().any(|n| n == candidate)
    }

    pub fn evaluate(&self, ctx: &ScanContext<'_>, rule_severity: Severity) -> CheckReport {
        let services = match ctx.services() {
            Ok(services) => services,
            Err(e) => return CheckReport::unknown(e.to_string()),
        };
        let mut report = CheckReport::default();
        for service in services
            .enabled
            .iter()
            .filter(|s| runs_a_server(s.unit.as_deref()))
        {
            let hit = self.named(&service.name)
                || service
                    .unit
                    .as_deref()
                    .is_some_and(|u| self.named(unit_stem(u)))
                || service.program.as_deref().is_some_and(|p| self.named(p));
            if hit {
                let what = service.unit.clone().unwrap_or_else(|| service.name.clone());
                report.findings.push(
                    Finding::at(
                        service.origin.path.clone(),
                        format!("{what} is enabled at boot ({})", service.mechanism),
                    )
                    .line(service.origin.line)
                    .subject(what),
                );
            }
        }
        if !report.findings.is_empty() {
            return report;
        }
        let installed_severity = self
            .spec
            .installed_severity
            .unwrap_or_else(|| rule_severity.lower());
        // A masked unit cannot be started, even by hand: deliberately off.
        for unit in services
            .unit_files
            .iter()
            .filter(|u| !u.masked && runs_a_server(Some(&u.name)))
        {
            if self.named(unit_stem(&unit.name)) {
                report.findings.push(
                    Finding::at(
                        unit.path.clone(),
                        format!("{} is installed but not enabled at boot", unit.name),
                    )
                    .subject(unit.name.clone())
                    .severity(installed_severity),
                );
            }
        }
        match ctx.packages() {
            Ok(packages) => {
                for package in installed_matching(packages, &self.spec.packages) {
                    report.findings.push(
                        Finding::at(
                            package.origin.path.clone(),
                            format!(
                                "package {} is installed ({}) but its server is not enabled at boot",
                                package.name, package.manager.as_str()
                            ),
                        )
                        .line(package.origin.line)
                        .subject(package.name.clone())
                        .severity(installed_severity),
                    );
                }
                report.unknown.extend(package_database_problems(packages));
            }
            Err(e) => report.unknown.push(e.to_string()),
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::unit_stem;

    #[test]
    fn unit_stems_drop_the_suffix_and_instance() {
        assert_eq!(unit_stem("vsftpd.service"), "vsftpd");
        assert_eq!(unit_stem("telnet.socket"), "telnet");
        assert_eq!(unit_stem("tftp@.service"), "tftp@");
        assert_eq!(unit_stem("rsh@10.0.0.1:514.service"), "rsh@");
    }
}
