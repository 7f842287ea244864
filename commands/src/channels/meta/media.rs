//! Inbound media of the Meta channels, copied into the media store ([`crate::infra::media`]).
//!
//! WhatsApp delivers a media id, not the file. The message names the media by the
//! `/api/media/{id}` URL it will be stored under (its id derived from the message, see
//! [`crate::infra::media::attachment_id`]); the first read ([`fetch_whatsapp`]) asks the Graph API (at
//! the configured base URL only) for the file's short-lived URL with the account's token,
//! checks that URL is Meta's (or on the configured Graph origin), downloads it with the same
//! token, checks Meta's SHA-256 and stores it. Messenger and Instagram deliver signed CDN URLs
//! that expire: [`copy_attachment`] copies the file when the message is received, under the
//! address rules of outgoing webhooks ([`crate::webhooks::wire::resolve_allowed`]).
//!
//! Every download is bounded by [`MAX_MEDIA_BYTES`] and [`FETCH_TIMEOUT`] and follows no
//! redirect; tokens and URL queries (CDN signatures) never appear in errors or logs. Storing is
//! idempotent by media id, so a retry or a second reader stores nothing twice.

use std::net::SocketAddr;
use std::time::Duration;

use omnistream_domain::TenantId;
use reqwest::Url;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::errors::{api_error, retry_after_seconds};
use super::{GraphClient, GraphError};
use crate::infra::media::{
    essence, extension_of, safe_filename, MediaError, MediaStore, NewMedia, StoredMedia,
    MAX_MEDIA_BYTES,
};
use crate::infra::secrets::SecretBox;
use crate::webhooks::wire::resolve_allowed;

/// The longest a whole download (connect, headers, body) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest connecting to a media host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest Graph API JSON answer read.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// Domains Meta serves media from (WhatsApp's `lookaside.fbsbx.com` and its CDNs); the Bearer
/// token is only ever sent there or to the configured Graph API origin.
const META_MEDIA_DOMAINS: &[&str] = &["fbsbx.com", "fbcdn.net", "whatsapp.net", "facebook.com"];

/// Why inbound media could not be fetched or copied.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The address is not one we may fetch (not Meta's, private, plain http, unresolvable).
    #[error("the media address is not allowed: {0}")]
    Refused(String),
    /// The Graph API refused the media id (expired, unknown, bad token…).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The media host answered an error status.
    #[error("the media host answered {0}")]
    Status(u16),
    /// Network failure or timeout.
    #[error("the media download failed: {0}")]
    Transport(String),
    /// An answer we cannot use (no URL, a SHA-256 that does not match the bytes…).
    #[error("the provider's answer is unusable: {0}")]
    Invalid(&'static str),
    /// The integration account has no usable access token.
    #[error("the integration account has no usable access token")]
    NoToken,
    /// Too large, or the media store failed.
    #[error(transparent)]
    Storage(#[from] MediaError),
}

impl FetchError {
    /// The HTTP status the provider answered, if it answered.
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            FetchError::Graph(GraphError::Api { status, .. }) | FetchError::Status(status) => {
                Some(*status)
            }
            _ => None,
        }
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        // The URL carries the CDN's signature in its query: never keep it.
        FetchError::Transport(error.without_url().to_string())
    }
}

/// An inbound WhatsApp message's media that is not stored yet: where to fetch it from.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingMedia {
    /// The conversation the message is in: only agents who can see it may read the media.
    pub conversation_id: Uuid,
    /// The WhatsApp account whose token fetches it.
    pub integration_account_id: Uuid,
    /// WhatsApp's media id (`image.id`, …).
    pub provider_media_id: String,
    /// The MIME type the webhook declared.
    pub mime_type: Option<String>,
    /// A document's file name.
    pub filename: Option<String>,
    /// `image`, `audio`, … (names a file that has no name of its own).
    pub message_type: String,
}

/// The inbound WhatsApp message of `tenant` whose media is `media_id`, if there is one.
pub async fn pending_whatsapp_media(
    pool: &PgPool,
    tenant: TenantId,
    media_id: Uuid,
) -> sqlx::Result<Option<PendingMedia>> {
    sqlx::query_as(
        "SELECT m.conversation_id, c.integration_account_id,
                m.data->'media'->>'provider_media_id' AS provider_media_id,
                m.media_mime_type AS mime_type, m.filename, m.type AS message_type
         FROM messages m
         JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
         WHERE m.tenant_id = $1 AND m.media_id = $2 AND m.direction = 'inbound'
           AND c.channel = 'whatsapp' AND c.integration_account_id IS NOT NULL
           AND m.data->'media'->>'provider_media_id' IS NOT NULL
         LIMIT 1",
    )
    .bind(tenant.as_uuid())
    .bind(media_id)
    .fetch_optional(pool)
    .await
}

