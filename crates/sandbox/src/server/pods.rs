//! The Pod subresources that need no container: `binding` (what the scheduler posts to put a
//! Pod on a node) and `eviction` (what `kubectl drain` posts; refused while it would break a
//! PodDisruptionBudget), and the budgets' arithmetic the disruption controller does.

use super::*;
use crate::selectors::LabelSelector;

/// What a PodDisruptionBudget allows now, from the Pods it selects.
#[derive(Debug, PartialEq)]
pub(super) struct Budget {
    pub expected: i64,
    pub healthy: i64,
    pub desired: i64,
}

impl Budget {
    pub fn allowed(&self) -> i64 {
        (self.healthy - self.desired).max(0)
    }
}

/// A Pod counts as healthy when it is Ready and not being deleted.
pub(super) fn healthy(pod: &Value) -> bool {
    !super::workloads::deleting(pod) && super::workloads::ready_condition(pod)
}

/// `value` of an int-or-percent of `total`, rounded up as the disruption controller does.
fn scaled(value: &Value, total: i64) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let percent: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((percent * total + 99) / 100)
        }
        _ => None,
    }
}

/// Whether a budget selects a Pod: a policy/v1 budget with an empty selector selects every Pod
/// of its namespace, one without a selector none.
pub(super) fn selects(pdb: &Value, pod: &Value) -> bool {
    match pdb.pointer("/spec/selector") {
        None | Some(Value::Null) => false,
        Some(selector) => LabelSelector::matches_object_selector(selector, pod.pointer("/metadata/labels")),
    }
}

/// The budget's numbers over the Pods of its namespace (every Pod it selects is expected).
pub(super) fn budget(pdb: &Value, pods: &[Arc<Value>]) -> Budget {
    let selected: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| selects(pdb, p) && !matches!(str_field(p, "/status/phase"), Some("Succeeded" | "Failed")))
        .collect();
    let expected = selected.len() as i64;
    let healthy = selected.iter().filter(|p| healthy(p)).count() as i64;
    let desired = if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled(max, expected).unwrap_or(0)).max(0)
    } else if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled(min, expected).unwrap_or(0)
    } else {
        0
    };
    Budget {
        expected,
        healthy,
        desired,
    }
}

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

