//! Media storage: uploaded files and inbound attachments, kept on the local filesystem under
//! `<data_dir>/media/<tenant>/<id>` with one `media` row each (see `0008_media.sql`).
//!
//! Bytes are written to a temporary file under `<data_dir>/media/.incoming`, fsynced, renamed
//! into place (and the directory fsynced), and only then is the row inserted: an id that was
//! acknowledged always has its bytes. A crash in between leaves at most an orphan file, never a
//! row without bytes. Ids that must survive a retry (an inbound email processed twice) are
//! derived deterministically ([`attachment_id`]) and inserted with `ON CONFLICT DO NOTHING`.
//!
//! [`MediaLinks`] signs time-limited public download links for providers that fetch media by
//! URL (the Meta channels); a link names the tenant, the media and its expiry, and carries an
//! HMAC over the three.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use omnistream_domain::TenantId;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::secrets::{constant_time_eq, hmac_sha256};

/// The largest file accepted (contract §9: 25 MiB).
pub const MAX_MEDIA_BYTES: u64 = 25 * 1024 * 1024;

/// How long a signed public link stays valid.
pub const PUBLIC_LINK_SECONDS: i64 = 24 * 3600;

/// The path under which the API serves stored media.
const MEDIA_PATH: &str = "/api/media/";

const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f6d_6e69_7374_7265_616d_0000_6d65_6469);

/// MIME types an upload may have (contract §9): images, video and audio WhatsApp accepts, PDF,
/// plain text, MS Office and OpenDocument.
pub const UPLOAD_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "video/mp4",
    "video/3gpp",
    "audio/ogg",
    "audio/mpeg",
    "audio/aac",
    "audio/mp4",
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
];

/// File extensions of [`UPLOAD_TYPES`], for files sent as `application/octet-stream`.
const EXTENSIONS: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("webp", "image/webp"),
    ("mp4", "video/mp4"),
    ("3gp", "video/3gpp"),
    ("ogg", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("mp3", "audio/mpeg"),
    ("aac", "audio/aac"),
    ("m4a", "audio/mp4"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("doc", "application/msword"),
    ("xls", "application/vnd.ms-excel"),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
];

/// The usual file extension of MIME type `mime_type` (without the dot), when it is one of
/// [`UPLOAD_TYPES`].
pub fn extension_of(mime_type: &str) -> Option<&'static str> {
    EXTENSIONS
        .iter()
        .find(|(_, kind)| *kind == mime_type)
        .map(|(ext, _)| *ext)
}

/// `type/subtype` of a Content-Type, lowercased and without parameters, if it is well formed.
pub fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(kind) && token(subtype)).then_some(essence)
}

/// The MIME type an upload is stored with: its declared type when allowed, or, for a file
/// declared as `application/octet-stream` (or not at all), the type its extension names.
/// `None`: not an allowed type.
pub fn upload_type(declared: Option<&str>, filename: &str) -> Option<String> {
    let declared = declared.and_then(essence);
    match declared.as_deref() {
        Some(kind) if UPLOAD_TYPES.contains(&kind) => declared,
        None | Some("application/octet-stream") => {
            let extension = filename.rsplit_once('.')?.1.to_ascii_lowercase();
            EXTENSIONS
                .iter()
                .find(|(ext, _)| *ext == extension)
                .map(|(_, kind)| (*kind).to_owned())
        }
        Some(_) => None,
    }
}

/// A file name that is safe to store and to put in a header: the last path component, without
/// control characters, quotes or backslashes, at most 200 characters; `file` when nothing is left.
pub fn safe_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | ';'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned.to_owned()
    }
}

/// `/api/media/{id}`: where the API serves stored media (and how messages refer to it).
pub fn media_url(id: Uuid) -> String {
    format!("{MEDIA_PATH}{id}")
}

/// The stored media a message's `media_url` refers to, if it is one of ours
/// (`/api/media/{id}`).
pub fn stored_media_id(url: &str) -> Option<Uuid> {
    Uuid::parse_str(url.strip_prefix(MEDIA_PATH)?).ok()
}

