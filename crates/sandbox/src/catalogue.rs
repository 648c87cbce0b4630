//! The built-in kinds kube-apiserver 1.33 serves by default (its GA group versions), taken
//! from k8s-openapi: group, version, kind, resource name, scope, whether a status subresource
//! exists, and the OpenAPI schema. The registry serves every kind listed here that it does not
//! configure by hand (printer columns, short names, scale...); objects of these kinds are
//! checked against their k8s-openapi type (`check`).

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;
use std::sync::OnceLock;

/// Whether a k8s-openapi scope is a namespace's.
trait Scoped {
    const NAMESPACED: bool;
}

impl Scoped for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scoped for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// A kind of the catalogue.
pub struct Entry {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub has_status: bool,
    /// Adds the kind's schema to a generator; returns its name there.
    pub schema: fn(&mut SchemaGenerator) -> String,
    /// Reads an object as the kind's type: the first field that does not fit, in
    /// kube-apiserver's decoding words (`json: cannot unmarshal ...`), and the unknown fields'
    /// paths.
    pub check: fn(&Value) -> Checked,
}

/// What reading an object as its type found.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    pub type_error: Option<String>,
    pub unknown: Vec<Unknown>,
}

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> String {
    g.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// A field an object has and its type does not: as kube-apiserver names it in decoding errors
/// (`spec.containers[0].foo`) and as a JSON pointer (`/spec/containers/0/foo`).
#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    pub name: String,
    pub pointer: String,
}

