//! `restrict` and `unrestrict`: write the declarative PurchaseRestriction of the partner that
//! acts (the customer's authority holder unless `--as-partner` says otherwise), like
//! `kubectl create`: one decision per partner and customer, changed in place when it exists.
//! With `--dry-run`, print it instead (to commit it to Git).

use super::output::Format;
use super::status::get_customer;
use crate::api::{Partner, PurchaseRestriction, RestrictionState};
use anyhow::Context as _;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// The customer.
    customer: String,
    /// Why, written by the operator (R4): one line of visible text.
    #[arg(long)]
    reason: String,
    /// Also freeze the customer's pay-per-use resources (RestrictedAndFrozen, R8); needs
    /// --accept-agreement.
    #[arg(long)]
    freeze: bool,
    /// Accept the Agreement for Partners to Manage Customer Budgets (R6), which freezing needs.
    #[arg(long)]
    accept_agreement: bool,
    /// The partner that acts (default: the customer's authority holder).
    #[arg(long, conflicts_with = "namespace")]
    as_partner: Option<String>,
    /// The acting partner's namespace: the decision is written there, and nothing
    /// cluster-scoped is read (what the partner roles of the chart allow).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// The PurchaseRestriction's name when one is created (default: the customer's name).
    #[arg(long)]
    name: Option<String>,
    /// The partner's current verification code, when it requires one (R5).
    #[arg(long)]
    verification_code: Option<String>,
    /// Write nothing: print the PurchaseRestriction (YAML unless -o json).
    #[arg(long)]
    dry_run: bool,
}

/// The namespace of the partner that acts: `--as-partner`, or the customer's authority holder.
async fn partner_namespace(client: &kube::Client, args: &Args) -> anyhow::Result<(String, String)> {
    let partner_name = match &args.as_partner {
        Some(p) => p.clone(),
        None => get_customer(client, &args.customer)
            .await?
            .status
            .as_ref()
            .and_then(|s| s.authority.as_ref())
            .map(|a| a.partner.to_string())
            .with_context(|| {
                format!(
                    "customer \"{}\" has no authority holder in its status; name the partner with --as-partner",
                    args.customer
                )
            })?,
    };
    let partners: Api<Partner> = Api::all(client.clone());
    let partner = partners
        .get_opt(&partner_name)
        .await
        .map_err(super::api_error)
        .context("cannot read Partners (or pass the partner's namespace with -n)")?
        .with_context(|| format!("partner \"{partner_name}\" has no Partner object"))?;
    Ok((partner.spec.namespace.clone(), partner_name))
}

pub async fn restrict(client: &kube::Client, args: &Args, lift: bool, format: Format) -> anyhow::Result<u8> {
    let (state, agreement) = match (lift, args.freeze) {
        (true, true) => anyhow::bail!("--freeze: unrestrict lifts the freeze too; it takes no --freeze"),
        (true, false) => (RestrictionState::Unrestricted, false),
        (false, false) => (RestrictionState::Restricted, false),
        (false, true) if !args.accept_agreement => anyhow::bail!(
            "--freeze needs --accept-agreement: freezing resources requires accepting the Agreement for Partners to Manage Customer Budgets (R6)"
        ),
        (false, true) => (RestrictionState::RestrictedAndFrozen, true),
    };
    let (namespace, partner_name) = match &args.namespace {
        Some(ns) => (ns.clone(), format!("the partner acting in {ns}")),
        None => partner_namespace(client, args).await?,
    };
    let api: Api<PurchaseRestriction> = Api::namespaced(client.clone(), &namespace);
    // The partner's decision for this customer, if it has one: changed in place.
    let existing = if args.dry_run && args.name.is_some() {
        None
    } else {
        api.list(&ListParams::default())
            .await
            .map_err(super::api_error)
            .with_context(|| format!("cannot list PurchaseRestrictions in {namespace}"))?
            .items
            .into_iter()
            .find(|d| d.spec.customer == args.customer)
    };
    let name = existing
        .as_ref()
        .map(|d| d.name_any())
        .or_else(|| args.name.clone())
        .unwrap_or_else(|| args.customer.clone());
    let mut annotations = serde_json::Map::new();
    if let Some(code) = &args.verification_code {
        annotations.insert(purchase_guard_policy::verification::CODE_ANNOTATION.into(), json!(code));
    }
    let mut spec = json!({"customer": args.customer, "state": state, "reason": args.reason,
                          "agreementAccepted": agreement});
    if existing.as_ref().is_some_and(|d| d.spec.withdrawal.is_some()) {
        // Putting a withdrawn decision back in force is a new operation with its new reason.
        spec["withdrawal"] = serde_json::Value::Null;
    }
    let manifest = json!({
        "apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    if args.dry_run {
        let mut printed = manifest.clone();
        if let Some(s) = printed["spec"].as_object_mut() {
            s.retain(|_, v| !v.is_null());
        }
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&printed)?),
            _ => print!("{}", serde_yaml_ng::to_string(&printed)?),
        }
        return Ok(0);
    }
    let written = match existing {
        Some(_) => {
            let patch = json!({"metadata": {"annotations": annotations}, "spec": manifest["spec"]});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(super::api_error)
                .with_context(|| format!("cannot change PurchaseRestriction {namespace}/{name}"))?
        }
        None => {
            let mut object = manifest.clone();
            object["metadata"]["annotations"] = json!(annotations);
            if let Some(s) = object["spec"].as_object_mut() {
                s.retain(|_, v| !v.is_null());
            }
            let decision: PurchaseRestriction = serde_json::from_value(object)?;
            api.create(&PostParams::default(), &decision)
                .await
                .map_err(super::api_error)
                .with_context(|| format!("cannot create PurchaseRestriction {namespace}/{name}"))?
        }
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&written)?),
        Format::Yaml => print!("{}", serde_yaml_ng::to_string(&written)?),
        Format::Table => println!(
            "purchaserestriction.purchaseguard.io/{name} in {namespace}: {} by {partner_name}",
            super::status::state_word(state)
        ),
    }
    Ok(0)
}
