//! ValidatingAdmissionPolicies: what the API server enforces by itself, with no call to
//! purchase-guard, so that it holds while every purchase-guard pod is down. The Helm chart
//! renders the same objects (tests/e2e.rs compares them); `purchase-guard sandbox` installs
//! them.

use crate::api::{GUARDED_LABEL, PURCHASES_LABEL};
use serde_json::{Value, json};

/// The policy and binding named `<name>-namespace-labels`: [`GUARDED_LABEL`] and
/// [`PURCHASES_LABEL`] are set and changed by `controller` (purchase-guard's user) alone.
/// Removing them (releasing a namespace) is left to the namespaces webhook, which knows
/// whether a customer still claims the namespace.
pub fn namespace_labels(name: &str, controller: &str) -> [Value; 2] {
    let policy = format!("{name}-namespace-labels");
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["namespaces"],
                }]},
                "matchConditions": [{
                    "name": "not-purchase-guard",
                    "expression": format!("request.userInfo.username != '{controller}'"),
                }],
                "variables": [
                    {"name": "before", "expression": "oldObject != null && has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}"},
                    {"name": "after", "expression": "has(object.metadata.labels) ? object.metadata.labels : {}"},
                    {"name": "set", "expression": format!(
                        "['{GUARDED_LABEL}', '{PURCHASES_LABEL}'].filter(k, k in variables.after && (!(k in variables.before) || variables.before[k] != variables.after[k]))"
                    )},
                ],
                "validations": [{
                    "expression": "size(variables.set) == 0",
                    "messageExpression": "'the label ' + variables.set.join(' and ') + ' is set by purchase-guard alone, on the namespaces CustomerAccounts list; ' + request.userInfo.username + ' may not set or change it'",
                    "reason": "Forbidden",
                }],
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": ["Deny"]},
        }),
    ]
}

