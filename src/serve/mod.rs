//! `khabar serve`: a classifier over HTTP (axum on tokio), one loaded model shared by every
//! request.
//!
//! - `POST /v1/classify` classifies `{"texts": [...]}` or `{"documents": [{"id", "text"}]}`
//!   (with `top_k`, `threshold` (a probability, or `"model"`), `unsure_label`, `explain`); the answer keeps the
//!   order and the ids, and names the model.
//! - `GET /health` (200 once the model is loaded, 503 before), `GET /v1/info` (the model and the
//!   limits), `GET /metrics` (Prometheus), `GET /openapi.json` (this API, generated from the
//!   code by utoipa).
//! - Limits, each answered with `{"error", "kind"}`: the body's size and the batch's (413),
//!   malformed JSON or fields (422), a bounded queue of requests (503 `overloaded` when full,
//!   with `Retry-After`), and a time limit per request, reading its body and waiting included
//!   (503 `timeout`); a connection that sends no whole request head within that time is
//!   closed.
//! - [`serve`] returns once its `shutdown` future resolves and the requests in flight are
//!   answered (the command line: on SIGTERM or Ctrl-C).
//!
//! Classification runs on tokio's blocking threads, in the classifier's own thread pool
//! ([`Classifier::with_threads`]); at most [`ServeConfig::workers`] requests are classified at
//! once, and at most [`ServeConfig::queue`] more wait.

mod api;
mod metrics;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Semaphore;
use utoipa::OpenApi;

pub use api::{
    ApiError, ClassifyRequest, ClassifyResponse, ClassifyResult, Document, ErrorBody,
    ExplainOption, Health, Info, Limits, ModelId, Scored, Threshold,
};
pub use metrics::Metrics;

use crate::classifier::Classifier;
use crate::error::{Error, Result};
use api::{parse_request, ErrorKind};

/// The server's limits.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Largest request body, in bytes (default 8 MiB).
    pub max_body_bytes: usize,
    /// Most articles in one request (default 1,000).
    pub max_batch: usize,
    /// Requests classified at once (default: one per core).
    pub workers: usize,
    /// Requests that may wait for a worker beyond those (default 256); more are refused.
    pub queue: usize,
    /// Time a request may take, reading its body and waiting for a worker included (default
    /// 30 s); also the time a connection may take to send a request's head (from its opening,
    /// or from its last answer), after which it is closed.
    pub timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_body_bytes: 8 << 20,
            max_batch: 1000,
            workers: crate::threads::count(None),
            queue: 256,
            timeout: Duration::from_secs(30),
        }
    }
}

impl ServeConfig {
    /// Checks the limits: each must be at least 1.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_batch", self.max_batch),
            ("workers", self.workers),
        ] {
            if value == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be more than 0 seconds"));
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            workers: self.workers,
            queue: self.queue,
            timeout_secs: self.timeout.as_secs_f64(),
        }
    }
}

/// The model once loaded, and what the answers say of it.
struct Loaded {
    clf: Arc<Classifier>,
    id: ModelId,
}

/// What every request shares.
struct AppState {
    model: OnceLock<Loaded>,
    config: ServeConfig,
    /// Permits for the requests classified or waiting (workers + queue).
    admitted: Arc<Semaphore>,
    /// Permits for the requests classified.
    workers: Arc<Semaphore>,
    metrics: Metrics,
}

impl AppState {
    fn loaded(&self) -> std::result::Result<&Loaded, ApiError> {
        self.model.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "loading",
                "the model is still loading; try again shortly",
            )
        })
    }
}

/// The identity answers give the model `clf`, named `name`: the SHA-256 its bundle records
/// for its weights.
pub fn model_id(clf: &Classifier, name: &str) -> ModelId {
    ModelId {
        name: name.to_string(),
        sha256: clf
            .config()
            .checksums
            .get(crate::bundle::WEIGHTS_FILE)
            .cloned()
            .unwrap_or_default(),
        architecture: clf.config().architecture.name().to_string(),
    }
}

