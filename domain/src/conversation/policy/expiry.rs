//! Expiry: an open or pending conversation whose customer has not written (or which has not
//! been opened) for the hours of its channel's chat-expiration rule is expired.

use chrono::{DateTime, Duration, Utc};

/// The instant before which the last activity makes a conversation stale, for a rule of
/// `hours`, at `now`.
pub fn cutoff(now: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    now - Duration::hours(i64::from(hours))
}

/// Whether a conversation last active at `last_activity` (the customer's last message, else
/// when it opened; none counts as stale) is stale at `cutoff`.
pub fn is_stale(last_activity: Option<DateTime<Utc>>, cutoff: DateTime<Utc>) -> bool {
    last_activity.is_none_or(|last| last < cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(0, 0).unwrap() + Duration::hours(i64::from(hour))
    }

    #[test]
    fn the_cutoff_is_the_rules_hours_before_now() {
        assert_eq!(cutoff(at(30), 24), at(6));
    }

    #[test]
    fn activity_before_the_cutoff_is_stale_and_at_or_after_it_is_not() {
        assert!(is_stale(Some(at(5)), at(6)));
        assert!(!is_stale(Some(at(6)), at(6)));
        assert!(!is_stale(Some(at(7)), at(6)));
    }

    #[test]
    fn no_activity_at_all_is_stale() {
        assert!(is_stale(None, at(6)));
    }
}
