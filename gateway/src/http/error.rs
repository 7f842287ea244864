//! The one error type of the API, and how it becomes the contract's error JSON (§0.4).

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Handlers return `Result<T>`; every failure is an [`ApiError`].
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Field → problem, for `validation_error` details.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Violations(BTreeMap<String, String>);

impl Violations {
    /// Records a problem with `field` (the first problem of a field wins).
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| problem.into());
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else the `validation_error`.
    pub fn into_result(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self))
        }
    }

    /// A single-field violation.
    pub fn single(field: impl Into<String>, problem: impl Into<String>) -> Self {
        let mut violations = Self::default();
        violations.add(field, problem);
        violations
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `validation_error` with per-field details.
    #[error("the request is invalid")]
    Validation(Violations),
    /// 400 `invalid_json`.
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// 401 `unauthorized`.
    #[error("authentication required")]
    Unauthorized,
    /// 403 with a specific code (`forbidden`, `session_required`, …).
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// 404 `not_found`.
    #[error("resource not found")]
    NotFound,
    /// 409 with a specific code.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// 422: a referenced resource is unusable.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// 429 `rate_limited` with `Retry-After`.
    #[error("too many attempts; retry later")]
    RateLimited { retry_after_secs: u64 },
    /// 502 `upstream_error`: an external call failed.
    #[error("{message}")]
    Upstream {
        provider: &'static str,
        upstream_status: Option<u16>,
        message: String,
    },
    /// Any other status with its code (401 `invalid_credentials`, 413, 415, 503…).
    #[error("{message}")]
    Status {
        status: StatusCode,
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// 500 `internal_error`; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: "you do not have permission to do this".into(),
        }
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// 422 with `code`.
    pub fn unprocessable(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// 400 `validation_error` about one field.
    pub fn invalid_field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Validation(Violations::single(field, problem))
    }

    /// 401 `invalid_credentials` (login).
    pub fn invalid_credentials() -> Self {
        Self::Status {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_credentials",
            message: "invalid email or password".into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "validation_error"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Status { status, code, .. } => (*status, code),
            Self::Upstream { .. } => (StatusCode::BAD_GATEWAY, "upstream_error"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// The error JSON body: `{"error": {code, message, details?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error itself.
    pub error: ErrorBody,
}

/// Inside [`ErrorResponse`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `validation_error`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// For `validation_error`: field → problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "an internal error occurred".to_owned()
            }
            other => other.to_string(),
        };
        let details = match &self {
            Self::Validation(violations) => serde_json::to_value(violations).ok(),
            Self::Upstream {
                provider,
                upstream_status,
                ..
            } => {
                Some(serde_json::json!({"provider": provider, "upstream_status": upstream_status}))
            }
            _ => None,
        };
        let body = ErrorResponse {
            error: ErrorBody {
                code: code.to_owned(),
                message,
                details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Turns named database constraint violations into API errors instead of 500s.
pub trait ResultExt<T> {
    /// When the error is a violation of `constraint`, maps it with `map`.
    fn on_constraint(self, constraint: &str, map: impl FnOnce() -> ApiError) -> Result<T>;
}

impl<T, E: Into<ApiError>> ResultExt<T> for std::result::Result<T, E> {
    fn on_constraint(self, constraint: &str, map: impl FnOnce() -> ApiError) -> Result<T> {
        self.map_err(|error| match error.into() {
            ApiError::Internal(cause) => match cause.downcast_ref::<sqlx::Error>() {
                Some(sqlx::Error::Database(db)) if db.constraint() == Some(constraint) => map(),
                _ => ApiError::Internal(cause),
            },
            other => other,
        })
    }
}
