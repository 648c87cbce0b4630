//! One call to a webhook: its URL and trust, the HTTPS client, the AdmissionReview sent and
//! the response read back.

use super::*;

/// Why a call failed (failurePolicy decides what follows).
pub(super) struct CallFailure(pub(super) String);

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl Admission {
    /// Where a webhook is reached.
    pub(super) fn target(&self, hook: &Value, timeout: u64) -> Result<Target, String> {
        let config = hook.get("clientConfig").cloned().unwrap_or(json!({}));
        let query = format!("?timeout={timeout}s");
        if let Some(url) = config.get("url").and_then(Value::as_str) {
            if !url.starts_with("https://") {
                return Err(format!("webhook URL {url:?} must use the https scheme"));
            }
            let full = format!("{url}{}", if url.contains('?') { String::new() } else { query });
            return Ok(Target {
                nominal: full.clone(),
                actual: full,
                resolve: None,
            });
        }
        let service = config
            .get("service")
            .ok_or("the webhook has neither clientConfig.url nor clientConfig.service")?;
        let ns = service.get("namespace").and_then(Value::as_str).unwrap_or_default();
        let svc = service.get("name").and_then(Value::as_str).unwrap_or_default();
        let port = service.get("port").and_then(Value::as_u64).unwrap_or(443);
        let path = service.get("path").and_then(Value::as_str).unwrap_or("/");
        let host = format!("{svc}.{ns}.svc");
        let nominal = format!("https://{host}:{port}{path}{query}");
        let endpoint = self.service_endpoints.get(&format!("{ns}/{svc}")).ok_or_else(|| {
            format!(
                "failed to call webhook: Post {nominal:?}: service {ns}/{svc} is not mapped to an address (start the sandbox with --service-endpoint {ns}/{svc}=HOST:PORT)"
            )
        })?;
        let addr = endpoint
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                format!("failed to call webhook: Post {nominal:?}: cannot resolve the service endpoint {endpoint:?}")
            })?;
        let actual = format!("https://{host}:{}{path}{query}", addr.port());
        Ok(Target {
            nominal,
            actual,
            resolve: Some((host, addr)),
        })
    }

    pub(super) fn client(&self, ca: &[u8], resolve: Resolve) -> Result<reqwest::Client, String> {
        let key = (ca.to_vec(), resolve.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true)
            .no_proxy();
        if !ca.is_empty() {
            builder = builder.use_preconfigured_tls(super::tls::client_config(ca)?);
        }
        if let Some((host, addr)) = &resolve {
            builder = builder.resolve(host, *addr);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
        if clients.len() > 64 {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Sends an AdmissionReview and returns its `response` after checking its envelope.
    pub(super) fn call(
        &self,
        hook: &Value,
        name: &str,
        req: &Request,
        object: Option<&Value>,
    ) -> Result<Value, CallFailure> {
        let versions = strings(hook.get("admissionReviewVersions"));
        if !versions.contains(&"v1") {
            return Err(CallFailure(format!(
                "webhook {name:?} does not accept known AdmissionReview versions: it accepts {versions:?}, the sandbox sends v1"
            )));
        }
        let timeout = hook
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30);
        let Target {
            nominal,
            actual,
            resolve,
        } = self.target(hook, timeout).map_err(CallFailure)?;
        let ca = hook
            .pointer("/clientConfig/caBundle")
            .and_then(Value::as_str)
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
            .transpose()
            .map_err(|e| CallFailure(format!("clientConfig.caBundle is not base64: {e}")))?
            .unwrap_or_default();
        let client = self.client(&ca, resolve).map_err(CallFailure)?;
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review(req, &uid, object);
        let send = async move {
            let response = client
                .post(&actual)
                .timeout(Duration::from_secs(timeout))
                .json(&review)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = block_on(send).map_err(CallFailure)?.map_err(|e| {
            let why = if e.is_timeout() {
                "context deadline exceeded".to_string()
            } else {
                error_chain(&e)
            };
            CallFailure(format!("failed to call webhook: Post {nominal:?}: {why}"))
        })?;
        if !status.is_success() {
            return Err(CallFailure(format!(
                "failed to call webhook: the server responded with HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(512)])
            )));
        }
        let reply: Value = serde_json::from_slice(&body)
            .map_err(|e| CallFailure(format!("received invalid webhook response: {e}")))?;
        if reply.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
            || reply.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
        {
            return Err(CallFailure(format!(
                "received invalid webhook response: expected admission.k8s.io/v1 AdmissionReview, got apiVersion {} kind {}",
                reply.get("apiVersion").unwrap_or(&Value::Null),
                reply.get("kind").unwrap_or(&Value::Null)
            )));
        }
        let response = reply
            .get("response")
            .filter(|r| r.is_object())
            .ok_or_else(|| CallFailure("received invalid webhook response: response is missing".into()))?;
        let got = response.get("uid").and_then(Value::as_str).unwrap_or_default();
        if got != uid {
            return Err(CallFailure(format!(
                "received invalid webhook response: expected response.uid={uid:?}, got {got:?}"
            )));
        }
        Ok(response.clone())
    }
}

/// Waits for a webhook call from a request thread.
pub(super) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    let handle = tokio::runtime::Handle::try_current().map_err(|e| format!("no runtime for the webhook call: {e}"))?;
    if MAY_BLOCK.with(Cell::get) {
        return Ok(handle.block_on(f));
    }
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        return Ok(tokio::task::block_in_place(|| handle.block_on(f)));
    }
    Err("a webhook configuration appeared while the request ran; retry the request".into())
}

pub(super) fn review(req: &Request, uid: &str, object: Option<&Value>) -> Value {
    let rt = req.rt;
    let kind = match req.object_kind {
        Some((group, version, kind)) => json!({"group": group, "version": version, "kind": kind}),
        None => json!({"group": rt.group, "version": rt.version, "kind": rt.kind}),
    };
    let resource = json!({"group": rt.group, "version": rt.version, "resource": rt.plural});
    let mut user = json!({"username": req.user.name, "groups": req.user.groups});
    if !req.user.uid.is_empty() {
        user["uid"] = json!(req.user.uid);
    }
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": req.name,
        "operation": req.operation,
        "userInfo": user,
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": req.old.cloned().unwrap_or(Value::Null),
        "dryRun": req.dry_run,
        "options": req.options,
    });
    if let Some(sub) = req.subresource {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    if let Some(ns) = req.namespace.filter(|_| rt.namespaced) {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}
