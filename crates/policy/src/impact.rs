//! R7: what a restriction blocks, per billing mode, as data. The default is the brief's table;
//! operators may load their own matrix from configuration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The billing mode of a billable resource (label `purchaseguard.io/billing-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BillingMode {
    /// Prepaid yearly/monthly subscriptions.
    YearlyMonthly,
    /// Pay-per-use.
    PayPerUse,
    /// Spot instances (billed like pay-per-use).
    Spot,
}

impl BillingMode {
    pub const ALL: [BillingMode; 3] = [BillingMode::YearlyMonthly, BillingMode::PayPerUse, BillingMode::Spot];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::YearlyMonthly => "yearly-monthly",
            BillingMode::PayPerUse => "pay-per-use",
            BillingMode::Spot => "spot",
        }
    }

    /// Parses a label value; the error names the allowed values.
    pub fn parse(value: &str) -> Result<Self, String> {
        BillingMode::ALL.into_iter().find(|m| m.as_str() == value).ok_or_else(|| {
            format!("unsupported billing mode \"{value}\": supported values: \"yearly-monthly\", \"pay-per-use\", \"spot\"")
        })
    }
}

impl fmt::Display for BillingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation on a billable resource, as admission sees it. Reads (use, view) never reach
/// admission and are always allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Creating a resource: a purchase.
    Purchase,
    /// Changing only the display name.
    Rename,
    /// Renewing a subscription.
    Renew,
    /// Changing the specification (size, flavour, replicas...).
    ModifySpecifications,
    /// Changing the billing mode label.
    ChangeBillingMode,
    /// Unsubscribing: deleting the resource.
    Delete,
    /// Any other change.
    Other,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Purchase,
        Operation::Rename,
        Operation::Renew,
        Operation::ModifySpecifications,
        Operation::ChangeBillingMode,
        Operation::Delete,
        Operation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Purchase => "purchase",
            Operation::Rename => "rename",
            Operation::Renew => "renew",
            Operation::ModifySpecifications => "modify-specifications",
            Operation::ChangeBillingMode => "change-billing-mode",
            Operation::Delete => "delete",
            Operation::Other => "other",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a restriction allows and blocks for one billing mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModeImpact {
    /// Operations still allowed while the customer is restricted.
    pub allowed: BTreeSet<Operation>,
    /// Operations blocked while the customer is restricted.
    pub blocked: BTreeSet<Operation>,
}

/// The R7 impact matrix: for each billing mode, which operations a restriction blocks.
/// Every operation must be listed exactly once per mode, as allowed or blocked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImpactMatrix {
    pub yearly_monthly: ModeImpact,
    pub pay_per_use: ModeImpact,
    pub spot: ModeImpact,
}

/// A matrix that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("impact matrix: {field}: operation \"{operation}\" is listed as both allowed and blocked; list it once")]
    Both { field: &'static str, operation: Operation },
    #[error(
        "impact matrix: {field}: operation \"{operation}\" is neither allowed nor blocked; list it in {field}.allowed or {field}.blocked (operations: purchase, rename, renew, modify-specifications, change-billing-mode, delete, other)"
    )]
    Missing { field: &'static str, operation: Operation },
}

impl Default for ImpactMatrix {
    /// The brief's R7 table. Deletion (unsubscribe) is allowed in every mode: it only reduces
    /// spend.
    fn default() -> Self {
        use Operation::*;
        let impact = |allowed: &[Operation], blocked: &[Operation]| ModeImpact {
            allowed: allowed.iter().copied().collect(),
            blocked: blocked.iter().copied().collect(),
        };
        ImpactMatrix {
            yearly_monthly: impact(
                &[Rename, Delete],
                &[Purchase, Renew, ModifySpecifications, ChangeBillingMode, Other],
            ),
            // Pay-per-use and spot resources have nothing to renew: a change of the renewal
            // fields counts as "any other change", which R7 blocks.
            pay_per_use: impact(
                &[Rename, Delete],
                &[Purchase, Renew, ModifySpecifications, ChangeBillingMode, Other],
            ),
            spot: impact(
                &[Rename, Delete],
                &[Purchase, Renew, ModifySpecifications, ChangeBillingMode, Other],
            ),
        }
    }
}

impl ImpactMatrix {
    /// The impact for one billing mode.
    pub fn mode(&self, mode: BillingMode) -> &ModeImpact {
        match mode {
            BillingMode::YearlyMonthly => &self.yearly_monthly,
            BillingMode::PayPerUse => &self.pay_per_use,
            BillingMode::Spot => &self.spot,
        }
    }

    /// Whether a restriction blocks `operation` on resources of `mode`.
    pub fn blocks(&self, mode: BillingMode, operation: Operation) -> bool {
        self.mode(mode).blocked.contains(&operation)
    }

    /// Checks that every operation is listed exactly once per mode.
    pub fn validate(&self) -> Result<(), MatrixError> {
        for (field, impact) in [
            ("yearlyMonthly", &self.yearly_monthly),
            ("payPerUse", &self.pay_per_use),
            ("spot", &self.spot),
        ] {
            for operation in Operation::ALL {
                match (impact.allowed.contains(&operation), impact.blocked.contains(&operation)) {
                    (true, true) => return Err(MatrixError::Both { field, operation }),
                    (false, false) => return Err(MatrixError::Missing { field, operation }),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
