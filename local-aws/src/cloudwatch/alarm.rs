//! A metric alarm as `PutMetricAlarm` defines it, evaluated over the
//! [`Store`] period by period ([`MetricAlarm::advance`]), each evaluation
//! from the state the previous one left, as CloudWatch evaluates an alarm
//! once per period over its sliding evaluation range.
//!
//! Time may run faster than the clock (a rehearsal at `speed` × real time):
//! an alarm's period of P seconds covers P / speed real seconds of samples.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::alarms::{Comparison, Statistic, TreatMissingData};
use super::evaluate::{AlarmState, Slot, breaches, evaluate, evaluation_range, statistic};
use super::math::{Expr, Series, Value};
use super::store::{MetricId, Store};

/// One metric with the statistic and period an alarm or query reads it by.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStat {
    /// The metric.
    pub metric: MetricId,
    /// Its statistic.
    pub statistic: Statistic,
    /// Its period, in (scaled) seconds.
    pub period_seconds: u32,
}

/// What an alarm evaluates.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// One metric.
    Metric(MetricStat),
    /// A metric-math expression (the query with `ReturnData`) over metrics by id.
    Math {
        /// The expression as given.
        text: String,
        /// Parsed.
        expression: Expr,
        /// The metrics it names.
        metrics: BTreeMap<String, MetricStat>,
    },
}

impl Query {
    /// The period every datapoint covers.
    pub fn period_seconds(&self) -> u32 {
        match self {
            Query::Metric(stat) => stat.period_seconds,
            Query::Math { metrics, .. } => metrics.values().map(|m| m.period_seconds).max().unwrap_or(60),
        }
    }

    /// Every metric it reads.
    pub fn metrics(&self) -> Vec<&MetricId> {
        match self {
            Query::Metric(stat) => vec![&stat.metric],
            Query::Math { metrics, .. } => metrics.values().map(|m| &m.metric).collect(),
        }
    }

    /// Its datapoints for the periods starting at `starts` (scaled seconds
    /// since `clock`'s origin), by period start; a period without one is absent.
    pub fn datapoints(&self, store: &Store, clock: &Clock, starts: &[i64]) -> Series {
        let read = |stat: &MetricStat| -> Series {
            starts
                .iter()
                .filter_map(|start| {
                    let (from, to) = clock.span(*start, stat.period_seconds);
                    statistic(&store.values(&stat.metric, from, to), stat.statistic).map(|v| (*start, v))
                })
                .collect()
        };
        match self {
            Query::Metric(stat) => read(stat),
            Query::Math {
                expression, metrics, ..
            } => {
                let series = metrics.iter().map(|(id, stat)| (id.clone(), read(stat))).collect();
                match expression.eval(&series, starts) {
                    Ok(Value::Series(s)) => s,
                    Ok(Value::Scalar(v)) => starts.iter().map(|t| (*t, v)).collect(),
                    Err(_) => Series::new(),
                }
            }
        }
    }
}

/// Scaled time: `speed` scaled seconds pass per real second from `origin`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Where scaled time 0 is.
    pub origin: SystemTime,
    /// Scaled seconds per real second (1 for real time).
    pub speed: f64,
}

impl Clock {
    /// Scaled seconds since the origin at real time `at` (0 before it).
    pub fn scaled(&self, at: SystemTime) -> f64 {
        at.duration_since(self.origin).unwrap_or_default().as_secs_f64() * self.speed
    }

    /// The real time at scaled second `t`.
    pub fn real(&self, t: f64) -> SystemTime {
        self.origin + Duration::from_secs_f64((t / self.speed).max(0.0))
    }

    /// The real span of the period of `period` scaled seconds starting at `start`.
    pub fn span(&self, start: i64, period: u32) -> (SystemTime, SystemTime) {
        (self.real(start as f64), self.real(start as f64 + f64::from(period)))
    }
}

/// `EvaluateLowSampleCountPercentile`: what a percentile alarm does with a
/// period holding too few samples to be statistically significant — fewer
/// than 10/(1 − p) for p from 0.5 to 1 (1,000 for p99), 10/p below 0.5
/// (the CloudWatch guide, "Percentile-based alarms and low data samples").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LowSampleCount {
    /// Evaluated whatever the count (the default).
    #[default]
    Evaluate,
    /// Such a period changes nothing: the state stays as it was.
    Ignore,
}

