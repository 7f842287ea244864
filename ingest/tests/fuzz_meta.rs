//! Property-based fuzzing of the Meta webhook parser and signature check: whatever bytes or
//! JSON arrive, nothing panics, every message the parser keeps is well formed, and a body signed
//! with the app secret always verifies while any other body does not.

use hmac::{Hmac, Mac};
use omnistream_domain::ReceiptBound;
use omnistream_ingest::channels::meta::verify_signature;
use omnistream_ingest::channels::meta_messaging::{parse_messaging, MessagingKind};
use omnistream_ingest::channels::whatsapp::{parse_whatsapp, WHATSAPP_OBJECT};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::Sha256;

/// Any JSON value, nested a few levels, with keys that Meta payloads use so that random trees
/// reach deep into the parser.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("object".to_owned()),
        Just("entry".to_owned()),
        Just("changes".to_owned()),
        Just("field".to_owned()),
        Just("value".to_owned()),
        Just("messages".to_owned()),
        Just("statuses".to_owned()),
        Just("metadata".to_owned()),
        Just("type".to_owned()),
        Just("id".to_owned()),
        Just("timestamp".to_owned()),
        "[a-z_]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("whatsapp_business_account")),
        Just(json!("messages")),
        Just(json!("text")),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A realistic WhatsApp payload of one message of `kind`, one of whose fields is then replaced
