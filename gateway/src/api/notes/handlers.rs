//! The Notes tag's handlers. Notes are events of the conversation
//! (`commands::conversation::notes`); the `notes` table is the notes projection's, read through
//! `omnistream_projections::notes::queries` once the projection shows the change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use omnistream_commands::conversation::{notes, ConversationDeps};
use omnistream_projections::notes::queries;
use omnistream_projections::{ActivityProjector, NotesProjector, Projector};
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::{NoteRequest, NoteResponse};
use crate::api::conversations::{command_context, load_visible, service_error, wait_for};
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{DeleteResponse, IdPath, ValidJson};

/// Note `note` of conversation `conversation` of the caller's tenant, or 404.
async fn load_note(
    pool: &PgPool,
    caller: &Caller,
    conversation: Uuid,
    note: Uuid,
) -> Result<NoteResponse> {
    queries::find(pool, caller.tenant_id, conversation, note)
        .await?
        .map(NoteResponse::from)
        .ok_or(ApiError::NotFound)
}

/// The conversation and note ids of a note's path; 400 for one that is not a UUID.
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
pub(super) async fn list_notes(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
) -> Result<Json<Vec<NoteResponse>>> {
    load_visible(&pool, &caller, id).await?;
    let notes = queries::notes_of(&pool, caller.tenant_id, id).await?;
    Ok(Json(notes.into_iter().map(Into::into).collect()))
}

/// Waits until the notes projection and the activity log show conversation `id`'s latest
/// event (the `notes` table is the projection's alone; the answer reads it back).
async fn wait_for_note(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<()> {
    let projectors: [&dyn Projector; 2] = [&NotesProjector, &ActivityProjector];
    let aggregate = omnistream_domain::conversation::AGGREGATE_TYPE;
    wait_for(pool, &projectors, aggregate, caller.tenant_id, id).await
}

/// Create a note
#[utoipa::path(
    post, path = "/api/conversations/{id}/notes", tag = "Notes", params(("id" = Uuid, Path)), request_body = NoteRequest,
    responses((status = 201, body = NoteResponse), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn create_note(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<NoteRequest>,
) -> Result<(StatusCode, Json<NoteResponse>)> {
    let context = command_context(&caller);
    let note_id = notes::add(&deps, &context, id, body.content)
        .await
        .map_err(service_error)?;
    wait_for_note(&pool, &caller, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(load_note(&pool, &caller, id, note_id).await?),
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
pub(super) async fn update_note(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    Path(path): Path<(String, String)>,
    ValidJson(body): ValidJson<NoteRequest>,
) -> Result<Json<NoteResponse>> {
    let (id, note_id) = ids(path)?;
    let context = command_context(&caller);
    notes::edit(&deps, &context, id, note_id, body.content)
        .await
        .map_err(service_error)?;
    wait_for_note(&pool, &caller, id).await?;
    Ok(Json(load_note(&pool, &caller, id, note_id).await?))
}

/// Delete a note
#[utoipa::path(
    delete, path = "/api/conversations/{id}/notes/{note_id}", tag = "Notes", params(("id" = Uuid, Path), ("note_id" = Uuid, Path)),
    responses((status = 200, body = DeleteResponse),
              (status = 403, description = "not_note_author: someone else's note without conversations.manage", body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn delete_note(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    Path(path): Path<(String, String)>,
) -> Result<Json<DeleteResponse>> {
    let (id, note_id) = ids(path)?;
    let context = command_context(&caller);
    notes::delete(&deps, &context, id, note_id)
        .await
        .map_err(service_error)?;
    wait_for_note(&pool, &caller, id).await?;
    Ok(Json(DeleteResponse {
        message: "note deleted".into(),
        id: note_id,
    }))
}
