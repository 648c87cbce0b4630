//! Object semantics through kube-rs: owner references and garbage collection, pagination,
//! generateName, CRD deletion, watch timeouts and bookmarks.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy, WatchEvent, WatchParams,
};
use purchase_guard_sandbox::{Config, Sandbox};
use std::time::{Duration, Instant};

fn client(sandbox: &Sandbox) -> kube::Client {
    kube::Client::try_from(kube::Config::new(sandbox.url().parse().expect("url"))).expect("client")
}

fn config_map(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    if let Some(o) = owner {
        cm.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: o.metadata.name.clone().unwrap_or_default(),
            uid: o.metadata.uid.clone().unwrap_or_default(),
            ..OwnerReference::default()
        }]);
    }
    cm
}

async fn eventually_gone(api: &Api<ConfigMap>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.get_opt(name).await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "{name} was not garbage collected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_background_and_foreground() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let api: Api<ConfigMap> = Api::default_namespaced(client(&sandbox));
    let pp = PostParams::default();
    for policy in [PropagationPolicy::Background, PropagationPolicy::Foreground] {
        let owner = api.create(&pp, &config_map("owner", None)).await.expect("owner");
        let child = api
            .create(&pp, &config_map("child", Some(&owner)))
            .await
            .expect("child");
        api.create(&pp, &config_map("grandchild", Some(&child)))
            .await
            .expect("grandchild");
        let dp = DeleteParams {
            propagation_policy: Some(policy.clone()),
            ..DeleteParams::default()
        };
        api.delete("owner", &dp).await.expect("delete");
        for name in ["owner", "child", "grandchild"] {
            eventually_gone(&api, name).await;
        }
    }
    // Orphaned dependents of a foreground deletion that hold a finalizer keep the owner until
    // they go.
    let owner = api.create(&pp, &config_map("owner", None)).await.expect("owner");
    let mut held = config_map("held", Some(&owner));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&pp, &held).await.expect("held");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    api.delete("owner", &dp).await.expect("delete");
    let owner_now = api
        .get("owner")
        .await
        .expect("owner kept while its dependent is finalizing");
    assert!(owner_now.metadata.deletion_timestamp.is_some());
    assert!(
        api.get("held")
            .await
            .expect("held")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    api.patch(
        "held",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("release");
    eventually_gone(&api, "held").await;
    eventually_gone(&api, "owner").await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_generate_name_and_crd_deletion() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = client(&sandbox);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut generated = ConfigMap::default();
    generated.metadata.generate_name = Some("gen-".into());
    generated.data = Some([("key".to_string(), "value".to_string())].into());
    for _ in 0..7 {
        let cm = api.create(&PostParams::default(), &generated).await.expect("create");
        assert!(
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("gen-") && n.len() == 9)
        );
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = api.list(&lp).await.expect("page");
        assert!(page.items.len() <= 3);
        names.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    // The seven created, and the root CA ConfigMap every namespace has.
    assert_eq!(names.len(), 8);
    assert!(names.iter().any(|n| n == "kube-root-ca.crt"));
    // A metadata-only list: PartialObjectMetadata items without data, resourceVersions kept.
    let meta = api.list_metadata(&ListParams::default()).await.expect("metadata list");
    assert_eq!(meta.items.len(), 8);
    assert!(meta.metadata.resource_version.is_some());
    for item in &meta.items {
        let types = item.types.as_ref().expect("each item has its kind");
        assert_eq!(
            (types.kind.as_str(), types.api_version.as_str()),
            ("PartialObjectMetadata", "meta.k8s.io/v1")
        );
        assert!(item.metadata.resource_version.is_some());
    }
    let raw = client
        .request_text(
            http::Request::get("/api/v1/namespaces/default/configmaps?limit=1")
                .header(
                    "Accept",
                    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                )
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("raw metadata list");
    assert!(
        raw.contains("\"kind\":\"PartialObjectMetadataList\"") && !raw.contains("\"data\""),
        "{raw}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "every object exactly once");

    // A CRD serves its kind; deleting it stops serving and deletes its objects.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/billable-crd/virtualmachines.compute.example.com.yaml"
        ))
        .expect("readable"),
    )
    .expect("a CRD");
    let created = crds.create(&PostParams::default(), &crd).await.expect("CRD created");
    // The answer carries the CRD's status, as kube-apiserver's does.
    let status = created.status.expect("a status");
    assert_eq!(status.stored_versions, Some(vec!["v1".to_string()]));
    assert!(status.accepted_names.is_some_and(|n| !n.plural.is_empty()));
    let vm = kube::api::DynamicObject::new(
        "vm1",
        &kube::api::ApiResource {
            group: "compute.example.com".into(),
            version: "v1".into(),
            api_version: "compute.example.com/v1".into(),
            kind: "VirtualMachine".into(),
            plural: "virtualmachines".into(),
        },
    )
    .within("default")
    .data(serde_json::json!({"spec": {"flavor": "c6.large", "cpus": 2, "memoryGiB": 4, "image": "debian"}}));
    let ar = kube::api::ApiResource::erase::<kube::api::DynamicObject>(&kube::api::ApiResource {
        group: "compute.example.com".into(),
        version: "v1".into(),
        api_version: "compute.example.com/v1".into(),
        kind: "VirtualMachine".into(),
        plural: "virtualmachines".into(),
    });
    let vms: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    vms.create(&PostParams::default(), &vm).await.expect("a VirtualMachine");
    let established = crds.get("virtualmachines.compute.example.com").await.expect("crd");
    let conditions = established.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    crds.delete("virtualmachines.compute.example.com", &DeleteParams::default())
        .await
        .expect("CRD deleted");
    let err = vms.list(&ListParams::default()).await.expect_err("no longer served");
    assert!(
        err.to_string().contains("404") || err.to_string().contains("not find"),
        "{err}"
    );
    assert!(
        sandbox
            .server
            .store
            .lock()
            .list("compute.example.com/virtualmachines", None)
            .next()
            .is_none()
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_timeout_and_bookmarks() {
    let sandbox = Sandbox::start(Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    })
    .await
    .expect("starts");
    let api: Api<ConfigMap> = Api::default_namespaced(client(&sandbox));
    let list = api.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.unwrap_or_default();
    let wp = WatchParams::default().timeout(1);
    let started = Instant::now();
    let stream = api.watch(&wp, &rv).await.expect("watch");
    api.create(&PostParams::default(), &config_map("watched", None))
        .await
        .expect("create");
    let events: Vec<WatchEvent<ConfigMap>> = stream.try_collect().await.expect("events");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timeoutSeconds ends the watch"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("watched")))
    );
    assert!(
        events.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))),
        "bookmarks when asked"
    );
    // No bookmarks unless asked.
    let stream = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv)
        .await
        .expect("watch");
    let events: Vec<_> = stream.collect().await;
    assert!(events.iter().all(|e| !matches!(e, Ok(WatchEvent::Bookmark(_)))));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_scale_subresource_changes_replicas() {
    use k8s_openapi::api::apps::v1::Deployment;
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = client(&sandbox);
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }))
    .expect("a deployment");
    let created = api.create(&PostParams::default(), &deployment).await.expect("created");
    let scale = api.get_scale("web").await.expect("its scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    assert_eq!(scale.status.and_then(|s| s.selector).as_deref(), Some("app=web"));
    let patched = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("scaled");
    assert_eq!(patched.spec.and_then(|s| s.replicas), Some(5));
    let now = api.get("web").await.expect("the deployment");
    assert_eq!(now.spec.and_then(|s| s.replicas), Some(5));
    assert_eq!(
        now.metadata.generation,
        created.metadata.generation.map(|g| g + 1),
        "scaling is a change of the spec"
    );
    let bad = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": -1}})),
        )
        .await
        .expect_err("negative replicas");
    assert!(bad.to_string().contains("spec.replicas"), "{bad}");
    // Discovery lists it, with its kind.
    let resources = client
        .list_api_group_resources("apps/v1")
        .await
        .expect("apps/v1 discovery");
    let scale = resources
        .resources
        .iter()
        .find(|r| r.name == "deployments/scale")
        .expect("deployments/scale is listed");
    assert_eq!(
        (scale.group.as_deref(), scale.kind.as_str()),
        (Some("autoscaling"), "Scale")
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn aggregated_discovery_lists_every_group() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = client(&sandbox);
    // kube-rs's aggregated discovery (v2, with v2beta1 as its fallback) finds the same groups
    // and resources as the per-group discovery.
    let aggregated = kube::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let classic = kube::Discovery::new(client.clone()).run().await.expect("discovery");
    let names = |d: &kube::Discovery| {
        let mut n: Vec<String> = d.groups().map(|g| g.name().to_string()).collect();
        n.sort();
        n
    };
    assert!(names(&aggregated).len() > 5, "{:?}", names(&aggregated));
    assert_eq!(names(&aggregated), names(&classic));
    let apps = aggregated.get("apps").expect("apps");
    let (deployments, caps) = apps
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == "deployments")
        .expect("deployments");
    assert_eq!(deployments.kind, "Deployment");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "deployments/scale" || r.plural == "scale"),
        "{:?}",
        caps.subresources
    );
    // The answer names its type; plain JSON is still served to clients that ask for it.
    let raw = client
        .request_text(
            http::Request::get("/apis")
                .header(
                    "Accept",
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                )
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("v2beta1");
    assert!(raw.contains("\"apiVersion\":\"apidiscovery.k8s.io/v2beta1\""), "{raw}");
    let plain = client
        .request_text(
            http::Request::get("/apis")
                .header("Accept", "application/json")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("plain");
    assert!(plain.contains("\"kind\":\"APIGroupList\""), "{plain}");
    sandbox.shutdown().await;
}

/// kube-apiserver answers the DELETE of a built-in object that goes at once with a Success
/// Status naming it (kube-rs: `Right(Status)`), and with the object when it stays, being
/// finalized, or when it is a custom resource.
#[tokio::test]
async fn delete_answers_a_status_when_the_object_goes_at_once() {
    let sandbox = Sandbox::start(Config::default()).await.expect("starts");
    let client = client(&sandbox);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = api
        .create(&PostParams::default(), &config_map("gone", None))
        .await
        .expect("created");
    let answer = api.delete("gone", &DeleteParams::default()).await.expect("deleted");
    let status = answer.right().expect("a Status for an object that went at once");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
    let details = status.details.expect("details");
    assert_eq!((details.name.as_str(), details.kind.as_str()), ("gone", "configmaps"));
    assert_eq!(Some(details.uid), created.metadata.uid);

    let mut kept = config_map("kept", None);
    kept.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &kept).await.expect("created");
    let answer = api.delete("kept", &DeleteParams::default()).await.expect("marked");
    let object = answer.left().expect("the object, still there while it is finalized");
    assert!(object.metadata.deletion_timestamp.is_some());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn empty_metadata_maps_and_lists_are_not_stored() {
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let api: Api<ConfigMap> = Api::namespaced(client(&sandbox), "default");
    let mut cm = config_map("empty-maps", None);
    cm.metadata.labels = Some(Default::default());
    cm.metadata.finalizers = Some(vec![]);
    cm.metadata.annotations = Some([("only".to_string(), "one".to_string())].into());
    api.create(&PostParams::default(), &cm).await.expect("created");
    // Removing the last annotation leaves an empty map, which kube-apiserver does not store
    // (omitempty).
    let patch = serde_json::json!({"metadata": {"annotations": {"only": null}}});
    api.patch("empty-maps", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patched");
    let raw: serde_json::Value = serde_json::to_value(api.get("empty-maps").await.expect("read")).expect("json");
    for key in ["labels", "annotations", "finalizers"] {
        assert!(raw["metadata"].get(key).is_none(), "metadata.{key} is omitted: {raw}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_recorder_reports_on_the_kubernetes_service() {
    use k8s_openapi::api::core::v1::Service;
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = client(&sandbox);
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let kubernetes = services
        .get("kubernetes")
        .await
        .expect("every cluster has default/kubernetes");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "sandbox-test".into(),
            instance: None,
        },
    );
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Checked".into(),
                note: Some("the API server's Service is there".into()),
                action: "Check".into(),
                secondary: None,
            },
            &kubernetes.object_ref(&()),
        )
        .await
        .expect("published");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, "default");
    let listed = events.list(&ListParams::default()).await.expect("listed");
    assert!(
        listed.items.iter().any(|e| e.reason.as_deref() == Some("Checked")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("kubernetes")),
        "the event regards the kubernetes Service"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_finalized_before_they_go() {
    use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec};
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = client(&sandbox);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let pp = PostParams::default();
    let finalizers = |ns: &Namespace| ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();

    // kube-apiserver adds its own finalizer to those a new namespace asks for.
    let mut held = Namespace::default();
    held.metadata.name = Some("held".into());
    held.spec = Some(NamespaceSpec {
        finalizers: Some(vec!["example.com/hold".into()]),
    });
    let created = namespaces.create(&pp, &held).await.expect("created");
    assert_eq!(finalizers(&created), ["example.com/hold", "kubernetes"]);
    // An update does not change them: only the finalize subresource does.
    let patch = serde_json::json!({"spec": {"finalizers": []}, "metadata": {"labels": {"team": "a"}}});
    let patched = namespaces
        .patch("held", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patched");
    assert_eq!(finalizers(&patched), ["example.com/hold", "kubernetes"]);

    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), "held");
    configs
        .create(&pp, &config_map("content", None))
        .await
        .expect("content");
    namespaces
        .delete("held", &DeleteParams::default())
        .await
        .expect("deleting");
    // The content goes, then the namespace's own finalizer; the other one holds it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let terminating = loop {
        let ns = namespaces.get("held").await.expect("still there");
        if finalizers(&ns) == ["example.com/hold"] {
            break ns;
        }
        assert!(Instant::now() < deadline, "not finalized by the system: {ns:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(terminating.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    assert!(
        configs
            .list(&ListParams::default())
            .await
            .expect("listed")
            .items
            .is_empty()
    );
    // Updating a terminating namespace while a finalizer holds it does not remove it.
    let label = serde_json::json!({"metadata": {"labels": {"team": "b"}}});
    namespaces
        .patch("held", &PatchParams::default(), &Patch::Merge(label))
        .await
        .expect("labelled");
    assert!(namespaces.get_opt("held").await.expect("read").is_some());

    // Only PUT is served on finalize; the name must match.
    let mut body = namespaces.get("held").await.expect("read");
    body.spec = Some(NamespaceSpec { finalizers: None });
    let mut other = body.clone();
    other.metadata.name = Some("other".into());
    let err = namespaces
        .replace_subresource("finalize", "held", &pp, &other)
        .await
        .expect_err("the name must match");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 400), "{err:?}");
    // Removing the last finalizer through finalize lets the namespace go.
    namespaces
        .replace_subresource("finalize", "held", &pp, &body)
        .await
        .expect("finalized");
    assert!(namespaces.get_opt("held").await.expect("read").is_none());

    // Discovery lists the subresource, with the one verb it has.
    let discovered = client.list_core_api_resources("v1").await.expect("discovery");
    let finalize = discovered
        .resources
        .iter()
        .find(|r| r.name == "namespaces/finalize")
        .expect("namespaces/finalize is listed");
    assert_eq!(finalize.verbs, ["update"]);
    sandbox.shutdown().await;
}

