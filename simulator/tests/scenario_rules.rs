//! What a scenario file may say (issue 13, build item 7): values outside their range and two
//! jobs with one name are refused with a sentence (a duplicate used to be dropped silently);
//! the starting standby bucket can be set in `device`; a later `[[job]]` of the same name says
//! what its add does with `on_conflict`, WorkManager's ExistingWorkPolicy.

use backwork_simulator::{Scenario, SimError, simulate};

const HEAD: &str = r#"
profile = "android"
start = "2026-11-23T00:00:00Z"
duration = "24h"
"#;

fn parse(rest: &str) -> Result<Scenario, SimError> {
    Scenario::from_toml(&format!("{HEAD}{rest}"))
}

#[test]
fn a_battery_level_is_a_percentage() {
    let e =
        parse("device = { battery = 200 }\n[[job]]\nname = \"j\"\nevery = \"1h\"\n").unwrap_err();
    assert!(e.to_string().contains("0 to 100"), "{e}");
    let e = parse("[[event]]\nat = \"1h\"\nbattery = 101\n[[job]]\nname = \"j\"\nevery = \"1h\"\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`battery` of the [[event]] at 1h is 101: give a percentage from 0 to 100"
    );
    parse("device = { battery = 100 }\n[[job]]\nname = \"j\"\nevery = \"1h\"\n").unwrap();
}

#[test]
fn two_jobs_with_one_name_need_an_on_conflict() {
    let two =
        "[[job]]\nname = \"sync\"\nevery = \"1h\"\n[[job]]\nname = \"sync\"\nevery = \"2h\"\n";
    let e = parse(two).unwrap_err();
    assert!(e.to_string().contains("on_conflict"), "{e}");
    // with a policy, the second add replaces the first: only the 2-hour job is left running
    let r = simulate(
        &parse(&format!(
            "{two}added = \"30m\"\non_conflict = \"replace\"\n"
        ))
        .unwrap(),
    )
    .unwrap();
    let hourly = &r.jobs[0];
    let two_hourly = &r.jobs[1];
    assert!(
        hourly
            .runs
            .iter()
            .all(|run| run.start < r.start + chrono::TimeDelta::minutes(31)),
        "the replaced job ran after it was replaced: {:?}",
        hourly.runs
    );
    assert!(two_hourly.succeeded > 0);
    // `update` gives the first job the second's request (WorkManager's ExistingWorkPolicy
    // UPDATE: the existing work is updated in place): the report gives the first job the
    // schedule it ended with, and the second add says it made no job of its own
    let r = simulate(&parse(&format!("{two}added = \"30m\"\non_conflict = \"update\"\n")).unwrap())
        .unwrap();
    // (android: WorkManager's after-run timing, docs/simulator.md)
    assert_eq!(r.jobs[0].schedule, "every 2h after-run");
    assert_eq!(
        r.jobs[1].schedule, "every 2h",
        "the add's own schedule, as asked"
    );
    assert!(r.jobs[1].runs.is_empty());
    assert_eq!(
        r.jobs[1].not_enqueued.as_deref(),
        Some(
            "not enqueued as a job of its own: on_conflict = \"update\" gave its request to the job named sync that was already there (see its entry)"
        )
    );
    // an unknown policy word is refused with the words
    let e = simulate(&parse(&format!("{two}on_conflict = \"merge\"\n")).unwrap()).unwrap_err();
    assert!(e.to_string().contains("append-or-replace"), "{e}");
}

