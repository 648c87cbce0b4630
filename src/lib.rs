//! purchase-guard: restricts purchases of partner customers in Kubernetes.
//!
//! The layers, each depending only on those below it:
//!
//! - [`api`]: the custom resources (group `purchaseguard.io`, version `v1alpha1`), and
//!   [`crdgen`]: the CustomResourceDefinitions generated from them.
//! - the rules: the `purchase-guard-policy` crate, the pure policy core (no I/O, no clock).
//! - [`index`]: the watched objects and the indexes over them, translated into the core's
//!   types.
//! - [`controller`]: the reconcilers writing status conditions and events.
//! - [`verification`]: verification codes (R5): the partners' secrets and one-time ledgers in
//!   the API server; the rule is the policy core's.
//! - [`webhook`]: the admission webhooks, reading the index; the only API calls on their path
//!   are verification's, for restriction operations of partners that require codes.
//! - [`runtime`]: the process: one start path, leader election, health, metrics, logging.
//! - [`plugin`]: `kubectl purchase-guard`, a client: it reads what the controller wrote and
//!   judges with the policy core.

pub mod api;
pub mod controller;
pub mod crdgen;
pub mod index;
pub mod plugin;
pub mod runtime;
pub mod verification;
pub mod webhook;
