//! The AdmissionReview envelope: parsing a request body and writing a response, with a clear
//! answer for every malformed input and never a panic.

use crate::api::GROUP;
use serde_json::Value;

/// The AdmissionReview version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// What a webhook decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub allowed: bool,
    /// HTTP-like code reported in `status.code` of a denial.
    pub code: u16,
    /// A CamelCase reason: the metric label, and `status.reason` of a denial.
    pub reason: &'static str,
    /// The rule (R1..R9) a denial enforces; empty for denials of malformed requests.
    pub rule: &'static str,
    pub message: String,
    pub warnings: Vec<String>,
    /// A JSON patch (mutating webhooks).
    pub patch: Option<Value>,
}

impl Outcome {
    pub fn allow(reason: &'static str) -> Self {
        Outcome {
            allowed: true,
            code: 200,
            reason,
            rule: "",
            message: String::new(),
            warnings: vec![],
            patch: None,
        }
    }

    pub fn deny(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Outcome {
            allowed: false,
            code,
            reason,
            rule: "",
            message: message.into(),
            warnings: vec![],
            patch: None,
        }
    }

    /// Names the rule a denial enforces (logged with every denial).
    pub fn rule(mut self, rule: &'static str) -> Self {
        self.rule = rule;
        self
    }
}

/// A parsed AdmissionReview request: the fields the webhooks read.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub uid: String,
    /// The group and version of the object's kind (`request.kind`).
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The resource addressed (`request.resource`): for a subresource such as `scale`, the
    /// parent's (apps/v1 deployments), while the kind is the subresource's (autoscaling/v1 Scale).
    pub resource_group: String,
    pub resource_version: String,
    pub resource: String,
    pub sub_resource: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub operation: String,
    pub username: String,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: bool,
}

/// Why a body cannot be answered with an AdmissionReview (the HTTP request is unusable).
#[derive(Clone, Debug, PartialEq)]
pub struct Unusable(pub String);

/// A body that is an AdmissionReview with a uid, but not one the webhook can judge: answered
/// with a denial that says why.
#[derive(Clone, Debug, PartialEq)]
pub struct Malformed {
    pub uid: String,
    pub message: String,
}

/// The string at `path` (object keys, outermost first). Key by key rather than with a JSON
/// pointer, which allocates a string per segment.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
}

/// Moves a field out of the request (no copy of the objects); null counts as absent.
fn take(request: &mut Value, key: &str) -> Option<Value> {
    request.get_mut(key).map(Value::take).filter(|v| !v.is_null())
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Result<Request, Malformed>, Unusable> {
    let mut review: Value =
        serde_json::from_slice(body).map_err(|e| Unusable(format!("the body is not a JSON AdmissionReview: {e}")))?;
    if !review.is_object() {
        return Err(Unusable("the body must be a JSON object (an AdmissionReview)".into()));
    }
    let uid = match str_at(&review, &["request", "uid"]) {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => {
            return Err(Unusable(
                "request.uid is missing: the body is not an AdmissionReview request".into(),
            ));
        }
    };
    let malformed = |message: String| {
        Ok(Err(Malformed {
            uid: uid.clone(),
            message,
        }))
    };
    let api_version = str_at(&review, &["apiVersion"]).unwrap_or_default();
    let kind = str_at(&review, &["kind"]).unwrap_or_default();
    if api_version != API_VERSION || kind != "AdmissionReview" {
        return malformed(format!(
            "expected apiVersion {API_VERSION} and kind AdmissionReview, got apiVersion {api_version:?} and kind {kind:?}"
        ));
    }
    let mut request = review.get_mut("request").map(Value::take).unwrap_or(Value::Null);
    let object = take(&mut request, "object");
    let old_object = take(&mut request, "oldObject");
    let request = &request;
    let field = |path: &[&str]| -> Result<String, String> {
        str_at(request, path)
            .map(str::to_string)
            .ok_or_else(|| format!("request.{} is missing or not a string", path.join(".")))
    };
    let parsed = (|| -> Result<Request, String> {
        let operation = field(&["operation"])?;
        if !matches!(operation.as_str(), "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
            return Err(format!(
                "request.operation {operation:?} is not one of CREATE, UPDATE, DELETE, CONNECT"
            ));
        }
        match operation.as_str() {
            "CREATE" | "UPDATE" if object.as_ref().is_none_or(|o| !o.is_object()) => {
                return Err(format!("request.object is missing for {operation}"));
            }
            "UPDATE" | "DELETE" if old_object.as_ref().is_some_and(|o| !o.is_object()) => {
                return Err(format!("request.oldObject is not an object for {operation}"));
            }
            _ => {}
        }
        Ok(Request {
            uid: uid.clone(),
            group: str_at(request, &["kind", "group"]).unwrap_or_default().to_string(),
            version: field(&["kind", "version"])?,
            kind: field(&["kind", "kind"])?,
            resource_group: str_at(request, &["resource", "group"])
                .or_else(|| str_at(request, &["kind", "group"]))
                .unwrap_or_default()
                .to_string(),
            resource_version: str_at(request, &["resource", "version"])
                .or_else(|| str_at(request, &["kind", "version"]))
                .unwrap_or_default()
                .to_string(),
            resource: field(&["resource", "resource"])?,
            sub_resource: str_at(request, &["subResource"])
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            name: str_at(request, &["name"]).unwrap_or_default().to_string(),
            namespace: str_at(request, &["namespace"])
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            operation,
            username: str_at(request, &["userInfo", "username"])
                .unwrap_or_default()
                .to_string(),
            object,
            old_object,
            dry_run: request.get("dryRun").and_then(Value::as_bool).unwrap_or(false),
        })
    })();
    match parsed {
        Ok(r) => Ok(Ok(r)),
        Err(message) => malformed(message),
    }
}

/// The Kubernetes StatusReason of an HTTP code.
fn status_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// The response AdmissionReview, as written.
#[derive(serde::Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(serde::Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

#[derive(serde::Serialize)]
struct StatusOut<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
    details: DetailsOut<'a>,
}

