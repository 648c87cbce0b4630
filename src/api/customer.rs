use super::SharedStr;
use super::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a customer is associated with partners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AssociationModel {
    /// Associated with one reseller (and through it with its distributor). Partners may
    /// restrict such customers; a new association is restricted by default (R1).
    Reseller,
    /// Associated through a referral. Partners cannot restrict such customers.
    Referral,
    /// Buying directly from the cloud. Partners cannot restrict such customers.
    Direct,
}

/// A label selector on namespaces, as Kubernetes' own (matchLabels and matchExpressions, all
/// required), with at least one requirement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.matchLabels) ? size(self.matchLabels) : 0) + (has(self.matchExpressions) ? size(self.matchExpressions) : 0) > 0").message("spec.namespaceSelector needs at least one entry in matchLabels or matchExpressions: an empty selector would claim every namespace"))]
pub struct NamespaceSelector {
    /// Labels a namespace must carry, with these values.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(length(max = 16))]
    pub match_labels: std::collections::BTreeMap<String, String>,
    /// Requirements on a namespace's labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One requirement on a label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.operator == 'Exists' || self.operator == 'DoesNotExist') ? !has(self.values) || size(self.values) == 0 : has(self.values) && size(self.values) > 0").message("values: required (non-empty) for In and NotIn, not allowed for Exists and DoesNotExist").field_path(".values"))]
pub struct SelectorRequirement {
    /// The label's key.
    #[schemars(length(min = 1, max = 317))]
    pub key: String,
    /// In, NotIn, Exists or DoesNotExist.
    pub operator: SelectorOperator,
    /// The values for In and NotIn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 63)))]
    pub values: Vec<String>,
}

/// How a requirement compares a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectorOperator {
    /// The label is one of the values.
    In,
    /// The label is absent or none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl NamespaceSelector {
    /// Whether a namespace with `labels` matches every requirement.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    SelectorOperator::In => value.is_some_and(|v| r.values.contains(v)),
                    SelectorOperator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// An end-customer account. Owned by the platform admin. Its status says who holds
/// restriction authority over the customer and which decision is in force; the purchase
/// webhook reads it to allow or block purchases in the customer's namespaces.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "purchaseguard.io",
    version = "v1alpha1",
    kind = "CustomerAccount",
    plural = "customeraccounts",
    shortname = "cust",
    category = "purchaseguard",
    status = "CustomerAccountStatus",
    doc = "An end-customer account, its association with a reseller, and the namespaces holding its billable resources.",
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.associationModel", priority = 1),
    printcolumn(name = "Reseller", type_ = "string", json_path = ".spec.reseller"),
    printcolumn(
        name = "Authority",
        type_ = "string",
        json_path = ".status.authority.partner",
        description = "The partner holding restriction authority"
    ),
    printcolumn(
        name = "Restricted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"PurchaseRestricted\")].status"
    ),
    printcolumn(
        name = "Frozen",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"ResourcesFrozen\")].status"
    ),
    printcolumn(
        name = "Frozen Resources",
        type_ = "integer",
        json_path = ".status.freeze.frozen",
        description = "Pay-per-use resources frozen now (R8)"
    ),
    printcolumn(
        name = "Retention Ends",
        type_ = "string",
        json_path = ".status.freeze.retentionEnds",
        description = "When frozen resources are due for release (R8)"
    ),
    printcolumn(
        name = "Out Of Line",
        type_ = "integer",
        json_path = ".status.audit.failures",
        description = "Guarded resources out of line with the customer's state (the audit's failures)",
        priority = 1
    ),
    printcolumn(
        name = "Why",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"PurchaseRestricted\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.associationModel != 'Reseller' || has(self.reseller)").message("a customer in the Reseller model names its reseller in spec.reseller").field_path(".reseller"))]
#[serde(rename_all = "camelCase")]
pub struct CustomerAccountSpec {
    /// How the customer is associated with partners: Reseller, Referral or Direct. Only
    /// customers in the Reseller model can be restricted by partners.
    pub association_model: AssociationModel,

    /// The name of the reseller Partner the customer is associated with. Required in the
    /// Reseller model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS1123_SUBDOMAIN))]
    pub reseller: Option<SharedStr>,

    /// The namespaces that hold the customer's billable resources. A namespace belongs to at
    /// most one customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63), regex(pattern = DNS1123_LABEL)), extend("x-kubernetes-list-type" = "set"))]
    pub namespaces: Vec<String>,

    /// Namespaces that hold the customer's billable resources, by their labels, besides
    /// spec.namespaces: every namespace whose labels match belongs to the customer. Give it at
    /// least one requirement (an empty selector would claim every namespace). The labels it
    /// reads decide which customer a namespace's purchases are judged for: only the platform
    /// admin may set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<Box<NamespaceSelector>>,

    /// A human-readable name for the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
}

