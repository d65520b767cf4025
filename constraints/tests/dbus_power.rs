//! Power as UPower says it, over D-Bus (against python-dbusmock's `upower` template on a
//! private bus): `OnBattery` decides charging, the display device's `Percentage` (when it is a
//! present battery, `Type` 2) the battery level. Guards against a battery-not-low job running
//! on a laptop at 10 % on battery, against not noticing the charger (UPower's
//! `PropertiesChanged`, no polling), and against a machine whose UPower has no battery
//! reporting a level.
//!
//! Values from UPower's D-Bus API: `Device.Type` 2 = battery, `Device.State` 1 = charging,
//! 2 = discharging; `battery-not-low` holds from 15 % (Android's BATTERY_LOW, DESIGN §2) or
//! while charging.
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::{Bus, Constraint, Constraints, HostProbe, Probe, Source};
use common::FakeHost;
use common::bus::{PrivateBus, until};

const UPOWER: &str = "org.freedesktop.UPower";
const UPOWER_PATH: &str = "/org/freedesktop/UPower";

#[tokio::test]
async fn on_battery_at_ten_percent_then_charging() {
    // the kernel's view: a desktop without a battery (on AC)
    let host = FakeHost::new();
    host.load("0.10");
    let Some(bus) = PrivateBus::start(&[("upower", UPOWER, Some(r#"{"OnBattery": true}"#))]).await
    else {
        return;
    };
    // the display device: a present battery (Type 2), discharging (State 2), 10 %
    bus.call(
        UPOWER,
        UPOWER_PATH,
        "org.freedesktop.DBus.Mock",
        "SetupDisplayDevice",
        &(
            2u32,
            2u32,
            10.0f64,
            5.0f64,
            50.0f64,
            10.0f64,
            1800i64,
            0i64,
            true,
            "battery-caution-symbolic",
            3u32,
        ),
    )
    .await;
    let probe = HostProbe::new(host.config());
    assert!(probe.current().charging, "the kernel: no battery, on AC");
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .expect("the private bus answers");
    let mut rx = probe.subscribe();

    let state = until(&mut rx, "on battery at 10 %", |s| {
        !s.charging && s.battery == Some(10)
    })
    .await;
    let wants = Constraints::none().battery_not_low();
    let unmet = wants.check(&state);
    assert_eq!(unmet.len(), 1);
    assert_eq!(unmet[0].constraint, Constraint::BatteryNotLow);
    let r = probe.report().unwrap();
    assert!(
        matches!(&r.readings.charging.source, Source::UPower { object, .. } if object == UPOWER_PATH),
        "{:?}",
        r.readings.charging
    );
    assert!(
        matches!(&r.readings.battery.source, Source::UPower { object, .. } if object.ends_with("/DisplayDevice")),
        "{:?}",
        r.readings.battery
    );

    // the charger goes in
    bus.set(UPOWER, UPOWER_PATH, UPOWER, "OnBattery", false)
        .await;
    let state = until(&mut rx, "charging", |s| s.charging).await;
    assert!(
        wants.check(&state).is_empty(),
        "charging: battery-not-low holds"
    );
    assert!(Constraints::none().charging().check(&state).is_empty());
    task.abort();
}

/// UPower's display device shows no battery, but the kernel reads a system battery (its
/// `scope` is not `Device`): the kernel's level stands, so a laptop at a low charge is not
/// taken for a desktop with no battery (battery-not-low would hold). Charging still comes
/// from UPower's `OnBattery`.
#[tokio::test]
async fn upower_without_a_battery_leaves_the_kernels_level() {
    let host = FakeHost::new();
    host.supply(
        "BAT0",
        &[
            ("type", "Battery"),
            ("capacity", "5"),
            ("status", "Discharging"),
        ],
    );
    host.load("0.10");
    // the template's display device is not present until set up
    let Some(bus) = PrivateBus::start(&[("upower", UPOWER, Some(r#"{"OnBattery": true}"#))]).await
    else {
        return;
    };
    let probe = HostProbe::new(host.config());
    let _task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let r = probe.report().unwrap();
    assert_eq!(r.state.battery, Some(5), "the kernel's battery");
    assert!(
        !Constraints::none()
            .battery_not_low()
            .check(&r.state)
            .is_empty()
    );
    assert!(!r.state.charging, "UPower's OnBattery true");
    assert!(
        matches!(r.readings.charging.source, Source::UPower { .. }),
        "{:?}",
        r.readings.charging
    );
}
