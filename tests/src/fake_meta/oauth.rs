//! The OAuth side of the fake Graph API: the Facebook Login and Instagram Login code exchanges,
//! long-lived tokens, the user's Pages and their Page tokens, the webhook subscriptions of Pages
//! and Instagram accounts, and the Messenger profile (persistent menu) of each Page.
//!
//! Tokens are fixed (the constants below) and checked: a call made with the wrong kind of token
//! fails like Meta (code 190, or 210 where a Page token is needed). Every authorization code
//! works once; codes starting with `bad` never work.

use std::collections::{HashMap, HashSet};

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{bad_request, error, missing, ok, query_param, RecordedRequest, State};

/// Instagram Login: the short-lived token a code is exchanged for.
pub const FAKE_IG_SHORT_LIVED_TOKEN: &str = "IGAAfakeShortLived0001";
/// Instagram Login: the long-lived token `GET /access_token` hands out.
pub const FAKE_IG_LONG_LIVED_TOKEN: &str = "IGAAfakeLongLived7777";
/// Instagram Login: what `GET /refresh_access_token` trades [`FAKE_IG_LONG_LIVED_TOKEN`] for.
pub const FAKE_IG_REFRESHED_TOKEN: &str = "IGAAfakeRefreshed4321";
/// Seconds until [`FAKE_IG_LONG_LIVED_TOKEN`] expires, as Meta says (about 60 days).
pub const FAKE_IG_LONG_LIVED_EXPIRES_IN: i64 = 5_183_944;
/// `expires_in` of both Facebook Login user tokens.
const FB_USER_TOKEN_EXPIRES_IN: i64 = 5_183_944;
/// The Instagram professional account id (`user_id` of `GET /me`; webhooks' `entry[].id`).
pub const FAKE_IG_USER_ID: &str = "17841400000000001";
/// The app-scoped user id (the code exchange's `user_id`, `GET /me`'s `id`).
pub const FAKE_IG_APP_SCOPED_ID: &str = "26000000000000001";
/// The Instagram account's username.
pub const FAKE_IG_USERNAME: &str = "omnistream.shop";
/// Facebook Login: the short-lived user token a code is exchanged for.
pub const FAKE_FB_SHORT_USER_TOKEN: &str = "EAAfakeUserShort0002";
/// Facebook Login: the long-lived user token of `grant_type=fb_exchange_token`.
pub const FAKE_FB_LONG_USER_TOKEN: &str = "EAAfakeUserLong8888";
/// The Pages the Facebook user manages: `(page_id, name)`, listed over two result pages.
pub const FAKE_PAGES: [(&str, &str); 2] = [
    ("100000000000101", "Omni Shop"),
    ("100000000000102", "Omni Support"),
];

/// The Page access token of a Page in [`FAKE_PAGES`] (it ends with the Page id, so masked tokens
/// of different Pages differ).
pub fn fake_page_token(page_id: &str) -> String {
    format!("EAAfakePage{page_id}")
}

/// An Instagram Login token the fake knows as belonging to professional account `user_id`
/// (`GET /me` answers that `user_id`).
pub fn fake_ig_token(user_id: &str) -> String {
    format!("IGAAfakeUser{user_id}")
}

/// The professional account a [`fake_ig_token`] belongs to.
fn ig_user_of_token(token: &str) -> Option<&str> {
    token
        .strip_prefix("IGAAfakeUser")
        .filter(|id| !id.is_empty())
}

/// What the OAuth routes remember.
#[derive(Default)]
pub(super) struct OAuthState {
    used_codes: HashSet<String>,
    menus: HashMap<String, Value>,
}

fn page_name(page_id: &str) -> Option<&'static str> {
    FAKE_PAGES
        .iter()
        .find(|(id, _)| *id == page_id)
        .map(|(_, name)| *name)
}

fn page_of_token(token: &str) -> Option<&'static str> {
    FAKE_PAGES
        .iter()
        .map(|(id, _)| *id)
        .find(|id| fake_page_token(id) == token)
}

fn bad_token() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        190,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

/// api.instagram.com's own error shape (not the Graph API's).
fn instagram_oauth_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error_type": "OAuthException", "code": 400, "error_message": message})),
    )
        .into_response()
}

