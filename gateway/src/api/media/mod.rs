//! Media tag: `POST /api/media/upload` stores a file in the media store
//! ([`omnistream_commands::infra::media`]), `GET /api/media/{id}` streams it back.
//!
//! Reading follows the conversation visibility rule: media attached to a conversation the
//! caller cannot see, or of another tenant, is 404. A signed, time-limited link
//! (`?t=&e=&s=`, issued by the outbound sender for providers that fetch media by URL) is a
//! credential of its own for that one file. Every response carries `X-Content-Type-Options:
//! nosniff` and a sandboxing CSP, and types outside the upload allow-list (e.g. HTML or SVG that
//! arrived by email) are always served as downloads, so stored files can never run script on
//! the API's origin.
//!
//! Inbound WhatsApp media is named by its `/api/media/{id}` URL before it is stored: the first
//! read fetches it from the Graph API with the account's token
//! ([`omnistream_commands::channels::meta::media`]), stores it, then streams it; the provider
//! failing is 502 `upstream_error`.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use omnistream_commands::channels::meta::media::{
    fetch_whatsapp, pending_whatsapp_media, FetchError, WhatsAppMediaSource,
};
use omnistream_commands::infra::media::{
    media_url, safe_filename, upload_type, MediaError, NewMedia, StoredMedia, MAX_MEDIA_BYTES,
    UPLOAD_TYPES,
};
use omnistream_domain::TenantId;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::conversations::{load_visible, push_visibility};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{IdPath, ValidQuery, Validate};

/// `MediaUploadResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaUploadResponse {
    /// Pass it as `media_id` in `SendMessageRequest`.
    pub id: Uuid,
    /// `/api/media/{id}`.
    pub url: String,
    pub filename: String,
    pub mime_type: String,
    /// Bytes.
    pub size: i64,
}

impl From<StoredMedia> for MediaUploadResponse {
    fn from(media: StoredMedia) -> Self {
        Self {
            url: media_url(media.id),
            id: media.id,
            filename: media.filename,
            mime_type: media.mime_type,
            size: media.size,
        }
    }
}

/// The `multipart/form-data` fields of an upload (for the OpenAPI document only: the handler
/// reads the parts as they stream in).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MediaUploadForm {
    /// The file (≤ 25 MiB); its part's Content-Type must be an allowed type.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A conversation visible to the caller that the file belongs to.
    conversation_id: Option<Uuid>,
}

/// How much of a file `GET /api/media/{id}` reads at a time.
const STREAM_CHUNK_BYTES: usize = 256 * 1024;

fn too_large() -> ApiError {
    ApiError::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: "the file is larger than 25 MiB".into(),
    }
}

fn unsupported(message: &'static str) -> ApiError {
    ApiError::Status {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: message.into(),
    }
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::invalid_field("body", error.body_text())
    }
}

fn storage_error(error: MediaError) -> ApiError {
    match error {
        MediaError::TooLarge { .. } => too_large(),
        other => ApiError::Internal(other.into()),
    }
}

