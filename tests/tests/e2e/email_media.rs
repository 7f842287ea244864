//! Email with files, end to end: inbound attachments land in media storage and are served back
//! byte for byte to the tenant only; an agent's media reply goes out as an SMTP attachment with
//! the conversation's Reply-To token address, and answers to that address thread by the token
//! when the customer's client dropped the threading headers.

use base64::Engine;
use mail_parser::MimeHeaders;
use omnistream_tests::multipart::Part;
use omnistream_tests::smtp_sink::SmtpSink;
use reqwest::StatusCode;
use serde_json::json;

use crate::email::{
    conversations, email_app, email_app_with, messages_of, mime, sent_outbound, INBOX,
};

/// A small PDF with bytes that are not valid UTF-8 (so a lossy path would show).
const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
/// The start of a 1x1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

fn base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    lines.join("\r\n")
}

/// A raw MIME email from Budi with a text/HTML body, a PDF attachment and an inline PNG that
/// the HTML shows through `cid:`.
fn email_with_files(message_id: &str) -> String {
    format!(
        "From: Budi <budi@example.com>\r\nTo: {INBOX}\r\nSubject: Invoice and logo\r\nMessage-ID: <{message_id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the invoice.\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the invoice.</p><img src=\"cid:logo@shop\" alt=\"logo\">\r\n\
         --alt--\r\n\
         --mix\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --mix\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n\
         Content-ID: <logo@shop>\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--mix--\r\n",
        base64(PDF),
        base64(PNG)
    )
}

