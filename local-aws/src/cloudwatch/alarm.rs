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

    fn evaluate_at(&mut self, store: &Store, clock: &Clock, end: i64, period: i64, now: SystemTime) -> bool {
        let n = self.evaluation_periods as usize;
        let range = evaluation_range(n) as i64;
        let starts: Vec<i64> = (0..range)
            .map(|i| end - (range - i) * period)
            .filter(|s| *s >= 0)
            .collect();
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
