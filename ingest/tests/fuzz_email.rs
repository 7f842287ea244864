//! Property-based fuzzing of the inbound email parser and the HTML sanitiser: whatever bytes
//! arrive, nothing panics; every message that parses has only usable mailboxes and HTML that a
//! browser could not run; and sanitised HTML is harmless and a fixed point of the sanitiser.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use omnistream_ingest::channels::email::{
    parse_inbound, parse_mime, sanitize_html, EmailError, Mailbox, ParsedEmail,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// The hostile-content check
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
const ALLOWED_TAGS: [&str; 29] = [
    "p", "br", "div", "span", "b", "strong", "i", "em", "u", "ul", "ol", "li", "blockquote",
    "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "td",
    "th", "a", "img",
];

/// Reads sanitised HTML tag by tag, as a browser's tokenizer would, and says what is wrong with
/// it: a `<` that does not open an allowed tag (comments and `<script` included), an attribute
/// outside the allow-list (every `on…=` handler among them, wherever it hides), a link or image
/// URL with a scheme other than the allowed ones (`javascript:` in any case or entity spelling),
/// or a link without its `rel`. Attribute values are skipped as values, so text such as
/// `alt="say onload=hi"` is not mistaken for a handler.
fn hostile_content(html: &str) -> Option<String> {
    if html.to_lowercase().contains("<script") {
        return Some("contains <script".into());
    }
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        i += 1;
        let closing = bytes.get(i) == Some(&b'/');
        if closing {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let tag = html[name_start..i].to_ascii_lowercase();
        if !ALLOWED_TAGS.contains(&tag.as_str()) {
            return Some(format!(
                "`<` opens no allowed tag at byte {name_start}: {tag:?}"
            ));
        }
        let mut has_rel = false;
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                None => return Some(format!("unterminated <{tag}>")),
                Some(b'>') => {
                    i += 1;
                    break;
                }
                Some(b'/') if bytes.get(i + 1) == Some(&b'>') => {
                    i += 2;
                    break;
                }
                Some(_) if closing => return Some(format!("attributes on </{tag}>")),
                Some(_) => {}
            }
            let attr_start = i;
            while i < bytes.len() && !b" \t\n\r\x0c=>/".contains(&bytes[i]) {
                i += 1;
            }
            let attribute = html[attr_start..i].to_ascii_lowercase();
            if attribute.is_empty() {
                return Some(format!("stray {:?} in <{tag}>", bytes[i] as char));
            }
            let mut value = None;
            if bytes.get(i) == Some(&b'=') {
                i += 1;
                let (start, end) = match bytes.get(i) {
                    Some(&quote @ (b'"' | b'\'')) => {
                        let start = i + 1;
                        let Some(len) = bytes[start..].iter().position(|&b| b == quote) else {
                            return Some(format!("unterminated value of {attribute}"));
                        };
                        i = start + len + 1;
                        (start, start + len)
                    }
                    _ => {
                        let start = i;
                        while i < bytes.len() && !b" \t\n\r\x0c>".contains(&bytes[i]) {
                            i += 1;
                        }
                        (start, i)
                    }
                };
                value = Some(decode_entities(&html[start..end]));
            }
            let schemes: &[&str] = match (tag.as_str(), attribute.as_str()) {
                ("a", "href") => &["http:", "https:", "mailto:"],
                ("img", "src") => &["http:", "https:", "cid:"],
                ("img", "alt") => &[],
                ("a", "rel") => {
                    has_rel = value.as_deref() == Some("noopener noreferrer nofollow");
                    &[]
                }
                _ => return Some(format!("attribute {attribute:?} on <{tag}>")),
            };
            if !schemes.is_empty() {
                // What a browser resolves: entities decoded, controls and whitespace ignored,
                // the scheme case-insensitive.
                let url: String = value
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_lowercase();
                if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
                    return Some(format!("{attribute}={url:?} on <{tag}>"));
                }
            }
        }
        if tag == "a" && !closing && !has_rel {
            return Some("<a> without rel=\"noopener noreferrer nofollow\"".into());
        }
    }
    None
}

