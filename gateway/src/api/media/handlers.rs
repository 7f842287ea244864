//! The Media tag's handlers: upload into the media store, and read back (by the caller's
//! visibility or a signed link), fetching inbound WhatsApp media on its first read.

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use omnistream_commands::channels::meta::media::{
    fetch_whatsapp, pending_whatsapp_media, FetchError, WhatsAppMediaSource,
};
use omnistream_commands::infra::media::{
    safe_filename, upload_type, MediaError, MediaLinks, MediaStore, NewMedia, StoredMedia,
    MAX_MEDIA_BYTES, UPLOAD_TYPES,
};
use omnistream_domain::TenantId;
use omnistream_projections::inbox::queries;
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::{MediaQuery, MediaUploadForm, MediaUploadResponse};
use crate::api::conversations::{load_visible, viewer};
use crate::app::ChannelClients;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{IdPath, ValidQuery};

/// How much of a file `GET /api/media/{id}` reads at a time.
const STREAM_CHUNK_BYTES: usize = 256 * 1024;

/// 413 `payload_too_large`.
fn too_large() -> ApiError {
    ApiError::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: "the file is larger than 25 MiB".into(),
    }
}

/// 415 `unsupported_media_type`.
fn unsupported(message: &'static str) -> ApiError {
    ApiError::Status {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: message.into(),
    }
}

/// A malformed or oversized multipart body.
fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::invalid_field("body", error.body_text())
    }
}

/// A media store failure: 413 for a file over the limit, 500 otherwise.
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
pub(super) async fn upload_media(
    State(pool): State<PgPool>,
    State(store): State<MediaStore>,
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
                let mut writer = store.writer(MAX_MEDIA_BYTES).await.map_err(storage_error)?;
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
        load_visible(&pool, &caller, id).await?;
    }
    let new = NewMedia {
        id: Uuid::new_v4(),
        tenant: caller.tenant_id,
        conversation_id,
        filename,
        mime_type,
    };
    let stored = writer.commit(&store, new).await.map_err(storage_error)?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Whether `caller` may read `media`: its tenant's, and its conversation (if any) visible.
async fn visible(pool: &PgPool, caller: &Caller, media: &StoredMedia) -> Result<bool> {
    let Some(conversation) = media.conversation_id else {
        return Ok(media.tenant_id == caller.tenant_id.as_uuid());
    };
    Ok(queries::is_visible(pool, caller.tenant_id, viewer(caller), conversation).await?)
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
async fn fetch_inbound(
    pool: &PgPool,
    store: &MediaStore,
    channels: &ChannelClients,
    caller: &Caller,
    id: Uuid,
) -> Result<Option<StoredMedia>> {
    let Some(pending) = pending_whatsapp_media(pool, caller.tenant_id, id).await? else {
        return Ok(None);
    };
    if !queries::is_visible(
        pool,
        caller.tenant_id,
        viewer(caller),
        pending.conversation_id,
    )
    .await?
    {
        return Ok(None);
    }
    let source = WhatsAppMediaSource {
        pool,
        secrets: &channels.secrets,
        graph: &channels.graph,
        store,
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
pub(super) async fn get_media(
    State(pool): State<PgPool>,
    State(store): State<MediaStore>,
    State(links): State<MediaLinks>,
    State(channels): State<ChannelClients>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<MediaQuery>,
    caller: std::result::Result<Caller, ApiError>,
) -> Result<Response> {
    let media = match (&query.t, &query.e, &query.s) {
        (Some(tenant), Some(expires), Some(signature)) => {
            if !links.verify(*tenant, id, *expires, signature, Utc::now()) {
                return Err(ApiError::NotFound);
            }
            store
                .find(TenantId(*tenant), id)
                .await
                .map_err(storage_error)?
        }
        _ => {
            let caller = caller?;
            let media = store
                .find(caller.tenant_id, id)
                .await
                .map_err(storage_error)?;
            match media {
                Some(media) if visible(&pool, &caller, &media).await? => Some(media),
                Some(_) => None,
                None => fetch_inbound(&pool, &store, &channels, &caller, id).await?,
            }
        }
    };
    let media = media.ok_or(ApiError::NotFound)?;
    let file = store.open(&media).await.map_err(storage_error)?;
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