/// Serves on `listener` until `shutdown` resolves, then stops taking connections, answers the
/// requests in flight and returns. The model comes from `load` (named `name` in answers), run
/// on a blocking thread while the server already answers `/health` (503 until it is loaded):
/// if it fails, the server stops and its error is returned. `on_loaded` hears how long loading
/// took.
pub async fn serve(
    listener: tokio::net::TcpListener,
    name: String,
    load: impl FnOnce() -> Result<Classifier> + Send + 'static,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_loaded: impl FnOnce(&Classifier, Duration) + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let header_timeout = config.timeout;
    let state = Arc::new(AppState {
        model: OnceLock::new(),
        admitted: Arc::new(Semaphore::new(config.workers + config.queue)),
        workers: Arc::new(Semaphore::new(config.workers)),
        config,
        metrics: Metrics::default(),
    });
    let app = router(Arc::clone(&state));
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<Error>();
    let loader = Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        match load() {
            Ok(clf) => {
                on_loaded(&clf, start.elapsed());
                let id = model_id(&clf, &name);
                let _ = loader.model.set(Loaded {
                    clf: Arc::new(clf),
                    id,
                });
            }
            Err(e) => {
                let _ = failed_tx.send(e);
            }
        }
    });
    let failure = Arc::new(std::sync::Mutex::new(None));
    let failure_seen = Arc::clone(&failure);
    let stop = async move {
        tokio::select! {
            _ = shutdown => {}
            Ok(e) = failed_rx => {
                *failure_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
    };
    accept_until(listener, app, header_timeout, stop).await;
    let failed = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Takes connections on `listener` and serves `app` on each (HTTP/1.1) until `stop` resolves;
/// then closes the listener, lets each connection finish the request it is reading or
/// answering, and returns once all are closed. A connection that has not sent a whole request
/// head within `header_timeout` of starting one (or, between requests, of the last answer) is
/// closed: a client that trickles its headers, or never sends them, holds no connection for
/// ever, and cannot hold up a shutdown.
async fn accept_until(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A connection that failed before it was taken: the next one is fine.
                Err(e) if is_connection_error(&e) => continue,
                // Out of file descriptors or the like: give the machine a moment.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = connections.watch(conn);
        tokio::spawn(async move {
            // A client that goes away, or a head that came too slowly: nothing to answer.
            let _ = conn.await;
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// Errors of one connection on `accept`, after which the listener is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The routes, their limits and the metrics' middleware.
fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/classify", post(classify))
        .route("/v1/info", get(info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            track,
        ))
        .with_state(state)
}

/// Counts every answer in the metrics, by route and status, and error answers by kind.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let route = ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("other");
    let start = Instant::now();
    let response = next.run(request).await;
    if let Some(ErrorKind(kind)) = response.extensions().get::<ErrorKind>() {
        state.metrics.error(kind);
    }
    state
        .metrics
        .request(route, response.status().as_u16(), start.elapsed());
    response
}

/// The routes, as the metrics name them.
const ROUTES: [&str; 5] = [
    "/v1/classify",
    "/v1/info",
    "/health",
    "/metrics",
    "/openapi.json",
];

/// A gauge raised while its guard lives.
struct Raised<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Raised<'a> {
    fn new(gauge: &'a std::sync::atomic::AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Raised(gauge)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a request asks, checked against the model.
struct Asked {
    top_k: usize,
    below: Option<f32>,
    unsure_label: String,
    explain: Option<usize>,
}

/// Classify articles.
#[utoipa::path(
    post,
    path = "/v1/classify",
    request_body = ClassifyRequest,
    responses(
        (status = 200, description = "One result per article, in order", body = ClassifyResponse),
        (status = 413, description = "Body or batch over the limit", body = ErrorBody),
        (status = 422, description = "Malformed JSON, or a field that is wrong", body = ErrorBody),
        (status = 503, description = "Overloaded, timed out, or still loading", body = ErrorBody),
    )
)]
async fn classify(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> std::result::Result<Json<ClassifyResponse>, ApiError> {
    // The time limit covers everything from here: reading the body (a client that sends it
    // slowly), waiting for a worker, and the work. Work that runs past it goes on, holding its
    // worker, but its answer is the timeout.
    let answer = async {
        let body = Bytes::from_request(request, &()).await;
        classify_body(Arc::clone(&state), body).await
    };
    tokio::time::timeout(state.config.timeout, answer)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took over {} s, reading it and waiting included (khabar serve \
                     --timeout)",
                    state.config.timeout.as_secs_f64()
                ),
            ))
        })
}