/// Answers the OAuth and Page routes; `None` leaves the request to the WhatsApp routes.
pub(super) fn route(
    state: &mut State,
    method: &Method,
    segments: &[&str],
    request: &RecordedRequest,
) -> Option<Response> {
    let query = request.query.as_deref();
    let param = |key: &str| query_param(query, key).filter(|v| !v.is_empty());
    let token = request
        .bearer_token()
        .map(str::to_owned)
        .or_else(|| param("access_token"));
    let token = token.as_deref();
    let response = match (method, segments) {
        (&Method::POST, ["oauth", "access_token"]) => instagram_code(state, request),
        (&Method::GET, ["oauth", "access_token"])
            if param("grant_type").as_deref() == Some("fb_exchange_token") =>
        {
            match missing(&param, &["client_id", "client_secret", "fb_exchange_token"]) {
                Some(response) => response,
                None if param("fb_exchange_token").as_deref() != Some(FAKE_FB_SHORT_USER_TOKEN) => {
                    bad_token()
                }
                None => token_answer(FAKE_FB_LONG_USER_TOKEN, FB_USER_TOKEN_EXPIRES_IN),
            }
        }
        (&Method::GET, ["oauth", "access_token"]) if param("redirect_uri").is_some() => {
            match missing(&param, &["client_id", "client_secret", "code"]) {
                Some(response) => response,
                None => match use_code(state, &param("code").unwrap_or_default()) {
                    Err(message) => bad_request(message),
                    Ok(()) => token_answer(FAKE_FB_SHORT_USER_TOKEN, FB_USER_TOKEN_EXPIRES_IN),
                },
            }
        }
        (&Method::GET, ["access_token"]) => instagram_token_trade(
            &param,
            &["grant_type", "client_secret", "access_token"],
            "ig_exchange_token",
            token,
            (FAKE_IG_SHORT_LIVED_TOKEN, FAKE_IG_LONG_LIVED_TOKEN),
        ),
        (&Method::GET, ["refresh_access_token"]) => instagram_token_trade(
            &param,
            &["grant_type", "access_token"],
            "ig_refresh_token",
            token,
            (FAKE_IG_LONG_LIVED_TOKEN, FAKE_IG_REFRESHED_TOKEN),
        ),
        (&Method::GET, ["me"]) if is_instagram(token) => ok(json!({
            "id": FAKE_IG_APP_SCOPED_ID,
            "user_id": FAKE_IG_USER_ID,
            "username": FAKE_IG_USERNAME,
            "name": "OmniStream Shop",
            "profile_picture_url": "https://cdn.example/ig/omnistream.jpg"
        })),
        (&Method::GET, ["me"]) => match token.and_then(ig_user_of_token) {
            Some(user_id) => ok(json!({
                "id": format!("26{user_id}"),
                "user_id": user_id,
                "username": format!("account.{user_id}"),
            })),
            None => bad_token(),
        },
        (&Method::POST, ["me", "subscribed_apps"]) if !is_instagram(token) => bad_token(),
        (&Method::POST, ["me", "subscribed_apps"]) => subscribed(&param),
        (&Method::GET, ["me", "accounts"]) => managed_pages(token, param("after").as_deref()),
        (_, ["me", "messenger_profile"]) => match token.and_then(page_of_token) {
            None => page_token_required(),
            Some(page_id) => messenger_profile(state, method, page_id, &param, &request.body),
        },
        // A Page token reads its own Page (how an account's token is confirmed).
        (&Method::GET, [page_id])
            if token == Some(fake_page_token(page_id).as_str())
                && !param("fields").is_some_and(|f| f.split(',').any(|f| f == "access_token")) =>
        {
            ok(json!({"id": page_id, "name": page_name(page_id).unwrap_or("A Page")}))
        }
        (&Method::GET, [_]) if token.is_some_and(|t| t.starts_with("EAAfakePage")) => error(
            StatusCode::BAD_REQUEST,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ),
        (&Method::GET, [page_id]) if page_name(page_id).is_some() => {
            if !is_user(token) {
                return Some(bad_token());
            }
            if !param("fields").is_some_and(|f| f.split(',').any(|f| f == "access_token")) {
                return Some(ok(json!({"id": page_id, "name": page_name(page_id)})));
            }
            ok(
                json!({"access_token": fake_page_token(page_id), "name": page_name(page_id), "id": page_id}),
            )
        }
        (&Method::POST | &Method::DELETE, [page_id, "subscribed_apps"])
            if page_name(page_id).is_some() =>
        {
            if token.and_then(page_of_token) != Some(*page_id) {
                page_token_required()
            } else if *method == Method::DELETE {
                ok(json!({"success": true}))
            } else {
                subscribed(&param)
            }
        }
        _ => return None,
    };
    Some(response)
}

