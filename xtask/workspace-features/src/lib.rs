//! Intentionally empty: this crate exists for its `Cargo.toml`, which turns
//! on in `cargo xtask`'s build the dependency features the rest of the
//! workspace turns on, so both builds share one set of compiled
//! dependencies.