impl LowSampleCount {
    /// The name CloudWatch gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            LowSampleCount::Evaluate => "evaluate",
            LowSampleCount::Ignore => "ignore",
        }
    }
}

/// Whether `count` samples are too few for percentile `p` (in percent) to
/// be statistically significant, by the guide's rule.
pub fn too_few_samples(count: usize, p: f64) -> bool {
    let fraction = p / 100.0;
    let needed = if fraction >= 0.5 {
        10.0 / (1.0 - fraction)
    } else {
        10.0 / fraction
    };
    // The rule's quotient in floating point (10/(1 - 0.99) is a hair over
    // 1000): a count equal to it is enough.
    (count as f64) < needed - 1e-6
}

/// A metric alarm and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAlarm {
    /// `AlarmName`.
    pub name: String,
    /// `AlarmDescription`.
    pub description: String,
    /// What it evaluates.
    pub query: Query,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: Comparison,
    /// N.
    pub evaluation_periods: u32,
    /// M.
    pub datapoints_to_alarm: u32,
    /// `TreatMissingData`.
    pub treat_missing_data: TreatMissingData,
    /// `EvaluateLowSampleCountPercentile`, when given.
    pub low_sample_count: Option<LowSampleCount>,
    /// `AlarmActions` (kept, not sent).
    pub alarm_actions: Vec<String>,
    /// Its state.
    pub state: AlarmState,
    /// Why.
    pub state_reason: String,
    /// When it last changed (real time).
    pub state_updated: SystemTime,
    /// The end of the last period evaluated (scaled seconds).
    evaluated_to: i64,
}

/// The most periods one [`MetricAlarm::advance`] evaluates: the rest are
/// skipped to the newest (a stack left idle for hours catches up at once).
const MAX_CATCH_UP: i64 = 1_000;

impl MetricAlarm {
    /// A new alarm, `INSUFFICIENT_DATA` as CloudWatch starts one, its first
    /// evaluation at the end of the period running at `now`.
    #[allow(clippy::too_many_arguments, reason = "PutMetricAlarm's own fields")]
    pub fn new(
        name: String,
        description: String,
        query: Query,
        threshold: f64,
        comparison: Comparison,
        evaluation_periods: u32,
        datapoints_to_alarm: u32,
        treat_missing_data: TreatMissingData,
        alarm_actions: Vec<String>,
        clock: &Clock,
        now: SystemTime,
    ) -> Self {
        let period = i64::from(query.period_seconds().max(1));
        let evaluated_to = (clock.scaled(now) as i64 / period) * period;
        Self {
            name,
            description,
            query,
            threshold,
            comparison,
            evaluation_periods,
            datapoints_to_alarm,
            treat_missing_data,
            low_sample_count: None,
            alarm_actions,
            state: AlarmState::InsufficientData,
            state_reason: String::from("Unchecked: Initial alarm creation"),
            state_updated: now,
            evaluated_to,
        }
    }

    /// Sets the state by hand (`SetAlarmState`): it holds until the next evaluation.
    pub fn set_state(&mut self, state: AlarmState, reason: String, now: SystemTime) {
        self.state = state;
        self.state_reason = reason;
        self.state_updated = now;
    }

    /// Evaluates every period that ended by `now`, in order; returns
    /// whether the state changed.
    pub fn advance(&mut self, store: &Store, clock: &Clock, now: SystemTime) -> bool {
        let period = i64::from(self.query.period_seconds().max(1));
        let complete = (clock.scaled(now) as i64 / period) * period;
        let mut changed = false;
        let first = (self.evaluated_to + period).max(complete - MAX_CATCH_UP * period);
        let mut end = first;
        while end <= complete {
            changed |= self.evaluate_at(store, clock, end, period, now);
            end += period;
        }
        self.evaluated_to = self.evaluated_to.max(complete);
        changed
    }

    /// Whether the period starting at `start` is one an alarm set to ignore
    /// low sample counts leaves alone: a percentile of one metric over too
    /// few samples.
    fn too_few_to_evaluate(&self, store: &Store, clock: &Clock, start: i64) -> bool {
        let Query::Metric(stat) = &self.query else { return false };
        let Statistic::Percentile(p) = stat.statistic else {
            return false;
        };
        if self.low_sample_count != Some(LowSampleCount::Ignore) {
            return false;
        }
        let (from, to) = clock.span(start, stat.period_seconds);
        too_few_samples(store.values(&stat.metric, from, to).len(), p)
    }

