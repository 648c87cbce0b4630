//! ValidatingAdmissionPolicies, evaluated as kube-apiserver 1.33 evaluates them: after the
//! mutating webhooks and schema validation, before the validating webhooks.
//!
//! For each ValidatingAdmissionPolicyBinding whose policy exists: the policy's
//! `matchConstraints` and the binding's `matchResources` (resource rules with exclusions,
//! namespace and object selectors), the params (`paramKind` and the binding's `paramRef`, by
//! name or selector, with `parameterNotFoundAction`), the `matchConditions`, the `variables`
//! and the `validations` (`message`, `messageExpression`, `reason`), then the binding's
//! `validationActions`: Deny refuses with kube-apiserver's wording, Warn adds a warning, Audit
//! is accepted and has no effect (the sandbox keeps no audit log). An expression that fails
//! (to compile or to evaluate) follows the policy's `failurePolicy`. CEL comes from kube-cel
//! with the Kubernetes libraries; `authorizer` is not available. `matchPolicy: Equivalent`
//! matches a rule naming another served version of the same resource.

use super::Request;
use super::matching::{labels_of, strings};
use crate::selectors::LabelSelector;
use crate::status::ApiError;
use crate::store::{Key, Store};
use kube_cel::KubeCelExt;
use kube_cel::cel::extractors::This;
use kube_cel::cel::objects::{Key as CelKey, Map};
use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub const POLICIES: &str = "admissionregistration.k8s.io/validatingadmissionpolicies";
pub const BINDINGS: &str = "admissionregistration.k8s.io/validatingadmissionpolicybindings";

/// A kind's served resources: the store prefix of objects of `apiVersion`/`kind`, whether they
/// are namespaced, and the versions the same group and resource are served at.
pub struct Served {
    pub resource: String,
    pub namespaced: bool,
}

/// What the server knows of the served types, for params and `matchPolicy: Equivalent`.
pub trait Types {
    /// The served resource of objects of `api_version` and `kind`.
    fn by_kind(&self, api_version: &str, kind: &str) -> Option<Served>;
    /// The versions `group`/`plural` is served at.
    fn versions(&self, group: &str, plural: &str) -> Vec<String>;
}

