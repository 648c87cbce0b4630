//! `status` and `history`: what purchase-guard wrote on the customers.

use super::output::{self, Format};
use crate::api::{CustomerAccount, CustomerAccountStatus, RestrictionState};
use anyhow::Context as _;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

/// A state by its API name: `RestrictedAndFrozen`, ...
pub fn state_word(state: RestrictionState) -> &'static str {
    purchase_guard_policy::RestrictionState::from(state).as_str()
}

/// Whether purchase-guard's status describes the customer as it is now.
pub fn is_current(customer: &CustomerAccount) -> bool {
    customer.status.as_ref().and_then(|s| s.observed_generation) == customer.metadata.generation
}

pub async fn get_customer(client: &kube::Client, name: &str) -> anyhow::Result<CustomerAccount> {
    let api: Api<CustomerAccount> = Api::all(client.clone());
    match api.get_opt(name).await.context("cannot read CustomerAccounts")? {
        Some(c) => Ok(c),
        None => anyhow::bail!("customer \"{name}\" has no CustomerAccount (kubectl get customeraccounts lists them)"),
    }
}

/// The customer as a JSON summary (the `-o json|yaml` output of `status`).
fn summary(customer: &CustomerAccount) -> Value {
    let status = customer.status.clone().unwrap_or_default();
    let decision = status.decision.as_ref();
    let last = status.history.last();
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| json!({"status": c.status, "reason": c.reason, "message": c.message}))
    };
    json!({
        "customer": customer.name_any(),
        "reseller": customer.spec.reseller,
        "current": is_current(customer),
        "authority": status.authority.as_ref().map(|a| json!({
            "partner": a.partner,
            "role": format!("{:?}", a.role),
            "delegation": a.delegation.as_ref().map(|d| format!("{}/{}", d.namespace, d.name)),
        })),
        "state": decision.map(|d| state_word(d.state)),
        "decision": decision.and_then(|d| d.restriction.as_ref()).map(|r| format!("{}/{}", r.namespace, r.name)),
        "partner": decision.and_then(|d| d.partner.clone()),
        "reason": decision.map(|d| d.reason.clone()),
        "since": decision.and_then(|d| d.since.as_ref()).map(|t| t.0.to_string()),
        "by": last.and_then(|l| l.user.clone()),
        "freeze": status.freeze.as_ref().map(|f| json!({
            "since": f.since.0.to_string(),
            "retentionEnds": f.retention_ends.0.to_string(),
            "unfrozen": f.unfrozen.as_ref().map(|t| t.0.to_string()),
            "frozen": f.frozen,
            "releaseDue": f.release_due,
            "released": f.released,
        })),
        "guardedNamespaces": status.guarded_namespaces,
        "outOfLine": status.audit.as_ref().map(|a| json!({"failures": a.failures, "warnings": a.warnings})),
        "ready": condition("Ready"),
        "purchaseRestricted": condition("PurchaseRestricted"),
        "resourcesFrozen": condition("ResourcesFrozen"),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn status(client: &kube::Client, customer: Option<&str>, format: Format) -> anyhow::Result<u8> {
    let Some(name) = customer else {
        let api: Api<CustomerAccount> = Api::all(client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .context("cannot list CustomerAccounts")?;
        let all: Vec<Value> = list.items.iter().map(summary).collect();
        if output::structured(format, &Value::Array(all.clone()))? {
            return Ok(0);
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|s| {
                vec![
                    text(&s["customer"]),
                    text(&s["authority"]["partner"]),
                    text(&s["state"]),
                    text(&s["decision"]),
                    text(&s["since"]),
                    text(&s["by"]),
                    if s["freeze"].is_object() && s["freeze"]["unfrozen"].is_null() {
                        format!("until {}", text(&s["freeze"]["retentionEnds"]))
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        output::table(
            &["CUSTOMER", "AUTHORITY", "STATE", "DECISION", "SINCE", "BY", "FROZEN"],
            &rows,
        );
        return Ok(0);
    };
    let customer = get_customer(client, name).await?;
    let s = summary(&customer);
    if output::structured(format, &s)? {
        return Ok(0);
    }
    let authority = match &s["authority"] {
        Value::Null => "nobody: partners cannot restrict this customer (not in the Reseller model)".to_string(),
        a => match &a["delegation"] {
            Value::Null => format!("{} ({})", text(&a["partner"]), text(&a["role"])),
            d => format!(
                "{} ({}, by delegation {})",
                text(&a["partner"]),
                text(&a["role"]),
                text(d)
            ),
        },
    };
    let decision = match &s["decision"] {
        Value::Null => "none: the R1 default applies".to_string(),
        d => format!("PurchaseRestriction {} by {}", text(d), text(&s["partner"])),
    };
    let freeze = match &s["freeze"] {
        Value::Null => "no".to_string(),
        f if !f["unfrozen"].is_null() => format!("unfrozen at {}", text(&f["unfrozen"])),
        f => format!(
            "since {}, {} resources; retention ends {}",
            text(&f["since"]),
            text(&f["frozen"]),
            text(&f["retentionEnds"])
        ),
    };
    let mut lines = vec![
        ("Customer", text(&s["customer"])),
        ("Reseller", text(&s["reseller"])),
        ("Authority", authority),
        ("State", text(&s["state"])),
        ("Decision", decision),
        ("Reason", text(&s["reason"])),
        ("Since", text(&s["since"])),
        ("By", text(&s["by"])),
        ("Frozen", freeze),
        (
            "Out of line",
            match &s["outOfLine"] {
                Value::Null => "not audited yet".to_string(),
                a => format!(
                    "{} failures, {} warnings (kubectl purchase-guard report)",
                    text(&a["failures"]),
                    text(&a["warnings"])
                ),
            },
        ),
        (
            "Namespaces",
            s["guardedNamespaces"]
                .as_array()
                .map(|n| n.iter().map(text).collect::<Vec<_>>().join(", "))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    if !is_current(&customer) {
        lines.push((
            "Warning",
            "purchase-guard has not reconciled this generation yet; this may be out of date".into(),
        ));
    }
    output::fields(&lines);
    Ok(0)
}

pub async fn history(client: &kube::Client, name: &str, format: Format) -> anyhow::Result<u8> {
    let customer = get_customer(client, name).await?;
    let status: CustomerAccountStatus = customer.status.clone().unwrap_or_default();
    let entries: Vec<Value> = status
        .history
        .iter()
        .map(|h| {
            json!({
                "time": h.time.0.to_string(),
                "state": state_word(h.state),
                "partner": h.partner,
                "user": h.user,
                "reason": h.reason,
                "withdrawn": h.withdrawn.as_ref().map(|w| format!("{}/{}", w.namespace, w.name)),
            })
        })
        .collect();
    if output::structured(format, &Value::Array(entries.clone()))? {
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                text(&e["time"]),
                text(&e["state"]),
                text(&e["partner"]),
                text(&e["user"]),
                match &e["withdrawn"] {
                    Value::Null => text(&e["reason"]),
                    w => format!("{} (withdrew {})", text(&e["reason"]), text(w)),
                },
            ]
        })
        .collect();
    output::table(&["TIME", "STATE", "PARTNER", "BY", "REASON"], &rows);
    Ok(0)
}
