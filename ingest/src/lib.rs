//! Inbound webhook receivers, served under `/webhooks`.
//!
//! The channel receivers (Meta, email) arrive with the conversation spine; until then this
//! router only answers that no receiver exists, with the API's JSON error shape.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::any;
use axum::{Json, Router};

/// Routes of the webhook-ingestor role, mounted under `/webhooks`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/webhooks/{*channel}", any(unknown_channel))
}

async fn unknown_channel() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(
            serde_json::json!({"error": {"code": "not_found", "message": "no webhook receiver for this channel"}}),
        ),
    )
}
