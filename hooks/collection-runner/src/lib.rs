//! A Postman collection runner with newman's semantics, for the deployment
//! hooks (no Node runtime, milliseconds to start) and as a `newman run`
//! compatible CLI (`collection-runner run …`).
//!
//! Flow: [`collection`] loads files → [`runner::run`] walks the items →
//! [`sandbox`] runs prerequest and test scripts in QuickJS →
//! [`request`] resolves variables ([`variables`], [`dynamic`]) and applies [`auth`] →
//! a [`transport::Transport`] sends → [`report`] renders the results.

pub mod auth;
pub mod cli;
pub mod collection;
pub mod data;
pub mod dynamic;
pub mod export;
pub mod report;
pub mod request;
pub mod runner;
pub mod sandbox;
pub mod transport;
pub mod variables;