/// A CEL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The keys of a JSON pointer.
fn keys(pointer: &str) -> Vec<String> {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// The value at `pointer` in the map `var` (which may be null), or null where absent.
fn at(var: &str, pointer: &str) -> String {
    let mut conditions = vec![format!("{var} != null")];
    let mut access = var.to_string();
    for key in keys(pointer) {
        conditions.push(format!("{} in {access}", lit(&key)));
        access = format!("{access}[{}]", lit(&key));
    }
    format!("({} ? {access} : null)", conditions.join(" && "))
}

/// Fields compared one by one below a level of the object: keys masked whole (the named
/// paths that end here), keys to descend into, and whether every other key is ignored.
#[derive(Default)]
struct Mask {
    skip: std::collections::BTreeSet<String>,
    children: std::collections::BTreeMap<String, Mask>,
}

impl Mask {
    fn add(&mut self, keys: &[String]) {
        match keys {
            [] => {}
            [last] => {
                self.children.remove(last);
                self.skip.insert(last.clone());
            }
            [first, rest @ ..] => {
                if !self.skip.contains(first) {
                    self.children.entry(first.clone()).or_default().add(rest);
                }
            }
        }
    }

    /// CEL: whether the maps `a` and `b` (or null) are equal outside the masked fields, a
    /// missing key counting as null and null as an empty map, as the webhook compares them.
    /// Each level's maps become variables (pushed onto `vars`), so that the expression grows
    /// with the depth of the named paths, not exponentially.
    fn equal(&self, a: &str, b: &str, vars: &mut Vec<(String, String)>) -> String {
        let id = vars.len();
        let (an, bn) = (format!("m{id}a"), format!("m{id}b"));
        vars.push((an.clone(), format!("{a} == null ? {{}} : {a}")));
        vars.push((bn.clone(), format!("{b} == null ? {{}} : {b}")));
        let (a, b) = (format!("variables.{an}"), format!("variables.{bn}"));
        let masked: Vec<String> = self.skip.iter().chain(self.children.keys()).map(|k| lit(k)).collect();
        let masked = format!("[{}]", masked.join(", "));
        let mut parts = vec![
            format!("{a}.all(k, k in {masked} || (k in {b} ? {a}[k] == {b}[k] : {a}[k] == null))"),
            format!("{b}.all(k, k in {masked} || k in {a} || {b}[k] == null)"),
        ];
        for (key, child) in &self.children {
            let pick = |m: &str| format!("({} in {m} ? {m}[{}] : null)", lit(key), lit(key));
            parts.push(child.equal(&pick(&a), &pick(&b), vars));
        }
        format!("({})", parts.join(" && "))
    }
}

/// The name of a guarded kind's purchase policy: `<name>-purchases-deployments.apps`.
pub fn purchase_policy_name(name: &str, guarded: &super::Guarded) -> String {
    let resource = if guarded.group.is_empty() {
        guarded.resource.clone()
    } else {
        format!("{}.{}", guarded.resource, guarded.group)
    };
    format!("{name}-purchases-{resource}")
}

/// The policy of one guarded kind: what the purchase webhook refuses, judged from the
/// namespace's [`PURCHASES_LABEL`], the object and the old object (R7 with the kind's field
/// roles and the matrix, R8 for what would undo a freeze).
fn purchase_policy(name: &str, settings: &super::Settings, guarded: &super::Guarded) -> Value {
    use purchase_guard_policy::{BILLING_MODE_LABEL, BillingMode, FROZEN_ANNOTATION, FROZEN_LABEL, FreezeAction};
    let rules = &guarded.classify;
    let default_mode = rules.default_billing_mode.as_str();
    let mut resources = vec![guarded.resource.clone()];
    resources.extend(guarded.subresources.iter().map(|s| format!("{}/{s}", guarded.resource)));
    let label_of = |var: &str| {
        at(
            var,
            &format!("/metadata/labels/{}", BILLING_MODE_LABEL.replace('/', "~1")),
        )
    };
    // The R7 matrix, as a map from billing mode to blocked operations.
    let blocked: Vec<String> = BillingMode::ALL
        .iter()
        .map(|mode| {
            let ops: Vec<String> = settings
                .matrix
                .mode(*mode)
                .blocked
                .iter()
                .map(|o| lit(o.as_str()))
                .collect();
            format!("{}: [{}]", lit(mode.as_str()), ops.join(", "))
        })
        .collect();
    let blocked = format!("{{{}}}", blocked.join(", "));
    let modes: Vec<String> = BillingMode::ALL.iter().map(|m| lit(m.as_str())).collect();
    let modes = format!("[{}]", modes.join(", "));
    // UPDATE: the operations, field by field.
    let changed = |p: &str| format!("({} != {})", at("variables.old", p), at("variables.new", p));
    let mut update_ops = vec!["(variables.modeChanged ? ['change-billing-mode'] : [])".to_string()];
    for p in &rules.capacity_paths {
        let (before, after) = (at("variables.old", p), at("variables.new", p));
        let whole = |v: &str| format!("({v} == null || type({v}) == int)");
        let number = |v: &str| format!("({v} == null ? 0 : {v})");
        update_ops.push(format!(
            "({changed} ? ({wb} && {wa} ? ({na} > {nb} ? ['purchase'] : []) : ['modify-specifications']) : [])",
            changed = changed(p),
            wb = whole(&before),
            wa = whole(&after),
            na = number(&after),
            nb = number(&before),
        ));
    }
    let any_changed = |paths: &[String]| -> String {
        if paths.is_empty() {
            "false".into()
        } else {
            format!(
                "({})",
                paths.iter().map(|p| changed(p)).collect::<Vec<_>>().join(" || ")
            )
        }
    };
    update_ops.push(format!("({} ? ['rename'] : [])", any_changed(&rules.rename_paths)));
    update_ops.push(format!("({} ? ['renew'] : [])", any_changed(&rules.renew_paths)));
    let named: Vec<&String> = rules
        .capacity_paths
        .iter()
        .chain(&rules.rename_paths)
        .chain(&rules.renew_paths)
        .chain(&rules.use_paths)
        .collect();
    let mut spec = Mask::default();
    let mut top = Mask::default();
    for ignored in ["spec", "metadata", "status", "apiVersion", "kind"] {
        top.add(&[ignored.to_string()]);
    }
    for p in &named {
        let k = keys(p);
        match k.split_first() {
            Some((first, rest)) if first == "spec" => spec.add(rest),
            Some((first, _)) if matches!(first.as_str(), "metadata" | "status" | "apiVersion" | "kind") => {}
            Some(_) => top.add(&k),
            None => {}
        }
    }
    let mut masks = Vec::new();
    let spec_equal = spec.equal(&at("variables.old", "/spec"), &at("variables.new", "/spec"), &mut masks);
    let top_equal = top.equal("variables.old", "variables.new", &mut masks);
    update_ops.push(format!("({spec_equal} ? [] : ['modify-specifications'])"));
    update_ops.push(format!("({top_equal} ? [] : ['other'])"));
    let scale_ops = "(type(variables.scaleBefore) == int && type(variables.scaleAfter) == int ? (variables.scaleAfter > variables.scaleBefore ? ['purchase'] : []) : ['other'])";
    let ops = format!(
        "request.operation == 'CREATE' ? (variables.scale ? ['other'] : ['purchase']) : request.operation == 'DELETE' ? ['delete'] : variables.scale ? {scale_ops} : ({})",
        update_ops.join(" + ")
    );
    // R8: fields a freeze set keep their frozen values while the record is there.
    let frozen_fields = match &guarded.freeze {
        Some(FreezeAction::Scale { replicas_path }) => {
            let v = at("variables.new", replicas_path);
            format!("!({v} != null && type({v}) == int && {v} > 0)")
        }
        Some(action) => {
            let mut leaves = Vec::new();
            if let Some(patch) = action.merge_patch() {
                purchase_guard_policy::freeze::leaves_of(&patch, &mut String::new(), &mut leaves);
            }
            let checks: Vec<String> = leaves
                .iter()
                .map(|(p, v)| format!("{} == {}", at("variables.new", p), cel_value(v)))
                .collect();
            if checks.is_empty() {
                "true".into()
            } else {
                checks.join(" && ")
            }
        }
        None => "true".into(),
    };
    let frozen_annotation = |var: &str| {
        at(
            var,
            &format!("/metadata/annotations/{}", FROZEN_ANNOTATION.replace('/', "~1")),
        )
    };
    let frozen_label = |var: &str| at(var, &format!("/metadata/labels/{}", FROZEN_LABEL.replace('/', "~1")));
    let subject = format!(
        "{} + ' \"' + request.name + '\" of the customer of namespace \"' + request.namespace + '\"'",
        lit(&guarded.resource)
    );
    let mut policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": purchase_policy_name(name, guarded)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": [guarded.group], "apiVersions": [guarded.version],
                    "operations": ["CREATE", "UPDATE", "DELETE"], "resources": resources,
                }],
                "namespaceSelector": {"matchExpressions": [{"key": GUARDED_LABEL, "operator": "Exists"}]},
            },
            "matchConditions": match_conditions(settings),
            "variables": [
                {"name": "state", "expression": format!(
                    "namespaceObject != null && has(namespaceObject.metadata.labels) && {l} in namespaceObject.metadata.labels ? namespaceObject.metadata.labels[{l}] : 'unknown'",
                    l = lit(PURCHASES_LABEL)
                )},
                {"name": "scale", "expression": "request.subResource == 'scale'"},
                {"name": "old", "expression": "oldObject == null ? {} : oldObject"},
                {"name": "new", "expression": "object == null ? {} : object"},
                {"name": "label", "expression": format!(
                    "variables.scale ? null : request.operation == 'DELETE' ? {} : {}",
                    label_of("oldObject"), label_of("object")
                )},
                {"name": "mode", "expression": format!(
                    "variables.label == null || (request.operation == 'DELETE' && !(variables.label in {modes})) ? {} : variables.label",
                    lit(default_mode)
                )},
                {"name": "oldMode", "expression": format!(
                    "request.operation != 'UPDATE' || variables.scale ? variables.mode : {old} == null || !({old} in {modes}) ? ({old} == null ? {d} : variables.mode) : {old}",
                    old = label_of("oldObject"),
                    d = lit(default_mode),
                )},
                {"name": "modeChanged", "expression": format!(
                    "request.operation == 'UPDATE' && !variables.scale && ({o} == null ? {d} : {o}) != ({n} == null ? {d} : {n})",
                    o = label_of("oldObject"), n = label_of("object"), d = lit(default_mode)
                )},
                {"name": "scaleBefore", "expression": format!("{} == null ? 0 : {}", at("oldObject", "/spec/replicas"), at("oldObject", "/spec/replicas"))},
                {"name": "scaleAfter", "expression": format!("{} == null ? 0 : {}", at("object", "/spec/replicas"), at("object", "/spec/replicas"))},
                {"name": "ops", "expression": ops},
                {"name": "blocked", "expression": format!(
                    "variables.ops.filter(o, (variables.mode in {blocked} && o in {blocked}[variables.mode]) || (variables.oldMode in {blocked} && o in {blocked}[variables.oldMode]))"
                )},
            ],
            "validations": [
                {
                    "expression": format!(
                        "request.operation == 'DELETE' || variables.scale || ({a} == {na} && {l} == {nl})",
                        a = frozen_annotation("oldObject"), na = frozen_annotation("object"),
                        l = frozen_label("oldObject"), nl = frozen_label("object"),
                    ),
                    "messageExpression": format!("'R8: ' + {subject} + ': the annotation and label {FROZEN_ANNOTATION} are written by purchase-guard alone: they remember what a freeze changed and are removed when the customer is unfrozen (R9)'"),
                    "reason": "Forbidden",
                },
                {
                    "expression": format!(
                        "request.operation != 'UPDATE' || variables.scale || {a} == null || ({frozen_fields})",
                        a = frozen_annotation("oldObject"),
                    ),
                    "messageExpression": format!("'R8: ' + {subject} + ': it is frozen: its frozen fields keep their values until the customer is unfrozen (R9)'"),
                    "reason": "Forbidden",
                },
                {
                    "expression": "!(variables.scale && request.operation == 'UPDATE' && variables.state == 'frozen' && type(variables.scaleAfter) == int && type(variables.scaleBefore) == int && variables.scaleAfter > variables.scaleBefore && variables.scaleAfter > 0)",
                    "messageExpression": format!("'R8: ' + {subject} + ': the customer\\'s resources are frozen: scaling up is refused until the customer is unfrozen (R9)'"),
                    "reason": "Forbidden",
                },
                {
                    "expression": "variables.state == 'allowed' || size(variables.blocked) == 0",
                    "messageExpression": format!(
                        "'R7: the customer of namespace \"' + request.namespace + '\" is ' + (variables.state == 'unknown' ? 'of unknown state (the namespace has no {PURCHASES_LABEL} label yet)' : variables.state + ' ({PURCHASES_LABEL}: ' + variables.state + ')') + '; ' + variables.blocked.map(o, '\"' + o + '\"').join(', ') + ' of ' + variables.mode + ' resources is blocked while it is restricted'"
                    ),
                    "reason": "Forbidden",
                },
            ],
        },
    });
    // The masked comparisons' maps, before the operations that read them.
    if let Some(variables) = policy.pointer_mut("/spec/variables").and_then(Value::as_array_mut) {
        let at = variables
            .iter()
            .position(|v| v["name"] == "ops")
            .unwrap_or(variables.len());
        variables.splice(
            at..at,
            masks
                .into_iter()
                .map(|(name, expression)| json!({"name": name, "expression": expression})),
        );
    }
    policy
}

