//! The rollback alarms' one definition as the rehearsal reads it: the
//! shipped file resolves for every registered service and every stage of
//! `infra/cdk.json` to the file's alarms (the stage's p99 filled in) plus
//! the service's business alarms, and a definition that would not see 5xx
//! answers — the defect of issue 17 — is refused, as are malformed ones,
//! each naming the field.

use local_aws::cloudwatch::alarms::{
    Comparison, Definition, DefinitionError, SERVER_ERRORS, Source, StageThresholds, Statistic, TreatMissingData,
    Watched,
};
use serde_json::{Value, json};

fn shipped() -> Value {
    let path = local_aws::workspace_root().join("infra/rollback-alarms.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read(spec: &Value) -> Result<Definition, DefinitionError> {
    let dir = std::env::temp_dir().join(local_aws::unique("alarms"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rollback-alarms.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let read = Definition::read(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    read
}

#[test]
fn every_service_in_every_stage_gets_the_files_alarms_and_its_own() {
    let definition = Definition::load().unwrap();
    let cdk: Value =
        serde_json::from_str(&std::fs::read_to_string(local_aws::workspace_root().join("infra/cdk.json")).unwrap())
            .unwrap();
    let stages = cdk["context"]["fintech"]["stages"].as_array().unwrap();
    let file_ids: Vec<String> = shipped()["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    for service in local_aws::registry::load().unwrap() {
        for stage in stages {
            let p99 = stage["p99DurationMs"].as_f64().unwrap();
            let alarms = definition.for_service(&service, StageThresholds { p99_duration_ms: p99 });
            let ids: Vec<&str> = alarms.iter().map(|a| a.id.as_str()).collect();
            let expected: Vec<&str> = file_ids
                .iter()
                .map(String::as_str)
                .chain(service.spec.alarms.keys().map(String::as_str))
                .collect();
            assert_eq!(ids, expected, "{} in {}", service.name, stage["name"]);
            let p99_alarm = alarms.iter().find(|a| a.id == "P99Duration").unwrap();
            assert_eq!(p99_alarm.threshold, p99);
            let rate = alarms.iter().find(|a| a.id == "ServerErrorRate").unwrap();
            let Watched::Metric(metric) = &rate.watched else {
                panic!("{rate:?}")
            };
            assert_eq!(
                (metric.source, metric.name.as_str(), metric.statistic),
                (Source::Api, SERVER_ERRORS, Statistic::Average)
            );
            for alarm in &alarms {
                assert_eq!(
                    (
                        alarm.period_seconds,
                        alarm.evaluation_periods,
                        alarm.datapoints_to_alarm
                    ),
                    (60, 1, 1)
                );
                assert_eq!(alarm.comparison, Comparison::GreaterThanOrEqualToThreshold);
                assert_eq!(alarm.treat_missing_data, TreatMissingData::NotBreaching);
            }
            for (name, threshold) in &service.spec.alarms {
                let business = alarms.iter().find(|a| &a.id == name).unwrap();
                assert_eq!(business.threshold, *threshold);
                assert!(
                    matches!(&business.watched, Watched::Metric(m) if m.source == Source::Service && &m.name == name && m.statistic == Statistic::Sum),
                    "{business:?}"
                );
            }
        }
    }
}

#[test]
fn an_alarm_set_that_misses_5xx_responses_is_refused() {
    let mut spec = shipped();
    let alarms = spec["alarms"].as_array_mut().unwrap();
    alarms.retain(|a| a["metric"]["name"] != SERVER_ERRORS);
    let err = read(&spec).unwrap_err();
    assert!(
        err.to_string().contains("none watches the API's 5XXError metric"),
        "{err}"
    );
}

#[test]
fn a_malformed_definition_names_the_field() {
    type Mutation = fn(&mut Value);
    let cases: [(&str, Mutation, &str); 8] = [
        ("zero period", |s| s["periodSeconds"] = json!(0), "periodSeconds"),
        ("M over N", |s| s["datapointsToAlarm"] = json!(2), "datapointsToAlarm"),
        ("unknown comparison", |s| s["comparison"] = json!("Above"), "Above"),
        (
            "unknown missing-data mode",
            |s| s["treatMissingData"] = json!("zero"),
            "zero",
        ),
        (
            "unknown source",
            |s| s["alarms"][1]["metric"]["source"] = json!("queue"),
            "queue",
        ),
        (
            "unknown statistic",
            |s| s["alarms"][1]["metric"]["statistic"] = json!("Median"),
            "Median",
        ),
        (
            "metric and expression",
            |s| s["alarms"][1]["expression"] = json!("m1"),
            "alarms[1]",
        ),
        (
            "expression without metrics",
            |s| s["alarms"][2]["using"] = json!({}),
            "alarms[2].using",
        ),
    ];
    for (name, mutate, named) in cases {
        let mut spec = shipped();
        mutate(&mut spec);
        let err = read(&spec).expect_err(name);
        assert!(err.to_string().contains(named), "{name}: {err}");
    }
}
