//! The crate's integration tests, one module per file beside this one, in
//! one test binary: one link instead of one per file, and a fraction of the
//! disk (each binary links the whole SDK stack).

mod assertions;
mod data_differential;
mod differential;
mod lambda_transport;
mod loader_properties;
mod newman_cli;
mod sandbox_bundle;
