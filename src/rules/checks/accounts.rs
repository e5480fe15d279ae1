//! `kind: accounts` — /etc/passwd and /etc/shadow: usable or empty passwords, extra UID 0
//! accounts. Findings name the account and the line, never the hash.

use serde::{Deserialize, Serialize};

use super::CheckReport;
use crate::facts::accounts::PasswordState;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// An account has a hash a password can match.
    PasswordSet,
    /// An account's password field is empty: no password needed.
    EmptyPassword,
    /// An account other than root has UID 0.
    Uid0,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub condition: Condition,
    /// Account names that never count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

impl Spec {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let accounts = match ctx.accounts() {
            Ok(Some(accounts)) => accounts,
            Ok(None) => return CheckReport::skipped("the image has no /etc/passwd"),
            Err(e) => return CheckReport::unknown(e.to_string()),
        };
        let mut findings = Vec::new();
        match self.condition {
            Condition::PasswordSet | Condition::EmptyPassword => {
                let wanted = match self.condition {
                    Condition::PasswordSet => PasswordState::Usable,
                    _ => PasswordState::Empty,
                };
                for password in accounts.passwords() {
                    if password.state != wanted || self.except.contains(&password.name) {
                        continue;
                    }
                    let message = match wanted {
                        PasswordState::Usable => format!(
                            "account {} has a usable password ({} hash)",
                            password.name, password.scheme
                        ),
                        _ => format!(
                            "account {} has an empty password field: it logs in without a password",
                            password.name
                        ),
                    };
                    findings.push(
                        Finding::at(password.origin.path.clone(), message)
                            .line(password.origin.line)
                            .subject(password.name.clone()),
                    );
                }
            }
            Condition::Uid0 => {
                for account in &accounts.passwd {
                    if account.uid == Some(0)
                        && account.name != "root"
                        && !self.except.contains(&account.name)
                    {
                        findings.push(
                            Finding::at(
                                account.origin.path.clone(),
                                format!("account {} has UID 0 (root's powers)", account.name),
                            )
                            .line(account.origin.line)
                            .subject(account.name.clone()),
                        );
                    }
                }
            }
        }
        CheckReport::findings(findings)
    }
}
