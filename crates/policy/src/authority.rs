//! Who may restrict whom: issuers and the authority holder of a customer (R2, R3). The
//! delegations that move authority are judged in [`crate::delegation`].

use crate::delegation::active_delegation;
use crate::model::{AssociationModel, Customer, Hierarchy, ObjectKey, Partner, Role};
use std::fmt;

/// The partner holding restriction authority over a customer (R2, R3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityHolder {
    /// The holder's `Partner` name.
    pub partner: String,
    pub role: Role,
    /// The customer's reseller.
    pub reseller: String,
    /// That reseller's distributor.
    pub distributor: String,
    /// The delegation that gave authority to the reseller, if any.
    pub delegation: Option<ObjectKey>,
}

/// Why nobody holds authority over a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoAuthority {
    /// The customer is not in the Reseller model: partners cannot restrict it.
    NotInResellerModel,
    /// The customer is in the Reseller model but names no reseller.
    NoReseller,
    /// The named reseller has no `Partner` object.
    UnknownReseller { reseller: String },
    /// The named partner is not a reseller.
    NotAReseller { partner: String },
    /// The reseller's distributor has no `Partner` object (or is not a distributor).
    UnknownDistributor { reseller: String, distributor: String },
}

impl NoAuthority {
    /// A CamelCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            NoAuthority::NotInResellerModel => "NotInResellerModel",
            NoAuthority::NoReseller => "NoReseller",
            NoAuthority::UnknownReseller { .. } => "UnknownReseller",
            NoAuthority::NotAReseller { .. } => "NotAReseller",
            NoAuthority::UnknownDistributor { .. } => "UnknownDistributor",
        }
    }
}

impl fmt::Display for NoAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoAuthority::NotInResellerModel => {
                f.write_str("the customer is not in the Reseller model, so no partner may restrict it (R2)")
            }
            NoAuthority::NoReseller => {
                f.write_str("the customer is in the Reseller model but names no reseller (spec.reseller)")
            }
            NoAuthority::UnknownReseller { reseller } => {
                write!(f, "the customer's reseller \"{reseller}\" has no Partner object")
            }
            NoAuthority::NotAReseller { partner } => {
                write!(
                    f,
                    "the customer's reseller \"{partner}\" is a Partner whose role is not Reseller"
                )
            }
            NoAuthority::UnknownDistributor { reseller, distributor } => write!(
                f,
                "the distributor \"{distributor}\" of reseller \"{reseller}\" has no Partner object with role Distributor"
            ),
        }
    }
}

impl std::error::Error for NoAuthority {}

/// Why the partner acting in a namespace cannot be determined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerError {
    /// No `Partner` acts in this namespace.
    NotAPartner { namespace: String },
    /// Several `Partner` objects claim the namespace; none of them is trusted.
    Ambiguous { namespace: String, partners: Vec<String> },
}

impl fmt::Display for IssuerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerError::NotAPartner { namespace } => write!(
                f,
                "no Partner acts in namespace \"{namespace}\": create decisions and delegations in your partner namespace (Partner spec.namespace)"
            ),
            IssuerError::Ambiguous { namespace, partners } => write!(
                f,
                "namespace \"{namespace}\" is claimed by several Partners ({}); the platform admin must give each partner its own namespace",
                partners.join(", ")
            ),
        }
    }
}

impl std::error::Error for IssuerError {}

/// The partner acting in `namespace`: partner identity comes from the namespace, which RBAC
/// protects, never from a field a requester fills in.
pub fn issuer_of<'a>(hierarchy: &'a Hierarchy, namespace: &str) -> Result<&'a Partner, IssuerError> {
    let mut found = hierarchy.partners.iter().filter(|p| p.namespace == namespace);
    match (found.next(), found.next()) {
        (None, _) => Err(IssuerError::NotAPartner {
            namespace: namespace.into(),
        }),
        (Some(p), None) => Ok(p),
        (Some(a), Some(b)) => {
            let mut partners = vec![a.name.clone(), b.name.clone()];
            partners.extend(found.map(|p| p.name.clone()));
            partners.sort();
            Err(IssuerError::Ambiguous {
                namespace: namespace.into(),
                partners,
            })
        }
    }
}

