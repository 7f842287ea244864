//! Unit tests of the fake, and the small HTTP helpers its tests (and those of [`super::oauth`])
//! call it with.

use reqwest::{RequestBuilder, StatusCode};

use super::*;

/// Requests to one fake by path (`/1061/messages`).
pub(super) struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub(super) fn of(fake: &FakeMeta) -> Http {
        Http {
            client: reqwest::Client::new(),
            base: fake.base_url.clone(),
        }
    }

    pub(super) fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    pub(super) fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }
}

/// Sends `request`: the answer's status and its JSON body (the fake always answers JSON).
pub(super) async fn call(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn text(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": "hello"}
    })
}

#[tokio::test]
async fn records_a_sent_message_and_answers_like_meta() {
    let fake = FakeMeta::start().await;
    let http = Http::of(&fake);

    let (status, answer) = call(
        http.post("/1061/messages")
            .bearer_auth("EAAG-token")
            .json(&text("6281100001")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["messaging_product"], "whatsapp");
    assert_eq!(
        answer["contacts"],
        json!([{"input": "6281100001", "wa_id": "6281100001"}])
    );
    let first = answer["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(first.starts_with("wamid."), "{first}");

    let (_, second) = call(
        http.post("/v21.0/1061/messages")
            .bearer_auth("EAAG-token")
            .json(&text("6281100002")),
    )
    .await;
    assert_ne!(second["messages"][0]["id"], first, "wamids are unique");

    let sent = fake.wait_for_messages(2, Duration::from_secs(2)).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, "/1061/messages");
    assert_eq!(sent[0].query, None);
    assert_eq!(sent[0].authorization.as_deref(), Some("Bearer EAAG-token"));
    assert_eq!(sent[0].bearer_token(), Some("EAAG-token"));
    assert_eq!(sent[0].phone_number_id(), Some("1061"));
    assert_eq!(sent[0].body, text("6281100001"));
    assert_eq!(sent[1].phone_number_id(), Some("1061"));
    assert_eq!(fake.requests().await.len(), 2);
}

#[tokio::test]
async fn missing_token_is_401_with_code_190() {
    let fake = FakeMeta::start().await;
    let (status, body) = call(Http::of(&fake).post("/1061/messages").json(&text("62811"))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    // Recorded, and still counted as a send attempt.
    assert_eq!(fake.sent_messages().await.len(), 1);
}

#[tokio::test]
async fn canned_failures_come_first_then_success() {
    let fake = FakeMeta::start().await;
    fake.fail_next_sends(vec![
        (429, graph_error_body(130429, "Rate limit hit")),
        (400, graph_error_body(131026, "Message undeliverable")),
    ])
    .await;
    let http = Http::of(&fake);
    let send = || {
        http.post("/1061/messages")
            .bearer_auth("t")
            .json(&text("62811"))
            .send()
    };

    let first = send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "1");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"]["code"], 130429);

    let second = send().await.unwrap();
    assert_eq!(second.status(), 400);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], 131026);
    assert_eq!(body["error"]["message"], "(#131026) Message undeliverable");

    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(fake.sent_messages().await.len(), 3);
}

