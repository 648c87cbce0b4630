//! purchase-guard's admission webhooks and the HTTPS server that carries them.

pub mod tls;
