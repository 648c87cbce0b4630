//! StorageClasses as kube-apiserver judges them (`pkg/apis/storage/validation`): a
//! provisioner that is a qualified name, a known reclaim policy and binding mode; once
//! created, the provisioner, parameters, reclaim policy and binding mode are fixed.

use super::{Problem, qualified_name_problems, text};
use serde_json::Value;

pub fn storage_class(obj: &Value, old: Option<&Value>, out: &mut Vec<Problem>) {
    let provisioner = text(obj, "provisioner");
    if provisioner.is_empty() {
        out.push(Problem::required("provisioner"));
    } else {
        super::invalid_each(
            "provisioner",
            provisioner,
            qualified_name_problems(&provisioner.to_lowercase()),
            out,
        );
    }
    // Both are defaulted before validation (Delete, Immediate).
    let policy = text(obj, "reclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Retain") {
        out.push(Problem::not_supported("reclaimPolicy", policy, &["Delete", "Retain"]));
    }
    let mode = text(obj, "volumeBindingMode");
    if !matches!(mode, "Immediate" | "WaitForFirstConsumer") {
        out.push(Problem::not_supported(
            "volumeBindingMode",
            mode,
            &["Immediate", "WaitForFirstConsumer"],
        ));
    }
    let Some(old) = old else { return };
    let parameters = |o: &Value| {
        o.get("parameters")
            .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()))
            .cloned()
    };
    if parameters(obj) != parameters(old) {
        out.push(Problem::forbidden("parameters", "updates to parameters are forbidden."));
    }
    if provisioner != text(old, "provisioner") {
        out.push(Problem::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if policy != text(old, "reclaimPolicy") {
        out.push(Problem::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if mode != text(old, "volumeBindingMode") {
        out.push(Problem::invalid(
            "volumeBindingMode",
            &format!("{mode:?}"),
            "field is immutable",
        ));
    }
}
