//! The report's figures say only what the simulation shows (review of issue 13, L5 and L9): no
//! per-day figure from less than a whole day — the fleet's runs per device per day printed
//! "-0.0" for an hour — and the header's wake-ups per day counted over the whole days only (a
//! 36-hour run was extrapolated); a job replaced by a later add says so, not "cancelled:
//! cancelled"; the text report gives each run's progress, as the JSON does.

use backwork_simulator::{Scenario, simulate, simulate_fleet};

const ONE_HOUR: &str = r#"
start = "2026-11-23T00:00:00Z"
duration = "1h"

[[job]]
name = "sync"
every = "15m"
outcome = { duration = "1m", progress = [50, 100] }
"#;

#[test]
fn a_fleet_shorter_than_a_day_says_nothing_per_day() {
    let fleet = simulate_fleet(&Scenario::from_toml(ONE_HOUR).unwrap(), 3).unwrap();
    let text = fleet.text();
    assert!(!text.contains("per day"), "{text}");
    assert!(
        fleet
            .runs_per_day
            .iter()
            .all(|d| d.to_bits() == 0.0f64.to_bits())
    );
    let day = simulate_fleet(
        &Scenario::from_toml(&ONE_HOUR.replace("\"1h\"", "\"1d\"")).unwrap(),
        3,
    )
    .unwrap();
    assert!(day.text().contains("successful runs per device per day: "));
}

#[test]
fn wake_ups_per_day_are_counted_over_whole_days() {
    let hour = simulate(&Scenario::from_toml(ONE_HOUR).unwrap()).unwrap();
    assert_eq!(hour.wakeups_per_day, None);
    assert!(!hour.text().contains("per day"), "{}", hour.text());
    // a 36-hour run: the figure is the first 24 hours' count, not 36 hours' scaled
    let long =
        simulate(&Scenario::from_toml(&ONE_HOUR.replace("\"1h\"", "\"36h\"")).unwrap()).unwrap();
    let first_day =
        simulate(&Scenario::from_toml(&ONE_HOUR.replace("\"1h\"", "\"24h\"")).unwrap()).unwrap();
    assert_eq!(long.wakeups_per_day, first_day.wakeups_per_day);
    // a wake-up every 15 minutes, 00:15 to 23:45: 95 in the day (the one at 24:00 is not)
    assert_eq!(first_day.wakeups_per_day, Some(95.0));
    assert!(long.wakeups > first_day.wakeups);
}

#[test]
fn the_text_report_gives_each_runs_progress() {
    let r = simulate(&Scenario::from_toml(ONE_HOUR).unwrap()).unwrap();
    let text = r.text();
    assert!(text.contains("success (progress 100%)"), "{text}");
}

#[test]
fn a_replaced_job_says_it_was_replaced() {
    let r = simulate(
        &Scenario::from_toml(&format!(
            "{ONE_HOUR}\n[[job]]\nname = \"sync\"\nevery = \"30m\"\nadded = \"20m\"\non_conflict = \"replace\"\n"
        ))
        .unwrap(),
    )
    .unwrap();
    let why = r.jobs[0].cancelled.as_deref().unwrap_or_default();
    assert!(why.starts_with("replaced by a later [[job]]"), "{why}");
    assert!(r.text().contains("cancelled: replaced by a later [[job]]"));
}
