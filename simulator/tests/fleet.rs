//! Fleet mode: aligned schedules make a thundering herd on the server; jitter flattens it.

use backwork_simulator::{Scenario, simulate_fleet};

const FLEET: &str = r#"
    start = "2026-11-23T00:00:00Z"
    duration = "1d"
    seed = 11
    device = { network = "unmetered" }

    [[job]]
    name = "nightly-upload"
    cron = "0 0 3 * * *"
    requires = ["network"]
    outcome = { duration = "30s" }
"#;

#[test]
fn a_daily_cron_job_is_a_thundering_herd_and_jitter_flattens_it() {
    let devices = 300;
    let herd = simulate_fleet(&Scenario::from_toml(FLEET).unwrap(), devices).unwrap();
    eprintln!("{}", herd.text());
    assert_eq!(herd.requests, u64::from(devices));
    // every device in the same minute: the slot's (a lone job runs at its gate)
    assert_eq!(herd.peak_per_minute, devices);
    assert_eq!(herd.peak_at.unwrap().format("%H:%M").to_string(), "03:00");
    let jittered = FLEET.replace(
        "outcome = { duration = \"30s\" }",
        "jitter = \"30m\"\n    outcome = { duration = \"30s\" }",
    );
    let flat = simulate_fleet(&Scenario::from_toml(&jittered).unwrap(), devices).unwrap();
    eprintln!("{}", flat.text());
    assert_eq!(
        flat.requests,
        u64::from(devices),
        "every device still uploads once"
    );
    assert!(
        flat.peak_per_minute * 10 <= devices,
        "30 minutes of jitter spread {devices} requests to a peak of {}",
        flat.peak_per_minute
    );
    // the same fleet twice: the same report
    let again = simulate_fleet(&Scenario::from_toml(&jittered).unwrap(), devices).unwrap();
    assert_eq!(flat, again);
}

/// Issue 13, item 8: the fleet runs on every core, and its report is the same, byte for byte,
/// whatever the number of threads (each device's differences are drawn in device order before
/// the devices run; results are combined in device order).
#[test]
fn the_fleet_report_is_the_same_on_one_thread_and_on_several() {
    let scenario = Scenario::from_toml(&FLEET.replace(
        "outcome = { duration = \"30s\" }",
        "jitter = \"30m\"\n    outcome = { duration = \"30s\", fail = 0.3 }",
    ))
    .unwrap();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let report = pool.install(|| simulate_fleet(&scenario, 150)).unwrap();
        serde_json::to_string(&report).unwrap()
    };
    let one = on(1);
    assert_eq!(one, on(2));
    assert_eq!(one, on(3));
}
