//! Alarm evaluation as CloudWatch documents it (the CloudWatch User Guide,
//! "Evaluating an alarm" and "Configuring how CloudWatch alarms treat
//! missing data"; `docs/cloudwatch-evaluation-cases.json` holds every
//! example the guide gives, and the tests run them all):
//!
//! - CloudWatch reads more datapoints than the N evaluation periods: the
//!   *evaluation range* ([`evaluation_range`]; the guide's examples use 5 for N = 3).
//! - With at least N real datapoints in the range, the newest N real ones
//!   decide: ALARM when at least M (datapoints to alarm) breach, else OK;
//!   how missing data is treated does not matter.
//! - With fewer, missing datapoints are filled "as few times as possible":
//!   every real datapoint in the range plus N − real filled ones, filled as
//!   breaching or not (`breaching`, `notBreaching`). With `missing`, only
//!   the real ones count, except the guide's *premature alarm* rule: when
//!   every real datapoint breaches and the oldest is at least M slots old
//!   (the newest slot being 1 old), the alarm goes to ALARM anyway; a range
//!   with no datapoint at all is INSUFFICIENT_DATA. `ignore` is `missing`
//!   except that what `missing` would decide on missing data alone (the
//!   premature ALARM, or INSUFFICIENT_DATA) keeps the current state.
//!
//! The premature-alarm reading (the age of the oldest breaching datapoint,
//! and that a real non-breaching datapoint anywhere in the range rules it
//! out) is inferred from the guide's examples, which it fits all of; the
//! guide does not define "as old as".

use super::alarms::{Comparison, Statistic, TreatMissingData};

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// Within the threshold.
    Ok,
    /// Breaching.
    Alarm,
    /// Not enough data to say.
    InsufficientData,
}

impl AlarmState {
    /// The name CloudWatch gives it (`StateValue`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One slot of the evaluation range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A datapoint past the threshold.
    Breaching,
    /// A datapoint within it.
    NotBreaching,
    /// No datapoint.
    Missing,
}

/// How many datapoints CloudWatch reads for N evaluation periods: the
/// guide's examples read 5 for N = 3; the range for other N is not
/// documented, so it is N + 2 here.
pub fn evaluation_range(evaluation_periods: usize) -> usize {
    evaluation_periods + 2
}

/// Whether `value` is past `threshold` by `comparison`.
pub fn breaches(value: f64, comparison: Comparison, threshold: f64) -> bool {
    match comparison {
        Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
        Comparison::GreaterThanThreshold => value > threshold,
        Comparison::LessThanThreshold => value < threshold,
        Comparison::LessThanOrEqualToThreshold => value <= threshold,
    }
}

/// The state an alarm with N = `evaluation_periods`, M =
/// `datapoints_to_alarm` and `treat` moves to from `current`, given its
/// evaluation range `range` (oldest first).
pub fn evaluate(
    range: &[Slot],
    evaluation_periods: usize,
    datapoints_to_alarm: usize,
    treat: TreatMissingData,
    current: AlarmState,
) -> AlarmState {
    let (n, m) = (evaluation_periods, datapoints_to_alarm);
    let real: Vec<(usize, Slot)> = range
        .iter()
        .rev()
        .enumerate()
        .filter(|(_, s)| **s != Slot::Missing)
        .map(|(age, s)| (age + 1, *s))
        .collect();
    let verdict = |breaching: usize| {
        if breaching >= m {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        }
    };
    let breaching = |points: &[(usize, Slot)]| points.iter().filter(|(_, s)| *s == Slot::Breaching).count();
    if real.len() >= n {
        return verdict(breaching(&real[..n]));
    }
    let filled = n - real.len();
    match treat {
        TreatMissingData::Breaching => verdict(breaching(&real) + filled),
        TreatMissingData::NotBreaching => verdict(breaching(&real)),
        TreatMissingData::Missing | TreatMissingData::Ignore => {
            let on_missing_data = if real.is_empty() {
                Some(AlarmState::InsufficientData)
            } else {
                let oldest = real.last().map_or(0, |(age, _)| *age);
                let premature = real.iter().all(|(_, s)| *s == Slot::Breaching) && oldest >= m;
                premature.then_some(AlarmState::Alarm)
            };
            match (on_missing_data, treat) {
                (Some(_), TreatMissingData::Ignore) => current,
                (Some(state), _) => state,
                (None, _) => verdict(breaching(&real)),
            }
        }
    }
}