/// JSON as CEL: objects as maps with their keys as they are (labels and annotations are read
/// as `object.metadata.labels['app.kubernetes.io/name']`), numbers as int, uint or double.
pub fn to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: HashMap<CelKey, Cel> = o
                .iter()
                .map(|(k, v)| (CelKey::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

/// CEL's `type(x)` and the type values it is compared with (`type(x) == int`), which the CEL
/// library here lacks: types as their names.
fn add_type_values(ctx: &mut Context) {
    fn type_name(This(this): This<Cel>) -> Arc<String> {
        Arc::new(
            match this {
                Cel::Int(_) => "int",
                Cel::UInt(_) => "uint",
                Cel::Float(_) => "double",
                Cel::String(_) => "string",
                Cel::Bool(_) => "bool",
                Cel::Map(_) => "map",
                Cel::List(_) => "list",
                Cel::Null => "null_type",
                Cel::Bytes(_) => "bytes",
                Cel::Duration(_) => "google.protobuf.Duration",
                Cel::Timestamp(_) => "google.protobuf.Timestamp",
                _ => "dyn",
            }
            .to_string(),
        )
    }
    ctx.add_function("type", type_name);
    for name in [
        "int",
        "uint",
        "double",
        "string",
        "bool",
        "map",
        "list",
        "null_type",
        "bytes",
    ] {
        ctx.add_variable_from_value(name, Cel::String(Arc::new(name.to_string())));
    }
}

/// One outcome of a binding.
enum Outcome {
    /// The binding does not apply, or its validations passed.
    Pass,
    /// A validation failed (or an expression failed under failurePolicy Fail).
    Failed { message: String, reason: String },
}

/// The status code of a validation's `reason`.
fn code_of(reason: &str) -> (u16, &'static str) {
    match reason {
        "Unauthorized" => (401, "Unauthorized"),
        "Forbidden" => (403, "Forbidden"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    }
}

/// Whether one of `rules` (resourceRules or excludeResourceRules) matches, with
/// `resourceNames`; `equivalent` also accepts the resource's other served versions.
fn rules_match(rules: Option<&Value>, req: &Request, versions: &[String], equivalent: bool) -> bool {
    let rules = rules.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    rules.iter().any(|rule| {
        let names = strings(rule.get("resourceNames"));
        let name_ok = names.is_empty() || names.contains(&req.name);
        if !name_ok {
            return false;
        }
        if super::matching::rule_matches(rule, req) {
            return true;
        }
        // Equivalent: the same rule for another version the resource is served at.
        equivalent
            && versions.iter().filter(|v| **v != req.rt.version).any(|v| {
                let wanted = strings(rule.get("apiVersions"));
                wanted.contains(&v.as_str()) && {
                    let mut any_version = rule.clone();
                    any_version["apiVersions"] = json!(["*"]);
                    super::matching::rule_matches(&any_version, req)
                }
            })
    })
}

/// Whether `constraints` (a policy's matchConstraints or a binding's matchResources) match.
fn constraints_match(
    namespace: Option<&Value>,
    constraints: &Value,
    req: &Request,
    object: Option<&Value>,
    versions: &[String],
    rules_required: bool,
) -> bool {
    let equivalent = constraints.get("matchPolicy").and_then(Value::as_str) != Some("Exact");
    let rules = constraints.get("resourceRules");
    if (rules_required || rules.is_some()) && !rules_match(rules, req, versions, equivalent) {
        return false;
    }
    if rules_match(constraints.get("excludeResourceRules"), req, versions, equivalent) {
        return false;
    }
    let is_namespace = req.rt.group.is_empty() && req.rt.plural == "namespaces";
    if let Some(selector) = constraints.get("namespaceSelector").filter(|s| s.is_object())
        && (is_namespace || req.rt.namespaced)
    {
        let labels = if is_namespace {
            labels_of(object.or(req.old)).cloned()
        } else {
            namespace.and_then(|n| n.pointer("/metadata/labels").cloned())
        };
        if !LabelSelector::matches_object_selector(selector, labels.as_ref()) {
            return false;
        }
    }
    if let Some(selector) = constraints.get("objectSelector").filter(|s| s.is_object()) {
        let matches =
            |o: Option<&Value>| o.is_some_and(|o| LabelSelector::matches_object_selector(selector, labels_of(Some(o))));
        if !matches(object) && !matches(req.old) {
            return false;
        }
    }
    true
}

fn namespace_object(store: &Store, req: &Request) -> Option<Value> {
    let ns = req.namespace.filter(|_| req.rt.namespaced)?;
    store
        .lock()
        .get(&Key::new("/namespaces", "", ns))
        .map(|n| (**n).clone())
}

/// The `request` variable.
fn request_value(req: &Request) -> Value {
    let (group, version, kind) = match req.object_kind {
        Some((g, v, k)) => (g.to_string(), v.to_string(), k.to_string()),
        None => (req.rt.group.clone(), req.rt.version.clone(), req.rt.kind.clone()),
    };
    let resource = json!({"group": req.rt.group, "version": req.rt.version, "resource": req.rt.plural});
    let kind = json!({"group": group, "version": version, "kind": kind});
    json!({
        "uid": "",
        "kind": kind,
        "resource": resource,
        "subResource": req.subresource.unwrap_or_default(),
        "requestKind": kind,
        "requestResource": resource,
        "requestSubResource": req.subresource.unwrap_or_default(),
        "name": req.name,
        "namespace": req.namespace.unwrap_or_default(),
        "operation": req.operation,
        "userInfo": {"username": req.user.name, "uid": req.user.uid, "groups": req.user.groups},
        "dryRun": req.dry_run,
        "options": req.options,
    })
}

/// Compiled expressions, by their text: a policy's programs are compiled once.
fn compiled(expression: &str) -> Result<Arc<Program>, String> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<String, Arc<Program>>>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(expression) {
        return Ok(p.clone());
    }
    let program = Arc::new(Program::compile(expression).map_err(|e| format!("compilation failed: {e}"))?);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    // Bounded: policies come and go; a full cache starts again.
    if cache.len() >= 4096 {
        cache.clear();
    }
    cache.insert(expression.to_string(), program.clone());
    Ok(program)
}

/// An expression's result, or why it has none.
fn run(ctx: &Context, expression: &str) -> Result<Cel, String> {
    compiled(expression)?.execute(ctx).map_err(|e| e.to_string())
}

fn truth(ctx: &Context, expression: &str) -> Result<bool, String> {
    match run(ctx, expression)? {
        Cel::Bool(b) => Ok(b),
        other => Err(format!("expected a bool, got {other:?}")),
    }
}

/// What `matchConditions` decide, as kube-apiserver's matcher decides: a condition that is
/// false skips the webhook or policy, whatever the others give; when none is false, those that
/// failed to evaluate leave the choice to the failurePolicy.
pub enum Matched {
    Yes,
    No,
    /// No condition was false; these failed, as (name, error), the error worded
    /// `expression '<expression>' resulted in error: <why>`.
    Failed(Vec<(String, String)>),
}

pub fn match_conditions(ctx: &Context, conditions: Option<&Value>) -> Matched {
    let mut failed = Vec::new();
    for condition in conditions.and_then(Value::as_array).into_iter().flatten() {
        let expression = condition.get("expression").and_then(Value::as_str).unwrap_or_default();
        match truth(ctx, expression) {
            Ok(true) => {}
            Ok(false) => return Matched::No,
            Err(e) => {
                let name = condition.get("name").and_then(Value::as_str).unwrap_or_default();
                failed.push((
                    name.to_string(),
                    format!("expression '{expression}' resulted in error: {e}"),
                ));
            }
        }
    }
    if failed.is_empty() {
        Matched::Yes
    } else {
        Matched::Failed(failed)
    }
}

/// The variables of an admission request's CEL expressions: `object`, `oldObject`, `request`
/// (policies add `namespaceObject`, `params` and `variables`).
pub fn request_context(object: Option<&Value>, req: &Request) -> Context<'static> {
    let mut ctx = Context::default();
    ctx.register_all();
    add_type_values(&mut ctx);
    ctx.add_variable_from_value("object", object.map_or(Cel::Null, to_cel));
    ctx.add_variable_from_value("oldObject", req.old.map_or(Cel::Null, to_cel));
    ctx.add_variable_from_value("request", to_cel(&request_value(req)));
    ctx
}

/// Evaluates one policy for one set of params (or none).
fn evaluate(policy: &Value, base: &Context, params: Option<&Value>) -> Outcome {
    let spec = policy.get("spec").cloned().unwrap_or(json!({}));
    let ignore = spec.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
    let failed = |message: String| {
        if ignore {
            Outcome::Pass
        } else {
            Outcome::Failed {
                message,
                reason: String::new(),
            }
        }
    };
    let mut ctx = base.new_inner_scope();
    ctx.add_variable_from_value("params", params.map_or(Cel::Null, to_cel));
    match match_conditions(&ctx, spec.get("matchConditions")) {
        Matched::Yes => {}
        Matched::No => return Outcome::Pass,
        Matched::Failed(errors) => {
            let (name, e) = &errors[0];
            return failed(format!("failed to evaluate match condition {name:?}: {e}"));
        }
    }
    // Variables in order, each seeing the earlier ones; one that fails fails the
    // validations that use it.
    let mut variables: HashMap<CelKey, Cel> = HashMap::new();
    let mut broken: Vec<(String, String)> = Vec::new();
    for variable in spec.get("variables").and_then(Value::as_array).into_iter().flatten() {
        let name = variable
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let expression = variable.get("expression").and_then(Value::as_str).unwrap_or_default();
        let mut scope = ctx.new_inner_scope();
        scope.add_variable_from_value(
            "variables",
            Cel::Map(Map {
                map: Arc::new(variables.clone()),
            }),
        );
        match run(&scope, expression) {
            Ok(v) => {
                variables.insert(CelKey::String(Arc::new(name)), v);
            }
            Err(e) => broken.push((name, e)),
        }
    }
    ctx.add_variable_from_value(
        "variables",
        Cel::Map(Map {
            map: Arc::new(variables),
        }),
    );
    for validation in spec.get("validations").and_then(Value::as_array).into_iter().flatten() {
        let expression = validation.get("expression").and_then(Value::as_str).unwrap_or_default();
        let uses_broken = broken
            .iter()
            .find(|(name, _)| expression.contains(&format!("variables.{name}")));
        let result = match uses_broken {
            Some((name, e)) => Err(format!("variable {name:?}: {e}")),
            None => truth(&ctx, expression),
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                let message = validation
                    .get("messageExpression")
                    .and_then(Value::as_str)
                    .and_then(|m| match run(&ctx, m) {
                        Ok(Cel::String(s)) if !s.trim().is_empty() && !s.contains('\n') => Some(s.to_string()),
                        _ => None,
                    })
                    .or_else(|| validation.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| format!("failed expression: {expression}"));
                let reason = validation
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                return Outcome::Failed { message, reason };
            }
            Err(e) => {
                if ignore {
                    continue;
                }
                return failed(format!("expression '{expression}' resulted in error: {e}"));
            }
        }
    }
    // Audit annotations: evaluated as kube-apiserver evaluates them (a string, or null for
    // none; anything else, or an error, under the failurePolicy); their values would go to the
    // audit log, which the sandbox does not keep.
    for annotation in spec
        .get("auditAnnotations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let expression = annotation
            .get("valueExpression")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match run(&ctx, expression) {
            Ok(Cel::String(_) | Cel::Null) => {}
            Ok(other) if !ignore => {
                return failed(format!(
                    "valueExpression '{expression}' resulted in error: expected a string or null, got {other:?}"
                ));
            }
            Err(e) if !ignore => {
                return failed(format!("valueExpression '{expression}' resulted in error: {e}"));
            }
            _ => {}
        }
    }
    Outcome::Pass
}

