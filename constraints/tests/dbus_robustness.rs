//! The D-Bus probe under the conditions of a real system bus (against python-dbusmock's
//! templates on a private bus). Guards against three faults a reviewer found:
//!
//! - a burst of signals (a Wi-Fi scan sends a `PropertiesChanged` per access point) stalling
//!   the reads: zbus keeps at most 64 unread messages per subscription and then stops reading
//!   the connection, method replies included (zbus 5 `Connection` docs), so a probe that waits
//!   on its calls while the queue is full times out and drops NetworkManager's values;
//! - a signal from any client being believed: the system bus lets every client send signals
//!   (`<allow send_type="signal"/>` in dbus-daemon's system.conf), so a fake `PrepareForSleep`
//!   from a non-logind client would stop every start;
//! - a logind that restarts between `PrepareForSleep(true)` and `(false)` leaving the machine
//!   "asleep" for ever: the new logind never sends the `false` the old one promised.
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::{Bus, HostConfig, HostProbe, IdleSource, Network, Probe, Source};
use common::bus::{PrivateBus, until};
use common::{ARPHRD_ETHER, FakeHost};
use zbus::zvariant::Value;

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const MOCK: &str = "org.freedesktop.DBus.Mock";

/// `NMMetered` (NetworkManager's D-Bus API, "Types"): 2 no, 3 guess-yes.
const METERED_NO: u32 = 2;
const METERED_GUESS_YES: u32 = 3;

fn probe_of(host: &FakeHost) -> HostProbe {
    HostProbe::new(HostConfig {
        idle: IdleSource::Auto { below: 0.5 },
        ..host.config()
    })
}

#[tokio::test]
async fn a_burst_of_signals_does_not_stall_the_reads() {
    let host = FakeHost::new();
    host.iface("wlan0", "up", ARPHRD_ETHER, true)
        .routes(&["wlan0"])
        .load("0.10");
    let Some(bus) = PrivateBus::start(&[("networkmanager", NM, None)]).await else {
        return;
    };
    bus.phone_hotspot(METERED_GUESS_YES).await;
    let probe = probe_of(&host);
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut rx = probe.subscribe();
    until(&mut rx, "metered", |s| s.network == Network::Metered).await;

    // a scan: 300 access points change, each with its own signal, sent by NetworkManager
    for n in 0..300 {
        let path = format!("{NM_PATH}/AccessPoint/{n}");
        let changed: std::collections::HashMap<&str, Value<'_>> =
            [("Strength", Value::from(50u8))].into_iter().collect();
        bus.call(
            NM,
            NM_PATH,
            MOCK,
            "EmitSignalDetailed",
            &(
                "org.freedesktop.DBus.Properties",
                "PropertiesChanged",
                "sa{sv}as",
                vec![
                    Value::from("org.freedesktop.NetworkManager.AccessPoint"),
                    Value::from(changed),
                    Value::from(Vec::<String>::new()),
                ],
                std::collections::HashMap::from([("path", Value::from(path))]),
            ),
        )
        .await;
    }
    // the user marks the hotspot unmetered: seen at once (the bounded wait is 10 s; a stalled
    // probe needs a 2 s timeout per call for every read the burst queued)
    bus.set(NM, NM_PATH, NM, "Metered", METERED_NO).await;
    until(&mut rx, "unmetered", |s| s.network == Network::Unmetered).await;
    let reading = probe.report().unwrap().readings.network;
    assert!(
        matches!(reading.source, Source::NetworkManager { .. }),
        "NetworkManager's values were dropped: {reading:?}"
    );
    task.abort();
}

/// Emits logind's `PrepareForSleep(start)` from the logind mock itself.
async fn logind_sleep(bus: &PrivateBus, start: bool) {
    bus.call(
        LOGIND,
        LOGIND_PATH,
        MOCK,
        "EmitSignal",
        &(MANAGER, "PrepareForSleep", "b", vec![Value::from(start)]),
    )
    .await;
}

async fn changed(rx: &mut tokio::sync::watch::Receiver<bool>, what: &str) -> bool {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed())
        .await
        .unwrap_or_else(|_| panic!("{what} never arrived"))
        .unwrap();
    *rx.borrow_and_update()
}

