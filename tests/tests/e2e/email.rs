//! Inbound email end to end: `POST /webhooks/email` with the shared secret, raw MIME and JSON
//! shapes, into contacts and threaded email conversations, with sanitised HTML.

use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) const INBOX: &str = "support@shop.example";

/// An app with one tenant whose email account receives at [`INBOX`] (the key is given in
/// mixed case: it is stored lowercased), configured with `config`.
pub(crate) async fn email_app_with(config: Value) -> (TestApp, omnistream_tests::Client) {
    let app = TestApp::spawn().await;
    let admin = app.register("Mail Shop").await;
    let api = admin.client(&app);
    let account = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "email", "account_key": "Support@Shop.example", "is_active": true, "config": config}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{}", account.body);
    (app, api)
}

pub(crate) async fn email_app() -> (TestApp, omnistream_tests::Client) {
    email_app_with(json!({"from_name": "Shop", "from_address": INBOX})).await
}

pub(crate) fn mime(
    from: &str,
    subject: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
    html: &str,
) -> String {
    let threading = in_reply_to
        .map(|id| format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: {from}\r\nTo: Shop <{INBOX}>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{threading}\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{subject} (text)\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b1--\r\n"
    )
}

pub(crate) async fn conversations(
    app: &TestApp,
    api: &omnistream_tests::Client,
    count: usize,
) -> Value {
    app.eventually(api, "/api/conversations?channel=email", |body| {
        body["data"].as_array().is_some_and(|d| d.len() == count)
    })
    .await
}

pub(crate) async fn messages_of(
    app: &TestApp,
    api: &omnistream_tests::Client,
    conversation: &str,
    count: usize,
) -> Vec<Value> {
    app.eventually(
        api,
        &format!("/api/conversations/{conversation}/messages"),
        |body| body["data"].as_array().is_some_and(|d| d.len() == count),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The conversation's outbound message, once it is marked sent.
pub(crate) async fn sent_outbound(
    app: &TestApp,
    api: &omnistream_tests::Client,
    conversation: &str,
) -> Value {
    app.message_when(api, conversation, |m| {
        m["direction"] == "outbound" && m["status"] == "sent"
    })
    .await
}

#[tokio::test]
async fn a_raw_mime_email_opens_a_conversation_and_replies_join_its_thread() {
    let (app, api) = email_app().await;
    let hostile = "<p>Where is <b>order 42</b>?</p><script>alert(1)</script><img src=x onerror=alert(1)>\
                   <a href=\"javascript:alert(1)\">click</a> <a href=\"https://shop.example/track\">track</a>";
    let first = app
        .post_email(
            "message/rfc822",
            mime(
                "Budi <Budi@Example.com>",
                "Order 42",
                "m1@example.com",
                None,
                hostile,
            ),
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.json::<Value>().await.unwrap()["status"], "ok");

    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed["data"][0]["contact"]["email"], "budi@example.com");
    assert_eq!(listed["data"][0]["contact"]["name"], "Budi");
    let messages = messages_of(&app, &api, &conversation, 1).await;
    assert_eq!(messages[0]["subject"], "Order 42");
    assert_eq!(messages[0]["content"], "Order 42 (text)");
    assert_eq!(messages[0]["external_id"], "m1@example.com");
    let html = messages[0]["content_html"].as_str().unwrap().to_lowercase();
    for forbidden in ["<script", "onerror", "javascript:"] {
        assert!(!html.contains(forbidden), "{forbidden} survived: {html}");
    }
    assert!(html.contains("order 42") && html.contains("https://shop.example/track"));

    // A reply of the same sender joins the thread; the same delivery twice has no second effect.
    let reply = mime(
        "budi@example.com",
        "Re: Order 42",
        "m2@example.com",
        Some("m1@example.com"),
        "<p>any news?</p>",
    );
    for _ in 0..2 {
        assert_eq!(
            app.post_email("message/rfc822", reply.clone())
                .await
                .status(),
            StatusCode::OK
        );
    }
    messages_of(&app, &api, &conversation, 2).await;

    // The same thread answered by someone else, and a new subject without references, each
    // start a conversation of their own.
    let other = mime(
        "ana@example.org",
        "Re: Order 42",
        "m3@example.org",
        Some("m1@example.com"),
        "<p>me too</p>",
    );
    app.post_email("message/rfc822", other).await;
    let fresh = mime(
        "budi@example.com",
        "Another question",
        "m4@example.com",
        None,
        "<p>hi</p>",
    );
    app.post_email("message/rfc822", fresh).await;
    let listed = conversations(&app, &api, 3).await;
    let budi: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["contact"]["email"] == "budi@example.com")
        .collect();
    assert_eq!(
        budi.len(),
        2,
        "a new subject opens a second conversation: {listed}"
    );
    messages_of(&app, &api, &conversation, 2).await;
    app.stop();
}