/// The matchConditions of the purchase policies: purchase-guard's own writes, and Kubernetes'
/// workload controllers writing objects they control, are not judged (as by the webhook).
fn match_conditions(settings: &super::Settings) -> Vec<Value> {
    let mut conditions = Vec::new();
    if !settings.controller_identities.is_empty() {
        let ids: Vec<String> = settings.controller_identities.iter().map(|u| lit(u)).collect();
        conditions.push(json!({
            "name": "not-purchase-guard",
            "expression": format!("!(request.userInfo.username in [{}])", ids.join(", ")),
        }));
    }
    if let Some(c) = super::configurations::not_a_controlled_child(&settings.workload_controllers) {
        conditions.push(c);
    }
    conditions
}

/// A JSON scalar as a CEL literal.
fn cel_value(v: &Value) -> String {
    match v {
        Value::String(s) => lit(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// The billing-mode label's policy: an unsupported value is refused on every guarded kind,
/// whatever the enforcement mode (as the webhook refuses it).
fn billing_mode_policy(name: &str, settings: &super::Settings) -> Value {
    use purchase_guard_policy::{BILLING_MODE_LABEL, BillingMode};
    let rules: Vec<Value> = settings
        .guarded
        .iter()
        .map(|g| {
            json!({"apiGroups": [g.group], "apiVersions": [g.version], "operations": ["CREATE", "UPDATE"], "resources": [g.resource]})
        })
        .collect();
    let modes: Vec<String> = BillingMode::ALL.iter().map(|m| lit(m.as_str())).collect();
    let label = lit(BILLING_MODE_LABEL);
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": format!("{name}-billing-mode")},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": rules,
                "namespaceSelector": {"matchExpressions": [{"key": GUARDED_LABEL, "operator": "Exists"}]},
            },
            "matchConditions": match_conditions(settings),
            "validations": [{
                "expression": format!(
                    "!has(object.metadata.labels) || !({label} in object.metadata.labels) || object.metadata.labels[{label}] in [{}]",
                    modes.join(", ")
                ),
                "messageExpression": format!(
                    "'metadata.labels[\"{BILLING_MODE_LABEL}\"]: unsupported billing mode \"' + object.metadata.labels[{label}] + '\": supported values: {}'",
                    BillingMode::ALL.iter().map(|m| format!("\\\"{}\\\"", m.as_str())).collect::<Vec<_>>().join(", ")
                ),
                "reason": "Invalid",
            }],
        },
    })
}

