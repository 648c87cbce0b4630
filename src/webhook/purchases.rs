//! The purchase webhook: an operation on a customer's billable resource, judged with the R7
//! matrix and the customer's state, evaluated from the caches with the policy core (R1, R7):
//! a restriction holds as soon as this replica's watch delivers it, leader or not. Nothing
//! here calls the API server.

use super::review::{Outcome, Request};
use super::{Enforcement, NOT_SYNCED, Webhooks};
use crate::api::GUARDED_LABEL;
use crate::index::Stores;
use crate::index::admission::Claim;
use kube::ResourceExt;
use policy::RequestOperation;
use purchase_guard_policy as policy;

/// A purchase request judged from the caches (with the customer judged for, when one claims
/// the namespace), or answered before judging.
enum Judged {
    Answered(Outcome),
    Judgement(policy::Judgement, Option<String>),
}

impl Webhooks {
    /// The purchase webhook: an operation on a customer's billable resource (or its scale
    /// subresource), judged with the R7 matrix and the customer's evaluated state. A request
    /// allowed only because its customer is not restricted is allowed once the caches are
    /// confirmed current for it ([`Webhooks::confirm_current`], after the request arrived);
    /// otherwise the customer's state counts as unknown (fail closed).
    pub async fn purchases(&self, req: &Request) -> Outcome {
        let judgement = match self.judge_purchase(req, None) {
            Judged::Answered(outcome) => return outcome,
            Judged::Judgement(allowed @ policy::Judgement::Allow(policy::CUSTOMER_UNRESTRICTED), customer) => {
                let namespace = req.namespace.as_deref().unwrap_or_default();
                match self
                    .confirm_current(customer.as_deref().unwrap_or_default(), namespace)
                    .await
                {
                    // The caches were current already: the judgement stands.
                    Ok(false) => Judged::Judgement(allowed, customer),
                    // They caught up with everything written before the request: judge again.
                    Ok(true) => self.judge_purchase(req, None),
                    Err(why) => self.judge_purchase(req, Some(why)),
                }
            }
            judged => judged,
        };
        match judgement {
            Judged::Answered(outcome) => outcome,
            Judged::Judgement(j, _) => self.enforce(req, j),
        }
    }

    /// Judges from the caches; `unknown` overrides the customer's state with "unknown, because".
    fn judge_purchase(&self, req: &Request, unknown: Option<String>) -> Judged {
        let sub_resource = req.sub_resource.as_deref();
        let Some(guarded) = self
            .settings
            .guarded
            .iter()
            .find(|g| g.matches(&req.resource_group, &req.resource_version, &req.resource, sub_resource))
        else {
            // A kind not guarded, or a subresource that changes no capacity (status, and those
            // not listed; the webhook's rules do not send them).
            return Judged::Answered(Outcome::allow(if sub_resource.is_some() {
                "Subresource"
            } else {
                "NotGuarded"
            }));
        };
        // purchase-guard's own writes: freezing, restoring and releasing (R8, R9).
        if self.settings.controller_identities.contains(&req.username) {
            return Judged::Answered(Outcome::allow("PurchaseGuard"));
        }
        if self.managed_by_controller(req) {
            return Judged::Answered(Outcome::allow("ManagedByController"));
        }
        let operation = match req.operation.as_str() {
            "CREATE" => RequestOperation::Create,
            "UPDATE" => RequestOperation::Update,
            "DELETE" => RequestOperation::Delete,
            _ => return Judged::Answered(Outcome::allow("OperationNotJudged")),
        };
        let Some(namespace) = req.namespace.as_deref() else {
            return Judged::Answered(Outcome::allow("ClusterScoped"));
        };
        // Who claims the namespace, in which state: prepared once per change of what it was
        // computed from, not per review.
        let claim = self
            .stores()
            .map(|s| s.admission.claim(namespace, || claim_of(s, namespace, (self.clock)())));
        let not_synced;
        let (customer_name, state): (Option<&str>, &policy::CustomerState) = match claim.as_deref() {
            None => {
                not_synced = policy::CustomerState::Unknown { why: NOT_SYNCED.into() };
                (None, &not_synced)
            }
            Some(Claim::Nobody) => return self.outside_customers(req, namespace, operation),
            Some(Claim::Orphaned { state }) => (None, state),
            Some(Claim::Customer { name, state }) => (Some(name), state),
            Some(Claim::Several { names, state }) => (Some(names), state),
        };
        let overridden;
        let state = match unknown {
            Some(why) => {
                overridden = policy::CustomerState::Unknown { why };
                &overridden
            }
            None => state,
        };
        let customer_name = customer_name.map(str::to_string);
        let customer_label = customer_name
            .clone()
            .unwrap_or_else(|| format!("of namespace {namespace}"));
        let request = policy::BillableRequest {
            operation,
            scale: sub_resource == Some("scale"),
            old: req.old_object.as_ref(),
            new: req.object.as_ref(),
        };
        // R8: what would undo a freeze, whatever the matrix says (the subject is worded only
        // for a refusal).
        let subject = || {
            format!(
                "{} \"{}\" of customer \"{customer_label}\" in namespace \"{namespace}\"",
                req.resource, req.name
            )
        };
        if let Some(refused) = policy::judge_freeze(state, &request, subject) {
            return Judged::Judgement(refused, customer_name);
        }
        let judgement = policy::judge_request(
            &guarded.classify,
            &self.settings.matrix,
            &customer_label,
            state,
            &request,
        );
        Judged::Judgement(judgement, customer_name)
    }