/// The reseller named by a Reseller-model customer, and that reseller's distributor.
fn customer_partners<'a>(
    hierarchy: &'a Hierarchy,
    customer: &Customer,
) -> Result<(&'a Partner, &'a Partner), NoAuthority> {
    if customer.model != AssociationModel::Reseller {
        return Err(NoAuthority::NotInResellerModel);
    }
    let reseller_name = customer.reseller.as_deref().ok_or(NoAuthority::NoReseller)?;
    let reseller = hierarchy
        .partner(reseller_name)
        .ok_or_else(|| NoAuthority::UnknownReseller {
            reseller: reseller_name.into(),
        })?;
    if reseller.role != Role::Reseller {
        return Err(NoAuthority::NotAReseller {
            partner: reseller.name.clone(),
        });
    }
    let distributor_name = reseller.distributor.clone().unwrap_or_default();
    let distributor = hierarchy
        .partner(&distributor_name)
        .filter(|d| d.role == Role::Distributor)
        .ok_or_else(|| NoAuthority::UnknownDistributor {
            reseller: reseller.name.clone(),
            distributor: distributor_name.clone(),
        })?;
    Ok((reseller, distributor))
}

/// R2, R3: the one partner holding restriction authority over a customer. The distributor,
/// unless it delegated to the customer's reseller; then the reseller, exclusively.
pub fn authority_holder(hierarchy: &Hierarchy, customer: &Customer) -> Result<AuthorityHolder, NoAuthority> {
    let (reseller, distributor) = customer_partners(hierarchy, customer)?;
    let delegation = active_delegation(hierarchy, &reseller.name).map(|d| d.key.clone());
    let (partner, role) = match delegation {
        Some(_) => (reseller.name.clone(), Role::Reseller),
        None => (distributor.name.clone(), Role::Distributor),
    };
    Ok(AuthorityHolder {
        partner,
        role,
        reseller: reseller.name.clone(),
        distributor: distributor.name.clone(),
        delegation,
    })
}

/// Why a partner may not restrict or unrestrict a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorityDenied {
    /// The partner acting in the object's namespace cannot be determined.
    Issuer { customer: String, error: IssuerError },
    /// The customer has no `CustomerAccount`.
    UnknownCustomer { customer: String },
    /// Nobody holds authority (not in the Reseller model, broken hierarchy).
    NoHolder { customer: String, cause: NoAuthority },
    /// R3: the issuer is the distributor, and it delegated to the customer's reseller.
    AuthorityDelegated {
        customer: String,
        distributor: String,
        reseller: String,
        delegation: ObjectKey,
    },
    /// R2: the issuer is the customer's reseller, without a delegation.
    NotDelegated {
        customer: String,
        reseller: String,
        distributor: String,
    },
    /// The issuer is neither the customer's reseller nor its distributor.
    OutsideHierarchy {
        customer: String,
        issuer: String,
        holder: String,
    },
}

impl AuthorityDenied {
    /// A CamelCase reason for conditions, events and admission responses.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthorityDenied::Issuer {
                error: IssuerError::NotAPartner { .. },
                ..
            } => "IssuerNotAPartner",
            AuthorityDenied::Issuer {
                error: IssuerError::Ambiguous { .. },
                ..
            } => "AmbiguousIssuer",
            AuthorityDenied::UnknownCustomer { .. } => "UnknownCustomer",
            AuthorityDenied::NoHolder {
                cause: NoAuthority::NotInResellerModel,
                ..
            } => "NotInResellerModel",
            AuthorityDenied::NoHolder { .. } => "NoAuthorityHolder",
            AuthorityDenied::AuthorityDelegated { .. } => "AuthorityDelegated",
            AuthorityDenied::NotDelegated { .. } => "NotDelegated",
            AuthorityDenied::OutsideHierarchy { .. } => "OutsideHierarchy",
        }
    }

    /// The rule the denial enforces.
    pub fn rule(&self) -> &'static str {
        match self {
            AuthorityDenied::AuthorityDelegated { .. } => "R3",
            _ => "R2",
        }
    }
}

