//! Parsing a WhatsApp Cloud API webhook payload into a [`WhatsAppBatch`].
//!
//! One POST may batch several `entry[]`, each with several `changes[]`, each carrying several
//! `messages[]` (inbound) and `statuses[]` (reports about outbound messages). Everything the
//! parser does not understand is kept, as received, in [`WhatsAppBatch::ignored`] so the raw
//! log loses nothing; malformed input never panics.

use serde_json::{json, Value};

use super::content::parse_content;
use super::json::{non_empty, unix_seconds};
use super::payload::{WhatsAppBatch, WhatsAppChange, WhatsAppInbound};
use super::status::parse_status;
use super::WHATSAPP_OBJECT;

/// The only change `field` that carries messages and statuses.
const MESSAGES_FIELD: &str = "messages";

/// Parses a WhatsApp Cloud API webhook payload.
///
/// A payload whose `object` is not `whatsapp_business_account`, or that has no `entry` array,
/// is ignored whole. Changes of other fields (`message_template_status_update`, …) and changes
/// with nothing usable are ignored whole; otherwise unusable messages and statuses are ignored
/// one by one.
pub fn parse_whatsapp(payload: &Value) -> WhatsAppBatch {
    let mut batch = WhatsAppBatch::default();
    let entries = payload
        .get("object")
        .and_then(Value::as_str)
        .filter(|object| *object == WHATSAPP_OBJECT)
        .and_then(|_| payload.get("entry"))
        .and_then(Value::as_array);
    let Some(entries) = entries else {
        batch.ignored.push(payload.clone());
        return batch;
    };
    for entry in entries {
        match entry.get("changes").and_then(Value::as_array) {
            Some(changes) => changes.iter().for_each(|c| parse_change(c, &mut batch)),
            None => batch.ignored.push(entry.clone()),
        }
    }
    batch
}

/// Adds one `entry[].changes[]` item to `batch`: as a change when it holds a usable message or
/// status, else whole to `ignored`.
fn parse_change(change: &Value, batch: &mut WhatsAppBatch) {
    let value = change
        .get("field")
        .and_then(Value::as_str)
        .filter(|field| *field == MESSAGES_FIELD)
        .and_then(|_| change.get("value"));
    let phone_number_id = value.and_then(|v| non_empty(v.pointer("/metadata/phone_number_id")));
    let (Some(value), Some(phone_number_id)) = (value, phone_number_id) else {
        batch.ignored.push(change.clone());
        return;
    };
    let contacts = value
        .get("contacts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();

    let mut rejected = Vec::new();
    let messages = parse_items(value, "messages", &mut rejected, |m| {
        parse_message(m, contacts)
    });
    let statuses = parse_items(value, "statuses", &mut rejected, parse_status);

    if messages.is_empty() && statuses.is_empty() {
        batch.ignored.push(change.clone());
        return;
    }
    batch.ignored.extend(rejected);
    batch.changes.push(WhatsAppChange {
        phone_number_id: phone_number_id.to_owned(),
        display_phone_number: non_empty(value.pointer("/metadata/display_phone_number"))
            .map(str::to_owned),
        messages,
        statuses,
    });
}

/// Parses every item of the array `value[key]`; items `parse` rejects (and a `key` that is not
/// an array) go to `rejected`.
fn parse_items<T>(
    value: &Value,
    key: &str,
    rejected: &mut Vec<Value>,
    parse: impl Fn(&Value) -> Option<T>,
) -> Vec<T> {
    let Some(field) = value.get(key) else {
        return Vec::new();
    };
    let Some(items) = field.as_array() else {
        rejected.push(field.clone());
        return Vec::new();
    };
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        match parse(item) {
            Some(p) => parsed.push(p),
            None => rejected.push(item.clone()),
        }
    }
    parsed
}

/// One customer message, named by the `contacts` profile of its sender; `None` when it lacks
/// its id, sender, timestamp or type, or its type's own object is malformed.
fn parse_message(message: &Value, contacts: &[Value]) -> Option<WhatsAppInbound> {
    let provider_message_id = non_empty(message.get("id"))?;
    let from = non_empty(message.get("from"))?;
    let sent_at = unix_seconds(message.get("timestamp")?)?;
    let kind = non_empty(message.get("type"))?;
    let mut content = parse_content(message, kind)?;

    if content.reply_to_provider_id.is_none() {
        content.reply_to_provider_id = non_empty(message.pointer("/context/id")).map(str::to_owned);
    }
    if let Some(referral) = message.get("referral").filter(|r| r.is_object()) {
        merge_data(&mut content.data, "referral", referral.clone());
    }
    let profile_name = contacts
        .iter()
        .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from))
        .and_then(|c| non_empty(c.pointer("/profile/name")))
        .map(str::to_owned);

    Some(WhatsAppInbound {
        provider_message_id: provider_message_id.to_owned(),
        from: from.to_owned(),
        profile_name,
        sent_at,
        content,
        raw: message.clone(),
    })
}