/// Decodes the character references a browser would decode in an attribute value.
fn decode_entities(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|&end| end <= 10);
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let code = if let Some(hex) = entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(decimal) = entity.strip_prefix('#') {
                decimal.parse().ok()
            } else {
                match entity {
                    "amp" => Some('&' as u32),
                    "quot" => Some('"' as u32),
                    "lt" => Some('<' as u32),
                    "gt" => Some('>' as u32),
                    "nbsp" => Some(0xa0),
                    "colon" => Some(':' as u32),
                    "Tab" => Some('\t' as u32),
                    "NewLine" => Some('\n' as u32),
                    _ => None,
                }
            };
            Some((char::from_u32(code?)?, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_hostile_content_check_catches_what_it_should() {
    for bad in [
        "<script>x</script>",
        "<p onclick=\"x\">a</p>",
        "<p\tONLOAD=x>a</p>",
        "<a href=\"javascript:x\" rel=\"noopener noreferrer nofollow\">a</a>",
        "<a href=\"&#106;avascript:x\" rel=\"noopener noreferrer nofollow\">a</a>",
        "<a href=\" JAVA\tSCRIPT:x\" rel=\"noopener noreferrer nofollow\">a</a>",
        "<a href=\"https://x.example/\">no rel</a>",
        "<img src=\"data:image/png;base64,AA\">",
        "<iframe></iframe>",
        "<!-- comment -->",
        "a < b",
        "<svg onload=x>",
    ] {
        assert!(hostile_content(bad).is_some(), "missed: {bad}");
    }
    for good in [
        "<p>a &lt;script&gt; b</p>",
        "<img src=\"cid:logo@x\" alt=\"say onload=hi\">",
        "<a href=\"mailto:a@b.example\" rel=\"noopener noreferrer nofollow\">m</a>",
        "javascript: is only text here",
    ] {
        assert_eq!(hostile_content(good), None, "false alarm: {good}");
    }
}

// ---------------------------------------------------------------------------------------------
// Generated MIME messages
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
const HEADER_NAMES: [&str; 24] = [
    "To", "Cc", "Bcc", "Reply-To", "Sender", "Subject", "Date", "Message-ID", "In-Reply-To",
    "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "Content-Disposition", "Content-ID", "Return-Path", "Received", "X-Mailer", "Comments",
    "Keywords", "List-Unsubscribe", "Resent-From", "From", "X-Spam-Status",
];

#[rustfmt::skip]
const CHARSETS: [&str; 18] = [
    "utf-8", "UTF-8", "\"utf-8\"", "us-ascii", "iso-8859-1", "ISO-8859-15", "windows-1252",
    "koi8-r", "utf-16", "utf-16le", "utf-7", "shift_jis", "gb2312", "big5", "euc-kr",
    "x-unknown", "", "utf-8'en'",
];

const HOSTILE_FRAGMENTS: [&str; 78] = [
    "<script>alert(1)</script>",
    "<script",
    "</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<ScRiPt SRC=//evil.example/x.js>",
    "onerror=alert(1)",
    " onerror=",
    "<img src=x onerror=alert(1)>",
    "<img/src=x/onerror=alert(1)>",
    "<img src=\"javascript:alert(1)\">",
    "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
    "<img src=cid:logo@x alt=\"",
    "javascript:",
    "JaVaScRiPt:",
    "<a href=\"javascript:alert(1)\">",
    "<a href='JaVaScRiPt:alert(1)'>",
    "<a href=javascript:alert(1)>",
    "<a href=\"&#106;avascript:alert(1)\">",
    "<a href=\"&#x6A;&#x61;vascript:alert(1)\">",
    "&#106;avascript:",
    "<a href=\"jav&#x09;ascript:alert(1)\">",
    "<a href=\"java\nscript:alert(1)\">",
    "<a href=\" \u{1}javascript:alert(1)\">",
    "<a href=\"javascript&colon;alert(1)\">",
    "<a href=\"data:text/html,<script>alert(1)</script>\">",
    "<a href=\"vbscript:msgbox(1)\">",
    "<a href=\"https://ok.example/?q=<script>\">",
    "<a href=\"mailto:x@y.example\">",
    "<A HREF=\"https://x.example/\" ONCLICK=\"y\">",
    "<a onmouseover=alert(1)>",
    "</a>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=javascript:alert(1)>",
    "<iframe srcdoc=\"<script>alert(1)</script>\">",
    "<object data=x>",
    "<embed src=x>",
    "<form action=https://evil.example/><input name=pw onfocus=alert(1) autofocus>",
    "<body onload=alert(1)>",
    "<div style=\"background:url(javascript:alert(1))\">",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<style>",
    "</style>",
    "<xmp>",
    "<plaintext>",
    "<template>",
    "<textarea>",
    "</textarea>",
    "<select><option>",
    "<title>",
    "<base href=\"javascript:/\">",
    "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
    "<link rel=stylesheet href=x>",
    "<!--",
    "-->",
    "<!-- <script> -->",
    "<![CDATA[",
    "]]>",
    "<",
    ">",
    "\"",
    "'",
    "=",
    "&",
    "&#",
    "&lt;script&gt;",
    "<p>",
    "</p>",
    "<b>",
    "<pre>\n",
    "<table><td>",
    "<li>",
    "\u{0}",
    "\u{feff}",
    " ",
    "\n",
];

/// HTML assembled from hostile fragments and bits of plain text.
fn hostile_html() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        4 => prop::sample::select(HOSTILE_FRAGMENTS.to_vec()).prop_map(str::to_owned),
        1 => "[a-zA-Z ]{0,8}",
    ];
    prop::collection::vec(fragment, 0..16).prop_map(|fragments| fragments.concat())
}

