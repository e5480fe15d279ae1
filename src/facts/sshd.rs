//! OpenSSH sshd's effective configuration, computed from the guest's files the way sshd
//! itself computes it (what `sshd -T` prints): which file is read, how lines are split into
//! tokens, `Include` globs, `Match` blocks, first-value-wins, aliases and compiled-in
//! defaults. It records what the files say and what sshd would reject; it neither judges
//! values (rules do) nor matches `Match` criteria against a connection (callers decide
//! which blocks apply, see [`SshdConfig::effective_for`]).
//!
//! sshd reads its configuration twice: once at startup with no connection, when only lines
//! outside `Match` blocks (and inside `Match all`) count, and again for each connection,
//! when only the `Match` blocks that apply count and override the startup values. Both
//! passes are modelled here, including the second pass's re-reading of `Include`s from
//! sshd's include cache, which can recurse where the first pass did not.
//!
//! Not modelled: values of keywords whose arguments need sshd's tables (cipher and key
//! algorithm names, listen addresses, `AuthenticationMethods` lists) are recorded as
//! written without checking them; `~` in `AuthorizedKeysFile` is not expanded.

use super::{child_path, FactError, GuestFiles, Origin, MAX_CONFIG_BYTES};
use std::collections::HashMap;
use std::rc::Rc;

/// The configuration file sshd reads.
pub const MAIN_CONFIG: &str = "/etc/ssh/sshd_config";
/// SUSE's vendor file, which SUSE's sshd reads when [`MAIN_CONFIG`] does not exist.
pub const VENDOR_CONFIG: &str = "/usr/etc/ssh/sshd_config";
/// Where relative `Include` paths are resolved (sshd's compiled-in `SSHDIR`).
pub const SSH_DIR: &str = "/etc/ssh";
/// Where distributions install the sshd binary.
pub const SSHD_BINARIES: [&str; 4] = [
    "/usr/sbin/sshd",
    "/usr/bin/sshd",
    "/sbin/sshd",
    "/usr/local/sbin/sshd",
];

/// sshd's own limit on nested includes (`SERVCONF_MAX_DEPTH`); beyond it sshd exits.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Files parsed per pass, counting a file again each time it is included. Real systems
/// use a handful; the bound stops include fan-out from growing exponentially.
const MAX_FILE_PARSES: usize = 2048;
/// Configuration lines processed per pass.
const MAX_LINES: usize = 1_000_000;
/// Match blocks recorded.
const MAX_MATCH_BLOCKS: usize = 10_000;
/// Bytes of distinct configuration files read.
const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// Directories listed while expanding `Include` globs.
const MAX_GLOB_DIRS: usize = 1024;
/// Paths one `Include` glob may expand to.
const MAX_GLOB_MATCHES: usize = 4096;

/// Whether an sshd binary is present (any kind of node counts, a dangling symlink too).
pub fn sshd_installed(files: &dyn GuestFiles) -> Result<bool, FactError> {
    for path in SSHD_BINARIES {
        if files.kind(path)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// sshd's configuration, or `None` when no sshd binary is installed.
pub fn read(files: &dyn GuestFiles) -> Result<Option<SshdConfig>, FactError> {
    if !sshd_installed(files)? {
        return Ok(None);
    }
    read_config(files).map(Some)
}

/// Reads and interprets the configuration files whether or not sshd is installed.
///
/// A file that cannot be read (I/O error, larger than [`MAX_CONFIG_BYTES`]) or a
/// configuration past this module's resource bounds is an error: the result would be a
/// guess. Anything sshd itself would reject is recorded in [`SshdConfig::problems`].
pub fn read_config(files: &dyn GuestFiles) -> Result<SshdConfig, FactError> {
    let main = if files.kind(MAIN_CONFIG)?.is_some() {
        Some(MAIN_CONFIG)
    } else if files.kind(VENDOR_CONFIG)?.is_some() {
        Some(VENDOR_CONFIG)
    } else {
        None
    };
    let mut parser = Parser {
        files,
        opened: HashMap::new(),
        include_cache: Vec::new(),
        startup: true,
        stopped: false,
        file_parses: 0,
        lines: 0,
        bytes: 0,
        glob_dirs: 0,
        config: SshdConfig {
            main_file: main.map(str::to_string),
            files: Vec::new(),
            match_blocks: Vec::new(),
            occurrences: Vec::new(),
            problems: Vec::new(),
        },
    };
    if let Some(main) = main {
        let origin = Origin {
            path: main.to_string(),
            line: 0,
        };
        parser.walk(main, 0, None, &origin)?;
        // The per-connection pass: sshd -T and every connection re-read the configuration
        // with the include cache the startup pass left behind.
        if !parser.stopped {
            parser.startup = false;
            parser.file_parses = 0;
            parser.lines = 0;
            parser.walk(main, 0, None, &origin)?;
        }
    }
    Ok(parser.config)
}

/// What the configuration files say, as sshd reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdConfig {
    /// The file sshd starts from: [`MAIN_CONFIG`], else [`VENDOR_CONFIG`]; `None` when
    /// neither exists (then every keyword has its compiled-in default; note that sshd
    /// builds other than SUSE's refuse to start without a configuration file).
    pub main_file: Option<String>,
    /// Every configuration file read, in the order first read.
    pub files: Vec<String>,
    /// Every `Match` block, in parse order (indices are [`Setting::match_block`]).
    pub match_blocks: Vec<MatchBlock>,
    /// Every setting in every file, inside Match blocks or not, in the order sshd reads
    /// them; a file included twice contributes its lines twice. `Include` and `Match`
    /// lines and lines with problems are not settings.
    pub occurrences: Vec<Setting>,
    /// What sshd would reject, at the line concerned (line 0: the file as a whole). When
    /// not empty, sshd refuses to start with this configuration (or, for a problem found
    /// in the per-connection pass, fails every connection).
    pub problems: Vec<(Origin, String)>,
}

/// One keyword line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The canonical keyword, lower case, aliases resolved
    /// (`challengeresponseauthentication` → `kbdinteractiveauthentication`).
    pub keyword: String,
    /// The keyword as written.
    pub written_keyword: String,
    /// The arguments as written (quotes kept, a trailing comment dropped).
    pub value: String,
    /// The arguments as sshd splits them (quotes removed).
    pub tokens: Vec<String>,
    /// The tokens joined by one space, lower case, synonyms resolved (`PermitRootLogin
    /// without-password` → `prohibit-password`).
    pub normalised: String,
    pub origin: Origin,
    /// The Match block the line belongs to (index into [`SshdConfig::match_blocks`]).
    pub match_block: Option<usize>,
}

/// A `Match` block: the lines after a `Match` line up to the next one or the end of the
/// file it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchBlock {
    /// The criteria as written after `Match` (a trailing comment dropped).
    pub criteria: String,
    /// The criteria as sshd parses them: attribute (lower case) and pattern list; `all`
    /// has an empty pattern. Empty when the line is malformed (see `problems`).
    pub conditions: Vec<(String, String)>,
    /// The `Match` line.
    pub origin: Origin,
    /// The block that was open where the file holding this one was included: this block
    /// applies only when its parent applies too.
    pub parent: Option<usize>,
    /// The block's settings, in order.
    pub settings: Vec<Setting>,
}