/// Strict mode's policy: guarded kinds are created only in customers' (guarded) namespaces,
/// except in the exempt ones, as the webhook refuses them.
fn strict_policy(name: &str, settings: &super::Settings, exempt: &[String]) -> Value {
    let rules: Vec<Value> = settings
        .guarded
        .iter()
        .map(|g| json!({"apiGroups": [g.group], "apiVersions": [g.version], "operations": ["CREATE"], "resources": [g.resource]}))
        .collect();
    let mut selector = vec![json!({"key": GUARDED_LABEL, "operator": "DoesNotExist"})];
    if !exempt.is_empty() {
        selector.push(json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": exempt}));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": format!("{name}-strict")},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": rules,
                "namespaceSelector": {"matchExpressions": selector},
            },
            "matchConditions": match_conditions(settings),
            "validations": [{
                "expression": "false",
                "messageExpression": "'R7: namespace \"' + request.namespace + '\" belongs to no customer, and purchase-guard runs in strict mode: ' + request.resource.resource + ' are created only in customers\\' namespaces; list the namespace in a CustomerAccount\\'s spec.namespaces, or exempt it (webhook.strict.exemptNamespaces)'",
                "reason": "Forbidden",
            }],
        },
    })
}

fn binding(policy: &str, actions: &[&str]) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy},
        "spec": {"policyName": policy, "validationActions": actions},
    })
}

