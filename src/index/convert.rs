//! Translations from the custom resources (and Kubernetes times) to the policy core's types.

use crate::api::{AssociationModel, CustomerAccount, Partner, PartnerRole, PurchaseRestriction, ResellerDelegation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::ResourceExt;
use purchase_guard_policy as policy;

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

/// A `Partner` as the policy core sees it.
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

/// A `ResellerDelegation` as the policy core sees it.
pub fn delegation(d: &ResellerDelegation) -> policy::Delegation {
    policy::Delegation {
        key: policy::ObjectKey::new(&d.namespace().unwrap_or_default(), &d.name_any()),
        reseller: d.spec.reseller.clone(),
        created: d.metadata.creation_timestamp.as_ref().map(seconds).unwrap_or_default(),
        revoked: d.spec.revocation.is_some(),
    }
}

/// A `CustomerAccount` as the policy core sees it.
pub fn customer(c: &CustomerAccount) -> policy::Customer {
    policy::Customer {
        name: c.name_any(),
        model: match c.spec.association_model {
            AssociationModel::Reseller => policy::AssociationModel::Reseller,
            AssociationModel::Referral | AssociationModel::Direct => policy::AssociationModel::Other,
        },
        reseller: c.spec.reseller.as_deref().map(String::from),
        association: association_of(c),
    }
}

/// The association the customer is in: the one its status numbers when model and reseller
/// are still those; the first (0) when none is recorded yet; changing otherwise.
pub fn association_of(c: &CustomerAccount) -> policy::Association {
    match c.status.as_ref().and_then(|s| s.association.as_ref()) {
        None => policy::Association::Current(0),
        Some(a) if a.model == c.spec.association_model && a.reseller == c.spec.reseller => {
            policy::Association::Current(a.number)
        }
        Some(_) => policy::Association::Changing,
    }
}

/// A `PurchaseRestriction` as the policy core sees it, with what its status recorded.
pub fn decision(d: &PurchaseRestriction) -> policy::Decision {
    let status = d.status.as_ref();
    policy::Decision {
        key: policy::ObjectKey::new(&d.namespace().unwrap_or_default(), &d.name_any()),
        customer: d.spec.customer.clone(),
        state: d.spec.state.into(),
        reason: d.spec.reason.to_string(),
        agreement_accepted: d.spec.agreement_accepted,
        withdrawal: d.spec.withdrawal.as_ref().map(|w| w.reason.clone()),
        generation: d.metadata.generation.unwrap_or(0),
        created: d.metadata.creation_timestamp.as_ref().map(seconds).unwrap_or_default(),
        accepted: status
            .and_then(|s| s.accepted.as_ref())
            .map(|a| policy::AcceptedRecord {
                generation: a.generation,
                state: a.state.into(),
                reason: a.reason.to_string(),
                since: micros(&a.since),
                withdrawn: a.withdrawn,
                association: a.association,
            }),
        rejected_generation: status.and_then(|s| s.rejected_generation),
        first_seen: None,
    }
}