/// What [`fetch_whatsapp`] needs: the database (for the account's token), the secrets that
/// open it, the configured Graph API and the media store.
#[derive(Debug, Clone, Copy)]
pub struct WhatsAppMediaSource<'a> {
    /// Where the account's sealed config is.
    pub pool: &'a PgPool,
    /// Opens the account's `access_token`.
    pub secrets: &'a SecretBox,
    /// The configured Graph API (`META_GRAPH_BASE_URL`): the only place media ids are asked.
    pub graph: &'a GraphClient,
    /// Where the file is kept.
    pub store: &'a MediaStore,
}

/// The `GET /{media-id}` answer of the Graph API.
#[derive(Debug, Default)]
struct MediaUrl {
    url: String,
    mime_type: Option<String>,
    /// Lowercase hex, when Meta sent 64 hex digits.
    sha256: Option<String>,
    file_size: Option<u64>,
}

impl MediaUrl {
    fn parse(body: &Value) -> Option<MediaUrl> {
        let text = |key: &str| {
            body.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        Some(MediaUrl {
            url: text("url")?.to_owned(),
            mime_type: text("mime_type").map(str::to_owned),
            sha256: text("sha256")
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase),
            // Meta sends the size as a string ("303833"); a number is accepted too.
            file_size: body
                .get("file_size")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())),
        })
    }
}

/// Fetches the WhatsApp media `pending` names from the Graph API and stores it as `media_id`
/// of `tenant` (see the module documentation); when it is already stored, that copy.
pub async fn fetch_whatsapp(
    source: WhatsAppMediaSource<'_>,
    tenant: TenantId,
    media_id: Uuid,
    pending: &PendingMedia,
) -> Result<StoredMedia, FetchError> {
    if let Some(stored) = source.store.find(tenant, media_id).await? {
        return Ok(stored);
    }
    // Meta's media ids are digits: anything else could walk the Graph API's paths.
    let provider_id = pending.provider_media_id.as_str();
    if provider_id.is_empty()
        || provider_id.len() > 64
        || !provider_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(FetchError::Invalid("the WhatsApp media id is malformed"));
    }
    let token = account_token(source, tenant, pending.integration_account_id).await?;
    let base = source.graph.base_url();
    let response = source
        .graph
        .http
        .get(format!("{base}/{provider_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| FetchError::Graph(e.into()))?;
    let status = response.status().as_u16();
    let retry_after = retry_after_seconds(response.headers());
    let body = read_limited(response, MAX_JSON_BYTES)
        .await
        .map_err(|e| FetchError::Graph(e.into()))?;
    if !(200..300).contains(&status) {
        return Err(api_error(status, &body, retry_after).into());
    }
    let answer = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| MediaUrl::parse(&v))
        .ok_or(FetchError::Invalid("the Graph API answer has no url"))?;
    if answer.file_size.is_some_and(|size| size > MAX_MEDIA_BYTES) {
        return Err(MediaError::TooLarge {
            limit: MAX_MEDIA_BYTES,
        }
        .into());
    }
    let url = Url::parse(&answer.url).map_err(|_| FetchError::Invalid("the media URL"))?;
    let pinned = match token_destination(&url, base)? {
        TokenDestination::GraphOrigin => None,
        TokenDestination::MetaMediaHost => Some(resolve(url.as_str(), source.store).await?.1),
    };
    let mime_type = answer
        .mime_type
        .as_deref()
        .or(pending.mime_type.as_deref())
        .and_then(essence)
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let filename = match pending.filename.as_deref() {
        Some(name) => safe_filename(name),
        None => {
            let extension = extension_of(&mime_type)
                .map(|e| format!(".{e}"))
                .unwrap_or_default();
            safe_filename(&format!(
                "{}-{provider_id}{extension}",
                pending.message_type
            ))
        }
    };
    let new = NewMedia {
        id: media_id,
        tenant,
        conversation_id: Some(pending.conversation_id),
        filename,
        mime_type,
    };
    let download = Download {
        url,
        pinned,
        bearer: Some(&token),
        expected_sha256: answer.sha256.as_deref(),
        type_from_response: false,
    };
    download.store(source.store, new).await
}

