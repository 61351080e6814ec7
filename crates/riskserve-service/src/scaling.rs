//! Auto scaling: target tracking with hysteresis on invocations per instance per minute.
//!
//! Every tick the controller measures each policed variant's invocation rate over a sliding window
//! (total invocations per minute; it does not depend on the instance count, so changing capacity
//! does not move the signal) and decides:
//! - **out**: when the rate per instance is above `target × (1 + tolerance)` and the scale-out
//!   cooldown has passed since the last scale-out, to `ceil(rate / target)` instances;
//! - **in**: when the rate per instance is below `target × (1 − tolerance)` and the scale-in
//!   cooldown has passed since the last activity of either kind, to
//!   `ceil(rate / (target × (1 − tolerance)))` instances (fewer than now);
//! - always within `[min, max]` (a count outside them is brought inside at once).
//!
//! Under a steady rate it cannot oscillate: after scaling out to `n = ceil(rate / target)`, scaling
//! in would need `ceil(rate / (target × (1 − tolerance))) < n`, impossible since that is at least
//! `n`; after scaling in to `m`, the rate per instance is at most `target × (1 − tolerance)`, below
//! the scale-out threshold.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How the controller runs (`[autoscaling]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoscalingSettings {
    /// Seconds between two decisions.
    pub interval_seconds: f64,
    /// Seconds of invocations the rate is measured over.
    pub window_seconds: f64,
    /// The dead band around the target, as a fraction (0.1: ±10 %).
    pub tolerance: f64,
}

impl Default for AutoscalingSettings {
    fn default() -> AutoscalingSettings {
        AutoscalingSettings { interval_seconds: 10.0, window_seconds: 60.0, tolerance: 0.1 }
    }
}

impl AutoscalingSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(self.interval_seconds.is_finite() && self.interval_seconds >= 0.01 && self.interval_seconds <= 3600.0) {
            return Err(format!("autoscaling interval must be 0.01 to 3600 seconds, got {}", self.interval_seconds));
        }
        if !(self.window_seconds.is_finite() && self.window_seconds >= 0.1 && self.window_seconds <= 3600.0) {
            return Err(format!("autoscaling window must be 0.1 to 3600 seconds, got {}", self.window_seconds));
        }
        if !(self.tolerance.is_finite() && (0.0..0.5).contains(&self.tolerance)) {
            return Err(format!("autoscaling tolerance must be at least 0 and below 0.5, got {}", self.tolerance));
        }
        Ok(())
    }
}

/// A variant's policy as the controller applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub min: u32,
    pub max: u32,
    /// Invocations per instance per minute.
    pub target: f64,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
}

/// A decision: the new count and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub to: u32,
    pub cause: String,
}

/// When the variant last scaled, by direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct LastActivities {
    pub scale_out: Option<Instant>,
    pub scale_in: Option<Instant>,
}

fn since(moment: Option<Instant>, now: Instant) -> Duration {
    moment.map_or(Duration::MAX, |moment| now.saturating_duration_since(moment))
}

