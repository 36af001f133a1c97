//! Timestamps for DATE constraints and metric buckets.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// Parses an ISO-8601 / RFC 3339 timestamp (`2024-05-01T12:00:00.000Z`,
/// offsets allowed) into milliseconds since the Unix epoch.
pub fn parse_timestamp_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    text.parse::<DateTime<Utc>>()
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats milliseconds since the epoch as RFC 3339 with milliseconds, in
/// UTC (the epoch for a time beyond the years RFC 3339 text can hold: for
/// clock readings; see [`try_format_millis`]).
pub fn format_millis(millis: i64) -> String {
    try_format_millis(millis).unwrap_or_else(|| try_format_millis(0).unwrap_or_default())
}

/// [`format_millis`], or `None` for a time that has no such text (beyond
/// the years -262143 to 262142).
pub fn try_format_millis(millis: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zulu_and_offsets() {
        let z = parse_timestamp_millis("2022-01-22T13:00:00.000Z").unwrap();
        let plus = parse_timestamp_millis("2022-01-22T15:00:00.000+02:00").unwrap();
        assert_eq!(z, plus);
        assert_eq!(parse_timestamp_millis("2022-01-22T13:00:00Z").unwrap(), z);
        assert!(parse_timestamp_millis("yesterday").is_none());
        assert_eq!(format_millis(z), "2022-01-22T13:00:00.000Z");
    }

    #[test]
    fn a_time_beyond_rfc_3339_years_has_no_text() {
        assert_eq!(try_format_millis(i64::MAX), None);
        assert_eq!(try_format_millis(i64::MIN), None);
        assert_eq!(
            try_format_millis(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
    }
}
