//! Health and Prometheus metrics.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SecondsFormat, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use omnistream_commands::infra::secrets::constant_time_eq;
use omnistream_commands::infra::stages;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::config::Config;
use crate::app::{AppState, Telemetry};
use crate::http::error::{ApiError, ErrorResponse};

/// State of one dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthChecks {
    /// `ok` or `error`.
    pub postgres: &'static str,
    /// `ok` or `error`.
    pub nats: &'static str,
}

/// `HealthResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `degraded` when a dependency is down.
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    pub timestamp: String,
    pub checks: HealthChecks,
}

/// API Gateway health check
#[utoipa::path(
    get, path = "/api/health", tag = "Health",
    responses((status = 200, body = HealthResponse),
              (status = 503, description = "A dependency is down: status `degraded`, the failing check `error`", body = HealthResponse))
)]
async fn health(State(pool): State<PgPool>, State(telemetry): State<Telemetry>) -> Response {
    let postgres = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let nats = telemetry.nats.connection_state() == async_nats::connection::State::Connected;
    let healthy = postgres && nats;
    let body = HealthResponse {
        status: if healthy { "ok" } else { "degraded" },
        service: "api-gateway",
        version: env!("CARGO_PKG_VERSION"),
        timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        checks: HealthChecks {
            postgres: if postgres { "ok" } else { "error" },
            nats: if nats { "ok" } else { "error" },
        },
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics
#[utoipa::path(
    get, path = "/metrics", tag = "Health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
              (status = 401, description = "METRICS_TOKEN is set and the bearer token does not match", body = ErrorResponse)),
    security((), ("metrics_token" = []))
)]
async fn metrics(
    State(config): State<Arc<Config>>,
    State(telemetry): State<Telemetry>,
    headers: HeaderMap,
) -> Response {
    if let Some(expected) = &config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches =
            presented.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.expose().as_bytes()));
        if !matches {
            return ApiError::Unauthorized.into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry.metrics.render(),
    )
        .into_response()
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(stages::METRIC.to_owned()), &stages::BUCKETS)
                .expect("the stage buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// The `method` label: one of the methods the API serves, else `other`. A client chooses the
/// method, so the raw value would let it grow the label set (and the scrape) without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `status` label: the status code, from the closed set of 100..=599.
fn status_label(status: StatusCode) -> &'static str {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| (0..=599).map(|code: u16| code.to_string()).collect());
    labels
        .get(usize::from(status.as_u16()))
        .map_or("other", String::as_str)
}

/// Records request count and latency per method, route template and status. Every label comes
/// from a closed set: known methods or `other`, the matched route template (never the raw path)
/// or `unmatched`, and the status code.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = status_label(response.status());
    metrics::counter!("omnistream_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("omnistream_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Health and metrics routes (served by every process role).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics))
}
