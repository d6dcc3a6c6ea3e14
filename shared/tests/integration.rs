//! The crate's integration tests, one module per file beside this one, in
//! one test binary: one link instead of one per file, and a fraction of the
//! disk (each binary links the whole SDK stack).

mod auth;
mod config_override;
mod credentials;
mod http_edge;
mod idempotency;
mod secrets;
mod ssm_config;
