//! Field errors in kube-apiserver's wording (`k8s.io/apimachinery/pkg/util/validation/field`).

use serde_json::Value;
use std::fmt;

/// The type of a field error, as kube-apiserver names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    NotSupported,
    TooLong,
    TooMany,
    Duplicate,
    Forbidden,
}

impl FieldErrorType {
    /// The `reason` of a `StatusCause` for this error type.
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Forbidden => "FieldValueForbidden",
        }
    }
}

/// One field error: a path such as `spec.reason`, a type, and details.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub kind: FieldErrorType,
    /// The offending value, when kube-apiserver prints it.
    pub value: Option<Value>,
    pub detail: String,
}

/// How kube-apiserver prints a value inside a field error: strings quoted, numbers and
/// booleans bare, objects and arrays by their type name.
fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

impl fmt::Display for FieldError {
    /// `path: Type`, then `: value` for the types whose value kube-apiserver prints, then
    /// `: detail`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, shows_value) = match self.kind {
            FieldErrorType::Required => ("Required value", false),
            FieldErrorType::Invalid => ("Invalid value", true),
            FieldErrorType::NotSupported => ("Unsupported value", true),
            FieldErrorType::TooLong => ("Too long", false),
            FieldErrorType::TooMany => ("Too many", true),
            FieldErrorType::Duplicate => ("Duplicate value", true),
            FieldErrorType::Forbidden => ("Forbidden", false),
        };
        write!(f, "{}: {name}", self.path)?;
        if shows_value && let Some(v) = &self.value {
            write!(f, ": {}", show_value(v))?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// An object rejected with field errors: kube-apiserver's 422 `Invalid`.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub kind: String,
    pub name: String,
    pub causes: Vec<FieldError>,
}

impl fmt::Display for Invalid {
    /// `The Kind "name" is invalid: cause`, or `[cause, cause]` for several, as
    /// kube-apiserver's `NewInvalid` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "The {} \"{}\" is invalid: ", self.kind, self.name)?;
        let causes: Vec<String> = self.causes.iter().map(|c| c.to_string()).collect();
        if causes.len() == 1 {
            f.write_str(&causes[0])
        } else {
            write!(f, "[{}]", causes.join(", "))
        }
    }
}

impl std::error::Error for Invalid {}

/// Why an object was rejected.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejected {
    /// No CRD serves this apiVersion and kind.
    UnknownKind { api_version: String, kind: String },
    /// Unknown fields under `fieldValidation=Strict` (kube-apiserver answers 400 BadRequest).
    StrictDecoding {
        kind: String,
        version: String,
        unknown: Vec<String>,
    },
    /// Field errors (kube-apiserver answers 422 Invalid).
    Invalid(Invalid),
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::UnknownKind { api_version, kind } => {
                write!(f, "no matches for kind \"{kind}\" in version \"{api_version}\"")
            }
            Rejected::StrictDecoding { kind, version, unknown } => {
                let fields: Vec<String> = unknown.iter().map(|u| format!("unknown field \"{u}\"")).collect();
                write!(
                    f,
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                    fields.join(", ")
                )
            }
            Rejected::Invalid(invalid) => invalid.fmt(f),
        }
    }
}

impl std::error::Error for Rejected {}