/// An address the parser must accept, and the header value that carries it.
fn valid_from() -> impl Strategy<Value = (String, String)> {
    let local = "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,10}";
    let domain = "[a-zA-Z0-9]{1,10}\\.(com|org|co\\.id)";
    let name = "[A-Za-z][A-Za-z ]{0,14}";
    (local, domain, name, 0..5u8).prop_map(|(local, domain, name, form)| {
        let address = format!("{local}@{domain}");
        let header = match form {
            0 => address.clone(),
            1 => format!("<{address}>"),
            2 => format!("\"{name}\" <{address}>"),
            3 => format!("{name} <{address}>"),
            _ => format!("=?UTF-8?B?{}?= <{address}>", BASE64.encode(name.as_bytes())),
        };
        (address.to_lowercase(), header)
    })
}

fn encoded_word() -> impl Strategy<Value = String> {
    (
        prop::sample::select(CHARSETS.to_vec()),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(charset, base64, bytes)| {
            let charset = charset.trim_matches('"');
            if base64 {
                format!("=?{charset}?B?{}?=", BASE64.encode(&bytes))
            } else {
                let q: String = bytes.iter().map(|b| format!("={b:02X}")).collect();
                format!("=?{charset}?Q?{q}?=")
            }
        })
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,60}",
        ".{0,30}",
        valid_from().prop_map(|(_, header)| header),
        encoded_word(),
        (encoded_word(), " [a-z]{0,6} ", encoded_word()).prop_map(|(a, b, c)| a + &b + &c),
        Just("Tue, 29 Oct 2024 19:58:23 +0700".to_owned()),
        Just("Mon, 31 Feb 99999 25:61:61 -9999".to_owned()),
        "<[a-z0-9.$]{1,12}@[a-z]{1,8}>( <[a-z0-9.]{1,12}@[a-z]{1,8}>){0,3}",
        "[a-z]{1,10}: [a-z]{1,6}@[a-z]{1,6}\\.com, [a-z]{1,6}@x\\.org;",
        "(\\(comment\\) )?<[a-z]{0,4}@?[a-z]{0,4}>( \\(more\\))?",
        "[a-z/+.-]{0,12}(; [a-z*]{1,8}\\*?=\"?[ -~]{0,12}\"?){0,3}",
        ("[ -~]{0,20}", "[ -~]{0,20}").prop_map(|(a, b)| format!("{a}\r\n\t{b}")),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    prop::collection::vec(
        (prop::sample::select(HEADER_NAMES.to_vec()), header_value()),
        0..4,
    )
}