/// The id of attachment number `index` of inbound message `message_id`: the same on every
/// attempt to process that message, so a retry stores nothing twice.
pub fn attachment_id(message_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("attachment:{message_id}:{index}").as_bytes(),
    )
}

/// One stored file, as its `media` row describes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredMedia {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The conversation it belongs to: only callers who can see it may read it.
    pub conversation_id: Option<Uuid>,
    pub filename: String,
    pub mime_type: String,
    pub size: i64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Where the bytes are, relative to the media root.
    pub storage_key: String,
    pub created_at: DateTime<Utc>,
}

/// What a new file is stored as.
#[derive(Debug, Clone)]
pub struct NewMedia {
    pub id: Uuid,
    pub tenant: TenantId,
    pub conversation_id: Option<Uuid>,
    pub filename: String,
    pub mime_type: String,
}

/// Why media could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// More than [`MAX_MEDIA_BYTES`] (or the writer's own limit).
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The filesystem failed.
    #[error("media storage failed: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error("media storage failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// The media store: files under a root directory, rows in `media`.
#[derive(Debug, Clone)]
pub struct MediaStore {
    pool: PgPool,
    root: PathBuf,
    /// Whether inbound attachments may be copied from private or plain-http addresses
    /// (`OUTGOING_WEBHOOKS_ALLOW_PRIVATE`, for development and tests).
    private_sources: bool,
}

const COLUMNS: &str =
    "id, tenant_id, conversation_id, filename, mime_type, size, sha256, storage_key, created_at";

impl MediaStore {
    /// A store keeping files under `<data_dir>/media`.
    pub fn new(pool: PgPool, data_dir: &Path) -> Self {
        Self {
            pool,
            root: data_dir.join("media"),
            private_sources: false,
        }
    }

    /// The same store, allowing (or not) inbound attachments to be copied from private or
    /// plain-http addresses (see [`crate::channels::meta::media`]).
    pub fn allowing_private_sources(mut self, allow: bool) -> Self {
        self.private_sources = allow;
        self
    }

    /// Whether attachments may be copied from private or plain-http addresses.
    pub fn allows_private_sources(&self) -> bool {
        self.private_sources
    }

