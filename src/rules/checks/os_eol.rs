//! `kind: os-end-of-life` — the guest's /etc/os-release against a table of release
//! end-of-life dates kept as data in the pack.

use serde::{Deserialize, Serialize};

use super::CheckReport;
use crate::date::Date;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::spec_error::SpecError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// os-release `ID` (debian, ubuntu, amzn, rhel, centos, …).
    pub id: String,
    /// os-release `VERSION_ID`, or its leading part (`8` covers `8.9`).
    pub version: String,
    /// The last day of support, `YYYY-MM-DD`.
    pub eol: String,
    /// Which support ends then, for the message ("standard support", "LTS").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub releases: Vec<Release>,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    releases: Vec<(Release, Date)>,
}

/// Parses `YYYY-MM-DD`.
impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        let releases = self
            .releases
            .iter()
            .map(|r| {
                crate::date::parse(&r.eol)
                    .map(|date| (r.clone(), date))
                    .ok_or_else(|| SpecError::InvalidEol {
                        id: r.id.clone(),
                        version: r.version.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Compiled { releases })
    }
}

fn version_matches(version_id: &str, table: &str) -> bool {
    version_id == table
        || version_id
            .strip_prefix(table)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Compiled {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let Some(os) = ctx.os else {
            return CheckReport::skipped("the image has no /etc/os-release");
        };
        let (Some(id), Some(version_id)) = (os.id.as_deref(), os.version_id.as_deref()) else {
            return CheckReport::skipped("/etc/os-release names no ID and VERSION_ID");
        };
        let found = self
            .releases
            .iter()
            .filter(|(r, _)| r.id == id && version_matches(version_id, &r.version))
            .max_by_key(|(r, _)| r.version.len());
        let Some((release, eol)) = found else {
            return CheckReport::skipped(format!(
                "{id} {version_id} is not in the end-of-life table"
            ));
        };
        if *eol >= ctx.options.today {
            return CheckReport::default();
        }
        let name = os
            .pretty_name
            .clone()
            .unwrap_or_else(|| format!("{id} {version_id}"));
        let support = release.support.as_deref().unwrap_or("support");
        CheckReport::findings(vec![Finding::at(
            "/etc/os-release",
            format!("{name}: {support} ended on {}", release.eol),
        )
        .subject(format!("{id} {version_id}"))])
    }
}
