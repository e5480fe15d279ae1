//! The keywords sshd knows: canonical names and aliases, where each is allowed (outside
//! or inside Match blocks), the shape of its arguments, how repeated lines combine, and
//! the compiled-in defaults. Checking argument values is [`super::arguments`]' job.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Only outside Match blocks (sshd's `SSHCFG_GLOBAL`).
    Global,
    /// Also inside Match blocks (`SSHCFG_ALL`).
    Anywhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Merge {
    /// The first line read wins (most keywords).
    First,
    /// Each line overwrites the previous value.
    Last,
    /// Every line adds to a list.
    Accumulate,
}

/// The arguments a keyword takes, as far as they are checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `yes` or `no`, any case.
    Flag,
    /// One of these words, any case.
    Choice(&'static [&'static str]),
    /// One of these words, exact case.
    ExactChoice(&'static [&'static str]),
    /// A non-negative decimal integer.
    Int,
    /// A time: decimal numbers with optional s/m/h/d/w units.
    Time,
    /// A port number (1-65535) or service name.
    Port,
    /// From a minimum to a maximum number of tokens, not otherwise checked.
    Args(usize, usize),
    /// The rest of the line, comments included, kept as one value.
    Rest,
    /// Deprecated or unsupported: anything is accepted and nothing is set.
    Ignored,
    Match,
    Include,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Keyword {
    name: &'static str,
    pub(super) canonical: &'static str,
    pub(super) scope: Scope,
    pub(super) shape: Shape,
    pub(super) merge: Merge,
}

const G: Scope = Scope::Global;
const A: Scope = Scope::Anywhere;
const ONE: Shape = Shape::Args(1, 1);
const SOME: Shape = Shape::Args(1, usize::MAX);
const ANY: Shape = Shape::Args(0, usize::MAX);

const fn k(name: &'static str, scope: Scope, shape: Shape) -> Keyword {
    Keyword {
        name,
        canonical: name,
        scope,
        shape,
        merge: Merge::First,
    }
}

const fn alias(name: &'static str, canonical: &'static str, scope: Scope, shape: Shape) -> Keyword {
    Keyword {
        name,
        canonical,
        scope,
        shape,
        merge: Merge::First,
    }
}

const fn list(name: &'static str, scope: Scope, shape: Shape) -> Keyword {
    Keyword {
        name,
        canonical: name,
        scope,
        shape,
        merge: Merge::Accumulate,
    }
}

const fn last(name: &'static str, scope: Scope, shape: Shape) -> Keyword {
    Keyword {
        name,
        canonical: name,
        scope,
        shape,
        merge: Merge::Last,
    }
}

