//! The three webhooks: decisions (R2, R3, R4, R6 at admission), the audit stamp, and
//! purchases (R7). Decisions come from the controller's in-memory caches; nothing here calls
//! the API server.

use super::review::{Outcome, Request};
use crate::api::{AUDIT_USER_ANNOTATION, CustomerAccount, GROUP, PurchaseRestriction, ResellerDelegation};
use crate::index::{self, Stores};
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use policy::{ClassifyRules, ImpactMatrix, RequestOperation};
use purchase_guard_policy as policy;
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The annotation in which the audit stamp records when a decision was made or changed.
pub const AUDIT_TIME_ANNOTATION: &str = "purchaseguard.io/changed-at";

/// Identities whose deletions are cleanup (namespace deletion, garbage collection), not
/// decisions: kube-controller-manager's namespace controller and garbage collector.
const CLEANUP_USERS: [&str; 2] = [
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
];

/// What the purchase webhook does with a request it would deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Enforcement {
    /// Refuse the request.
    Deny,
    /// Allow it with an admission warning (kubectl prints it).
    Warn,
    /// Allow it; count and log what would have been refused.
    Dryrun,
}

/// A guarded resource: `group/version/resource` (`apps/v1/deployments`; the core group is
/// empty: `/v1/services`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Guarded {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl std::str::FromStr for Guarded {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [group, version, resource] if !version.is_empty() && !resource.is_empty() => Ok(Guarded {
                group: group.to_string(),
                version: version.to_string(),
                resource: resource.to_string(),
            }),
            _ => Err(format!(
                "{s:?}: expected GROUP/VERSION/RESOURCE, e.g. apps/v1/deployments or compute.example.com/v1/virtualmachines"
            )),
        }
    }
}

impl std::fmt::Display for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.group, self.version, self.resource)
    }
}

/// The guarded kinds by default: the sample billable CRD and Deployments.
pub fn default_guarded() -> Vec<Guarded> {
    vec![
        Guarded {
            group: "compute.example.com".into(),
            version: "v1".into(),
            resource: "virtualmachines".into(),
        },
        Guarded {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
        },
    ]
}

/// How the purchase webhook judges requests.
#[derive(Clone, Debug)]
pub struct Settings {
    pub guarded: Vec<Guarded>,
    pub classify: ClassifyRules,
    pub matrix: ImpactMatrix,
    pub enforcement: Enforcement,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            guarded: default_guarded(),
            classify: ClassifyRules::default(),
            matrix: ImpactMatrix::default(),
            enforcement: Enforcement::Deny,
        }
    }
}

/// The webhooks' state: settings, and the caches once synced.
pub struct Webhooks {
    pub settings: Settings,
    stores: OnceLock<Stores>,
    clock: fn() -> jiff::Timestamp,
}

const NOT_SYNCED: &str = "purchase-guard's caches are not synced yet (the controller is starting)";

impl Webhooks {
    pub fn new(settings: Settings) -> Self {
        Webhooks {
            settings,
            stores: OnceLock::new(),
            clock: jiff::Timestamp::now,
        }
    }

    /// Hands over the synced caches; admission refuses what it cannot judge until then.
    pub fn set_stores(&self, stores: Stores) {
        let _ = self.stores.set(stores);
    }

    // ---- decisions -----------------------------------------------------------------------

    /// The decision webhook: PurchaseRestriction and ResellerDelegation, CREATE, UPDATE and
    /// DELETE.
    pub fn decisions(&self, req: &Request) -> Outcome {
        if req.group != GROUP || !matches!(req.kind.as_str(), "PurchaseRestriction" | "ResellerDelegation") {
            return unexpected_kind(req, "judges PurchaseRestriction and ResellerDelegation");
        }
        if req.sub_resource.is_some() {
            return Outcome::allow("Subresource");
        }
        let Some(stores) = self.stores.get() else {
            return Outcome::deny(503, "NotSynced", format!("{NOT_SYNCED}; retry shortly"));
        };
        let Some(namespace) = req.namespace.as_deref() else {
            return Outcome::deny(
                400,
                "NoNamespace",
                "the request has no namespace; these kinds are namespaced",
            );
        };
        match (req.kind.as_str(), req.operation.as_str()) {
            ("PurchaseRestriction", "CREATE" | "UPDATE") => self.restriction_write(stores, namespace, req),
            ("PurchaseRestriction", "DELETE") => self.restriction_delete(stores, namespace, req),
            ("ResellerDelegation", "CREATE" | "UPDATE") => self.delegation_write(stores, namespace, req),
            // Revoking is the delegating distributor's right: RBAC limits who acts in its
            // namespace.
            ("ResellerDelegation", _) => Outcome::allow("Revoked"),
            _ => Outcome::allow("OperationNotJudged"),
        }
    }