impl fmt::Display for AuthorityDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorityDenied::Issuer { customer, error } => {
                write!(f, "R2: nobody may restrict customer \"{customer}\" from here: {error}")
            }
            AuthorityDenied::UnknownCustomer { customer } => write!(
                f,
                "R2: customer \"{customer}\" has no CustomerAccount; check spec.customer"
            ),
            AuthorityDenied::NoHolder { customer, cause } => {
                write!(f, "R2: nobody may restrict customer \"{customer}\": {cause}")
            }
            AuthorityDenied::AuthorityDelegated {
                customer,
                distributor,
                reseller,
                delegation,
            } => write!(
                f,
                "R3: distributor \"{distributor}\" delegated restriction of reseller \"{reseller}\"'s customers (ResellerDelegation {delegation}), so only \"{reseller}\" may restrict or unrestrict customer \"{customer}\"; ask \"{reseller}\", or revoke the ResellerDelegation"
            ),
            AuthorityDenied::NotDelegated {
                customer,
                reseller,
                distributor,
            } => write!(
                f,
                "R2: reseller \"{reseller}\" may not restrict or unrestrict customer \"{customer}\" because its distributor \"{distributor}\" has not delegated that permission; ask \"{distributor}\" to act, or to create a ResellerDelegation for \"{reseller}\""
            ),
            AuthorityDenied::OutsideHierarchy {
                customer,
                issuer,
                holder,
            } => write!(
                f,
                "R2: partner \"{issuer}\" is neither the reseller of customer \"{customer}\" nor that reseller's distributor; \"{holder}\" holds restriction authority over \"{customer}\""
            ),
        }
    }
}

impl std::error::Error for AuthorityDenied {}

/// The issuer (the partner acting in `namespace`) and its relation to a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerStanding<'a> {
    pub issuer: &'a Partner,
    pub holder: AuthorityHolder,
}

impl IssuerStanding<'_> {
    /// Whether the issuer is the customer's reseller or that reseller's distributor.
    pub fn in_hierarchy(&self) -> bool {
        self.issuer.name == self.holder.reseller || self.issuer.name == self.holder.distributor
    }

    pub fn holds_authority(&self) -> bool {
        self.issuer.name == self.holder.partner
    }

    /// Ok when the issuer holds authority; otherwise why not (R2, R3).
    pub fn check(&self, customer: &str) -> Result<(), AuthorityDenied> {
        if self.holds_authority() {
            return Ok(());
        }
        let holder = &self.holder;
        if self.issuer.name == holder.distributor {
            Err(AuthorityDenied::AuthorityDelegated {
                customer: customer.into(),
                distributor: holder.distributor.clone(),
                reseller: holder.reseller.clone(),
                delegation: holder.delegation.clone().unwrap_or_else(|| ObjectKey::new("", "")),
            })
        } else if self.issuer.name == holder.reseller {
            Err(AuthorityDenied::NotDelegated {
                customer: customer.into(),
                reseller: holder.reseller.clone(),
                distributor: holder.distributor.clone(),
            })
        } else {
            Err(AuthorityDenied::OutsideHierarchy {
                customer: customer.into(),
                issuer: self.issuer.name.clone(),
                holder: holder.partner.clone(),
            })
        }
    }
}

/// Resolves the issuer acting in `namespace` against a customer's authority holder.
pub fn issuer_standing<'a>(
    hierarchy: &'a Hierarchy,
    namespace: &str,
    customer_name: &str,
    customer: Option<&Customer>,
) -> Result<IssuerStanding<'a>, AuthorityDenied> {
    let issuer = issuer_of(hierarchy, namespace).map_err(|error| AuthorityDenied::Issuer {
        customer: customer_name.into(),
        error,
    })?;
    let customer = customer.ok_or_else(|| AuthorityDenied::UnknownCustomer {
        customer: customer_name.into(),
    })?;
    let holder = authority_holder(hierarchy, customer).map_err(|cause| AuthorityDenied::NoHolder {
        customer: customer_name.into(),
        cause,
    })?;
    Ok(IssuerStanding { issuer, holder })
}

/// R2, R3 at admission: may the partner acting in `namespace` restrict or unrestrict this
/// customer now? The same check the controller applies when accepting decisions.
pub fn check_issuer_authority(
    hierarchy: &Hierarchy,
    namespace: &str,
    customer_name: &str,
    customer: Option<&Customer>,
) -> Result<AuthorityHolder, AuthorityDenied> {
    let standing = issuer_standing(hierarchy, namespace, customer_name, customer)?;
    standing.check(customer_name)?;
    Ok(standing.holder)
}
