//! Unit tests of the services reader's parsers.

use super::names::{template_of, unit_name_kind, with_instance, NameKind};
use super::unit_file::{exec_program, parse_unit};
use super::xinetd::split_assignment;

#[test]
fn unit_names_are_classified() {
    assert_eq!(unit_name_kind("ssh.service"), Some(NameKind::Plain));
    assert_eq!(unit_name_kind("getty@.service"), Some(NameKind::Template));
    assert_eq!(
        unit_name_kind("getty@tty1.service"),
        Some(NameKind::Instance)
    );
    assert_eq!(unit_name_kind("foo.conf"), None);
    assert_eq!(unit_name_kind("@x.service"), None);
    assert_eq!(unit_name_kind("a@b@c.service"), None);
    assert_eq!(
        with_instance("getty@.service", "tty1"),
        "getty@tty1.service"
    );
    assert_eq!(
        template_of("getty@tty1.service").as_deref(),
        Some("getty@.service")
    );
}

#[test]
fn exec_start_prefixes_are_stripped() {
    assert_eq!(
        exec_program("-/usr/sbin/in.tftpd --listen").as_deref(),
        Some("in.tftpd")
    );
    assert_eq!(
        exec_program("@/usr/sbin/sshd sshd -D").as_deref(),
        Some("sshd")
    );
    assert_eq!(exec_program("!!/bin/x").as_deref(), Some("x"));
}

#[test]
fn install_sections_reset_on_empty_assignment() {
    let info = parse_unit("[Install]\nWantedBy=a.target b.target\nWantedBy=\nWantedBy=c.target\nAlias=x.service \\\n  y.service\n");
    assert_eq!(info.wanted_by, vec!["c.target"]);
    assert_eq!(info.alias, vec!["x.service", "y.service"]);
}

#[test]
fn xinetd_assignments_split() {
    assert_eq!(
        split_assignment("disabled += a b"),
        Some(("disabled", "+=", "a b"))
    );
    assert_eq!(
        split_assignment("disable = yes"),
        Some(("disable", "=", "yes"))
    );
}