const ROOT_LOGIN: &[&str] = &[
    "without-password",
    "prohibit-password",
    "forced-commands-only",
    "yes",
    "no",
];
const FORWARDING: &[&str] = &["yes", "all", "no", "remote", "local"];
const LOG_LEVELS: &[&str] = &[
    "quiet", "fatal", "error", "info", "verbose", "debug", "debug1", "debug2", "debug3",
];
const FACILITIES: &[&str] = &[
    "daemon", "user", "auth", "authpriv", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Keywords OpenSSH's sshd knows (upstream up to 10.x, plus the Debian, Red Hat and
/// FreeBSD additions found in images), with the scope and argument shape of
/// servconf.c. Keywords of releases newer than the one in an image are accepted rather
/// than reported, so that an image is not failed for a configuration its own sshd reads.
const KEYWORDS: &[Keyword] = &[
    k("UsePAM", G, Shape::Flag),
    k("PAMAuthenticationViaKbdInt", G, Shape::Ignored),
    list("Port", G, Shape::Port),
    list("HostKey", G, ONE),
    Keyword {
        merge: Merge::Accumulate,
        ..alias("HostDSAKey", "HostKey", G, ONE)
    },
    k("HostKeyAgent", G, ONE),
    k("PidFile", G, ONE),
    k("ModuliFile", G, ONE),
    k("ServerKeyBits", G, Shape::Ignored),
    k("LoginGraceTime", G, Shape::Time),
    k("KeyRegenerationInterval", G, Shape::Ignored),
    k("PermitRootLogin", A, Shape::Choice(ROOT_LOGIN)),
    k("SyslogFacility", G, Shape::Choice(FACILITIES)),
    k("LogLevel", A, Shape::Choice(LOG_LEVELS)),
    k("LogVerbose", A, ANY),
    k("RhostsAuthentication", G, Shape::Ignored),
    k("RhostsRSAAuthentication", A, Shape::Ignored),
    k("HostbasedAuthentication", A, Shape::Flag),
    k("HostbasedUsesNameFromPacketOnly", A, Shape::Flag),
    k("HostbasedAcceptedAlgorithms", A, ONE),
    alias(
        "HostbasedAcceptedKeyTypes",
        "HostbasedAcceptedAlgorithms",
        A,
        ONE,
    ),
    k("HostKeyAlgorithms", G, ONE),
    k("RSAAuthentication", A, Shape::Ignored),
    k("PubkeyAuthentication", A, Shape::Flag),
    k("PubkeyAcceptedAlgorithms", A, ONE),
    alias("PubkeyAcceptedKeyTypes", "PubkeyAcceptedAlgorithms", A, ONE),
    k("PubkeyAuthOptions", A, ANY),
    // An alias that, unlike its target, is not allowed inside Match blocks.
    alias("DSAAuthentication", "PubkeyAuthentication", G, Shape::Flag),
    k("KerberosAuthentication", A, Shape::Flag),
    k("KerberosOrLocalPasswd", G, Shape::Flag),
    k("KerberosTicketCleanup", G, Shape::Flag),
    k("KerberosGetAFSToken", G, Shape::Ignored),
    k("KerberosTgtPassing", G, Shape::Ignored),
    k("AFSTokenPassing", G, Shape::Ignored),
    k("GSSAPIAuthentication", A, Shape::Flag),
    k("GSSAPICleanupCredentials", G, Shape::Flag),
    k("GSSAPIStrictAcceptorCheck", G, Shape::Flag),
    k("PasswordAuthentication", A, Shape::Flag),
    k("KbdInteractiveAuthentication", A, Shape::Flag),
    // Since OpenSSH 8.7 an alias; before, a separate switch with the same effect on PAM.
    alias(
        "ChallengeResponseAuthentication",
        "KbdInteractiveAuthentication",
        A,
        Shape::Flag,
    ),
    alias(
        "SkeyAuthentication",
        "KbdInteractiveAuthentication",
        A,
        Shape::Flag,
    ),
    k("CheckMail", G, Shape::Ignored),
    list("ListenAddress", G, Shape::Args(1, 3)),
    k("AddressFamily", G, Shape::Choice(&["inet", "inet6", "any"])),
    k("PrintMotd", G, Shape::Flag),
    k("PrintLastLog", G, Shape::Flag),
    k(
        "IgnoreRhosts",
        A,
        Shape::Choice(&["yes", "no", "shosts-only"]),
    ),
    k("IgnoreUserKnownHosts", G, Shape::Flag),
    k("X11Forwarding", A, Shape::Flag),
    k("X11DisplayOffset", A, Shape::Int),
    k("X11UseLocalhost", A, Shape::Flag),
    k("XAuthLocation", G, ONE),
    k("StrictModes", G, Shape::Flag),
    k("PermitEmptyPasswords", A, Shape::Flag),
    k("PermitUserEnvironment", G, ONE),
    k("UseLogin", G, Shape::Ignored),
    k("Compression", G, Shape::Choice(&["yes", "delayed", "no"])),
    k("RekeyLimit", A, Shape::Args(1, 2)),
    k("TCPKeepAlive", G, Shape::Flag),
    alias("KeepAlive", "TCPKeepAlive", G, Shape::Flag),
    k("AllowTcpForwarding", A, Shape::Choice(FORWARDING)),
    k("AllowAgentForwarding", A, Shape::Flag),
    list("AllowUsers", A, ANY),
    list("DenyUsers", A, ANY),
    list("AllowGroups", A, ANY),
    list("DenyGroups", A, ANY),
    k("Ciphers", G, ONE),
    k("MACs", G, ONE),
    k("Protocol", G, Shape::Ignored),
    k(
        "GatewayPorts",
        A,
        Shape::Choice(&["clientspecified", "yes", "no"]),
    ),
    list("Subsystem", G, Shape::Args(2, usize::MAX)),
    last("MaxStartups", G, ONE),
    last("PerSourceMaxStartups", G, ONE),
    last("PerSourceNetBlockSize", G, ONE),
    k("MaxAuthTries", A, Shape::Int),
    k("MaxSessions", A, Shape::Int),
    k("Banner", A, ONE),
    k("UseDNS", G, Shape::Flag),
    k("VerifyReverseMapping", G, Shape::Ignored),
    k("ReverseMappingCheck", G, Shape::Ignored),
    k("ClientAliveInterval", A, Shape::Time),
    k("ClientAliveCountMax", A, Shape::Int),
    k("AuthorizedKeysFile", A, SOME),
    k("AuthorizedKeysFile2", A, Shape::Ignored),
    k("UsePrivilegeSeparation", G, Shape::Ignored),
    list("AcceptEnv", A, ANY),
    k("SetEnv", A, ANY),
    k(
        "PermitTunnel",
        A,
        Shape::ExactChoice(&["no", "point-to-point", "ethernet", "yes"]),
    ),
    k("PermitTTY", A, Shape::Flag),
    k("PermitUserRC", A, Shape::Flag),
    k("Match", A, Shape::Match),
    k("PermitOpen", A, SOME),
    k("PermitListen", A, SOME),
    k("ForceCommand", A, Shape::Rest),
    k("ChrootDirectory", A, ONE),
    list("HostCertificate", G, ONE),
    k("RevokedKeys", A, ONE),
    k("TrustedUserCAKeys", A, ONE),
    k("AuthorizedPrincipalsFile", A, ONE),
    k("KexAlgorithms", G, ONE),
    k("Include", A, Shape::Include),
    last("IPQoS", A, Shape::Args(1, 2)),
    k("AuthorizedKeysCommand", A, Shape::Rest),
    k("AuthorizedKeysCommandUser", A, ONE),
    k("AuthorizedPrincipalsCommand", A, Shape::Rest),
    k("AuthorizedPrincipalsCommandUser", A, ONE),
    k("VersionAddendum", G, Shape::Rest),
    k("AuthenticationMethods", A, SOME),
    last("StreamLocalBindMask", A, ONE),
    k("StreamLocalBindUnlink", A, Shape::Flag),
    k("AllowStreamLocalForwarding", A, Shape::Choice(FORWARDING)),
    last("FingerprintHash", G, ONE),
    k("DisableForwarding", A, Shape::Flag),
    k("ExposeAuthInfo", A, Shape::Flag),
    k("RDomain", A, ONE),
    k("CASignatureAlgorithms", A, ONE),
    k("SecurityKeyProvider", G, ONE),
    k("RequiredRSASize", A, Shape::Int),
    k("ChannelTimeout", A, SOME),
    k("UnusedConnectionTimeout", A, ONE),
    // OpenSSH 9.8 and later.
    k("PerSourcePenalties", G, ANY),
    k("PerSourcePenaltyExemptList", G, ANY),
    k("SshdSessionPath", G, ONE),
    k("SshdAuthPath", G, ONE),
    k("RefuseConnection", A, Shape::Flag),
    k("PAMServiceName", A, ONE),
    // Debian and Ubuntu.
    k("DebianBanner", G, Shape::Flag),
    // The GSSAPI key exchange patch (Debian, Ubuntu, Fedora, RHEL).
    k("GSSAPIKeyExchange", G, Shape::Flag),
    k("GSSAPIStoreCredentialsOnRekey", G, Shape::Flag),
    k("GSSAPIKexAlgorithms", G, ONE),
    // Fedora and RHEL.
    k("GSSAPIEnablek5users", A, Shape::Flag),
    k("KerberosUseKuserok", A, Shape::Flag),
    k("GSSAPIIndicators", A, ANY),
    // FreeBSD.
    k("UseBlacklist", G, Shape::Flag),
    alias("UseBlocklist", "UseBlacklist", G, Shape::Flag),
];

/// Compiled-in defaults of upstream OpenSSH (what `sshd -T` prints for an empty file),
/// for keywords whose default does not depend on the build or the release.
pub(super) const DEFAULTS: &[(&str, &str)] = &[
    ("addressfamily", "any"),
    ("allowagentforwarding", "yes"),
    ("allowstreamlocalforwarding", "yes"),
    ("allowtcpforwarding", "yes"),
    ("authenticationmethods", "any"),
    ("authorizedkeyscommand", "none"),
    ("authorizedkeyscommanduser", "none"),
    (
        "authorizedkeysfile",
        ".ssh/authorized_keys .ssh/authorized_keys2",
    ),
    ("authorizedprincipalscommand", "none"),
    ("authorizedprincipalscommanduser", "none"),
    ("authorizedprincipalsfile", "none"),
    ("banner", "none"),
    ("chrootdirectory", "none"),
    ("clientalivecountmax", "3"),
    ("clientaliveinterval", "0"),
    ("compression", "yes"),
    ("disableforwarding", "no"),
    ("exposeauthinfo", "no"),
    ("fingerprinthash", "SHA256"),
    ("forcecommand", "none"),
    ("gatewayports", "no"),
    ("gssapiauthentication", "no"),
    ("hostbasedauthentication", "no"),
    ("hostbasedusesnamefrompacketonly", "no"),
    ("ignorerhosts", "yes"),
    ("ignoreuserknownhosts", "no"),
    ("kbdinteractiveauthentication", "yes"),
    ("kerberosauthentication", "no"),
    ("logingracetime", "120"),
    ("loglevel", "INFO"),
    ("maxauthtries", "6"),
    ("maxsessions", "10"),
    ("maxstartups", "10:30:100"),
    ("passwordauthentication", "yes"),
    ("permitemptypasswords", "no"),
    ("permitlisten", "any"),
    ("permitopen", "any"),
    ("permitrootlogin", "prohibit-password"),
    ("permittty", "yes"),
    ("permittunnel", "no"),
    ("permituserenvironment", "no"),
    ("permituserrc", "yes"),
    ("port", "22"),
    ("printlastlog", "yes"),
    ("printmotd", "yes"),
    ("pubkeyauthentication", "yes"),
    ("revokedkeys", "none"),
    ("streamlocalbindunlink", "no"),
    ("strictmodes", "yes"),
    ("syslogfacility", "AUTH"),
    ("tcpkeepalive", "yes"),
    ("trustedusercakeys", "none"),
    ("usedns", "no"),
    ("usepam", "no"),
    ("x11displayoffset", "10"),
    ("x11forwarding", "no"),
    ("x11uselocalhost", "yes"),
];

pub(super) fn lookup(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The canonical name of a keyword sshd knows, as sshd_config(5) spells it, aliases
/// resolved (`challengeresponseauthentication` → `KbdInteractiveAuthentication`); `None`
/// for a keyword sshd would reject. [`Setting::keyword`] is this name in lower case.
pub fn canonical_keyword(name: &str) -> Option<&'static str> {
    lookup(name).map(|k| k.canonical)
}