/// kube-controller-manager deletes through the API: the garbage collector's and the namespace
/// controller's deletions are judged by admission (here a ValidatingAdmissionPolicy refusing
/// them for labelled ConfigMaps), and what admission refuses stays until it is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_deletions_go_through_admission() {
    use kube::api::DynamicObject;
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = client(&sandbox);
    let policy: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "keep"},
        "spec": {"failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"], "resources": ["configmaps"]}]},
            "validations": [{"expression": "!has(oldObject.metadata.labels) || !('keep' in oldObject.metadata.labels) || !request.userInfo.username.startsWith('system:serviceaccount:kube-system:')",
                             "message": "kept from controllers"}]}
    }))
    .expect("policy");
    let binding: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "keep"},
        "spec": {"policyName": "keep", "validationActions": ["Deny"]}
    }))
    .expect("binding");
    let (policies, bindings) = {
        let gvk = |kind: &str| {
            kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                kind,
            ))
        };
        (
            Api::<DynamicObject>::all_with(client.clone(), &gvk("ValidatingAdmissionPolicy")),
            Api::<DynamicObject>::all_with(client.clone(), &gvk("ValidatingAdmissionPolicyBinding")),
        )
    };
    let pp = PostParams::default();
    policies.create(&pp, &policy).await.expect("policy");
    bindings.create(&pp, &binding).await.expect("binding");

    // The garbage collector's deletion of a kept dependent is refused: it stays.
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let owner = api.create(&pp, &config_map("owner", None)).await.expect("owner");
    let mut kept = config_map("kept", Some(&owner));
    kept.metadata.labels = Some([("keep".to_string(), "yes".to_string())].into());
    api.create(&pp, &kept).await.expect("kept");
    api.create(&pp, &config_map("plain", Some(&owner)))
        .await
        .expect("plain");
    api.delete("owner", &DeleteParams::default())
        .await
        .expect("owner deleted");
    eventually_gone(&api, "plain").await;
    assert!(
        api.get_opt("kept").await.expect("read").is_some(),
        "the refused deletion left it"
    );

    // The namespace controller's too: the namespace stays Terminating with that content.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut ns = k8s_openapi::api::core::v1::Namespace::default();
    ns.metadata.name = Some("held".into());
    namespaces.create(&pp, &ns).await.expect("namespace");
    let inside: Api<ConfigMap> = Api::namespaced(client.clone(), "held");
    let mut labelled = config_map("inside", None);
    labelled.metadata.labels = Some([("keep".to_string(), "yes".to_string())].into());
    inside.create(&pp, &labelled).await.expect("inside");
    namespaces
        .delete("held", &DeleteParams::default())
        .await
        .expect("deleting");
    let held = namespaces.get("held").await.expect("still there");
    assert_eq!(held.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    assert!(inside.get_opt("inside").await.expect("read").is_some());

    // Once admission allows them, both go, with no other deletion to start a collection: the
    // binding only warns from now on (an update), and the refused deletions are retried
    // after a backoff, as kube-controller-manager retries them.
    bindings
        .patch(
            "keep",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"validationActions": ["Warn"]}})),
        )
        .await
        .expect("warns only");
    eventually_gone(&api, "kept").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while namespaces.get_opt("held").await.expect("read").is_some() {
        assert!(Instant::now() < deadline, "the namespace did not go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sandbox.shutdown().await;
}

/// An Event is one object behind both Events APIs: its name is taken through both, and one
/// written through `events.k8s.io/v1` is patched, replaced and deleted through `core/v1`
/// (`kubectl patch event`, `kubectl delete event`, `kubectl delete events --all`) as on
/// kube-apiserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_one_object_behind_both_events_apis() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let sandbox = Sandbox::start(Config::default()).await.expect("sandbox");
    let client = client(&sandbox);
    let kubeconfig = std::env::temp_dir().join(format!("pg-events-{}.kubeconfig", std::process::id()));
    sandbox.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event = |name: &str| -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "example.com/test",
            "reportingInstance": "test-1",
            "action": "Check",
            "reason": "Checked",
            "type": "Normal",
            "regarding": {"kind": "Service", "namespace": "default", "name": "kubernetes", "apiVersion": "v1"},
        }))
        .expect("an event")
    };
    let pp = PostParams::default();
    for name in ["one", "two", "three"] {
        events.create(&pp, &event(name)).await.expect("created");
    }
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let mut taken = CoreEvent::default();
    taken.metadata.name = Some("one".into());
    taken.involved_object.name = Some("kubernetes".into());
    match core.create(&pp, &taken).await {
        Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("the name is taken through both APIs: {other:?}"),
    }
    // Updated through core/v1: a merge patch, a strategic one (kubectl's default), a PUT.
    let (ok, text) = kubectl(&[
        "patch",
        "event",
        "two",
        "--type=merge",
        "-p",
        r#"{"message":"patched through core/v1"}"#,
    ]);
    assert!(ok, "{text}");
    let (ok, text) = kubectl(&["patch", "event", "two", "-p", r#"{"reason":"Rechecked"}"#]);
    assert!(ok, "{text}");
    let two = events.get("two").await.expect("two");
    assert_eq!(
        (
            two.note.as_deref(),
            two.reason.as_deref(),
            two.reporting_controller.as_deref()
        ),
        (
            Some("patched through core/v1"),
            Some("Rechecked"),
            Some("example.com/test")
        )
    );
    core.patch(
        "two",
        // Forced: kubectl's patch owns the message.
        &PatchParams::apply("tester").force(),
        &Patch::Apply(serde_json::json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "two"},
            "message": "applied through core/v1",
        })),
    )
    .await
    .expect("applied");
    assert_eq!(
        events.get("two").await.expect("two").note.as_deref(),
        Some("applied through core/v1")
    );
    let mut three = core.get("three").await.expect("read through core/v1");
    three.message = Some("replaced through core/v1".into());
    let replaced = core.replace("three", &pp, &three).await.expect("replaced");
    assert_eq!(replaced.message.as_deref(), Some("replaced through core/v1"));
    assert_eq!(
        events.get("three").await.expect("three").note.as_deref(),
        Some("replaced through core/v1")
    );
    // A stale resourceVersion is still a conflict.
    match core.replace("three", &pp, &three).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => panic!("a stale replace is refused: {other:?}"),
    }
    let (ok, text) = kubectl(&["delete", "event", "one"]);
    assert!(ok, "{text}");
    assert!(
        events.get_opt("one").await.expect("read").is_none(),
        "gone from events.k8s.io"
    );
    let (ok, text) = kubectl(&["delete", "events", "--all"]);
    assert!(ok, "{text}");
    let left = events.list(&ListParams::default()).await.expect("listed");
    assert!(left.items.is_empty(), "{:?}", left.items);
    let _ = std::fs::remove_file(&kubeconfig);
    sandbox.shutdown().await;
}
