//! Reading the loosely typed values of Meta's JSON: strings that may be empty, integers that
//! may be strings, timestamps in unix seconds.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A non-empty string value.
pub(super) fn non_empty(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An integer given as a JSON number or a decimal string.
pub(super) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Meta's timestamps: unix seconds, usually as a string.
pub(super) fn unix_seconds(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(integer(value)?, 0)
}
