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

/// Where purchases are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EnforceWith {
    /// The purchase webhook alone (failurePolicy as configured).
    Webhook,
    /// ValidatingAdmissionPolicies alone, inside the API server: nothing on the purchase path
    /// calls purchase-guard; a change of state takes effect when its namespace label does.
    Policy,
    /// Both: the policies as the backstop, the webhook (with failurePolicy Ignore) judging from
    /// the latest state; while purchase-guard is down, the policies still refuse.
    Both,
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
/// empty: `/v1/pods`), the subresources judged with it, and what its fields mean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guarded {
    pub group: String,
    pub version: String,
    pub resource: String,
    /// Subresources judged besides the resource: `scale` (replicas: more is a purchase) and
    /// any other that changes the object (`resize` of Pods). Others are not sent.
    pub subresources: Vec<String>,
    /// What the kind's fields mean (capacity, renewal, rename, use).
    pub classify: ClassifyRules,
    /// How the kind's pay-per-use resources are frozen (R8); `None`: they are not.
    pub freeze: Option<policy::FreezeAction>,
}

impl Guarded {
    /// A guarded resource with the defaults of its kind ([`ClassifyRules::for_kind`]; `scale`
    /// for apps/v1 Deployments, ReplicaSets and StatefulSets, `resize` for Pods).
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        let subresources = match (group, resource) {
            ("apps", "deployments" | "replicasets" | "statefulsets") => vec!["scale".to_string()],
            ("", "pods") => vec!["resize".to_string()],
            _ => vec![],
        };
        Guarded {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            subresources,
            classify: ClassifyRules::for_kind(group, resource),
            freeze: policy::FreezeAction::for_kind(group, resource),
        }
    }

    /// Whether a request's resource (and subresource) is this one.
    pub fn matches(&self, group: &str, version: &str, resource: &str, subresource: Option<&str>) -> bool {
        self.group == group
            && self.version == version
            && self.resource == resource
            && subresource.is_none_or(|s| self.subresources.iter().any(|x| x == s))
    }
}

impl std::str::FromStr for Guarded {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [group, version, resource] if !version.is_empty() && !resource.is_empty() => {
                Ok(Guarded::new(group, version, resource))
            }
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

/// One entry of a guarded-kinds file (`--guarded-kinds`, the chart's
/// `webhook.guardedResources`): a resource, and any of its roles that differ from the kind's
/// defaults.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardedEntry {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresources: Option<Vec<String>>,
    pub rename_paths: Option<Vec<String>>,
    pub renew_paths: Option<Vec<String>>,
    pub capacity_paths: Option<Vec<String>>,
    pub use_paths: Option<Vec<String>>,
    /// The freeze action (`{action: scale|patch|suspend, ...}`); `null`: never frozen;
    /// omitted: the kind's default.
    #[serde(default, deserialize_with = "present")]
    pub freeze: Option<Option<policy::FreezeAction>>,
}

/// A field that is present, even as `null` (then `Some(None)`); absent fields stay `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl GuardedEntry {
    /// The guarded resource: the kind's defaults, overridden by what the entry says.
    pub fn resolve(self) -> Result<Guarded, String> {
        let name = format!("{}/{}/{}", self.group, self.version, self.resource);
        if self.version.is_empty() || self.resource.is_empty() {
            return Err(format!(
                "{name:?}: version and resource are required (group is empty for the core group)"
            ));
        }
        let mut g = Guarded::new(&self.group, &self.version, &self.resource);
        let c = &mut g.classify;
        for (field, given) in [
            (&mut c.rename_paths, self.rename_paths),
            (&mut c.renew_paths, self.renew_paths),
            (&mut c.capacity_paths, self.capacity_paths),
            (&mut c.use_paths, self.use_paths),
        ] {
            if let Some(paths) = given {
                *field = paths;
            }
        }
        if let Some(subresources) = self.subresources {
            if let Some(bad) = subresources.iter().find(|s| s.is_empty() || s.contains('/')) {
                return Err(format!(
                    "{name}: subresources: {bad:?} is not a subresource name such as \"scale\""
                ));
            }
            g.subresources = subresources;
        }
        if let Some(freeze) = self.freeze {
            g.freeze = freeze;
        }
        g.classify.validate().map_err(|e| format!("{name}: {e}"))?;
        if let Some(action) = &g.freeze {
            action.validate().map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(g)
    }
}

/// Parses a guarded-kinds file (YAML or JSON): a list of [`GuardedEntry`]. Each error names
/// the entry and the field.
pub fn parse_guarded(text: &str) -> Result<Vec<Guarded>, String> {
    let entries: Vec<GuardedEntry> = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    if entries.is_empty() {
        return Err("the list of guarded kinds is empty".into());
    }
    let mut out: Vec<Guarded> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let g = entry.resolve().map_err(|e| format!("[{i}]: {e}"))?;
        if out
            .iter()
            .any(|o| (&o.group, &o.version, &o.resource) == (&g.group, &g.version, &g.resource))
        {
            return Err(format!("[{i}]: {g} is listed twice"));
        }
        out.push(g);
    }
    Ok(out)
}

/// The kinds guarded by default: the sample billable CRD and every apps/v1 and batch/v1
/// workload, and Pods, so that no workload can be created around a guarded one.
pub fn default_guarded() -> Vec<Guarded> {
    [
        ("compute.example.com", "v1", "virtualmachines"),
        ("apps", "v1", "deployments"),
        ("apps", "v1", "replicasets"),
        ("apps", "v1", "statefulsets"),
        ("apps", "v1", "daemonsets"),
        ("batch", "v1", "jobs"),
        ("batch", "v1", "cronjobs"),
        ("", "v1", "pods"),
    ]
    .iter()
    .map(|(g, v, r)| Guarded::new(g, v, r))
    .collect()
}

