//! `device` says which sysfs file decided "charging" and where the battery level comes from,
//! in the terms of the kernel's `Documentation/ABI/testing/sysfs-class-power` (a `Mains` or
//! `USB` supply's `online`, a `Battery`'s `capacity` and `status`, `scope` `Device` for a
//! peripheral's own battery), and that a machine without a system battery counts as on AC, as
//! systemd's `ConditionACPower` does. Guards against an explanation that names another file
//! than the one that decided the value (issue 12, item 8).
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::host::read_host_report;
use common::{FakeHost, has, kernel_paths};

const NO_BATTERY: &str = "no system battery: counts as on AC, as systemd's ConditionACPower";

#[test]
fn ac_online_is_named_by_its_file() {
    let host = FakeHost::new();
    host.supply("AC", &[("type", "Mains"), ("online", "1")])
        .supply(
            "BAT0",
            &[
                ("type", "Battery"),
                ("scope", "System"),
                ("capacity", "81"),
                ("status", "Charging"),
            ],
        );
    let r = read_host_report(&host.config());
    assert!(r.state.charging);
    assert_eq!(r.state.battery, Some(81));
    let online = host.power().join("AC/online");
    assert_eq!(r.readings.charging.why, format!("{} = 1", online.display()));
    assert_eq!(kernel_paths(&r.readings.charging.source), [online]);
    let capacity = host.power().join("BAT0/capacity");
    assert_eq!(r.readings.battery.why, capacity.display().to_string());
    assert_eq!(kernel_paths(&r.readings.battery.source), [capacity]);
}

#[test]
fn on_battery_the_offline_supply_is_named() {
    let host = FakeHost::new();
    host.supply("AC", &[("type", "Mains"), ("online", "0")])
        .supply(
            "BAT0",
            &[
                ("type", "Battery"),
                ("capacity", "41"),
                ("status", "Discharging"),
            ],
        )
        .supply(
            "hidpp_battery_0",
            &[("type", "Battery"), ("scope", "Device"), ("capacity", "5")],
        );
    let r = read_host_report(&host.config());
    assert!(!r.state.charging);
    assert_eq!(
        r.state.battery,
        Some(41),
        "the mouse's battery does not count"
    );
    assert_eq!(
        r.readings.charging.why,
        format!("{} = 0", host.power().join("AC/online").display())
    );
    assert_eq!(
        r.readings.battery.why,
        format!(
            "{}; hidpp_battery_0 ignored (a device's own battery)",
            host.power().join("BAT0/capacity").display()
        )
    );
}

#[test]
fn a_charging_battery_without_a_mains_supply_is_named_by_its_status() {
    let host = FakeHost::new();
    host.supply(
        "BAT1",
        &[
            ("type", "Battery"),
            ("capacity", "60"),
            ("status", "Charging"),
        ],
    );
    let r = read_host_report(&host.config());
    assert!(r.state.charging);
    let status = host.power().join("BAT1/status");
    assert_eq!(
        r.readings.charging.why,
        format!("{} = Charging", status.display())
    );
    assert!(has(kernel_paths(&r.readings.charging.source), &status));
}

#[test]
fn no_system_battery_counts_as_on_ac() {
    // a desktop: mains only, and a wireless mouse's battery
    let host = FakeHost::new();
    host.supply("AC", &[("type", "Mains"), ("online", "0")])
        .supply(
            "hidpp_battery_0",
            &[("type", "Battery"), ("scope", "Device"), ("capacity", "5")],
        );
    let r = read_host_report(&host.config());
    assert!(r.state.charging);
    assert_eq!(r.state.battery, None);
    assert_eq!(r.readings.charging.why, NO_BATTERY);
    assert_eq!(
        r.readings.battery.why,
        format!(
            "no system battery under {}; hidpp_battery_0 ignored (a device's own battery)",
            host.power().display()
        )
    );
    // a machine with no power-supply class at all
    let mut config = host.config();
    config.power_supply_root = host.path("missing");
    let r = read_host_report(&config);
    assert!(r.state.charging);
    assert_eq!(r.readings.charging.why, NO_BATTERY);
}

/// A system battery whose `capacity` does not read as a percentage (sysfs-class-power:
/// "capacity: Fine grain representation of battery capacity. Valid values: 0 - 100") is still a
/// battery: the machine is on battery when its mains supply is offline, and the level is
/// unknown — not "no system battery, counts as on AC" (review of issue 12: jobs requiring
/// charging ran on battery).
#[test]
fn an_unreadable_capacity_is_an_unknown_level_not_a_missing_battery() {
    for bad in ["abc", "-5", ""] {
        let host = FakeHost::new();
        host.supply("AC", &[("type", "Mains"), ("online", "0")])
            .supply(
                "BAT0",
                &[
                    ("type", "Battery"),
                    ("scope", "System"),
                    ("capacity", bad),
                    ("status", "Discharging"),
                ],
            );
        let r = read_host_report(&host.config());
        assert!(!r.state.charging, "capacity {bad:?}: on battery");
        assert_eq!(r.state.battery, None, "capacity {bad:?}");
        assert!(
            r.readings.battery.why.contains("level is unknown"),
            "{}",
            r.readings.battery.why
        );
        assert_eq!(
            r.readings.charging.why,
            format!("{} = 0", host.power().join("AC/online").display())
        );
    }
}
