//! The crate's integration tests, one module per file beside this one, in
//! one test binary: one link instead of one per file, and a fraction of the
//! disk (each binary links the whole SDK stack).

mod common;
mod faults;
mod idempotency;
mod model;
mod pact_consumer;
mod security;
mod synthetic;
mod xray;