/// The users of Kubernetes' own workload controllers (kube-controller-manager, with and without
/// per-controller credentials): what they create or change for an object they control (a
/// ReplicaSet's Pods, a Deployment's ReplicaSets, a CronJob's Jobs) follows a parent that was
/// already judged.
pub fn default_workload_controllers() -> Vec<String> {
    [
        "system:kube-controller-manager",
        "system:serviceaccount:kube-system:deployment-controller",
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:serviceaccount:kube-system:statefulset-controller",
        "system:serviceaccount:kube-system:daemon-set-controller",
        "system:serviceaccount:kube-system:job-controller",
        "system:serviceaccount:kube-system:cronjob-controller",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// How the purchase webhook judges requests.
#[derive(Clone, Debug)]
pub struct Settings {
    pub guarded: Vec<Guarded>,
    /// Users whose writes of objects they control are not judged (see
    /// [`default_workload_controllers`]).
    pub workload_controllers: Vec<String>,
    pub matrix: ImpactMatrix,
    pub enforcement: Enforcement,
    /// The users that may write the status of purchase-guard's kinds: purchase-guard's own
    /// identity (its ServiceAccount in a cluster). Empty: nobody may.
    pub controller_identities: Vec<String>,
    pub freshness: Freshness,
    /// Strict mode: guarded kinds are created only in customers' namespaces, except in these
    /// exempt namespaces (and those the webhook configuration excludes). `None`: namespaces
    /// that belong to no customer are not judged.
    pub strict: Option<Vec<String>>,
    /// Where purchases are judged: the webhook, ValidatingAdmissionPolicies, or both.
    pub enforce_with: EnforceWith,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            guarded: default_guarded(),
            workload_controllers: default_workload_controllers(),
            matrix: ImpactMatrix::default(),
            enforcement: Enforcement::Deny,
            controller_identities: Vec::new(),
            freshness: Freshness::default(),
            strict: None,
            enforce_with: EnforceWith::Webhook,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_kinds_take_their_defaults_and_the_file_overrides_them() {
        let kinds = parse_guarded(
            "- {group: apps, version: v1, resource: deployments}\n\
             - {group: example.com, version: v2, resource: widgets, subresources: [scale], capacityPaths: [/spec/size]}\n\
             - {group: '', version: v1, resource: pods, usePaths: []}\n\
             - {group: batch, version: v1, resource: jobs, freeze: null}\n\
             - {group: example.com, version: v1, resource: vms, freeze: {action: patch, patch: {spec: {runStrategy: Halted}}}}\n",
        )
        .expect("a valid file");
        assert_eq!(kinds[0], Guarded::new("apps", "v1", "deployments"));
        assert_eq!(kinds[0].subresources, ["scale"]);
        assert_eq!(kinds[0].classify.capacity_paths, ["/spec/replicas"]);
        assert_eq!(kinds[1].subresources, ["scale"]);
        assert_eq!(kinds[1].classify.capacity_paths, ["/spec/size"]);
        assert_eq!(kinds[1].classify.rename_paths, ClassifyRules::default().rename_paths);
        assert_eq!(kinds[2].subresources, ["resize"]);
        assert!(kinds[2].matches("", "v1", "pods", Some("resize")));
        assert!(!kinds[2].matches("", "v1", "pods", Some("exec")));
        assert!(!kinds[2].matches("", "v2", "pods", None));
        assert_eq!(kinds[0].freeze.as_ref().map(|a| a.name()), Some("scale"));
        assert_eq!(kinds[1].freeze, None);
        assert_eq!(kinds[2].freeze, None);
        assert_eq!(kinds[3].freeze, None, "null: never frozen");
        assert_eq!(
            kinds[4].freeze,
            Some(policy::FreezeAction::Patch {
                patch: serde_json::json!({"spec": {"runStrategy": "Halted"}})
            })
        );
    }

    #[test]
    fn a_bad_guarded_kinds_file_names_the_entry_and_the_field() {
        for (text, expected) in [
            ("[]", "the list of guarded kinds is empty"),
            ("- {group: apps, resource: deployments}", "missing field `version`"),
            (
                "- {group: apps, version: v1, resource: deployments, replicas: 3}",
                "unknown field `replicas`",
            ),
            (
                "- {group: apps, version: v1, resource: deployments, capacityPaths: [spec.replicas]}",
                "[0]: apps/v1/deployments: capacityPaths[0]: \"spec.replicas\" is not a JSON pointer",
            ),
            (
                "- {group: apps, version: v1, resource: deployments, subresources: [scale/x]}",
                "[0]: apps/v1/deployments: subresources: \"scale/x\"",
            ),
            (
                "- {group: apps, version: v1, resource: deployments, freeze: {action: stop}}",
                "unknown variant `stop`, expected one of `scale`, `patch`, `suspend`",
            ),
            (
                "- {group: apps, version: v1, resource: deployments, freeze: {action: patch, patch: {metadata: {}}}}",
                "[0]: apps/v1/deployments: freeze.patch: may change fields under spec only",
            ),
            (
                "- {group: apps, version: v1, resource: deployments}\n- {group: apps, version: v1, resource: deployments}",
                "[1]: apps/v1/deployments is listed twice",
            ),
        ] {
            let err = parse_guarded(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
