//! `why`: what the customer owning a namespace may do now, judged by the policy core from the
//! state purchase-guard wrote on the customer, as the purchase webhook judges it.

use super::output::{self, Format};
use super::status::is_current;
use crate::api::CustomerAccount;
use anyhow::Context as _;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{ApiResource, Discovery};
use purchase_guard_policy as policy;
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[derive(clap::Args)]
pub struct Args {
    /// The namespace.
    #[arg(short = 'n', long)]
    namespace: String,
    /// An object in it (KIND/NAME, as kubectl takes it: deployment/web, virtualmachines/vm-1).
    target: Option<String>,
    /// An operation to ask about: create, update, patch or delete.
    #[arg(long, requires = "resource", value_parser = ["create", "update", "patch", "delete"])]
    verb: Option<String>,
    /// The resource the verb applies to (deployments, virtualmachines.compute.example.com, ...).
    #[arg(long, requires = "verb")]
    resource: Option<String>,
    /// The billing mode of what is asked about, when no object says (its label
    /// purchaseguard.io/billing-mode).
    #[arg(long, default_value = "pay-per-use", value_parser = policy::BillingMode::parse)]
    billing_mode: policy::BillingMode,
    /// The R7 impact matrix purchase-guard runs with (the file of its --impact-matrix); default:
    /// the built-in one.
    #[arg(long, value_name = "FILE")]
    impact_matrix: Option<std::path::PathBuf>,
}

/// The customer that owns `namespace`: it is guarded for it, or listed by it.
async fn owner(client: &kube::Client, namespace: &str) -> anyhow::Result<Option<CustomerAccount>> {
    let api: Api<CustomerAccount> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .context("cannot list CustomerAccounts")?;
    let guarded = list.items.iter().find(|c| {
        c.status
            .as_ref()
            .is_some_and(|s| s.guarded_namespaces.iter().any(|n| n == namespace))
    });
    Ok(guarded
        .or_else(|| {
            list.items
                .iter()
                .find(|c| c.spec.namespaces.iter().any(|n| n == namespace))
        })
        .cloned())
}

/// The customer's state as admission sees it, from purchase-guard's status.
fn state_of(customer: &CustomerAccount) -> policy::CustomerState {
    let Some(status) = customer.status.as_ref().filter(|_| is_current(customer)) else {
        return policy::CustomerState::Unknown {
            why: "purchase-guard has not reconciled this customer's current generation".into(),
        };
    };
    let Some(decision) = status.decision.as_ref() else {
        return policy::CustomerState::Unknown {
            why: "purchase-guard has not evaluated this customer yet".into(),
        };
    };
    let holder = status.authority.as_ref().map(|a| a.partner.to_string());
    let source = match (&decision.restriction, &decision.partner) {
        (Some(_), Some(partner)) => policy::RestrictionSource::Decision {
            partner: partner.to_string(),
            role: status
                .authority
                .as_ref()
                .filter(|a| &a.partner == partner)
                .map(|a| a.role.into()),
            reason: decision.reason.to_string(),
        },
        _ => policy::RestrictionSource::Default { holder },
    };
    policy::CustomerState::Known {
        state: decision.state.into(),
        source: Some(source),
    }
}

/// The API resource `name` names: a plural, singular or kind, optionally `.group`.
async fn resolve(client: &kube::Client, name: &str) -> anyhow::Result<ApiResource> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("cannot discover the API's resources")?;
    let lower = name.to_ascii_lowercase();
    let (resource, group) = lower
        .split_once('.')
        .map_or((lower.as_str(), None), |(r, g)| (r, Some(g)));
    for api_group in discovery.groups() {
        if group.is_some_and(|g| g != api_group.name()) {
            continue;
        }
        for (ar, _) in api_group.recommended_resources() {
            let kind = ar.kind.to_ascii_lowercase();
            if ar.plural == resource || kind == resource || format!("{kind}s") == resource {
                return Ok(ar);
            }
        }
    }
    anyhow::bail!("the API serves no resource \"{name}\" (kubectl api-resources lists them)")
}

fn verdict_json(operation: policy::Operation, verdict: &policy::Verdict) -> Value {
    match verdict {
        policy::Verdict::Allow => json!({"operation": operation.as_str(), "allowed": true}),
        policy::Verdict::Deny { rule, reason, message } => json!({
            "operation": operation.as_str(), "allowed": false, "rule": rule, "reason": reason, "message": message,
        }),
    }
}

