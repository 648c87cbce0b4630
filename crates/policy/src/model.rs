//! Plain data the policy core reasons about. Nothing here knows about Kubernetes objects;
//! the shells translate custom resources into these types.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Microseconds since the Unix epoch. The core never reads a clock: callers pass time in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

/// The role a partner plays in the hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A tier-1 partner that manages resellers.
    Distributor,
    /// A tier-2 partner attached to exactly one distributor.
    Reseller,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Distributor => "distributor",
            Role::Reseller => "reseller",
        })
    }
}

/// A partner: the name of its `Partner` object, its role, its distributor (resellers only) and
/// the namespace in which it acts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub name: String,
    pub role: Role,
    /// The distributor of a reseller; `None` for distributors.
    pub distributor: Option<String>,
    /// The namespace whose objects are this partner's acts.
    pub namespace: String,
}

impl Partner {
    pub fn distributor(name: &str, namespace: &str) -> Self {
        Partner {
            name: name.into(),
            role: Role::Distributor,
            distributor: None,
            namespace: namespace.into(),
        }
    }

    pub fn reseller(name: &str, distributor: &str, namespace: &str) -> Self {
        Partner {
            name: name.into(),
            role: Role::Reseller,
            distributor: Some(distributor.into()),
            namespace: namespace.into(),
        }
    }
}

/// Where a namespaced object lives and what it is called.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A `ResellerDelegation`: issued from a distributor's namespace, naming a reseller (R2, R3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub key: ObjectKey,
    pub reseller: String,
    /// Creation time; the oldest of duplicate delegations is the one accepted.
    pub created: Timestamp,
    /// Revoked (`spec.revocation`): moves no authority, and is no duplicate of a newer one.
    pub revoked: bool,
}

/// How a customer is associated with partners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssociationModel {
    /// Associated with one reseller and, through it, with that reseller's distributor.
    Reseller,
    /// Any other model (referral, direct...): partners cannot restrict such customers.
    Other,
}

/// A customer account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub model: AssociationModel,
    /// The reseller the customer is associated with (Reseller model).
    pub reseller: Option<String>,
    /// Which of its associations the customer is in: decisions accepted under another one no
    /// longer apply (a new association starts from R1).
    pub association: Association,
}

/// The association a customer is in, as the controller numbers them: each change of model or
/// reseller starts a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Association {
    /// The association numbered so (0: the first one recorded).
    Current(u64),
    /// The model or reseller changed and the new association is not numbered yet: no decision
    /// applies until it is (the customer is under R1 meanwhile).
    Changing,
}

impl Customer {
    pub fn of_reseller(name: &str, reseller: &str) -> Self {
        Customer {
            name: name.into(),
            model: AssociationModel::Reseller,
            reseller: Some(reseller.into()),
            association: Association::Current(0),
        }
    }

    pub fn other_model(name: &str) -> Self {
        Customer {
            name: name.into(),
            model: AssociationModel::Other,
            reseller: None,
            association: Association::Current(0),
        }
    }
}

/// The state a decision asks for (R6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RestrictionState {
    /// Restrict Purchase.
    Restricted,
    /// Restrict Purchase and Freeze Resources (needs the agreement, R6, R8).
    RestrictedAndFrozen,
    /// Unrestrict Purchase (and unfreeze, R9).
    Unrestricted,
}

impl RestrictionState {
    pub const ALL: [RestrictionState; 3] = [
        RestrictionState::Restricted,
        RestrictionState::RestrictedAndFrozen,
        RestrictionState::Unrestricted,
    ];

    /// Whether purchases are blocked in this state.
    pub fn restricts_purchases(self) -> bool {
        !matches!(self, RestrictionState::Unrestricted)
    }

    /// Whether pay-per-use resources are frozen in this state (R8).
    pub fn freezes_resources(self) -> bool {
        matches!(self, RestrictionState::RestrictedAndFrozen)
    }

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RestrictionState::Restricted => "Restricted",
            RestrictionState::RestrictedAndFrozen => "RestrictedAndFrozen",
            RestrictionState::Unrestricted => "Unrestricted",
        }
    }
}

impl fmt::Display for RestrictionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content of a decision that was accepted once: kept so that a standing decision stays
/// in force exactly as it was accepted, whatever happens to the object afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedRecord {
    /// The `metadata.generation` that was accepted.
    pub generation: i64,
    pub state: RestrictionState,
    pub reason: String,
    /// When this content was accepted; the newest accepted decision is the one in force.
    pub since: Timestamp,
    /// The accepted content is a withdrawal: `reason` is the withdrawal's, and the decision is
    /// not in force.
    #[serde(default)]
    pub withdrawn: bool,
    /// The customer's association it was accepted under ([`Association::Current`]).
    #[serde(default)]
    pub association: u64,
}

/// A `PurchaseRestriction`: a partner's standing decision about one customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The issuer is the partner acting in `key.namespace`.
    pub key: ObjectKey,
    pub customer: String,
    pub state: RestrictionState,
    pub reason: String,
    pub agreement_accepted: bool,
    /// The reason of its withdrawal, when it is withdrawn (`spec.withdrawal.reason`).
    #[serde(default)]
    pub withdrawal: Option<String>,
    pub generation: i64,
    pub created: Timestamp,
    /// What was accepted of this decision before, as recorded in its status.
    pub accepted: Option<AcceptedRecord>,
    /// The generation judged not accepted before, as recorded in its status. A generation is
    /// judged once: what was made without authority stays ignored even if authority arrives
    /// later, until the decision is changed again.
    pub rejected_generation: Option<i64>,
    /// When this generation was first judged, if it was before (by this process, and its
    /// acceptance is not recorded yet): the time an acceptance is stamped with, so that every
    /// evaluation until the record is written gives the same one. `None`: now.
    #[serde(default)]
    pub first_seen: Option<Timestamp>,
}

/// Everything the core needs to know about the partner hierarchy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub partners: Vec<Partner>,
    pub delegations: Vec<Delegation>,
}

impl Hierarchy {
    pub fn partner(&self, name: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.name == name)
    }
}