async fn media_rows(app: &omnistream_tests::TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM media")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_emails_attachments_are_stored_and_served_byte_for_byte_to_its_tenant_only() {
    let (app, api) = email_app().await;
    let posted = app
        .post_email("message/rfc822", email_with_files("files1@example.com"))
        .await;
    assert_eq!(posted.status(), StatusCode::OK);
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let message = messages_of(&app, &api, &conversation, 1).await.remove(0);

    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "{message}");
    let (pdf, png) = (&attachments[0], &attachments[1]);
    assert_eq!(pdf["filename"], "invoice.pdf");
    assert_eq!(pdf["mime_type"], "application/pdf");
    assert_eq!(pdf["size"], PDF.len());
    assert_eq!(png["filename"], "logo.png");
    assert_eq!(png["mime_type"], "image/png");
    let pdf_id = pdf["media_id"].as_str().expect("a media id").to_owned();
    let png_id = png["media_id"].as_str().expect("a media id").to_owned();
    assert_ne!(pdf_id, png_id);
    // The message's own media fields repeat the first attachment (contract §3).
    assert_eq!(message["media_id"], pdf_id.as_str());
    assert_eq!(message["filename"], "invoice.pdf");
    assert_eq!(message["media_mime_type"], "application/pdf");
    assert_eq!(message["media_url"], format!("/api/media/{pdf_id}"));
    let html = message["content_html"].as_str().unwrap();
    assert!(
        html.contains(&format!("/api/media/{png_id}")) && !html.contains("cid:"),
        "the inline image points at its stored media: {html}"
    );

    for (id, bytes, kind) in [
        (&pdf_id, PDF, "application/pdf"),
        (&png_id, PNG, "image/png"),
    ] {
        let (status, headers, body) = api.get_bytes(&format!("/api/media/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, bytes, "the exact bytes of {kind}");
        assert_eq!(headers["content-type"], kind);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline"));
    }
    let (_, headers, _) = api
        .get_bytes(&format!("/api/media/{pdf_id}?download=true"))
        .await;
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("filename=\"invoice.pdf\""),
        "{disposition}"
    );
    let tenant: String =
        sqlx::query_scalar("SELECT tenant_id::text FROM media WHERE id = $1::uuid")
            .bind(&pdf_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let on_disk = std::fs::read(app.data_dir.join("media").join(tenant).join(&pdf_id)).unwrap();
    assert_eq!(on_disk, PDF, "kept under <data_dir>/media/<tenant>/<id>");

    // Another organization, and nobody at all, cannot read them.
    let other = app.register("Other Shop").await.client(&app);
    for id in [&pdf_id, &png_id] {
        let (status, _, _) = other.get_bytes(&format!("/api/media/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = app.anonymous().get_bytes(&format!("/api/media/{id}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // The same email delivered again stores nothing twice.
    assert_eq!(media_rows(&app).await, 2);
    app.post_email("message/rfc822", email_with_files("files1@example.com"))
        .await;
    let processed: i64 = {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM inbound_webhooks WHERE status = 'pending'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            if pending == 0 || tokio::time::Instant::now() > deadline {
                break pending;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    assert_eq!(processed, 0, "the repeat was processed");
    assert_eq!(media_rows(&app).await, 2);
    messages_of(&app, &api, &conversation, 1).await;
    app.stop();
}

/// The address inside `Name <address>` (or the value itself).
fn address_of(header: &str) -> String {
    header
        .rsplit_once('<')
        .map_or(header, |(_, rest)| rest.trim_end_matches('>'))
        .trim()
        .to_owned()
}

/// A plain answer from `from` to `to`, with optional threading headers.
fn answer(from: &str, to: &str, message_id: &str, threading: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Re: Invoice\r\nMessage-ID: <{message_id}>\r\n{threading}\r\nThanks!\r\n"
    )
}

#[tokio::test]
async fn a_media_reply_is_mailed_as_an_attachment_and_answers_to_its_reply_address_thread_by_token()
{
    let sink = SmtpSink::start().await;
    let (app, api) = email_app_with(json!({"from_name": "Shop Support", "from_address": INBOX,
                                           "smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_tls": "none"}))
    .await;
    let first = mime(
        "Budi <budi@example.com>",
        "Invoice",
        "t1@example.com",
        None,
        "<p>invoice?</p>",
    );
    app.post_email("message/rfc822", first).await;
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap().to_owned();

    let uploaded = api
        .post_form(
            "/api/media/upload",
            &[
                Part::file("invoice.pdf", "application/pdf", PDF),
                Part::text("conversation_id", &conversation),
            ],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let media_id = uploaded.body["id"].as_str().unwrap().to_owned();
    let sent = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"type": "document", "media_id": media_id, "content": "Your invoice is attached."}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["media_id"], media_id.as_str());
    assert_eq!(sent.body["filename"], "invoice.pdf");
    assert_eq!(sent.body["attachments"][0]["media_id"], media_id.as_str());

    let mail = sink.wait_for(1).await.remove(0);
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .contains("multipart/mixed"),
        "{}",
        mail.data
    );
    assert_eq!(
        mail.header("In-Reply-To").as_deref(),
        Some("<t1@example.com>")
    );
    assert_eq!(
        mail.header("References").as_deref(),
        Some("<t1@example.com>")
    );
    let reply_to = address_of(&mail.header("Reply-To").expect("a Reply-To"));
    let (local, domain) = reply_to.split_once('@').unwrap();
    let token = local
        .strip_prefix("support+")
        .expect("the inbound address, tagged");
    assert_eq!(domain, "shop.example");
    assert_eq!(token.len(), 40, "{reply_to}");
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("a parseable message");
    let files: Vec<_> = parsed.attachments().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].attachment_name(), Some("invoice.pdf"));
    assert_eq!(files[0].contents(), PDF, "the stored bytes, exactly");
    let kind = files[0].content_type().unwrap();
    assert_eq!((kind.ctype(), kind.subtype()), ("application", Some("pdf")));
    assert!(parsed
        .body_text(0)
        .unwrap()
        .contains("Your invoice is attached."));
    let our_id = mail.header("Message-ID").unwrap();

    let ours = sent_outbound(&app, &api, &conversation).await;
    assert_eq!(ours["media_id"], media_id.as_str());
    assert_eq!(ours["media_mime_type"], "application/pdf");
    assert_eq!(ours["attachments"][0]["size"], PDF.len());

    // An answer without In-Reply-To/References, addressed to the token address, joins.
    app.post_email(
        "message/rfc822",
        answer("budi@example.com", &reply_to, "t2@example.com", ""),
    )
    .await;
    messages_of(&app, &api, &conversation, 3).await;
    conversations(&app, &api, 1).await;

    // Forwarded: a colleague answers to the same address, quoting our message: a conversation
    // of their own, never Budi's.
    let quoting = format!("In-Reply-To: {our_id}\r\nReferences: <t1@example.com> {our_id}\r\n");
    app.post_email(
        "message/rfc822",
        answer("ana@example.org", &reply_to, "t3@example.org", &quoting),
    )
    .await;
    conversations(&app, &api, 2).await;
    // Budi with a tampered token: still routed to the account, but to a new conversation.
    let flipped = if token.starts_with('a') { 'b' } else { 'a' };
    let tampered = format!("support+{flipped}{}@shop.example", &token[1..]);
    app.post_email(
        "message/rfc822",
        answer("budi@example.com", &tampered, "t4@example.com", ""),
    )
    .await;
    let listed = conversations(&app, &api, 3).await;
    let budi = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["contact"]["email"] == "budi@example.com")
        .count();
    assert_eq!(budi, 2, "{listed}");
    messages_of(&app, &api, &conversation, 3).await;
    app.stop();
}

#[tokio::test]
async fn an_email_with_a_ten_megabyte_attachment_is_accepted_and_kept_whole() {
    let (app, api) = email_app().await;
    // Not valid UTF-8 and not compressible into something small: every byte matters.
    let big: Vec<u8> = (0..10 * 1024 * 1024_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let raw = format!(
        "From: Budi <budi@example.com>\r\nTo: {INBOX}\r\nSubject: Scans\r\nMessage-ID: <big1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe scans.\r\n\
         --mix\r\nContent-Type: application/pdf; name=\"scans.pdf\"\r\nContent-Disposition: attachment; filename=\"scans.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--mix--\r\n",
        base64(&big)
    );
    assert!(
        raw.len() > 13 * 1024 * 1024,
        "well over the API's 2 MiB limit"
    );
    let posted = app.post_email("message/rfc822", raw).await;
    assert_eq!(posted.status(), StatusCode::OK);
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let message = messages_of(&app, &api, &conversation, 1).await.remove(0);
    assert_eq!(message["attachments"][0]["size"], big.len(), "{message}");
    let id = message["media_id"].as_str().expect("stored").to_owned();
    let (status, _, body) = api.get_bytes(&format!("/api/media/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == big, "the exact {} bytes", big.len());
}
