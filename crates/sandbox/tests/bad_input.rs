//! Bad input gets the Status error kube-apiserver sends, never a panic, a hang or a
//! half-written object.

use purchase_guard_sandbox::{Config, MAX_BODY, Sandbox};
use serde_json::{Value, json};

async fn call(sandbox: &Sandbox, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let client = kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .expect("request");
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("a response");
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn cm(name: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}),
    )
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_kube_apiserver_status_errors() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let cms = "/api/v1/namespaces/default/configmaps";
    let json_ct = "application/json";
    // (method, path, content type, body, expected code, reason, part of the message)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            cms,
            json_ct,
            b"{not json".to_vec(),
            400,
            "BadRequest",
            "json parse error",
        ),
        (
            "POST",
            cms,
            "application/yaml",
            b"a: [unclosed".to_vec(),
            400,
            "BadRequest",
            "error decoding YAML",
        ),
        (
            "POST",
            cms,
            json_ct,
            b"[1, 2]".to_vec(),
            400,
            "BadRequest",
            "must be a JSON or YAML object",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets",
            json_ct,
            vec![],
            404,
            "NotFound",
            "could not find the requested resource",
        ),
        (
            "GET",
            "/apis/apps/v9/deployments",
            json_ct,
            vec![],
            404,
            "NotFound",
            "could not find the requested resource",
        ),
        (
            "PUT",
            cms,
            json_ct,
            cm("x"),
            405,
            "MethodNotAllowed",
            "does not allow this method",
        ),
        (
            "POST",
            cms,
            json_ct,
            cm("Not_A_Name"),
            422,
            "Invalid",
            "a lowercase RFC 1123 subdomain",
        ),
        (
            "POST",
            cms,
            json_ct,
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
                .expect("json"),
            400,
            "BadRequest",
            "the kind in the data (Secret) does not match the expected kind (ConfigMap)",
        ),
        (
            "POST",
            cms,
            json_ct,
            serde_json::to_vec(&json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "s"}}))
                .expect("json"),
            400,
            "BadRequest",
            "does not match the expected API version (v1)",
        ),
        (
            "POST",
            "/api/v1/namespaces/missing/configmaps",
            json_ct,
            cm("x"),
            404,
            "NotFound",
            "namespaces \"missing\" not found",
        ),
        (
            "POST",
            cms,
            json_ct,
            vec![b' '; MAX_BODY + 1],
            413,
            "RequestEntityTooLarge",
            "Request entity too large",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/none",
            "application/merge-patch+json",
            b"{}".to_vec(),
            404,
            "NotFound",
            "configmaps \"none\" not found",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/none",
            "text/plain",
            b"{}".to_vec(),
            415,
            "UnsupportedMediaType",
            "unknown format",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b",
            json_ct,
            vec![],
            400,
            "BadRequest",
            "unable to parse requirement",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?fieldSelector=data.a%3D1",
            json_ct,
            vec![],
            400,
            "BadRequest",
            "field label not supported: data.a",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?continue=%%%",
            json_ct,
            vec![],
            400,
            "BadRequest",
            "continue key is not valid",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps?dryRun=Maybe",
            json_ct,
            cm("x"),
            400,
            "BadRequest",
            "unsupported dryRun value",
        ),
    ];
    for (method, path, ct, body, code, reason, message) in cases {
        let (status, status_object) = call(&sandbox, method, path, ct, body).await;
        assert_eq!(status, code, "{method} {path}: {status_object}");
        assert_eq!(status_object["kind"], "Status", "{method} {path}");
        assert_eq!(status_object["reason"], reason, "{method} {path}: {status_object}");
        assert!(
            status_object["message"].as_str().is_some_and(|m| m.contains(message)),
            "{method} {path}: {status_object}"
        );
    }

    // Conflicts: a duplicate create, and an update with a stale resourceVersion.
    assert_eq!(call(&sandbox, "POST", cms, json_ct, cm("dup")).await.0, 201);
    let (code, dup) = call(&sandbox, "POST", cms, json_ct, cm("dup")).await;
    assert_eq!((code, dup["reason"].as_str()), (409, Some("AlreadyExists")));
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup", "resourceVersion": "1"}, "data": {"a": "2"}});
    let (code, conflict) = call(
        &sandbox,
        "PUT",
        &format!("{cms}/dup"),
        json_ct,
        serde_json::to_vec(&stale).expect("json"),
    )
    .await;
    assert_eq!((code, conflict["reason"].as_str()), (409, Some("Conflict")));

    // Nothing half-written: the rejected objects do not exist, dry runs store nothing (besides
    // the root CA ConfigMap every namespace has).
    let (_, list) = call(&sandbox, "GET", cms, json_ct, vec![]).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["dup", "kube-root-ca.crt"]);
    assert_eq!(
        call(&sandbox, "POST", &format!("{cms}?dryRun=All"), json_ct, cm("dry"))
            .await
            .0,
        201
    );
    assert_eq!(
        call(&sandbox, "GET", &format!("{cms}/dry"), json_ct, vec![]).await.0,
        404
    );
    sandbox.shutdown().await;
}
