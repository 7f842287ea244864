//! Cross-site request forgery guard for cookie-authenticated writes.
//!
//! A browser attaches the session cookie to cross-site form posts, which can only carry the
//! "simple" content types (`text/plain`, form encodings) and no custom headers. A state-changing
//! request that authenticates by cookie alone must therefore carry `Content-Type:
//! application/json` or an `X-Requested-With` header, neither of which a cross-site form can
//! send (and the API answers no CORS preflight). Bearer and API-key requests are not affected:
//! a browser never adds those by itself.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::SESSION_COOKIE;
use crate::http::error::ApiError;

/// The header a browser client sends with cookie-authenticated writes that have no JSON body.
pub const REQUESTED_WITH: &str = "x-requested-with";

/// Middleware: 403 `forbidden` for a cookie-authenticated write that a cross-site form could
/// have sent. Logout is exempt (it always answers 200 and only ends the session).
pub async fn guard(request: Request, next: Next) -> Response {
    if needs_proof(request.method(), request.uri().path(), request.headers())
        && !has_proof(request.headers())
    {
        return ApiError::Forbidden {
            code: "forbidden",
            message: "a cookie-authenticated write needs Content-Type: application/json or an X-Requested-With header".into(),
        }
        .into_response();
    }
    next.run(request).await
}

fn needs_proof(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let cookie_only = !headers.contains_key(header::AUTHORIZATION)
        && !headers.contains_key("x-api-key")
        && CookieJar::from_headers(headers)
            .get(SESSION_COOKIE)
            .is_some();
    writes && cookie_only && path.starts_with("/api/") && path != "/api/auth/logout"
}

fn has_proof(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| {
            mime.type_() == mime::APPLICATION
                && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
        });
    json || headers.contains_key(REQUESTED_WITH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_cookie_authenticated_writes_need_proof() {
        let cookie = headers(&[("cookie", "omnistream_token=abc")]);
        assert!(needs_proof(&Method::POST, "/api/notes", &cookie));
        assert!(needs_proof(&Method::DELETE, "/api/agents/1", &cookie));
        assert!(!needs_proof(&Method::GET, "/api/auth/token", &cookie));
        assert!(!needs_proof(&Method::POST, "/api/auth/logout", &cookie));
        let bearer = headers(&[
            ("cookie", "omnistream_token=abc"),
            ("authorization", "Bearer x"),
        ]);
        assert!(!needs_proof(&Method::POST, "/api/notes", &bearer));
        assert!(!needs_proof(&Method::POST, "/api/notes", &HeaderMap::new()));
    }

    #[test]
    fn json_or_a_custom_header_is_proof_and_simple_types_are_not() {
        assert!(has_proof(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(has_proof(&headers(&[(
            "content-type",
            "application/merge-patch+json"
        )])));
        assert!(has_proof(&headers(&[(
            "x-requested-with",
            "XMLHttpRequest"
        )])));
        assert!(!has_proof(&headers(&[("content-type", "text/plain")])));
        assert!(!has_proof(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!has_proof(&headers(&[(
            "content-type",
            "multipart/form-data; boundary=x"
        )])));
        assert!(!has_proof(&HeaderMap::new()));
    }
}
