//! Payloads as Meta sends them, for the parser's tests.

use serde_json::{json, Value};

use super::{parse_whatsapp, WhatsAppInbound};

/// The business number the fixtures' traffic belongs to.
pub(super) const PHONE_NUMBER_ID: &str = "106540352242922";

/// The customer (`wa_id`) who writes in the fixtures.
pub(super) const CUSTOMER: &str = "6281234567890";

/// A one-change payload carrying `messages`, as Meta sends it.
pub(super) fn envelope(messages: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": "15550783881",
                        "phone_number_id": PHONE_NUMBER_ID
                    },
                    "contacts": [{"profile": {"name": "Sari Wulandari"}, "wa_id": CUSTOMER}],
                    "messages": messages
                },
                "field": "messages"
            }]
        }]
    })
}

/// A message from the customer with the given type-specific fields merged in.
pub(super) fn message(fields: Value) -> Value {
    let mut m = json!({
        "from": CUSTOMER,
        "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDNzE2RjI4N0EwNjQ4QjEyQjUA",
        "timestamp": "1730231903"
    });
    if let (Value::Object(m), Value::Object(f)) = (&mut m, fields) {
        m.extend(f);
    }
    m
}

/// Parses one message and asserts nothing was ignored.
pub(super) fn single(fields: Value) -> WhatsAppInbound {
    let msg = message(fields);
    let batch = parse_whatsapp(&envelope(json!([msg.clone()])));
    assert!(batch.ignored.is_empty(), "ignored: {:?}", batch.ignored);
    assert_eq!(batch.changes.len(), 1);
    let change = &batch.changes[0];
    assert_eq!(change.messages.len(), 1);
    let inbound = change.messages[0].clone();
    assert_eq!(inbound.raw, msg);
    inbound
}

/// A status report about message `id` sent to [`CUSTOMER`].
pub(super) fn status(id: &str, status: &str, timestamp: &str) -> Value {
    json!({
        "id": id,
        "status": status,
        "timestamp": timestamp,
        "recipient_id": CUSTOMER,
        "conversation": {"id": "c5c6a4a1c1d2e3f4", "origin": {"type": "service"}},
        "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}
    })
}

/// A one-change payload carrying `statuses`.
pub(super) fn statuses_payload(statuses: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                "statuses": statuses
            },
            "field": "messages"
        }]}]
    })
}
