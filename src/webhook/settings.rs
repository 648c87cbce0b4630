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

/// How current the caches must be before a purchase is admitted because its customer is not
/// restricted (refusals never wait: a cache that is behind can only have missed a lift).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Consistency {
    /// Judge from the caches as the watches have them; a background check confirms them
    /// current every `check_interval`, and purchases are refused when the last confirmation is
    /// older than `max_staleness` (a silent watch fails closed).
    Cached,
    /// Before admitting, confirm the caches hold everything written before the request arrived
    /// (a quorum read, then the wait for the watches; refused on timeout). A purchase admitted
    /// after a restriction's write returned is impossible.
    Linearizable,
}

/// How the caches are kept honest: the consistency mode and its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    pub consistency: Consistency,
    /// How often the caches are confirmed current in the background.
    pub check_interval: std::time::Duration,
    /// The oldest confirmation admission still trusts; older: refused as unknown.
    pub max_staleness: std::time::Duration,
    /// The bound of one confirmation (quorum reads and the wait for the watches).
    pub check_timeout: std::time::Duration,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            consistency: Consistency::Cached,
            check_interval: std::time::Duration::from_secs(10),
            max_staleness: std::time::Duration::from_secs(30),
            check_timeout: std::time::Duration::from_secs(2),
        }
    }
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
    pub freshness: Freshness,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            guarded: default_guarded(),
            classify: ClassifyRules::default(),
            matrix: ImpactMatrix::default(),
            enforcement: Enforcement::Deny,
            controller_identities: Vec::new(),
            freshness: Freshness::default(),
        }
    }
}
