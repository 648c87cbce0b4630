//! Keeps the generated ValidatingAdmissionPolicies current (`--enforce-with policy|both`):
//! the leader applies them (server-side, purchase-guard's field manager) at start and every
//! [`CHECK_EVERY`], and deletes the ones it generated before that the settings no longer
//! call for (a kind no longer guarded, or `--enforce-with webhook`). The objects carry the
//! label `purchaseguard.io/policy-set: purchases`; the chart's own policies do not.

use crate::controller::MANAGER;
use crate::webhook::{self, EnforceWith, Settings};
use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;

/// How often the leader checks the policies.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// The label of the generated policies and bindings.
pub const POLICY_SET_LABEL: &str = "purchaseguard.io/policy-set";

/// The generated objects, labelled.
pub fn desired(prefix: &str, settings: &Settings) -> Vec<Value> {
    if settings.enforce_with == EnforceWith::Webhook {
        return Vec::new();
    }
    let mut objects = webhook::policies::purchases(prefix, settings);
    for o in &mut objects {
        o["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": MANAGER, POLICY_SET_LABEL: "purchases"});
    }
    objects
}

/// One pass: applies what differs, deletes what is not wanted. Returns how many objects it
/// wrote or deleted.
pub async fn reconcile(client: &Client, prefix: &str, settings: &Settings) -> Result<usize, kube::Error> {
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let selector = ListParams::default().labels(&format!("{POLICY_SET_LABEL}=purchases"));
    let wanted = desired(prefix, settings);
    let of_kind = |kind: &str| -> Vec<&Value> { wanted.iter().filter(|o| o["kind"] == kind).collect() };
    let (wanted_policies, wanted_bindings) = (
        of_kind("ValidatingAdmissionPolicy"),
        of_kind("ValidatingAdmissionPolicyBinding"),
    );
    let existing_policies = listed(&policies, &selector).await?;
    let existing_bindings = listed(&bindings, &selector).await?;
    // Policies before their bindings are applied; bindings before their policies deleted.
    let mut changes = apply(&policies, &existing_policies, &wanted_policies).await?;
    changes += apply(&bindings, &existing_bindings, &wanted_bindings).await?;
    changes += remove_unwanted(&bindings, &existing_bindings, &wanted_bindings).await?;
    changes += remove_unwanted(&policies, &existing_policies, &wanted_policies).await?;
    Ok(changes)
}

/// The objects of `api` that `selector` selects, as JSON.
async fn listed<K>(api: &Api<K>, selector: &ListParams) -> Result<Vec<Value>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    Ok(api
        .list(selector)
        .await?
        .items
        .iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect())
}

/// Applies each of `wanted` whose spec differs from the existing one's (the API server fills
/// defaults in: only what purchase-guard sets is compared).
async fn apply<K>(api: &Api<K>, existing: &[Value], wanted: &[&Value]) -> Result<usize, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::apply(MANAGER).force();
    let mut changes = 0;
    for object in wanted {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let current = existing.iter().find(|e| e["metadata"]["name"] == name);
        if current.is_some_and(|c| contains(&c["spec"], &object["spec"])) {
            continue;
        }
        api.patch(name, &params, &Patch::Apply(object)).await?;
        changes += 1;
    }
    Ok(changes)
}

/// Deletes the existing objects none of `wanted` names.
async fn remove_unwanted<K>(api: &Api<K>, existing: &[Value], wanted: &[&Value]) -> Result<usize, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut changes = 0;
    for name in existing.iter().filter_map(|e| e["metadata"]["name"].as_str()) {
        if !wanted.iter().any(|o| o["metadata"]["name"] == name) {
            api.delete(name, &DeleteParams::default()).await?;
            changes += 1;
        }
    }
    Ok(changes)
}

/// Whether `have` holds every field of `want` with the same value (objects compared field by
/// field, anything else as a whole).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b)),
        _ => have == want,
    }
}

/// While this replica leads, keeps the policies current, for ever.
pub async fn keep(client: Client, prefix: String, settings: Settings, mut leading: tokio::sync::watch::Receiver<bool>) {
    loop {
        if !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                return std::future::pending().await;
            }
            continue;
        }
        match reconcile(&client, &prefix, &settings).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changes = n, "ValidatingAdmissionPolicies brought up to date"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep the ValidatingAdmissionPolicies current; retried in {CHECK_EVERY:?}")
            }
        }
        // Without an election (or once it ended) leadership never changes again: `changed`
        // then fails at once, and only the timer may end the wait.
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            Ok(()) = leading.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose API server answers every request with an empty list, counting them.
    fn counting_client() -> (Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let service = tower::service_fn(move |_: http::Request<kube::client::Body>| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = br#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#;
            std::future::ready(Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.to_vec()))
                    .expect("a response"),
            ))
        });
        (Client::new(service, "default"), count)
    }

    /// Without leader election the leadership channel's sender is gone from the start: the
    /// keeper checks once and then waits for its timer (it used to check again at once, for
    /// ever: two LISTs in a tight loop).
    #[tokio::test]
    async fn without_an_election_the_keeper_checks_once_per_period() {
        let (client, requests) = counting_client();
        let leading = tokio::sync::watch::channel(true).1;
        let keeper = tokio::spawn(keep(client, "pg".into(), Settings::default(), leading));
        let made = || requests.load(std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while made() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "the first pass did not list");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The first pass is done; a window in which the broken wait made thousands of passes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        keeper.abort();
        assert_eq!(
            made(),
            2,
            "one pass lists the policies and the bindings, then waits {CHECK_EVERY:?}"
        );
    }

    #[test]
    fn webhook_mode_wants_no_policies_and_the_others_want_one_per_kind_and_the_label_one() {
        let mut settings = Settings::default();
        assert!(desired("pg", &settings).is_empty());
        for mode in [EnforceWith::Policy, EnforceWith::Both] {
            settings.enforce_with = mode;
            let objects = desired("pg", &settings);
            assert_eq!(objects.len(), 2 * settings.guarded.len() + 2);
            assert!(
                objects
                    .iter()
                    .all(|o| o["metadata"]["labels"][POLICY_SET_LABEL] == "purchases")
            );
        }
    }

    #[test]
    fn defaults_the_api_server_adds_do_not_count_as_a_difference() {
        let want = json!({"a": {"b": 1}, "l": [{"x": 1}]});
        assert!(contains(
            &json!({"a": {"b": 1, "c": 2}, "l": [{"x": 1, "y": 0}]}),
            &want
        ));
        assert!(!contains(&json!({"a": {"b": 2}, "l": [{"x": 1}]}), &want));
        assert!(!contains(&json!({"a": {"b": 1}, "l": []}), &want));
    }
}