/// `POST /v1/classify` once its body is read (or failed to be).
async fn classify_body(
    state: Arc<AppState>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Json<ClassifyResponse>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body is over the limit of {} bytes (khabar serve \
                     --max-body-bytes)",
                    state.config.max_body_bytes
                ),
            )
        } else {
            ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
        }
    })?;
    let loaded = state.loaded()?;
    let request = parse_request(&body)?;
    let clf = &loaded.clf;
    let (ids, texts): (Option<Vec<serde_json::Value>>, Vec<String>) =
        match (request.texts, request.documents) {
            (Some(texts), None) => (None, texts),
            (None, Some(docs)) => {
                let (ids, texts) = docs.into_iter().map(|d| (d.id, d.text)).unzip();
                (Some(ids), texts)
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "give either texts or documents, not both",
                ))
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "the request has no articles: give texts (a list of strings) or documents \
                     (a list of {\"id\", \"text\"})",
                ))
            }
        };
    if texts.len() > state.config.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} articles in one request; the limit is {} (khabar serve --max-batch)",
                texts.len(),
                state.config.max_batch
            ),
        ));
    }
    let asked = check_request(
        clf,
        request.top_k,
        request.threshold,
        request.unsure_label,
        request.explain.and_then(|e| e.count()),
    )?;
    let overloaded = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{} requests are being classified or waiting, the most this server takes \
                 (khabar serve --workers, --queue); try again shortly",
                state.config.workers + state.config.queue
            ),
        )
    };
    let admitted = Arc::clone(&state.admitted)
        .try_acquire_owned()
        .map_err(|_| overloaded())?;
    let worker = {
        let _waiting = Raised::new(&state.metrics.waiting);
        Arc::clone(&state.workers)
            .acquire_owned()
            .await
            .map_err(|_| overloaded())?
    };
    let n = texts.len();
    let job = {
        let state = Arc::clone(&state);
        tokio::task::spawn_blocking(move || {
            // The permits go with the work: a request that timed out still holds its worker
            // until its work is done, so that the workers are never oversubscribed.
            let _permits = (admitted, worker);
            let _working = Raised::new(&state.metrics.working);
            let clf = &state.model.get().expect("loaded before admitted").clf;
            results(clf, &texts, ids, &asked)
        })
    };
    let results = match job.await {
        Err(join) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("classification failed: {join}; please report this as a bug"),
            ))
        }
        Ok(result) => result.map_err(library_error)?,
    };
    state.metrics.documents(n);
    Ok(Json(ClassifyResponse {
        model: loaded.id.clone(),
        results,
    }))
}

/// A library error as an answer: a request the model cannot do (`unsupported`, 422), or a
/// fault (500).
fn library_error(e: Error) -> ApiError {
    match e {
        Error::Usage(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported", m),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// Checks the request's options against the model, as `khabar predict` checks its own.
fn check_request(
    clf: &Classifier,
    top_k: Option<usize>,
    threshold: Option<Threshold>,
    unsure_label: Option<String>,
    explain: Option<usize>,
) -> std::result::Result<Asked, ApiError> {
    let top_k = top_k.unwrap_or(3);
    if top_k == 0 {
        return Err(ApiError::invalid("top_k must be at least 1"));
    }
    if threshold.is_some() && clf.is_multi_label() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            "threshold applies to single-label models; a multi-label model answers every label \
             over its own threshold, chosen at training",
        ));
    }
    let below = match threshold {
        None => None,
        Some(Threshold::Probability(t)) if (0.0..=1.0).contains(&t) => Some(t),
        Some(Threshold::Named(name)) if name == "model" => {
            Some(clf.config().unsure_below.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unsupported",
                    "this model records no threshold of its own: give threshold as a probability",
                )
            })?)
        }
        Some(Threshold::Probability(t)) => {
            return Err(ApiError::invalid(format!(
                "threshold must be a probability between 0 and 1, or \"model\" (got {t})"
            )))
        }
        Some(Threshold::Named(name)) => {
            return Err(ApiError::invalid(format!(
                "threshold must be a probability between 0 and 1, or \"model\" (got {name:?})"
            )))
        }
    };
    if explain.is_some() {
        clf.explain_batch::<&str>(&[], 0).map_err(library_error)?;
    }
    Ok(Asked {
        top_k,
        below,
        unsure_label: unsure_label.unwrap_or_else(|| "unsure".to_string()),
        explain,
    })
}

