//! The crate's integration tests, one module per file beside this one, in
//! one test binary: one link instead of one per file, and a fraction of the
//! disk (each binary links the whole SDK stack).

mod apigateway;
mod cloudwatch;
mod deployments;
mod faults;
mod identity;
mod process;
mod rollback_alarms;
