//! The values of a finding a rule's `fix` template can name: `{path}`, `{subject}`, `{line}`.

/// A finding's value a template can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Path,
    Subject,
    Line,
}

impl Placeholder {
    pub const ALL: [Placeholder; 3] = [Placeholder::Path, Placeholder::Subject, Placeholder::Line];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Path => "path",
            Placeholder::Subject => "subject",
            Placeholder::Line => "line",
        }
    }
}
