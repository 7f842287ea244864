//! Notes tag: internal notes on a conversation, never sent to the contact.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_commands::conversation::notes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::conversations::{command_context, load_visible, service_error};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{check_text, DeleteResponse, IdPath, ValidJson, Validate};

/// `NoteResponse`.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct NoteResponse {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub agent_id: Uuid,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub agent_name: String,
}

/// `CreateNote` and `UpdateNote`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// 1..5000 characters.
    content: String,
}

impl Validate for NoteRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "content", &mut self.content, 1, 5000);
    }
}

const NOTE_SELECT: &str = "SELECT n.id, n.conversation_id, n.agent_id, n.content, n.created_at, n.updated_at, \
    COALESCE(a.name, '') AS agent_name FROM notes n LEFT JOIN agents a ON a.id = n.agent_id AND a.tenant_id = n.tenant_id";

async fn load_note(
    state: &AppState,
    caller: &Caller,
    conversation: Uuid,
    note: Uuid,
) -> Result<NoteResponse> {
    sqlx::query_as(&format!(
        "{NOTE_SELECT} WHERE n.tenant_id = $1 AND n.conversation_id = $2 AND n.id = $3"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(conversation)
    .bind(note)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound)
}

fn ids(path: (String, String)) -> Result<(Uuid, Uuid)> {
    let conversation =
        Uuid::parse_str(&path.0).map_err(|_| ApiError::invalid_field("id", "must be a UUID"))?;
    let note = Uuid::parse_str(&path.1)
        .map_err(|_| ApiError::invalid_field("note_id", "must be a UUID"))?;
    Ok((conversation, note))
}

/// List notes for a conversation
#[utoipa::path(
    get, path = "/api/conversations/{id}/notes", tag = "Notes", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Oldest first", body = Vec<NoteResponse>), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_notes(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<NoteResponse>>> {
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let notes = sqlx::query_as(&format!("{NOTE_SELECT} WHERE n.tenant_id = $1 AND n.conversation_id = $2 ORDER BY n.created_at, n.id"))
        .bind(caller.tenant_id.as_uuid())
        .bind(id)
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(notes))
}

/// Waits until the notes projection and the activity log show conversation `id`'s latest
/// event (the `notes` table is the projection's alone; the answer reads it back).
async fn wait_for_note(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    let stream = omnistream_domain::StreamId::new(caller.tenant_id, id).to_string();
    for projector in [
        &omnistream_projections::NotesProjector as &dyn omnistream_projections::Projector,
        &omnistream_projections::ActivityProjector,
    ] {
        omnistream_projections::wait_until_applied(
            &state.pool,
            projector,
            omnistream_domain::conversation::AGGREGATE_TYPE,
            &stream,
            std::time::Duration::from_secs(5),
        )
        .await?;
    }
    Ok(())
}

/// Create a note
#[utoipa::path(
    post, path = "/api/conversations/{id}/notes", tag = "Notes", params(("id" = Uuid, Path)), request_body = NoteRequest,
    responses((status = 201, body = NoteResponse), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn create_note(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<NoteRequest>,
) -> Result<(StatusCode, Json<NoteResponse>)> {
    let context = command_context(&caller);
    let note_id = notes::add(&state.conversation, &context, id, body.content)
        .await
        .map_err(service_error)?;
    wait_for_note(&state, &caller, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(load_note(&state, &caller, id, note_id).await?),
    ))
}

/// Update a note
#[utoipa::path(
    patch, path = "/api/conversations/{id}/notes/{note_id}", tag = "Notes", params(("id" = Uuid, Path), ("note_id" = Uuid, Path)),
    request_body = NoteRequest,
    responses((status = 200, body = NoteResponse), (status = 400, body = ErrorResponse),
              (status = 403, description = "not_note_author", body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn update_note(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    Path(path): Path<(String, String)>,
    ValidJson(body): ValidJson<NoteRequest>,
) -> Result<Json<NoteResponse>> {
    let (id, note_id) = ids(path)?;
    let context = command_context(&caller);
    notes::edit(&state.conversation, &context, id, note_id, body.content)
        .await
        .map_err(service_error)?;
    wait_for_note(&state, &caller, id).await?;
    Ok(Json(load_note(&state, &caller, id, note_id).await?))
}

/// Delete a note
#[utoipa::path(
    delete, path = "/api/conversations/{id}/notes/{note_id}", tag = "Notes", params(("id" = Uuid, Path), ("note_id" = Uuid, Path)),
    responses((status = 200, body = DeleteResponse),
              (status = 403, description = "not_note_author: someone else's note without conversations.manage", body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn delete_note(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    Path(path): Path<(String, String)>,
) -> Result<Json<DeleteResponse>> {
    let (id, note_id) = ids(path)?;
    let context = command_context(&caller);
    notes::delete(&state.conversation, &context, id, note_id)
        .await
        .map_err(service_error)?;
    wait_for_note(&state, &caller, id).await?;
    Ok(Json(DeleteResponse {
        message: "note deleted".into(),
        id: note_id,
    }))
}

/// Routes of the Notes tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notes, create_note))
        .routes(routes!(update_note, delete_note))
}