/// by an arbitrary value.
fn mutated_payload() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        "text",
        "image",
        "video",
        "audio",
        "voice",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "unsupported",
        "ephemeral",
    ]);
    let pointers = prop::sample::select(vec![
        "/object",
        "/entry",
        "/entry/0/changes",
        "/entry/0/changes/0/field",
        "/entry/0/changes/0/value",
        "/entry/0/changes/0/value/metadata",
        "/entry/0/changes/0/value/metadata/phone_number_id",
        "/entry/0/changes/0/value/contacts",
        "/entry/0/changes/0/value/messages",
        "/entry/0/changes/0/value/messages/0",
        "/entry/0/changes/0/value/messages/0/id",
        "/entry/0/changes/0/value/messages/0/from",
        "/entry/0/changes/0/value/messages/0/timestamp",
        "/entry/0/changes/0/value/messages/0/type",
        "/entry/0/changes/0/value/messages/0/context",
        "/entry/0/changes/0/value/messages/0/payload",
        "/entry/0/changes/0/value/statuses",
        "/entry/0/changes/0/value/statuses/0/status",
        "/entry/0/changes/0/value/statuses/0/timestamp",
        "/entry/0/changes/0/value/statuses/0/errors",
    ]);
    (kinds, pointers, any_json()).prop_map(|(kind, pointer, replacement)| {
        let mut payload = json!({
            "object": WHATSAPP_OBJECT,
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": "100"},
                "contacts": [{"profile": {"name": "Maya"}, "wa_id": "6281"}],
                "messages": [{"from": "6281", "id": "wamid.X", "timestamp": "1730231903",
                              "type": kind, "context": {"id": "wamid.prev"},
                              "payload": {"anything": [1, 2, 3]}}],
                "statuses": [{"id": "wamid.Y", "recipient_id": "6281", "status": "failed",
                              "timestamp": "1730231904",
                              "errors": [{"code": 131047, "title": "Re-engagement message"}]}],
            }}]}],
        });
        if let Some(slot) = payload.pointer_mut(pointer) {
            *slot = replacement;
        }
        payload
    })
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(payload in any_json()) {
        let batch = parse_whatsapp(&payload);
        prop_assert!(batch.changes.iter().all(|c| !c.phone_number_id.is_empty()));
    }

    #[test]
    fn mutated_payloads_never_panic_and_keep_only_well_formed_messages(payload in mutated_payload()) {
        let batch = parse_whatsapp(&payload);
        for change in &batch.changes {
            prop_assert!(!change.phone_number_id.is_empty());
            prop_assert!(!change.messages.is_empty() || !change.statuses.is_empty());
            for message in &change.messages {
                prop_assert!(!message.provider_message_id.is_empty());
                prop_assert!(!message.from.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_parsed_as_json_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(payload) = serde_json::from_slice::<Value>(&bytes) {
            parse_whatsapp(&payload);
        }
    }

    #[test]
    fn a_body_signed_with_the_secret_verifies(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let header = sign(&secret, &body);
        prop_assert!(verify_signature(&[&secret], &body, Some(&header)));
        prop_assert!(verify_signature(&[b"other", &secret], &body, Some(&header)), "rotation");
        let mut tampered = body.clone();
        tampered.push(b' ');
        prop_assert!(!verify_signature(&[&secret], &tampered, Some(&header)));
    }

    #[test]
    fn arbitrary_signature_headers_never_verify_or_panic(
        header in ".{0,100}",
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        prop_assert!(!verify_signature(&[b"secret"], &body, Some(&header)));
        prop_assert!(!verify_signature(&[], &body, Some(&header)));
    }
}

/// A Messenger or Instagram payload of one customer event, one of whose fields is then replaced
/// by an arbitrary value.
fn mutated_messaging_payload() -> impl Strategy<Value = Value> {
    let events = prop::sample::select(vec![
        json!({"message": {"mid": "m_1", "text": "hi"}}),
        json!({"message": {"mid": "m_2", "attachments": [{"type": "image", "payload": {"url": "https://x/a.jpg"}}]}}),
        json!({"message": {"mid": "m_3", "text": "Red", "quick_reply": {"payload": "RED"}}}),
        json!({"message": {"mid": "m_4", "text": "story", "reply_to": {"story": {"id": "S", "url": "https://x/s"}}}}),
        json!({"message": {"mid": "m_5", "attachments": [{"type": "share", "payload": {"url": "https://x"}}]}}),
        json!({"postback": {"mid": "m_6", "title": "Start", "payload": "START"}}),
        json!({"message": {"mid": "m_7", "text": "echo", "is_echo": true}}),
        json!({"read": {"watermark": 1}}),
        json!({"read": {"mid": "m_out"}}),
        json!({"delivery": {"mids": ["m_out", ""], "watermark": 2}}),
        json!({"reaction": {"mid": "m_out", "action": "react", "emoji": "x"}}),
        json!({"message": {"mid": "m_8", "attachments": [{"type": "story_mention", "payload": {"url": "https://x/m"}}]}}),
    ]);
    let pointers = prop::sample::select(vec![
        "/entry/0/messaging/0/sender",
        "/entry/0/messaging/0/sender/id",
        "/entry/0/messaging/0/recipient/id",
        "/entry/0/messaging/0/timestamp",
        "/entry/0/messaging/0/message",
        "/entry/0/messaging/0/message/mid",
        "/entry/0/messaging/0/message/attachments",
        "/entry/0/messaging/0/postback",
        "/entry/0/messaging",
        "/entry",
    ]);
    let objects = prop::sample::select(vec!["page", "instagram"]);
    (objects, events, pointers, any_json()).prop_map(|(object, body, pointer, replacement)| {
        let mut event = json!({"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 1_700_000_000_000_i64});
        for (key, value) in body.as_object().into_iter().flatten() {
            event[key] = value.clone();
        }
        let mut payload = json!({"object": object, "entry": [{"id": "PAGE", "messaging": [event]}]});
        if let Some(slot) = payload.pointer_mut(pointer) {
            *slot = replacement;
        }
        payload
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn messaging_payloads_never_panic_and_keep_only_well_formed_messages(
        payload in prop_oneof![mutated_messaging_payload(), any_json()],
    ) {
        for event in parse_messaging(&payload) {
            prop_assert!(!event.customer_id.is_empty());
            prop_assert!(!event.business_id.is_empty());
            match &event.kind {
                MessagingKind::Customer { provider_message_id, .. }
                | MessagingKind::Echo { provider_message_id, .. } => {
                    prop_assert!(!provider_message_id.is_empty());
                }
                MessagingKind::Receipt { up_to: ReceiptBound::Message(mid), .. } => {
                    prop_assert!(!mid.is_empty());
                }
                MessagingKind::Receipt { .. } => {}
            }
        }
    }
}
