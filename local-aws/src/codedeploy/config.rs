//! Deployment configurations for Lambda: how traffic moves from the current
//! version to the target one. The nine predefined `CodeDeployDefault.Lambda…`
//! configurations and custom ones (`CreateDeploymentConfig` with a
//! `trafficRoutingConfig`), as docs/aws-codedeploy-lambda.md (section 4)
//! sources them.
//!
//! The schedule: a canary shifts its percentage at the start and the rest
//! after its interval; a linear configuration shifts its percentage at the
//! start of each increment, ⌈100 / percentage⌉ increments one interval
//! apart, the last one topping up to 100 %. So `Linear10PercentEvery1Minute`
//! reaches 100 % nine minutes in (which minute AWS makes the final shift is
//! not published; this reading is the one that adds nothing after the last
//! increment).

use std::time::Duration;

/// How traffic shifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficRouting {
    /// Everything at once.
    AllAtOnce,
    /// `percentage` at once, the rest `interval_minutes` later.
    Canary {
        /// First increment, 1–99.
        percentage: u32,
        /// Minutes until the rest.
        interval_minutes: u32,
    },
    /// `percentage` every `interval_minutes`.
    Linear {
        /// Each increment, 1–99.
        percentage: u32,
        /// Minutes between increments.
        interval_minutes: u32,
    },
}

/// One traffic shift: at `after` (deployment time, before any time scale)
/// the target version gets `percent` of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Since the traffic shift began.
    pub after: Duration,
    /// 1–100.
    pub percent: u32,
}

const MINUTE: Duration = Duration::from_secs(60);

impl TrafficRouting {
    /// The predefined configuration called `name`, if there is one.
    pub fn predefined(name: &str) -> Option<Self> {
        let canary = |interval_minutes| Self::Canary {
            percentage: 10,
            interval_minutes,
        };
        let linear = |interval_minutes| Self::Linear {
            percentage: 10,
            interval_minutes,
        };
        Some(match name.strip_prefix("CodeDeployDefault.")? {
            "LambdaAllAtOnce" => Self::AllAtOnce,
            "LambdaCanary10Percent5Minutes" => canary(5),
            "LambdaCanary10Percent10Minutes" => canary(10),
            "LambdaCanary10Percent15Minutes" => canary(15),
            "LambdaCanary10Percent30Minutes" => canary(30),
            "LambdaLinear10PercentEvery1Minute" => linear(1),
            "LambdaLinear10PercentEvery2Minutes" => linear(2),
            "LambdaLinear10PercentEvery3Minutes" => linear(3),
            "LambdaLinear10PercentEvery10Minutes" => linear(10),
            _ => return None,
        })
    }

    /// The shifts in order; the last one is always 100 %.
    pub fn steps(&self) -> Vec<Step> {
        match *self {
            Self::AllAtOnce => vec![Step {
                after: Duration::ZERO,
                percent: 100,
            }],
            Self::Canary {
                percentage,
                interval_minutes,
            } => vec![
                Step {
                    after: Duration::ZERO,
                    percent: percentage,
                },
                Step {
                    after: MINUTE * interval_minutes,
                    percent: 100,
                },
            ],
            Self::Linear {
                percentage,
                interval_minutes,
            } => {
                let increments = 100u32.div_ceil(percentage);
                (0..increments)
                    .map(|k| Step {
                        after: MINUTE * interval_minutes * k,
                        percent: ((k + 1) * percentage).min(100),
                    })
                    .collect()
            }
        }
    }

    /// Reads `trafficRoutingConfig`, refusing what CodeDeploy refuses.
    pub fn from_wire(wire: &TrafficRoutingConfig) -> Result<Self, String> {
        let check = |percentage: Option<u32>, interval: Option<u32>, kind: &str| match (percentage, interval) {
            (Some(p @ 1..=99), Some(i @ 1..)) => Ok((p, i)),
            _ => Err(format!(
                "trafficRoutingConfig.{kind} needs a percentage from 1 to 99 and an interval of at least 1 minute"
            )),
        };
        match wire.kind.as_str() {
            "AllAtOnce" => Ok(Self::AllAtOnce),
            "TimeBasedCanary" => {
                let canary = wire.time_based_canary.clone().unwrap_or_default();
                let (percentage, interval_minutes) =
                    check(canary.canary_percentage, canary.canary_interval, "timeBasedCanary")?;
                Ok(Self::Canary {
                    percentage,
                    interval_minutes,
                })
            }
            "TimeBasedLinear" => {
                let linear = wire.time_based_linear.clone().unwrap_or_default();
                let (percentage, interval_minutes) =
                    check(linear.linear_percentage, linear.linear_interval, "timeBasedLinear")?;
                Ok(Self::Linear {
                    percentage,
                    interval_minutes,
                })
            }
            other => Err(format!(
                "trafficRoutingConfig.type {other:?} is not one of TimeBasedCanary, TimeBasedLinear, AllAtOnce"
            )),
        }
    }