impl MatchBlock {
    /// `Match all`: applies to every connection.
    pub fn is_all(&self) -> bool {
        matches!(self.conditions.as_slice(), [(attribute, _)] if attribute == "all")
    }
}

/// A keyword's effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The keyword as sshd_config(5) spells it, aliases resolved (`PasswordAuthentication`);
    /// for a keyword sshd does not know, as asked.
    pub keyword: String,
    /// As written (for a compiled-in default, as sshd_config(5) spells it).
    pub value: String,
    pub tokens: Vec<String>,
    /// As in [`Setting::normalised`].
    pub normalised: String,
    /// The line that set it (for keywords that accumulate, the first of them); `None` for
    /// the compiled-in default.
    pub origin: Option<Origin>,
}

impl SshdConfig {
    /// The value sshd uses for a connection that matches no `Match` block but `Match
    /// all` ones — exactly what `sshd -T` prints. `keyword` is case-insensitive and may be
    /// an alias. The value is empty (and `origin` `None`) for a keyword sshd does not know
    /// or ignores (check with [`canonical_keyword`]) and for one that is unset and whose
    /// compiled-in default depends on the build (algorithm lists, paths).
    pub fn effective(&self, keyword: &str) -> Effective {
        self.effective_for(keyword, &|_| false)
    }

    /// The value for a connection to which exactly the blocks `applies` accepts apply
    /// (`Match all` blocks always do; a block whose parent does not apply never does).
    /// Values from applying blocks override the startup value, first one winning, for
    /// keywords allowed in Match blocks.
    pub fn effective_for(&self, keyword: &str, applies: &dyn Fn(&MatchBlock) -> bool) -> Effective {
        let unset = |name: &str| Effective {
            keyword: name.to_string(),
            value: String::new(),
            tokens: Vec::new(),
            normalised: String::new(),
            origin: None,
        };
        let Some(spec) = lookup(keyword) else {
            return unset(keyword);
        };
        if matches!(spec.shape, Shape::Ignored | Shape::Match | Shape::Include) {
            return unset(spec.canonical);
        }
        let canonical = spec.canonical.to_ascii_lowercase();
        if spec.scope == Scope::Anywhere {
            let in_blocks = self.occurrences.iter().filter(|s| {
                s.keyword == canonical
                    && s.match_block
                        .is_some_and(|b| self.chain_applies(b, applies))
            });
            if let Some(found) = merge(spec, in_blocks) {
                return found;
            }
        }
        let startup = self.occurrences.iter().filter(|s| {
            s.keyword == canonical
                && s.match_block
                    .is_none_or(|b| self.chain_applies(b, &|_| false))
        });
        merge(spec, startup)
            .or_else(|| compiled_default(spec))
            .unwrap_or_else(|| unset(spec.canonical))
    }

    /// `AuthorizedKeysFile`'s paths (from [`Self::effective`]), `%h`/`%u` tokens unexpanded.
    pub fn authorized_keys_files(&self) -> Vec<String> {
        self.effective("AuthorizedKeysFile").tokens
    }

    /// Whether block `index` and every block it is nested in apply.
    fn chain_applies(&self, index: usize, applies: &dyn Fn(&MatchBlock) -> bool) -> bool {
        let mut next = Some(index);
        // Parents always precede their children, so the walk ends; the bound is belt and
        // braces against a malformed value built by hand.
        for _ in 0..=self.match_blocks.len() {
            let Some(i) = next else {
                return true;
            };
            let Some(block) = self.match_blocks.get(i) else {
                return false;
            };
            if !block.is_all() && !applies(block) {
                return false;
            }
            next = block.parent.filter(|p| *p < i);
        }
        false
    }
}

fn merge<'a>(spec: &Keyword, mut settings: impl Iterator<Item = &'a Setting>) -> Option<Effective> {
    let from = |s: &Setting| Effective {
        keyword: spec.canonical.to_string(),
        value: s.value.clone(),
        tokens: s.tokens.clone(),
        normalised: s.normalised.clone(),
        origin: Some(s.origin.clone()),
    };
    match spec.merge {
        Merge::First => settings.next().map(from),
        Merge::Last => settings.last().map(from),
        Merge::Accumulate => {
            let first = settings.next()?;
            let mut all = from(first);
            for s in settings {
                all.value.push(' ');
                all.value.push_str(&s.value);
                all.normalised.push(' ');
                all.normalised.push_str(&s.normalised);
                all.tokens.extend(s.tokens.iter().cloned());
            }
            Some(all)
        }
    }
}

fn compiled_default(spec: &Keyword) -> Option<Effective> {
    let (_, value) = DEFAULTS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(spec.canonical))?;
    let tokens: Vec<String> = value.split(' ').map(str::to_string).collect();
    Some(Effective {
        keyword: spec.canonical.to_string(),
        value: (*value).to_string(),
        normalised: normalise(spec.canonical, &tokens),
        tokens,
        origin: None,
    })
}

fn normalise(canonical: &str, tokens: &[String]) -> String {
    let joined = tokens.join(" ").to_ascii_lowercase();
    if canonical.eq_ignore_ascii_case("permitrootlogin") && joined == "without-password" {
        "prohibit-password".to_string()
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------------------
// Keywords

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Only outside Match blocks (sshd's `SSHCFG_GLOBAL`).
    Global,
    /// Also inside Match blocks (`SSHCFG_ALL`).
    Anywhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// The first line read wins (most keywords).
    First,
    /// Each line overwrites the previous value.
    Last,
    /// Every line adds to a list.
    Accumulate,
}

/// The arguments a keyword takes, as far as they are checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
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
struct Keyword {
    name: &'static str,
    canonical: &'static str,
    scope: Scope,
    shape: Shape,
    merge: Merge,
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
const DEFAULTS: &[(&str, &str)] = &[
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

fn lookup(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The canonical name of a keyword sshd knows, as sshd_config(5) spells it, aliases
/// resolved (`challengeresponseauthentication` → `KbdInteractiveAuthentication`); `None`
/// for a keyword sshd would reject. [`Setting::keyword`] is this name in lower case.
pub fn canonical_keyword(name: &str) -> Option<&'static str> {
    lookup(name).map(|k| k.canonical)
}

/// Checks a keyword's arguments as sshd does; the message says what sshd objects to.
fn check_arguments(spec: &Keyword, tokens: &[Token]) -> Result<(), String> {
    let (min, max) = match spec.shape {
        Shape::Flag
        | Shape::Choice(_)
        | Shape::ExactChoice(_)
        | Shape::Int
        | Shape::Time
        | Shape::Port => (1, 1),
        Shape::Args(min, max) => (min, max),
        Shape::Rest | Shape::Ignored | Shape::Match | Shape::Include => return Ok(()),
    };
    if tokens.len() < min || tokens.first().is_some_and(|t| t.text.is_empty()) {
        return Err("missing argument".to_string());
    }
    if tokens.len() > max {
        return Err("extra arguments at end of line".to_string());
    }
    if spec.canonical == "AuthorizedKeysFile" && tokens.iter().any(|t| t.text.is_empty()) {
        return Err("empty argument".to_string());
    }
    let Some(first) = tokens.first().map(|t| t.text.as_str()) else {
        return Ok(());
    };
    let valid = match spec.shape {
        Shape::Flag => ["yes", "no"].iter().any(|w| w.eq_ignore_ascii_case(first)),
        Shape::Choice(words) => words.iter().any(|w| w.eq_ignore_ascii_case(first)),
        Shape::ExactChoice(words) => words.contains(&first),
        Shape::Int => parse_int(first).is_some(),
        Shape::Time => parse_time(first).is_some(),
        Shape::Port => valid_port(first, false),
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(format!("unsupported value \"{first}\""))
    }
}

/// sshd's `atoi_err`: a decimal integer from 0 to `INT_MAX`.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<i64>()
        .ok()
        .filter(|v| *v <= i64::from(i32::MAX))
}

/// sshd's `convtime`: e.g. `90`, `5m`, `1h30m`; at most `INT_MAX` seconds.
fn parse_time(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let unsigned = rest.strip_prefix('+').unwrap_or(rest);
        let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, after) = unsigned.split_at(digits);
        let value: i64 = number.parse().ok()?;
        let mut chars = after.chars();
        let multiplier = match chars.next() {
            None => 1,
            Some('s' | 'S') => 1,
            Some('m' | 'M') => 60,
            Some('h' | 'H') => 3600,
            Some('d' | 'D') => 86_400,
            Some('w' | 'W') => 604_800,
            Some(_) => return None,
        };
        total = total.checked_add(value.checked_mul(multiplier)?)?;
        if total > i64::from(i32::MAX) {
            return None;
        }
        rest = chars.as_str();
    }
    Some(total)
}

/// sshd's `a2port`: a number up to 65535 or a service name (which only the guest's
/// /etc/services could confirm, so any name is accepted).
fn valid_port(s: &str, zero_allowed: bool) -> bool {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u32>()
            .is_ok_and(|p| p <= 65_535 && (zero_allowed || p > 0));
    }
    !s.is_empty()
}