    fn evaluate_at(&mut self, store: &Store, clock: &Clock, end: i64, period: i64, now: SystemTime) -> bool {
        let n = self.evaluation_periods as usize;
        let range = evaluation_range(n) as i64;
        let starts: Vec<i64> = (0..range)
            .map(|i| end - (range - i) * period)
            .filter(|s| *s >= 0)
            .collect();
        if self.too_few_to_evaluate(store, clock, end - period) {
            return false;
        }
        let points = self.query.datapoints(store, clock, &starts);
        let slots: Vec<Slot> = starts
            .iter()
            .map(|start| match points.get(start) {
                None => Slot::Missing,
                Some(v) if breaches(*v, self.comparison, self.threshold) => Slot::Breaching,
                Some(_) => Slot::NotBreaching,
            })
            .collect();
        let next = evaluate(
            &slots,
            n,
            self.datapoints_to_alarm as usize,
            self.treat_missing_data,
            self.state,
        );
        if next == self.state {
            return false;
        }
        let recent: Vec<String> = starts
            .iter()
            .rev()
            .filter_map(|s| points.get(s))
            .take(n)
            .map(|v| format!("{v}"))
            .collect();
        self.state_reason = match next {
            AlarmState::InsufficientData => String::from("Insufficient Data: no datapoint in the evaluation range"),
            _ => format!(
                "Threshold Crossed: recent datapoints [{}] {} the threshold ({}) of {:?} with {} of {} to alarm",
                recent.join(", "),
                if next == AlarmState::Alarm {
                    "crossed"
                } else {
                    "did not cross"
                },
                self.threshold,
                self.comparison,
                self.datapoints_to_alarm,
                self.evaluation_periods,
            ),
        };
        self.state = next;
        self.state_updated = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::store::Sample;

    fn alarm(query: Query, clock: &Clock) -> MetricAlarm {
        MetricAlarm::new(
            String::from("a"),
            String::new(),
            query,
            0.01,
            Comparison::GreaterThanOrEqualToThreshold,
            1,
            1,
            TreatMissingData::NotBreaching,
            Vec::new(),
            clock,
            clock.origin,
        )
    }

    fn rate() -> Query {
        Query::Metric(MetricStat {
            metric: MetricId::new(
                "AWS/ApiGateway",
                "5XXError",
                &[("ApiName", "fintech-dev-accounts"), ("Stage", "dev")],
            ),
            statistic: Statistic::Average,
            period_seconds: 60,
        })
    }

    /// At 600 × real time a 60 s period is 100 ms of samples: a 10 %
    /// canary of a broken version (one request in ten a 5xx) alarms at the
    /// end of the first period it shows in, and back to OK when it stops.
    #[test]
    fn a_rate_alarm_on_a_fast_clock() {
        let clock = Clock {
            origin: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
            speed: 600.0,
        };
        let store = Store::default();
        let mut alarm = alarm(rate(), &clock);
        let at = |scaled: f64| clock.real(scaled);
        let id = rate().metrics()[0].clone();
        // First minute: healthy.
        store.put((0..20).map(|i| {
            (
                id.clone(),
                Sample {
                    at: at(1.0 + f64::from(i)),
                    value: 0.0,
                },
            )
        }));
        assert!(alarm.advance(&store, &clock, at(61.0)));
        assert_eq!(alarm.state, AlarmState::Ok);
        // Second minute: one in ten fails.
        store.put((0..20).map(|i| {
            (
                id.clone(),
                Sample {
                    at: at(61.0 + f64::from(i)),
                    value: if i % 10 == 0 { 1.0 } else { 0.0 },
                },
            )
        }));
        assert!(!alarm.advance(&store, &clock, at(119.0)), "not before the period ends");
        assert!(alarm.advance(&store, &clock, at(121.0)));
        assert_eq!(alarm.state, AlarmState::Alarm, "{}", alarm.state_reason);
        assert!(alarm.state_reason.contains("[0.1]"), "{}", alarm.state_reason);
        // No traffic after that. The guide: with at least N real datapoints
        // in the evaluation range (3 periods for N = 1), the newest real
        // ones decide, so the breaching minute holds the alarm until it
        // leaves the range; then every slot is missing, not breaching: OK.
        assert!(!alarm.advance(&store, &clock, at(241.0)));
        assert_eq!(alarm.state, AlarmState::Alarm);
        assert!(alarm.advance(&store, &clock, at(301.0)));
        assert_eq!(alarm.state, AlarmState::Ok);
    }

    /// The guide's examples of the low-sample rule: fewer than 1,000
    /// samples for p99; 10/p below the median.
    #[test]
    fn the_low_sample_rule_is_the_guides() {
        assert!(too_few_samples(999, 99.0));
        assert!(!too_few_samples(1_000, 99.0));
        assert!(too_few_samples(99, 90.0));
        assert!(!too_few_samples(100, 90.0));
        assert!(too_few_samples(19, 50.0));
        assert!(!too_few_samples(20, 50.0));
        assert!(too_few_samples(99, 10.0));
        assert!(!too_few_samples(100, 10.0));
        assert!(too_few_samples(9_999, 99.9));
    }

    /// A p99 alarm set to ignore low sample counts does not move on a
    /// period of 10 slow requests (the guide: its state does not change),
    /// while one that evaluates them alarms; with enough samples both do.
    #[test]
    fn a_percentile_alarm_can_ignore_periods_with_too_few_samples() {
        let clock = Clock {
            origin: SystemTime::UNIX_EPOCH,
            speed: 1.0,
        };
        let duration = MetricId::new("AWS/Lambda", "Duration", &[("FunctionName", "f")]);
        let p99 = Query::Metric(MetricStat {
            metric: duration.clone(),
            statistic: Statistic::Percentile(99.0),
            period_seconds: 60,
        });
        let second = |s: f64| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s);
        let slow = |count: u32, from: f64| {
            let duration = duration.clone();
            (0..count).map(move |i| {
                (
                    duration.clone(),
                    Sample {
                        at: second(from + f64::from(i) * 59.0 / f64::from(count)),
                        value: 2_000.0,
                    },
                )
            })
        };
        let store = Store::default();
        store.put(slow(10, 60.0));
        let mut ignoring = MetricAlarm {
            threshold: 1_000.0,
            low_sample_count: Some(LowSampleCount::Ignore),
            ..alarm(p99.clone(), &clock)
        };
        let mut evaluating = MetricAlarm {
            threshold: 1_000.0,
            low_sample_count: Some(LowSampleCount::Evaluate),
            ..alarm(p99, &clock)
        };
        assert!(!ignoring.advance(&store, &clock, second(121.0)));
        assert_eq!(ignoring.state, AlarmState::InsufficientData);
        assert!(evaluating.advance(&store, &clock, second(121.0)));
        assert_eq!(evaluating.state, AlarmState::Alarm);
        store.put(slow(1_000, 120.0));
        assert!(ignoring.advance(&store, &clock, second(181.0)));
        assert_eq!(ignoring.state, AlarmState::Alarm, "{}", ignoring.state_reason);
    }

