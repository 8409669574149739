//! The HTTP API's bodies: what a request may hold, what an answer holds, and the errors, each
//! with its OpenAPI schema (see `openapi.json`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::explain::Explanation;

/// A classification request: articles as `texts` or as `documents` with ids (one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// The articles' texts; the answer keeps their order.
    #[schema(example = json!(["The striker scored twice in the cup final"]))]
    pub texts: Option<Vec<String>>,
    /// The articles with an id each, which the answer repeats.
    pub documents: Option<Vec<Document>>,
    /// How many labels to give for each article, most probable first (default 3).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "optional_count")]
    pub top_k: Option<usize>,
    /// Answer `unsure_label` instead of the best label when its probability is below this
    /// (single-label models): a probability, or `"model"` for the model's own threshold
    /// (`khabar predict --unsure`; `GET /v1/info` shows it).
    #[schema(schema_with = threshold_schema)]
    pub threshold: Option<Threshold>,
    /// The answer below the threshold (default `unsure`).
    pub unsure_label: Option<String>,
    /// Also say why each article got its label: the N features that raised the label's score
    /// most and the N that lowered it most (`true` is 5; `bow`, `hybrid` and `encoder`
    /// models).
    #[schema(schema_with = explain_schema)]
    pub explain: Option<ExplainOption>,
}

/// `threshold`: a probability, or `"model"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Threshold {
    /// Below this probability, the answer is unsure.
    Probability(f32),
    /// `"model"`: the model's own threshold.
    Named(String),
}

/// The schema of `threshold`: a number between 0 and 1, the string `model`, or null.
fn threshold_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    one_of_or_null([
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0.0))
            .maximum(Some(1.0)),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["model"])),
    ])
}

/// The schema of `explain`: a whole number, a boolean, or null.
fn explain_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    one_of_or_null([
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0)),
        ObjectBuilder::new().schema_type(Type::Boolean),
    ])
}

/// One of `schemas`, or null.
fn one_of_or_null<const N: usize>(
    schemas: [utoipa::openapi::schema::ObjectBuilder; N],
) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let mut one_of = OneOfBuilder::new();
    for s in schemas {
        one_of = one_of.item(s);
    }
    Schema::OneOf(
        one_of
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// A count that JSON may write as a whole float (`3.0`), as JSON Schema's integers allow.
fn optional_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_number(n).map(Some).map_err(serde::de::Error::custom),
    }
}

/// `n` as a count: a whole number, not negative (as large as it is, up to `usize::MAX`).
fn whole_number(n: serde_json::Number) -> Result<usize, String> {
    if let Some(u) = n.as_u64() {
        return Ok(usize::try_from(u).unwrap_or(usize::MAX));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(f.min(usize::MAX as f64) as usize),
        _ => Err(format!("expected a whole number, not negative, got {n}")),
    }
}

/// `explain`: a number of features, or `true` for 5, `false` for none.
#[derive(Debug)]
pub enum ExplainOption {
    /// Whether to explain, with 5 features each way.
    Flag(bool),
    /// Features listed each way.
    Count(usize),
}

impl<'de> Deserialize<'de> for ExplainOption {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Ok(ExplainOption::Flag(b)),
            serde_json::Value::Number(n) => whole_number(n)
                .map(ExplainOption::Count)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected a number of features or a boolean, got {other}"
            ))),
        }
    }
}

impl ExplainOption {
    /// Features to list each way; `None` for no explanation.
    pub fn count(&self) -> Option<usize> {
        match *self {
            ExplainOption::Flag(true) => Some(5),
            ExplainOption::Flag(false) | ExplainOption::Count(0) => None,
            ExplainOption::Count(n) => Some(n),
        }
    }
}

/// An article with an id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Any JSON value (a string or a number, usually), repeated in the answer.
    #[schema(value_type = Value, example = json!("wire-1842"))]
    pub id: serde_json::Value,
    /// The article.
    pub text: String,
}

/// The answer to a classification request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// The model that answered.
    pub model: ModelId,
    /// One result per article, in the request's order.
    pub results: Vec<ClassifyResult>,
}

