//! JUnit XML for CI test reports (GitLab, Jenkins, Azure Pipelines): a `<testsuite>` per
//! image, a `<testcase>` per rule that ran. Follows the Jenkins xunit-plugin's junit-10.xsd,
//! the de facto schema those consumers read. Owns the mapping of statuses onto test
//! outcomes and XML escaping; what fails is the gate's business.
//!
//! A rule that failed without a gating finding (below `--fail-on`, waived or known in the
//! baseline) is a passing test case whose `<system-out>` lists the findings: the scan does
//! not fail on it, so the pipeline's test report must not turn red either. Waived rules and
//! rules that do not apply are skipped; rules that could not decide are errors. An image
//! read only in part has one more error test case, `amiscan.read`, naming each cause.

use std::fmt::Write as _;
use std::io::Write;

use super::not_read;
use super::{FindingInfo, ImageReport, Report, ResultInfo, ResultStatus, RuleInfo};

/// Text safe inside an XML 1.0 element: markup characters escaped, characters XML 1.0
/// cannot carry at all (control characters other than tab, newline and carriage return,
/// U+FFFE, U+FFFF) replaced by U+FFFD. Guest paths and file contents may hold any byte.
fn escape_text(text: &str) -> String {
    escape(text, false)
}

/// Text safe inside a double-quoted attribute: as [`escape_text`], plus quotes, and tab
/// and newline as character references (parsers turn raw ones into spaces).
fn escape_attribute(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            // A raw CR would be normalised to a newline (in text) or a space (in an
            // attribute) by parsers.
            '\r' => out.push_str("&#13;"),
            c if legal_in_xml(c) => out.push(c),
            _ => out.push('\u{fffd}'),
        }
    }
    out
}

/// XML 1.0's `Char` production (Rust `char`s are never surrogates).
fn legal_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Milliseconds as seconds with three decimals (junit-10.xsd's SUREFIRE_TIME).
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn classname(rule: &str) -> String {
    let first = rule.split('.').next().unwrap_or(rule);
    format!("amiscan.{first}")
}

/// One line per finding: where, how bad, what, and why it does or does not gate.
fn finding_line(finding: &FindingInfo, fail_on: &str) -> String {
    let mut line = match (finding.shown_path(), finding.line) {
        (Some(path), Some(number)) => format!("{path}:{number}"),
        (Some(path), None) => path,
        (None, _) => "(no file)".to_string(),
    };
    let _ = write!(line, " [{}] {}", finding.severity, finding.message);
    if let Some(fingerprint) = &finding.fingerprint {
        let _ = write!(line, " (secret fingerprint {fingerprint})");
    }
    if let Some(waiver) = &finding.waiver {
        if waiver.expired {
            let _ = write!(
                line,
                " — waiver {} expired on {}",
                waiver.source,
                waiver.expires.as_deref().unwrap_or("?")
            );
        } else {
            let _ = write!(line, " — waived: {} ({})", waiver.reason, waiver.source);
        }
    }
    if finding.baseline == Some(super::BaselineState::Known) {
        line.push_str(" — known in the baseline");
    } else if !finding.gating && !finding.waived() {
        let _ = write!(line, " — below --fail-on {fail_on}");
    }
    line.push('\n');
    line
}

fn findings_text(result: &ResultInfo, rule: Option<&RuleInfo>, fail_on: &str) -> String {
    let mut text = String::new();
    for finding in &result.findings {
        text.push_str(&finding_line(finding, fail_on));
    }
    if let Some(reason) = &result.reason {
        let _ = writeln!(text, "Could not read everything: {reason}");
    }
    if let Some(rule) = rule.filter(|r| !r.remediation.trim().is_empty()) {
        let _ = write!(text, "Remediation:\n{}\n", rule.remediation.trim_end());
    }
    text
}

/// The distinct waivers behind a waived rule, as `REASON (FILE:LINE)`.
fn waiver_summary(result: &ResultInfo) -> String {
    let mut seen: Vec<String> = Vec::new();
    for waiver in result.findings.iter().filter_map(|f| f.waiver.as_ref()) {
        let one = format!("{} ({})", waiver.reason, waiver.source);
        if !seen.contains(&one) {
            seen.push(one);
        }
    }
    seen.join("; ")
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

fn testcase(out: &mut String, result: &ResultInfo, rule: Option<&RuleInfo>, fail_on: &str) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\"",
        escape_attribute(&classname(&result.rule)),
        escape_attribute(&result.rule)
    );
    let count = result.findings.len();
    match result.status {
        ResultStatus::Pass => out.push_str("/>\n"),
        ResultStatus::Fail if result.gating => {
            let _ = write!(
                out,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                escape_attribute(&format!(
                    "{}: {count} finding{}",
                    result.title,
                    plural(count)
                )),
                result.effective_severity(),
                escape_text(&findings_text(result, rule, fail_on))
            );
        }
        ResultStatus::Fail => {
            let header = format!(
                "{}: {count} finding{}, none of which fails the scan (each line says why)\n",
                result.title,
                plural(count)
            );
            let _ = write!(
                out,
                ">\n      <system-out>{}{}</system-out>\n    </testcase>\n",
                escape_text(&header),
                escape_text(&findings_text(result, rule, fail_on))
            );
        }
        ResultStatus::Waived => {
            let _ = write!(
                out,
                ">\n      <skipped message=\"{}\">{}</skipped>\n    </testcase>\n",
                escape_attribute(&format!("waived: {}", waiver_summary(result))),
                escape_text(&findings_text(result, None, fail_on))
            );
        }
        ResultStatus::Error => {
            let _ = write!(
                out,
                ">\n      <error message=\"{}\"/>\n    </testcase>\n",
                escape_attribute(result.reason.as_deref().unwrap_or("could not decide"))
            );
        }
        ResultStatus::Skipped => {
            let _ = write!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                escape_attribute(result.reason.as_deref().unwrap_or("does not apply"))
            );
        }
    }
}

