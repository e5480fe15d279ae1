//! Runs each detector's `examples` and `counterexamples` through a scanner built from every
//! detector given, the way a file's content is scanned: an example must be reported by its
//! detector exactly once and by no other specific detector on the same line; a
//! counterexample must not be reported by its detector. Detectors scoped to files by path
//! run only on their own fixtures, as they run only on their own files.

use super::{DetectorError, DetectorSpec, FileScan, Limits, Scanner};

/// Which fixture list an example comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    Example,
    Counterexample,
}

impl Fixture {
    pub fn field(self) -> &'static str {
        match self {
            Fixture::Example => "examples",
            Fixture::Counterexample => "counterexamples",
        }
    }
}

/// One fixture that does not behave as its list says. Names the detector and the entry,
/// never the fixture's text (it has the shape of a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureFailure {
    /// Index into the detectors given.
    pub detector: usize,
    pub fixture: Fixture,
    /// 0-based position in the list.
    pub entry: usize,
    pub problem: String,
}

/// Checks every fixture of every detector in `specs`.
pub fn check_fixtures(specs: &[DetectorSpec]) -> Result<Vec<FixtureFailure>, DetectorError> {
    let scanner = Scanner::new(specs)?;
    scanner.compile_all()?;
    let limits = Limits {
        max_bytes: 1 << 20,
        decompress: false,
    };
    let name = |index: usize| specs.get(index).map_or("?", |s| s.name.as_str());
    let unscoped: Vec<bool> = specs
        .iter()
        .map(|s| s.paths.is_empty() && s.path_regex.is_none())
        .collect();
    let mut failures = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let mut enabled = unscoped.clone();
        if let Some(own) = enabled.get_mut(index) {
            *own = true;
        }
        let scan_text = |text: &str| scan_text(&scanner, text, &limits, &enabled);
        let fail = |fixture, entry, problem: String| FixtureFailure {
            detector: index,
            fixture,
            entry,
            problem,
        };
        for (entry, text) in spec.examples.iter().enumerate() {
            let scan = scan_text(text);
            let own: Vec<_> = scan.hits.iter().filter(|h| h.detector == index).collect();
            match own.as_slice() {
                [] => {
                    let why = scan
                        .allowlisted
                        .iter()
                        .find(|h| h.detector == index)
                        .and_then(|h| h.allow_reason.clone())
                        .map_or("the detector does not match it".to_string(), |reason| {
                            format!("allowlisted: {reason}")
                        });
                    failures.push(fail(
                        Fixture::Example,
                        entry,
                        format!("not reported ({why})"),
                    ));
                }
                [hit] => {
                    let others: Vec<&str> = scan
                        .hits
                        .iter()
                        .filter(|h| h.detector != index && h.line == hit.line)
                        .filter(|h| specs.get(h.detector).is_some_and(|s| !s.generic))
                        .map(|h| name(h.detector))
                        .collect();
                    if !others.is_empty() {
                        failures.push(fail(
                            Fixture::Example,
                            entry,
                            format!("also reported by {}", others.join(", ")),
                        ));
                    }
                }
                more => failures.push(fail(
                    Fixture::Example,
                    entry,
                    format!("reported {} times, not once", more.len()),
                )),
            }
        }
        for (entry, text) in spec.counterexamples.iter().enumerate() {
            let scan = scan_text(text);
            if let Some(hit) = scan.hits.iter().find(|h| h.detector == index) {
                failures.push(fail(
                    Fixture::Counterexample,
                    entry,
                    format!("reported (line {}, {})", hit.line, hit.fingerprint),
                ));
            }
        }
    }
    Ok(failures)
}

fn scan_text(scanner: &Scanner, text: &str, limits: &Limits, enabled: &[bool]) -> FileScan {
    let mut bytes = text.as_bytes();
    // Reading from a slice cannot fail.
    scanner
        .scan_only(&mut bytes, limits, enabled)
        .unwrap_or_default()
}