/// The ValidatingAdmissionPolicies and bindings that refuse in the API server what the
/// purchase webhook refuses, from the same settings (guarded kinds with their field roles and
/// freeze actions, the R7 matrix, the billing-mode default, the exempt users): one policy per
/// guarded kind, bound with the enforcement mode's action (deny: Deny, warn: Warn, dryrun:
/// Audit), one for the billing-mode label, always Deny, and in strict mode one that refuses
/// creating guarded kinds outside customers' namespaces. They read the customer's state
/// from the namespace's [`PURCHASES_LABEL`] (absent: unknown, refused as by the webhook).
pub fn purchases(name: &str, settings: &super::Settings) -> Vec<Value> {
    if settings.guarded.is_empty() {
        return Vec::new();
    }
    let action = match settings.enforcement {
        super::Enforcement::Deny => "Deny",
        super::Enforcement::Warn => "Warn",
        super::Enforcement::Dryrun => "Audit",
    };
    let mut out = Vec::new();
    for g in &settings.guarded {
        let policy = purchase_policy(name, settings, g);
        let policy_name = purchase_policy_name(name, g);
        out.push(policy);
        out.push(binding(&policy_name, &[action]));
    }
    let billing = billing_mode_policy(name, settings);
    out.push(billing);
    out.push(binding(&format!("{name}-billing-mode"), &["Deny"]));
    if let Some(exempt) = &settings.strict {
        out.push(strict_policy(name, settings, exempt));
        out.push(binding(&format!("{name}-strict"), &[action]));
    }
    out
}
