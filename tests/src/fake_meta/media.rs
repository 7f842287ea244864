//! The media side of the fake: WhatsApp media behind an id and Messenger/Instagram CDN files.
//!
//! | route | answer |
//! |---|---|
//! | `GET /{media_id}` (the media's token) | `{"messaging_product":"whatsapp","url","mime_type","sha256" (hex),"file_size" (a string),"id"}`, as Meta's Cloud API; another token → 401 code 190 |
//! | `GET /whatsapp_business/attachments/?mid={media_id}&ext&hash` (the media's token as `Authorization: Bearer`) | the bytes with their Content-Type; no or another token → 401 |
//! | `GET /cdn/{name}?oh&oe` (no token, like Meta's signed CDN URLs) | the bytes with their Content-Type, until [`FakeMeta::expire_cdn`]: then 404 |

use std::collections::HashMap;

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{error, lock, ok, query_param, FakeMeta, RecordedRequest, State};

/// A file the fake serves.
#[derive(Debug, Clone)]
struct FakeFile {
    mime_type: String,
    bytes: Vec<u8>,
    /// WhatsApp media only: the access token that may read it.
    token: Option<String>,
}

/// The files of one fake.
#[derive(Default)]
pub(super) struct MediaState {
    whatsapp: HashMap<String, FakeFile>,
    cdn: HashMap<String, FakeFile>,
}

impl FakeMeta {
    /// Makes WhatsApp media `media_id` (the `image.id` of a webhook) readable with `token`.
    pub async fn add_whatsapp_media(
        &self,
        media_id: &str,
        mime_type: &str,
        bytes: &[u8],
        token: &str,
    ) {
        let file = FakeFile {
            mime_type: mime_type.to_owned(),
            bytes: bytes.to_vec(),
            token: Some(token.to_owned()),
        };
        lock(&self.state)
            .media
            .whatsapp
            .insert(media_id.to_owned(), file);
    }

    /// Serves `bytes` on the fake CDN under `name`; returns the signed-looking URL Meta would
    /// put in an attachment's `payload.url`.
    pub async fn serve_cdn(&self, name: &str, mime_type: &str, bytes: &[u8]) -> String {
        let file = FakeFile {
            mime_type: mime_type.to_owned(),
            bytes: bytes.to_vec(),
            token: None,
        };
        lock(&self.state).media.cdn.insert(name.to_owned(), file);
        format!(
            "{}/cdn/{name}?stp=dst-jpg&_nc_cat=1&oh=00_AfakeSignature&oe=67000000",
            self.base_url
        )
    }

    /// Stops serving CDN file `name` (its link expired): 404 from now on.
    pub async fn expire_cdn(&self, name: &str) {
        lock(&self.state).media.cdn.remove(name);
    }
}

/// Answers the media routes; `None` for any other request.
pub(super) fn route(
    state: &State,
    base_url: &str,
    method: &Method,
    segments: &[&str],
    request: &RecordedRequest,
) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let token = request.bearer_token();
    match segments {
        ["cdn", name] => Some(match state.media.cdn.get(*name) {
            Some(file) => bytes(file),
            None => (StatusCode::NOT_FOUND, "URL signature expired").into_response(),
        }),
        ["whatsapp_business", "attachments"] => {
            let id = query_param(request.query.as_deref(), "mid")?;
            let file = state.media.whatsapp.get(&id)?;
            Some(if token.is_some() && token == file.token.as_deref() {
                bytes(file)
            } else {
                (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
            })
        }
        [id] => {
            let file = state.media.whatsapp.get(*id)?;
            Some(if token.is_some() && token == file.token.as_deref() {
                ok(json!({
                    "messaging_product": "whatsapp",
                    "url": format!(
                        "{base_url}/whatsapp_business/attachments/?mid={id}&ext=1700000000&hash=ATfakeHash"
                    ),
                    "mime_type": file.mime_type,
                    "sha256": hex::encode(Sha256::digest(&file.bytes)),
                    "file_size": file.bytes.len().to_string(),
                    "id": id
                }))
            } else {
                error(
                    StatusCode::UNAUTHORIZED,
                    190,
                    "Invalid OAuth access token - Cannot parse access token",
                )
            })
        }
        _ => None,
    }
}

fn bytes(file: &FakeFile) -> Response {
    (
        [(header::CONTENT_TYPE, file.mime_type.clone())],
        file.bytes.clone(),
    )
        .into_response()
}