#[derive(Debug, Clone)]
enum TransferEncoding {
    Base64,
    QuotedPrintable,
    SevenBit,
    /// Declared as `base64` or `quoted-printable` over a body that is not.
    Broken(&'static str),
    /// A label that names no encoding.
    Garbage(String),
}

#[derive(Debug, Clone)]
enum Part {
    Leaf {
        headers: Vec<(&'static str, String)>,
        content_type: Option<String>,
        encoding: TransferEncoding,
        disposition: Option<String>,
        content_id: Option<String>,
        body: Vec<u8>,
    },
    Multipart {
        headers: Vec<(&'static str, String)>,
        subtype: String,
        boundary: String,
        preamble: String,
        children: Vec<Part>,
        closed: bool,
    },
    Message {
        headers: Vec<(&'static str, String)>,
        inner: Box<Part>,
    },
}

fn leaf() -> impl Strategy<Value = Part> {
    let media = prop_oneof![
        2 => Just("text/plain"),
        4 => Just("text/html"),
        1 => Just("TEXT/HTML"),
        1 => Just("image/png"),
        1 => Just("application/pdf"),
        1 => Just("application/octet-stream"),
        1 => Just("message/rfc822"),
        1 => Just("text/calendar"),
        1 => Just("multipart/mixed"),
        1 => Just("x/"),
    ];
    let content_type = prop::option::weighted(
        0.9,
        (
            media,
            prop::sample::select(CHARSETS.to_vec()),
            prop::option::of("[ -~]{0,16}"),
        )
            .prop_map(|(media, charset, name)| {
                let mut value = format!("{media}; charset={charset}");
                if let Some(name) = name {
                    value.push_str(&format!("; name=\"{name}\""));
                }
                value
            }),
    );
    let encoding = prop_oneof![
        Just(TransferEncoding::Base64),
        Just(TransferEncoding::QuotedPrintable),
        Just(TransferEncoding::SevenBit),
        Just(TransferEncoding::Broken("base64")),
        Just(TransferEncoding::Broken("quoted-printable")),
        "[a-zA-Z0-9-]{0,12}".prop_map(TransferEncoding::Garbage),
    ];
    let disposition = prop::option::weighted(
        0.3,
        prop_oneof![
            Just("inline".to_owned()),
            Just("attachment".to_owned()),
            "(inline|attachment|x); filename=\"?[ -~]{0,20}\"?",
            "attachment; filename\\*=UTF-8''[a-z%0-9.]{0,20}",
        ],
    );
    let content_id = prop::option::of("<?[a-z0-9.@]{0,16}>?");
    let body = prop_oneof![
        3 => hostile_html().prop_map(String::into_bytes),
        1 => ".{0,80}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    (
        headers(),
        content_type,
        encoding,
        disposition,
        content_id,
        body,
    )
        .prop_map(
            |(headers, content_type, encoding, disposition, content_id, body)| Part::Leaf {
                headers,
                content_type,
                encoding,
                disposition,
                content_id,
                body,
            },
        )
}

fn part() -> impl Strategy<Value = Part> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        let subtype = prop_oneof![
            Just("mixed".to_owned()),
            Just("alternative".to_owned()),
            Just("related".to_owned()),
            Just("digest".to_owned()),
            Just("signed".to_owned()),
            "[a-z]{0,8}",
        ];
        let boundary = prop_oneof![
            "[A-Za-z0-9'()+_,./:=? -]{1,70}",
            Just("-".to_owned()),
            Just("a".to_owned()),
            Just("=_".to_owned()),
        ];
        prop_oneof![
            3 => (
                headers(),
                subtype,
                boundary,
                "[ -~]{0,20}",
                prop::collection::vec(inner.clone(), 0..4),
                prop::bool::weighted(0.8),
            )
                .prop_map(|(headers, subtype, boundary, preamble, children, closed)| {
                    Part::Multipart { headers, subtype, boundary, preamble, children, closed }
                }),
            1 => (headers(), inner).prop_map(|(headers, inner)| Part::Message {
                headers,
                inner: Box::new(inner),
            }),
        ]
    })
}

fn encode(body: &[u8], encoding: &TransferEncoding, eol: &str) -> Vec<u8> {
    match encoding {
        TransferEncoding::Base64 => {
            let encoded = BASE64.encode(body);
            let lines: Vec<&str> = encoded
                .as_bytes()
                .chunks(76)
                .filter_map(|chunk| std::str::from_utf8(chunk).ok())
                .collect();
            lines.join(eol).into_bytes()
        }
        TransferEncoding::QuotedPrintable => {
            let mut out = String::new();
            let mut line_len = 0;
            for &byte in body {
                let piece = if (b' '..=b'~').contains(&byte) && byte != b'=' {
                    (byte as char).to_string()
                } else {
                    format!("={byte:02X}")
                };
                if line_len + piece.len() > 75 {
                    out.push('=');
                    out.push_str(eol);
                    line_len = 0;
                }
                line_len += piece.len();
                out.push_str(&piece);
            }
            out.into_bytes()
        }
        TransferEncoding::SevenBit | TransferEncoding::Broken(_) | TransferEncoding::Garbage(_) => {
            body.to_vec()
        }
    }
}

fn push_headers(out: &mut Vec<u8>, headers: &[(&str, String)], eol: &str) {
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}{eol}").as_bytes());
    }
}