/// Which model answered: its name and the SHA-256 of its weights.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelId {
    /// The bundle directory's name, or `built-in`.
    pub name: String,
    /// SHA-256 (hex) of the model's weights file, as its `config.json` records it.
    pub sha256: String,
    /// The architecture (`bow`, `transformer`, `encoder`, `hybrid`).
    pub architecture: String,
}

/// A label and its probability.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scored {
    /// The label.
    pub label: String,
    /// Its probability (a multi-label model: the label's own score).
    pub score: f32,
}

/// One article's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyResult {
    /// The document's id, when the request gave documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub id: Option<serde_json::Value>,
    /// The answer: the most probable label, or `unsure_label` below the threshold.
    pub label: String,
    /// The most probable label's probability.
    pub score: f32,
    /// The `top_k` most probable labels, best first.
    pub top: Vec<Scored>,
    /// A multi-label model's answer: every label whose score reaches its threshold, best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Scored>>,
    /// A multi-label model: whether no label reached its threshold (`label` is then the best).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below_threshold: Option<bool>,
    /// Why the article got its label, when `explain` asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub explain: Option<Explanation>,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` once the model is loaded, `loading` before.
    pub status: &'static str,
}

/// `GET /v1/info`: the model and the server's limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// The model.
    pub model: ModelId,
    /// Its labels, in the model's order.
    pub labels: Vec<String>,
    /// Whether it answers several labels per article.
    pub multi_label: bool,
    /// The model's own threshold (`unsure: true`), when it has one.
    pub unsure_below: Option<f32>,
    /// Whether its probabilities are calibrated.
    pub calibrated: bool,
    /// The pretrained encoder it reads, when it reads one.
    #[schema(value_type = Option<Object>)]
    pub encoder: Option<crate::model::EncoderId>,
    /// The architecture's settings, as `config.json` holds them.
    #[schema(value_type = Object)]
    pub architecture_config: serde_json::Value,
    /// How it was trained (data, examples, time), as `config.json` holds it.
    #[schema(value_type = Option<Object>)]
    pub training: Option<serde_json::Value>,
    /// The khabar version serving it.
    pub khabar_version: &'static str,
    /// The server's limits.
    pub limits: Limits,
}

/// The server's limits, as `khabar serve` was started with them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Limits {
    /// Largest request body, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Most articles in one request (more: 413).
    pub max_batch: usize,
    /// Requests classified at once.
    pub workers: usize,
    /// Requests that may wait for a worker (more: 503, kind `overloaded`).
    pub queue: usize,
    /// Seconds a request may take, reading its body and waiting included (longer: 503, kind
    /// `timeout`).
    pub timeout_secs: f64,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// What kind of error, for a program: `body_too_large`, `batch_too_large`,
    /// `malformed_json`, `invalid_request`, `unsupported`, `overloaded`, `timeout`, `loading`,
    /// `not_found`, `method_not_allowed`, `internal`.
    pub kind: &'static str,
}

/// An error answer with its status. Its kind also goes into the response's extensions, where
/// the metrics count it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

/// The kind of an error response, for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKind(pub &'static str);

impl ApiError {
    /// An error of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &'static str, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                kind,
            },
        }
    }

    /// A request that is well-formed JSON but asks for something invalid.
    pub fn invalid(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = ErrorKind(self.body.kind);
        let retry = matches!(self.body.kind, "overloaded" | "loading");
        let mut response = (self.status, Json(self.body)).into_response();
        if retry {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response.extensions_mut().insert(kind);
        response
    }
}

/// A request body read as JSON: a syntax error is `malformed_json`, a field of the wrong type
/// or an unknown field `invalid_request`, both 422, and the message names the field
/// (`documents[2].text: invalid type: integer, expected a string`).
pub fn parse_request(body: &[u8]) -> Result<ClassifyRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = serde_path_to_error::deserialize::<_, ClassifyRequest>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                ApiError::invalid(format!("{path}: {inner}"))
            }
            serde_json::error::Category::Data => {
                ApiError::invalid(format!("request body: {inner}"))
            }
            _ => malformed(inner),
        }
    })?;
    de.end().map_err(malformed)?;
    Ok(request)
}

/// A body that is not JSON.
fn malformed(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "malformed_json",
        format!("the request body is not valid JSON: {e}"),
    )
}