    #[test]
    fn a_math_alarm_reads_each_metric_by_its_statistic() {
        let clock = Clock {
            origin: SystemTime::UNIX_EPOCH,
            speed: 1.0,
        };
        let errors = MetricId::new("AWS/Lambda", "Errors", &[("FunctionName", "f")]);
        let invocations = MetricId::new("AWS/Lambda", "Invocations", &[("FunctionName", "f")]);
        let stat = |metric: &MetricId| MetricStat {
            metric: metric.clone(),
            statistic: Statistic::Sum,
            period_seconds: 60,
        };
        let text = "IF(invocations > 0, 100 * errors / invocations, 0)";
        let query = Query::Math {
            text: text.to_owned(),
            expression: super::super::math::parse(text).unwrap(),
            metrics: [
                (String::from("errors"), stat(&errors)),
                (String::from("invocations"), stat(&invocations)),
            ]
            .into_iter()
            .collect(),
        };
        let mut alarm = MetricAlarm {
            threshold: 1.0,
            ..alarm(query, &clock)
        };
        let store = Store::default();
        let second = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        store.put((0..99).map(|i| {
            (
                invocations.clone(),
                Sample {
                    at: second(60 + i % 60),
                    value: 1.0,
                },
            )
        }));
        store.put((0..99).map(|i| {
            (
                errors.clone(),
                Sample {
                    at: second(60 + i % 60),
                    value: if i < 2 { 1.0 } else { 0.0 },
                },
            )
        }));
        assert!(alarm.advance(&store, &clock, second(121)));
        assert_eq!(
            alarm.state,
            AlarmState::Alarm,
            "2 of 99 is over 1 %: {}",
            alarm.state_reason
        );
    }
}