/// Copies are named `name-1`, `name-2`…: a job already named like a copy is a duplicate too.
#[test]
fn a_copy_name_that_clashes_with_a_job_is_refused() {
    let e = parse(
        "[[job]]\nname = \"a\"\nevery = \"1h\"\ncount = 2\n[[job]]\nname = \"a-1\"\nevery = \"2h\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("named a-1"), "{e}");
}

#[test]
fn count_zero_is_refused() {
    let e = parse("[[job]]\nname = \"j\"\nevery = \"1h\"\ncount = 0\n").unwrap_err();
    assert!(e.to_string().contains("count = 0"), "{e}");
}

/// The starting bucket in `device` is the same as a bucket event at the start: the rare bucket's
/// limits (fidelity.rs checks them against AOSP) hold from the first minute.
#[test]
fn the_starting_bucket_can_be_set_in_device() {
    let job = "[[job]]\nname = \"sync\"\nevery = \"15m\"\noutcome = { duration = \"10s\" }\n";
    let device = "device = { screen = \"on\", charging = false, battery = 80 ";
    let in_device =
        simulate(&parse(&format!("{device}, bucket = \"rare\" }}\n{job}")).unwrap()).unwrap();
    let by_event = simulate(
        &parse(&format!(
            "{device}}}\n[[event]]\nat = \"0s\"\nbucket = \"rare\"\n{job}"
        ))
        .unwrap(),
    )
    .unwrap();
    let active = simulate(&parse(&format!("{device}}}\n{job}")).unwrap()).unwrap();
    assert_eq!(in_device.jobs[0].runs, by_event.jobs[0].runs);
    assert!(
        in_device.jobs[0].runs.len() < active.jobs[0].runs.len(),
        "rare {} vs active {}",
        in_device.jobs[0].runs.len(),
        active.jobs[0].runs.len()
    );
    // a bucket means nothing to the desktop profile
    let e = Scenario::from_toml(&format!(
        "{}{device}, bucket = \"rare\" }}\n{job}",
        HEAD.replace("android", "desktop")
    ))
    .unwrap_err();
    assert!(e.to_string().contains("android profile only"), "{e}");
}

/// Values that would silently do nothing are refused: a job added after the end, an event that
/// repeats every 0s, an iOS task under another profile (review of issue 12).
#[test]
fn values_that_would_do_nothing_are_refused() {
    let e = parse("[[job]]\nname = \"j\"\nevery = \"1h\"\nadded = \"5d\"\n").unwrap_err();
    assert!(e.to_string().contains("never be added"), "{e}");
    let e = parse(
        "[[event]]\nat = \"1h\"\nrepeat = \"0s\"\nscreen = \"off\"\n[[job]]\nname = \"j\"\nevery = \"1h\"\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`repeat` of the [[event]] at 1h is 0s: give a repeat longer than zero, or drop repeat"
    );
    let e =
        parse("[[event]]\nat = \"24h\"\nscreen = \"off\"\n[[job]]\nname = \"j\"\nevery = \"1h\"\n")
            .unwrap_err();
    assert!(e.to_string().contains("never happen"), "{e}");
    let e = parse("[[job]]\nname = \"j\"\nin = \"1m\"\ntask = \"refresh\"\n").unwrap_err();
    assert!(e.to_string().contains("ios profile only"), "{e}");
}

/// More values that would silently do nothing or mean nothing (review of issue 13, L7):
/// `moving` outside android (only its deep Doze looks at motion, as only it has standby
/// buckets); a one-off job due at or after the end (`in`, `at`); progress that goes back.
#[test]
fn motion_outside_android_late_one_offs_and_decreasing_progress_are_refused() {
    let job = "[[job]]\nname = \"j\"\nevery = \"1h\"\n";
    for profile in ["desktop", "ios"] {
        let head = HEAD.replace("android", profile);
        let e =
            Scenario::from_toml(&format!("{head}device = {{ moving = true }}\n{job}")).unwrap_err();
        assert!(e.to_string().contains("android profile only"), "{e}");
        let e = Scenario::from_toml(&format!(
            "{head}[[event]]\nat = \"1h\"\nmoving = true\n{job}"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("android profile only"), "{e}");
    }
    parse(&format!("device = {{ moving = true }}\n{job}")).unwrap();
    // due after the 24 h: refused, naming the instants
    let e = parse("[[job]]\nname = \"late\"\nin = \"25h\"\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("due at 2026-11-24 01:00:00 UTC, at or after the end of the scenario (2026-11-24 00:00:00 UTC)"),
        "{e}"
    );
    let e = parse("[[job]]\nname = \"late\"\nadded = \"23h\"\nin = \"1h\"\n").unwrap_err();
    assert!(e.to_string().contains("would never run"), "{e}");
    let e = parse("[[job]]\nname = \"late\"\nat = \"2026-11-25T00:00:00Z\"\n").unwrap_err();
    assert!(e.to_string().contains("would never run"), "{e}");
    parse("[[job]]\nname = \"soon\"\nin = \"23h\"\n").unwrap();
    // progress goes up (or stays)
    let e = simulate(
        &parse("[[job]]\nname = \"p\"\nevery = \"1h\"\noutcome = { duration = \"1m\", progress = [50, 20] }\n")
            .unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("goes back from 50 to 20"), "{e}");
    simulate(
        &parse("[[job]]\nname = \"p\"\nevery = \"1h\"\noutcome = { duration = \"1m\", progress = [20, 20, 100] }\n")
            .unwrap(),
    )
    .unwrap();
}
