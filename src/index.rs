//! The index layer: the reflector stores of the four kinds, turned into the policy core's plain
//! data. Pure translation: every rule lives in the policy core.

use crate::api::{AssociationModel, CustomerAccount, Partner, PartnerRole, PurchaseRestriction, ResellerDelegation};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use purchase_guard_policy as policy;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The in-memory stores the controllers and the webhooks read, fed by watches.
#[derive(Clone)]
pub struct Stores {
    pub partners: Store<Partner>,
    pub customers: Store<CustomerAccount>,
    pub delegations: Store<ResellerDelegation>,
    pub decisions: Store<PurchaseRestriction>,
    /// customer → its decisions, kept by the decisions' watch.
    pub decisions_by_customer: Arc<DecisionIndex>,
    /// The customers claiming each namespace (spec.namespaces).
    pub customers_by_namespace: Arc<NamespaceIndex>,
}

/// The decisions of each customer. Updated from the watch events *before* the store, so that
/// whoever is triggered by the store finds the entry; lookups go through the store, so an
/// entry the store does not hold (yet, or any more) is skipped.
#[derive(Debug, Default)]
pub struct DecisionIndex(std::sync::RwLock<HashMap<String, HashSet<ObjectRef<PurchaseRestriction>>>>);

impl DecisionIndex {
    /// Follows one watch event.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<PurchaseRestriction>) {
        use kube::runtime::watcher::Event;
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Apply(d) | Event::InitApply(d) => {
                map.entry(d.spec.customer.clone())
                    .or_default()
                    .insert(ObjectRef::from_obj(d));
            }
            Event::Delete(d) => {
                if let Some(set) = map.get_mut(&d.spec.customer) {
                    set.remove(&ObjectRef::from_obj(d));
                    if set.is_empty() {
                        map.remove(&d.spec.customer);
                    }
                }
            }
            Event::Init | Event::InitDone => {}
        }
    }

    fn refs(&self, customer: &str) -> Vec<ObjectRef<PurchaseRestriction>> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        map.get(customer)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The customers claiming each namespace, fed like `DecisionIndex`: from watch events before
/// the store, with lookups checked against the store.
#[derive(Debug, Default)]
pub struct NamespaceIndex(std::sync::RwLock<NamespaceMaps>);

#[derive(Debug, Default)]
struct NamespaceMaps {
    by_namespace: HashMap<String, HashSet<String>>,
    of_customer: HashMap<String, Vec<String>>,
}