// ---------------------------------------------------------------------------------------
// Lines and tokens, exactly as sshd splits them

/// One argument, as `argv_split` returns it, with the offset just past it in the text.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    end: usize,
}

/// A configuration line that is not blank or a comment.
#[derive(Debug)]
enum Line {
    /// A line sshd rejects before looking at its keyword.
    Broken { line: usize, message: String },
    Directive {
        line: usize,
        keyword: String,
        /// The text after the keyword and its separator.
        rest: Vec<u8>,
        tokens: Vec<Token>,
    },
}

const WHITESPACE: &[u8] = b" \t\r\n";

fn span(s: &[u8], set: &[u8]) -> usize {
    s.iter().take_while(|b| set.contains(b)).count()
}

/// sshd's `strdelim`: the next word of `s`, split at whitespace or one `=`, with one pair
/// of double quotes allowed; also the offset of what follows (`None` when nothing does).
/// Returns `None` where sshd gets NULL (an opening quote without a closing one).
fn strdelim(s: &[u8]) -> Option<(Vec<u8>, Option<usize>)> {
    let Some(i) = s
        .iter()
        .position(|b| WHITESPACE.contains(b) || *b == b'"' || *b == b'=')
    else {
        return Some((s.to_vec(), None));
    };
    let head = s.get(..i).unwrap_or_default();
    let after = s.get(i + 1..).unwrap_or_default();
    if s.get(i) == Some(&b'"') {
        let close = after.iter().position(|b| *b == b'"')?;
        let mut word = head.to_vec();
        word.extend_from_slice(after.get(..close).unwrap_or_default());
        let mut next = i + close + 2;
        next += span(s.get(next..).unwrap_or_default(), WHITESPACE);
        return Some((word, Some(next)));
    }
    let equals = s.get(i) == Some(&b'=');
    let mut next = i + 1 + span(after, WHITESPACE);
    if !equals && s.get(next) == Some(&b'=') {
        next += 1;
        next += span(s.get(next..).unwrap_or_default(), WHITESPACE);
    }
    Some((head.to_vec(), Some(next)))
}

/// sshd's `argv_split` with comments ending the line: words split at spaces and tabs,
/// single or double quotes, backslash escapes; a word starting with `#` ends the line.
/// `None` for an unterminated quote.
fn argv_split(s: &[u8]) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b' ' || c == b'\t' {
            i += 1;
            continue;
        }
        if c == b'#' {
            break;
        }
        let mut word = Vec::new();
        let mut quote = 0u8;
        while let Some(&c) = s.get(i) {
            if c == b'\\' {
                let next = s.get(i + 1).copied();
                match next {
                    Some(n)
                        if n == b'\'' || n == b'"' || n == b'\\' || (quote == 0 && n == b' ') =>
                    {
                        word.push(n);
                        i += 1;
                    }
                    _ => word.push(c),
                }
            } else if quote == 0 && (c == b' ' || c == b'\t') {
                break;
            } else if quote == 0 && (c == b'"' || c == b'\'') {
                quote = c;
            } else if quote != 0 && c == quote {
                quote = 0;
            } else {
                word.push(c);
            }
            i += 1;
        }
        if quote != 0 {
            return None;
        }
        tokens.push(Token {
            text: String::from_utf8_lossy(&word).into_owned(),
            end: i,
        });
    }
    Some(tokens)
}

/// Splits a file into lines the way sshd's `load_server_config` and parser do: each line
/// is cut at a NUL byte (which also swallows its newline, joining it to the next line) and
/// loses leading spaces, tabs and carriage returns; trailing whitespace and form feeds go.
fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_start = 1;
    let mut number = 0;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        number += 1;
        if pending.is_empty() {
            pending_start = number;
        }
        let kept = raw.split(|b| *b == 0).next().unwrap_or_default();
        let stripped = kept.get(span(kept, b" \t\r")..).unwrap_or_default();
        pending.extend_from_slice(stripped);
        if pending.last() == Some(&b'\n') {
            pending.pop();
            if let Some(line) = parse_line(&pending, pending_start) {
                lines.push(line);
            }
            pending.clear();
        }
    }
    if let Some(line) = parse_line(&pending, pending_start) {
        lines.push(line);
    }
    lines
}

fn parse_line(text: &[u8], number: usize) -> Option<Line> {
    // sshd strips trailing whitespace but never the first character.
    let mut len = text.len();
    while len > 1
        && text
            .get(len - 1)
            .is_some_and(|b| b" \t\r\n\x0c".contains(b))
    {
        len -= 1;
    }
    let text = text.get(..len)?;
    if text.is_empty() {
        return None;
    }
    let (mut keyword, mut rest_at) = strdelim(text)?;
    let mut base = 0;
    if keyword.is_empty() {
        let from = rest_at?;
        let (again, next) = strdelim(text.get(from..)?)?;
        keyword = again;
        rest_at = next;
        base = from;
    }
    if keyword.is_empty() || keyword.first() == Some(&b'#') {
        return None;
    }
    let keyword = String::from_utf8_lossy(&keyword).into_owned();
    let rest = rest_at
        .and_then(|r| text.get(base + r..))
        .unwrap_or_default();
    if rest.is_empty() {
        return Some(Line::Broken {
            line: number,
            message: format!("no argument after keyword \"{keyword}\""),
        });
    }
    let Some(tokens) = argv_split(rest) else {
        return Some(Line::Broken {
            line: number,
            message: format!("{keyword}: invalid quotes"),
        });
    };
    Some(Line::Directive {
        line: number,
        keyword,
        rest: rest.to_vec(),
        tokens,
    })
}