fn is_instagram(token: Option<&str>) -> bool {
    matches!(
        token,
        Some(FAKE_IG_SHORT_LIVED_TOKEN | FAKE_IG_LONG_LIVED_TOKEN)
    )
}

fn is_user(token: Option<&str>) -> bool {
    matches!(
        token,
        Some(FAKE_FB_SHORT_USER_TOKEN | FAKE_FB_LONG_USER_TOKEN)
    )
}

fn page_token_required() -> Response {
    error(
        StatusCode::FORBIDDEN,
        210,
        "A page access token is required to request this resource.",
    )
}

/// `{"access_token","token_type":"bearer","expires_in"}`.
fn token_answer(token: &str, expires_in: i64) -> Response {
    ok(json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}))
}

/// An Instagram token trade (`GET /access_token`, `GET /refresh_access_token`): every one of
/// `keys` given, `grant_type` = `grant` and the token `from` (of `trade`) are required; answers
/// the token `to`.
fn instagram_token_trade(
    param: &impl Fn(&str) -> Option<String>,
    keys: &[&str],
    grant: &str,
    token: Option<&str>,
    (from, to): (&str, &str),
) -> Response {
    match missing(param, keys) {
        Some(response) => response,
        None if param("grant_type").as_deref() != Some(grant) => {
            bad_request(&format!("Unsupported grant_type: expected {grant}"))
        }
        None if token != Some(from) => bad_token(),
        None => token_answer(to, FAKE_IG_LONG_LIVED_EXPIRES_IN),
    }
}

/// Spends an authorization code: each works once, `bad…` never.
fn use_code(state: &mut State, code: &str) -> Result<(), &'static str> {
    if code.starts_with("bad") {
        return Err("Invalid verification code format.");
    }
    if !state.oauth.used_codes.insert(code.to_owned()) {
        return Err("This authorization code has been used.");
    }
    Ok(())
}

fn subscribed(param: &impl Fn(&str) -> Option<String>) -> Response {
    match param("subscribed_fields") {
        Some(_) => ok(json!({"success": true})),
        None => bad_request("The parameter subscribed_fields is required."),
    }
}