/// The controller's decision for one variant now; `rate` is invocations per minute (all
/// instances), `None` while the window has no measure yet.
pub fn decide(
    policy: &Policy,
    current: u32,
    rate: Option<f64>,
    tolerance: f64,
    last: LastActivities,
    now: Instant,
) -> Option<Decision> {
    if current < policy.min {
        return Some(Decision { to: policy.min, cause: format!("{current} instances is below the policy's minimum") });
    }
    if current > policy.max {
        return Some(Decision { to: policy.max, cause: format!("{current} instances is above the policy's maximum") });
    }
    let rate = rate?;
    let per_instance = rate / f64::from(current.max(1));
    let clamp = |count: f64| -> u32 {
        let count = if count.is_finite() { count.ceil().max(0.0) } else { f64::from(policy.max) };
        (count.min(f64::from(u32::MAX)) as u32).clamp(policy.min, policy.max)
    };
    let window = "invocations per instance per minute";
    if per_instance > policy.target * (1.0 + tolerance) {
        let wanted = clamp(rate / policy.target);
        if wanted > current && since(last.scale_out, now) >= policy.scale_out_cooldown {
            return Some(Decision {
                to: wanted,
                cause: format!(
                    "{per_instance:.1} {window} is above the target {} (+{:.0} %); {rate:.1} invocations per minute need {wanted}",
                    policy.target,
                    tolerance * 100.0
                ),
            });
        }
    } else if per_instance < policy.target * (1.0 - tolerance) {
        let wanted = clamp(rate / (policy.target * (1.0 - tolerance)));
        let last_any = match (last.scale_out, last.scale_in) {
            (Some(out), Some(scale_in)) => Some(out.max(scale_in)),
            (out, scale_in) => out.or(scale_in),
        };
        if wanted < current && since(last_any, now) >= policy.scale_in_cooldown {
            return Some(Decision {
                to: wanted,
                cause: format!(
                    "{per_instance:.1} {window} is below the target {} (-{:.0} %); {rate:.1} invocations per minute need {wanted}",
                    policy.target,
                    tolerance * 100.0
                ),
            });
        }
    }
    None
}

/// The invocation counts a variant had at past ticks, to measure its rate over the window.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    /// Adds the cumulative count at `now` and returns the rate in invocations per minute over the
    /// window (or over what has been seen, once that spans at least half the window).
    pub fn rate(&mut self, now: Instant, count: u64, window: Duration) -> Option<f64> {
        self.samples.push_back((now, count));
        // Keep the newest sample at or before the window's start, so the span covers the window.
        while self.samples.len() > 2
            && self.samples.get(1).is_some_and(|(time, _)| now.saturating_duration_since(*time) >= window)
        {
            self.samples.pop_front();
        }
        let (oldest_time, oldest_count) = *self.samples.front()?;
        let span = now.saturating_duration_since(oldest_time);
        if span < window / 2 || span.is_zero() {
            return None;
        }
        Some(count.saturating_sub(oldest_count) as f64 * 60.0 / span.as_secs_f64())
    }
}

/// What the controller keeps per variant between ticks.
#[derive(Debug, Default)]
pub struct VariantControl {
    pub window: RateWindow,
    /// On a shared store, each live replica's reports by replica name (the leader measures them all).
    pub replicas: HashMap<String, RateWindow>,
    pub last: LastActivities,
    /// The last measured rate per instance per minute (shown as a gauge).
    pub per_instance: Option<f64>,
}

/// The controller's memory of every policed variant, by (endpoint, variant).
pub type ControlState = HashMap<(String, String), VariantControl>;

/// A policy as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScalingPolicy {
    pub endpoint: String,
    pub variant: String,
    pub min_instances: u32,
    pub max_instances: u32,
    /// Invocations per instance per minute.
    pub target: f64,
    /// Seconds after a scale-out before another scale-out.
    pub scale_out_cooldown: f64,
    /// Seconds after any scaling activity before a scale-in.
    pub scale_in_cooldown: f64,
    pub created_at: String,
    pub updated_at: String,
}

/// `PUT /api/v1/endpoints/{name}/variants/{variant}/scaling-policy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutScalingPolicy {
    pub min_instances: u32,
    pub max_instances: u32,
    /// Invocations per instance per minute.
    pub target: f64,
    /// Seconds (default 300).
    #[serde(default = "default_cooldown")]
    pub scale_out_cooldown: f64,
    /// Seconds (default 300).
    #[serde(default = "default_cooldown")]
    pub scale_in_cooldown: f64,
}

fn default_cooldown() -> f64 {
    300.0
}

