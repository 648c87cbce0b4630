//! The admission routes: one path per webhook, a body limit, metrics, a span per review and a
//! log line per denial.

use super::Webhooks;
use super::metrics::Metrics;
use super::review::{self, Outcome};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;
use std::time::Instant;

/// The largest review accepted: an object and its old version, each up to kube-apiserver's
/// 3 MiB request limit, and the envelope.
pub const MAX_REVIEW_BYTES: usize = 7 * 1024 * 1024;

/// The webhooks, by path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Decisions,
    Audit,
    Purchases,
    Status,
    Namespaces,
    Verification,
}

impl Which {
    pub const ALL: [Which; 6] = [
        Which::Decisions,
        Which::Audit,
        Which::Purchases,
        Which::Status,
        Which::Namespaces,
        Which::Verification,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Which::Decisions => "/validate/decisions",
            Which::Audit => "/mutate/audit",
            Which::Purchases => "/validate/purchases",
            Which::Status => "/validate/status",
            Which::Namespaces => "/validate/namespaces",
            Which::Verification => "/mutate/verification",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Which::Decisions => "decisions",
            Which::Audit => "audit",
            Which::Purchases => "purchases",
            Which::Status => "status",
            Which::Namespaces => "namespaces",
            Which::Verification => "verification",
        }
    }
}

/// The reply to one request body: an HTTP status and a body (an AdmissionReview when the
/// status is 200, a plain-text reason otherwise).
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Judges one request body with one webhook and records metrics. Never panics. Waits only
/// when a purchase needs the caches confirmed current ([`Webhooks::purchases`]).
pub async fn review_body(webhooks: &Webhooks, metrics: &Metrics, which: Which, body: &[u8]) -> Reply {
    let started = Instant::now();
    let (uid, operation, outcome) = match review::parse(body) {
        Err(review::Unusable(why)) => {
            metrics.record(which.name(), "", "error", "UnusableRequest", started.elapsed());
            tracing::info!(webhook = which.name(), reason = "UnusableRequest", %why, "admission request refused");
            return Reply {
                status: 400,
                body: why.into_bytes(),
            };
        }
        Ok(Err(malformed)) => (
            malformed.uid,
            String::new(),
            Outcome::deny(400, "MalformedReview", malformed.message),
        ),
        Ok(Ok(request)) => {
            let span = tracing::info_span!(
                "admission",
                webhook = which.name(),
                kind = %request.kind,
                namespace = request.namespace.as_deref().unwrap_or(""),
                name = %request.name,
                operation = %request.operation,
                outcome = tracing::field::Empty,
            );
            let judged = async {
                let outcome = match which {
                    Which::Decisions => webhooks.decisions(&request),
                    Which::Audit => webhooks.audit(&request),
                    Which::Purchases => webhooks.purchases(&request).await,
                    Which::Status => webhooks.status(&request),
                    Which::Namespaces => webhooks.namespaces(&request),
                    Which::Verification => webhooks.verification(&request).await,
                };
                tracing::Span::current().record("outcome", outcome.reason);
                if !outcome.allowed {
                    tracing::info!(
                        rule = outcome.rule,
                        reason = outcome.reason,
                        user = %request.username,
                        message = %outcome.message,
                        "admission denied"
                    );
                }
                outcome
            };
            let outcome = tracing::Instrument::instrument(judged, span).await;
            (request.uid, request.operation, outcome)
        }
    };
    let label = match (outcome.allowed, outcome.warnings.is_empty()) {
        (false, _) => "denied",
        (true, false) => "warned",
        (true, true) => "allowed",
    };
    metrics.record(which.name(), &operation, label, outcome.reason, started.elapsed());
    Reply {
        status: 200,
        body: review::respond_bytes(&uid, &outcome),
    }
}

#[derive(Clone)]
struct AppState {
    webhooks: Arc<Webhooks>,
    metrics: Arc<Metrics>,
}

async fn handle(state: AppState, which: Which, body: Bytes) -> Response {
    let reply = review_body(&state.webhooks, &state.metrics, which, &body).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if reply.status == 200 {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    (status, [(header::CONTENT_TYPE, content_type)], reply.body).into_response()
}

/// The admission routes.
pub fn router(webhooks: Arc<Webhooks>, metrics: Arc<Metrics>) -> Router {
    let state = AppState { webhooks, metrics };
    let mut app = Router::new();
    for which in Which::ALL {
        app = app.route(
            which.path(),
            post(move |State(s): State<AppState>, body: Bytes| handle(s, which, body)),
        );
    }
    app.route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}
