//! Fuzzing the public request DTOs through the running app. Every operation of the served
//! OpenAPI document gets random inputs shaped after its own schema (the right keys with right
//! and wrong types, nulls, odd strings, unknown keys), random query parameters and random bytes.
//! Whatever arrives, the server never answers 5xx and every error is the contract's error JSON.

use omnistream_tests::{Client, Member, TestApp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// Random inputs per operation.
const CASES: usize = 24;

/// An odd string: empty, whitespace, control and non-BMP characters, SQL-ish, very long.
fn odd_string() -> BoxedStrategy<String> {
    prop_oneof![
        ".{0,24}",
        Just(String::new()),
        Just("   ".to_owned()),
        Just("'; DROP TABLE events; --".to_owned()),
        Just("\u{0000}\u{feff}😀".to_owned()),
        Just("x".repeat(5000)),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        Just("-1".to_owned()),
    ]
    .boxed()
}

fn any_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        odd_string().prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
    ]
    .boxed()
}

/// Follows `$ref`s into `components.schemas`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => document
            .pointer(reference.trim_start_matches('#'))
            .map_or(schema, |target| resolve(document, target)),
        None => schema,
    }
}

/// A value that mostly fits `schema` (so requests get past the outer checks) and sometimes
/// does not.
fn value_for(document: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(document, schema);
    if depth > 4 {
        return any_scalar();
    }
    let alternatives = ["oneOf", "anyOf", "allOf"]
        .iter()
        .find_map(|key| schema.get(*key).and_then(Value::as_array));
    if let Some(alternatives) = alternatives.filter(|a| !a.is_empty()) {
        let options: Vec<BoxedStrategy<Value>> = alternatives
            .iter()
            .map(|a| value_for(document, a, depth + 1))
            .collect();
        return prop::strategy::Union::new(options).boxed();
    }
    let fitting = fitting_value(document, schema, depth);
    prop_oneof![4 => fitting, 1 => any_scalar()].boxed()
}

fn fitting_value(document: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.is_empty() {
            return prop::sample::select(values.clone()).boxed();
        }
    }
    let kind = match schema.get("type") {
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        Some(Value::String(t)) => t.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "any",
    };
    match kind {
        "object" => object_for(document, schema, depth),
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            prop::collection::vec(value_for(document, &items, depth + 1), 0..4)
                .prop_map(Value::Array)
                .boxed()
        }
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("uuid") => Just(()).prop_map(|_| json!(uuid::Uuid::new_v4())).boxed(),
            Some("date-time") => prop_oneof![
                Just(json!("2026-11-29T10:00:00Z")),
                Just(json!("2026-13-45T99:00:00Z")),
                odd_string().prop_map(Value::String),
            ]
            .boxed(),
            Some("email") => prop_oneof![
                "[a-z]{1,8}@[a-z]{1,8}\\.com".prop_map(Value::String),
                odd_string().prop_map(Value::String),
            ]
            .boxed(),
            _ => odd_string().prop_map(Value::String).boxed(),
        },
        "integer" => prop_oneof![
            (0i64..200).prop_map(Value::from),
            any::<i64>().prop_map(Value::from)
        ]
        .boxed(),
        "number" => any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
            .boxed(),
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        _ => any_scalar(),
    }
}

/// An object with a random subset of the schema's properties, sometimes plus an unknown one.
fn object_for(document: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let properties: Vec<(String, BoxedStrategy<Value>)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(name, s)| (name.clone(), value_for(document, s, depth + 1)))
                .collect()
        })
        .unwrap_or_default();
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = properties
        .into_iter()
        .map(|(name, strategy)| {
            prop::option::weighted(0.8, strategy)
                .prop_map(move |value| value.map(|v| (name.clone(), v)))
                .boxed()
        })
        .collect();
    (
        fields,
        prop::option::weighted(0.1, ("[a-z]{1,8}", any_scalar())),
    )
        .prop_map(|(fields, unknown)| {
            let mut object: Map<String, Value> = fields.into_iter().flatten().collect();
            if let Some((key, value)) = unknown {
                object.insert(format!("unknown_{key}"), value);
            }
            Value::Object(object)
        })
        .boxed()
}

fn sample<T: std::fmt::Debug>(runner: &mut TestRunner, strategy: &BoxedStrategy<T>) -> T {
    strategy
        .new_tree(runner)
        .expect("a value is generated")
        .current()
}