fn unknown_of(path: &serde_ignored::Path) -> Option<Unknown> {
    use serde_ignored::Path;
    Some(match path {
        Path::Root => Unknown {
            name: String::new(),
            pointer: String::new(),
        },
        Path::Seq { parent, index } => {
            let above = unknown_of(parent)?;
            Unknown {
                name: format!("{}[{index}]", above.name),
                pointer: format!("{}/{index}", above.pointer),
            }
        }
        Path::Map { parent, key } => {
            let above = unknown_of(parent)?;
            let escaped = key.replace('~', "~0").replace('/', "~1");
            Unknown {
                name: if above.name.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", above.name)
                },
                pointer: format!("{}/{escaped}", above.pointer),
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => unknown_of(parent)?,
    })
}

/// serde's words for a type as Go's decoder names it.
fn go_type(expected: &str) -> &str {
    match expected {
        "i32" => "int32",
        "i64" => "int64",
        "u32" => "uint32",
        "u64" => "uint64",
        "f64" | "f32" => "float64",
        "a boolean" | "bool" => "bool",
        "a string" => "string",
        "a sequence" => "array",
        "a map" => "object",
        other => other,
    }
}

fn check_as<T: serde::de::DeserializeOwned>(object: &Value) -> Checked {
    let mut unknown = Vec::new();
    let read: Result<T, _> = serde_ignored::deserialize(object, |path| {
        if let Some(u) = unknown_of(&path) {
            unknown.push(u);
        }
    });
    // The path of a type error is tracked only when there is one (tracking costs every read).
    let type_error = read.err().map(|_| {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(object) else {
            return "json: the object could not be read".to_string();
        };
        let at = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde: `invalid type: string "x", expected i32`.
        match inner
            .strip_prefix("invalid type: ")
            .and_then(|rest| rest.split_once(", expected "))
        {
            Some((found, expected)) => {
                // Go names what it found by its JSON type.
                let found = match found.split_whitespace().next().unwrap_or(found) {
                    "integer" | "unsigned" | "floating" => "number",
                    "boolean" => "bool",
                    "sequence" => "array",
                    "map" => "object",
                    other => other,
                };
                format!(
                    "json: cannot unmarshal {found} into Go struct field {at} of type {}",
                    go_type(expected)
                )
            }
            None => format!("json: {at}: {inner}"),
        }
    });
    Checked { type_error, unknown }
}

fn has_status<T: JsonSchema>() -> bool {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema.as_value().pointer("/properties/status").is_some()
}

macro_rules! catalogue {
    ($($ty:ty),* $(,)?) => {
        vec![$(Entry {
            group: <$ty as k8s_openapi::Resource>::GROUP,
            version: <$ty as k8s_openapi::Resource>::VERSION,
            kind: <$ty as k8s_openapi::Resource>::KIND,
            plural: <$ty as k8s_openapi::Resource>::URL_PATH_SEGMENT,
            namespaced: <<$ty as k8s_openapi::Resource>::Scope as Scoped>::NAMESPACED,
            has_status: has_status::<$ty>(),
            schema: schema_of::<$ty>,
            check: check_as::<$ty>,
        }),*]
    };
}

/// Every listable kind of kube-apiserver 1.33's default group versions (autoscaling at its
/// preferred v2 only).
pub fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        use api::*;
        catalogue![
            admissionregistration::v1::MutatingWebhookConfiguration,
            admissionregistration::v1::ValidatingAdmissionPolicy,
            admissionregistration::v1::ValidatingAdmissionPolicyBinding,
            admissionregistration::v1::ValidatingWebhookConfiguration,
            apps::v1::ControllerRevision,
            apps::v1::DaemonSet,
            apps::v1::Deployment,
            apps::v1::ReplicaSet,
            apps::v1::StatefulSet,
            autoscaling::v2::HorizontalPodAutoscaler,
            // Served from the v2 objects (crate::autoscaling); after v2, the preferred version.
            autoscaling::v1::HorizontalPodAutoscaler,
            batch::v1::CronJob,
            batch::v1::Job,
            certificates::v1::CertificateSigningRequest,
            coordination::v1::Lease,
            core::v1::ConfigMap,
            core::v1::Endpoints,
            core::v1::Event,
            core::v1::LimitRange,
            core::v1::Namespace,
            core::v1::Node,
            core::v1::PersistentVolume,
            core::v1::PersistentVolumeClaim,
            core::v1::Pod,
            core::v1::PodTemplate,
            core::v1::ReplicationController,
            core::v1::ResourceQuota,
            core::v1::Secret,
            core::v1::Service,
            core::v1::ServiceAccount,
            discovery::v1::EndpointSlice,
            events::v1::Event,
            flowcontrol::v1::FlowSchema,
            flowcontrol::v1::PriorityLevelConfiguration,
            networking::v1::IPAddress,
            networking::v1::Ingress,
            networking::v1::IngressClass,
            networking::v1::NetworkPolicy,
            networking::v1::ServiceCIDR,
            node::v1::RuntimeClass,
            policy::v1::PodDisruptionBudget,
            rbac::v1::ClusterRole,
            rbac::v1::ClusterRoleBinding,
            rbac::v1::Role,
            rbac::v1::RoleBinding,
            scheduling::v1::PriorityClass,
            storage::v1::CSIDriver,
            storage::v1::CSINode,
            storage::v1::CSIStorageCapacity,
            storage::v1::StorageClass,
            storage::v1::VolumeAttachment,
            CustomResourceDefinition,
            APIService,
        ]
    })
}

/// The catalogue's entry of a kind at a version.
pub fn find(group: &str, version: &str, kind: &str) -> Option<&'static Entry> {
    entries()
        .iter()
        .find(|e| e.group == group && e.version == version && e.kind == kind)
}

/// The short names kube-apiserver's discovery gives kinds that have them.
pub fn short_names(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("autoscaling", "horizontalpodautoscalers") => &["hpa"],
        ("", "endpoints") => &["ep"],
        ("", "limitranges") => &["limits"],
        ("", "persistentvolumes") => &["pv"],
        ("", "persistentvolumeclaims") => &["pvc"],
        ("", "replicationcontrollers") => &["rc"],
        ("", "resourcequotas") => &["quota"],
        ("networking.k8s.io", "ingresses") => &["ing"],
        ("networking.k8s.io", "ipaddresses") => &["ip"],
        ("scheduling.k8s.io", "priorityclasses") => &["pc"],
        ("storage.k8s.io", "storageclasses") => &["sc"],
        _ => &[],
    }
}

/// The kinds kubectl lists with `kubectl get all` (category `all`).
pub fn in_category_all(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("autoscaling", "horizontalpodautoscalers") | ("", "replicationcontrollers")
    )
}
