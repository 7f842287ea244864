//! Request extractors that turn every kind of bad input into the contract's 400/413/415 errors:
//! JSON bodies with unknown-field rejection and per-field validation, query strings, UUID paths,
//! and pagination.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, Result, Violations};

/// Checks and normalises a deserialised request (trims strings, checks lengths and ranges).
pub trait Validate {
    /// Records every problem in `violations`; may normalise `self` (e.g. trim strings).
    fn validate(&mut self, violations: &mut Violations);
}

/// A JSON body: `application/json`, an object with only known fields, each of the right type,
/// passing [`Validate`].
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        if !is_json_content_type(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::Status {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "expected a body with Content-Type: application/json".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::Status {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "payload_too_large",
                    message: "the request body is too large".into(),
                }
            } else {
                ApiError::InvalidJson(rejection.body_text())
            }
        })?;
        parse_body(&bytes).map(ValidJson)
    }
}

fn is_json_content_type(value: Option<&header::HeaderValue>) -> bool {
    let Some(mime) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
    else {
        return false;
    };
    mime.type_() == mime::APPLICATION
        && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

/// Parses and validates a JSON object body into `T`.
pub fn parse_body<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    // Unknown fields are reported together with every other problem of the body.
    let known = serde_aux::serde_introspection::serde_introspect::<T>();
    let mut violations = Violations::default();
    fields.retain(|name, _| {
        let is_known = known.contains(&name.as_str());
        if !is_known {
            violations.add(name.clone(), "unknown field");
        }
        is_known
    });
    let mut body = serde_json::Value::Object(fields);
    match serde_path_to_error::deserialize::<_, T>(&body) {
        Ok(mut parsed) => {
            parsed.validate(&mut violations);
            violations.into_result().map(|()| parsed)
        }
        Err(error) => {
            let first = describe_serde_error(&error.path().to_string(), &error.inner().to_string());
            every_type_error::<T>(&mut body, first, &mut violations);
            Err(ApiError::Validation(violations))
        }
    }
}

/// Deserialisations tried to find a body's further problems after its first.
const MORE_PROBLEMS_TRIES: usize = 32;
/// Stand-ins tried for a missing field, so deserialising can go on past it.
const STAND_INS: [fn() -> serde_json::Value; 6] = [
    || serde_json::Value::Null,
    || serde_json::Value::String(String::new()),
    || serde_json::Value::from(0),
    || serde_json::Value::Bool(false),
    || serde_json::Value::Array(Vec::new()),
    || serde_json::Value::Object(serde_json::Map::new()),
];

/// Records `first` and every further field serde refuses: serde stops at the first problem, so
/// each offending top-level field is taken out (and each missing one given a stand-in of some
/// type it accepts) and the body is read again, a bounded number of times.
fn every_type_error<T: DeserializeOwned>(
    body: &mut serde_json::Value,
    first: (String, String),
    violations: &mut Violations,
) {
    let mut problem = first;
    let mut stand_in: Option<(String, usize)> = None;
    for _ in 0..MORE_PROBLEMS_TRIES {
        let Some(fields) = body.as_object_mut() else {
            return;
        };
        let (field, message) = problem;
        let top = field
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_owned();
        let trying_stand_in = stand_in.as_ref().is_some_and(|(name, _)| *name == top);
        let missing = message == "is required" && !fields.contains_key(&top);
        if !trying_stand_in {
            violations.add(field, message);
        }
        if missing || trying_stand_in {
            let next = match stand_in.take() {
                Some((name, tried)) if name == top => tried + 1,
                _ => 0,
            };
            let Some(make) = STAND_INS.get(next) else {
                return;
            };
            fields.insert(top.clone(), make());
            stand_in = Some((top, next));
        } else if fields.remove(&top).is_none() {
            return;
        }
        match serde_path_to_error::deserialize::<_, T>(&*body) {
            Ok(_) => return,
            Err(error) => {
                problem =
                    describe_serde_error(&error.path().to_string(), &error.inner().to_string());
            }
        }
    }
}

fn describe_serde_error(path: &str, message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return (field, "is required".into());
    }
    let field = if path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    (field, message.to_owned())
}

/// A query string deserialised into `T` and validated; unknown parameters are rejected.
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let query = parts.uri.query().unwrap_or_default();
        let known = serde_aux::serde_introspection::serde_introspect::<T>();
        let mut unknown = Violations::default();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !known.contains(&name.as_ref()) {
                unknown.add(name.into_owned(), "unknown query parameter");
            }
        }
        unknown.into_result()?;
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let mut parsed: T = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let (field, problem) =
                describe_serde_error(&error.path().to_string(), &error.inner().to_string());
            ApiError::invalid_field(
                if field == "body" {
                    "query".to_owned()
                } else {
                    field
                },
                problem,
            )
        })?;
        let mut violations = Violations::default();
        parsed.validate(&mut violations);
        violations.into_result()?;
        Ok(ValidQuery(parsed))
    }
}

/// The `{id}` path parameter as a UUID (400 `validation_error` when malformed).
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_field("id", "must be a UUID"))?;
        Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| ApiError::invalid_field("id", "must be a UUID"))
    }
}

/// `page` and `per_page` after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
}

/// A query with `page` and `per_page`: checked once by its `Validate` ([`Paged::check_paging`])
/// and read again by its handler ([`Paged::page_request`]) with the same defaults.
pub trait Paged {
    /// `per_page` when none is given.
    const DEFAULT_PER_PAGE: u32 = 20;
    /// The largest `per_page` accepted.
    const MAX_PER_PAGE: u32 = 100;

    /// The raw `page` and `per_page`.
    fn paging(&self) -> (Option<i64>, Option<i64>);