fn assert_well_formed(method: &Method, path: &str, input: &str, status: StatusCode, body: &Value) {
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status} to {input}: {body}"
    );
    if status.is_client_error() {
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{method} {path} answered {status} without the error JSON to {input}: {body}"
        );
    }
}

/// The path with every `{param}` replaced by a random UUID or an invalid one.
fn fill_path(template: &str, runner: &mut TestRunner) -> String {
    let ids = prop_oneof![
        3 => Just(()).prop_map(|_| uuid::Uuid::new_v4().to_string()),
        1 => Just("not-a-uuid".to_owned()),
        1 => Just("%00".to_owned()),
    ]
    .boxed();
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                sample(runner, &ids)
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

struct Session<'a> {
    app: &'a TestApp,
    member: Member,
    client: Client,
    renewals: u32,
}

impl Session<'_> {
    /// A fuzzed call may log the caller out, deactivate them or change their role: start over
    /// with a new organization when the credential stops working.
    async fn renew_if_revoked(&mut self) {
        if self.client.get("/api/auth/me").await.status == StatusCode::UNAUTHORIZED {
            self.renewals += 1;
            self.member = self.app.register(&format!("Fuzz {}", self.renewals)).await;
            self.client = self.member.client(self.app);
        }
    }
}

#[tokio::test]
async fn random_requests_never_cause_a_server_error() {
    let app = TestApp::spawn().await;
    let member = app.register("Fuzz").await;
    let client = member.client(&app);
    let mut session = Session {
        app: &app,
        member,
        client,
        renewals: 0,
    };
    let document = app.anonymous().get("/api/openapi.json").await.body;
    let paths = document["paths"].as_object().expect("paths").clone();
    let mut runner = TestRunner::deterministic();
    let mut operations = 0;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (template, item) in &paths {
        for (method_name, operation) in item.as_object().unwrap() {
            let Ok(method) = method_name.to_uppercase().parse::<Method>() else {
                continue;
            };
            if template.contains("stream") || template.ends_with("/logout") {
                continue;
            }
            operations += 1;
            let body_schema = operation
                .pointer("/requestBody/content/application~1json/schema")
                .cloned();
            let query_params: Vec<(String, Value)> = operation["parameters"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter(|p| p["in"] == "query")
                        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
                        .collect()
                })
                .unwrap_or_default();
            for case in 0..CASES {
                let path = fill_path(template, &mut runner);
                let mut query = Vec::new();
                for (name, schema) in &query_params {
                    let value = sample(&mut runner, &value_for(&document, schema, 3));
                    if case % 3 != 0 {
                        let text = value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned);
                        query.push((name.clone(), text));
                    }
                }
                let url = if query.is_empty() {
                    path.clone()
                } else {
                    format!(
                        "{path}?{}",
                        serde_urlencoded::to_string(&query).expect("query encodes")
                    )
                };
                let (input, response) = match &body_schema {
                    Some(_) if case % 8 == 7 => {
                        let bytes = sample(
                            &mut runner,
                            &prop::collection::vec(any::<u8>(), 0..64).boxed(),
                        );
                        let input = format!("raw bytes {bytes:?}");
                        let response = session
                            .client
                            .send_raw(method.clone(), &url, "application/json", bytes)
                            .await;
                        (input, response)
                    }
                    Some(schema) => {
                        let body = sample(&mut runner, &value_for(&document, schema, 0));
                        let input = body.to_string();
                        let response = session.client.send(method.clone(), &url, Some(body)).await;
                        (input, response)
                    }
                    None => (
                        "no body".to_owned(),
                        session.client.send(method.clone(), &url, None).await,
                    ),
                };
                assert_well_formed(&method, &url, &input, response.status, &response.body);
                *statuses.entry(response.status.as_u16()).or_default() += 1;
                if response.status == StatusCode::UNAUTHORIZED
                    || response.status == StatusCode::FORBIDDEN
                    || method != Method::GET
                {
                    session.renew_if_revoked().await;
                }
            }
        }
    }
    assert!(
        operations > 40,
        "the document lists the API ({operations} operations)"
    );
    let successes: usize = statuses
        .iter()
        .filter(|(status, _)| (200..300).contains(*status))
        .map(|(_, n)| n)
        .sum();
    assert!(
        successes > 100,
        "random inputs also reach the handlers, not only the validators: {statuses:?}"
    );
    eprintln!("statuses: {statuses:?}");
}
