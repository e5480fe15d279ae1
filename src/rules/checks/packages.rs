//! `kind: packages` — packages that should not be installed, from the guest's own package
//! databases (dpkg, rpm, apk). A database that exists but cannot be read makes the rule
//! undecided, never a pass.

use serde::{Deserialize, Serialize};

use super::CheckReport;
use crate::facts::packages::{Package, Packages};
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::spec_error::{EmptyList, SpecError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Package names (exact).
    pub names: Vec<String>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.names.is_empty() {
            return Err(SpecError::EmptyList(EmptyList::PackageNames));
        }
        Ok(Compiled { spec: self.clone() })
    }
}

/// Installed packages whose name is in `names`, in name order.
pub fn installed_matching<'a>(packages: &'a Packages, names: &[String]) -> Vec<&'a Package> {
    packages
        .installed
        .values()
        .filter(|p| names.iter().any(|n| n == &p.name))
        .collect()
}

/// Package databases present in the guest that could not be read.
pub fn package_database_problems(packages: &Packages) -> Vec<String> {
    packages
        .databases
        .iter()
        .filter(|db| !db.readable)
        .map(|db| {
            format!(
                "{} database {} could not be read: {}",
                db.manager.as_str(),
                db.path,
                db.problem.as_deref().unwrap_or("unsupported format")
            )
        })
        .collect()
}

impl Compiled {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let packages = match ctx.packages() {
            Ok(packages) => packages,
            Err(e) => return CheckReport::unknown(e.to_string()),
        };
        let mut report = CheckReport::default();
        for package in installed_matching(packages, &self.spec.names) {
            let version = package
                .version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            report.findings.push(
                Finding::at(
                    package.origin.path.clone(),
                    format!(
                        "{}: {}{version} ({})",
                        self.spec.message,
                        package.name,
                        package.manager.as_str()
                    ),
                )
                .line(package.origin.line)
                .subject(package.name.clone()),
            );
        }
        report.unknown.extend(package_database_problems(packages));
        if packages.databases.is_empty() && report.findings.is_empty() {
            report.skipped = Some("the image has no package database amiscan reads".into());
        }
        report
    }
}
