use super::SharedStr;
use super::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A partner's standing decision about one customer: restrict, restrict and freeze, or
/// unrestrict (R6). Created in the issuing partner's namespace; at most one per partner and
/// customer. Changing the state is a new operation and needs a new reason (R4). Only the
/// partner holding authority over the customer may create or change it (R2, R3); it leaves
/// force by a withdrawal with a reason (spec.withdrawal), after which it may be deleted.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "purchaseguard.io",
    version = "v1alpha1",
    kind = "PurchaseRestriction",
    plural = "purchaserestrictions",
    shortname = "pres",
    category = "purchaseguard",
    namespaced,
    status = "PurchaseRestrictionStatus",
    doc = "A partner's decision to restrict, restrict and freeze, or unrestrict a customer's purchases.",
    printcolumn(name = "Customer", type_ = "string", json_path = ".spec.customer"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Effective",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Effective\")].status"
    ),
    printcolumn(
        name = "Withdrawn",
        type_ = "string",
        json_path = ".spec.withdrawal.reason",
        priority = 1
    ),
    printcolumn(name = "Reason", type_ = "string", json_path = ".spec.reason", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    selectable = ".spec.customer"
)]
#[x_kube(validation = Rule::new("self.state != 'RestrictedAndFrozen' || self.agreementAccepted").message("R6: RestrictedAndFrozen requires accepting the Agreement for Partners to Manage Customer Budgets: set spec.agreementAccepted to true").field_path(".agreementAccepted"))]
#[x_kube(validation = Rule::new("oldSelf.state != 'RestrictedAndFrozen' || self.state != 'Restricted'").message("R6: RestrictedAndFrozen -> Restricted is not an operation: frozen resources are unfrozen only with Unrestricted (Unrestrict Purchase and Unfreeze Resources, R9)").field_path(".state"))]
#[x_kube(validation = Rule::new("self.state == oldSelf.state || self.reason != oldSelf.reason").message("R4: changing spec.state is a new operation and needs a new spec.reason").field_path(".reason"))]
#[x_kube(validation = Rule::new("!has(oldSelf.withdrawal) || has(self.withdrawal) || self.reason != oldSelf.reason").message("R4: putting a withdrawn decision back in force is a new operation and needs a new spec.reason").field_path(".reason"))]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRestrictionSpec {
    /// The name of the CustomerAccount this decision is about. Immutable: create another
    /// PurchaseRestriction for another customer.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS1123_SUBDOMAIN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.customer is immutable: create another PurchaseRestriction for another customer"))]
    pub customer: String,

    /// The decision: Restricted, RestrictedAndFrozen or Unrestricted.
    pub state: RestrictionState,

    /// Why, written by the operator (R4). Required, with visible characters (whitespace and
    /// invisible formatting characters do not count), on one line without control characters;
    /// a new one for every change of spec.state.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new(r"self.matches('[^\\s\\p{Cf}]')").message("R4: a reason is required and must not be blank"))]
    #[x_kube(validation = Rule::new(r"!self.matches('\\p{Cc}')").message("R4: a reason is one line of text: control characters (newlines, tabs, escapes) are not allowed"))]
    pub reason: SharedStr,

    /// Acceptance of the Agreement for Partners to Manage Customer Budgets, required to freeze
    /// resources (R6).
    #[serde(default)]
    pub agreement_accepted: bool,

    /// Withdraws the decision: it is no longer in force, and the customer's next decision (or
    /// the default of R1) applies. A restriction operation like the others: by the partner
    /// holding authority, with its own reason, recorded in the customer's history with the
    /// user who made it. The decision in force cannot be deleted; a withdrawn one can. Removing
    /// the withdrawal puts the decision back in force and needs a new spec.reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal: Option<DecisionWithdrawal>,
}

/// A withdrawal and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionWithdrawal {
    /// Why, written by the operator (R4): visible characters, on one line.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new(r"self.matches('[^\\s\\p{Cf}]')").message("R4: a withdrawal needs a reason, and it must not be blank"))]
    #[x_kube(validation = Rule::new(r"!self.matches('\\p{Cc}')").message("R4: a reason is one line of text: control characters (newlines, tabs, escapes) are not allowed"))]
    pub reason: String,
}

/// The content of a decision as it was accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedDecision {
    /// The metadata.generation that was accepted.
    pub generation: i64,
    /// The accepted state.
    pub state: RestrictionState,
    /// The accepted reason.
    pub reason: SharedStr,
    /// When it was accepted. The newest accepted decision about a customer is the one in
    /// force; an accepted decision stays in force as a standing decision when authority moves.
    pub since: MicroTime,
    /// The accepted content is a withdrawal (reason is the withdrawal's): not in force.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    /// The number of the customer's association it was accepted under
    /// (status.association.number of the CustomerAccount).
    #[serde(default)]
    pub association: u64,
}

/// The observed state of a decision, written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRestrictionStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Accepted`: whether the issuer held authority over the customer when this generation
    /// was judged (reasons such as AuthorityDelegated, NotDelegated, UnknownCustomer,
    /// IssuerNotAPartner, NotInResellerModel). `Effective`: whether this decision is the one in
    /// force for the customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,

    /// The partner acting in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<SharedStr>,

    /// The content accepted last; it stays in force as a standing decision when authority
    /// moves, and later changes by a party without authority leave it untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<AcceptedDecision>,

    /// The generation judged not accepted; it stays ignored until the decision changes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_generation: Option<i64>,
}
