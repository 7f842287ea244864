//! Inbox actions, notes, transfers, contacts, search, audit, visibility and tenant isolation.

use std::time::Duration;

use omnistream_gateway::app::Roles;
use omnistream_tests::fake_meta::whatsapp_text_webhook;
use omnistream_tests::sse::SseClient;
use omnistream_tests::{Member, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::whatsapp::{spine, Spine};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Delivers one customer message and returns the conversation once the inbox shows it.
async fn customer_writes(
    app: &TestApp,
    viewer: &Member,
    phone_number_id: &str,
    wa_id: &str,
    wamid: &str,
    text: &str,
) -> Value {
    let webhook = whatsapp_text_webhook(phone_number_id, wa_id, "Customer", wamid, text, now());
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );
    let path = "/api/conversations?per_page=100";
    let inbox = app
        .eventually(&viewer.client(app), path, |b| {
            b["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["contact"]["phone_number"] == wa_id && c["last_message_preview"] == text)
        })
        .await;
    inbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact"]["phone_number"] == wa_id)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn agents_assign_tag_resolve_read_and_take_over_conversations() {
    let Spine { app, admin, .. } = spine("200000000000001").await;
    let conversation = customer_writes(
        &app,
        &admin,
        "200000000000001",
        "62800001",
        "wamid.A1",
        "hello",
    )
    .await;
    let id = conversation["id"].as_str().unwrap();
    let api = admin.client(&app);
    let agent = app.create_agent(&admin, "agent", json!({})).await;

    let assigned = api
        .patch(
            &format!("/api/conversations/{id}/assign"),
            json!({"agent_id": agent.agent_id}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(assigned.body["assigned_agent_id"], agent.agent_id.as_str());
    assert_eq!(assigned.body["assigned_agent_name"], "agent agent");
    let invalid = api
        .patch(
            &format!("/api/conversations/{id}/assign"),
            json!({"agent_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(invalid.error_code(), "invalid_agent");

    let tags = api
        .patch(
            &format!("/api/conversations/{id}/tags"),
            json!({"tags": [" VIP ", "vip", "Complaint"]}),
        )
        .await;
    assert_eq!(tags.body["tags"], json!(["vip", "complaint"]));
    let too_long = api
        .patch(
            &format!("/api/conversations/{id}/tags"),
            json!({"tags": ["x".repeat(51)]}),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);

    let resolved = api
        .patch(
            &format!("/api/conversations/{id}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(resolved.body["status"], "resolved");
    assert!(resolved.body["resolved_at"].is_string());
    let expired = api
        .patch(
            &format!("/api/conversations/{id}/status"),
            json!({"status": "expired"}),
        )
        .await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);

    let read = api
        .post(&format!("/api/conversations/{id}/read"), json!({}))
        .await;
    assert_eq!(read.body, json!({"conversation_id": id, "unread_count": 0}));
    let logged = api
        .get(&format!(
            "/api/activity-logs?entity_type=conversation&entity_id={id}"
        ))
        .await
        .body;
    let actions: Vec<(&str, &Value)> = logged["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), &r["details"]))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "conversation.status_changed",
                &json!({"from": "open", "to": "resolved"})
            ),
            (
                "conversation.tags_updated",
                &json!({"tags": ["vip", "complaint"]})
            ),
            (
                "conversation.assigned",
                &json!({"from": null, "to": agent.agent_id})
            ),
        ],
        "newest first; refused requests and reads leave no row"
    );
    let messages = api
        .get(&format!("/api/conversations/{id}/messages"))
        .await
        .body;
    assert_eq!(
        messages["data"][0]["status"], "read",
        "inbound messages are marked read"
    );

    // A new message reopens the resolved conversation.
    customer_writes(
        &app,
        &admin,
        "200000000000001",
        "62800001",
        "wamid.A2",
        "still there?",
    )
    .await;
    let reopened = api.get(&format!("/api/conversations/{id}")).await.body;
    assert_eq!(reopened["status"], "open");
    assert!(reopened["resolved_at"].is_null());

    // Another plain agent cannot take it from the assignee; a supervisor can.
    let other = app.create_agent(&admin, "agent", json!({})).await;
    let hidden = other
        .client(&app)
        .post(&format!("/api/conversations/{id}/takeover"), json!({}))
        .await;
    assert_eq!(
        hidden.status,
        StatusCode::NOT_FOUND,
        "assigned to someone else: not visible to a plain agent"
    );
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    let taken = supervisor
        .client(&app)
        .post(&format!("/api/conversations/{id}/takeover"), json!({}))
        .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    assert_eq!(
        taken.body["assigned_agent_id"],
        supervisor.agent_id.as_str()
    );
    let history = api
        .get(&format!("/api/conversations/{id}/transfers"))
        .await
        .body;
    assert_eq!(history[0]["type"], "takeover");
    assert_eq!(history[0]["from_agent_id"], agent.agent_id.as_str());

    let mine = agent
        .client(&app)
        .get("/api/conversations?assigned_agent_id=me")
        .await
        .body;
    assert_eq!(mine["total"], 0);
    let filtered = api
        .get("/api/conversations?tag=vip&status=open&channel=whatsapp&q=62800")
        .await
        .body;
    assert_eq!(filtered["total"], 1);
    assert_eq!(
        api.get("/api/conversations?status=archived").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn transfers_notes_bulk_and_expiry() {
    let Spine { app, admin, .. } = spine("200000000000002").await;
    let api = admin.client(&app);
    let first = customer_writes(
        &app,
        &admin,
        "200000000000002",
        "62800011",
        "wamid.B1",
        "one",
    )
    .await;
    let second = customer_writes(
        &app,
        &admin,
        "200000000000002",
        "62800012",
        "wamid.B2",
        "two",
    )
    .await;
    let id = first["id"].as_str().unwrap();
    let division = api
        .post("/api/divisions", json!({"name": "Billing"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outsider = app.create_agent(&admin, "agent", json!({})).await;
    let member = app
        .create_agent(&admin, "agent", json!({"division_ids": [division]}))
        .await;

    let wrong = api
        .post(
            &format!("/api/conversations/{id}/transfer"),
            json!({"to_agent_id": outsider.agent_id, "to_division_id": division}),
        )
        .await;
    assert_eq!(wrong.error_code(), "agent_not_in_division");
    let empty = api
        .post(&format!("/api/conversations/{id}/transfer"), json!({}))
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let transfer = api
        .post(
            &format!("/api/conversations/{id}/transfer"),
            json!({"to_agent_id": member.agent_id, "to_division_id": division, "reason": "billing question"}),
        )
        .await;
    assert_eq!(transfer.status, StatusCode::CREATED, "{}", transfer.body);
    assert_eq!(transfer.body["type"], "transfer");
    assert_eq!(transfer.body["reason"], "billing question");
    let moved = member
        .client(&app)
        .get(&format!("/api/conversations/{id}"))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "the new assignee sees it");
    assert_eq!(moved.body["division_id"], division.as_str());

    let note = member
        .client(&app)
        .post(
            &format!("/api/conversations/{id}/notes"),
            json!({"content": "Customer is upset"}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.body);
    let note_id = note.body["id"].as_str().unwrap();
    let notes = api
        .get(&format!("/api/conversations/{id}/notes"))
        .await
        .body;
    assert_eq!(notes[0]["agent_name"], "agent agent");
    let edit_by_admin = api
        .patch(
            &format!("/api/conversations/{id}/notes/{note_id}"),
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(edit_by_admin.error_code(), "not_note_author");
    let elsewhere = api
        .patch(
            &format!(
                "/api/conversations/{}/notes/{note_id}",
                second["id"].as_str().unwrap()
            ),
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "a note of another conversation"
    );
    let edited = member
        .client(&app)
        .patch(
            &format!("/api/conversations/{id}/notes/{note_id}"),
            json!({"content": "Calmer now"}),
        )
        .await;
    assert_eq!(edited.body["content"], "Calmer now");
    assert_eq!(
        api.delete(&format!("/api/conversations/{id}/notes/{note_id}"))
            .await
            .status,
        StatusCode::OK,
        "managers delete any note"
    );
    // The conversation's history tells the whole story of the note.
    let history = api
        .get(&format!("/api/conversations/{id}/events?per_page=100"))
        .await
        .body;
    let note_events: Vec<(&str, &str)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"].as_str().unwrap().starts_with("Note"))
        .map(|e| {
            (
                e["event_type"].as_str().unwrap(),
                e["metadata"]["actor_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        note_events,
        [
            ("NoteAdded", member.agent_id.as_str()),
            ("NoteEdited", member.agent_id.as_str()),
            ("NoteDeleted", admin.agent_id.as_str())
        ]
    );
    assert_eq!(
        api.get(&format!("/api/conversations/{id}/notes"))
            .await
            .body,
        json!([])
    );

    let bulk = api
        .post(
            "/api/conversations/bulk",
            json!({"conversation_ids": [id, second["id"], uuid::Uuid::new_v4()], "action": "add_tags", "tags": ["Promo"]}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert_eq!(bulk.body["requested"], 3);
    assert_eq!(bulk.body["updated"], 2);
    assert_eq!(bulk.body["failed"][0]["error"]["code"], "not_found");
    assert_eq!(
        api.get("/api/conversations?tag=promo").await.body["total"],
        2
    );

    // Expiry: a 1-hour rule and a customer who last wrote 2 hours ago (provider timestamp).
    assert_eq!(
        api.send(
            reqwest::Method::PUT,
            "/api/chat-expiration-rules/whatsapp",
            Some(json!({"expiration_hours": 1}))
        )
        .await
        .status,
        StatusCode::OK
    );
    let stale = whatsapp_text_webhook(
        "200000000000002",
        "62800013",
        "Old",
        "wamid.B3",
        "old news",
        now() - 7200,
    );
    app.post_meta_webhook(&stale).await;
    app.eventually(&api, "/api/conversations", |b| b["total"] == 3)
        .await;
    let expired = api
        .post("/api/conversations/expire", json!({"channel": "whatsapp"}))
        .await;
    assert_eq!(expired.status, StatusCode::OK, "{}", expired.body);
    assert_eq!(expired.body["expired"], 1);
    assert_eq!(
        api.get("/api/conversations?status=expired").await.body["total"],
        1
    );
    let rules = api.get("/api/chat-expiration-rules").await.body;
    assert_eq!(rules[0]["expiration_hours"], 1);

    // Each of those actions left its activity row, derived from its event, with its actor and
    // where the request came from, readable as soon as the action answered.
    let logs = api.get("/api/activity-logs?per_page=100").await.body;
    let rows: Vec<(&str, &str, &str)> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["entity_type"].as_str(), Some("conversation" | "note")))
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["entity_id"].as_str().unwrap(),
                r["agent_id"].as_str().unwrap(),
            )
        })
        .rev()
        .collect();
    let expired_id = expired.body["conversation_ids"][0].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    assert_eq!(
        rows,
        [
            ("conversation.transferred", id, admin.agent_id.as_str()),
            ("note.created", note_id, member.agent_id.as_str()),
            ("note.updated", note_id, member.agent_id.as_str()),
            ("note.deleted", note_id, admin.agent_id.as_str()),
            ("conversation.bulk_add_tags", id, admin.agent_id.as_str()),
            (
                "conversation.bulk_add_tags",
                second_id,
                admin.agent_id.as_str()
            ),
            (
                "conversation.status_changed",
                expired_id,
                admin.agent_id.as_str()
            ),
        ]
    );
    let expiry = &logs["data"][0];
    assert_eq!(expiry["details"], json!({"from": "open", "to": "expired"}));
    assert_eq!(expiry["agent_name"], "Admin");
    assert_eq!(expiry["ip_address"], "127.0.0.1");
    let transfer_row = api
        .get(&format!(
            "/api/activity-logs?action=conversation.transferred&entity_id={id}"
        ))
        .await
        .body;
    assert_eq!(transfer_row["total"], 1);
    assert_eq!(
        transfer_row["data"][0]["details"],
        json!({"to_agent_id": member.agent_id, "to_division_id": division})
    );
}

#[tokio::test]
async fn contacts_search_audit_and_starting_a_conversation() {
    let Spine {
        app,
        fake,
        admin,
        account,
    } = spine("200000000000003").await;
    let api = admin.client(&app);
    let conversation = customer_writes(
        &app,
        &admin,
        "200000000000003",
        "62800021",
        "wamid.C1",
        "where is my parcel",
    )
    .await;
    let id = conversation["id"].as_str().unwrap();
    let contact_id = conversation["contact_id"].as_str().unwrap();

    let contact = api
        .patch(
            &format!("/api/contacts/{contact_id}"),
            json!({"name": "Ibu Rina", "email": "Rina@Example.com", "tags": ["Gold"]}),
        )
        .await;
    assert_eq!(contact.status, StatusCode::OK, "{}", contact.body);
    assert_eq!(contact.body["email"], "rina@example.com");
    assert_eq!(contact.body["wa_id"], "62800021");
    assert_eq!(
        api.get("/api/contacts?q=rina&channel=whatsapp&tag=gold")
            .await
            .body["total"],
        1
    );
    let theirs = api
        .get(&format!("/api/contacts/{contact_id}/conversations"))
        .await
        .body;
    assert_eq!(theirs["data"][0]["id"], id);
    assert_eq!(
        api.get(&format!("/api/conversations/{id}")).await.body["contact"]["name"],
        "Ibu Rina"
    );

    let found = api.get("/api/messages/search?q=parc").await.body;
    assert_eq!(found["total"], 1, "substring search");
    assert_eq!(found["data"][0]["contact_name"], "Ibu Rina");
    assert_eq!(
        api.get("/api/messages/search?q=parcel&direction=outbound")
            .await
            .body["total"],
        0
    );
    assert_eq!(
        api.get("/api/messages/search?q=x").await.status,
        StatusCode::BAD_REQUEST
    );
    let hostile = api.get("/api/messages/search?q=%27%3A*%7C%25_").await;
    assert_eq!(
        hostile.status,
        StatusCode::OK,
        "input is matched as text, never as syntax"
    );
    assert_eq!(hostile.body["total"], 0);
    assert_eq!(
        api.get("/api/messages/search?q=RCEL").await.body["total"],
        1,
        "a case-insensitive substring"
    );

    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let closed = app
        .http
        .patch(format!("{}/api/conversations/{id}/status", app.base_url))
        .bearer_auth(&admin.token)
        .header("x-request-id", "audit-trace-42")
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::OK);
    let history = api
        .get(&format!("/api/conversations/{id}/events"))
        .await
        .body;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ConversationOpened",
            "InboundMessageReceived",
            "StatusChanged"
        ]
    );
    assert_eq!(history["data"][2]["metadata"]["actor_type"], "agent");
    assert_eq!(
        history["data"][2]["metadata"]["actor_id"],
        admin.agent_id.as_str()
    );
    assert_eq!(history["data"][1]["metadata"]["actor_type"], "provider");
    assert_eq!(
        history["data"][2]["metadata"]["request_id"], "audit-trace-42",
        "an event carries the x-request-id of the request that caused it"
    );
    let as_of = api
        .get(&format!(
            "/api/conversations/{id}?as_of={}",
            before
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .replace('+', "%2B")
        ))
        .await;
    assert_eq!(as_of.status, StatusCode::OK, "{}", as_of.body);
    assert_eq!(
        as_of.body["status"], "open",
        "as it was before it was closed"
    );
    assert_eq!(
        api.get(&format!("/api/conversations/{id}")).await.body["status"],
        "closed"
    );
    let too_early = api
        .get(&format!(
            "/api/conversations/{id}?as_of=2000-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(too_early.status, StatusCode::NOT_FOUND);

    let started = api
        .post(
            "/api/conversations",
            json!({"integration_account_id": account["id"], "phone_number": "+62 800-0099",
                   "template": {"name": "welcome", "language": {"code": "id"}, "components": []}}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(
        started.body["conversation"]["contact"]["phone_number"],
        "628000099"
    );
    assert_eq!(started.body["message"]["type"], "template");
    assert_eq!(started.body["message"]["template_name"], "welcome");
    let sends = fake.wait_for_messages(1, Duration::from_secs(20)).await;
    assert_eq!(sends[0].body["type"], "template");
    assert_eq!(sends[0].body["template"]["name"], "welcome");
    assert_eq!(sends[0].body["to"], "628000099");
}

#[tokio::test]
async fn plain_agents_see_only_their_own_and_unassigned_conversations_of_their_divisions() {
    let Spine {
        app,
        admin,
        account,
        ..
    } = spine("200000000000004").await;
    let api = admin.client(&app);
    let division = api
        .post("/api/divisions", json!({"name": "North"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let insider = app
        .create_agent(&admin, "agent", json!({"division_ids": [division]}))
        .await;
    let outsider = app.create_agent(&admin, "agent", json!({})).await;
    api.patch(
        &format!(
            "/api/integrations/accounts/{}",
            account["id"].as_str().unwrap()
        ),
        json!({"division_id": division}),
    )
    .await;
    let conversation = customer_writes(
        &app,
        &admin,
        "200000000000004",
        "62800031",
        "wamid.D1",
        "hi north",
    )
    .await;
    let id = conversation["id"].as_str().unwrap();
    assert_eq!(
        conversation["division_id"],
        division.as_str(),
        "the account's division routes it"
    );
    assert_eq!(
        insider
            .client(&app)
            .get(&format!("/api/conversations/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        outsider
            .client(&app)
            .get(&format!("/api/conversations/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider.client(&app).get("/api/conversations").await.body["total"],
        0
    );
    assert_eq!(
        outsider
            .client(&app)
            .get(&format!("/api/conversations/{id}/messages"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider
            .client(&app)
            .get("/api/messages/search?q=north")
            .await
            .body["total"],
        0
    );
}

#[tokio::test]
async fn another_tenant_cannot_reach_conversations_messages_contacts_or_accounts() {
    let Spine {
        app,
        admin,
        account,
        ..
    } = spine("200000000000005").await;
    let conversation = customer_writes(
        &app,
        &admin,
        "200000000000005",
        "62800041",
        "wamid.E1",
        "secret order",
    )
    .await;
    let id = conversation["id"].as_str().unwrap();
    let contact = conversation["contact_id"].as_str().unwrap();
    let api = admin.client(&app);
    let messages = app
        .eventually(&api, &format!("/api/conversations/{id}/messages"), |b| {
            b["total"] == 1
        })
        .await;
    let message = messages["data"][0]["id"].as_str().unwrap().to_owned();
    let note = api
        .post(
            &format!("/api/conversations/{id}/notes"),
            json!({"content": "n"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account_id = account["id"].as_str().unwrap();

    let other = app.register("Other Co").await;
    let key = other
        .client(&app)
        .post("/api/api-keys", json!({"name": "k"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for client in [other.client(&app), app.api_key(&key)] {
        for (method, path, body) in [
            ("GET", format!("/api/conversations/{id}"), None),
            ("GET", format!("/api/conversations/{id}/messages"), None),
            (
                "POST",
                format!("/api/conversations/{id}/messages"),
                Some(json!({"content": "hi"})),
            ),
            (
                "PATCH",
                format!("/api/conversations/{id}/status"),
                Some(json!({"status": "closed"})),
            ),
            (
                "PATCH",
                format!("/api/conversations/{id}/assign"),
                Some(json!({"agent_id": null})),
            ),
            (
                "PATCH",
                format!("/api/conversations/{id}/tags"),
                Some(json!({"tags": []})),
            ),
            ("POST", format!("/api/conversations/{id}/read"), None),
            ("POST", format!("/api/conversations/{id}/takeover"), None),
            (
                "POST",
                format!("/api/conversations/{id}/transfer"),
                Some(json!({"to_agent_id": other.agent_id})),
            ),
            ("GET", format!("/api/conversations/{id}/transfers"), None),
            ("GET", format!("/api/conversations/{id}/notes"), None),
            (
                "DELETE",
                format!("/api/conversations/{id}/notes/{note}"),
                None,
            ),
            ("GET", format!("/api/conversations/{id}/events"), None),
            ("GET", format!("/api/messages/{message}"), None),
            ("POST", format!("/api/messages/{message}/retry"), None),
            ("GET", format!("/api/contacts/{contact}"), None),
            (
                "PATCH",
                format!("/api/contacts/{contact}"),
                Some(json!({"name": "x"})),
            ),
            (
                "GET",
                format!("/api/contacts/{contact}/conversations"),
                None,
            ),
            (
                "GET",
                format!("/api/integrations/accounts/{account_id}"),
                None,
            ),
            (
                "PATCH",
                format!("/api/integrations/accounts/{account_id}"),
                Some(json!({"display_name": "x"})),
            ),
            (
                "DELETE",
                format!("/api/integrations/accounts/{account_id}"),
                None,
            ),
            (
                "POST",
                format!("/api/integrations/accounts/{account_id}/set-default"),
                None,
            ),
            (
                "GET",
                format!("/api/integrations/accounts/{account_id}/whatsapp-status"),
                None,
            ),
        ] {
            let response = client.send(method.parse().unwrap(), &path, body).await;
            assert_eq!(
                response.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                response.body
            );
        }
        let lists = [
            client.get("/api/conversations").await.body,
            client.get("/api/contacts").await.body,
            client.get("/api/messages/search?q=secret").await.body,
            client.get("/api/integrations/accounts").await.body,
        ]
        .map(|b| b.to_string())
        .join("\n");
        assert!(
            !lists.contains(id)
                && !lists.contains(contact)
                && !lists.contains(account_id)
                && !lists.contains("secret order")
        );
        let start = client
            .post("/api/conversations", json!({"integration_account_id": account_id, "phone_number": "6280001234", "template": {"name": "t", "language": "id"}}))
            .await;
        assert_eq!(start.error_code(), "invalid_integration_account");
    }
    let mut stream = SseClient::connect(&app.base_url, &other.token, None).await;
    customer_writes(
        &app,
        &admin,
        "200000000000005",
        "62800041",
        "wamid.E2",
        "another secret",
    )
    .await;
    assert!(
        stream.next(Duration::from_millis(800)).await.is_none(),
        "no event of another tenant on the stream"
    );
}

#[tokio::test]
async fn the_realtime_stream_resumes_after_a_disconnect_with_nothing_missed() {
    let Spine { app, admin, .. } = spine("200000000000006").await;
    let mut first = SseClient::connect(&app.base_url, &admin.token, None).await;
    customer_writes(
        &app,
        &admin,
        "200000000000006",
        "62800051",
        "wamid.F1",
        "one",
    )
    .await;
    let seen = first
        .until("message.received", Duration::from_secs(20))
        .await;
    let last_id = seen.last().unwrap().id.clone().unwrap();
    drop(first);

    customer_writes(
        &app,
        &admin,
        "200000000000006",
        "62800051",
        "wamid.F2",
        "two",
    )
    .await;
    customer_writes(
        &app,
        &admin,
        "200000000000006",
        "62800051",
        "wamid.F3",
        "three",
    )
    .await;
    let mut resumed = SseClient::connect(&app.base_url, &admin.token, Some(&last_id)).await;
    let mut contents = Vec::new();
    while contents.len() < 2 {
        let event = resumed
            .next(Duration::from_secs(20))
            .await
            .expect("missed events are replayed");
        assert_ne!(event.id.as_deref(), Some(last_id.as_str()), "nothing twice");
        if event.event.as_deref() == Some("message.received") {
            contents.push(event.data["data"]["content"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(contents, ["two", "three"]);
}

/// An agent holds at most `STREAMS_PER_AGENT` streams; every open stream, of any agent, is fed
/// by the process's one log reader and sees each event once.
#[tokio::test]
async fn streams_are_capped_per_agent_and_all_fed_by_one_reader() {
    let Spine { app, admin, .. } = crate::whatsapp::spine_with("200000000000016", |config| {
        config.streams_per_agent = 2;
    })
    .await;
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    let mut first = SseClient::connect(&app.base_url, &admin.token, None).await;
    let mut second = SseClient::connect(&app.base_url, &admin.token, None).await;
    let third = app
        .http
        .get(format!("{}/api/stream", app.base_url))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    let mut other = SseClient::connect(&app.base_url, &supervisor.token, None).await;
    for (n, text) in ["one", "two", "three"].iter().enumerate() {
        customer_writes(
            &app,
            &admin,
            "200000000000016",
            "62800061",
            &format!("wamid.S{n}"),
            text,
        )
        .await;
    }
    for stream in [&mut first, &mut second, &mut other] {
        let mut contents = Vec::new();
        while contents.len() < 3 {
            let event = stream
                .next(Duration::from_secs(20))
                .await
                .expect("every stream gets every event");
            if event.event.as_deref() == Some("message.received") {
                contents.push(event.data["data"]["content"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(contents, ["one", "two", "three"]);
    }
}

#[tokio::test]
async fn a_crash_between_append_and_projection_loses_nothing() {
    let Spine { app, admin, .. } = spine("200000000000007").await;
    let database_url = app.database_url.clone();
    let admin_token = admin.token.clone();
    app.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The API and ingest run, but no worker: the webhook is stored and acknowledged, and
    // nothing is projected.
    let ingest_only = TestApp::spawn_on(
        database_url.clone(),
        Roles {
            api: true,
            ingest: true,
            worker: false,
        },
        |_| {},
    )
    .await;
    let webhook = whatsapp_text_webhook(
        "200000000000007",
        "62800061",
        "Eka",
        "wamid.G1",
        "are you there",
        now(),
    );
    assert_eq!(
        ingest_only.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ingest_only
            .bearer(&admin_token)
            .get("/api/conversations")
            .await
            .body["total"],
        0
    );
    ingest_only.stop();
    drop(ingest_only);

    let restarted = TestApp::spawn_on(database_url, Roles::ALL, |_| {}).await;
    let inbox = restarted
        .eventually(&restarted.bearer(&admin_token), "/api/conversations", |b| {
            b["total"] == 1
        })
        .await;
    assert_eq!(inbox["data"][0]["last_message_preview"], "are you there");
}

#[tokio::test]
async fn replayed_inbox_and_messages_equal_the_live_ones() {
    let Spine { app, admin, .. } = spine("200000000000008").await;
    let api = admin.client(&app);
    for n in 0..5 {
        let conversation = customer_writes(
            &app,
            &admin,
            "200000000000008",
            &format!("6280007{n}"),
            &format!("wamid.H{n}"),
            &format!("hello {n}"),
        )
        .await;
        let id = conversation["id"].as_str().unwrap();
        api.patch(
            &format!("/api/conversations/{id}/tags"),
            json!({"tags": [format!("t{n}")]}),
        )
        .await;
        api.post(
            &format!("/api/conversations/{id}/messages"),
            json!({"content": format!("reply {n}")}),
        )
        .await;
    }
    let snapshot = |table: &'static str| {
        let pool = app.pool.clone();
        async move {
            let rows: Vec<Value> = sqlx::query_scalar(&format!(
                "SELECT to_jsonb(t) - 'search' FROM {table} t ORDER BY id"
            ))
            .fetch_all(&pool)
            .await
            .unwrap();
            rows
        }
    };
    // Let the sender settle so no status changes during the comparison.
    app.eventually(
        &api,
        "/api/messages/search?q=reply&direction=outbound",
        |b| {
            b["total"] == 5
                && b["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|m| m["status"] == "sent")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for projector in [
        &omnistream_projections::InboxProjector as &dyn omnistream_projections::Projector,
        &omnistream_projections::MessagesProjector,
    ] {
        let tables = projector.tables();
        let mut live = Vec::new();
        for table in tables {
            live.push(snapshot(table).await);
        }
        omnistream_projections::replay::replay(&app.pool, projector)
            .await
            .unwrap();
        for (table, before) in tables.iter().zip(live) {
            let mut after = snapshot(table).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while after != before && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                after = snapshot(table).await;
            }
            assert_eq!(after, before, "{table} rebuilt equals live");
        }
    }
    let refused = omnistream_projections::replay::replay(
        &app.pool,
        &omnistream_projections::OutboundQueueProjector,
    )
    .await;
    assert!(refused.is_err(), "the outbound queue is never replayed");
}