/// `statistic` over one period's values; `None` when there are none (a
/// missing datapoint). Percentiles are nearest-rank over the raw values.
pub fn statistic(values: &[f64], statistic: Statistic) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let sum: f64 = values.iter().sum();
    Some(match statistic {
        Statistic::Sum => sum,
        Statistic::Average => sum / values.len() as f64,
        Statistic::SampleCount => values.len() as f64,
        Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
        Statistic::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Statistic::Percentile(p) => {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(text: &str) -> Vec<Slot> {
        text.split_whitespace()
            .map(|s| match s {
                "X" => Slot::Breaching,
                "0" => Slot::NotBreaching,
                "-" => Slot::Missing,
                other => panic!("{other}"),
            })
            .collect()
    }

    fn mode(name: &str) -> TreatMissingData {
        match name {
            "missing" => TreatMissingData::Missing,
            "ignore" => TreatMissingData::Ignore,
            "breaching" => TreatMissingData::Breaching,
            "notBreaching" => TreatMissingData::NotBreaching,
            other => panic!("{other}"),
        }
    }

    /// Every example of the CloudWatch User Guide, from the corpus a
    /// separate reading of the guide wrote (`docs/cloudwatch-evaluation-cases.json`).
    #[test]
    fn every_documented_example_evaluates_as_the_guide_says() {
        let path = crate::workspace_root().join("docs/cloudwatch-evaluation-cases.json");
        let corpus: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut checked = 0;
        for case in corpus["missingData"]
            .as_array()
            .unwrap()
            .iter()
            .chain(corpus["prematureAlarm"].as_array().unwrap())
        {
            let range = slots(case["datapoints"].as_str().unwrap());
            assert_eq!(
                range.len(),
                evaluation_range(case["evaluationPeriods"].as_u64().unwrap() as usize)
            );
            let n = case["evaluationPeriods"].as_u64().unwrap() as usize;
            let m = case["datapointsToAlarm"].as_u64().unwrap() as usize;
            for (name, expected) in case["expected"].as_object().unwrap() {
                // RETAIN: whatever the state was, it stays.
                for current in [AlarmState::Ok, AlarmState::Alarm, AlarmState::InsufficientData] {
                    let got = evaluate(&range, n, m, mode(name), current);
                    let ok = match expected.as_str().unwrap() {
                        "RETAIN" => got == current,
                        "NOT_ALARM" => got != AlarmState::Alarm,
                        state => got.as_str() == state,
                    };
                    assert!(ok, "{case}: {name} from {current:?} gave {got:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 100, "{checked} checks");
    }

    #[test]
    fn m_of_n_uses_the_newest_real_datapoints() {
        let treat = TreatMissingData::Missing;
        let ok = AlarmState::Ok;
        assert_eq!(evaluate(&slots("X X 0 0 0"), 3, 2, treat, ok), AlarmState::Ok);
        assert_eq!(evaluate(&slots("X X 0 X 0"), 3, 2, treat, ok), AlarmState::Ok);
        assert_eq!(evaluate(&slots("X 0 X X 0"), 3, 2, treat, ok), AlarmState::Alarm);
        assert_eq!(evaluate(&slots("0 X - - X"), 3, 2, treat, ok), AlarmState::Alarm);
        assert_eq!(
            evaluate(&slots("- X"), 1, 1, TreatMissingData::NotBreaching, ok),
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate(&slots("X -"), 1, 1, TreatMissingData::NotBreaching, ok),
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate(&slots("- - -"), 1, 1, TreatMissingData::NotBreaching, AlarmState::Alarm),
            AlarmState::Ok
        );
    }

    #[test]
    fn each_statistic_over_one_periods_values() {
        let values = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(statistic(&values, Statistic::Sum), Some(10.0));
        assert_eq!(statistic(&values, Statistic::Average), Some(2.5));
        assert_eq!(statistic(&values, Statistic::SampleCount), Some(4.0));
        assert_eq!(statistic(&values, Statistic::Minimum), Some(1.0));
        assert_eq!(statistic(&values, Statistic::Maximum), Some(4.0));
        assert_eq!(statistic(&values, Statistic::Percentile(50.0)), Some(2.0));
        assert_eq!(statistic(&values, Statistic::Percentile(99.0)), Some(4.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(statistic(&hundred, Statistic::Percentile(99.0)), Some(99.0));
        assert_eq!(statistic(&hundred, Statistic::Percentile(99.9)), Some(100.0));
        assert_eq!(statistic(&[], Statistic::Sum), None, "no value is a missing datapoint");
        // The 5xx rate: 5XXError is 1 or 0 per answer.
        assert_eq!(statistic(&[0.0, 0.0, 1.0, 0.0], Statistic::Average), Some(0.25));
    }

    #[test]
    fn comparisons() {
        use Comparison::*;
        assert!(breaches(1.0, GreaterThanOrEqualToThreshold, 1.0));
        assert!(!breaches(1.0, GreaterThanThreshold, 1.0));
        assert!(breaches(0.5, LessThanThreshold, 1.0));
        assert!(breaches(1.0, LessThanOrEqualToThreshold, 1.0));
        assert!(!breaches(1.5, LessThanOrEqualToThreshold, 1.0));
    }
}