#[tokio::test]
async fn json_emails_are_accepted_and_unknown_recipients_and_bad_secrets_are_not() {
    let (app, api) = email_app().await;
    let posted = app
        .post_email(
            "application/json",
            json!({"from": "Cici <cici@example.net>", "to": [INBOX], "subject": "Refund",
                   "text": "Please refund order 7", "message_id": "<j1@example.net>",
                   "attachments": [{"filename": "receipt.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0xLjQ="}]})
            .to_string(),
        )
        .await;
    assert_eq!(posted.json::<Value>().await.unwrap()["status"], "ok");
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap();
    let messages = messages_of(&app, &api, conversation, 1).await;
    assert_eq!(messages[0]["content"], "Please refund order 7");
    assert_eq!(messages[0]["attachments"][0]["filename"], "receipt.pdf");
    assert_eq!(messages[0]["attachments"][0]["size"], 8);
    let found = api.get("/api/messages/search?q=refund%20order").await;
    assert_eq!(
        found.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        found.body
    );

    let stranger = app
        .post_email(
            "application/json",
            json!({"from": "x@example.net", "to": "nobody@elsewhere.example", "text": "hi"})
                .to_string(),
        )
        .await;
    assert_eq!(stranger.status(), StatusCode::OK);
    assert_eq!(stranger.json::<Value>().await.unwrap()["status"], "ignored");

    let forged = reqwest::Client::new()
        .post(format!("{}/webhooks/email", app.base_url))
        .header("content-type", "application/json")
        .header("x-webhook-secret", "wrong")
        .body(json!({"from": "x@example.net", "to": INBOX, "text": "hi"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        forged.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_signature"
    );

    // Another tenant's API sees none of it.
    let other = app.register("Other Shop").await.client(&app);
    let foreign = other.get("/api/conversations?channel=email").await;
    assert_eq!(foreign.body["data"].as_array().map(Vec::len), Some(0));
    let foreign = other
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    app.stop();
}

#[tokio::test]
async fn an_agents_reply_goes_out_by_smtp_threaded_and_the_customers_answer_comes_back_to_it() {
    let sink = omnistream_tests::smtp_sink::SmtpSink::start().await;
    let (app, api) = email_app_with(json!({"from_name": "Shop Support", "from_address": INBOX,
                                           "smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_tls": "none"}))
    .await;
    app.post_email(
        "message/rfc822",
        mime(
            "Budi <budi@example.com>",
            "Order 42",
            "m1@example.com",
            None,
            "<p>where?</p>",
        ),
    )
    .await;
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap().to_owned();

    let sent = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"type": "text", "content": "It ships today.\nRegards"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let delivered = sink.wait_for(1).await;
    let mail = &delivered[0];
    assert_eq!(mail.rcpt_to, vec!["<budi@example.com>"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Re: Order 42"));
    assert_eq!(
        mail.header("In-Reply-To").as_deref(),
        Some("<m1@example.com>")
    );
    assert_eq!(
        mail.header("References").as_deref(),
        Some("<m1@example.com>")
    );
    assert!(mail.header("From").unwrap().contains(INBOX));
    assert!(mail
        .header("Content-Type")
        .unwrap()
        .contains("multipart/alternative"));
    assert!(mail.data.contains("It ships today."));
    let our_id = mail.header("Message-ID").expect("a Message-ID");

    // The message is marked sent with our Message-ID, and the customer's answer to it (quoting
    // only our id, as many clients do) lands in the same conversation.
    let messages = messages_of(&app, &api, &conversation, 2).await;
    let ours = sent_outbound(&app, &api, &conversation).await;
    assert_eq!(
        format!("<{}>", ours["external_id"].as_str().unwrap()),
        our_id
    );
    assert_eq!(messages.len(), 2);
    let answered = our_id.trim_matches(['<', '>']);
    let answer = format!(
        "From: budi@example.com\r\nTo: {INBOX}\r\nSubject: Re: Order 42\r\nMessage-ID: <m5@example.com>\r\n\
         In-Reply-To: <{answered}>\r\n\r\nThanks!\r\n"
    );
    app.post_email("message/rfc822", answer).await;
    messages_of(&app, &api, &conversation, 3).await;
    conversations(&app, &api, 1).await;

    // A reply may carry its own subject; it threads under the customer's latest email.
    let sent = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"type": "text", "content": "Invoice attached soon", "subject": "Your invoice"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["subject"], "Your invoice");
    let delivered = sink.wait_for(2).await;
    assert_eq!(
        delivered[1].header("Subject").as_deref(),
        Some("Your invoice")
    );
    assert_eq!(
        delivered[1].header("In-Reply-To").as_deref(),
        Some("<m5@example.com>")
    );
    assert_eq!(
        delivered[1].header("References").as_deref(),
        Some("<m5@example.com>")
    );
    app.stop();
}

/// A Mailgun route post (form-encoded), signed with `key` at `timestamp`.
pub(crate) fn mailgun_post(key: &str, timestamp: i64, from: &str, message_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let token = format!("token{timestamp}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let headers = json!([
        ["From", from],
        ["To", INBOX],
        ["Subject", "Invoice"],
        ["Message-Id", format!("<{message_id}>")]
    ]);
    form_urlencoded::Serializer::new(String::new())
        .append_pair("recipient", INBOX)
        .append_pair("sender", from)
        .append_pair("body-plain", "Please send the invoice")
        .append_pair("message-headers", &headers.to_string())
        .append_pair("timestamp", &timestamp.to_string())
        .append_pair("token", &token)
        .append_pair("signature", &hex::encode(mac.finalize().into_bytes()))
        .finish()
}

#[tokio::test]
async fn mailgun_posts_are_authenticated_by_their_signature_and_sendgrid_forms_by_the_secret() {
    let (app, api) = email_app().await;
    let post = |body: String, content_type: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/webhooks/email", app.base_url))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let form = "application/x-www-form-urlencoded";
    let signed = post(
        mailgun_post(
            omnistream_tests::TEST_MAILGUN_SIGNING_KEY,
            now,
            "Eko <eko@example.com>",
            "mg1@example.com",
        ),
        form,
    )
    .await
    .unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    assert_eq!(signed.json::<Value>().await.unwrap()["status"], "ok");
    for (key, at) in [
        ("another-key", now),
        (omnistream_tests::TEST_MAILGUN_SIGNING_KEY, now - 3600),
    ] {
        let refused = post(
            mailgun_post(key, at, "x@example.com", "mg2@example.com"),
            form,
        )
        .await
        .unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "a wrong key or an old timestamp"
        );
    }

    let boundary = "xYzZY";
    let sendgrid = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"headers\"\r\n\r\n\
         From: Dewi <dewi@example.id>\r\nTo: {INBOX}\r\nSubject: Size\r\nMessage-ID: <sg1@example.id>\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nDo you have size M?\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"size-chart.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--{boundary}--\r\n"
    );
    let posted = app
        .post_email(
            &format!("multipart/form-data; boundary={boundary}"),
            sendgrid,
        )
        .await;
    assert_eq!(posted.json::<Value>().await.unwrap()["status"], "ok");

    let listed = conversations(&app, &api, 2).await;
    let by_email = |address: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["contact"]["email"] == address)
            .cloned()
            .unwrap()
    };
    let eko = by_email("eko@example.com");
    let messages = messages_of(&app, &api, eko["id"].as_str().unwrap(), 1).await;
    assert_eq!(messages[0]["content"], "Please send the invoice");
    assert_eq!(messages[0]["subject"], "Invoice");
    let dewi = by_email("dewi@example.id");
    let messages = messages_of(&app, &api, dewi["id"].as_str().unwrap(), 1).await;
    assert_eq!(messages[0]["content"], "Do you have size M?");
    assert_eq!(messages[0]["attachments"][0]["filename"], "size-chart.pdf");
    app.stop();
}