impl NamespaceIndex {
    /// Follows one watch event.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<CustomerAccount>) {
        use kube::runtime::watcher::Event;
        let mut maps = self.0.write().unwrap_or_else(|p| p.into_inner());
        let forget = |maps: &mut NamespaceMaps, name: &str| {
            for ns in maps.of_customer.remove(name).unwrap_or_default() {
                if let Some(set) = maps.by_namespace.get_mut(&ns) {
                    set.remove(name);
                    if set.is_empty() {
                        maps.by_namespace.remove(&ns);
                    }
                }
            }
        };
        match event {
            Event::Apply(c) | Event::InitApply(c) => {
                let name = c.name_any();
                forget(&mut maps, &name);
                for ns in &c.spec.namespaces {
                    maps.by_namespace.entry(ns.clone()).or_default().insert(name.clone());
                }
                maps.of_customer.insert(name, c.spec.namespaces.clone());
            }
            Event::Delete(c) => forget(&mut maps, &c.name_any()),
            Event::Init | Event::InitDone => {}
        }
    }

    fn candidates(&self, namespace: &str) -> Vec<String> {
        let maps = self.0.read().unwrap_or_else(|p| p.into_inner());
        maps.by_namespace
            .get(namespace)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

/// The policy core's time (microseconds) of a Kubernetes time.
pub fn seconds(t: &Time) -> policy::Timestamp {
    policy::Timestamp(t.0.as_microsecond())
}

/// The policy core's time of a Kubernetes micro time.
pub fn micros(t: &MicroTime) -> policy::Timestamp {
    policy::Timestamp(t.0.as_microsecond())
}

/// A Kubernetes micro time from the policy core's time.
pub fn micro_time(t: policy::Timestamp) -> MicroTime {
    MicroTime(jiff::Timestamp::from_microsecond(t.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

pub fn partner(p: &Partner) -> policy::Partner {
    policy::Partner {
        name: p.name_any(),
        role: match p.spec.role {
            PartnerRole::Distributor => policy::Role::Distributor,
            PartnerRole::Reseller => policy::Role::Reseller,
        },
        distributor: p.spec.distributor.clone(),
        namespace: p.spec.namespace.clone(),
    }
}

pub fn delegation(d: &ResellerDelegation) -> policy::Delegation {
    policy::Delegation {
        key: policy::ObjectKey::new(&d.namespace().unwrap_or_default(), &d.name_any()),
        reseller: d.spec.reseller.clone(),
        created: d.metadata.creation_timestamp.as_ref().map(seconds).unwrap_or_default(),
    }
}

pub fn customer(c: &CustomerAccount) -> policy::Customer {
    policy::Customer {
        name: c.name_any(),
        model: match c.spec.association_model {
            AssociationModel::Reseller => policy::AssociationModel::Reseller,
            AssociationModel::Referral | AssociationModel::Direct => policy::AssociationModel::Other,
        },
        reseller: c.spec.reseller.clone(),
    }
}

pub fn decision(d: &PurchaseRestriction) -> policy::Decision {
    let status = d.status.as_ref();
    policy::Decision {
        key: policy::ObjectKey::new(&d.namespace().unwrap_or_default(), &d.name_any()),
        customer: d.spec.customer.clone(),
        state: d.spec.state.into(),
        reason: d.spec.reason.clone(),
        agreement_accepted: d.spec.agreement_accepted,
        generation: d.metadata.generation.unwrap_or(0),
        created: d.metadata.creation_timestamp.as_ref().map(seconds).unwrap_or_default(),
        accepted: status
            .and_then(|s| s.accepted.as_ref())
            .map(|a| policy::AcceptedRecord {
                generation: a.generation,
                state: a.state.into(),
                reason: a.reason.clone(),
                since: micros(&a.since),
            }),
        rejected_generation: status.and_then(|s| s.rejected_generation),
    }
}

/// A reader over `objects`, as a reflector holds them after a list.
fn store_of<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = kube::runtime::reflector::store::<K>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    reader
}

impl Stores {
    /// Stores and indexes holding these objects, without watches (for tests and benchmarks of
    /// what reads the caches).
    pub fn from_objects(
        partners: Vec<Partner>,
        customers: Vec<CustomerAccount>,
        delegations: Vec<ResellerDelegation>,
        decisions: Vec<PurchaseRestriction>,
    ) -> Self {
        use kube::runtime::watcher::Event;
        let decisions_by_customer = Arc::new(DecisionIndex::default());
        for d in &decisions {
            decisions_by_customer.observe(&Event::InitApply(d.clone()));
        }
        let customers_by_namespace = Arc::new(NamespaceIndex::default());
        for c in &customers {
            customers_by_namespace.observe(&Event::InitApply(c.clone()));
        }
        Stores {
            partners: store_of(partners),
            customers: store_of(customers),
            delegations: store_of(delegations),
            decisions: store_of(decisions),
            decisions_by_customer,
            customers_by_namespace,
        }
    }

    /// The partner hierarchy: every partner and every delegation.
    pub fn hierarchy(&self) -> policy::Hierarchy {
        policy::Hierarchy {
            partners: self.partners.state().iter().map(|p| partner(p)).collect(),
            delegations: self.delegations.state().iter().map(|d| delegation(d)).collect(),
        }
    }

    /// The decisions naming a customer, in a stable order.
    pub fn decisions_of(&self, customer: &str) -> Vec<Arc<PurchaseRestriction>> {
        let mut ds: Vec<Arc<PurchaseRestriction>> = self
            .decisions_by_customer
            .refs(customer)
            .iter()
            .filter_map(|r| self.decisions.get(r))
            .filter(|d| d.spec.customer == customer)
            .collect();
        ds.sort_by_key(|d| (d.namespace().unwrap_or_default(), d.name_any()));
        ds
    }

    /// The decisions naming any of `customers`, in one pass over the decisions.
    pub fn decisions_of_customers<'a>(
        &self,
        customers: impl IntoIterator<Item = &'a Arc<CustomerAccount>>,
    ) -> Vec<Arc<PurchaseRestriction>> {
        let names: std::collections::HashSet<String> = customers.into_iter().map(|c| c.name_any()).collect();
        self.decisions
            .state()
            .into_iter()
            .filter(|d| names.contains(&d.spec.customer))
            .collect()
    }

    /// The customers whose spec.namespaces list `namespace` (normally at most one), sorted.
    pub fn customers_in_namespace(&self, namespace: &str) -> Vec<Arc<CustomerAccount>> {
        let mut found: Vec<Arc<CustomerAccount>> = self
            .customers_by_namespace
            .candidates(namespace)
            .iter()
            .filter_map(|name| self.customer(name))
            .filter(|c| c.spec.namespaces.iter().any(|n| n == namespace))
            .collect();
        found.sort_by_key(|c| c.name_any());
        found
    }

    pub fn customer(&self, name: &str) -> Option<Arc<CustomerAccount>> {
        self.customers.get(&ObjectRef::new(name))
    }

    /// Evaluates a customer with the policy core: the hierarchy, its decisions, the time.
    pub fn evaluate(
        &self,
        customer: &CustomerAccount,
        now: policy::Timestamp,
    ) -> (policy::CustomerEvaluation, Vec<Arc<PurchaseRestriction>>) {
        let decisions = self.decisions_of(&customer.name_any());
        let core: Vec<policy::Decision> = decisions.iter().map(|d| decision(d)).collect();
        (
            policy::evaluate_customer(&self.hierarchy(), &self::customer(customer), &core, now),
            decisions,
        )
    }

    /// The customers of a reseller.
    pub fn customers_of_reseller(&self, reseller: &str) -> Vec<Arc<CustomerAccount>> {
        self.customers
            .state()
            .into_iter()
            .filter(|c| c.spec.reseller.as_deref() == Some(reseller))
            .collect()
    }

    /// The customers a partner relates to: its own (a reseller) or its resellers' (a distributor).
    pub fn customers_of_partner(&self, partner: &str) -> Vec<Arc<CustomerAccount>> {
        let resellers: Vec<String> = self
            .partners
            .state()
            .iter()
            .filter(|p| p.spec.distributor.as_deref() == Some(partner))
            .map(|p| p.name_any())
            .collect();
        self.customers
            .state()
            .into_iter()
            .filter(|c| {
                c.spec
                    .reseller
                    .as_deref()
                    .is_some_and(|r| r == partner || resellers.iter().any(|x| x == r))
            })
            .collect()
    }
}