/// Whether the image gets the `amiscan.read` error test case: read, but not completely.
fn read_in_part(image: &ImageReport) -> bool {
    image.error.is_none() && image.summary.incomplete
}

/// Tests, failures, errors, skipped of one image.
fn counts(image: &ImageReport) -> (usize, usize, usize, usize) {
    if image.error.is_some() {
        return (1, 0, 1, 0);
    }
    let of = |keep: &dyn Fn(&ResultInfo) -> bool| image.results.iter().filter(|r| keep(r)).count();
    let read = usize::from(read_in_part(image));
    (
        image.results.len() + read,
        of(&|r| r.status == ResultStatus::Fail && r.gating),
        of(&|r| r.status == ResultStatus::Error) + read,
        of(&|r| matches!(r.status, ResultStatus::Waived | ResultStatus::Skipped)),
    )
}

/// The `amiscan.read` test case: an error naming each cause of an incomplete result, so
/// a CI view shows why nothing is proven rather than a suite of passes.
fn read_testcase(out: &mut String, image: &ImageReport) {
    let groups = not_read::groups(image);
    let mut body = String::new();
    for group in &groups {
        let _ = writeln!(body, "{}:", group.heading);
        for item in &group.items {
            match &item.place {
                Some(place) => {
                    let _ = writeln!(body, "  {place}: {}", item.text);
                }
                None => {
                    let _ = writeln!(body, "  {}", item.text);
                }
            }
        }
        if group.more > 0 {
            let _ = writeln!(
                body,
                "  and {} more (all in the JSON report)",
                not_read::thousands(group.more)
            );
        }
    }
    let headings: Vec<&str> = groups.iter().map(|g| g.heading.as_str()).collect();
    let _ = write!(
        out,
        "    <testcase classname=\"amiscan\" name=\"amiscan.read\">\n      <error message=\"{}\" type=\"incomplete\">{}</error>\n    </testcase>\n",
        escape_attribute(&format!(
            "the image was not read completely: {}",
            headings.join(", ")
        )),
        escape_text(&body)
    );
}

fn property(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "      <property name=\"{}\" value=\"{}\"/>",
        escape_attribute(name),
        escape_attribute(value)
    );
}

