//! What the simulator's test files share: running a scenario and naming instants.
// (each test file uses only some of these)
#![allow(dead_code)]

use backwork_scheduler::Time;
use backwork_simulator::{Report, Scenario, simulate};
use chrono::TimeDelta;

/// Runs the scenario `toml` (which must parse and simulate), its text report on stderr for a
/// failing test's output.
pub fn run(toml: &str) -> Report {
    let report = simulate(&Scenario::from_toml(toml).expect("scenario")).expect("simulation");
    eprintln!("{}", report.text());
    report
}

/// The instant written `s` in RFC 3339.
pub fn t(s: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .to_utc()
}

/// `s` seconds after 2026-11-23 00:00 UTC, the start the scenarios here use.
pub fn at(s: i64) -> Time {
    t("2026-11-23T00:00:00Z") + TimeDelta::seconds(s)
}
