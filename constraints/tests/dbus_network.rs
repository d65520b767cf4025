//! The network as NetworkManager says it, over D-Bus (against python-dbusmock's
//! `networkmanager` template on a private bus): the primary connection's `Metered` decides
//! metered / unmetered — a phone's hotspot over Wi-Fi is metered although its link is Wi-Fi —
//! and `Connectivity` decides connected (a captive portal or limited connectivity is not).
//! Guards against judging by link names where NetworkManager knows better, against missing a
//! change (the probe listens to `PropertiesChanged`, it does not poll), and against keeping
//! NetworkManager's last word after it stopped answering (the kernel's reading comes back).
//!
//! Values from NetworkManager's D-Bus API ("Types"): `NMMetered` 0 unknown, 1 yes, 2 no,
//! 3 guess-yes, 4 guess-no; `NMConnectivityState` 0 unknown, 1 none, 2 portal, 3 limited,
//! 4 full.
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::{
    Bus, Constraint, Constraints, HostProbe, IdleSource, Network, NetworkRequirement, Probe, Source,
};
use common::bus::{PrivateBus, until};
use common::{ARPHRD_ETHER, FakeHost};

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";

const METERED_YES: u32 = 1;
const METERED_NO: u32 = 2;
const METERED_GUESS_YES: u32 = 3;
const METERED_UNKNOWN: u32 = 0;
const CONNECTIVITY_PORTAL: u32 = 2;
const CONNECTIVITY_LIMITED: u32 = 3;
const CONNECTIVITY_FULL: u32 = 4;

/// The kernel's view: wlan0, a Wi-Fi link, carries the default route (unmetered by link type).
fn wifi_host() -> FakeHost {
    let host = FakeHost::new();
    host.iface("wlan0", "up", ARPHRD_ETHER, true)
        .routes(&["wlan0"])
        .load("0.10");
    host
}

/// NetworkManager with a primary connection "Phone hotspot" over Wi-Fi at `metered`.
async fn network_manager(metered: u32) -> Option<PrivateBus> {
    let bus = PrivateBus::start(&[("networkmanager", NM, None)]).await?;
    bus.phone_hotspot(metered).await;
    Some(bus)
}

fn probe_of(host: &FakeHost) -> HostProbe {
    HostProbe::new(backwork_constraints::HostConfig {
        idle: IdleSource::Auto { below: 0.5 },
        ..host.config()
    })
}

fn unmetered_job() -> Constraints {
    Constraints::none().network(NetworkRequirement::Unmetered)
}

#[tokio::test]
async fn metered_then_unmetered_then_metered_as_network_manager_says() {
    let host = wifi_host();
    let Some(bus) = network_manager(METERED_GUESS_YES).await else {
        return;
    };
    let probe = probe_of(&host);
    assert_eq!(
        probe.current().network,
        Network::Unmetered,
        "the kernel: Wi-Fi"
    );
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .expect("the private bus answers");
    let mut rx = probe.subscribe();

    // a hotspot NetworkManager guessed metered: metered, although its link is Wi-Fi
    let state = until(&mut rx, "metered", |s| s.network == Network::Metered).await;
    let unmet = unmetered_job().check(&state);
    assert_eq!(unmet.len(), 1);
    assert_eq!(
        unmet[0].constraint,
        Constraint::Network(NetworkRequirement::Unmetered)
    );
    let reading = probe.report().unwrap().readings.network;
    assert!(
        matches!(&reading.source, Source::NetworkManager { object, properties }
            if object == NM_PATH && properties.iter().any(|p| p == "Metered")),
        "{reading:?}"
    );
    assert!(
        reading.why.contains("\"Phone hotspot\" (802-11-wireless)"),
        "{}",
        reading.why
    );
    assert!(
        reading.why.contains("NM_METERED_GUESS_YES"),
        "{}",
        reading.why
    );

    // the user marks it not metered: the job may run
    bus.set(NM, NM_PATH, NM, "Metered", METERED_NO).await;
    let state = until(&mut rx, "unmetered", |s| s.network == Network::Unmetered).await;
    assert!(unmetered_job().check(&state).is_empty());
    assert!(
        probe
            .report()
            .unwrap()
            .readings
            .network
            .why
            .contains("NM_METERED_NO")
    );

    // and metered again: the job's constraint is lost
    bus.set(NM, NM_PATH, NM, "Metered", METERED_YES).await;
    let state = until(&mut rx, "metered again", |s| s.network == Network::Metered).await;
    assert!(!unmetered_job().check(&state).is_empty());
    task.abort();
}

#[tokio::test]
async fn a_captive_portal_or_limited_connectivity_is_not_connected() {
    let host = wifi_host();
    let Some(bus) = network_manager(METERED_NO).await else {
        return;
    };
    let probe = probe_of(&host);
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut rx = probe.subscribe();
    until(&mut rx, "unmetered", |s| s.network == Network::Unmetered).await;

    bus.set(NM, NM_PATH, NM, "Connectivity", CONNECTIVITY_PORTAL)
        .await;
    let state = until(&mut rx, "not connected", |s| s.network == Network::None).await;
    let any_network = Constraints::none().network(NetworkRequirement::Connected);
    assert_eq!(any_network.check(&state).len(), 1);
    let why = probe.report().unwrap().readings.network.why;
    assert!(why.contains("portal"), "{why}");

    bus.set(NM, NM_PATH, NM, "Connectivity", CONNECTIVITY_FULL)
        .await;
    until(&mut rx, "connected again", |s| {
        s.network == Network::Unmetered
    })
    .await;

    bus.set(NM, NM_PATH, NM, "Connectivity", CONNECTIVITY_LIMITED)
        .await;
    until(&mut rx, "limited: not connected", |s| {
        s.network == Network::None
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn metered_unknown_leaves_it_to_the_link_type() {
    let host = wifi_host();
    let Some(bus) = network_manager(METERED_UNKNOWN).await else {
        return;
    };
    let probe = probe_of(&host);
    let _task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let r = probe.report().unwrap();
    assert_eq!(r.state.network, Network::Unmetered, "Wi-Fi, by link type");
    assert!(matches!(r.readings.network.source, Source::Kernel { .. }));
    assert!(
        r.readings.network.why.contains("NM_METERED_UNKNOWN"),
        "{}",
        r.readings.network.why
    );
}

#[tokio::test]
async fn when_network_manager_stops_the_kernel_decides_again() {
    let host = wifi_host();
    let Some(mut bus) = network_manager(METERED_YES).await else {
        return;
    };
    let probe = probe_of(&host);
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut rx = probe.subscribe();
    until(&mut rx, "metered", |s| s.network == Network::Metered).await;

    bus.stop_mock(0, NM).await;
    until(&mut rx, "the kernel's unmetered Wi-Fi", |s| {
        s.network == Network::Unmetered
    })
    .await;
    let reading = probe.report().unwrap().readings.network;
    assert!(
        matches!(reading.source, Source::Kernel { .. }),
        "{reading:?}"
    );
    assert!(probe.services().network_manager.is_none());
    task.abort();
}