/// A `Match` line's criteria as sshd's `match_cfg_line` checks them when no connection
/// is given. Returns the conditions and the criteria text without a trailing comment.
fn parse_match(rest: &[u8], token_count: usize) -> Result<(Vec<(String, String)>, String), String> {
    let mut conditions = Vec::new();
    let mut cursor = Some(0usize);
    let mut text_end = rest.len();
    let next_word = |cursor: &mut Option<usize>| -> Option<(Vec<u8>, usize)> {
        let at = (*cursor)?;
        let (word, next) = strdelim(rest.get(at..)?)?;
        *cursor = next.map(|n| at + n);
        Some((word, at))
    };
    while let Some((attribute, at)) = next_word(&mut cursor) {
        if attribute.is_empty() {
            break;
        }
        if attribute.first() == Some(&b'#') {
            text_end = at;
            cursor = None;
            break;
        }
        let attribute = String::from_utf8_lossy(&attribute).to_ascii_lowercase();
        if attribute == "all" {
            if !conditions.is_empty() {
                return Err("'all' cannot be combined with other Match attributes".into());
            }
            match next_word(&mut cursor) {
                Some((arg, at)) if arg.first() == Some(&b'#') => {
                    text_end = at;
                    cursor = None;
                }
                Some((arg, _)) if !arg.is_empty() => {
                    return Err("'all' cannot be combined with other Match attributes".into());
                }
                _ => {}
            }
            conditions.push((attribute, String::new()));
            break;
        }
        let pattern = match next_word(&mut cursor) {
            Some((arg, _)) if !arg.is_empty() && arg.first() != Some(&b'#') => {
                String::from_utf8_lossy(&arg).into_owned()
            }
            _ => return Err(format!("missing Match criteria for {attribute}")),
        };
        match attribute.as_str() {
            "user" | "group" | "host" | "rdomain" => {}
            // Later releases' criteria, accepted rather than reported.
            "invalid-user" | "version" | "sessiontype" | "command" => {}
            "address" | "localaddress" => {
                if !valid_address_list(&pattern) {
                    return Err(format!("invalid Match {attribute} argument '{pattern}'"));
                }
            }
            "localport" => {
                if !valid_port(&pattern, true) {
                    return Err(format!("invalid LocalPort '{pattern}' on Match line"));
                }
            }
            _ => return Err(format!("unsupported Match attribute {attribute}")),
        }
        conditions.push((attribute, pattern));
    }
    if conditions.is_empty() {
        return Err("one or more attributes required for Match".into());
    }
    let leftover = cursor.and_then(|c| rest.get(c..)).unwrap_or_default();
    if !leftover.is_empty() && token_count > 0 {
        return Err("Match: extra arguments at end of line".into());
    }
    let text = String::from_utf8_lossy(rest.get(..text_end).unwrap_or_default());
    Ok((conditions, text.trim_end().to_string()))
}

/// sshd's `addr_match_list` with no address: rejects empty entries and CIDR entries whose
/// prefix length is out of range or leaves host bits set; anything else is a wildcard
/// pattern.
fn valid_address_list(list: &str) -> bool {
    list.split(',').all(|entry| {
        let entry = entry.strip_prefix('!').unwrap_or(entry);
        !entry.is_empty() && cidr_consistent(entry)
    })
}

fn cidr_consistent(entry: &str) -> bool {
    if entry.len() >= 64 {
        return true;
    }
    let (address, length) = match entry.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (entry, None),
    };
    let length = match length {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => match l.parse::<u32>()
        {
            Ok(n) if n <= 128 => Some(n),
            _ => return true,
        },
        Some(_) => return true,
        None => None,
    };
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return true;
    };
    let (bits, width) = match ip {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
        std::net::IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let length = length.unwrap_or(width);
    if length > width {
        return false;
    }
    let host_mask = u128::MAX.checked_shr(length).unwrap_or(0);
    bits & host_mask == 0
}

// ---------------------------------------------------------------------------------------
// Include globs

