//! The HTML allow-list applied to every email body, and the HTML → text fallback.
//!
//! Both go through ammonia, which parses with html5ever exactly as a browser would (entities
//! decoded, broken tags repaired) before it filters, so tricks that fool pattern matching
//! (`JaVaScRiPt:`, `&#106;avascript:`, `<scr<script>ipt>`, unclosed attributes) are judged on what
//! a browser would see.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// Elements kept (with only the attributes `filter_attribute` lets through).
#[rustfmt::skip]
const ALLOWED_TAGS: [&str; 29] = [
    "p", "br", "div", "span", "b", "strong", "i", "em", "u", "ul", "ol", "li", "blockquote", "pre",
    "code", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "td", "th", "a",
    "img",
];

/// Elements whose whole content is dropped along with the element: executable, styling or
/// embedding containers, inline SVG and MathML (foreign content with parsing rules of its own),
/// and form controls whose text is no message content. Any other element not allowed is
/// dropped with its text kept.
const DROP_WITH_CONTENT: [&str; 17] = [
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "template",
    "title", "noscript", "svg", "math", "textarea", "select", "button", "head",
];

/// Schemes an `<a href>` may use.
const LINK_SCHEMES: [&str; 3] = ["http", "https", "mailto"];
/// Schemes an `<img src>` may use; `cid:` points at an inline attachment of the same email.
const IMAGE_SCHEMES: [&str; 3] = ["http", "https", "cid"];

const LINK_REL: &str = "noopener noreferrer nofollow";

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::empty();
    builder
        .tags(HashSet::from(ALLOWED_TAGS))
        .clean_content_tags(HashSet::from(DROP_WITH_CONTENT))
        .generic_attributes(HashSet::new())
        .tag_attributes(HashMap::from([
            ("a", HashSet::from(["href"])),
            ("img", HashSet::from(["src", "alt"])),
        ]))
        // ammonia's scheme list is shared by every URL attribute; the per-element lists are
        // enforced by `filter_attribute`.
        .url_schemes(LINK_SCHEMES.into_iter().chain(IMAGE_SCHEMES).collect())
        .url_relative(UrlRelative::Deny)
        .link_rel(Some(LINK_REL))
        .strip_comments(true)
        .attribute_filter(filter_attribute);
    builder
});

/// Keeps only the structure that separates lines, for [`html_to_text`].
static TEXT_ONLY: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::empty();
    builder
        .tags(HashSet::from(LAYOUT_TAGS))
        .clean_content_tags(HashSet::from(DROP_WITH_CONTENT))
        .generic_attributes(HashSet::new())
        .tag_attributes(HashMap::new())
        .link_rel(None)
        .strip_comments(true);
    builder
});

/// Elements that separate words or lines in the derived text.
#[rustfmt::skip]
const LAYOUT_TAGS: [&str; 19] = [
    "br", "p", "div", "li", "tr", "td", "th", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5",
    "h6", "ul", "ol", "table", "hr",
];

/// Sanitises untrusted HTML against a fixed allow-list.
///
/// Kept: basic formatting (`p br div span b strong i em u ul ol li blockquote pre code h1`–`h6`),
/// tables (`table thead tbody tr td th`), links and images. `<a>` keeps only an `href` with an
/// `http`, `https` or `mailto` URL and always gets `rel="noopener noreferrer nofollow"`; `<img>`
/// keeps only `alt` and a `src` with an `http`, `https` or `cid` URL. Everything else goes:
/// scripts, styles, frames, objects and form controls with their content, every other element
/// (its text kept), every other attribute (`on*` handlers, `style`, `class`, …), comments, and
/// `javascript:`, `vbscript:`, `data:` and relative URLs. `<` and `>` never survive inside an
/// attribute value, so the output never contains `<script` even in an image's alt text.
///
/// The result is a fixed point: sanitising it again returns it unchanged.
pub fn sanitize_html(html: &str) -> String {
    // One pass is not always a fixed point: what the first pass leaves can parse differently the
    // second time (`</style>\u{feff}` leaves a U+FEFF, which the parser then drops as a byte-order
    // mark), so clean until nothing changes. Real input settles after one extra pass; the bound
    // only guards against a pathological cycle.
    let mut current = SANITIZER.clean(html).to_string();
    for _ in 0..4 {
        let next = SANITIZER.clean(&current).to_string();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Per-element URL schemes and attribute values that cannot be read as markup.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        ("a", "href") => allowed_url(value, &LINK_SCHEMES),
        ("img", "src") => allowed_url(value, &IMAGE_SCHEMES),
        ("img", "alt") => Some(without_angle_brackets(value)),
        ("a", "rel") => Some(Cow::Borrowed(value)),
        _ => None,
    }
}

/// The URL, with `<` and `>` percent-encoded, when its scheme is one of `schemes`.
fn allowed_url<'u>(value: &'u str, schemes: &[&str]) -> Option<Cow<'u, str>> {
    let url = ammonia::Url::parse(value).ok()?;
    if !schemes.contains(&url.scheme()) {
        return None;
    }
    Some(if value.contains(['<', '>']) {
        Cow::Owned(value.replace('<', "%3C").replace('>', "%3E"))
    } else {
        Cow::Borrowed(value)
    })
}

fn without_angle_brackets(value: &str) -> Cow<'_, str> {
    if value.contains(['<', '>']) {
        Cow::Owned(value.replace(['<', '>'], ""))
    } else {
        Cow::Borrowed(value)
    }
}

/// Plain text from untrusted HTML: what a reader would see, a line per block, runs of
/// whitespace collapsed, at most one blank line in a row.
pub(crate) fn html_to_text(html: &str) -> String {
    // The cleaned fragment holds only attribute-less block tags, and every `<` of the text is
    // escaped, so each `<` here starts one of those tags and the next `>` ends it.
    let blocks = TEXT_ONLY.clean(html).to_string();
    let mut raw = String::with_capacity(blocks.len());
    let mut rest = blocks.as_str();
    let mut pre_depth = 0usize;
    while !rest.is_empty() {
        let (segment, tag, after) = match rest.find('<') {
            Some(start) => {
                let end = rest[start..]
                    .find('>')
                    .map_or(rest.len(), |end| start + end + 1);
                (&rest[..start], &rest[start..end], &rest[end..])
            }
            None => (rest, "", ""),
        };
        push_text(&mut raw, segment, pre_depth > 0);
        let closing = tag.starts_with("</");
        let name = tag
            .trim_start_matches(['<', '/'])
            .trim_end_matches(['>', '/']);
        match name {
            "" => {}
            "br" => raw.push('\n'),
            "td" | "th" => raw.push(' '),
            "li" | "tr" | "div" => {
                if !raw.ends_with('\n') {
                    raw.push('\n');
                }
            }
            _ => {
                if name == "pre" {
                    pre_depth = if closing {
                        pre_depth.saturating_sub(1)
                    } else {
                        pre_depth + 1
                    };
                }
                raw.push_str("\n\n");
            }
        }
        rest = after;
    }

    let mut text = String::with_capacity(raw.len());
    let mut blank_pending = false;
    for line in raw.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            blank_pending = !text.is_empty();
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank_pending { "\n\n" } else { "\n" });
        }
        blank_pending = false;
        text.push_str(&words.join(" "));
    }
    text
}

/// Appends serialised text with its entities decoded; outside `<pre>` a line break in the
/// source is just a space, as in a browser.
fn push_text(out: &mut String, serialised: &str, preformatted: bool) {
    let decoded = serialised
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    if preformatted {
        out.push_str(&decoded);
    } else {
        out.extend(
            decoded
                .chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
        );
    }
}