/// Classifies `texts` as `asked` says (on the calling thread, in the classifier's pool).
fn results(
    clf: &Classifier,
    texts: &[String],
    ids: Option<Vec<serde_json::Value>>,
    asked: &Asked,
) -> Result<Vec<ClassifyResult>> {
    // With explanations, the encoder reads each text once for both.
    let (predictions, explained) = match asked.explain {
        Some(n) => {
            let (probs, explained) = clf.probabilities_and_explanations(texts, n)?;
            let predictions = probs.iter().map(|p| clf.to_prediction(p)).collect();
            (predictions, explained)
        }
        None => (clf.predict_batch(texts)?, Vec::new()),
    };
    let mut explained = explained.into_iter();
    let mut ids = ids.map(|ids| ids.into_iter());
    let scored = |s: crate::LabelScore| Scored {
        label: s.label,
        score: s.score,
    };
    Ok(predictions
        .into_iter()
        .map(|p| {
            let below_threshold = p.labels.as_ref().map(|l| l.is_empty());
            let label = match asked.below {
                Some(t) if p.score < t => asked.unsure_label.clone(),
                _ => p.label,
            };
            ClassifyResult {
                id: ids.as_mut().and_then(|i| i.next()),
                label,
                score: p.score,
                top: p.top.into_iter().take(asked.top_k).map(scored).collect(),
                labels: p.labels.map(|l| l.into_iter().map(scored).collect()),
                below_threshold,
                explain: explained.next(),
            }
        })
        .collect())
}

/// Whether the server can classify: 200 once the model is loaded.
#[utoipa::path(
    get,
    path = "/health",
    responses(
        (status = 200, description = "The model is loaded", body = Health),
        (status = 503, description = "The model is still loading", body = Health),
    )
)]
async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    match state.model.get() {
        Some(_) => (StatusCode::OK, Json(Health { status: "ok" })),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status: "loading" }),
        ),
    }
}

/// The model (labels, architecture, thresholds, training) and the server's limits.
#[utoipa::path(
    get,
    path = "/v1/info",
    responses(
        (status = 200, description = "The model and the limits", body = Info),
        (status = 503, description = "The model is still loading", body = ErrorBody),
    )
)]
async fn info(State(state): State<Arc<AppState>>) -> std::result::Result<Json<Info>, ApiError> {
    let loaded = state.loaded()?;
    let config = loaded.clf.config();
    Ok(Json(Info {
        model: loaded.id.clone(),
        labels: config.labels.clone(),
        multi_label: config.multi_label.is_some(),
        unsure_below: config.unsure_below,
        calibrated: config.calibrator.is_some(),
        encoder: config.encoder.clone(),
        architecture_config: serde_json::to_value(&config.architecture).unwrap_or_default(),
        training: config
            .training
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok()),
        khabar_version: env!("CARGO_PKG_VERSION"),
        limits: state.config.limits(),
    }))
}

/// The server's counters in Prometheus' text format.
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String))
)]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let model = state.model.get().map(|l| &l.id);
    let text = state
        .metrics
        .render(model.map(|m| (m.name.as_str(), m.sha256.as_str(), m.architecture.as_str())));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// This API's OpenAPI 3 description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
async fn openapi_json(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi(&state.config).to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}

/// The API's description, generated from the handlers and types above.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "khabar",
        description = "News-topic classification over HTTP (khabar serve)."
    ),
    paths(classify, health, info, metrics, openapi_json),
    components(schemas(
        ClassifyRequest,
        Document,
        ClassifyResponse,
        ClassifyResult,
        ModelId,
        Scored,
        Health,
        Info,
        Limits,
        ErrorBody
    ))
)]
struct ApiDoc;

/// The OpenAPI description of the server's API with `config`'s limits, as `GET /openapi.json`
/// serves it. What the derived schemas cannot say is added here: a request gives `texts` or
/// `documents` (one of them, as an array), and at most `max_batch` of them.
pub fn openapi(config: &ServeConfig) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder};
    use utoipa::openapi::{RefOr, Schema};
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let Some(components) = doc.components.as_mut() else {
        return doc;
    };
    if let Some(RefOr::T(Schema::Object(mut request))) =
        components.schemas.remove("ClassifyRequest")
    {
        for field in ["texts", "documents"] {
            if let Some(RefOr::T(Schema::Array(a))) = request.properties.get_mut(field) {
                a.max_items = Some(config.max_batch);
            }
        }
        let given = |field: &str| {
            ObjectBuilder::new()
                .required(field)
                .property(field, ArrayBuilder::new())
        };
        let articles = OneOfBuilder::new()
            .description(Some("The articles: texts or documents, not both"))
            .item(given("texts"))
            .item(given("documents"));
        let whole = AllOfBuilder::new()
            .item(Schema::Object(request))
            .item(articles)
            .build();
        components
            .schemas
            .insert("ClassifyRequest".into(), RefOr::T(Schema::AllOf(whole)));
    }
    doc
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no such path: {} (the API: POST /v1/classify, GET /v1/info, /health, /metrics, \
             /openapi.json)",
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
