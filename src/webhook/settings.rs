//! How the purchase webhook judges requests: the guarded kinds, the classification rules, the
//! R7 impact matrix and what to do with a request it would refuse.

use policy::{ClassifyRules, ImpactMatrix};
use purchase_guard_policy as policy;

/// What the purchase webhook does with a request it would deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Enforcement {
    /// Refuse the request.
    Deny,
    /// Allow it with an admission warning (kubectl prints it).
    Warn,
    /// Allow it; count and log what would have been refused.
    Dryrun,
}

/// A guarded resource: `group/version/resource` (`apps/v1/deployments`; the core group is
/// empty: `/v1/services`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Guarded {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl std::str::FromStr for Guarded {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [group, version, resource] if !version.is_empty() && !resource.is_empty() => Ok(Guarded {
                group: group.to_string(),
                version: version.to_string(),
                resource: resource.to_string(),
            }),
            _ => Err(format!(
                "{s:?}: expected GROUP/VERSION/RESOURCE, e.g. apps/v1/deployments or compute.example.com/v1/virtualmachines"
            )),
        }
    }
}

impl std::fmt::Display for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.group, self.version, self.resource)
    }
}

/// The guarded kinds by default: the sample billable CRD and Deployments.
pub fn default_guarded() -> Vec<Guarded> {
    vec![
        Guarded {
            group: "compute.example.com".into(),
            version: "v1".into(),
            resource: "virtualmachines".into(),
        },
        Guarded {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
        },
    ]
}

/// How the purchase webhook judges requests.
#[derive(Clone, Debug)]
pub struct Settings {
    pub guarded: Vec<Guarded>,
    pub classify: ClassifyRules,
    pub matrix: ImpactMatrix,
    pub enforcement: Enforcement,
    /// The users that may write the status of purchase-guard's kinds: purchase-guard's own
    /// identity (its ServiceAccount in a cluster). Empty: nobody may.
    pub controller_identities: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            guarded: default_guarded(),
            classify: ClassifyRules::default(),
            matrix: ImpactMatrix::default(),
            enforcement: Enforcement::Deny,
            controller_identities: Vec::new(),
        }
    }
}