/// Sets `data[key] = value`, creating the object if needed.
fn merge_data(data: &mut Option<Value>, key: &str, value: Value) {
    match data {
        Some(Value::Object(map)) => {
            map.insert(key.to_owned(), value);
        }
        Some(other) => *data = Some(json!({ "value": other.take(), key: value })),
        None => *data = Some(json!({ key: value })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnistream_domain::{InboundContent, MessageStatus, MessageType};

    use crate::channels::whatsapp::fixtures::{
        envelope, message, single, status, statuses_payload, CUSTOMER, PHONE_NUMBER_ID,
    };

    #[test]
    fn real_pywa_payload_parses() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
        let payload: Value = serde_json::from_str(body).expect("valid JSON");
        let batch = parse_whatsapp(&payload);
        assert!(batch.ignored.is_empty());
        let change = &batch.changes[0];
        assert_eq!(change.phone_number_id, "277321005464405");
        assert_eq!(change.display_phone_number.as_deref(), Some("15550953877"));
        assert!(change.statuses.is_empty());
        let m = &change.messages[0];
        assert_eq!(
            m.provider_message_id,
            "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
        );
        assert_eq!(m.from, "972544401243");
        assert_eq!(m.profile_name.as_deref(), Some("PyWa Tests"));
        assert_eq!(m.sent_at.timestamp(), 1_730_231_903);
        assert_eq!(m.sent_at.to_rfc3339(), "2024-10-29T19:58:23+00:00");
        assert_eq!(
            m.content,
            InboundContent {
                message_type: MessageType::Text,
                content: Some("Hey there! I am using PyWa.".into()),
                media: None,
                reply_to_provider_id: None,
                data: None,
            }
        );
    }

    #[test]
    fn context_reply_and_forwarded() {
        let m = single(json!({
            "context": {"from": "15550783881", "id": "wamid.QUOTED"},
            "type": "text", "text": {"body": "yang ini"}
        }));
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.QUOTED")
        );

        let m = single(json!({
            "context": {"forwarded": true, "frequently_forwarded": false},
            "type": "text", "text": {"body": "diteruskan"}
        }));
        assert_eq!(m.content.reply_to_provider_id, None);
        assert_eq!(m.content.content.as_deref(), Some("diteruskan"));
    }

    #[test]
    fn referral_is_merged_into_data() {
        let referral = json!({
            "source_url": "https://fb.me/3cr4Wqqkv",
            "source_id": "120226305854810726",
            "source_type": "ad",
            "headline": "Promo Kopi 11.11",
            "body": "Diskon 50% hari ini",
            "media_type": "image",
            "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/ad.jpg",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-ZABe0PP-Kp-sVTGv"
        });
        let m = single(
            json!({"referral": referral.clone(), "type": "text", "text": {"body": "Info promo"}}),
        );
        assert_eq!(m.content.message_type, MessageType::Text);
        assert_eq!(m.content.data, Some(json!({"referral": referral.clone()})));

        let m = single(json!({
            "referral": referral.clone(),
            "type": "location",
            "location": {"latitude": 1.5, "longitude": 2.5}
        }));
        assert_eq!(
            m.content.data,
            Some(json!({"latitude": 1.5, "longitude": 2.5, "referral": referral}))
        );
    }

    #[test]
    fn merge_data_wraps_a_non_object() {
        let mut data = Some(json!("scalar"));
        merge_data(&mut data, "referral", json!({"a": 1}));
        assert_eq!(data, Some(json!({"value": "scalar", "referral": {"a": 1}})));
    }

    #[test]
    fn profile_name_matches_sender_only() {
        let mut payload = envelope(json!([message(
            json!({"type": "text", "text": {"body": "hi"}})
        )]));
        payload["entry"][0]["changes"][0]["value"]["contacts"] =
            json!([{"profile": {"name": "Someone Else"}, "wa_id": "6280000000000"}]);
        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes[0].messages[0].profile_name, None);
    }

    #[test]
    fn batch_with_messages_statuses_and_two_entries() {
        let payload = json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                        "contacts": [
                            {"profile": {"name": "Sari Wulandari"}, "wa_id": CUSTOMER},
                            {"profile": {"name": "Budi Santoso"}, "wa_id": "6285711112222"}
                        ],
                        "messages": [
                            {"from": CUSTOMER, "id": "wamid.M1", "timestamp": "1730231903",
                             "type": "text", "text": {"body": "Pesanan #1234?"}},
                            {"from": "6285711112222", "id": "wamid.M2", "timestamp": "1730231905",
                             "type": "image", "image": {"id": "999", "mime_type": "image/png", "sha256": "x="}}
                        ],
                        "statuses": [
                            status("wamid.OUT1", "delivered", "1730231904"),
                            status("wamid.OUT2", "read", "1730231906")
                        ]
                    },
                    "field": "messages"
                }]},
                {"id": "102290129340399", "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "200000000000001"},
                        "contacts": [{"profile": {"name": "Rina"}, "wa_id": "6281300000000"}],
                        "messages": [{"from": "6281300000000", "id": "wamid.M3", "timestamp": 1730231910,
                                      "type": "text", "text": {"body": "Halo"}}]
                    },
                    "field": "messages"
                }]}
            ]
        });
        let batch = parse_whatsapp(&payload);
        assert!(batch.ignored.is_empty());
        assert_eq!(batch.changes.len(), 2);

        let first = &batch.changes[0];
        assert_eq!(first.phone_number_id, PHONE_NUMBER_ID);
        let ids: Vec<_> = first
            .messages
            .iter()
            .map(|m| m.provider_message_id.as_str())
            .collect();
        assert_eq!(ids, ["wamid.M1", "wamid.M2"]);
        let names: Vec<_> = first
            .messages
            .iter()
            .map(|m| m.profile_name.as_deref())
            .collect();
        assert_eq!(names, [Some("Sari Wulandari"), Some("Budi Santoso")]);
        assert_eq!(first.messages[1].content.message_type, MessageType::Image);
        let statuses: Vec<_> = first
            .statuses
            .iter()
            .map(|s| (s.status.provider_message_id.as_str(), s.status.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("wamid.OUT1", MessageStatus::Delivered),
                ("wamid.OUT2", MessageStatus::Read)
            ]
        );

        let second = &batch.changes[1];
        assert_eq!(second.phone_number_id, "200000000000001");
        assert_eq!(second.display_phone_number.as_deref(), Some("15550001111"));
        assert_eq!(second.messages[0].profile_name.as_deref(), Some("Rina"));
        // A numeric timestamp is accepted too.
        assert_eq!(second.messages[0].sent_at.timestamp(), 1_730_231_910);
    }

    #[test]
    fn template_status_update_is_ignored_whole() {
        let template_change = json!({
            "value": {
                "event": "APPROVED",
                "message_template_id": 1689556908129832_i64,
                "message_template_name": "order_confirmation",
                "message_template_language": "id",
                "reason": "NONE"
            },
            "field": "message_template_status_update"
        });
        let mut payload = envelope(json!([message(
            json!({"type": "text", "text": {"body": "hi"}})
        )]));
        payload["entry"][0]["changes"]
            .as_array_mut()
            .expect("changes")
            .push(template_change.clone());
        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.changes[0].messages.len(), 1);
        assert_eq!(batch.ignored, vec![template_change]);
    }

    #[test]
    fn other_objects_are_ignored_whole() {
        let page = json!({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": []}]});
        let batch = parse_whatsapp(&page);
        assert!(batch.changes.is_empty());
        assert_eq!(batch.ignored, vec![page]);
    }

    #[test]
    fn garbage_never_panics() {
        let garbage = [
            Value::Null,
            json!(42),
            json!("whatsapp_business_account"),
            json!([]),
            json!({}),
            json!({"object": 7, "entry": []}),
            json!({"object": "whatsapp_business_account"}),
            json!({"object": "whatsapp_business_account", "entry": {"changes": []}}),
            json!({"object": "whatsapp_business_account", "entry": [null, 1, "x", {}, {"changes": "no"}]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [null, 3, [], {}]}]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [
                {"field": "messages"},
                {"field": "messages", "value": null},
                {"field": "messages", "value": "text"},
                {"field": "messages", "value": {"messages": []}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": 5}}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": ""}}},
                {"field": ["messages"], "value": {}}
            ]}]}),
        ];
        for payload in &garbage {
            let batch = parse_whatsapp(payload);
            assert!(batch.changes.is_empty(), "{payload}");
            assert!(!batch.ignored.is_empty(), "{payload}");
        }
        // An entry list that is empty is simply nothing.
        let empty = parse_whatsapp(&json!({"object": "whatsapp_business_account", "entry": []}));
        assert_eq!(empty, WhatsAppBatch::default());
    }

    #[test]
    fn malformed_messages_and_statuses_go_to_ignored() {
        let bad_messages = vec![
            Value::Null,
            json!("wamid.X"),
            json!({}),
            message(json!({"type": "text"})),
            message(json!({"type": "text", "text": {"body": 12}})),
            message(json!({"type": "text", "text": "plain"})),
            message(json!({"type": "image"})),
            message(json!({"type": "image", "image": "id"})),
            message(json!({"type": "location", "location": [1, 2]})),
            message(json!({"type": "contacts", "contacts": {"name": "x"}})),
            message(json!({"type": "interactive", "interactive": {}})),
            message(json!({"type": "interactive", "interactive": {"type": "button_reply"}})),
            message(
                json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": 1, "title": "t"}}}),
            ),
            message(json!({"type": "button", "button": {"payload": "p"}})),
            message(json!({"type": "reaction", "reaction": {"emoji": "x"}})),
            message(json!({"type": "order", "order": "o"})),
            message(json!({"type": "system", "system": "s"})),
            message(json!({"type": 3})),
            message(json!({"text": {"body": "no type"}})),
            json!({"from": CUSTOMER, "timestamp": "1", "type": "text", "text": {"body": "no id"}}),
            json!({"id": "wamid.Y", "timestamp": "1", "type": "text", "text": {"body": "no from"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "type": "text", "text": {"body": "no ts"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "timestamp": "soon", "type": "text", "text": {"body": "x"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "timestamp": 1.5, "type": "text", "text": {"body": "x"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "timestamp": "99999999999999999", "type": "text", "text": {"body": "x"}}),
            json!({"id": ["wamid"], "from": CUSTOMER, "timestamp": "1", "type": "text", "text": {"body": "x"}}),
        ];
        let bad_statuses = vec![
            Value::Null,
            json!({"status": "sent", "timestamp": "1", "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "sent", "timestamp": "1"}),
            json!({"id": "wamid.S", "status": 1, "timestamp": "1", "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "sent", "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "sent", "timestamp": {}, "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "failed", "timestamp": "1", "recipient_id": CUSTOMER, "errors": "boom"}),
        ];
        let good = message(json!({"type": "text", "text": {"body": "ok"}}));
        let mut messages = bad_messages.clone();
        messages.push(good.clone());
        let mut payload = envelope(Value::Array(messages));
        payload["entry"][0]["changes"][0]["value"]["statuses"] = Value::Array(bad_statuses.clone());

        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.changes[0].messages.len(), 1);
        assert_eq!(batch.changes[0].messages[0].raw, good);
        // A failed status whose `errors` is not an array is still a failure, without details.
        assert_eq!(batch.changes[0].statuses.len(), 1);
        assert_eq!(batch.changes[0].statuses[0].status.error_code, None);
        let mut expected = bad_messages;
        expected.extend(bad_statuses[..bad_statuses.len() - 1].iter().cloned());
        assert_eq!(batch.ignored, expected);
    }

    #[test]
    fn change_with_nothing_usable_is_ignored_whole() {
        let payload = envelope(json!([{"id": "wamid.only-garbage"}]));
        let batch = parse_whatsapp(&payload);
        assert!(batch.changes.is_empty());
        assert_eq!(
            batch.ignored,
            vec![payload["entry"][0]["changes"][0].clone()]
        );
    }

    #[test]
    fn non_array_messages_field_is_ignored() {
        let mut payload = statuses_payload(json!([status("wamid.S", "sent", "1730231000")]));
        payload["entry"][0]["changes"][0]["value"]["messages"] = json!({"id": "not-a-list"});
        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes[0].statuses.len(), 1);
        assert_eq!(batch.ignored, vec![json!({"id": "not-a-list"})]);
    }
}
