//! A probe's explanation is of the very state it published (computed by the same reading, not
//! a second one that could disagree): after the tree changes and the probe refreshes, its
//! report and its state change together. A probe set by hand says so for every value; and
//! free space is explained with both thresholds (issue 12, item 8).
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::host::read_host_report;
use backwork_constraints::{DeviceReadings, HostProbe, ManualProbe, Probe, Source};
use common::{ARPHRD_ETHER, FakeHost};

#[test]
fn the_host_probe_reports_what_it_published() {
    let host = FakeHost::new();
    host.supply("AC", &[("type", "Mains"), ("online", "1")])
        .supply(
            "BAT0",
            &[("type", "Battery"), ("capacity", "90"), ("status", "Full")],
        )
        .iface("eth0", "up", ARPHRD_ETHER, false)
        .routes(&["eth0"])
        .load("0.10");
    let probe = HostProbe::new(host.config());
    let r = probe.report().expect("the host probe explains its values");
    assert_eq!(r.state, probe.current());
    assert!(r.state.idle);

    host.supply("AC", &[("online", "0")])
        .supply("BAT0", &[("capacity", "12"), ("status", "Discharging")])
        .load("2.50");
    probe.refresh();
    let r = probe.report().unwrap();
    assert_eq!(r.state, probe.current());
    assert!(!r.state.charging && !r.state.idle);
    assert_eq!(r.state.battery, Some(12));
    assert!(r.readings.charging.why.ends_with("AC/online = 0"), "{r:?}");
    assert!(
        r.readings.idle.why.starts_with("load average 2.50 ≥ 0.5"),
        "{r:?}"
    );
}

#[test]
fn a_manual_probe_says_every_value_was_set_by_hand() {
    let probe = ManualProbe::new();
    probe.apply(["network=metered"]).unwrap();
    let r = probe.report().unwrap();
    assert_eq!(r.state, probe.current());
    assert_eq!(r.readings, DeviceReadings::manual());
    assert_eq!(r.readings.network.source, Source::Manual);
    assert_eq!(r.readings.network.why, "set by hand (backwork device set)");
}

#[test]
fn storage_is_explained_with_both_thresholds() {
    let host = FakeHost::new();
    let r = read_host_report(&host.config());
    assert_eq!(
        r.readings.storage.source,
        Source::Statvfs {
            path: host.dir.path().to_path_buf()
        }
    );
    let why = &r.readings.storage.why;
    assert!(
        why.contains("free of ") && why.contains(&format!("on {};", host.dir.path().display())),
        "{why}"
    );
    assert!(why.ends_with("low under 10 % and 1 GiB"), "{why}");
}
