//! The realtime stream's query, and its event ids: `<transaction id>-<position>-<index>`, the
//! position of a public event in the log, which a client sends back to resume.

use omnistream_projections::LogCursor;
use serde::Deserialize;
use utoipa::IntoParams;

/// Where to resume.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The id of the last event seen (as `Last-Event-ID`); absent: only new events.
    pub(super) after: Option<String>,
}

/// A position in the stream: after public event `index` of the log event at `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StreamPosition {
    /// The log event.
    pub(super) cursor: LogCursor,
    /// Its last public event sent (`usize::MAX`: all of them).
    pub(super) index: usize,
}

/// The id of public event `index` of the log event at `cursor`.
pub(super) fn event_id(cursor: LogCursor, index: usize) -> String {
    format!("{}-{}-{index}", cursor.transaction_id, cursor.position)
}

/// Reads an event id ([`event_id`]) back into its position.
pub(super) fn parse_position(raw: &str) -> Option<StreamPosition> {
    let mut parts = raw.trim().split('-');
    let transaction_id = parts.next()?.parse().ok()?;
    let position = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(StreamPosition {
        cursor: LogCursor {
            transaction_id,
            position,
        },
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_reads_back_as_its_position() {
        let cursor = LogCursor {
            transaction_id: 812,
            position: 40,
        };
        assert_eq!(
            parse_position(&event_id(cursor, 2)),
            Some(StreamPosition { cursor, index: 2 })
        );
        assert_eq!(parse_position("812-40"), None);
        assert_eq!(parse_position("812-40-2-1"), None);
    }
}