fn render(part: &Part, eol: &str, out: &mut Vec<u8>) {
    match part {
        Part::Leaf {
            headers,
            content_type,
            encoding,
            disposition,
            content_id,
            body,
        } => {
            push_headers(out, headers, eol);
            if let Some(content_type) = content_type {
                out.extend_from_slice(format!("Content-Type: {content_type}{eol}").as_bytes());
            }
            let label = match encoding {
                TransferEncoding::Base64 => "base64",
                TransferEncoding::QuotedPrintable => "quoted-printable",
                TransferEncoding::SevenBit => "7bit",
                TransferEncoding::Broken(label) => label,
                TransferEncoding::Garbage(label) => label,
            };
            out.extend_from_slice(format!("Content-Transfer-Encoding: {label}{eol}").as_bytes());
            if let Some(disposition) = disposition {
                out.extend_from_slice(
                    format!("Content-Disposition: {disposition}{eol}").as_bytes(),
                );
            }
            if let Some(content_id) = content_id {
                out.extend_from_slice(format!("Content-ID: {content_id}{eol}").as_bytes());
            }
            out.extend_from_slice(eol.as_bytes());
            out.extend_from_slice(&encode(body, encoding, eol));
        }
        Part::Multipart {
            headers,
            subtype,
            boundary,
            preamble,
            children,
            closed,
        } => {
            push_headers(out, headers, eol);
            out.extend_from_slice(
                format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"{eol}{eol}")
                    .as_bytes(),
            );
            out.extend_from_slice(format!("{preamble}{eol}").as_bytes());
            for child in children {
                out.extend_from_slice(format!("--{boundary}{eol}").as_bytes());
                render(child, eol, out);
                out.extend_from_slice(eol.as_bytes());
            }
            if *closed {
                out.extend_from_slice(format!("--{boundary}--{eol}epilogue{eol}").as_bytes());
            }
        }
        Part::Message { headers, inner } => {
            push_headers(out, headers, eol);
            out.extend_from_slice(format!("Content-Type: message/rfc822{eol}{eol}").as_bytes());
            out.extend_from_slice(format!("From: forwarded@example.org{eol}").as_bytes());
            render(inner, eol, out);
        }
    }
}

/// Raw message bytes, shown as (lossy) text when proptest reports a failing case.
#[derive(Clone)]
struct RawMail(Vec<u8>);

impl std::fmt::Debug for RawMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// A MIME-shaped message: a `From` (usually a valid one), random top-level headers, then a
/// random part tree, with CRLF or bare LF line ends. Also returns the address the parser must
/// find when the `From` was valid and no random `From` follows it.
fn mime_message() -> impl Strategy<Value = (RawMail, Option<String>)> {
    let from = prop_oneof![
        3 => valid_from().prop_map(|(address, header)| (Some(address), header)),
        1 => header_value().prop_map(|header| (None, header)),
    ];
    (from, headers(), part(), any::<bool>()).prop_map(|((address, from), headers, root, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut raw = format!("From: {from}{eol}").into_bytes();
        push_headers(&mut raw, &headers, eol);
        render(&root, eol, &mut raw);
        let another_from = headers.iter().any(|(name, _)| *name == "From")
            || matches!(&root, Part::Leaf { headers, .. } | Part::Multipart { headers, .. }
                | Part::Message { headers, .. } if headers.iter().any(|(name, _)| *name == "From"));
        (RawMail(raw), address.filter(|_| !another_from))
    })
}

fn check_mailbox(mailbox: &Mailbox) -> Result<(), TestCaseError> {
    let address = &mailbox.address;
    prop_assert!(!address.is_empty());
    prop_assert_eq!(address.trim(), address.as_str());
    prop_assert_eq!(&address.to_lowercase(), address);
    prop_assert!(address.contains('@'), "{:?}", address);
    Ok(())
}

