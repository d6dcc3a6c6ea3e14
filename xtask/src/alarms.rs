//! `cargo xtask alarms --stage S`: the rollback alarms stage `S` deploys for
//! every service, resolved by `local_aws::cloudwatch::alarms` exactly as the
//! rehearsal puts them, printed as JSON in `AWS::CloudWatch::Alarm`'s
//! property names. `infra/test/services.test.ts` compares them with the
//! synthesized stacks: the rehearsal evaluates the alarms the stage deploys.

use std::process::ExitCode;

use local_aws::cloudwatch::alarms::{AlarmTarget, Definition, StageThresholds};

/// Print a stage's rollback alarms.
#[derive(clap::Args)]
pub struct Args {
    /// The `infra/cdk.json` stage.
    #[arg(long)]
    pub stage: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = crate::rehearse::stage_settings(&args.stage)?;
    let definition = Definition::load()?;
    let mut alarms = Vec::new();
    for service in local_aws::registry::load()? {
        let target = AlarmTarget {
            app: settings.app.clone(),
            stage: args.stage.clone(),
            service: service.name.clone(),
            alias: String::from("live"),
            namespace: settings.namespace.clone(),
        };
        let thresholds = StageThresholds {
            p99_duration_ms: settings.p99.as_secs_f64() * 1000.0,
        };
        alarms.extend(
            definition
                .for_service(&service, thresholds)
                .iter()
                .map(|alarm| target.properties(alarm)),
        );
    }
    println!("{}", serde_json::to_string_pretty(&alarms)?);
    Ok(ExitCode::SUCCESS)
}