    /// The wire form `GetDeploymentConfig` answers with.
    pub fn to_wire(self) -> TrafficRoutingConfig {
        match self {
            Self::AllAtOnce => TrafficRoutingConfig {
                kind: String::from("AllAtOnce"),
                ..TrafficRoutingConfig::default()
            },
            Self::Canary {
                percentage,
                interval_minutes,
            } => TrafficRoutingConfig {
                kind: String::from("TimeBasedCanary"),
                time_based_canary: Some(TimeBasedCanary {
                    canary_percentage: Some(percentage),
                    canary_interval: Some(interval_minutes),
                }),
                time_based_linear: None,
            },
            Self::Linear {
                percentage,
                interval_minutes,
            } => TrafficRoutingConfig {
                kind: String::from("TimeBasedLinear"),
                time_based_canary: None,
                time_based_linear: Some(TimeBasedLinear {
                    linear_percentage: Some(percentage),
                    linear_interval: Some(interval_minutes),
                }),
            },
        }
    }
}

/// `TrafficRoutingConfig` on the wire.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRoutingConfig {
    /// `TimeBasedCanary | TimeBasedLinear | AllAtOnce`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// For `TimeBasedCanary`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_based_canary: Option<TimeBasedCanary>,
    /// For `TimeBasedLinear`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_based_linear: Option<TimeBasedLinear>,
}

/// `TimeBasedCanary` on the wire.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedCanary {
    /// First increment.
    pub canary_percentage: Option<u32>,
    /// Minutes until the rest.
    pub canary_interval: Option<u32>,
}

/// `TimeBasedLinear` on the wire.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedLinear {
    /// Each increment.
    pub linear_percentage: Option<u32>,
    /// Minutes between increments.
    pub linear_interval: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(name: &str) -> Vec<(u64, u32)> {
        TrafficRouting::predefined(name)
            .unwrap()
            .steps()
            .iter()
            .map(|s| (s.after.as_secs() / 60, s.percent))
            .collect()
    }

    #[test]
    fn predefined_schedules_follow_the_user_guide() {
        assert_eq!(schedule("CodeDeployDefault.LambdaAllAtOnce"), [(0, 100)]);
        assert_eq!(
            schedule("CodeDeployDefault.LambdaCanary10Percent5Minutes"),
            [(0, 10), (5, 100)]
        );
        assert_eq!(
            schedule("CodeDeployDefault.LambdaCanary10Percent30Minutes"),
            [(0, 10), (30, 100)]
        );
        let linear: Vec<(u64, u32)> = (0..10).map(|k| (k, (k as u32 + 1) * 10)).collect();
        assert_eq!(schedule("CodeDeployDefault.LambdaLinear10PercentEvery1Minute"), linear);
        assert_eq!(
            schedule("CodeDeployDefault.LambdaLinear10PercentEvery3Minutes").last(),
            Some(&(27, 100))
        );
        assert!(TrafficRouting::predefined("CodeDeployDefault.LambdaLinear10PercentEvery1Minutes").is_none());
        assert!(TrafficRouting::predefined("CodeDeployDefault.OneAtATime").is_none());
    }

    #[test]
    fn an_uneven_linear_percentage_tops_up_at_the_end() {
        let steps = TrafficRouting::Linear {
            percentage: 30,
            interval_minutes: 2,
        }
        .steps();
        let got: Vec<(u64, u32)> = steps.iter().map(|s| (s.after.as_secs() / 60, s.percent)).collect();
        assert_eq!(got, [(0, 30), (2, 60), (4, 90), (6, 100)]);
    }

    #[test]
    fn custom_configurations_round_trip_and_bad_ones_say_why() {
        for routing in [
            TrafficRouting::AllAtOnce,
            TrafficRouting::Canary {
                percentage: 25,
                interval_minutes: 45,
            },
            TrafficRouting::Linear {
                percentage: 20,
                interval_minutes: 1,
            },
        ] {
            assert_eq!(TrafficRouting::from_wire(&routing.to_wire()), Ok(routing));
        }
        let bad = TrafficRoutingConfig {
            kind: String::from("TimeBasedCanary"),
            time_based_canary: Some(TimeBasedCanary {
                canary_percentage: Some(100),
                canary_interval: Some(5),
            }),
            time_based_linear: None,
        };
        assert!(TrafficRouting::from_wire(&bad).unwrap_err().contains("timeBasedCanary"));
        let unknown = TrafficRoutingConfig {
            kind: String::from("Blue"),
            ..TrafficRoutingConfig::default()
        };
        assert!(TrafficRouting::from_wire(&unknown).unwrap_err().contains("\"Blue\""));
    }
}