#[derive(serde::Serialize)]
struct DetailsOut<'a> {
    causes: [CauseOut<'a>; 1],
}

#[derive(serde::Serialize)]
struct CauseOut<'a> {
    reason: &'a str,
}

fn review_out<'a>(uid: &'a str, outcome: &'a Outcome) -> ReviewOut<'a> {
    use base64::Engine;
    ReviewOut {
        api_version: API_VERSION,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed: outcome.allowed,
            // status.reason is a Kubernetes StatusReason (kubectl prints it); the webhook's own
            // reason goes into the details.
            status: (!outcome.allowed).then(|| StatusOut {
                code: outcome.code,
                reason: status_reason(outcome.code),
                message: &outcome.message,
                details: DetailsOut {
                    causes: [CauseOut { reason: outcome.reason }],
                },
            }),
            warnings: &outcome.warnings,
            patch_type: outcome.patch.as_ref().map(|_| "JSONPatch"),
            patch: outcome
                .patch
                .as_ref()
                .map(|p| base64::engine::general_purpose::STANDARD.encode(p.to_string())),
        },
    }
}

/// The response AdmissionReview for `uid`.
pub fn respond(uid: &str, outcome: &Outcome) -> Value {
    serde_json::to_value(review_out(uid, outcome)).unwrap_or(Value::Null)
}

/// The response AdmissionReview for `uid`, encoded (what the server sends).
pub fn respond_bytes(uid: &str, outcome: &Outcome) -> Vec<u8> {
    // Serializing borrowed strings and numbers into a Vec cannot fail.
    serde_json::to_vec(&review_out(uid, outcome)).unwrap_or_default()
}

/// The denial of a kind a webhook is not meant for (a webhook configuration's rules are wrong).
pub(crate) fn unexpected_kind(req: &Request, handles: &str) -> Outcome {
    Outcome::deny(
        400,
        "UnexpectedKind",
        format!(
            "this webhook {handles} of {GROUP}, not {}/{} {}; check the webhook configuration's rules",
            req.group, req.version, req.kind
        ),
    )
}

/// Reads the object of a request as a purchase-guard kind; a denial naming the field if not.
pub(crate) fn parse_object<K: serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>>(
    object: Option<&Value>,
    namespace: &str,
) -> Result<K, Outcome> {
    let Some(object) = object else {
        return Err(Outcome::deny(400, "NoObject", "request.object is missing"));
    };
    let mut parsed: K = serde_json::from_value(object.clone()).map_err(|e| {
        Outcome::deny(
            422,
            "Invalid",
            format!("the {} in request.object does not decode: {e}", K::kind(&())),
        )
    })?;
    if parsed.meta().namespace.is_none() {
        parsed.meta_mut().namespace = Some(namespace.to_string());
    }
    Ok(parsed)
}