/// Whether a path component needs matching (an unescaped `*`, `?`, or `[` with a `]`
/// after it), as glibc's glob decides.
fn has_magic(component: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = component.get(i) {
        match c {
            b'\\' => i += 1,
            b'*' | b'?' => return true,
            b'[' if component.get(i + 1..).is_some_and(|r| r.contains(&b']')) => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn unescape(component: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(component.len());
    let mut escaped = false;
    for &c in component {
        if c == b'\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

/// fnmatch(3) as glob(3) uses it: `*`, `?`, bracket expressions, backslash escapes, and a
/// leading `.` in a name matched only by a literal `.`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') && !pattern.starts_with(b"\\.")
    {
        return false;
    }
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if pattern.get(p) == Some(&b'*') {
            p += 1;
            backtrack = Some((p, n));
            continue;
        }
        if let Some(&c) = name.get(n) {
            if let Some((matched, width)) = match_one(pattern, p, c) {
                if matched {
                    p += width;
                    n += 1;
                    continue;
                }
            }
        } else if p >= pattern.len() {
            return true;
        }
        match backtrack {
            Some((star_p, star_n)) if star_n < name.len() => {
                backtrack = Some((star_p, star_n + 1));
                p = star_p;
                n = star_n + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one name byte against the pattern element at `p`: whether it matched and the
/// element's width; `None` at the end of the pattern.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let first = *pattern.get(p)?;
    match first {
        b'?' => Some((true, 1)),
        b'\\' => match pattern.get(p + 1) {
            Some(&escaped) => Some((escaped == c, 2)),
            None => Some((c == b'\\', 1)),
        },
        b'[' => match match_bracket(pattern, p, c) {
            Some(result) => Some(result),
            None => Some((c == b'[', 1)),
        },
        literal => Some((literal == c, 1)),
    }
}

/// A bracket expression at `p`; `None` when it is not terminated (then `[` is literal).
fn match_bracket(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = p + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let b = *pattern.get(i)?;
        if b == b']' && !first {
            return Some((matched != negate, i + 1 - p));
        }
        first = false;
        if b == b'[' && pattern.get(i + 1) == Some(&b':') {
            let body = pattern.get(i + 2..)?;
            let close = body.windows(2).position(|w| w == b":]")?;
            let class = body.get(..close)?;
            matched |= in_class(class, c);
            i += close + 4;
            continue;
        }
        let (low, width) = if b == b'\\' {
            (*pattern.get(i + 1)?, 2)
        } else {
            (b, 1)
        };
        i += width;
        if pattern.get(i) == Some(&b'-') && pattern.get(i + 1).is_some_and(|e| *e != b']') {
            let (high, width) = match *pattern.get(i + 1)? {
                b'\\' => (*pattern.get(i + 2)?, 3),
                other => (other, 2),
            };
            matched |= low <= c && c <= high;
            i += width;
        } else {
            matched |= low == c;
        }
    }
}

fn in_class(class: &[u8], c: u8) -> bool {
    match class {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The two passes

/// A configuration file as loaded: its lines, or why sshd could not open it.
#[derive(Clone)]
enum Opened {
    Lines(Rc<[Line]>),
    Unopenable(String),
}

struct Parser<'a> {
    files: &'a dyn GuestFiles,
    opened: HashMap<String, Opened>,
    /// sshd's include cache: (glob as resolved, matched file or `None` for no match), in
    /// the order sshd adds entries — after each file is parsed.
    include_cache: Vec<(String, Option<String>)>,
    /// The startup pass records everything; the per-connection pass only follows includes.
    startup: bool,
    /// sshd would have exited here; nothing more is read.
    stopped: bool,
    file_parses: usize,
    lines: usize,
    bytes: u64,
    glob_dirs: usize,
    config: SshdConfig,
}

impl Parser<'_> {
    fn problem(&mut self, path: &str, line: usize, message: String) {
        if self.startup {
            let origin = Origin {
                path: path.to_string(),
                line,
            };
            self.config.problems.push((origin, message));
        }
    }

    /// Something sshd exits on.
    fn fatal(&mut self, origin: &Origin, message: String) {
        let message = if self.startup {
            message
        } else {
            format!("{message} (when sshd re-reads its configuration for a connection)")
        };
        self.config.problems.push((origin.clone(), message));
        self.stopped = true;
    }

    fn open(&mut self, path: &str) -> Result<Opened, FactError> {
        if let Some(opened) = self.opened.get(path) {
            return Ok(opened.clone());
        }
        let opened = match self.files.read(path, MAX_CONFIG_BYTES + 1)? {
            Some(bytes) => {
                if bytes.len() as u64 > MAX_CONFIG_BYTES {
                    return Err(FactError::new(
                        path,
                        format!("larger than {MAX_CONFIG_BYTES} bytes; not read"),
                    ));
                }
                self.bytes += bytes.len() as u64;
                if self.bytes > MAX_TOTAL_BYTES {
                    return Err(FactError::new(
                        path,
                        format!("sshd configuration files exceed {MAX_TOTAL_BYTES} bytes in all"),
                    ));
                }
                Opened::Lines(split_lines(&bytes).into())
            }
            // sshd opens a directory without complaint and reads nothing from it.
            None if self.files.list(path)?.is_some() => Opened::Lines(Vec::new().into()),
            None => Opened::Unopenable(format!("{path}: cannot be opened")),
        };
        self.config.files.push(path.to_string());
        self.opened.insert(path.to_string(), opened.clone());
        Ok(opened)
    }

    /// Parses one file with `base` as the Match block open where it was included.
    fn walk(
        &mut self,
        path: &str,
        depth: usize,
        base: Option<usize>,
        included_at: &Origin,
    ) -> Result<(), FactError> {
        if self.stopped {
            return Ok(());
        }
        if depth > MAX_INCLUDE_DEPTH {
            let message = format!(
                "Include nested more than {MAX_INCLUDE_DEPTH} deep (an include cycle?): sshd exits"
            );
            self.fatal(included_at, message);
            return Ok(());
        }
        let lines = match self.open(path)? {
            Opened::Lines(lines) => lines,
            Opened::Unopenable(message) => {
                self.fatal(included_at, message);
                return Ok(());
            }
        };
        self.file_parses += 1;
        if self.file_parses > MAX_FILE_PARSES {
            return Err(FactError::new(
                path,
                format!("more than {MAX_FILE_PARSES} included sshd configuration files"),
            ));
        }
        let mut block = base;
        for line in lines.iter() {
            if self.stopped {
                break;
            }
            self.lines += 1;
            if self.lines > MAX_LINES {
                return Err(FactError::new(
                    path,
                    format!("more than {MAX_LINES} sshd configuration lines"),
                ));
            }
            match line {
                Line::Broken { line, message } => self.problem(path, *line, message.clone()),
                Line::Directive {
                    line,
                    keyword,
                    rest,
                    tokens,
                } => {
                    let origin = Origin {
                        path: path.to_string(),
                        line: *line,
                    };
                    self.directive(&origin, depth, base, &mut block, keyword, rest, tokens)?;
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn directive(
        &mut self,
        origin: &Origin,
        depth: usize,
        base: Option<usize>,
        block: &mut Option<usize>,
        keyword: &str,
        rest: &[u8],
        tokens: &[Token],
    ) -> Result<(), FactError> {
        let Some(spec) = lookup(keyword) else {
            self.problem(
                &origin.path,
                origin.line,
                format!("unknown keyword \"{keyword}\""),
            );
            return Ok(());
        };
        match spec.shape {
            Shape::Include => return self.include(origin, depth, *block, tokens),
            _ if !self.startup => return Ok(()),
            Shape::Match => {
                self.open_block(origin, base, block, rest, tokens.len())?;
                return Ok(());
            }
            _ => {}
        }
        let active = block.is_none_or(|b| self.config.chain_applies(b, &|_| false));
        if !active && spec.scope == Scope::Global {
            let message = format!("{keyword} is not allowed within a Match block");
            self.problem(&origin.path, origin.line, message);
            return Ok(());
        }
        if let Err(message) = check_arguments(spec, tokens) {
            self.problem(&origin.path, origin.line, format!("{keyword}: {message}"));
            return Ok(());
        }
        let (value, tokens) = match spec.shape {
            Shape::Rest => {
                let mut text = String::from_utf8_lossy(rest).into_owned();
                if spec.canonical == "VersionAddendum" {
                    if let Some(hash) = text.find('#') {
                        text.truncate(hash);
                    }
                    text.truncate(text.trim_end().len());
                }
                (text.clone(), vec![text])
            }
            _ => {
                let end = tokens.last().map_or(0, |t| t.end);
                let written = String::from_utf8_lossy(rest.get(..end).unwrap_or_default());
                let words = tokens.iter().map(|t| t.text.clone()).collect();
                (written.into_owned(), words)
            }
        };
        let setting = Setting {
            keyword: spec.canonical.to_ascii_lowercase(),
            written_keyword: keyword.to_string(),
            normalised: normalise(spec.canonical, &tokens),
            value,
            tokens,
            origin: origin.clone(),
            match_block: *block,
        };
        if let Some(owner) = block.and_then(|b| self.config.match_blocks.get_mut(b)) {
            owner.settings.push(setting.clone());
        }
        self.config.occurrences.push(setting);
        Ok(())
    }

    fn open_block(
        &mut self,
        origin: &Origin,
        base: Option<usize>,
        block: &mut Option<usize>,
        rest: &[u8],
        token_count: usize,
    ) -> Result<(), FactError> {
        if self.config.match_blocks.len() >= MAX_MATCH_BLOCKS {
            return Err(FactError::new(
                &origin.path,
                format!("more than {MAX_MATCH_BLOCKS} Match blocks"),
            ));
        }
        let (conditions, criteria) = match parse_match(rest, token_count) {
            Ok(parsed) => parsed,
            Err(message) => {
                self.problem(&origin.path, origin.line, message);
                let text = String::from_utf8_lossy(rest).trim_end().to_string();
                (Vec::new(), text)
            }
        };
        *block = Some(self.config.match_blocks.len());
        self.config.match_blocks.push(MatchBlock {
            criteria,
            conditions,
            origin: origin.clone(),
            parent: base,
            settings: Vec::new(),
        });
        Ok(())
    }

    fn include(
        &mut self,
        origin: &Origin,
        depth: usize,
        block: Option<usize>,
        tokens: &[Token],
    ) -> Result<(), FactError> {
        if tokens.is_empty() {
            self.problem(
                &origin.path,
                origin.line,
                "Include: missing file name".into(),
            );
            return Ok(());
        }
        for token in tokens {
            if self.stopped {
                break;
            }
            if token.text.is_empty() {
                self.problem(&origin.path, origin.line, "Include: empty argument".into());
                break;
            }
            let selector = if token.text.starts_with('/') || token.text.starts_with('~') {
                token.text.clone()
            } else {
                format!("{SSH_DIR}/{}", token.text)
            };
            let cached: Vec<Option<String>> = self
                .include_cache
                .iter()
                .filter(|(s, _)| *s == selector)
                .map(|(_, file)| file.clone())
                .collect();
            if !cached.is_empty() {
                for file in cached.into_iter().flatten() {
                    self.walk(&file, depth + 1, block, origin)?;
                }
                continue;
            }
            let matches = self.glob(&selector)?;
            if matches.is_empty() {
                self.include_cache.push((selector.clone(), None));
            }
            for file in matches {
                self.walk(&file, depth + 1, block, origin)?;
                self.include_cache.push((selector.clone(), Some(file)));
            }
        }
        Ok(())
    }

    /// glob(3) on the guest: sorted bytewise, names starting with `.` only matched
    /// explicitly, a pattern without wildcards matched when the path exists (even as a
    /// dangling symlink).
    fn glob(&mut self, selector: &str) -> Result<Vec<String>, FactError> {
        // A `~` path is not expanded by sshd's glob call; it is relative to sshd's working
        // directory, which is / for a daemon.
        let components: Vec<&[u8]> = selector
            .as_bytes()
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let mut paths = vec![String::from("/")];
        let count = components.len();
        for (index, component) in components.into_iter().enumerate() {
            let last = index + 1 == count;
            let mut next = Vec::new();
            if has_magic(component) {
                for dir in &paths {
                    self.glob_dirs += 1;
                    if self.glob_dirs > MAX_GLOB_DIRS {
                        return Err(FactError::new(
                            selector,
                            format!("Include globs list more than {MAX_GLOB_DIRS} directories"),
                        ));
                    }
                    let Some(items) = self.files.list(dir)? else {
                        continue;
                    };
                    for item in items {
                        if item.name == b"." || item.name == b".." {
                            continue;
                        }
                        if glob_match(component, &item.name) {
                            next.push(child_path(dir, &item.name));
                        }
                    }
                    if next.len() > MAX_GLOB_MATCHES {
                        return Err(FactError::new(
                            selector,
                            format!("Include glob matches more than {MAX_GLOB_MATCHES} paths"),
                        ));
                    }
                }
            } else {
                let literal = unescape(component);
                for dir in &paths {
                    let path = child_path(dir, &literal);
                    if !last || self.files.kind(&path)?.is_some() {
                        next.push(path);
                    }
                }
            }
            paths = next;
            if paths.is_empty() {
                break;
            }
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        paths.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::DirItem;
    use crate::filesystems::FileKind;
    use std::collections::BTreeMap;

    /// A guest held in memory: files, directories (implied by paths) and symlinks.
    #[derive(Default)]
    struct Guest {
        files: BTreeMap<String, Vec<u8>>,
        links: BTreeMap<String, String>,
        dirs: Vec<String>,
    }

    impl Guest {
        fn with(files: &[(&str, &str)]) -> Self {
            let mut guest = Guest::default();
            for (path, text) in files {
                guest.add(path, text.as_bytes().to_vec());
            }
            guest
        }

        fn add(&mut self, path: &str, bytes: Vec<u8>) {
            self.files.insert(path.to_string(), bytes);
        }

        fn is_dir(&self, path: &str) -> bool {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            path == "/"
                || self.dirs.iter().any(|d| d == path)
                || self
                    .files
                    .keys()
                    .chain(self.links.keys())
                    .any(|p| p.starts_with(&prefix))
                || self.dirs.iter().any(|d| d.starts_with(&prefix))
        }
    }

    impl GuestFiles for Guest {
        fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FactError> {
            if path.contains("unreadable") {
                return Err(FactError::new(path, "Permission denied"));
            }
            Ok(self
                .files
                .get(path)
                .map(|b| b.iter().copied().take(limit as usize).collect()))
        }

        fn list(&self, path: &str) -> Result<Option<Vec<DirItem>>, FactError> {
            if !self.is_dir(path) {
                return Ok(None);
            }
            let prefix = format!("{}/", path.trim_end_matches('/'));
            let mut names: Vec<String> = self
                .files
                .keys()
                .chain(self.links.keys())
                .chain(self.dirs.iter())
                .filter_map(|p| p.strip_prefix(&prefix))
                .filter_map(|rest| rest.split('/').next())
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            names.sort();
            names.dedup();
            Ok(Some(
                names
                    .into_iter()
                    .map(|name| {
                        let full = format!("{prefix}{name}");
                        let kind = self.kind(&full).ok().flatten().unwrap_or(FileKind::File);
                        DirItem {
                            name: name.into_bytes(),
                            kind,
                        }
                    })
                    .collect(),
            ))
        }

        fn read_link(&self, path: &str) -> Result<Option<Vec<u8>>, FactError> {
            Ok(self.links.get(path).map(|t| t.as_bytes().to_vec()))
        }

        fn kind(&self, path: &str) -> Result<Option<FileKind>, FactError> {
            Ok(if self.links.contains_key(path) {
                Some(FileKind::Symlink)
            } else if self.files.contains_key(path) {
                Some(FileKind::File)
            } else if self.is_dir(path) {
                Some(FileKind::Dir)
            } else {
                None
            })
        }
    }

    fn error_of(guest: &Guest) -> String {
        read_config(guest).expect_err("a FactError").to_string()
    }

    fn config(files: &[(&str, &str)]) -> SshdConfig {
        read_config(&Guest::with(files)).expect("readable")
    }

    fn words(line: &str) -> Option<(String, Vec<String>)> {
        match parse_line(line.as_bytes(), 1)? {
            Line::Directive {
                keyword, tokens, ..
            } => Some((keyword, tokens.into_iter().map(|t| t.text).collect())),
            Line::Broken { message, .. } => Some((format!("broken: {message}"), Vec::new())),
        }
    }

    #[test]
    fn lines_split_like_sshd() {
        let w =
            |k: &str, v: &[&str]| Some((k.to_string(), v.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            words("PasswordAuthentication no"),
            w("PasswordAuthentication", &["no"])
        );
        assert_eq!(
            words("PasswordAuthentication=no"),
            w("PasswordAuthentication", &["no"])
        );
        assert_eq!(
            words("PasswordAuthentication = no"),
            w("PasswordAuthentication", &["no"])
        );
        // Only one `=` is a separator.
        assert_eq!(words("UsePAM==yes"), w("UsePAM", &["=yes"]));
        assert_eq!(words("A b # c d"), w("A", &["b"]));
        assert_eq!(words("A b#c"), w("A", &["b#c"]));
        assert_eq!(
            words("A \"b c\" 'd e' f\\ g"),
            w("A", &["b c", "d e", "f g"])
        );
        assert_eq!(words("A x\"y z\"w"), w("A", &["xy zw"]));
        assert_eq!(words("\"UsePAM\" yes"), w("UsePAM", &["yes"]));
        assert_eq!(words("A b\x0c"), w("A", &["b"]));
        assert_eq!(words("#A b"), None);
        assert_eq!(words(""), None);
        assert_eq!(words("\"A b"), None);
        assert_eq!(
            words("A"),
            w("broken: no argument after keyword \"A\"", &[])
        );
        assert_eq!(
            words("A="),
            w("broken: no argument after keyword \"A\"", &[])
        );
        assert_eq!(words("A \"b"), w("broken: A: invalid quotes", &[]));

        // A NUL cuts its line and swallows the newline; leading blanks and CRs go.
        let lines = split_lines(b"  A no\0junk\n\tB yes\r\n\r\n\n C 1");
        let got: Vec<(usize, String, Vec<String>)> = lines
            .into_iter()
            .filter_map(|l| match l {
                Line::Directive {
                    line,
                    keyword,
                    tokens,
                    ..
                } => Some((line, keyword, tokens.into_iter().map(|t| t.text).collect())),
                Line::Broken { .. } => None,
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    "A".to_string(),
                    vec!["noB".to_string(), "yes".to_string()]
                ),
                (5, "C".to_string(), vec!["1".to_string()]),
            ]
        );
    }

    #[test]
    fn globs_match_like_glibc() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert!(m("*.conf", "50-cloud-init.conf"));
        assert!(!m("*.conf", "x.conf.dpkg-old"));
        assert!(!m("*.conf", ".hidden.conf"));
        assert!(!m("?hidden.conf", ".hidden.conf"));
        assert!(m(".*.conf", ".hidden.conf"));
        assert!(m("??-*.conf", "10-x.conf"));
        assert!(!m("??-*.conf", "5-x.conf"));
        assert!(m("[a-c]*", "b.conf"));
        assert!(!m("[a-c]*", "d.conf"));
        assert!(m("[!a-c]*", "d.conf"));
        assert!(m("[^a-c]*", "d.conf"));
        assert!(m("[]]", "]"));
        assert!(m("[[:digit:]]*", "1x"));
        assert!(!m("[[:digit:]]*", "x1"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("[x", "[x"));
        assert!(m("*a*a*a*a*a*a*b", &"a".repeat(60).replace("aa", "ab")));
        assert!(!m("*a*a*a*a*a*a*a*a*a*c", &"a".repeat(5000)));
        assert!(
            has_magic(b"*.conf") && has_magic(b"[ab]") && !has_magic(b"a\\*") && !has_magic(b"[x")
        );
    }

    #[test]
    fn match_criteria_like_sshd() {
        let parse = |s: &str| {
            parse_match(
                s.as_bytes(),
                argv_split(s.as_bytes()).map_or(0, |t| t.len()),
            )
        };
        let (conditions, text) = parse("User alice,bob Address 10.0.0.0/8 # admins").unwrap();
        assert_eq!(text, "User alice,bob Address 10.0.0.0/8");
        assert_eq!(
            conditions[1],
            ("address".to_string(), "10.0.0.0/8".to_string())
        );
        assert_eq!(
            parse("all").unwrap().0,
            [("all".to_string(), String::new())]
        );
        assert_eq!(parse("All # every connection").unwrap().1, "All");
        assert!(parse("all User x").is_err());
        assert!(parse("User x all").is_err());
        assert!(parse("User").is_err());
        assert!(parse("Colour blue").is_err());
        assert!(parse("Address 10.0.0.1/8").is_err(), "host bits set");
        assert!(parse("Address 10.0.0.0/33").is_err());
        assert!(parse("Address 192.168.*,!10.1.0.0/16,fe80::/10").is_ok());
        assert!(parse("Address 10.0.0.0/8,,10.1.0.0/16").is_err());
        assert!(parse("LocalPort 70000").is_err());
        assert!(parse("LocalPort 2222").is_ok());
    }

    #[test]
    fn values_checked_like_sshd() {
        let c = config(&[(
            MAIN_CONFIG,
            "PasswordAuthentication yes no\nPermitRootLogin maybe\nMaxAuthTries -1\n\
             LoginGraceTime 1h30m\nClientAliveInterval 5x\nPermitTunnel YES\nNoSuchThing 1\n\
             PermitEmptyPasswords\nPort 0\nAuthorizedKeysFile a \"\" b\nX11Forwarding #c\n",
        )]);
        let lines: Vec<usize> = c.problems.iter().map(|(o, _)| o.line).collect();
        assert_eq!(lines, [1, 2, 3, 5, 6, 7, 8, 9, 10, 11], "{:?}", c.problems);
        assert_eq!(c.occurrences.len(), 1);
        assert_eq!(parse_time("1h30m"), Some(5400));
        assert_eq!(parse_time("2147483648"), None);
    }

    #[test]
    fn effective_values_and_defaults() {
        let c = config(&[
            (MAIN_CONFIG, "Include sshd_config.d/*.conf\nPermitRootLogin without-password\nAllowUsers a b\nAllowUsers c\nIPQoS af21\nIPQoS lowdelay\nForceCommand echo hi # not a comment\n"),
            ("/etc/ssh/sshd_config.d/x.conf", "challengeresponseauthentication no\n"),
        ]);
        let root = c.effective("permitrootlogin");
        assert_eq!(
            (root.value.as_str(), root.normalised.as_str()),
            ("without-password", "prohibit-password")
        );
        assert_eq!(root.origin.map(|o| o.line), Some(2));
        let kbd = c.effective("KbdInteractiveAuthentication");
        assert_eq!(kbd.normalised, "no");
        assert_eq!(c.occurrences[0].keyword, "kbdinteractiveauthentication");
        assert_eq!(
            c.occurrences[0].written_keyword,
            "challengeresponseauthentication"
        );
        assert_eq!(c.effective("allowusers").tokens, ["a", "b", "c"]);
        assert_eq!(c.effective("ipqos").value, "lowdelay");
        assert_eq!(c.effective("forcecommand").value, "echo hi # not a comment");
        let password = c.effective("passwordauthentication");
        assert_eq!(
            (password.normalised.as_str(), password.origin),
            ("yes", None)
        );
        assert_eq!(
            c.authorized_keys_files(),
            [".ssh/authorized_keys", ".ssh/authorized_keys2"]
        );
        assert_eq!(c.effective("NoSuchKeyword").value, "");
        assert_eq!(c.effective("ciphers").origin, None);
        assert_eq!(
            canonical_keyword("skeyauthentication"),
            Some("KbdInteractiveAuthentication")
        );
        assert_eq!(canonical_keyword("bogus"), None);
    }

    #[test]
    fn no_binary_no_config() {
        let guest = Guest::with(&[(MAIN_CONFIG, "PasswordAuthentication no\n")]);
        assert!(!sshd_installed(&guest).unwrap());
        assert!(read(&guest).unwrap().is_none());
        let mut guest = guest;
        guest
            .links
            .insert("/usr/sbin/sshd".into(), "/nonexistent".into());
        assert!(sshd_installed(&guest).unwrap());
        let c = read(&guest).unwrap().unwrap();
        assert_eq!(c.effective("passwordauthentication").normalised, "no");
        let empty = config(&[]);
        assert_eq!(empty.main_file, None);
        assert_eq!(empty.effective("UsePAM").normalised, "no");
    }

    #[test]
    fn unreadable_and_unopenable_files() {
        let e = read_config(&Guest::with(&[
            (MAIN_CONFIG, "Include unreadable.conf\n"),
            ("/etc/ssh/unreadable.conf", "x"),
        ]));
        assert!(e
            .expect_err("a FactError")
            .to_string()
            .contains("Permission denied"));
        let mut guest = Guest::with(&[(
            MAIN_CONFIG,
            "Include d/*.conf dir.conf\nPermitRootLogin no\n",
        )]);
        guest.dirs.push("/etc/ssh/dir.conf".into());
        guest
            .links
            .insert("/etc/ssh/d/x.conf".into(), "/gone".into());
        let c = read_config(&guest).unwrap();
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].1.contains("cannot be opened"));
        // sshd exits there: nothing after is read.
        assert!(c.occurrences.is_empty());
        let mut huge = Guest::default();
        huge.add(MAIN_CONFIG, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]);
        assert!(error_of(&huge).contains("larger than"));
    }

    #[test]
    fn include_depth_is_sshds() {
        let chain = |levels: usize| {
            let mut guest = Guest::with(&[(MAIN_CONFIG, "Include l1.conf\n")]);
            for i in 1..=levels {
                let text = if i == levels {
                    "PasswordAuthentication no\n".to_string()
                } else {
                    format!("Include l{}.conf\n", i + 1)
                };
                guest.add(&format!("/etc/ssh/l{i}.conf"), text.into_bytes());
            }
            read_config(&guest).unwrap()
        };
        let ok = chain(16);
        assert!(ok.problems.is_empty(), "{:?}", ok.problems);
        assert_eq!(ok.effective("passwordauthentication").normalised, "no");
        let deep = chain(17);
        assert_eq!(deep.problems.len(), 1);
        assert_eq!(deep.problems[0].0.path, "/etc/ssh/l16.conf");
    }

    #[test]
    fn cycles_and_fan_out_are_bounded() {
        let start = std::time::Instant::now();
        // Each file includes itself twice: without sshd's exit at depth 17 that is 2^17 parses.
        let c = config(&[(MAIN_CONFIG, "Include sshd_config sshd_config\n")]);
        assert_eq!(c.problems.len(), 1);
        // A tree of distinct files, three wide and fifteen deep: 3^15 parses.
        let mut guest = Guest::with(&[(MAIN_CONFIG, "Include f1.conf\n")]);
        for i in 1..=15 {
            let next = format!("f{}.conf", i + 1);
            guest.add(
                &format!("/etc/ssh/f{i}.conf"),
                format!("Include {next} {next} {next}\nUsePAM yes\n").into_bytes(),
            );
        }
        assert!(error_of(&guest).contains("included sshd configuration files"));
        assert!(start.elapsed().as_secs() < 20);
    }

    #[test]
    fn huge_and_hostile_input_is_bounded() {
        // Many lines: one 4 MiB file read eight times.
        let big = "PasswordAuthentication no\n".repeat((MAX_CONFIG_BYTES / 26) as usize);
        let mut guest = Guest::with(&[(MAIN_CONFIG, "Include a a a a a a a a\n")]);
        guest.add("/etc/ssh/a", big.into_bytes());
        assert!(error_of(&guest).contains("configuration lines"));

        let blocks = "Match all\n".repeat(MAX_MATCH_BLOCKS + 1);
        assert!(error_of(&Guest::with(&[(MAIN_CONFIG, &blocks)])).contains("Match blocks"));

        // Binary garbage: deterministic pseudo-random bytes, with the separators sshd cares
        // about made frequent.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..64 {
            let mut bytes = Vec::new();
            for _ in 0..4096 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let b = (state >> 24) as u8;
                bytes.push(match b % 16 {
                    0 => b'\n',
                    1 => b'"',
                    2 => b'=',
                    3 => b' ',
                    4 => b'#',
                    5 => b'*',
                    _ => b,
                });
            }
            let prefix = if round % 2 == 0 {
                &b"Match User x\nInclude *\n"[..]
            } else {
                &b"Include /etc/ssh/*\n"[..]
            };
            let mut main = prefix.to_vec();
            main.extend_from_slice(&bytes);
            let mut guest = Guest::default();
            guest.add(MAIN_CONFIG, main);
            guest.add("/etc/ssh/other", bytes);
            let _ = read_config(&guest);
        }

        // Many directories for a glob to list.
        let mut guest = Guest::with(&[(MAIN_CONFIG, "Include /*/*/*/*/*.conf\n")]);
        for i in 0..40 {
            for j in 0..40 {
                guest.add(&format!("/d{i}/e{j}/f/g/x.conf"), b"UsePAM yes\n".to_vec());
            }
        }
        assert!(error_of(&guest).contains("directories"));
    }

    #[test]
    fn match_blocks_and_includes() {
        let c = config(&[
            (MAIN_CONFIG, "Include sshd_config.d/*.conf\nPasswordAuthentication no\nMatch User a\n  Include m.conf\n  X11Forwarding yes\n"),
            ("/etc/ssh/sshd_config.d/10.conf", "UsePAM yes\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n"),
            ("/etc/ssh/m.conf", "PermitEmptyPasswords yes\nMatch all\n  PasswordAuthentication yes\n"),
        ]);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let criteria: Vec<(&str, Option<usize>)> = c
            .match_blocks
            .iter()
            .map(|b| (b.criteria.as_str(), b.parent))
            .collect();
        assert_eq!(
            criteria,
            [
                ("Address 10.0.0.0/8", None),
                ("User a", None),
                ("all", Some(1))
            ]
        );
        // The Match in 10.conf ended with the file.
        assert_eq!(
            c.effective("passwordauthentication").origin.map(|o| o.line),
            Some(2)
        );
        assert_eq!(c.match_blocks[1].settings.len(), 2);
        assert_eq!(
            c.match_blocks[1].settings[0].keyword,
            "permitemptypasswords"
        );
        // `Match all` inside a block applies only with its parent.
        assert_eq!(c.effective("passwordauthentication").normalised, "no");
        let for_a = c.effective_for("passwordauthentication", &|b| b.criteria == "User a");
        assert_eq!(for_a.normalised, "yes");
        assert_eq!(
            c.effective_for("permitrootlogin", &|b| b.criteria.starts_with("Address"))
                .normalised,
            "yes"
        );
        assert_eq!(c.effective_for("usepam", &|_| true).normalised, "yes");
    }
}
