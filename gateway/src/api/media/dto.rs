//! Request and response bodies of the Media tag.

use omnistream_commands::infra::media::{media_url, StoredMedia};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::Validate;

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

/// Query of `GET /api/media/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// `true`: `Content-Disposition: attachment`.
    pub(super) download: Option<bool>,
    /// Signed links only: the tenant.
    pub(super) t: Option<Uuid>,
    /// Signed links only: the expiry (Unix seconds).
    pub(super) e: Option<i64>,
    /// Signed links only: the signature.
    pub(super) s: Option<String>,
}

impl Validate for MediaQuery {
    fn validate(&mut self, _violations: &mut Violations) {}
}

/// The `attachments` entry of a message sending `media` (contract §3).
pub(crate) fn attachment(media: &StoredMedia) -> serde_json::Value {
    serde_json::json!({"media_id": media.id, "filename": media.filename,
                       "mime_type": media.mime_type, "size": media.size})
}