#[tokio::test]
async fn onboarding_routes() {
    let fake = FakeMeta::start().await;
    let http = Http::of(&fake);

    let (_, register) = call(
        http.post("/1061/register")
            .bearer_auth("t")
            .json(&json!({"messaging_product": "whatsapp", "pin": "123456"})),
    )
    .await;
    assert_eq!(register, json!({"success": true}));

    let (subscribe, _) = call(http.post("/2002/subscribed_apps").bearer_auth("t")).await;
    assert_eq!(subscribe, 200);

    let (_, apps) = call(http.get("/2002/subscribed_apps").bearer_auth("t")).await;
    assert_eq!(
        apps["data"][0]["whatsapp_business_api_data"]["name"],
        "OmniStream"
    );

    let (_, phone) = call(
        http.get("/1061?fields=display_phone_number,status")
            .bearer_auth("t"),
    )
    .await;
    assert_eq!(phone["id"], "1061");
    assert_eq!(phone["quality_rating"], "GREEN");
    assert_eq!(phone["status"], "CONNECTED");

    let (_, token) =
        call(http.get("/oauth/access_token?client_id=1&client_secret=s&code=abc")).await;
    assert_eq!(token["access_token"], FAKE_EXCHANGED_TOKEN);

    let (no_code, _) = call(http.get("/oauth/access_token?client_id=1&client_secret=s")).await;
    assert_eq!(no_code, 400);

    let (unauthorized, _) = call(
        http.post("/1061/register")
            .json(&json!({"messaging_product": "whatsapp", "pin": "1"})),
    )
    .await;
    assert_eq!(unauthorized, 401);

    let requests = fake.requests().await;
    assert_eq!(requests.len(), 7);
    assert_eq!(
        requests[3].query.as_deref(),
        Some("fields=display_phone_number,status")
    );
    assert!(fake.sent_messages().await.is_empty());
}

#[test]
fn sign_matches_metas_real_example() {
    // pywa tests/test_server.py (the secret has been reset), see meta-protocol.md §2.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
    assert_eq!(
        sign("1222e786b144d0e85b9f365372d93676", body.as_bytes()),
        "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"
    );
    let (bytes, signature) = signed("k", &json!({"a": 1}));
    assert_eq!(bytes, br#"{"a":1}"#);
    assert_eq!(signature, sign("k", br#"{"a":1}"#));
}

#[test]
fn webhook_shapes() {
    let inbound = whatsapp_text_webhook("1061", "6281234", "Budi", "wamid.IN1", "halo", 1730231903);
    assert_eq!(
        inbound,
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": FAKE_WABA_ID,
                "changes": [{
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": FAKE_DISPLAY_PHONE_NUMBER, "phone_number_id": "1061"},
                        "contacts": [{"profile": {"name": "Budi"}, "wa_id": "6281234"}],
                        "messages": [{
                            "from": "6281234",
                            "id": "wamid.IN1",
                            "timestamp": "1730231903",
                            "text": {"body": "halo"},
                            "type": "text"
                        }]
                    }
                }]
            }]
        })
    );

    let failed = whatsapp_status_webhook("1061", "6281234", "wamid.OUT1", "failed", 1730231999);
    let status = &failed["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(status["id"], "wamid.OUT1");
    assert_eq!(status["status"], "failed");
    assert_eq!(status["timestamp"], "1730231999");
    assert_eq!(status["recipient_id"], "6281234");
    assert_eq!(status["errors"][0]["code"], 131026);
    assert_eq!(status["errors"][0]["title"], "Message undeliverable");

    let read = whatsapp_status_webhook("1061", "6281234", "wamid.OUT1", "read", 1);
    let status = &read["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(status["status"], "read");
    assert!(status.get("errors").is_none());

    let custom = whatsapp_webhook(
        "1061",
        json!({"metadata": {"phone_number_id": "x"}, "k": 1}),
    );
    let value = &custom["entry"][0]["changes"][0]["value"];
    assert_eq!(value["messaging_product"], "whatsapp");
    assert_eq!(value["metadata"]["phone_number_id"], "x");
    assert_eq!(value["k"], 1);
}

#[test]
fn helpers() {
    assert_eq!(route_segments("/v21.0/1061/messages"), ["1061", "messages"]);
    assert_eq!(route_segments("/1061"), ["1061"]);
    assert_eq!(
        query_param(Some("a=1&code=x%2By+z"), "code").as_deref(),
        Some("x+y z")
    );
    assert_eq!(query_param(Some("a=%zz"), "a").as_deref(), Some("%zz"));
    assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
    assert_eq!(bearer(Some("Basic abc")), None);
    assert_eq!(bearer(Some("Bearer ")), None);
}
