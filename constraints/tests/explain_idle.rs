//! `device` says why the device is idle or not: the 1-minute load average of `/proc/loadavg`
//! (its first field, proc(5)) against the threshold, or the daemon's `--idle-source`
//! override. Guards against a comparison that says the opposite of the value, and an override
//! that does not name itself (issue 12, item 8).
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::host::read_host_report;
use backwork_constraints::{IdleSource, Source};
use common::{FakeHost, kernel_paths};

#[test]
fn the_load_average_against_the_threshold() {
    let host = FakeHost::new();
    let loadavg = host.proc_().join("loadavg");
    host.load("1.37");
    let r = read_host_report(&host.config());
    assert!(!r.state.idle);
    assert_eq!(
        r.readings.idle.why,
        format!("load average 1.37 ≥ 0.5 (1 min, {})", loadavg.display())
    );
    assert_eq!(
        kernel_paths(&r.readings.idle.source),
        std::slice::from_ref(&loadavg)
    );

    host.load("0.12");
    let r = read_host_report(&host.config());
    assert!(r.state.idle);
    assert_eq!(
        r.readings.idle.why,
        format!("load average 0.12 < 0.5 (1 min, {})", loadavg.display())
    );

    // the threshold is the configured one; equal is not below
    let mut config = host.config();
    config.idle = IdleSource::LoadAverage { below: 0.12 };
    let r = read_host_report(&config);
    assert!(!r.state.idle);
    assert_eq!(
        r.readings.idle.why,
        format!("load average 0.12 ≥ 0.12 (1 min, {})", loadavg.display())
    );
}

#[test]
fn an_unreadable_load_average_counts_as_not_idle_and_says_so() {
    let host = FakeHost::new();
    let r = read_host_report(&host.config());
    assert!(!r.state.idle);
    assert_eq!(
        r.readings.idle.why,
        format!(
            "{} could not be read: counts as not idle",
            host.proc_().join("loadavg").display()
        )
    );
}

#[test]
fn the_override_is_named_as_the_source() {
    let host = FakeHost::new();
    host.load("3.00");
    for (idle, source, expected) in [
        (IdleSource::Always, "--idle-source always", true),
        (IdleSource::Never, "--idle-source never", false),
    ] {
        let mut config = host.config();
        config.idle = idle;
        let r = read_host_report(&config);
        assert_eq!(r.state.idle, expected);
        assert_eq!(
            r.readings.idle.source,
            Source::Flag {
                flag: source.to_string()
            }
        );
        assert_eq!(r.readings.idle.why, format!("set by {source}"));
    }
}

/// proc(5): the load averages are "the number of jobs in the run queue … averaged over 1, 5,
/// and 15 minutes" — a count, never negative. A value that cannot be one is unreadable, and
/// an unreadable load is not idle (review of issue 12: `-1.0` read as idle).
#[test]
fn an_impossible_load_average_is_unreadable_not_idle() {
    for bad in ["-1.0", "NaN", "inf"] {
        let host = FakeHost::new();
        host.load(bad);
        let r = read_host_report(&host.config());
        assert!(!r.state.idle, "load {bad}");
    }
}