    /// The media `id` of `tenant`, if it exists.
    pub async fn find(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<StoredMedia>, MediaError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM media WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id)
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A writer for a new file of at most `limit` bytes.
    pub async fn writer(&self, limit: u64) -> Result<MediaWriter, MediaError> {
        let incoming = self.root.join(".incoming");
        create_private_dir(&incoming).await?;
        let temp = TempFile(incoming.join(format!("{}.part", Uuid::new_v4().simple())));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp.0)
            .await?;
        Ok(MediaWriter {
            file: tokio::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            temp,
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// Stores `bytes` as `new`; when media `new.id` already exists it is returned as it is.
    pub async fn store_bytes(
        &self,
        new: NewMedia,
        bytes: &[u8],
    ) -> Result<StoredMedia, MediaError> {
        if let Some(existing) = self.find(new.tenant, new.id).await? {
            return Ok(existing);
        }
        let mut writer = self.writer(MAX_MEDIA_BYTES).await?;
        writer.write(bytes).await?;
        writer.commit(self, new).await
    }

    /// The file's bytes.
    pub async fn read(&self, media: &StoredMedia) -> Result<Vec<u8>, MediaError> {
        Ok(tokio::fs::read(self.path_of(media)?).await?)
    }

    /// The file, opened for reading.
    pub async fn open(&self, media: &StoredMedia) -> Result<tokio::fs::File, MediaError> {
        Ok(tokio::fs::File::open(self.path_of(media)?).await?)
    }

    fn path_of(&self, media: &StoredMedia) -> Result<PathBuf, MediaError> {
        // Keys are written by this module only; refuse anything that could leave the root.
        let key = Path::new(&media.storage_key);
        if key
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(std::io::Error::other("invalid storage key").into());
        }
        Ok(self.root.join(key))
    }
}

/// The write buffer of a [`MediaWriter`].
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Creates `path` and its missing parents readable by this user only (0700): tenants' files
/// are nobody else's on the machine.
async fn create_private_dir(path: &Path) -> std::io::Result<()> {
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .await
}

/// A temporary file that is removed unless it was renamed into place.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A file being written; nothing is visible until [`MediaWriter::commit`].
pub struct MediaWriter {
    /// Buffered: each write of a `tokio::fs::File` is a trip to the blocking pool, and
    /// multipart uploads arrive in small chunks.
    file: tokio::io::BufWriter<tokio::fs::File>,
    temp: TempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl MediaWriter {
    /// Appends `chunk`; [`MediaError::TooLarge`] once the limit would be passed.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaError> {
        if self.size + chunk.len() as u64 > self.limit {
            return Err(MediaError::TooLarge { limit: self.limit });
        }
        self.file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Lowercase hex SHA-256 of the bytes written so far.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Makes the file durable, moves it into place and records its row (see the module
    /// documentation for the order and why).
    pub async fn commit(
        mut self,
        store: &MediaStore,
        new: NewMedia,
    ) -> Result<StoredMedia, MediaError> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        let tenant = new.tenant.as_uuid();
        let directory = store.root.join(tenant.to_string());
        create_private_dir(&directory).await?;
        let storage_key = format!("{tenant}/{}", new.id);
        tokio::fs::rename(&self.temp.0, store.root.join(&storage_key)).await?;
        self.temp.0 = PathBuf::new();
        tokio::fs::File::open(&directory).await?.sync_all().await?;
        let sha256 = hex::encode(self.hasher.finalize());
        sqlx::query(
            "INSERT INTO media (id, tenant_id, conversation_id, filename, mime_type, size, sha256, storage_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(new.id)
        .bind(tenant)
        .bind(new.conversation_id)
        .bind(&new.filename)
        .bind(&new.mime_type)
        .bind(self.size as i64)
        .bind(&sha256)
        .bind(&storage_key)
        .execute(&store.pool)
        .await?;
        store
            .find(new.tenant, new.id)
            .await?
            .ok_or_else(|| std::io::Error::other("media id taken by another tenant").into())
    }
}

/// Signs and checks public download links (`PUBLIC_BASE_URL/api/media/{id}?t=…&e=…&s=…`).
#[derive(Clone)]
pub struct MediaLinks {
    base_url: String,
    key: [u8; 32],
}

impl std::fmt::Debug for MediaLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLinks")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl MediaLinks {
    /// Links under `base_url` (`PUBLIC_BASE_URL`), signed with `key` (derived from the
    /// encryption key).
    pub fn new(base_url: &str, key: [u8; 32]) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
        }
    }

    fn signature(&self, tenant: Uuid, id: Uuid, expires: i64) -> String {
        let message = format!("media-link:{tenant}:{id}:{expires}");
        hex::encode(&hmac_sha256(&self.key, &[message.as_bytes()])[..16])
    }