    /// Records what is wrong with `page` and `per_page`; returns the page asked for.
    fn check_paging(&self, violations: &mut Violations) -> PageRequest {
        let (page, per_page) = self.paging();
        PageRequest::checked(
            page,
            per_page,
            Self::DEFAULT_PER_PAGE,
            Self::MAX_PER_PAGE,
            violations,
        )
    }

    /// The page asked for (the query has been validated).
    fn page_request(&self) -> PageRequest {
        self.check_paging(&mut Violations::default())
    }
}

impl PageRequest {
    /// The rows this page covers, as the read-model queries take them.
    pub fn window(&self) -> omnistream_projections::sql::Window {
        omnistream_projections::sql::Window {
            limit: self.limit(),
            offset: self.offset(),
        }
    }

    /// Validates raw `page`/`per_page` (defaults 1 and `default_per_page`, `per_page` ≤ `max`).
    pub fn checked(
        page: Option<i64>,
        per_page: Option<i64>,
        default_per_page: u32,
        max_per_page: u32,
        violations: &mut Violations,
    ) -> Self {
        let page = match page {
            None => 1,
            Some(p) if (1..=1_000_000).contains(&p) => p as u32,
            Some(_) => {
                violations.add("page", "must be an integer ≥ 1");
                1
            }
        };
        let per_page = match per_page {
            None => default_per_page,
            Some(n) if n >= 1 && n <= i64::from(max_per_page) => n as u32,
            Some(_) => {
                violations.add("per_page", format!("must be between 1 and {max_per_page}"));
                default_per_page
            }
        };
        Self { page, per_page }
    }

    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    /// SQL `OFFSET`.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }
}

/// `PaginatedResponse<T>` of the contract (§0.5).
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// This page's items.
    pub data: Vec<T>,
    /// All matching items.
    pub total: i64,
    /// The page returned.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// `ceil(total / per_page)`; 0 when `total` is 0.
    pub total_pages: i64,
}

impl<T> Paginated<T> {
    /// Wraps one page of results.
    pub fn new(data: Vec<T>, total: i64, request: PageRequest) -> Self {
        let per_page = i64::from(request.per_page);
        Self {
            data,
            total,
            page: request.page,
            per_page: request.per_page,
            total_pages: (total + per_page - 1) / per_page,
        }
    }
}

/// `DeleteResponse` of the contract.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResponse {
    /// What happened.
    pub message: String,
    /// The deleted resource.
    pub id: Uuid,
}

/// `{message}` replies.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// What happened.
    pub message: String,
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`), which clears a nullable field.
pub fn nullable<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Trims `value` and checks that it has `min..=max` characters.
pub fn check_text(
    violations: &mut Violations,
    field: &str,
    value: &mut String,
    min: usize,
    max: usize,
) {
    let trimmed = value.trim();
    if trimmed.len() != value.len() {
        *value = trimmed.to_owned();
    }
    let length = value.chars().count();
    if value.contains('\0') {
        violations.add(field, "must not contain NUL characters");
    } else if length < min {
        violations.add(
            field,
            if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must have at least {min} characters")
            },
        );
    } else if length > max {
        violations.add(field, format!("must have at most {max} characters"));
    }
}

/// Like [`check_text`] for an optional field; an empty optional string becomes `None`.
pub fn check_optional_text(
    violations: &mut Violations,
    field: &str,
    value: &mut Option<String>,
    max: usize,
) {
    if let Some(text) = value {
        check_text(violations, field, text, 0, max);
        if text.is_empty() {
            *value = None;
        }
    }
}

/// Checks a new password: 8 to 128 characters (not trimmed: spaces are part of a password).
pub fn check_password(violations: &mut Violations, field: &str, value: &str) {
    let length = value.chars().count();
    if length < 8 {
        violations.add(field, "must have at least 8 characters");
    } else if length > 128 {
        violations.add(field, "must have at most 128 characters");
    }
}

/// For PATCH bodies: a field that may be omitted but, when present, must not be `null`.
pub fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Runs a paginated list: `filtered(select)` builds `<select> FROM … WHERE …`; the total is
/// counted with the same filter, then one page is fetched in `order_by` order.
pub async fn fetch_page<'q, T>(
    pool: &sqlx::PgPool,
    filtered: impl Fn(&str) -> sqlx::QueryBuilder<'q, sqlx::Postgres>,
    select: &str,
    order_by: &str,
    page: PageRequest,
) -> Result<Paginated<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let total: i64 = filtered("SELECT count(*)")
        .build_query_scalar()
        .fetch_one(pool)
        .await?;
    let mut rows = filtered(select);
    rows.push(format!(" ORDER BY {order_by} LIMIT "))
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
    let data = rows.build_query_as::<T>().fetch_all(pool).await?;
    Ok(Paginated::new(data, total, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        password: String,
        age: u32,
        #[serde(default)]
        tags: Vec<String>,
    }

    impl Validate for Body {
        fn validate(&mut self, _: &mut Violations) {}
    }

    fn problems(body: serde_json::Value) -> Vec<String> {
        match parse_body::<Body>(&serde_json::to_vec(&body).unwrap()) {
            Err(ApiError::Validation(violations)) => {
                let json = serde_json::to_value(&violations).unwrap();
                json.as_object().unwrap().keys().cloned().collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_offending_field_is_named_not_just_the_first() {
        assert_eq!(
            problems(serde_json::json!({"email": 5, "age": "old", "tags": [1], "extra": true})),
            ["age", "email", "extra", "password", "tags[0]"]
        );
        assert_eq!(
            problems(serde_json::json!({"email": "a@b.c"})),
            ["age", "password"]
        );
        assert_eq!(
            problems(serde_json::json!({"password": "x", "email": "a", "age": -1})),
            ["age"]
        );
    }
}