pub async fn why(client: &kube::Client, args: &Args, format: Format) -> anyhow::Result<u8> {
    let matrix = match &args.impact_matrix {
        None => policy::ImpactMatrix::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let matrix: policy::ImpactMatrix =
                serde_yaml_ng::from_str(&text).with_context(|| format!("{}", path.display()))?;
            matrix.validate().with_context(|| format!("{}", path.display()))?;
            matrix
        }
    };
    let namespace = &args.namespace;
    let Some(customer) = owner(client, namespace).await? else {
        let answer = json!({"namespace": namespace, "customer": null, "allowed": true,
            "message": format!("namespace \"{namespace}\" belongs to no customer: purchase-guard does not judge purchases there (unless it runs in strict mode, which refuses creating guarded resources in such namespaces)")});
        if !output::structured(format, &answer)? {
            println!("{}", answer["message"].as_str().unwrap_or_default());
        }
        return Ok(0);
    };
    let name = customer.name_any();
    let state = state_of(&customer);
    // What is asked about: an object (its billing mode, whether it is frozen), or a verb.
    let (subject, mode, frozen) = match &args.target {
        Some(target) => {
            let (kind, object) = target
                .split_once('/')
                .with_context(|| format!("\"{target}\": expected KIND/NAME, such as deployment/web"))?;
            let ar = resolve(client, kind).await?;
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
            let obj = api
                .get_opt(object)
                .await
                .with_context(|| format!("cannot read {target} in {namespace}"))?
                .with_context(|| format!("{target} does not exist in namespace {namespace}"))?;
            let value = serde_json::to_value(&obj)?;
            let mode = policy::billing_mode_of(&value, args.billing_mode).map_err(anyhow::Error::msg)?;
            let frozen = obj.annotations().get(policy::FROZEN_ANNOTATION).cloned();
            (format!("{}/{object}", ar.plural), mode, frozen)
        }
        None => (
            args.resource.clone().unwrap_or_else(|| "resources".into()),
            args.billing_mode,
            None,
        ),
    };
    let asked: Option<BTreeSet<policy::Operation>> = args.verb.as_deref().map(|verb| {
        match verb {
            "create" => [policy::Operation::Purchase],
            "delete" => [policy::Operation::Delete],
            // An update is judged by what it changes; ask for the most a change can be.
            _ => [policy::Operation::ModifySpecifications],
        }
        .into_iter()
        .collect()
    });
    let operations: Vec<(policy::Operation, policy::Verdict)> = policy::Operation::ALL
        .into_iter()
        .map(|op| {
            let verdict = policy::decide_purchase(&matrix, &name, &state, mode, &[op].into_iter().collect());
            (op, verdict)
        })
        .collect();
    let asked_verdict = asked
        .as_ref()
        .map(|ops| policy::decide_purchase(&matrix, &name, &state, mode, ops));
    let state_text = match &state {
        policy::CustomerState::Known { state, .. } => state.as_str().to_string(),
        policy::CustomerState::Unknown { why } => format!("unknown ({why}): every purchase is refused"),
    };
    let decision = customer.status.as_ref().and_then(|s| s.decision.as_ref()).map(|d| {
        json!({
            "restriction": d.restriction.as_ref().map(|r| format!("{}/{}", r.namespace, r.name)),
            "partner": d.partner, "reason": d.reason,
        })
    });
    let answer = json!({
        "namespace": namespace,
        "customer": name,
        "state": state_text,
        "decision": decision,
        "subject": subject,
        "billingMode": mode.as_str(),
        "frozen": frozen.is_some(),
        "operations": operations.iter().map(|(op, v)| verdict_json(*op, v)).collect::<Vec<_>>(),
        "asked": asked_verdict.as_ref().map(|v| json!({
            "verb": args.verb, "allowed": v.is_allowed(),
            "message": match v { policy::Verdict::Deny { message, .. } => Some(message.clone()), _ => None },
        })),
    });
    let refused = asked_verdict.as_ref().is_some_and(|v| !v.is_allowed());
    if output::structured(format, &answer)? {
        return Ok(if refused { super::REFUSED } else { 0 });
    }
    let mut lines = vec![
        ("Namespace", namespace.clone()),
        ("Customer", name.clone()),
        ("State", state_text),
        ("Subject", format!("{subject} ({})", mode.as_str())),
    ];
    if let Some(d) = &decision {
        lines.push((
            "Decision",
            match (d["restriction"].as_str(), d["partner"].as_str()) {
                (Some(r), Some(p)) => format!(
                    "PurchaseRestriction {r} by {p}: {}",
                    d["reason"].as_str().unwrap_or_default()
                ),
                _ => format!("none: {}", d["reason"].as_str().unwrap_or_default()),
            },
        ));
    }
    if frozen.is_some() {
        lines.push((
            "Frozen",
            "yes (R8): whatever would undo the freeze (scaling up, starting, un-suspending) is refused until the customer is unrestricted".into(),
        ));
    }
    if let (Some(verb), Some(v)) = (&args.verb, &asked_verdict) {
        lines.push((
            "Answer",
            match v {
                policy::Verdict::Allow => format!("{verb} is allowed"),
                policy::Verdict::Deny { message, .. } => format!("{verb} is refused: {message}"),
            },
        ));
    }
    output::fields(&lines);
    println!();
    let rows: Vec<Vec<String>> = operations
        .iter()
        .map(|(op, v)| match v {
            policy::Verdict::Allow => vec![op.as_str().into(), "allowed".into(), "-".into()],
            policy::Verdict::Deny { rule, .. } => vec![op.as_str().into(), "refused".into(), rule.to_string()],
        })
        .collect();
    output::table(&["OPERATION", "ANSWER", "RULE"], &rows);
    Ok(if refused { super::REFUSED } else { 0 })
}
