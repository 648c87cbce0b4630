//! `report [-n NAMESPACE]`: the resources purchase-guard's audit found out of line, from the
//! policy reports it writes (OpenReports Report, else wgpolicyk8s.io PolicyReport). Exit code 2
//! when a resource is certainly out of line (a `fail` result).

use super::output::{self, Format};
use crate::controller::MANAGER;
use crate::controller::audit::{CUSTOMER_LABEL, MANAGED_BY_LABEL, ReportFormat};
use anyhow::Context as _;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// Only this namespace's report (default: every namespace).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

/// The report kind the cluster serves, OpenReports first.
async fn served(client: &kube::Client) -> anyhow::Result<Option<ApiResource>> {
    for format in [ReportFormat::Openreports, ReportFormat::Policyreport] {
        let Some((group, version, plural, _)) = format.resource() else {
            continue;
        };
        match crate::controller::freeze::kinds::discover(client, group, version, plural).await {
            Ok(Some(resource)) => return Ok(Some(resource)),
            Ok(None) | Err(kube::Error::Api(_)) => {}
            Err(e) => return Err(e).context("cannot discover the policy report kinds"),
        }
    }
    Ok(None)
}

/// One row per result of the reports, in namespace order.
fn rows_of(reports: &[DynamicObject]) -> Vec<Value> {
    let mut rows = Vec::new();
    for report in reports {
        let namespace = report.namespace().unwrap_or_default();
        let customer = report.labels().get(CUSTOMER_LABEL).cloned().unwrap_or_default();
        for result in report.data["results"].as_array().into_iter().flatten() {
            let resource = &result["resources"][0];
            rows.push(json!({
                "namespace": namespace,
                "customer": customer,
                "result": result["result"],
                "rule": result["properties"]["rule"],
                "finding": result["rule"],
                "resource": format!(
                    "{}/{}",
                    resource["kind"].as_str().unwrap_or("?"),
                    resource["name"].as_str().unwrap_or("?")
                ),
                "message": result["message"],
            }));
        }
        if let Some(left_out) = report.annotations().get(crate::controller::audit::LEFT_OUT_ANNOTATION) {
            eprintln!("{namespace}: {left_out}");
        }
    }
    rows
}

pub async fn report(client: &kube::Client, args: &Args, format: Format) -> anyhow::Result<u8> {
    let Some(resource) = served(client).await? else {
        anyhow::bail!(
            "neither reports.openreports.io nor policyreports.wgpolicyk8s.io is served: install the report CRD purchase-guard is configured for (--reports); the counts are in `kubectl purchase-guard status`"
        );
    };
    let api: Api<DynamicObject> = match &args.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let params = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    let list = api
        .list(&params)
        .await
        .map_err(super::api_error)
        .with_context(|| format!("cannot list {}.{}", resource.plural, resource.group))?;
    let mut reports = list.items;
    reports.sort_by_key(|r| r.namespace());
    let rows = rows_of(&reports);
    let failing = rows.iter().any(|r| r["result"] == "fail");
    let code = if failing { super::REFUSED } else { 0 };
    if output::structured(format, &Value::Array(rows.clone()))? {
        return Ok(code);
    }
    if rows.is_empty() {
        let scope = args
            .namespace
            .as_deref()
            .map_or("any customer namespace".to_string(), |n| format!("namespace {n:?}"));
        println!("Nothing out of line in {scope}.");
        return Ok(code);
    }
    let text = |v: &Value| v.as_str().map_or_else(|| "-".to_string(), str::to_string);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                text(&r["namespace"]),
                text(&r["customer"]),
                text(&r["resource"]),
                text(&r["result"]),
                format!("{} {}", text(&r["rule"]), text(&r["finding"])),
                text(&r["message"]),
            ]
        })
        .collect();
    output::table(
        &["NAMESPACE", "CUSTOMER", "RESOURCE", "RESULT", "RULE", "MESSAGE"],
        &table,
    );
    Ok(code)
}