/// The params a binding names: `None` when the policy takes none; `Err` when they are
/// required and missing (the message).
fn params_of(
    store: &Store,
    types: &dyn Types,
    policy: &Value,
    binding: &Value,
    req: &Request,
) -> Result<Option<Vec<Value>>, Option<String>> {
    let Some(kind) = policy.pointer("/spec/paramKind").filter(|k| k.is_object()) else {
        return Ok(None);
    };
    let api_version = kind.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind_name = kind.get("kind").and_then(Value::as_str).unwrap_or_default();
    let reference = binding.pointer("/spec/paramRef").cloned().unwrap_or(Value::Null);
    let deny = reference.get("parameterNotFoundAction").and_then(Value::as_str) == Some("Deny");
    let missing = || {
        if deny {
            Err(Some(
                "no params found for policy binding with `Deny` parameterNotFoundAction".to_string(),
            ))
        } else {
            Err(None)
        }
    };
    let Some(served) = types.by_kind(api_version, kind_name) else {
        return Err(Some(format!(
            "failed to find resource referenced by paramKind: '{api_version}, Kind={kind_name}'"
        )));
    };
    if reference.is_null() {
        return missing();
    }
    let namespace = if served.namespaced {
        reference
            .get("namespace")
            .and_then(Value::as_str)
            .or(req.namespace)
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    let inner = store.lock();
    let found: Vec<Value> = match reference.get("name").and_then(Value::as_str) {
        Some(name) => inner
            .get(&Key::new(&served.resource, &namespace, name))
            .map(|o| (**o).clone())
            .into_iter()
            .collect(),
        None => {
            let selector = reference.get("selector").cloned().unwrap_or(json!({}));
            inner
                .list(&served.resource, served.namespaced.then_some(namespace.as_str()))
                .filter(|(_, o)| LabelSelector::matches_object_selector(&selector, labels_of(Some(o))))
                .map(|(_, o)| (**o).clone())
                .collect()
        }
    };
    drop(inner);
    if found.is_empty() {
        return missing();
    }
    Ok(Some(found))
}

/// Runs every binding that applies to the request; a Deny refuses it (the first one, in
/// binding name order), Warn adds warnings.
pub fn validate(
    store: &Store,
    types: &dyn Types,
    req: &Request,
    object: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    // Policies and bindings (and webhook configurations) are never subject to policies.
    if req.rt.group == "admissionregistration.k8s.io" {
        return Ok(());
    }
    let inner = store.lock();
    let policies: HashMap<String, Arc<Value>> = inner
        .list(POLICIES, None)
        .map(|(k, v)| (k.name.clone(), v.clone()))
        .collect();
    let bindings: Vec<(String, Arc<Value>)> = inner
        .list(BINDINGS, None)
        .map(|(k, v)| (k.name.clone(), v.clone()))
        .collect();
    drop(inner);
    if bindings.is_empty() {
        return Ok(());
    }
    let versions = types.versions(&req.rt.group, &req.rt.plural);
    let namespace = namespace_object(store, req);
    // The variables every policy sees, built once, when a binding first applies.
    let mut base: Option<Context> = None;
    let context = || {
        let mut ctx = request_context(object, req);
        ctx.add_variable_from_value("namespaceObject", namespace.as_ref().map_or(Cel::Null, to_cel));
        ctx
    };
    for (binding_name, binding) in bindings {
        let Some(policy_name) = binding.pointer("/spec/policyName").and_then(Value::as_str) else {
            continue;
        };
        let Some(policy) = policies.get(policy_name) else {
            continue;
        };
        let Some(constraints) = policy.pointer("/spec/matchConstraints") else {
            continue;
        };
        if !constraints_match(namespace.as_ref(), constraints, req, object, &versions, true) {
            continue;
        }
        if let Some(resources) = binding.pointer("/spec/matchResources").filter(|m| m.is_object())
            && !constraints_match(namespace.as_ref(), resources, req, object, &versions, false)
        {
            continue;
        }
        let actions = strings(binding.pointer("/spec/validationActions"));
        let ignore = policy.pointer("/spec/failurePolicy").and_then(Value::as_str) == Some("Ignore");
        let base = base.get_or_insert_with(context);
        let outcomes: Vec<Outcome> = match params_of(store, types, policy, &binding, req) {
            Ok(None) => vec![evaluate(policy, base, None)],
            Ok(Some(params)) => params.iter().map(|p| evaluate(policy, base, Some(p))).collect(),
            Err(None) => continue,
            Err(Some(_)) if ignore => continue,
            Err(Some(message)) => vec![Outcome::Failed {
                message,
                reason: String::new(),
            }],
        };
        for outcome in outcomes {
            let Outcome::Failed { message, reason } = outcome else {
                continue;
            };
            if actions.contains(&"Warn") {
                warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {message}"
                ));
            }
            if actions.contains(&"Deny") {
                let denied = format!(
                    "ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' denied request: {message}"
                );
                let (code, reason) = code_of(&reason);
                let qualified = ApiError::qualified(&req.rt.group, &req.rt.plural);
                let mut error = ApiError::new(
                    code,
                    reason,
                    format!("{qualified} \"{}\" is forbidden: {denied}", req.name),
                );
                error.details = Some(json!({
                    "name": req.name,
                    "group": req.rt.group,
                    "kind": req.rt.plural,
                    "causes": [{"message": denied}],
                }));
                return Err(error);
            }
        }
    }
    Ok(())
}