/// One change the scaler made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScalingActivity {
    pub variant: String,
    /// RFC 3339.
    pub time: String,
    pub from: u32,
    pub to: u32,
    pub cause: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            min: 1,
            max: 8,
            target: 600.0,
            scale_out_cooldown: Duration::from_secs(60),
            scale_in_cooldown: Duration::from_secs(120),
        }
    }

    /// Runs the controller for `ticks` seconds at a steady rate and returns every count it chose.
    fn run(rate: f64, start: u32, ticks: u64) -> Vec<u32> {
        let begin = Instant::now();
        let mut current = start;
        let mut last = LastActivities::default();
        let mut counts = vec![current];
        for tick in 0..ticks {
            let now = begin + Duration::from_secs(tick);
            if let Some(decision) = decide(&policy(), current, Some(rate), 0.1, last, now) {
                if decision.to > current {
                    last.scale_out = Some(now);
                } else {
                    last.scale_in = Some(now);
                }
                current = decision.to;
                counts.push(current);
            }
        }
        counts
    }

    #[test]
    fn steady_load_settles_once_and_never_oscillates() {
        // Every steady rate from 0 to 12,000 a minute, from every start: at most one change.
        for rate in (0..=200).map(|step| f64::from(step) * 60.0) {
            for start in 1..=8 {
                let counts = run(rate, start, 3600);
                assert!(counts.len() <= 2, "rate {rate} from {start}: {counts:?}");
                let last = *counts.last().unwrap();
                assert!((1..=8).contains(&last), "rate {rate}: {counts:?}");
                // The settled count holds the rate at or below target (unless at max).
                assert!(rate / f64::from(last) <= 600.0 * 1.1 || last == 8, "rate {rate}: {counts:?}");
            }
        }
    }

    #[test]
    fn scale_out_is_proportional_and_bounded() {
        let now = Instant::now();
        let decision = decide(&policy(), 2, Some(3000.0), 0.1, LastActivities::default(), now).unwrap();
        assert_eq!(decision.to, 5);
        let decision = decide(&policy(), 2, Some(60_000.0), 0.1, LastActivities::default(), now).unwrap();
        assert_eq!(decision.to, 8);
        // Within the dead band nothing happens.
        assert_eq!(decide(&policy(), 2, Some(1300.0), 0.1, LastActivities::default(), now), None);
        assert_eq!(decide(&policy(), 2, Some(1100.0), 0.1, LastActivities::default(), now), None);
        // Out of bounds is corrected even without a measure.
        assert_eq!(decide(&policy(), 9, None, 0.1, LastActivities::default(), now).unwrap().to, 8);
        assert_eq!(decide(&policy(), 0, None, 0.1, LastActivities::default(), now).unwrap().to, 1);
    }

    #[test]
    fn cooldowns_hold_decisions_back() {
        let start = Instant::now();
        let scaled_out = LastActivities { scale_out: Some(start), scale_in: None };
        let soon = start + Duration::from_secs(30);
        assert_eq!(decide(&policy(), 2, Some(3000.0), 0.1, scaled_out, soon), None);
        assert_eq!(decide(&policy(), 2, Some(0.0), 0.1, scaled_out, soon), None);
        let later = start + Duration::from_secs(61);
        assert_eq!(decide(&policy(), 2, Some(3000.0), 0.1, scaled_out, later).unwrap().to, 5);
        assert_eq!(decide(&policy(), 2, Some(0.0), 0.1, scaled_out, later), None);
        let much_later = start + Duration::from_secs(121);
        assert_eq!(decide(&policy(), 4, Some(0.0), 0.1, scaled_out, much_later).unwrap().to, 1);
        // A scale-in does not delay a scale-out.
        let scaled_in = LastActivities { scale_out: None, scale_in: Some(start) };
        assert_eq!(decide(&policy(), 1, Some(3000.0), 0.1, scaled_in, soon).unwrap().to, 5);
    }

    #[test]
    fn the_rate_covers_the_window() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        let second = Duration::from_secs(1);
        assert_eq!(window.rate(start, 0, 10 * second), None);
        for tick in 1..=30u32 {
            let rate = window.rate(start + second * tick, u64::from(tick) * 5, 10 * second);
            if tick >= 5 {
                assert!((rate.unwrap() - 300.0).abs() < 1e-9, "tick {tick}: {rate:?}");
            }
        }
        assert!(window.samples.len() <= 12, "{}", window.samples.len());
    }
}
