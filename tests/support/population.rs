//! A population for freeze tests and benchmarks: a distributor `dist`, its reseller `r1`, and
//! customers of the reseller, each with its own namespace of pay-per-use Deployments bought
//! before any decision; and the distributor's decisions about all of them. Shared with
//! `benches/freeze.rs` (included by path).

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use purchase_guard::api::{CustomerAccount, CustomerAccountStatus, Partner, PurchaseRestriction};
use serde_json::json;

/// Requests in flight when creating or applying many objects (the controller's reconcile
/// concurrency).
pub const IN_FLIGHT: usize = 16;

/// Creates every item through `api_of(item)`, [`IN_FLIGHT`] at a time.
pub async fn create_all<K>(api_of: impl Fn(&K) -> Api<K>, items: Vec<K>)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    futures::stream::iter(items)
        .for_each_concurrent(IN_FLIGHT, |item| {
            let api = api_of(&item);
            async move {
                api.create(&PostParams::default(), &item).await.expect("created");
            }
        })
        .await;
}

/// A client of a fresh sandbox with purchase-guard's CRDs installed.
pub async fn client_with_crds(sandbox: &purchase_guard_sandbox::Sandbox) -> Client {
    let client = Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in purchase_guard::crdgen::all() {
        crds.create(&PostParams::default(), &crd).await.expect("CRD");
    }
    client
}

/// Creates the partners and `customers` customers (`c000`...), each with a namespace of
/// `per_customer` pay-per-use Deployments `app-I` of `replicas(I)` replicas. Returns the
/// customers' names.
pub async fn populate(
    client: &Client,
    customers: usize,
    per_customer: usize,
    replicas: fn(usize) -> i32,
) -> Vec<String> {
    let names: Vec<String> = (0..customers).map(|i| format!("c{i:03}")).collect();
    let namespaces: Vec<Namespace> = ["dist", "r1"]
        .iter()
        .map(|n| n.to_string())
        .chain(names.iter().cloned())
        .map(|n| serde_json::from_value(json!({"metadata": {"name": n}})).expect("ns"))
        .collect();
    create_all(|_| Api::all(client.clone()), namespaces).await;
    let partners: Vec<Partner> = [
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "dist"}, "spec": {"role": "Distributor", "namespace": "dist"}}),
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner", "metadata": {"name": "r1"}, "spec": {"role": "Reseller", "distributor": "dist", "namespace": "r1"}}),
    ]
    .into_iter()
    .map(|p| serde_json::from_value(p).expect("partner"))
    .collect();
    create_all(|_| Api::all(client.clone()), partners).await;
    let accounts: Vec<CustomerAccount> = names
        .iter()
        .map(|n| {
            serde_json::from_value(
                json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount", "metadata": {"name": n},
                "spec": {"associationModel": "Reseller", "reseller": "r1", "namespaces": [n]}}),
            )
            .expect("customer")
        })
        .collect();
    create_all(|_| Api::all(client.clone()), accounts).await;
    create_deployments(client, &names, per_customer, replicas).await;
    names
}

/// Creates `per_customer` pay-per-use Deployments `app-I` of `replicas(I)` replicas in each
/// customer's namespace.
pub async fn create_deployments(client: &Client, names: &[String], per_customer: usize, replicas: fn(usize) -> i32) {
    let mut deployments = Vec::new();
    for n in names {
        for i in 0..per_customer {
            deployments.push(
                serde_json::from_value::<Deployment>(json!({
                    "metadata": {"name": format!("app-{i}"), "namespace": n,
                                 "labels": {"purchaseguard.io/billing-mode": "pay-per-use"}},
                    "spec": {"replicas": replicas(i), "selector": {"matchLabels": {"app": "a"}},
                             "template": {"metadata": {"labels": {"app": "a"}},
                                          "spec": {"containers": [{"name": "a", "image": "nginx"}]}}}
                }))
                .expect("deployment"),
            );
        }
    }
    create_all(
        |d: &Deployment| Api::namespaced(client.clone(), d.metadata.namespace.as_deref().expect("ns")),
        deployments,
    )
    .await;
}

/// The distributor's decisions about every customer, server-side applied (a decision per
/// customer in `dist`; a change of state needs a new reason).
pub async fn decide_all(client: &Client, names: &[String], state: &str, reason: &str) {
    let api: Api<PurchaseRestriction> = Api::namespaced(client.clone(), "dist");
    let params = PatchParams::apply("purchase-guard-population").force();
    futures::stream::iter(names)
        .for_each_concurrent(IN_FLIGHT, |n| {
            let api = api.clone();
            let params = params.clone();
            let decision = json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
                "metadata": {"name": n, "namespace": "dist"},
                "spec": {"customer": n, "state": state, "reason": reason, "agreementAccepted": true}});
            async move {
                api.patch(n, &params, &Patch::Apply(&decision)).await.expect("applied");
            }
        })
        .await;
}

/// How many customers have a status that satisfies `holds`.
pub async fn customers_where(client: &Client, holds: impl Fn(&CustomerAccountStatus) -> bool) -> usize {
    let api: Api<CustomerAccount> = Api::all(client.clone());
    let Ok(list) = api.list(&Default::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|c| c.status.as_ref().is_some_and(&holds))
        .count()
}

/// How many customers' `ResourcesFrozen` condition has `reason`.
pub async fn customers_with(client: &Client, reason: &str) -> usize {
    customers_where(client, |s| {
        s.conditions
            .iter()
            .any(|x| x.type_ == "ResourcesFrozen" && x.reason == reason)
    })
    .await
}