    fn restriction_write(&self, stores: &Stores, namespace: &str, req: &Request) -> Outcome {
        let new: PurchaseRestriction = match parse_object(req.object.as_ref(), namespace) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let old: Option<PurchaseRestriction> = match req.old_object.as_ref() {
            Some(_) => match parse_object(req.old_object.as_ref(), namespace) {
                Ok(d) => Some(d),
                Err(e) => return e,
            },
            None => None,
        };
        if let Some(old) = &old
            && old.spec == new.spec
        {
            return Outcome::allow("SpecUnchanged");
        }
        fn content(d: &PurchaseRestriction) -> policy::DecisionContent<'_> {
            policy::DecisionContent {
                state: d.spec.state.into(),
                reason: &d.spec.reason,
                agreement_accepted: d.spec.agreement_accepted,
            }
        }
        let old_content = old.as_ref().map(content);
        let errors = policy::check_content(old_content.as_ref(), &content(&new));
        if !errors.is_empty() {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Outcome::deny(422, "Invalid", text.join("; "));
        }
        let hierarchy = stores.hierarchy();
        let customer_name = &new.spec.customer;
        let customer = stores.customer(customer_name).map(|c| index::customer(&c));
        if let Err(denied) = policy::check_issuer_authority(&hierarchy, namespace, customer_name, customer.as_ref()) {
            return Outcome::deny(403, denied.reason(), denied.to_string());
        }
        if req.operation == "CREATE" {
            let name = new.name_any();
            if let Some(other) = stores
                .decisions_of(customer_name)
                .iter()
                .find(|d| d.namespace().as_deref() == Some(namespace) && d.name_any() != name)
            {
                return Outcome::deny(
                    409,
                    "DuplicateDecision",
                    format!(
                        "R2: this partner already has a decision for customer \"{customer_name}\" (PurchaseRestriction {namespace}/{}); change that one instead of creating another",
                        other.name_any()
                    ),
                );
            }
        }
        Outcome::allow("Authorized")
    }

    fn restriction_delete(&self, stores: &Stores, namespace: &str, req: &Request) -> Outcome {
        if CLEANUP_USERS.contains(&req.username.as_str()) {
            return Outcome::allow("Cleanup");
        }
        let Some(old) = req.old_object.as_ref() else {
            // kube-apiserver always sends the old object of a DELETE.
            return Outcome::deny(400, "NoOldObject", "request.oldObject is missing for DELETE");
        };
        let old: PurchaseRestriction = match parse_object(Some(old), namespace) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let customer_name = &old.spec.customer;
        let Some(customer) = stores.customer(customer_name) else {
            return Outcome::allow("CustomerGone");
        };
        // Withdrawing a decision that is not in force changes nothing for the customer.
        let in_force = customer
            .status
            .as_ref()
            .and_then(|s| s.decision.as_ref())
            .and_then(|d| d.restriction.as_ref())
            .is_some_and(|r| r.namespace == namespace && r.name == old.name_any());
        if !in_force {
            return Outcome::allow("NotInForce");
        }
        let hierarchy = stores.hierarchy();
        let core = index::customer(&customer);
        match policy::check_issuer_authority(&hierarchy, namespace, customer_name, Some(&core)) {
            Ok(_) => Outcome::allow("Authorized"),
            Err(denied) => Outcome::deny(
                403,
                denied.reason(),
                format!("withdrawing the decision in force is a change of restriction: {denied}"),
            ),
        }
    }

    fn delegation_write(&self, stores: &Stores, namespace: &str, req: &Request) -> Outcome {
        let new: ResellerDelegation = match parse_object(req.object.as_ref(), namespace) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let mut delegation = index::delegation(&new);
        delegation.key = policy::ObjectKey::new(namespace, &new.name_any());
        if req.operation == "CREATE" {
            delegation.created = policy::Timestamp((self.clock)().as_microsecond());
        }
        let mut hierarchy = stores.hierarchy();
        hierarchy.delegations.retain(|d| d.key != delegation.key);
        hierarchy.delegations.push(delegation.clone());
        match policy::evaluate_delegation(&hierarchy, &delegation) {
            Ok(()) => Outcome::allow("Authorized"),
            Err(rejection) => Outcome::deny(403, rejection.reason(), rejection.to_string()),
        }
    }

    // ---- audit stamp ---------------------------------------------------------------------

    /// The audit stamp: on create and on each state change of a PurchaseRestriction, records
    /// the requesting user and the time in annotations, overwriting values the user supplied;
    /// other updates keep the previous stamp.
    pub fn audit(&self, req: &Request) -> Outcome {
        if req.group != GROUP || req.kind != "PurchaseRestriction" {
            return unexpected_kind(req, "stamps PurchaseRestriction");
        }
        let Some(object) = req.object.as_ref().filter(|_| req.sub_resource.is_none()) else {
            return Outcome::allow("NothingToStamp");
        };
        let state = |o: &Value| o.pointer("/spec/state").cloned();
        let wanted: [(&str, Option<String>); 2] = match (req.operation.as_str(), req.old_object.as_ref()) {
            ("CREATE", _) => [
                (AUDIT_USER_ANNOTATION, Some(req.username.clone())),
                (AUDIT_TIME_ANNOTATION, Some((self.clock)().to_string())),
            ],
            ("UPDATE", Some(old)) if state(old) != state(object) => [
                (AUDIT_USER_ANNOTATION, Some(req.username.clone())),
                (AUDIT_TIME_ANNOTATION, Some((self.clock)().to_string())),
            ],
            ("UPDATE", Some(old)) => {
                let previous = |key: &str| {
                    old.pointer("/metadata/annotations")
                        .and_then(|a| a.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                [
                    (AUDIT_USER_ANNOTATION, previous(AUDIT_USER_ANNOTATION)),
                    (AUDIT_TIME_ANNOTATION, previous(AUDIT_TIME_ANNOTATION)),
                ]
            }
            _ => return Outcome::allow("NothingToStamp"),
        };
        let annotations = object.pointer("/metadata/annotations").and_then(Value::as_object);
        let mut ops = Vec::new();
        if annotations.is_none() {
            let map: serde_json::Map<String, Value> = wanted
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), json!(v))))
                .collect();
            if !map.is_empty() {
                ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": map}));
            }
        } else {
            for (key, value) in &wanted {
                let path = format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"));
                let current = annotations.and_then(|a| a.get(*key)).and_then(Value::as_str);
                match (value, current) {
                    (Some(v), Some(c)) if v == c => {}
                    (Some(v), _) => ops.push(json!({"op": "add", "path": path, "value": v})),
                    (None, Some(_)) => ops.push(json!({"op": "remove", "path": path})),
                    (None, None) => {}
                }
            }
        }
        let mut outcome = Outcome::allow("Stamped");
        if !ops.is_empty() {
            outcome.patch = Some(Value::Array(ops));
        }
        outcome
    }

    // ---- purchases -----------------------------------------------------------------------

    /// The purchase webhook: an operation on a customer's billable resource, judged with the
    /// R7 matrix and the customer's status.
    pub fn purchases(&self, req: &Request) -> Outcome {
        let guarded = self
            .settings
            .guarded
            .iter()
            .any(|g| g.group == req.group && g.version == req.version && g.resource == req.resource);
        if !guarded {
            return Outcome::allow("NotGuarded");
        }
        if req.sub_resource.is_some() {
            return Outcome::allow("Subresource");
        }
        let operation = match req.operation.as_str() {
            "CREATE" => RequestOperation::Create,
            "UPDATE" => RequestOperation::Update,
            "DELETE" => RequestOperation::Delete,
            _ => return Outcome::allow("OperationNotJudged"),
        };
        let Some(namespace) = req.namespace.as_deref() else {
            return Outcome::allow("ClusterScoped");
        };
        let stores = self.stores.get();
        let customers = stores.map(|s| s.customers_in_namespace(namespace));
        let (customer_name, state) = match (stores, customers.as_deref()) {
            (None, _) => (None, policy::CustomerState::Unknown { why: NOT_SYNCED.into() }),
            (Some(_), Some([])) => return Outcome::allow("NotACustomerNamespace"),
            (Some(s), Some([customer])) => (Some(customer.name_any()), customer_state(s, customer)),
            (Some(_), Some(many)) => {
                let names: Vec<String> = many.iter().map(|c| c.name_any()).collect();
                (
                    Some(names.join(", ")),
                    policy::CustomerState::Unknown {
                        why: format!(
                            "namespace \"{namespace}\" is claimed by several CustomerAccounts ({}); fix their spec.namespaces",
                            names.join(", ")
                        ),
                    },
                )
            }
            (Some(_), None) => return Outcome::allow("NotACustomerNamespace"),
        };
        let customer_label = customer_name.unwrap_or_else(|| format!("of namespace {namespace}"));
        let default_mode = self.settings.classify.default_billing_mode;
        let subject = match operation {
            RequestOperation::Delete => req.old_object.as_ref(),
            _ => req.object.as_ref(),
        };
        let mode = match subject.map(|o| policy::billing_mode_of(o, default_mode)) {
            Some(Ok(m)) => m,
            None => default_mode,
            Some(Err(e)) if operation == RequestOperation::Delete => {
                // Deleting is always allowed; an unreadable label does not stop it.
                tracing::debug!(error = %e, "billing mode of a deleted object");
                default_mode
            }
            Some(Err(e)) => return Outcome::deny(422, "InvalidBillingMode", e),
        };
        let operations = policy::classify_request(
            &self.settings.classify,
            operation,
            req.old_object.as_ref(),
            req.object.as_ref(),
        );
        // A change of billing mode is judged under the mode being left and the one adopted.
        let old_mode = req
            .old_object
            .as_ref()
            .and_then(|o| policy::billing_mode_of(o, default_mode).ok())
            .unwrap_or(mode);
        if operations.is_empty() {
            return Outcome::allow("NothingBillable");
        }
        let mut verdict = policy::decide_purchase(&self.settings.matrix, &customer_label, &state, mode, &operations);
        if verdict.is_allowed() && old_mode != mode {
            verdict = policy::decide_purchase(&self.settings.matrix, &customer_label, &state, old_mode, &operations);
        }
        match verdict {
            policy::Verdict::Allow => Outcome::allow("Allowed"),
            policy::Verdict::Deny { reason, message, .. } => match self.settings.enforcement {
                Enforcement::Deny => Outcome::deny(403, reason, message),
                Enforcement::Warn => {
                    let mut o = Outcome::allow(reason);
                    o.warnings
                        .push(format!("purchase-guard (enforcement: warn) would deny this: {message}"));
                    o
                }
                Enforcement::Dryrun => {
                    tracing::info!(
                        namespace,
                        name = %req.name,
                        operation = %req.operation,
                        %message,
                        "purchase-guard (enforcement: dryrun) would deny this request"
                    );
                    Outcome::allow(reason)
                }
            },
        }
    }
}

