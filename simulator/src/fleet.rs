//! Fleet mode: the same scenario on many devices, each a little different, and the load their
//! jobs put on a server — the thundering herd of aligned schedules, and jitter flattening it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use backwork_scheduler::Time;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Scenario, SimError, simulate};

/// How far each device's routine (its timeline events) is shifted, at most, either way.
pub const ROUTINE_SHIFT: Duration = Duration::from_secs(30 * 60);
/// How late, at most, each device's jobs are added (the app installed or updated at another
/// minute).
pub const INSTALL_SPREAD: Duration = Duration::from_secs(10 * 60);

/// The server's view of a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    /// The scenario's title.
    pub name: String,
    /// How many devices.
    pub devices: u32,
    /// When the simulated span began (every device's).
    pub start: Time,
    /// When it ended.
    pub end: Time,
    /// Run starts (requests) in all.
    pub requests: u64,
    /// The busiest minute's requests.
    pub peak_per_minute: u32,
    /// When that minute began.
    pub peak_at: Option<Time>,
    /// The 99th percentile of requests per minute, over minutes with any.
    pub p99_per_minute: u32,
    /// Requests per minute, over minutes with any.
    pub mean_per_active_minute: f64,
    /// Requests per minute, for each minute with any.
    pub per_minute: BTreeMap<Time, u32>,
    /// Every device's successful runs per day, summed over jobs, in device order.
    pub runs_per_day: Vec<f64>,
}

/// Shifts a duration by a signed number of milliseconds, not below zero.
fn shift(d: Duration, by_ms: i64) -> Duration {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    Duration::from_millis(u64::try_from(ms.saturating_add(by_ms).max(0)).unwrap_or(0))
}

/// Simulates `scenario` on `devices` devices. Device `i` gets the seed `seed + i`, its timeline
/// shifted by up to ±30 minutes and its jobs added up to 10 minutes late (drawn from the
/// scenario's seed); every run start is a request to the server.
pub fn simulate_fleet(scenario: &Scenario, devices: u32) -> Result<FleetReport, SimError> {
    simulate_fleet_with_progress(scenario, devices, &mut |_| {})
}

/// Like [`simulate_fleet`], telling `progress` how many devices are done now and then. The
/// devices run on every core (rayon's global pool; `RAYON_NUM_THREADS` sets its size).
pub fn simulate_fleet_with_progress(
    scenario: &Scenario,
    devices: u32,
    progress: &mut dyn FnMut(u32),
) -> Result<FleetReport, SimError> {
    // every device's differences are drawn first, in device order, from the scenario's seed;
    // the devices then run on every core, and their results are combined in device order: the
    // report is the same whatever the number of threads
    let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed ^ 0xF1EE_7000_0000_0000);
    let shift_ms = i64::try_from(ROUTINE_SHIFT.as_millis()).unwrap_or(0);
    let spread_ms = i64::try_from(INSTALL_SPREAD.as_millis()).unwrap_or(0);
    let draws: Vec<(i64, i64)> = (0..devices)
        .map(|_| {
            let routine = rng.random_range(-shift_ms..=shift_ms);
            let install = rng.random_range(0..=spread_ms);
            (routine, install)
        })
        .collect();
    let one = |i: u32, (routine, install): (i64, i64)| -> Result<(f64, Vec<i64>), SimError> {
        let mut device = scenario.clone();
        device.seed = scenario.seed.wrapping_add(u64::from(i));
        for e in &mut device.events {
            e.at = shift(e.at, routine);
        }
        for j in &mut device.jobs {
            j.added = Some(shift(j.added.unwrap_or_default(), install));
        }
        let report = simulate(&device)?;
        let per_day = report
            .jobs
            .iter()
            .filter_map(|j| j.per_day)
            .fold(0.0, |a, b| a + b); // (a sum of nothing is -0.0)
        let minutes = report
            .jobs
            .iter()
            .flat_map(|j| &j.runs)
            .map(|run| run.start.timestamp() / 60 * 60)
            .collect();
        Ok((per_day, minutes))
    };
    let mut per_minute: BTreeMap<Time, u32> = BTreeMap::new();
    let mut runs_per_day = Vec::with_capacity(devices as usize);
    let mut requests = 0u64;
    // in chunks, so progress is told from this thread as devices finish
    let chunk = (rayon::current_num_threads() * 16).max(1);
    for (c, draws) in draws.chunks(chunk).enumerate() {
        let first = u32::try_from(c * chunk).unwrap_or(u32::MAX);
        let results: Vec<Result<(f64, Vec<i64>), SimError>> = draws
            .par_iter()
            .enumerate()
            .map(|(k, d)| one(first.saturating_add(u32::try_from(k).unwrap_or(0)), *d))
            .collect();
        for result in results {
            let (per_day, minutes) = result?;
            runs_per_day.push(per_day);
            for minute in minutes {
                if let Some(m) = chrono::DateTime::from_timestamp(minute, 0) {
                    *per_minute.entry(m).or_default() += 1;
                    requests += 1;
                }
            }
        }
        progress(u32::try_from(runs_per_day.len()).unwrap_or(devices));
    }
    let (peak_at, peak) = per_minute
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or((None, 0), |(t, n)| (Some(*t), *n));
    let mut counts: Vec<u32> = per_minute.values().copied().collect();
    counts.sort_unstable();
    let p99 = counts
        .get((counts.len() * 99 / 100).min(counts.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0);
    let mean = if counts.is_empty() {
        0.0
    } else {
        requests as f64 / counts.len() as f64
    };
    Ok(FleetReport {
        name: scenario.name.clone(),
        devices,
        start: scenario.start,
        end: backwork_scheduler::core::add(scenario.start, scenario.duration),
        requests,
        peak_per_minute: peak,
        peak_at,
        p99_per_minute: p99,
        mean_per_active_minute: (mean * 100.0).round() / 100.0,
        per_minute,
        runs_per_day,
    })
}

impl FleetReport {
    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let title = if self.name.is_empty() {
            "scenario"
        } else {
            &self.name
        };
        let _ = writeln!(
            s,
            "{title}: a fleet of {} devices sent {} requests",
            self.devices, self.requests
        );
        let _ = writeln!(
            s,
            "peak: {} requests in the minute from {}",
            self.peak_per_minute,
            self.peak_at
                .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        );
        let _ = writeln!(
            s,
            "per minute with any requests: mean {:.2}, p99 {}",
            self.mean_per_active_minute, self.p99_per_minute
        );
        // per day only over whole days, as a job's `per_day`: less than a day says nothing
        if (self.end - self.start).num_days() > 0 {
            let n = self.runs_per_day.len().max(1) as f64;
            let mean_runs: f64 = self.runs_per_day.iter().fold(0.0, |a, b| a + b) / n;
            let _ = writeln!(s, "successful runs per device per day: {mean_runs:.1}");
        }
        s
    }
}