/// What kube-apiserver refuses in a policy or a binding, as (field, cause reason, message):
/// missing required fields, values out of their enums, expressions that do not compile.
pub fn check(kind: &str, object: &Value) -> Vec<(String, &'static str, String)> {
    let mut errors = Vec::new();
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let required = |errors: &mut Vec<_>, field: &str, why: &str| {
        errors.push((field.to_string(), "FieldValueRequired", format!("Required value{why}")));
    };
    let unsupported = |errors: &mut Vec<_>, field: &str, value: &str, allowed: &[&str]| {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        errors.push((
            field.to_string(),
            "FieldValueNotSupported",
            format!(
                "Unsupported value: \"{value}\": supported values: {}",
                allowed.join(", ")
            ),
        ));
    };
    let compiles = |errors: &mut Vec<_>, field: String, expression: &str| {
        if let Err(e) = Program::compile(expression) {
            errors.push((
                field,
                "FieldValueInvalid",
                format!("Invalid value: {expression:?}: compilation failed: {e}"),
            ));
        }
    };
    match kind {
        "ValidatingAdmissionPolicy" => {
            match spec.get("matchConstraints") {
                Some(m)
                    if m.get("resourceRules")
                        .and_then(Value::as_array)
                        .is_some_and(|r| !r.is_empty()) => {}
                Some(_) => required(&mut errors, "spec.matchConstraints.resourceRules", ""),
                None => required(&mut errors, "spec.matchConstraints", ""),
            }
            if let Some(policy) = spec.get("failurePolicy").and_then(Value::as_str)
                && !matches!(policy, "Fail" | "Ignore")
            {
                unsupported(&mut errors, "spec.failurePolicy", policy, &["Fail", "Ignore"]);
            }
            let count = |field: &str| spec.get(field).and_then(Value::as_array).map_or(0, Vec::len);
            if count("validations") + count("auditAnnotations") == 0 {
                required(
                    &mut errors,
                    "spec.validations",
                    ": validations or auditAnnotations must contain at least one item",
                );
            }
            for (list, fields) in [
                ("matchConditions", &["expression"][..]),
                ("variables", &["expression"][..]),
                ("validations", &["expression", "messageExpression"][..]),
                ("auditAnnotations", &["valueExpression"][..]),
            ] {
                for (i, item) in spec
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    for field in fields {
                        match item.get(*field).and_then(Value::as_str) {
                            Some(expression) => compiles(&mut errors, format!("spec.{list}[{i}].{field}"), expression),
                            None if *field == "expression" || *field == "valueExpression" => {
                                required(&mut errors, &format!("spec.{list}[{i}].{field}"), "")
                            }
                            None => {}
                        }
                    }
                }
            }
        }
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => {
            for (i, hook) in object
                .get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let conditions = hook.get("matchConditions").and_then(Value::as_array);
                let mut names = std::collections::HashSet::new();
                for (j, condition) in conditions.into_iter().flatten().enumerate() {
                    let at = format!("webhooks[{i}].matchConditions[{j}]");
                    match condition.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                        None => required(&mut errors, &format!("{at}.name"), ""),
                        Some(name) if !names.insert(name) => errors.push((
                            format!("{at}.name"),
                            "FieldValueDuplicate",
                            format!("Duplicate value: {name:?}"),
                        )),
                        Some(_) => {}
                    }
                    match condition
                        .get("expression")
                        .and_then(Value::as_str)
                        .filter(|e| !e.is_empty())
                    {
                        Some(expression) => compiles(&mut errors, format!("{at}.expression"), expression),
                        None => required(&mut errors, &format!("{at}.expression"), ""),
                    }
                }
                if let Some(count) = conditions.map(Vec::len).filter(|n| *n > 64) {
                    errors.push((
                        format!("webhooks[{i}].matchConditions"),
                        "FieldValueTooMany",
                        format!("Too many: {count}: must have at most 64 items"),
                    ));
                }
            }
        }
        "ValidatingAdmissionPolicyBinding" => {
            if spec.get("policyName").and_then(Value::as_str).is_none_or(str::is_empty) {
                required(&mut errors, "spec.policyName", "");
            }
            let actions = strings(spec.get("validationActions"));
            if actions.is_empty() {
                required(
                    &mut errors,
                    "spec.validationActions",
                    ": at least one validation action is required",
                );
            }
            for (i, action) in actions.iter().enumerate() {
                if !matches!(*action, "Deny" | "Warn" | "Audit") {
                    unsupported(
                        &mut errors,
                        &format!("spec.validationActions[{i}]"),
                        action,
                        &["Audit", "Deny", "Warn"],
                    );
                }
            }
            if actions.contains(&"Deny") && actions.contains(&"Warn") {
                errors.push((
                    "spec.validationActions".into(),
                    "FieldValueInvalid",
                    "Invalid value: [\"Deny\",\"Warn\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)".into(),
                ));
            }
        }
        _ => {}
    }
    errors
}