/// The partner holding restriction authority over a customer (R2, R3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorityStatus {
    /// The name of the Partner holding authority.
    pub partner: SharedStr,
    /// Its role: Distributor, or Reseller when the distributor delegated restriction.
    pub role: PartnerRole,
    /// The ResellerDelegation that moved authority to the reseller, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<ObjectReference>,
}

/// The decision in force for a customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionInForce {
    /// The PurchaseRestriction in force; absent when the R1 default or the association model
    /// decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction: Option<ObjectReference>,
    /// The partner whose decision is in force; absent for the R1 default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<SharedStr>,
    /// The effective state: Restricted, RestrictedAndFrozen or Unrestricted.
    pub state: RestrictionState,
    /// Why: the partner's reason, or the rule that decides (R1 default, not in the Reseller
    /// model).
    pub reason: SharedStr,
    /// When the decision in force was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<MicroTime>,
}

/// One change of a customer's effective state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateTransition {
    /// When the controller observed the change.
    pub time: Time,
    /// The partner whose decision (or withdrawal) caused it; absent for the R1 default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<SharedStr>,
    /// The new effective state.
    pub state: RestrictionState,
    /// The reason given for it: the decision's, or the withdrawal's.
    pub reason: SharedStr,
    /// The user who made the decision or the withdrawal, as recorded by the audit stamp, when
    /// known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SharedStr>,
    /// The decision whose withdrawal caused the change (spec.withdrawal), if that is the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<ObjectReference>,
}

/// The observed state of a customer, written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerAccountStatus {
    /// The metadata.generation this status describes. The purchase webhook refuses purchases
    /// while it is behind metadata.generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `PurchaseRestricted`: whether purchases, renewals and specification changes are blocked
    /// (R7). `ResourcesFrozen`: whether every pay-per-use resource of a kind with a freeze
    /// action is frozen (True only once they all are, R8). `ReleaseDue`: the retention period
    /// ended and frozen resources await release, which is not enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,

    /// The partner holding restriction authority; absent when no partner may restrict the
    /// customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<AuthorityStatus>,

    /// The decision in force and the effective state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionInForce>,

    /// The last changes of the effective state, newest last (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub history: Vec<StateTransition>,
    /// The namespaces purchase-guard has labelled `purchaseguard.io/guarded` for this
    /// customer: those of spec.namespaces that exist. The purchase webhook judges requests in
    /// labelled namespaces only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63)), extend("x-kubernetes-list-type" = "set"))]
    pub guarded_namespaces: Vec<String>,

    /// The customer's current association, numbered: each change of spec.associationModel or
    /// spec.reseller starts a new one, restricted by default (R1); decisions accepted under a
    /// previous one no longer apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<AssociationRecord>,

    /// The customer's last freeze (R8) and its unfreeze (R9): when it began, when retention
    /// ends, and what happened to the resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Box<FreezeStatus>>,

    /// What the audit found among the customer's guarded resources: those out of line with
    /// its current state (created or changed while restricted, running while frozen). The
    /// resources are listed in each namespace's report (OpenReports Report or PolicyReport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Box<AuditStatus>>,
}

/// Counts of the audit's findings about a customer's resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditStatus {
    /// Resources certainly out of line (result `fail` in the reports).
    pub failures: u32,
    /// Resources possibly out of line (result `warn`): their specification was written while
    /// the customer was restricted, and the audit cannot see what changed.
    pub warnings: u32,
    /// The counts by finding: CreatedWhileRestricted, ChangedWhileRestricted,
    /// RunningWhileFrozen (absent when zero).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub findings: std::collections::BTreeMap<String, u32>,
}

/// A freeze of a customer's pay-per-use resources, as purchase-guard carried it out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreezeStatus {
    /// When the effective state became RestrictedAndFrozen.
    pub since: Time,
    /// When the retention period ends (R8): frozen resources are then released (deleted) if
    /// release is enabled, or the customer gets the condition ReleaseDue.
    pub retention_ends: Time,
    /// When the customer was unfrozen (R9); absent while frozen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfrozen: Option<Time>,
    /// Resources frozen now (their remembered values in the annotation purchaseguard.io/frozen).
    pub frozen: u32,
    /// Frozen resources whose retention ended and that await release.
    #[serde(default)]
    pub release_due: u32,
    /// Resources released (deleted) at the end of retention: gone, never recreated.
    #[serde(default)]
    pub released: u32,
    /// Resources restored by the unfreeze.
    #[serde(default)]
    pub restored: u32,
    /// Resources not (yet) frozen or restored as they should be; the ResourcesFrozen
    /// condition and events say which and why.
    #[serde(default)]
    pub failed: u32,
}

/// An association of a customer, as purchase-guard recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssociationRecord {
    /// The association's number: 0 for the first one recorded, then one more per change.
    pub number: u64,
    pub model: AssociationModel,
    /// The reseller of this association (Reseller model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<SharedStr>,
    /// When purchase-guard recorded it.
    pub since: Time,
}