/// `POST /oauth/access_token` on api.instagram.com: a form with client_id, client_secret,
/// grant_type=authorization_code, redirect_uri and code. Codes starting with `legacy` get the
/// older flat answer, the others the `{"data":[…]}` one.
fn instagram_code(state: &mut State, request: &RecordedRequest) -> Response {
    let form: HashMap<String, String> = request
        .body
        .as_str()
        .map(|text| {
            form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    for key in [
        "client_id",
        "client_secret",
        "grant_type",
        "redirect_uri",
        "code",
    ] {
        if form.get(key).is_none_or(|v| v.is_empty()) {
            return instagram_oauth_error(&format!("Missing required field {key}"));
        }
    }
    if form["grant_type"] != "authorization_code" {
        return instagram_oauth_error("Invalid grant_type");
    }
    let code = &form["code"];
    if use_code(state, code).is_err() {
        return instagram_oauth_error("Matching code was not found or was already used");
    }
    let token = json!({
        "access_token": FAKE_IG_SHORT_LIVED_TOKEN,
        "user_id": FAKE_IG_APP_SCOPED_ID.parse::<u64>().unwrap_or_default(),
        "permissions": "instagram_business_basic,instagram_business_manage_messages"
    });
    if code.starts_with("legacy") {
        ok(token)
    } else {
        ok(json!({ "data": [token] }))
    }
}

/// `GET /me/accounts`: one Page per result page, linked by `paging.cursors.after` and `next`.
fn managed_pages(token: Option<&str>, after: Option<&str>) -> Response {
    if !is_user(token) {
        return bad_token();
    }
    let index = match after {
        None => 0,
        Some(cursor) => match cursor.strip_prefix("cursor-").and_then(|i| i.parse().ok()) {
            Some(index) if index < FAKE_PAGES.len() => index,
            _ => return bad_request("Invalid cursor"),
        },
    };
    let (id, name) = FAKE_PAGES[index];
    let mut paging = json!({"cursors": {"before": format!("cursor-{index}"), "after": format!("cursor-{}", index + 1)}});
    if index + 1 < FAKE_PAGES.len() {
        // Like Meta's, an absolute URL carrying the token: clients must not need to follow it.
        paging["next"] = json!(format!(
            "https://graph.facebook.com/v21.0/me/accounts?access_token=REDACTED&fields=id%2Cname&after=cursor-{}",
            index + 1
        ));
    }
    ok(json!({"data": [{"id": id, "name": name}], "paging": paging}))
}

/// `/me/messenger_profile` of the Page whose token was used.
fn messenger_profile(
    state: &mut State,
    method: &Method,
    page_id: &str,
    param: &impl Fn(&str) -> Option<String>,
    body: &Value,
) -> Response {
    match *method {
        Method::GET => {
            if param("fields").is_none() {
                return bad_request("The parameter fields is required.");
            }
            match state.oauth.menus.get(page_id) {
                Some(menu) => ok(json!({"data": [{"persistent_menu": menu}]})),
                None => ok(json!({"data": []})),
            }
        }
        Method::POST => match body.get("persistent_menu") {
            Some(menu @ Value::Array(_)) => {
                state.oauth.menus.insert(page_id.to_owned(), menu.clone());
                ok(json!({"result": "success"}))
            }
            _ => bad_request("Invalid parameter: persistent_menu must be an array"),
        },
        Method::DELETE => {
            let fields = body.get("fields").and_then(Value::as_array);
            if !fields.is_some_and(|f| f.iter().any(|f| f == "persistent_menu")) {
                return bad_request("The parameter fields is required.");
            }
            state.oauth.menus.remove(page_id);
            ok(json!({"result": "success"}))
        }
        _ => bad_request("Unsupported request method"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, Http};
    use super::super::FakeMeta;
    use super::*;

    #[tokio::test]
    async fn instagram_login_codes_work_once_and_tokens_are_checked() {
        let fake = FakeMeta::start().await;
        let http = Http::of(&fake);
        let form = [
            ("client_id", "app"),
            ("client_secret", "secret"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.example/cb"),
            ("code", "AQ-1"),
        ];
        let exchange = || call(http.post("/oauth/access_token").form(&form));
        let (_, first) = exchange().await;
        assert_eq!(first["data"][0]["access_token"], FAKE_IG_SHORT_LIVED_TOKEN);
        let (again, body) = exchange().await;
        assert_eq!(again, 400);
        assert_eq!(body["error_type"], "OAuthException");
        let (missing, _) = call(http.post("/oauth/access_token").form(&form[..4])).await;
        assert_eq!(missing, 400);

        let (_, long) = call(http.get(&format!(
            "/access_token?grant_type=ig_exchange_token&client_secret=s&access_token={FAKE_IG_SHORT_LIVED_TOKEN}"
        )))
        .await;
        assert_eq!(long["access_token"], FAKE_IG_LONG_LIVED_TOKEN);
        assert_eq!(long["expires_in"], FAKE_IG_LONG_LIVED_EXPIRES_IN);
        let (_, profile) = call(
            http.get("/v21.0/me?fields=user_id,username")
                .bearer_auth(FAKE_IG_LONG_LIVED_TOKEN),
        )
        .await;
        assert_eq!(profile["user_id"], FAKE_IG_USER_ID);
        let (wrong, _) = call(http.get("/me").bearer_auth("EAAG-whatsapp")).await;
        assert_eq!(wrong, 400);
    }

    #[tokio::test]
    async fn pages_need_their_own_page_token() {
        let fake = FakeMeta::start().await;
        let http = Http::of(&fake);
        let (page, _) = FAKE_PAGES[0];
        let subscribe = format!("/{page}/subscribed_apps");
        let (user_subscribes, _) = call(
            http.post(&format!("{subscribe}?subscribed_fields=messages"))
                .bearer_auth(FAKE_FB_LONG_USER_TOKEN),
        )
        .await;
        assert_eq!(user_subscribes, 403);
        let (_, access) = call(
            http.get(&format!("/{page}?fields=access_token,name"))
                .bearer_auth(FAKE_FB_LONG_USER_TOKEN),
        )
        .await;
        assert_eq!(access["access_token"], fake_page_token(page));
        let (no_fields, _) = call(http.post(&subscribe).bearer_auth(fake_page_token(page))).await;
        assert_eq!(no_fields, 400);
        let (_, second) = call(
            http.get("/me/accounts?after=cursor-1")
                .bearer_auth(FAKE_FB_SHORT_USER_TOKEN),
        )
        .await;
        assert_eq!(second["data"][0]["id"], FAKE_PAGES[1].0);
        assert!(second["paging"].get("next").is_none());
    }
}
