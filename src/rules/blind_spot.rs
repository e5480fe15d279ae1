//! Places a scan could not read: a rule whose paths reach into one cannot pass.

/// A guest path whose contents are unknown, and why.
#[derive(Debug, Clone)]
pub struct BlindSpot {
    pub path: Vec<u8>,
    pub reason: String,
}
