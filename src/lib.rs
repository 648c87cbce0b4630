//! purchase-guard: restricts purchases of partner customers in Kubernetes.
//!
//! - [`api`]: the custom resources (group `purchaseguard.io`, version `v1alpha1`).
//! - [`crdgen`]: the CustomResourceDefinitions generated from them.
//!
//! The rules themselves live in the `purchase-guard-policy` crate, the pure policy core.

pub mod api;
pub mod controller;
pub mod crdgen;
pub mod index;
pub mod webhook;
