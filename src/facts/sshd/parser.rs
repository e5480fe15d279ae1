//! The two passes over the configuration files (startup and per connection): opening
//! files within the resource bounds, `Include` globs expanded as glob(3) does on the
//! guest, sshd's include cache, Match blocks opened and nested, settings recorded.

use super::arguments::check_arguments;
use super::config::{normalise, MatchBlock, Setting, SshdConfig};
use super::keywords::{lookup, Scope, Shape};
use super::lines::{split_lines, Line, Token};
use super::match_line::parse_match;
use super::{
    MAX_FILE_PARSES, MAX_GLOB_DIRS, MAX_GLOB_MATCHES, MAX_INCLUDE_DEPTH, MAX_LINES,
    MAX_MATCH_BLOCKS, MAX_TOTAL_BYTES, SSH_DIR,
};
use crate::escapes;
use crate::facts::{child_path, fnmatch, FactError, GuestFiles, Origin, MAX_CONFIG_BYTES};
use std::collections::HashMap;
use std::rc::Rc;

/// Both passes from the file sshd starts from (`None`: no configuration file at all).
pub(super) fn run(files: &dyn GuestFiles, main: Option<&str>) -> Result<SshdConfig, FactError> {
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

/// Whether a path component needs matching (an unescaped `*`, `?`, or `[` with a `]`
/// after it), as glibc's glob decides.
pub(super) fn has_magic(component: &[u8]) -> bool {
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
                    return Err(FactError::too_large(
                        path,
                        format!("larger than {MAX_CONFIG_BYTES} bytes; not read"),
                    ));
                }
                self.bytes += bytes.len() as u64;
                if self.bytes > MAX_TOTAL_BYTES {
                    return Err(FactError::limit_reached(
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
            return Err(FactError::limit_reached(
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
                return Err(FactError::limit_reached(
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
        if let Err(error) = check_arguments(spec, tokens) {
            self.problem(&origin.path, origin.line, format!("{keyword}: {error}"));
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
            return Err(FactError::limit_reached(
                &origin.path,
                format!("more than {MAX_MATCH_BLOCKS} Match blocks"),
            ));
        }
        let (conditions, criteria) = match parse_match(rest, token_count) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.problem(&origin.path, origin.line, error.to_string());
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
                        return Err(FactError::limit_reached(
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
                        if fnmatch::bytes(component, &item.name, fnmatch::GLOB) {
                            next.push(child_path(dir, &item.name));
                        }
                    }
                    if next.len() > MAX_GLOB_MATCHES {
                        return Err(FactError::limit_reached(
                            selector,
                            format!("Include glob matches more than {MAX_GLOB_MATCHES} paths"),
                        ));
                    }
                }
            } else {
                let literal = escapes::unquote(component);
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