/// The denial of a kind a webhook is not meant for (a webhook configuration's rules are wrong).
fn unexpected_kind(req: &Request, handles: &str) -> Outcome {
    Outcome::deny(
        400,
        "UnexpectedKind",
        format!(
            "this webhook {handles} of {GROUP}, not {}/{} {}; check the webhook configuration's rules",
            req.group, req.version, req.kind
        ),
    )
}

/// What the customer's status says, or why it cannot be trusted.
fn customer_state(stores: &Stores, customer: &CustomerAccount) -> policy::CustomerState {
    let unknown = |why: String| policy::CustomerState::Unknown { why };
    let Some(status) = customer.status.as_ref() else {
        return unknown("the controller has not written its status yet".into());
    };
    let generation = customer.metadata.generation.unwrap_or(0);
    match status.observed_generation {
        Some(observed) if observed >= generation => {}
        observed => {
            return unknown(format!(
                "its status is stale: observedGeneration {} is behind generation {generation}",
                observed.map_or("unset".to_string(), |o| o.to_string())
            ));
        }
    }
    let Some(decision) = status.decision.as_ref() else {
        // Not in the Reseller model, or nobody can hold authority: nothing restricts it.
        return policy::CustomerState::Known {
            state: policy::RestrictionState::Unrestricted,
            source: None,
        };
    };
    let source = match (&decision.restriction, &decision.partner) {
        (Some(_), Some(partner)) => {
            let role = stores
                .partners
                .get(&ObjectRef::new(partner))
                .map(|p| index::partner(&p).role)
                .unwrap_or(policy::Role::Reseller);
            Some(policy::RestrictionSource::Decision {
                partner: partner.clone(),
                role,
                reason: decision.reason.clone(),
            })
        }
        _ => Some(policy::RestrictionSource::Default {
            holder: status.authority.as_ref().map(|a| a.partner.clone()),
        }),
    };
    policy::CustomerState::Known {
        state: decision.state.into(),
        source,
    }
}

/// Reads the object of a request as a purchase-guard kind; a denial naming the field if not.
fn parse_object<K: serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>>(
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
