//! Windows (Chronon's `Window`: a length and a `TimeUnit`), their tail hops and the time
//! constants the definitions and the aggregation share.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Chronon's default tail buffer: rows this close to a window's tail go into tail hops.
pub const TAIL_BUFFER_MILLIS: i64 = 2 * DAY_MILLIS;
/// One minute in milliseconds.
pub const MINUTE_MILLIS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MILLIS: i64 = 60 * MINUTE_MILLIS;
/// One day in milliseconds.
pub const DAY_MILLIS: i64 = 24 * HOUR_MILLIS;

/// A window's time unit (Chronon's `TimeUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeUnit {
    /// Minutes (`m`).
    Minutes,
    /// Hours (`h`).
    Hours,
    /// Days (`d`).
    Days,
}

impl TimeUnit {
    fn millis(self) -> i64 {
        match self {
            TimeUnit::Minutes => MINUTE_MILLIS,
            TimeUnit::Hours => HOUR_MILLIS,
            TimeUnit::Days => DAY_MILLIS,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Minutes => "m",
            TimeUnit::Hours => "h",
            TimeUnit::Days => "d",
        }
    }
}

/// A window: a length and a unit (Chronon's `Window`), written `30m`, `12h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// The length in `unit`s (at least 1).
    pub length: u32,
    /// The unit.
    pub unit: TimeUnit,
}

impl Window {
    /// A window of `length` `unit`s.
    pub fn new(length: u32, unit: TimeUnit) -> Self {
        Window { length, unit }
    }

    /// The window length in milliseconds.
    pub fn millis(&self) -> i64 {
        i64::from(self.length) * self.unit.millis()
    }

    /// The tail hop (Chronon's `FiveMinuteResolution`): 1 day for windows of 12 days or more,
    /// 1 hour for 12 hours or more, else 5 minutes.
    pub fn tail_hop_millis(&self) -> i64 {
        tail_hop_millis(self.millis())
    }

    /// The feature-name suffix: `7d`, `1h`, `30m`.
    pub fn suffix(&self) -> String {
        format!("{}{}", self.length, self.unit.suffix())
    }
}

/// The tail hop of a window of `window_millis` (Chronon's `FiveMinuteResolution.calculateTailHop`).
pub fn tail_hop_millis(window_millis: i64) -> i64 {
    if window_millis >= 12 * DAY_MILLIS {
        DAY_MILLIS
    } else if window_millis >= 12 * HOUR_MILLIS {
        HOUR_MILLIS
    } else {
        5 * MINUTE_MILLIS
    }
}

/// `ts` rounded down to a multiple of `hop` (Chronon's `TsUtils.round`), correct for negatives.
pub fn round_down(ts: i64, hop: i64) -> i64 {
    ts.div_euclid(hop) * hop
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffix())
    }
}

impl FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("window {s:?} has no unit (use m, h or d: 30m, 12h, 7d)"))?;
        let (num, unit) = s.split_at(split);
        let length: u32 = num
            .parse()
            .map_err(|_| format!("window {s:?} does not start with a length"))?;
        if length == 0 {
            return Err(format!("window {s:?} has length 0"));
        }
        let unit = match unit.to_ascii_lowercase().as_str() {
            "m" | "min" | "minute" | "minutes" => TimeUnit::Minutes,
            "h" | "hour" | "hours" => TimeUnit::Hours,
            "d" | "day" | "days" => TimeUnit::Days,
            other => {
                return Err(format!(
                    "window {s:?} has unknown unit {other:?} (m, h or d)"
                ))
            }
        };
        Ok(Window { length, unit })
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.suffix())
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