    /// A request in a namespace that belongs to no customer: not judged, unless strict mode
    /// refuses creating guarded kinds there (changing and deleting what exists stays possible).
    fn outside_customers(&self, req: &Request, namespace: &str, operation: RequestOperation) -> Judged {
        let Some(exempt) = &self.settings.strict else {
            return Judged::Answered(Outcome::allow("NotACustomerNamespace"));
        };
        if operation != RequestOperation::Create || exempt.iter().any(|e| e == namespace) {
            return Judged::Answered(Outcome::allow("NotACustomerNamespace"));
        }
        Judged::Answered(self.enforce(
            req,
            policy::Judgement::Deny {
                rule: "R7",
                reason: "NoCustomer",
                message: format!(
                    "R7: namespace \"{namespace}\" belongs to no customer, and purchase-guard runs in strict mode: {} are created only in customers' namespaces; list the namespace in a CustomerAccount's spec.namespaces, or exempt it (webhook.strict.exemptNamespaces)",
                    req.resource
                ),
            },
        ))
    }

    /// A write by one of Kubernetes' workload controllers of an object it controls (a
    /// controller ownerReference): a ReplicaSet's Pods, a Deployment's ReplicaSets, a CronJob's
    /// Jobs. Their parent was judged when it was created or scaled; judging the children again
    /// would refuse what the customer already has (Pods recreated after a node failure).
    fn managed_by_controller(&self, req: &Request) -> bool {
        let controlled = |o: Option<&serde_json::Value>| {
            o.and_then(|o| o.pointer("/metadata/ownerReferences"))
                .and_then(|r| r.as_array())
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("controller") == Some(&serde_json::Value::Bool(true)))
                })
        };
        self.settings.workload_controllers.contains(&req.username)
            && (controlled(req.object.as_ref()) || (req.object.is_none() && controlled(req.old_object.as_ref())))
    }

    /// Applies the enforcement mode to a judgement.
    fn enforce(&self, req: &Request, judgement: policy::Judgement) -> Outcome {
        let namespace = req.namespace.as_deref().unwrap_or_default();
        match judgement {
            policy::Judgement::Allow(reason) => Outcome::allow(reason),
            // The object itself is wrong, whatever the customer's state.
            policy::Judgement::Deny {
                rule,
                reason: reason @ "InvalidBillingMode",
                message,
            } => Outcome::deny(422, reason, message).rule(rule),
            policy::Judgement::Deny { rule, reason, message } => match self.settings.enforcement {
                Enforcement::Deny => Outcome::deny(403, reason, message).rule(rule),
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

/// Who claims `namespace` and the claiming customer's state, evaluated from the caches with
/// the policy core (the evaluation the controller writes into the status, made here without
/// waiting for it), with the customers read.
fn claim_of(stores: &Stores, namespace: &str, now: jiff::Timestamp) -> (Claim, Vec<String>) {
    let customers = stores.customers_in_namespace(namespace);
    let names: Vec<String> = customers.iter().map(|c| c.name_any()).collect();
    let claim = match customers.as_slice() {
        // Guarded but listed by nobody: its customer was deleted (or changed its list while
        // this replica's caches lag). Never silently unguarded: fail closed until released.
        [] if stores.namespace_guarded(namespace) => Claim::Orphaned {
            state: policy::CustomerState::Unknown {
                why: format!(
                    "namespace \"{namespace}\" is labelled {GUARDED_LABEL} but no CustomerAccount claims it; list it in a CustomerAccount (spec.namespaces or spec.namespaceSelector), or release it by removing the label"
                ),
            },
        },
        [] => Claim::Nobody,
        [customer] => {
            let (eval, _) = stores.evaluate(customer, policy::Timestamp(now.as_microsecond()));
            Claim::Customer {
                name: customer.name_any(),
                state: policy::evaluated_state(&eval),
            }
        }
        _several => {
            let listed = names.join(", ");
            Claim::Several {
                state: policy::CustomerState::Unknown {
                    why: format!(
                        "namespace \"{namespace}\" is claimed by several CustomerAccounts ({listed}); fix their spec.namespaces"
                    ),
                },
                names: listed,
            }
        }
    };
    (claim, names)
}
