//! Delegations (R2, R3): which `ResellerDelegation` moves restriction authority from a
//! distributor to one of its resellers, and why the others do not.

use crate::authority::{IssuerError, issuer_of};
use crate::model::{Delegation, Hierarchy, ObjectKey, Partner, Role};
use std::fmt;

/// Why a `ResellerDelegation` does not move authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelegationRejection {
    Issuer(IssuerError),
    /// Only distributors delegate.
    IssuerNotADistributor {
        issuer: String,
    },
    /// The reseller has no `Partner` object.
    UnknownReseller {
        reseller: String,
    },
    /// The named partner is not a reseller.
    NotAReseller {
        partner: String,
    },
    /// The reseller belongs to another distributor.
    NotYourReseller {
        issuer: String,
        reseller: String,
        distributor: String,
    },
    /// An older delegation of the same reseller is the one in force.
    Duplicate {
        of: ObjectKey,
    },
    /// The distributor revoked it (`spec.revocation`).
    Revoked,
}

impl DelegationRejection {
    pub fn reason(&self) -> &'static str {
        match self {
            DelegationRejection::Issuer(IssuerError::NotAPartner { .. }) => "IssuerNotAPartner",
            DelegationRejection::Issuer(IssuerError::Ambiguous { .. }) => "AmbiguousIssuer",
            DelegationRejection::IssuerNotADistributor { .. } => "IssuerNotADistributor",
            DelegationRejection::UnknownReseller { .. } => "UnknownReseller",
            DelegationRejection::NotAReseller { .. } => "NotAReseller",
            DelegationRejection::NotYourReseller { .. } => "NotYourReseller",
            DelegationRejection::Duplicate { .. } => "DuplicateDelegation",
            DelegationRejection::Revoked => "Revoked",
        }
    }
}

impl fmt::Display for DelegationRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelegationRejection::Issuer(e) => e.fmt(f),
            DelegationRejection::IssuerNotADistributor { issuer } => write!(
                f,
                "R2: only a distributor may delegate restriction; partner \"{issuer}\" is a reseller"
            ),
            DelegationRejection::UnknownReseller { reseller } => {
                write!(
                    f,
                    "R2: reseller \"{reseller}\" has no Partner object; check spec.reseller"
                )
            }
            DelegationRejection::NotAReseller { partner } => {
                write!(
                    f,
                    "R2: partner \"{partner}\" is not a reseller; only resellers receive delegations"
                )
            }
            DelegationRejection::NotYourReseller {
                issuer,
                reseller,
                distributor,
            } => write!(
                f,
                "R2: reseller \"{reseller}\" belongs to distributor \"{distributor}\", not to \"{issuer}\"; a distributor may delegate only to its own resellers"
            ),
            DelegationRejection::Duplicate { of } => write!(
                f,
                "R3: the older ResellerDelegation {of} already delegates to this reseller; this one is ignored, delete it"
            ),
            DelegationRejection::Revoked => write!(
                f,
                "R3: the distributor revoked this delegation (spec.revocation): authority over the reseller's customers is back with the distributor"
            ),
        }
    }
}

impl std::error::Error for DelegationRejection {}

/// Checks everything about a delegation except duplicates: issuer, reseller, ownership.
fn check_delegation_parties<'a>(
    hierarchy: &'a Hierarchy,
    delegation: &Delegation,
) -> Result<&'a Partner, DelegationRejection> {
    let issuer = issuer_of(hierarchy, &delegation.key.namespace).map_err(DelegationRejection::Issuer)?;
    if issuer.role != Role::Distributor {
        return Err(DelegationRejection::IssuerNotADistributor {
            issuer: issuer.name.clone(),
        });
    }
    let reseller = hierarchy
        .partner(&delegation.reseller)
        .ok_or_else(|| DelegationRejection::UnknownReseller {
            reseller: delegation.reseller.clone(),
        })?;
    if reseller.role != Role::Reseller {
        return Err(DelegationRejection::NotAReseller {
            partner: reseller.name.clone(),
        });
    }
    if reseller.distributor.as_deref() != Some(issuer.name.as_str()) {
        return Err(DelegationRejection::NotYourReseller {
            issuer: issuer.name.clone(),
            reseller: reseller.name.clone(),
            distributor: reseller.distributor.clone().unwrap_or_default(),
        });
    }
    Ok(issuer)
}

/// The delegation in force for a reseller: the oldest valid one (by creation time, then key).
pub fn active_delegation<'a>(hierarchy: &'a Hierarchy, reseller: &str) -> Option<&'a Delegation> {
    hierarchy
        .delegations
        .iter()
        .filter(|d| d.reseller == reseller && !d.revoked && check_delegation_parties(hierarchy, d).is_ok())
        .min_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)))
}

/// Whether a delegation moves authority (Ok) or why not.
pub fn evaluate_delegation(hierarchy: &Hierarchy, delegation: &Delegation) -> Result<(), DelegationRejection> {
    check_delegation_parties(hierarchy, delegation)?;
    if delegation.revoked {
        return Err(DelegationRejection::Revoked);
    }
    match active_delegation(hierarchy, &delegation.reseller) {
        Some(active) if active.key != delegation.key => Err(DelegationRejection::Duplicate { of: active.key.clone() }),
        _ => Ok(()),
    }
}