/// The decrypted `access_token` of WhatsApp account `account` of `tenant`.
async fn account_token(
    source: WhatsAppMediaSource<'_>,
    tenant: TenantId,
    account: Uuid,
) -> Result<String, FetchError> {
    let config: Option<Value> = sqlx::query_scalar(
        "SELECT config FROM integration_accounts
         WHERE tenant_id = $1 AND id = $2 AND channel = 'whatsapp'",
    )
    .bind(tenant.as_uuid())
    .bind(account)
    .fetch_optional(source.pool)
    .await
    .map_err(MediaError::from)?;
    let stored = config
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    let opened = source
        .secrets
        .open_config(tenant.as_uuid(), &stored)
        .map_err(|_| FetchError::NoToken)?;
    opened
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or(FetchError::NoToken)
}

/// Copies the Messenger or Instagram attachment at `url` (a CDN URL from Meta's signed payload)
/// into the store as `new`, unless media `new.id` is already stored (then that copy). The
/// response's Content-Type, when it names one, replaces `new.mime_type`.
pub async fn copy_attachment(
    store: &MediaStore,
    url: &str,
    new: NewMedia,
) -> Result<StoredMedia, FetchError> {
    if let Some(stored) = store.find(new.tenant, new.id).await? {
        return Ok(stored);
    }
    let (url, addresses) = resolve(url, store).await?;
    let download = Download {
        url,
        pinned: Some(addresses),
        bearer: None,
        expected_sha256: None,
        type_from_response: true,
    };
    download.store(store, new).await
}

/// `url` checked and resolved under the outgoing address rules, within [`CONNECT_TIMEOUT`].
async fn resolve(url: &str, store: &MediaStore) -> Result<(Url, Vec<SocketAddr>), FetchError> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        resolve_allowed(url, store.allows_private_sources()),
    )
    .await
    .map_err(|_| FetchError::Transport("resolving the media host timed out".into()))?
    .map_err(|refused| FetchError::Refused(refused.to_string()))
}

/// The file name an attachment at `url` is stored under: the last segment of its path.
pub fn attachment_filename(url: &str) -> String {
    let name = Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
        .unwrap_or_default();
    safe_filename(&name)
}

/// One bounded download into the store.
struct Download<'a> {
    url: Url,
    /// The vetted addresses to connect to (`None`: the configured Graph API origin).
    pinned: Option<Vec<SocketAddr>>,
    bearer: Option<&'a str>,
    /// Lowercase hex SHA-256 the bytes must have.
    expected_sha256: Option<&'a str>,
    /// Whether the response's Content-Type replaces the given MIME type.
    type_from_response: bool,
}

impl Download<'_> {
    async fn store(self, store: &MediaStore, mut new: NewMedia) -> Result<StoredMedia, FetchError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT);
        if let Some(addresses) = &self.pinned {
            let host = self.url.host_str().unwrap_or_default();
            builder = builder.no_proxy().resolve_to_addrs(host, addresses);
        }
        let client = builder.build()?;
        let mut request = client.get(self.url);
        if let Some(token) = self.bearer {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_MEDIA_BYTES)
        {
            return Err(MediaError::TooLarge {
                limit: MAX_MEDIA_BYTES,
            }
            .into());
        }
        if self.type_from_response {
            let declared = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(essence)
                .filter(|t| t != "application/octet-stream");
            if let Some(declared) = declared {
                new.mime_type = declared;
            }
        }
        let mut writer = store.writer(MAX_MEDIA_BYTES).await?;
        while let Some(chunk) = response.chunk().await? {
            writer.write(&chunk).await?;
        }
        if let Some(expected) = self.expected_sha256 {
            if writer.sha256_hex() != expected {
                return Err(FetchError::Invalid("the bytes do not match Meta's SHA-256"));
            }
        }
        Ok(writer.commit(store, new).await?)
    }
}

/// At most `limit` bytes of `response`'s body (the rest is not read).
async fn read_limited(mut response: reqwest::Response, limit: usize) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    body.truncate(limit);
    Ok(body)
}

