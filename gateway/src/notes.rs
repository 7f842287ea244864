//! Notes tag: internal notes on a conversation, never sent to the contact.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::Permission;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::activity::{self, Activity};
use crate::app::AppState;
use crate::auth::{perm, Authorized, Caller};
use omnistream_domain::conversation::ConversationCommand;

use crate::conversations::{command_context, command_error, load_visible};
use crate::error::{ApiError, ErrorResponse, Result, Violations};
use crate::extract::{check_text, DeleteResponse, IdPath, ValidJson, Validate};

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

fn not_author() -> ApiError {
    ApiError::Forbidden {
        code: "not_note_author",
        message: "only the note's author can do this".into(),
    }
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

/// Records a note command on conversation `id` and waits until the notes projection shows it
/// (the table is the projection's alone; the answer reads it back).
async fn record_note_change(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    command: ConversationCommand,
) -> Result<()> {
    state
        .conversations
        .execute(&command_context(caller), id, command)
        .await
        .map_err(command_error)?;
    let stream = omnistream_domain::StreamId::new(caller.tenant_id, id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &omnistream_projections::NotesProjector,
        omnistream_domain::conversation::AGGREGATE_TYPE,
        &stream,
        std::time::Duration::from_secs(5),
    )
    .await?;
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
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let note_id = Uuid::new_v4();
    let command = ConversationCommand::AddNote {
        note_id,
        agent_id: caller.agent_id.as_uuid(),
        content: body.content.clone(),
        at: chrono::Utc::now(),
    };
    record_note_change(&state, &caller, id, command).await?;
    let mut tx = state.pool.begin().await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "note.created",
            entity_type: "note",
            entity_id: Some(note_id.to_string()),
            details: json!({"conversation_id": id}),
        },
    )
    .await?;
    tx.commit().await?;
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
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let note = load_note(&state, &caller, id, note_id).await?;
    if note.agent_id != caller.agent_id.as_uuid() {
        return Err(not_author());
    }
    let command = ConversationCommand::EditNote {
        note_id,
        agent_id: caller.agent_id.as_uuid(),
        content: body.content.clone(),
        at: chrono::Utc::now(),
    };
    record_note_change(&state, &caller, id, command).await?;
    let mut tx = state.pool.begin().await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "note.updated",
            entity_type: "note",
            entity_id: Some(note_id.to_string()),
            details: json!({"conversation_id": id}),
        },
    )
    .await?;
    tx.commit().await?;
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
    load_visible(&mut *state.pool.acquire().await?, &caller, id).await?;
    let note = load_note(&state, &caller, id, note_id).await?;
    if note.agent_id != caller.agent_id.as_uuid() && !caller.holds(Permission::ConversationsManage)
    {
        return Err(not_author());
    }
    let command = ConversationCommand::DeleteNote {
        note_id,
        agent_id: caller.agent_id.as_uuid(),
        at: chrono::Utc::now(),
    };
    record_note_change(&state, &caller, id, command).await?;
    let mut tx = state.pool.begin().await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "note.deleted",
            entity_type: "note",
            entity_id: Some(note_id.to_string()),
            details: json!({"conversation_id": id}),
        },
    )
    .await?;
    tx.commit().await?;
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
