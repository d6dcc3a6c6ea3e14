//! `collection-runner run <collection> [options]`: the `newman run` command line ([`collection_runner::cli`]).

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    collection_runner::cli::main(std::env::args().skip(1).collect()).await
}