/// Where a WhatsApp download URL (from the Graph API's answer) would take the account's token.
#[derive(Debug, PartialEq, Eq)]
enum TokenDestination {
    /// The operator's own Graph API origin (a proxy, or a fake in tests): trusted as configured.
    GraphOrigin,
    /// One of Meta's media hosts over https: still resolved under the outgoing address rules.
    MetaMediaHost,
}

/// Where `url` would take the token, or [`FetchError::Refused`] when it is neither Meta's nor
/// the configured Graph API's (`base`): the token is never sent anywhere else.
fn token_destination(url: &Url, base: &str) -> Result<TokenDestination, FetchError> {
    if same_origin(url, base) {
        Ok(TokenDestination::GraphOrigin)
    } else if url.scheme() == "https" && url.host_str().is_some_and(is_meta_media_host) {
        Ok(TokenDestination::MetaMediaHost)
    } else {
        Err(FetchError::Refused(
            "the media URL is neither Meta's nor the Graph API's".into(),
        ))
    }
}

/// Whether `url` has the scheme, host and port of `base`.
fn same_origin(url: &Url, base: &str) -> bool {
    Url::parse(base).is_ok_and(|base| {
        base.scheme() == url.scheme()
            && base.host_str() == url.host_str()
            && base.port_or_known_default() == url.port_or_known_default()
    })
}

/// Whether `host` is one of [`META_MEDIA_DOMAINS`] or under one.
fn is_meta_media_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    META_MEDIA_DOMAINS.iter().any(|domain| {
        host == *domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_meta_media_hosts_are_meta() {
        assert!(is_meta_media_host("lookaside.fbsbx.com"));
        assert!(is_meta_media_host("scontent.xx.fbcdn.net"));
        assert!(is_meta_media_host("mmg.whatsapp.net"));
        assert!(!is_meta_media_host("fbsbx.com.evil.example"));
        assert!(!is_meta_media_host("evilfbsbx.com"));
        assert!(!is_meta_media_host("example.com"));
    }

    #[test]
    fn the_token_goes_only_to_meta_media_hosts_or_the_graph_origin() {
        let base = "https://graph.facebook.com/v21.0";
        let to = |u: &str| token_destination(&Url::parse(u).unwrap(), base);
        assert_eq!(
            to("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1").unwrap(),
            TokenDestination::MetaMediaHost
        );
        assert_eq!(
            to("https://graph.facebook.com/v21.0/1/file").unwrap(),
            TokenDestination::GraphOrigin
        );
        for refused in [
            "https://attacker.example/steal",
            "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
            "https://lookaside.fbsbx.com.attacker.example/x",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(
                matches!(to(refused), Err(FetchError::Refused(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let base = "http://127.0.0.1:4000/v21.0";
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(same_origin(&url("http://127.0.0.1:4000/dl?mid=1"), base));
        assert!(!same_origin(&url("http://127.0.0.1:4001/dl"), base));
        assert!(!same_origin(&url("https://127.0.0.1:4000/dl"), base));
        assert!(!same_origin(&url("http://localhost:4000/dl"), base));
    }

    #[test]
    fn graph_media_answers_parse_in_meta_format() {
        let hex = "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3";
        let parsed = MediaUrl::parse(&json!({
            "messaging_product": "whatsapp",
            "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2&hash=3",
            "mime_type": "image/jpeg", "sha256": hex, "file_size": "303833", "id": "1"
        }))
        .unwrap();
        assert_eq!(parsed.file_size, Some(303_833));
        assert_eq!(parsed.sha256.as_deref(), Some(hex));
        assert_eq!(parsed.mime_type.as_deref(), Some("image/jpeg"));
        let numeric =
            MediaUrl::parse(&json!({"url": "https://x", "file_size": 12, "sha256": "abc="}));
        let numeric = numeric.unwrap();
        assert_eq!(numeric.file_size, Some(12));
        assert_eq!(
            numeric.sha256, None,
            "a digest that is not hex is not checked"
        );
        assert!(MediaUrl::parse(&json!({"id": "1"})).is_none());
    }

    #[test]
    fn attachment_filenames_come_from_the_url_path() {
        assert_eq!(
            attachment_filename(
                "https://scontent.xx.fbcdn.net/v/t1.15752-9/4512_n.jpg?stp=dst&oh=x"
            ),
            "4512_n.jpg"
        );
        assert_eq!(attachment_filename("not a url"), "file");
    }
}