fn testsuite(out: &mut String, report: &Report, image: &ImageReport) {
    let (tests, failures, errors, skipped) = counts(image);
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\">",
        escape_attribute(&image.image.path),
        seconds(image.stats.duration_ms)
    );
    out.push_str("    <properties>\n");
    property(out, "verdict", image.summary.verdict.as_str());
    property(out, "fail-on", image.summary.fail_on);
    property(out, "exit-code", &image.summary.exit_code.to_string());
    if let Some(name) = image.os.as_ref().and_then(|os| os.pretty_name.as_deref()) {
        property(out, "os", name);
    }
    for (key, value) in &image.labels {
        property(out, &format!("label.{key}"), value);
    }
    for digest in &image.image.digests {
        property(out, &format!("sha256:{}", digest.path), &digest.sha256);
    }
    out.push_str("    </properties>\n");
    if let Some(error) = &image.error {
        let _ = write!(
            out,
            "    <testcase classname=\"amiscan\" name=\"open image\">\n      <error message=\"{}\"/>\n    </testcase>\n",
            escape_attribute(error)
        );
    }
    if read_in_part(image) {
        read_testcase(out, image);
    }
    for result in &image.results {
        let rule = report.rules.iter().find(|r| r.id == result.rule);
        testcase(out, result, rule, image.summary.fail_on);
    }
    // Notes the `amiscan.read` test case already says are not repeated.
    let notes: Vec<&String> = image
        .notes
        .iter()
        .enumerate()
        .filter(|(index, _)| !image.not_read.covered_notes.contains(index))
        .map(|(_, note)| note)
        .collect();
    if !notes.is_empty() {
        let mut text = String::new();
        for note in notes {
            let _ = writeln!(text, "{note}");
        }
        let _ = writeln!(out, "    <system-out>{}</system-out>", escape_text(&text));
    }
    out.push_str("  </testsuite>\n");
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let (mut tests, mut failures, mut errors, mut ms) = (0, 0, 0, 0u64);
    for image in &report.images {
        let (t, f, e, _) = counts(image);
        tests += t;
        failures += f;
        errors += e;
        ms = ms.saturating_add(image.stats.duration_ms);
    }
    // junit-10.xsd has no `skipped` on <testsuites>; each suite carries its own.
    let _ = writeln!(
        xml,
        "<testsuites name=\"amiscan\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        seconds(ms)
    );
    for image in &report.images {
        testsuite(&mut xml, report, image);
    }
    xml.push_str("</testsuites>\n");
    out.write_all(xml.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_markup_and_drops_what_xml_cannot_hold() {
        assert_eq!(escape_text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(escape_text("]]>"), "]]&gt;");
        assert_eq!(escape_text("tab\tnl\ncr\r"), "tab\tnl\ncr&#13;");
        assert_eq!(
            escape_text("nul\u{0}esc\u{1b}bs\u{8}"),
            "nul\u{fffd}esc\u{fffd}bs\u{fffd}"
        );
        assert_eq!(escape_text("\u{fffe}\u{ffff}"), "\u{fffd}\u{fffd}");
        // Legal outside ASCII, including C1 controls and astral characters.
        assert_eq!(escape_text("é\u{85}😀"), "é\u{85}😀");
        assert_eq!(escape_text("'\""), "'\"");
    }

    #[test]
    fn attributes_keep_whitespace_and_quotes_as_references() {
        assert_eq!(
            escape_attribute("a\"b'c\td\ne\rf"),
            "a&quot;b&apos;c&#9;d&#10;e&#13;f"
        );
        assert_eq!(escape_attribute("<x>&\u{7}"), "&lt;x&gt;&amp;\u{fffd}");
        // The `\xff` text the report uses for invalid bytes passes through as text.
        assert_eq!(escape_attribute("/bad\\xff"), "/bad\\xff");
    }

    #[test]
    fn times_and_class_names() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(1234), "1.234");
        assert_eq!(seconds(60_005), "60.005");
        assert_eq!(classname("ssh.host-keys"), "amiscan.ssh");
        assert_eq!(classname("odd"), "amiscan.odd");
    }
}
