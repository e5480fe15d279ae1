//! A path in the guest's tree as the guest's own bytes. Paths stay bytes from the walk
//! through facts, findings, the gate, waivers and baselines; only renderers turn them into
//! text, each for its medium (escaped for a terminal, lossy plus base64 for JSON).

use std::fmt;

/// A guest path: the exact bytes, never escaped or decoded on the way.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPath(Vec<u8>);

impl GuestPath {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The path for a terminal or a log line: invalid UTF-8 and control characters
    /// escaped, reversibly.
    pub fn display(&self) -> String {
        crate::names::escape_for_terminal(&self.0)
    }

    /// The path as JSON carries it: the text (lossy when the bytes are not UTF-8) and, only
    /// then, the exact bytes in base64.
    pub fn json_text_and_bytes(&self) -> (String, Option<String>) {
        crate::names::json_text_and_bytes(&self.0)
    }

    /// The path as UTF-8 text when it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuestPath({:?})", self.display())
    }
}

impl From<&str> for GuestPath {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl From<String> for GuestPath {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl From<&String> for GuestPath {
    fn from(text: &String) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for GuestPath {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for GuestPath {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<&Vec<u8>> for GuestPath {
    fn from(bytes: &Vec<u8>) -> Self {
        Self(bytes.clone())
    }
}
