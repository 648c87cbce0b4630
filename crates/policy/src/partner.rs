//! Whether a partner can act: its namespace exists and, for a reseller, its distributor is a
//! known distributor (R2).

use crate::model::{Hierarchy, Partner, Role};
use std::fmt;

/// Why a partner cannot act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartnerNotReady {
    /// The namespace the partner acts in does not exist.
    NamespaceMissing { namespace: String },
    /// A reseller's distributor has no `Partner` object with role Distributor.
    DistributorMissing { distributor: String },
}

impl PartnerNotReady {
    /// A CamelCase reason for the `Ready` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            PartnerNotReady::NamespaceMissing { .. } => "NamespaceMissing",
            PartnerNotReady::DistributorMissing { .. } => "DistributorMissing",
        }
    }
}

impl fmt::Display for PartnerNotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartnerNotReady::NamespaceMissing { namespace } => write!(
                f,
                "namespace \"{namespace}\" does not exist; create it for this partner to act"
            ),
            PartnerNotReady::DistributorMissing { distributor } => write!(
                f,
                "distributor \"{distributor}\" has no Partner object with role Distributor"
            ),
        }
    }
}

impl std::error::Error for PartnerNotReady {}

/// Whether `partner` can act: `namespace_exists` says whether its `spec.namespace` exists; a
/// reseller naming a distributor needs that distributor in the hierarchy with role
/// Distributor. (A reseller naming none is refused by the CRD's validation.)
pub fn partner_readiness(
    hierarchy: &Hierarchy,
    partner: &Partner,
    namespace_exists: bool,
) -> Result<(), PartnerNotReady> {
    if !namespace_exists {
        return Err(PartnerNotReady::NamespaceMissing {
            namespace: partner.namespace.clone(),
        });
    }
    if partner.role == Role::Reseller
        && let Some(distributor) = &partner.distributor
        && hierarchy
            .partner(distributor)
            .is_none_or(|p| p.role != Role::Distributor)
    {
        return Err(PartnerNotReady::DistributorMissing {
            distributor: distributor.clone(),
        });
    }
    Ok(())
}
