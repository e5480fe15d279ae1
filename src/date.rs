//! Calendar days: what end-of-life rules and waiver expiry compare. One type for the whole
//! crate, `jiff`'s civil date; this module adds the strict `YYYY-MM-DD` reading that rule
//! packs, waiver files and `--as-of` use, and today's date in UTC.

pub use jiff::civil::Date;

/// A `YYYY-MM-DD` date that exists in the calendar (`2026-02-30` does not), exactly as
/// written: no sign, no space, no time part, two-digit month and day, and a year from
/// 0001 (ISO 8601 leaves year 0000 to prior agreement; no policy date lies there, so it
/// is taken for a mistake).
pub fn parse(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i16>().ok();
    let year = number(0..4).filter(|year| *year >= 1)?;
    let month = i8::try_from(number(5..7)?).ok()?;
    let day = i8::try_from(number(8..10)?).ok()?;
    Date::new(year, month, day).ok()
}

/// Today in UTC.
pub fn today_utc() -> Date {
    jiff::tz::Offset::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_iso_days_parse() {
        assert_eq!(parse("2026-11-22"), Date::new(2026, 11, 22).ok());
        assert_eq!(parse("2024-02-29"), Date::new(2024, 2, 29).ok());
        assert_eq!(parse("2028-02-29"), Date::new(2028, 2, 29).ok());
        assert_eq!(parse("0001-01-01"), Date::new(1, 1, 1).ok());
        assert_eq!(parse("9999-12-31"), Date::new(9999, 12, 31).ok());
        for bad in [
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "2026-1-5",
            "26-11-22",
            "2026-11-22T00:00",
            "2026/11/22",
            "",
            "+026-11-22",
            "+2026-11-22",
            "2026-2-3",
            "0000-01-01",
            "2026-11-22 ",
            " 2026-11-22",
            "2026-11-22 00:00",
            "2026-11-22T00:00:00Z",
            "2027-02-29",
            "2026-00-10",
            "2026-11-00",
            "２０２６-11-22",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("2026-11-22") < parse("2026-11-23"));
    }
}