impl ApiServer {
    /// Admission of a subresource CREATE whose object is of another kind (Binding, Eviction).
    fn admit_subresource_create(
        &self,
        t: &Target,
        name: &str,
        kind: (&'static str, &'static str, &'static str),
        object: Value,
        q: &Query,
        user: &UserInfo,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let mut warnings = Vec::new();
        let request = AdmissionRequest {
            rt: &t.rt,
            subresource: t.subresource.as_deref(),
            object_kind: Some(kind),
            operation: "CREATE",
            name,
            namespace: t.namespace.as_deref(),
            old: None,
            dry_run: dry_run(q)?,
            options: json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
            user,
        };
        let object = self.mutate(&request, object, &mut warnings)?;
        self.validate_admission(&request, Some(&object), &mut warnings)?;
        Ok((object, warnings))
    }

    /// POST `pods/<name>/binding`: puts a Pod without a node on the target node and marks it
    /// scheduled. `user` is the scheduler (or whoever binds), whose request passes admission.
    pub(super) fn bind(
        &self,
        t: &Target,
        name: &str,
        binding: Value,
        q: &Query,
        manager: &str,
        user: &UserInfo,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let rt = &t.rt;
        let namespace = t.namespace.as_deref().unwrap_or_default();
        let node = str_field(&binding, "/target/name").unwrap_or_default().to_string();
        let invalid = |field: &str, detail: String| {
            ApiError::invalid(
                "",
                "Binding",
                name,
                format!("Binding \"{name}\" is invalid: {field}: {detail}"),
                vec![json!({"reason": "FieldValueInvalid", "message": detail, "field": field})],
            )
        };
        if node.is_empty() {
            return Err(invalid("target.name", "Required value".into()));
        }
        if let Some(kind) = str_field(&binding, "/target/kind").filter(|k| !k.is_empty() && *k != "Node") {
            return Err(invalid(
                "target.kind",
                format!("Invalid value: {kind:?}: must be empty or 'Node'"),
            ));
        }
        let (binding, warnings) = self.admit_subresource_create(t, name, ("", "v1", "Binding"), binding, q, user)?;
        if dry_run(q)? {
            return Ok((success(201), warnings));
        }
        let key = Self::key(rt, Some(namespace), name);
        let conflict = |why: String| {
            ApiError::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on pods/binding \"{name}\": {why}"),
            )
            .with_details(json!({"name": name, "kind": "pods/binding"}))
        };
        for _attempt in 0..16 {
            let old = self.get(rt, Some(namespace), name)?;
            if super::workloads::deleting(&old) {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            if let Some(bound) = str_field(&old, "/spec/nodeName").filter(|n| !n.is_empty()) {
                return Err(conflict(format!("pod {name} is already assigned to node \"{bound}\"")));
            }
            let mut new = old.as_ref().clone();
            new["spec"]["nodeName"] = json!(node);
            if let Some(annotations) = binding.pointer("/metadata/annotations").and_then(Value::as_object)
                && !annotations.is_empty()
            {
                let target = new["metadata"]
                    .as_object_mut()
                    .ok_or_else(|| ApiError::internal("a stored Pod without metadata"))?
                    .entry("annotations")
                    .or_insert_with(|| json!({}));
                for (k, v) in annotations {
                    target[k] = v.clone();
                }
            }
            let mut conditions: Vec<Value> = new
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            conditions.retain(|c| c["type"] != "PodScheduled");
            conditions.push(
                json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}),
            );
            if !new.get("status").is_some_and(Value::is_object) {
                new["status"] = json!({});
            }
            new["status"]["conditions"] = json!(conditions);
            match self.finish_update(rt, &key, &old, new, Some(manager), Some("binding"), false) {
                Ok(_) => return Ok((success(201), warnings)),
                Err(Some(e)) => return Err(e),
                Err(None) => continue,
            }
        }
        Err(ApiError::conflict("", "pods", name))
    }

    /// POST `pods/<name>/eviction`: deletes the Pod unless a PodDisruptionBudget selecting it
    /// has no disruption left (429, as kube-apiserver answers; `kubectl drain` retries).
    pub(super) fn evict(
        &self,
        t: &Target,
        name: &str,
        eviction: Value,
        q: &Query,
        user: &UserInfo,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let rt = &t.rt;
        let namespace = t.namespace.as_deref().unwrap_or_default();
        let pod = self.get(rt, Some(namespace), name)?;
        let (eviction, warnings) =
            self.admit_subresource_create(t, name, ("policy", "v1", "Eviction"), eviction, q, user)?;
        let options = eviction.get("deleteOptions").cloned().unwrap_or_else(|| json!({}));
        // Pods that are not running (yet or any more) go whatever the budgets say.
        let ignores_budget = matches!(
            str_field(&pod, "/status/phase"),
            Some("Succeeded" | "Failed" | "Pending")
        );
        if !ignores_budget && !super::workloads::deleting(&pod) {
            let (pdbs, pods) = {
                let inner = self.store.lock();
                let pdbs: Vec<Arc<Value>> = inner
                    .list("policy/poddisruptionbudgets", Some(namespace))
                    .map(|(_, v)| v.clone())
                    .filter(|pdb| selects(pdb, &pod))
                    .collect();
                let pods: Vec<Arc<Value>> = inner.list("/pods", Some(namespace)).map(|(_, v)| v.clone()).collect();
                (pdbs, pods)
            };
            if pdbs.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(pdb) = pdbs.first() {
                let b = budget(pdb, &pods);
                let unhealthy_may_go = !healthy(&pod)
                    && (str_field(pdb, "/spec/unhealthyPodEvictionPolicy") == Some("AlwaysAllow")
                        || b.healthy >= b.desired);
                if !unhealthy_may_go && b.allowed() == 0 {
                    let pdb_name = str_field(pdb, "/metadata/name").unwrap_or_default();
                    return Err(ApiError::new(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    )
                    .with_details(json!({"causes": [{"reason": "DisruptionBudget",
                        "message": format!("The disruption budget {pdb_name} needs {} healthy pods and has {} currently", b.desired, b.healthy)}]})));
                }
            }
        }
        if !dry_run(q)? {
            self.delete(rt, Some(namespace), name, &options, q, None)?;
        }
        Ok((success(201), warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(app: &str, ready: bool) -> Arc<Value> {
        Arc::new(json!({"metadata": {"labels": {"app": app}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
    }

    #[test]
    fn budgets_count_what_they_select() {
        let pods = vec![pod("web", true), pod("web", true), pod("web", false), pod("db", true)];
        let min = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 2}});
        assert_eq!(
            budget(&min, &pods),
            Budget {
                expected: 3,
                healthy: 2,
                desired: 2
            }
        );
        assert_eq!(budget(&min, &pods).allowed(), 0);
        let max = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": "50%"}});
        // 50% of 3 rounds up to 2 unavailable: 1 must stay healthy.
        assert_eq!(budget(&max, &pods).desired, 1);
        assert_eq!(budget(&max, &pods).allowed(), 1);
        let everyone = json!({"spec": {"selector": {}, "maxUnavailable": 0}});
        assert_eq!(budget(&everyone, &pods).expected, 4);
        let nobody = json!({"spec": {"minAvailable": 1}});
        assert_eq!(budget(&nobody, &pods).expected, 0);
        assert_eq!(scaled(&json!("x%"), 3), None);
    }
}