/// Upload a media file
#[utoipa::path(
    post, path = "/api/media/upload", tag = "Media",
    request_body(content = MediaUploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = MediaUploadResponse),
              (status = 400, description = "no `file` part, an unknown part, or a malformed conversation_id", body = ErrorResponse),
              (status = 403, body = ErrorResponse),
              (status = 404, description = "conversation_id is not a conversation visible to the caller", body = ErrorResponse),
              (status = 413, description = "payload_too_large: the file is over 25 MiB", body = ErrorResponse),
              (status = 415, description = "unsupported_media_type: not multipart, or a file type outside the allow-list", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn upload_media(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<MediaUploadResponse>)> {
    let mut multipart =
        multipart.map_err(|_| unsupported("expected a multipart/form-data body"))?;
    let mut file = None;
    let mut conversation_id = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" if file.is_none() => {
                let filename = safe_filename(field.file_name().unwrap_or_default());
                let mime_type = upload_type(field.content_type(), &filename).ok_or_else(|| {
                    unsupported("this file type is not allowed (see the Media tag for the list)")
                })?;
                let mut writer = state
                    .conversation
                    .media
                    .writer(MAX_MEDIA_BYTES)
                    .await
                    .map_err(storage_error)?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if let Err(error) = writer.write(&chunk).await {
                        // Read the rest (the route's body limit bounds it), so the client gets
                        // the 413 instead of a connection closed mid-upload.
                        while let Ok(Some(_)) = field.chunk().await {}
                        return Err(storage_error(error));
                    }
                }
                file = Some((writer, filename, mime_type));
            }
            "file" => return Err(ApiError::invalid_field("file", "give one file")),
            "conversation_id" => {
                let text = field.text().await.map_err(multipart_error)?;
                let id = Uuid::parse_str(text.trim())
                    .map_err(|_| ApiError::invalid_field("conversation_id", "must be a UUID"))?;
                conversation_id = Some(id);
            }
            other => return Err(ApiError::invalid_field(other.to_owned(), "unknown field")),
        }
    }
    let Some((writer, filename, mime_type)) = file else {
        return Err(ApiError::invalid_field("file", "is required"));
    };
    if let Some(id) = conversation_id {
        load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    }
    let new = NewMedia {
        id: Uuid::new_v4(),
        tenant: caller.tenant_id,
        conversation_id,
        filename,
        mime_type,
    };
    let stored = writer
        .commit(&state.conversation.media, new)
        .await
        .map_err(storage_error)?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Query of `GET /api/media/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// `true`: `Content-Disposition: attachment`.
    download: Option<bool>,
    /// Signed links only: the tenant.
    t: Option<Uuid>,
    /// Signed links only: the expiry (Unix seconds).
    e: Option<i64>,
    /// Signed links only: the signature.
    s: Option<String>,
}

impl Validate for MediaQuery {
    fn validate(&mut self, _violations: &mut Violations) {}
}

/// Whether `caller` may read `media`: its tenant's, and its conversation (if any) visible.
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    media: &StoredMedia,
) -> Result<bool> {
    let Some(conversation) = media.conversation_id else {
        return Ok(media.tenant_id == caller.tenant_id.as_uuid());
    };
    conversation_visible(state, caller, conversation).await
}

/// Whether `caller` can see `conversation`.
async fn conversation_visible(
    state: &AppState,
    caller: &Caller,
    conversation: Uuid,
) -> Result<bool> {
    let mut builder =
        QueryBuilder::<Postgres>::new("SELECT EXISTS (SELECT 1 FROM conversations c WHERE c.id = ");
    builder.push_bind(conversation);
    push_visibility(&mut builder, caller);
    builder.push(")");
    Ok(builder.build_query_scalar().fetch_one(&state.pool).await?)
}

/// The `attachments` entry of a message sending `media` (contract §3).
pub(crate) fn attachment(media: &StoredMedia) -> serde_json::Value {
    serde_json::json!({"media_id": media.id, "filename": media.filename,
                       "mime_type": media.mime_type, "size": media.size})
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266).
fn disposition(kind: &str, filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Inbound WhatsApp media `id` not stored yet, fetched from the provider and stored, when it
/// belongs to a message in a conversation `caller` can see (`None` otherwise).
async fn fetch_inbound(state: &AppState, caller: &Caller, id: Uuid) -> Result<Option<StoredMedia>> {
    let Some(pending) = pending_whatsapp_media(&state.pool, caller.tenant_id, id).await? else {
        return Ok(None);
    };
    if !conversation_visible(state, caller, pending.conversation_id).await? {
        return Ok(None);
    }
    let source = WhatsAppMediaSource {
        pool: &state.pool,
        secrets: &state.channels.secrets,
        graph: &state.channels.graph,
        store: &state.conversation.media,
    };
    match fetch_whatsapp(source, caller.tenant_id, id, &pending).await {
        Ok(stored) => Ok(Some(stored)),
        Err(FetchError::Storage(error)) if !matches!(error, MediaError::TooLarge { .. }) => {
            Err(storage_error(error))
        }
        Err(error) => {
            // The error names no token and no URL query (see meta_media).
            tracing::warn!(media_id = %id, %error, "inbound WhatsApp media could not be fetched");
            Err(ApiError::Upstream {
                provider: "whatsapp",
                upstream_status: error.upstream_status(),
                message: "the media could not be fetched from WhatsApp".into(),
            })
        }
    }
}

/// Download or proxy a media file
#[utoipa::path(
    get, path = "/api/media/{id}", tag = "Media", params(("id" = Uuid, Path), MediaQuery),
    responses((status = 200, description = "The bytes, with the stored Content-Type; `?download=true` adds `Content-Disposition: attachment`", content_type = "application/octet-stream"),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 404, description = "unknown, another organization's, or attached to a conversation the caller cannot see", body = ErrorResponse),
              (status = 502, description = "upstream_error: inbound channel media could not be fetched from the provider", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []), ())
)]
async fn get_media(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<MediaQuery>,
    caller: std::result::Result<Caller, ApiError>,
) -> Result<Response> {
    let media = match (&query.t, &query.e, &query.s) {
        (Some(tenant), Some(expires), Some(signature)) => {
            if !state
                .media_links
                .verify(*tenant, id, *expires, signature, Utc::now())
            {
                return Err(ApiError::NotFound);
            }
            state
                .conversation
                .media
                .find(TenantId(*tenant), id)
                .await
                .map_err(storage_error)?
        }
        _ => {
            let caller = caller?;
            let media = state
                .conversation
                .media
                .find(caller.tenant_id, id)
                .await
                .map_err(storage_error)?;
            match media {
                Some(media) if visible(&state, &caller, &media).await? => Some(media),
                Some(_) => None,
                None => fetch_inbound(&state, &caller, id).await?,
            }
        }
    };
    let media = media.ok_or(ApiError::NotFound)?;
    let file = state
        .conversation
        .media
        .open(&media)
        .await
        .map_err(storage_error)?;
    let inline = UPLOAD_TYPES.contains(&media.mime_type.as_str()) && query.download != Some(true);
    let content_type = HeaderValue::from_str(&media.mime_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_LENGTH, HeaderValue::from(media.size)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=300"),
        ),
        (
            header::CONTENT_DISPOSITION,
            disposition(
                if inline { "inline" } else { "attachment" },
                &media.filename,
            ),
        ),
    ];
    // Every read of a `tokio::fs::File` is a trip to the blocking pool: read in large chunks
    // rather than `ReaderStream`'s default 4 KiB (6,400 trips for a 25 MiB file).
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        STREAM_CHUNK_BYTES,
    ));
    Ok((headers, body).into_response())
}

/// Routes of the Media tag. Uploads may be up to 25 MiB (plus the multipart framing); every
/// other route keeps the API's 2 MiB body limit.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_media))
        .layer(DefaultBodyLimit::max(
            MAX_MEDIA_BYTES as usize + 1024 * 1024,
        ))
        .merge(OpenApiRouter::new().routes(routes!(get_media)))
}