fn check_parsed(email: &ParsedEmail) -> Result<(), TestCaseError> {
    check_mailbox(&email.from)?;
    for mailbox in email.reply_to.iter().chain(&email.to).chain(&email.cc) {
        check_mailbox(mailbox)?;
    }
    if let Some(html) = &email.html {
        prop_assert_eq!(hostile_content(html), None, "in {:?}", html);
    }
    let ids = email
        .message_id
        .iter()
        .chain(&email.in_reply_to)
        .chain(&email.references);
    for id in ids {
        prop_assert!(
            !id.is_empty() && !id.starts_with('<') && !id.ends_with('>'),
            "{:?}",
            id
        );
    }
    for attachment in &email.attachments {
        prop_assert!(!attachment.filename.is_empty());
        prop_assert!(
            !attachment.filename.contains(['/', '\\']),
            "{:?}",
            attachment.filename
        );
        prop_assert!(
            attachment.content_type.contains('/'),
            "{:?}",
            attachment.content_type
        );
    }
    Ok(())
}

fn check_sanitized(input: &str) -> Result<(), TestCaseError> {
    let once = sanitize_html(input);
    prop_assert_eq!(
        hostile_content(&once),
        None,
        "{:?} became {:?}",
        input,
        once
    );
    prop_assert_eq!(
        sanitize_html(&once),
        once.clone(),
        "not idempotent on {:?}",
        input
    );
    Ok(())
}

/// 2000 cases a property: a few seconds in a debug build. `PROPTEST_CASES`, when set, wins, for
/// longer runs.
fn config() -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        ProptestConfig {
            cases: 2000,
            ..config
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(email) = parse_mime(&raw) {
            check_parsed(&email)?;
        }
    }

    #[test]
    fn mime_shaped_messages_never_panic_and_parse_to_safe_values(
        (raw, expected_from) in mime_message(),
    ) {
        match parse_mime(&raw.0) {
            Ok(email) => {
                check_parsed(&email)?;
                if let Some(expected) = expected_from {
                    prop_assert_eq!(email.from.address, expected);
                }
            }
            Err(error) => {
                prop_assert!(expected_from.is_none(), "a valid From was refused: {}", error);
                prop_assert!(matches!(error, EmailError::NoSender | EmailError::Unparseable));
            }
        }
    }

    #[test]
    fn sanitized_arbitrary_strings_are_harmless_and_stable(
        input in prop_oneof![any::<String>(), "[<>/=\"' a-z&#;:!-]{0,120}"],
    ) {
        check_sanitized(&input)?;
    }

    #[test]
    fn sanitized_hostile_fragments_are_harmless_and_stable(input in hostile_html()) {
        check_sanitized(&input)?;
    }
}

/// A provider JSON body (the contract's shape or Postmark's) with arbitrary values in its fields.
fn provider_json() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::String),
        hostile_html().prop_map(serde_json::Value::String),
        valid_from().prop_map(|(header, _)| serde_json::Value::String(header)),
        prop::collection::vec(".{0,20}".prop_map(serde_json::Value::String), 0..3)
            .prop_map(serde_json::Value::Array),
    ];
    let key = prop::sample::select(vec![
        "from",
        "to",
        "cc",
        "subject",
        "text",
        "html",
        "message_id",
        "in_reply_to",
        "references",
        "attachments",
        "FromFull",
        "ToFull",
        "TextBody",
        "HtmlBody",
        "MessageID",
        "Headers",
        "Attachments",
    ]);
    prop::collection::btree_map(key, value, 0..10).prop_map(|fields| {
        serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            .to_string()
    })
}

/// A form post (SendGrid's or Mailgun's field names) with arbitrary values, urlencoded.
fn provider_form() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "headers",
        "text",
        "html",
        "from",
        "to",
        "subject",
        "email",
        "body-mime",
        "sender",
        "recipient",
        "body-plain",
        "body-html",
        "message-headers",
        "timestamp",
        "token",
        "signature",
    ]);
    prop::collection::vec((name, prop_oneof![".{0,60}", hostile_html()]), 0..10).prop_map(
        |fields| {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &fields {
                form.append_pair(name, value);
            }
            form.finish()
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_inbound_shape_never_panics_and_parses_to_safe_values(
        (content_type, body) in prop_oneof![
            provider_json().prop_map(|b| ("application/json", b.into_bytes())),
            provider_form().prop_map(|b| ("application/x-www-form-urlencoded", b.into_bytes())),
            prop::collection::vec(any::<u8>(), 0..512)
                .prop_map(|b| ("multipart/form-data; boundary=xYz", b)),
            prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| ("application/json", b)),
        ],
    ) {
        if let Ok(email) = parse_inbound(Some(content_type), &body) {
            check_parsed(&email)?;
        }
    }
}
