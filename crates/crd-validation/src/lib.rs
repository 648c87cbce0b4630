//! Validation of objects against CustomResourceDefinitions, as kube-apiserver does it for
//! structural schemas: types, formats, required fields, enums, patterns, lengths, item
//! counts, list sets, defaults, pruning of unknown fields, object names, and
//! `x-kubernetes-validations` CEL rules (through kube-cel, transition rules included).
//! Errors are worded like kube-apiserver's field errors, so that a client prints what it
//! prints against a real cluster.

mod field;
mod node;
mod rules;
mod schema;

pub use field::{FieldError, FieldErrorType, Invalid, Rejected};
pub use schema::{
    CrdValidator, FieldValidation, LoadError, Validated, validate_dns1123_label, validate_dns1123_subdomain,
};