/// An inbound email from Budi, and the conversation it opened.
async fn budis_conversation(app: &TestApp, api: &omnistream_tests::Client) -> String {
    app.post_email(
        "message/rfc822",
        mime(
            "Budi <budi@example.com>",
            "Order 42",
            "m1@example.com",
            None,
            "<p>where?</p>",
        ),
    )
    .await;
    let listed = conversations(app, api, 1).await;
    listed["data"][0]["id"].as_str().unwrap().to_owned()
}

/// A reply in `conversation`, once it has failed.
async fn failed_reply(app: &TestApp, api: &omnistream_tests::Client, conversation: &str) -> Value {
    let sent = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"type": "text", "content": "It ships today."}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    app.message_when(api, conversation, |m| {
        m["direction"] == "outbound" && m["status"] == "failed"
    })
    .await
}

#[tokio::test]
async fn smtp_servers_on_internal_addresses_or_other_ports_are_refused_unless_private_is_allowed() {
    let app = TestApp::spawn_with(|config| config.outgoing_webhooks_allow_private = false).await;
    let api = app.register("Mail Shop").await.client(&app);
    let account = |smtp_host: &str, smtp_port: u16| {
        json!({"channel": "email", "account_key": INBOX, "is_active": true,
               "config": {"from_address": INBOX, "smtp_host": smtp_host, "smtp_port": smtp_port, "smtp_tls": "none"}})
    };
    // A port scan of the internal network: NATS, PostgreSQL, SSH.
    for port in [4222, 5432, 22] {
        let refused = api
            .post(
                "/api/integrations/accounts",
                account("smtp.example.com", port),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.error_code(), "validation_error");
        assert!(refused.body.to_string().contains("config.smtp_port"));
    }
    for host in ["127.0.0.1", "169.254.169.254", "[::ffff:10.0.0.1]"] {
        let refused = api
            .post("/api/integrations/accounts", account(host, 25))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(refused.body.to_string().contains("config.smtp_host"));
    }

    // A name is only known to be internal once resolved: the send is refused, not attempted.
    let created = api
        .post("/api/integrations/accounts", account("localhost", 2525))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let patched = api
        .patch(
            &format!("/api/integrations/accounts/{id}"),
            json!({"config": {"smtp_port": 4222}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::BAD_REQUEST, "{}", patched.body);
    let conversation = budis_conversation(&app, &api).await;
    let failed = failed_reply(&app, &api, &conversation).await;
    assert_eq!(
        failed["error_message"],
        "the SMTP host is a private, loopback, link-local or metadata address, which is not allowed"
    );
    app.stop();
}

#[tokio::test]
async fn an_smtp_servers_reply_text_never_reaches_the_api() {
    // Private targets allowed (as in these tests): a service that is not SMTP answers instead.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let banner = "554 internal-relay.corp.local ESMTP SECRETBANNER v1.2.3\r\n";
                let _ = socket.write_all(banner.as_bytes()).await;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            });
        }
    });
    let (app, api) = email_app_with(json!({"from_address": INBOX, "smtp_host": "127.0.0.1",
                                           "smtp_port": port, "smtp_tls": "none"}))
    .await;
    let conversation = budis_conversation(&app, &api).await;
    let failed = failed_reply(&app, &api, &conversation).await;
    assert_eq!(
        failed["error_message"],
        "the SMTP server refused the message"
    );
    let listed = api
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert!(
        !listed.body.to_string().contains("SECRETBANNER"),
        "{}",
        listed.body
    );
    app.stop();
}