    /// A link to media `id` of `tenant` that anyone can fetch until [`PUBLIC_LINK_SECONDS`]
    /// from `now`.
    pub fn public_url(&self, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> String {
        let tenant = tenant.as_uuid();
        let expires = now.timestamp() + PUBLIC_LINK_SECONDS;
        let signature = self.signature(tenant, id, expires);
        format!(
            "{}{MEDIA_PATH}{id}?t={tenant}&e={expires}&s={signature}",
            self.base_url
        )
    }

    /// Whether `signature` signs media `id` of `tenant` until `expires`, and that is after `now`.
    pub fn verify(
        &self,
        tenant: Uuid,
        id: Uuid,
        expires: i64,
        signature: &str,
        now: DateTime<Utc>,
    ) -> bool {
        expires > now.timestamp()
            && constant_time_eq(
                self.signature(tenant, id, expires).as_bytes(),
                signature.to_ascii_lowercase().as_bytes(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_keep_allowed_types_and_name_octet_streams_by_extension() {
        assert_eq!(
            upload_type(Some("image/PNG"), "a.png").as_deref(),
            Some("image/png")
        );
        assert_eq!(
            upload_type(Some("audio/ogg; codecs=opus"), "v.ogg").as_deref(),
            Some("audio/ogg")
        );
        assert_eq!(
            upload_type(Some("application/octet-stream"), "Report.PDF").as_deref(),
            Some("application/pdf")
        );
        assert_eq!(
            upload_type(None, "sheet.xlsx").as_deref(),
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        );
        assert_eq!(upload_type(Some("text/html"), "page.pdf"), None);
        assert_eq!(upload_type(Some("image/svg+xml"), "x.svg"), None);
        assert_eq!(
            upload_type(Some("application/octet-stream"), "run.exe"),
            None
        );
        assert_eq!(upload_type(Some("not a type"), "noext"), None);
    }

    #[test]
    fn file_names_lose_paths_quotes_and_control_characters() {
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("C:\\Users\\x\\cv.pdf"), "cv.pdf");
        assert_eq!(safe_filename("a\"b\r\nc;.pdf"), "abc.pdf");
        assert_eq!(safe_filename("..."), "file");
        assert_eq!(safe_filename(""), "file");
        assert_eq!(safe_filename(&"x".repeat(300)).len(), 200);
    }

    #[test]
    fn media_urls_round_trip_and_foreign_urls_are_not_ours() {
        let id = Uuid::new_v4();
        assert_eq!(stored_media_id(&media_url(id)), Some(id));
        assert_eq!(
            stored_media_id(&format!("https://cdn.example/api/media/{id}")),
            None
        );
        assert_eq!(stored_media_id("/api/media/not-a-uuid"), None);
    }

    #[test]
    fn attachment_ids_are_stable_per_message_and_index() {
        let message = Uuid::new_v4();
        assert_eq!(attachment_id(message, 0), attachment_id(message, 0));
        assert_ne!(attachment_id(message, 0), attachment_id(message, 1));
        assert_ne!(attachment_id(message, 0), attachment_id(Uuid::new_v4(), 0));
    }

    #[test]
    fn public_links_verify_only_unchanged_and_unexpired() {
        let links = MediaLinks::new("https://chat.example/", [9; 32]);
        let (tenant, id, now) = (TenantId(Uuid::new_v4()), Uuid::new_v4(), Utc::now());
        let url = links.public_url(tenant, id, now);
        assert!(url.starts_with(&format!("https://chat.example/api/media/{id}?t=")));
        let query: std::collections::HashMap<String, String> =
            form_urlencoded_pairs(url.split_once('?').unwrap().1);
        let expires: i64 = query["e"].parse().unwrap();
        let t: Uuid = query["t"].parse().unwrap();
        assert!(links.verify(t, id, expires, &query["s"], now));
        assert!(
            !links.verify(t, Uuid::new_v4(), expires, &query["s"], now),
            "another media"
        );
        assert!(
            !links.verify(Uuid::new_v4(), id, expires, &query["s"], now),
            "another tenant"
        );
        assert!(
            !links.verify(t, id, expires + 1, &query["s"], now),
            "a longer expiry"
        );
        let later = now + chrono::Duration::seconds(PUBLIC_LINK_SECONDS + 1);
        assert!(!links.verify(t, id, expires, &query["s"], later), "expired");
        let other = MediaLinks::new("https://chat.example", [8; 32]);
        assert!(
            !other.verify(t, id, expires, &query["s"], now),
            "another key"
        );
    }

    fn form_urlencoded_pairs(query: &str) -> std::collections::HashMap<String, String> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn essences_are_lowercase_type_and_subtype() {
        assert_eq!(
            essence("Text/Plain; charset=utf-8").as_deref(),
            Some("text/plain")
        );
        assert_eq!(
            essence("application/vnd.ms-excel").as_deref(),
            Some("application/vnd.ms-excel")
        );
        assert_eq!(essence("text/plain\r\nX-Evil: 1"), None);
        assert_eq!(essence("nothing"), None);
    }
}
