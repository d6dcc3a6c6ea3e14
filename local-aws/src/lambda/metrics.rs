//! What Lambda's own metrics are made of: one record per invocation, with
//! the dimensions Lambda publishes them under (`FunctionName`, `Resource` =
//! `function:alias` or `function:version` when invoked through a
//! qualifier, `ExecutedVersion`).

use std::time::{Duration, SystemTime};

/// How an invocation ended, as Lambda counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The function answered (whatever HTTP status its response carries).
    Answered,
    /// A function error (`Errors` counts it).
    FunctionError,
}

/// One invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// When it started.
    pub at: SystemTime,
    /// The function's name.
    pub function: String,
    /// The qualifier it was invoked with (an alias or a version), if any.
    pub qualifier: Option<String>,
    /// The version that ran.
    pub executed_version: String,
    /// How it ended.
    pub ending: Ending,
    /// How long it took.
    pub duration: Duration,
}

impl Invocation {
    /// The `Resource` dimension: `function:qualifier`, or the function alone.
    pub fn resource(&self) -> String {
        match &self.qualifier {
            Some(qualifier) => format!("{}:{qualifier}", self.function),
            None => self.function.clone(),
        }
    }
}
