//! Each trigger mapping, over stores holding two distributors, three resellers, three
//! customers, three decisions and three delegations.

use super::*;
use serde_json::json;
use std::collections::BTreeSet;

fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a valid test object")
}

fn partner(name: &str, distributor: Option<&str>) -> Partner {
    let role = if distributor.is_some() {
        "Reseller"
    } else {
        "Distributor"
    };
    let mut spec = json!({"role": role, "namespace": format!("ns-{name}")});
    if let Some(d) = distributor {
        spec["distributor"] = json!(d);
    }
    object(json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "Partner",
                  "metadata": {"name": name}, "spec": spec}))
}

fn customer(name: &str, reseller: &str) -> CustomerAccount {
    object(
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "CustomerAccount",
                  "metadata": {"name": name},
                  "spec": {"associationModel": "Reseller", "reseller": reseller, "namespaces": [format!("{name}-prod")]}}),
    )
}

fn decision(namespace: &str, customer: &str) -> PurchaseRestriction {
    object(
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "PurchaseRestriction",
                  "metadata": {"name": customer, "namespace": namespace},
                  "spec": {"customer": customer, "state": "Restricted", "reason": "overdue"}}),
    )
}

fn delegation(namespace: &str, name: &str, reseller: &str) -> ResellerDelegation {
    object(
        json!({"apiVersion": "purchaseguard.io/v1alpha1", "kind": "ResellerDelegation",
                  "metadata": {"name": name, "namespace": namespace},
                  "spec": {"reseller": reseller}}),
    )
}

fn stores() -> Stores {
    Stores::from_objects(
        vec![
            partner("dist-a", None),
            partner("dist-b", None),
            partner("r1", Some("dist-a")),
            partner("r2", Some("dist-a")),
            partner("r3", Some("dist-b")),
        ],
        vec![customer("c1", "r1"), customer("c2", "r2"), customer("c3", "r3")],
        vec![
            delegation("ns-dist-a", "d1", "r1"),
            delegation("ns-dist-a", "d2", "r1"),
            delegation("ns-dist-b", "d3", "r3"),
        ],
        vec![
            decision("ns-dist-a", "c1"),
            decision("ns-r1", "c1"),
            decision("ns-dist-b", "c3"),
        ],
    )
}

/// The `namespace/name` (or `name`) of each reference, sorted and without repeats.
fn names<K: Resource<DynamicType = ()>>(refs: Vec<ObjectRef<K>>) -> BTreeSet<String> {
    refs.into_iter()
        .map(|r| match r.namespace {
            Some(ns) => format!("{ns}/{}", r.name),
            None => r.name,
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_decision_reconciles_its_customer_and_the_decisions_beside_it() {
    let s = stores();
    let by_reseller = decision("ns-r1", "c1");
    assert_eq!(
        customer_of_decision(&s, &by_reseller).map(|r| r.name),
        Some("c1".into())
    );
    assert_eq!(customer_of_decision(&s, &decision("ns-r1", "ghost")), None);
    assert_eq!(
        names(decisions_beside(&s, &by_reseller)),
        set(&["ns-dist-a/c1", "ns-r1/c1"])
    );
}

#[test]
fn a_delegation_reconciles_the_resellers_customers_decisions_delegations_and_the_reseller() {
    let s = stores();
    let d1 = delegation("ns-dist-a", "d1", "r1");
    assert_eq!(names(customers_of_delegation(&s, &d1)), set(&["c1"]));
    assert_eq!(
        names(decisions_of_delegation(&s, &d1)),
        set(&["ns-dist-a/c1", "ns-r1/c1"])
    );
    assert_eq!(
        names(delegations_of_reseller(&s, &d1)),
        set(&["ns-dist-a/d1", "ns-dist-a/d2"])
    );
    assert_eq!(names(reseller_of_delegation(&s, &d1)), set(&["r1"]));
    // A delegation to a reseller without customers reaches no customer.
    let to_r2 = delegation("ns-dist-a", "d4", "r2");
    assert_eq!(names(decisions_of_delegation(&s, &to_r2)), set(&[]));
}

#[test]
fn a_partner_reconciles_what_depends_on_it() {
    let s = stores();
    let dist_a = partner("dist-a", None);
    assert_eq!(names(customers_of_partner(&s, &dist_a)), set(&["c1", "c2"]));
    assert_eq!(names(resellers_of_partner(&s, &dist_a)), set(&["r1", "r2"]));
    assert_eq!(
        names(decisions_of_partner(&s, &dist_a)),
        set(&["ns-dist-a/c1", "ns-r1/c1"])
    );
    let r3 = partner("r3", Some("dist-b"));
    assert_eq!(names(customers_of_partner(&s, &r3)), set(&["c3"]));
    assert_eq!(names(resellers_of_partner(&s, &r3)), set(&[]));
    assert_eq!(names(decisions_of_partner(&s, &r3)), set(&["ns-dist-b/c3"]));
    assert_eq!(names(delegations_of_partner(&s, &r3)).len(), 3);
}

#[test]
fn a_customer_reconciles_its_decisions_and_a_namespace_its_partners() {
    let s = stores();
    assert_eq!(
        names(decisions_of_customer(&s, &customer("c1", "r1"))),
        set(&["ns-dist-a/c1", "ns-r1/c1"])
    );
    assert_eq!(names(decisions_of_customer(&s, &customer("c2", "r2"))), set(&[]));
    let mut ns = Namespace::default();
    ns.metadata.name = Some("ns-r1".into());
    assert_eq!(names(partners_in_namespace(&s, &ns)), set(&["r1"]));
    ns.metadata.name = Some("nobody".into());
    assert_eq!(names(partners_in_namespace(&s, &ns)), set(&[]));
}
