//! The crate's integration tests, one module per file beside this one, in
//! one test binary: one link instead of one per file, and a fraction of the
//! disk (each binary links the whole SDK stack).

mod fault_matrix;
mod hook_binary;
mod hook_config;