#[tokio::test]
async fn a_prepare_for_sleep_not_from_logind_is_ignored() {
    let host = FakeHost::new();
    host.load("3.50");
    let Some(bus) = PrivateBus::start(&[("logind", LOGIND, None)]).await else {
        return;
    };
    let probe = probe_of(&host);
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut sleeping = Probe::sleeping(&probe).unwrap();
    let mut rx = probe.subscribe();
    until(&mut rx, "not idle", |s| !s.idle).await;

    // any client may send this signal on the bus; this one is not logind
    let client = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    client
        .emit_signal(None::<&str>, LOGIND_PATH, MANAGER, "PrepareForSleep", &true)
        .await
        .unwrap();
    // logind's own change, after it: once the probe has it, it has had the forgery too
    // (dbus-daemon routes one client's messages in order, and the mock acts on a call
    // this client sends after its signal)
    client
        .call_method(
            Some(LOGIND),
            LOGIND_PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Set",
            &(MANAGER, "IdleHint", Value::from(true)),
        )
        .await
        .unwrap();
    until(&mut rx, "idle (logind's hint)", |s| s.idle).await;
    assert!(
        !*sleeping.borrow_and_update(),
        "a forged PrepareForSleep was believed"
    );

    // the same signal addressed to each connection on the bus, the probe's among them: the bus
    // applies no match rule to it, so the probe must check who sent it
    let bus_proxy = zbus::fdo::DBusProxy::new(&client).await.unwrap();
    for name in bus_proxy.list_names().await.unwrap() {
        if name.as_str().starts_with(':') {
            client
                .emit_signal(
                    Some(name.as_str()),
                    LOGIND_PATH,
                    MANAGER,
                    "PrepareForSleep",
                    &true,
                )
                .await
                .unwrap();
        }
    }
    client
        .call_method(
            Some(LOGIND),
            LOGIND_PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Set",
            &(MANAGER, "IdleHint", Value::from(false)),
        )
        .await
        .unwrap();
    until(&mut rx, "not idle (logind's hint)", |s| !s.idle).await;
    assert!(
        !*sleeping.borrow_and_update(),
        "a forged PrepareForSleep sent to the probe alone was believed"
    );

    // logind's own signal is followed
    logind_sleep(&bus, true).await;
    assert!(changed(&mut sleeping, "logind's PrepareForSleep(true)").await);
    task.abort();
}

#[tokio::test]
async fn a_logind_restarted_mid_sleep_leaves_the_machine_awake() {
    let host = FakeHost::new();
    let Some(mut bus) = PrivateBus::start(&[("logind", LOGIND, None)]).await else {
        return;
    };
    let probe = probe_of(&host);
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut sleeping = Probe::sleeping(&probe).unwrap();
    logind_sleep(&bus, true).await;
    assert!(changed(&mut sleeping, "PrepareForSleep(true)").await);
    // logind dies before the resume and a new one starts: it never says `false`
    bus.stop_mock(0, LOGIND).await;
    assert!(!changed(&mut sleeping, "the end of the sleep").await);
    bus.mock("logind", LOGIND, None).await;
    assert!(!*sleeping.borrow_and_update());
    task.abort();
}

/// A NetworkManager that stalls for a moment (its replies wait: dbusmock answers one call at a
/// time) has not gone: its last values stand, and it is asked again once it answers — the probe
/// must not fall back to the link type (unmetered Wi-Fi) and stay there until NetworkManager's
/// next signal.
#[tokio::test]
async fn a_service_that_stalls_keeps_its_values() {
    let host = FakeHost::new();
    host.iface("wlan0", "up", ARPHRD_ETHER, true)
        .routes(&["wlan0"])
        .load("0.10");
    let Some(bus) = PrivateBus::start(&[("networkmanager", NM, None)]).await else {
        return;
    };
    bus.add_property(NM, NM_PATH, NM, "Metered", METERED_GUESS_YES)
        .await;
    bus.call(
        NM,
        NM_PATH,
        MOCK,
        "AddMethod",
        &(NM, "Stall", "", "", "import time; time.sleep(4)"),
    )
    .await;
    let probe = probe_of(&host);
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut rx = probe.subscribe();
    until(&mut rx, "metered", |s| s.network == Network::Metered).await;

    // a change signal, then NetworkManager stalls for 4 s: the reads it asks for time out (2 s)
    bus.set(NM, NM_PATH, NM, "Metered", METERED_GUESS_YES).await;
    let stall = {
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn
                .call_method(Some(NM), NM_PATH, Some(NM), "Stall", &())
                .await;
        })
    };
    stall.await.unwrap();
    let r = probe.report().unwrap();
    assert_eq!(
        r.state.network,
        Network::Metered,
        "{:?}",
        r.readings.network
    );
    assert!(
        matches!(r.readings.network.source, Source::NetworkManager { .. }),
        "NetworkManager's values were dropped while it stalled: {:?}",
        r.readings.network
    );
    // it answers again: a change is seen
    bus.set(NM, NM_PATH, NM, "Metered", METERED_NO).await;
    until(&mut rx, "unmetered", |s| s.network == Network::Unmetered).await;
    task.abort();
}
