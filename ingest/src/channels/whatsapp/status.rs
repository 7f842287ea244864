//! Status reports about outbound messages (`value.statuses[]`): sent, delivered, read (and
//! `played`, reported as read) and failed with Meta's error.

use omnistream_domain::{MessageStatus, ProviderStatus};
use serde_json::Value;

use super::json::{integer, non_empty, unix_seconds};
use super::payload::WhatsAppStatus;

/// A status report about an outbound message; `None` when it lacks its message id, recipient
/// or timestamp, or its status is not one we track (`deleted`, …).
pub(super) fn parse_status(status: &Value) -> Option<WhatsAppStatus> {
    let provider_message_id = non_empty(status.get("id"))?;
    let recipient_id = non_empty(status.get("recipient_id"))?;
    let message_status = match status.get("status")?.as_str()? {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" | "played" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        _ => return None,
    };
    let occurred_at = unix_seconds(status.get("timestamp")?)?;
    let error = (message_status == MessageStatus::Failed)
        .then(|| status.pointer("/errors/0"))
        .flatten();
    let error_code = error.and_then(|e| e.get("code")).and_then(integer);
    let error_title = error
        .and_then(|e| non_empty(e.get("title")).or_else(|| non_empty(e.get("message"))))
        .map(str::to_owned);

    Some(WhatsAppStatus {
        recipient_id: recipient_id.to_owned(),
        status: ProviderStatus {
            provider_message_id: provider_message_id.to_owned(),
            status: message_status,
            occurred_at,
            error_code,
            error_title,
        },
        raw: status.clone(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use omnistream_domain::{MessageStatus, ProviderStatus};
    use serde_json::json;

    use crate::channels::whatsapp::fixtures::{status, statuses_payload, CUSTOMER};
    use crate::channels::whatsapp::parse_whatsapp;

    #[test]
    fn statuses_sent_delivered_read_played() {
        let batch = parse_whatsapp(&statuses_payload(json!([
            status("wamid.A", "sent", "1730231000"),
            status("wamid.A", "delivered", "1730231001"),
            status("wamid.A", "read", "1730231002"),
            status("wamid.B", "played", "1730231003"),
        ])));
        assert!(batch.ignored.is_empty());
        let change = &batch.changes[0];
        assert!(change.messages.is_empty());
        let got: Vec<_> = change
            .statuses
            .iter()
            .map(|s| {
                (
                    s.status.provider_message_id.as_str(),
                    s.status.status,
                    s.status.occurred_at.timestamp(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("wamid.A", MessageStatus::Sent, 1_730_231_000),
                ("wamid.A", MessageStatus::Delivered, 1_730_231_001),
                ("wamid.A", MessageStatus::Read, 1_730_231_002),
                ("wamid.B", MessageStatus::Read, 1_730_231_003),
            ]
        );
        for s in &change.statuses {
            assert_eq!(s.recipient_id, CUSTOMER);
            assert_eq!(s.status.error_code, None);
            assert_eq!(s.status.error_title, None);
        }
        assert_eq!(
            change.statuses[0].raw,
            status("wamid.A", "sent", "1730231000")
        );
    }

    #[test]
    fn failed_status_carries_the_error() {
        let failed = json!({
            "id": "wamid.FAILED",
            "status": "failed",
            "timestamp": "1730231100",
            "recipient_id": CUSTOMER,
            "errors": [{
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
            }]
        });
        let batch = parse_whatsapp(&statuses_payload(json!([failed.clone()])));
        let s = &batch.changes[0].statuses[0];
        assert_eq!(
            s.status,
            ProviderStatus {
                provider_message_id: "wamid.FAILED".into(),
                status: MessageStatus::Failed,
                occurred_at: DateTime::from_timestamp(1_730_231_100, 0).expect("in range"),
                error_code: Some(131026),
                error_title: Some("Message undeliverable".into()),
            }
        );
        assert_eq!(s.raw, failed);

        // Without a title the message is used; without errors both stay empty.
        let batch = parse_whatsapp(&statuses_payload(json!([
            {"id": "wamid.F2", "status": "failed", "timestamp": "1730231101", "recipient_id": CUSTOMER,
             "errors": [{"code": 131047, "message": "Re-engagement message"}]},
            {"id": "wamid.F3", "status": "failed", "timestamp": "1730231102", "recipient_id": CUSTOMER}
        ])));
        let statuses = &batch.changes[0].statuses;
        assert_eq!(statuses[0].status.error_code, Some(131047));
        assert_eq!(
            statuses[0].status.error_title.as_deref(),
            Some("Re-engagement message")
        );
        assert_eq!(statuses[1].status.status, MessageStatus::Failed);
        assert_eq!(statuses[1].status.error_code, None);
        assert_eq!(statuses[1].status.error_title, None);
    }

    #[test]
    fn unknown_status_is_ignored() {
        let deleted = status("wamid.D", "deleted", "1730231200");
        let batch = parse_whatsapp(&statuses_payload(json!([
            status("wamid.S", "sent", "1730231200"),
            deleted.clone(),
        ])));
        assert_eq!(batch.changes[0].statuses.len(), 1);
        assert_eq!(batch.ignored, vec![deleted]);
    }
}
