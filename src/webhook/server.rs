//! The admission HTTP routes: one path per webhook, a body limit, metrics.

use super::handlers::Webhooks;
use super::review::{self, Outcome};
use crate::controller::metrics::{AdmissionLabels, Metrics, WebhookLabel};
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
}

impl Which {
    pub const ALL: [Which; 3] = [Which::Decisions, Which::Audit, Which::Purchases];

    pub fn path(self) -> &'static str {
        match self {
            Which::Decisions => "/validate/decisions",
            Which::Audit => "/mutate/audit",
            Which::Purchases => "/validate/purchases",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Which::Decisions => "decisions",
            Which::Audit => "audit",
            Which::Purchases => "purchases",
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

/// Judges one request body with one webhook and records metrics. Never panics.
pub fn review_body(webhooks: &Webhooks, metrics: &Metrics, which: Which, body: &[u8]) -> Reply {
    let started = Instant::now();
    let record = |operation: &str, outcome: &'static str, reason: &'static str| {
        metrics
            .admissions
            .get_or_create(&AdmissionLabels {
                webhook: which.name(),
                operation: operation.to_string(),
                outcome,
                reason,
            })
            .inc();
        metrics
            .admission_duration
            .get_or_create(&WebhookLabel { webhook: which.name() })
            .observe(started.elapsed().as_secs_f64());
    };
    let (uid, operation, outcome) = match review::parse(body) {
        Err(review::Unusable(why)) => {
            record("", "error", "UnusableRequest");
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
            let outcome = match which {
                Which::Decisions => webhooks.decisions(&request),
                Which::Audit => webhooks.audit(&request),
                Which::Purchases => webhooks.purchases(&request),
            };
            (request.uid, request.operation, outcome)
        }
    };
    let label = match (outcome.allowed, outcome.warnings.is_empty()) {
        (false, _) => "denied",
        (true, false) => "warned",
        (true, true) => "allowed",
    };
    record(&operation, label, outcome.reason);
    Reply {
        status: 200,
        body: review::respond(&uid, &outcome).to_string().into_bytes(),
    }
}

#[derive(Clone)]
struct AppState {
    webhooks: Arc<Webhooks>,
    metrics: Arc<Metrics>,
}

async fn handle(state: AppState, which: Which, body: Bytes) -> Response {
    let reply = review_body(&state.webhooks, &state.metrics, which, &body);
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
