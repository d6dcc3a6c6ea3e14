//! Faults on one version of a function, as AWS Fault Injection Service's
//! Lambda actions inject them (`aws:lambda:invocation-error`,
//! `aws:lambda:invocation-add-delay`,
//! `aws:lambda:invocation-http-integration-response`): a share of the
//! version's invocations, drawn independently, fails, starts late or answers
//! a chosen HTTP status. The local Lambda endpoint applies them, so the
//! function binaries carry no code for it. Written on the command line as
//! `error[:P%]`, `delay:<N>ms[:P%]` and `http-<status>[:P%]` (P defaults
//! to 100), optionally `@<alias>`: only the version's invocations through
//! that alias suffer it, as an FIS action targeting the function qualified
//! by the alias does (the traffic hooks, which invoke the version itself,
//! then see a healthy release, as they would a defect their checks miss).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a sampled invocation suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The invocation ends in a function error; the function does not run.
    Error,
    /// The function starts this much later.
    Delay(Duration),
    /// The caller gets a proxy integration response with this HTTP status;
    /// the function does not run.
    HttpStatus(u16),
}

/// A fault, the percentage of invocations it applies to, and the alias
/// they must come through, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// The fault.
    pub fault: Fault,
    /// 0–100.
    pub percent: f64,
    /// Only invocations through this alias (`live`); `None`: every one.
    pub through: Option<String>,
}

impl Injection {
    /// Whether an invocation with the qualifier `qualifier` and the uniform
    /// `draw` in [0, 1) is sampled.
    pub fn samples(&self, qualifier: Option<&str>, draw: f64) -> bool {
        self.through.as_deref().is_none_or(|alias| qualifier == Some(alias)) && draw * 100.0 < self.percent
    }
}

/// A fault written wrongly on the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--fault {given:?}: {reason}; expected error[:P%], delay:<N>ms[:P%] or http-<status>[:P%], each optionally @<alias>, e.g. http-500:30% or http-500:30%@live"
)]
pub struct BadFault {
    /// The text given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Injection {
    type Err = BadFault;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| BadFault {
            given: given.to_owned(),
            reason,
        };
        let (spec, through) = match given.split_once('@') {
            Some((spec, alias)) => {
                let valid = !alias.is_empty()
                    && alias.len() <= 128
                    && alias
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && !alias.bytes().all(|b| b.is_ascii_digit());
                if !valid {
                    return Err(bad(format!(
                        "{alias:?} is not an alias name (letters, digits, - and _, not only digits)"
                    )));
                }
                (spec, Some(alias.to_owned()))
            }
            None => (given, None),
        };
        let mut parts: Vec<&str> = spec.split(':').collect();
        let percent = match parts.last() {
            Some(last) if last.ends_with('%') && parts.len() > 1 => {
                let number = &last[..last.len() - 1];
                let percent: f64 = number
                    .parse()
                    .map_err(|_| bad(format!("{last:?} is not a percentage")))?;
                if !(0.0..=100.0).contains(&percent) {
                    return Err(bad(format!("{last} is outside 0–100%")));
                }
                parts.pop();
                percent
            }
            _ => 100.0,
        };
        let fault = match parts.as_slice() {
            ["error"] => Fault::Error,
            ["delay", amount] => {
                let millis = amount
                    .strip_suffix("ms")
                    .filter(|n| digits(n))
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| bad(format!("{amount:?} is not a delay in milliseconds like 800ms")))?;
                if millis > MAX_DELAY_MS {
                    return Err(bad(format!(
                        "{amount} is longer than a Lambda invocation may run (15 minutes, {MAX_DELAY_MS}ms)"
                    )));
                }
                Fault::Delay(Duration::from_millis(millis))
            }
            [http] if http.starts_with("http-") => {
                let status = Some(&http["http-".len()..])
                    .filter(|n| digits(n))
                    .and_then(|n| n.parse::<u16>().ok())
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| bad(format!("{http:?} does not name an HTTP status 100–599")))?;
                Fault::HttpStatus(status)
            }
            _ => return Err(bad(String::from("unknown fault"))),
        };
        Ok(Self {
            fault,
            percent,
            through,
        })
    }
}

/// The longest added delay: Lambda's longest timeout (15 minutes).
pub const MAX_DELAY_MS: u64 = 900_000;

/// Whether `text` is one or more ASCII digits (no sign, no space).
fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault {
            Fault::Error => write!(f, "error")?,
            Fault::Delay(delay) => write!(f, "delay:{}ms", delay.as_millis())?,
            Fault::HttpStatus(status) => write!(f, "http-{status}")?,
        }
        write!(f, ":{}%", self.percent)?;
        match &self.through {
            Some(alias) => write!(f, "@{alias}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_as_written_and_print_back() {
        for (text, fault, percent) in [
            ("http-500:30%", Fault::HttpStatus(500), 30.0),
            ("delay:800ms:50%", Fault::Delay(Duration::from_millis(800)), 50.0),
            ("error:100%", Fault::Error, 100.0),
            ("error", Fault::Error, 100.0),
            ("http-503", Fault::HttpStatus(503), 100.0),
            ("error:0.5%", Fault::Error, 0.5),
        ] {
            let parsed: Injection = text.parse().unwrap();
            assert_eq!(
                parsed,
                Injection {
                    fault,
                    percent,
                    through: None
                },
                "{text}"
            );
            assert_eq!(parsed.to_string().parse::<Injection>().unwrap(), parsed);
        }
    }

    #[test]
    fn bad_faults_say_what_is_wrong() {
        for (text, says) in [
            ("http-700", "HTTP status"),
            ("http-abc:10%", "HTTP status"),
            ("delay:fast", "milliseconds"),
            ("delay", "unknown fault"),
            ("error:150%", "outside"),
            ("error:x%", "not a percentage"),
            ("timeout:10%", "unknown fault"),
            ("", "unknown fault"),
            ("http-+500", "HTTP status"),
            ("http- 500", "HTTP status"),
            ("delay:+5ms", "milliseconds"),
            ("delay:900001ms", "15 minutes"),
            ("delay:18446744073709551615ms", "15 minutes"),
            ("delay:18446744073709551616ms", "milliseconds"),
            ("http-500:30%@", "alias name"),
        ] {
            let err = text.parse::<Injection>().unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn a_percentage_samples_that_share_of_draws() {
        let half: Injection = "error:50%".parse().unwrap();
        assert!(half.samples(None, 0.0));
        assert!(half.samples(Some("2"), 0.4999));
        assert!(!half.samples(None, 0.5));
        let none: Injection = "error:0%".parse().unwrap();
        assert!(!none.samples(None, 0.0));
    }

    #[test]
    fn a_fault_through_an_alias_spares_the_version_invoked_itself() {
        let live: Injection = "http-500:30%@live".parse().unwrap();
        assert_eq!(live.through.as_deref(), Some("live"));
        assert_eq!(live.to_string(), "http-500:30%@live");
        assert!(live.samples(Some("live"), 0.1));
        assert!(!live.samples(Some("2"), 0.1), "the hooks invoke the version itself");
        assert!(!live.samples(None, 0.1));
        for bad in ["error@", "error@2", "error@a b", "error@li/ve"] {
            let err = bad.parse::<Injection>().unwrap_err();
            assert!(err.to_string().contains("alias name"), "{bad}: {err}");
        }
    }
}
