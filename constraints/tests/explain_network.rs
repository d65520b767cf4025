//! `device` says which interface decided the network and why: the one that carries the default
//! route (proc(5), `/proc/net/route`), its link type (the ARPHRD number in
//! `/sys/class/net/<iface>/type`, `include/uapi/linux/if_arp.h`; a `phy80211` link for Wi-Fi),
//! or the daemon's `--metered` override. Guards against an explanation that names the wrong
//! interface, a source that is not the files the value came from, and an override that does not
//! say it is one (issue 12, item 8).
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::host::read_host_report;
use backwork_constraints::{Network, Source};
use common::{ARPHRD_ETHER, ARPHRD_NONE, ARPHRD_PPP, FakeHost, has, kernel_paths};

#[test]
fn a_cellular_link_is_metered_by_its_link_type() {
    let host = FakeHost::new();
    host.iface("eth0", "down", ARPHRD_ETHER, false)
        .iface("wwan0", "up", ARPHRD_NONE, false)
        .routes(&["wwan0"]);
    let r = read_host_report(&host.config());
    assert_eq!(r.state.network, Network::Metered);
    assert_eq!(
        r.readings.network.why,
        "wwan0 carries the default route (cellular, ARPHRD 65534)"
    );
    let paths = kernel_paths(&r.readings.network.source);
    assert!(has(paths, &host.path("proc/net/route")), "{paths:?}");
    assert!(
        has(paths, &host.path("sys/class/net/wwan0/type")),
        "{paths:?}"
    );
}

#[test]
fn a_ppp_link_is_metered_whatever_its_name() {
    let host = FakeHost::new();
    host.iface("modem0", "unknown", ARPHRD_PPP, false)
        .routes(&["modem0"]);
    let r = read_host_report(&host.config());
    assert_eq!(r.state.network, Network::Metered);
    assert_eq!(
        r.readings.network.why,
        "modem0 carries the default route (point-to-point, ARPHRD 512)"
    );
}

#[test]
fn wifi_is_unmetered_and_says_so() {
    let host = FakeHost::new();
    host.iface("wlp2s0", "up", ARPHRD_ETHER, true)
        .routes(&["wlp2s0"]);
    let r = read_host_report(&host.config());
    assert_eq!(r.state.network, Network::Unmetered);
    assert_eq!(
        r.readings.network.why,
        "wlp2s0 carries the default route (wifi, ARPHRD 1)"
    );
}

#[test]
fn with_two_default_routes_each_is_named_and_one_unmetered_link_is_enough() {
    let host = FakeHost::new();
    host.iface("eth0", "up", ARPHRD_ETHER, false)
        .iface("wwan0", "up", ARPHRD_NONE, false)
        .routes(&["eth0", "wwan0"]);
    let r = read_host_report(&host.config());
    assert_eq!(r.state.network, Network::Unmetered);
    assert_eq!(
        r.readings.network.why,
        "eth0, wwan0 carry the default route (eth0: ethernet, ARPHRD 1; wwan0: cellular, ARPHRD 65534)"
    );
}

/// The kernel sends through the default route with the lowest metric (ip-route(8): "metric
/// NUMBER … preference value of the route"; lower is preferred): a phone tethered at metric 0
/// beside Wi-Fi at 600 carries the traffic, so the network is metered — one unmetered link
/// behind it does not make it unmetered (review of issue 12).
#[test]
fn the_lowest_metric_default_route_decides() {
    let host = FakeHost::new();
    host.iface("wwan0", "up", ARPHRD_NONE, false)
        .iface("wlan0", "up", ARPHRD_ETHER, true)
        .routes_with_metrics(&[("wwan0", 0), ("wlan0", 600)]);
    let r = read_host_report(&host.config());
    assert_eq!(r.state.network, Network::Metered);
    assert!(
        r.readings
            .network
            .why
            .starts_with("wwan0 carries the default route (lowest metric; wlan0 behind it)"),
        "{}",
        r.readings.network.why
    );
    // and the other way round
    let host = FakeHost::new();
    host.iface("wwan0", "up", ARPHRD_NONE, false)
        .iface("wlan0", "up", ARPHRD_ETHER, true)
        .routes_with_metrics(&[("wwan0", 700), ("wlan0", 600)]);
    assert_eq!(
        read_host_report(&host.config()).state.network,
        Network::Unmetered
    );
}

#[test]
fn the_override_is_named_as_the_source() {
    let host = FakeHost::new();
    host.iface("eth0", "up", ARPHRD_ETHER, false)
        .routes(&["eth0"]);
    for (metered, network, flag) in [
        (true, Network::Metered, "--metered yes"),
        (false, Network::Unmetered, "--metered no"),
    ] {
        let mut config = host.config();
        config.metered_override = Some(metered);
        let r = read_host_report(&config);
        assert_eq!(r.state.network, network);
        assert_eq!(
            r.readings.network.source,
            Source::Flag {
                flag: flag.to_string()
            }
        );
        assert_eq!(
            r.readings.network.why,
            format!("eth0 carries the default route (set by {flag})")
        );
    }
    // "no" on a cellular link: unmetered, by the flag
    let cell = FakeHost::new();
    cell.iface("wwan0", "up", ARPHRD_NONE, false)
        .routes(&["wwan0"]);
    let mut config = cell.config();
    config.metered_override = Some(false);
    assert_eq!(read_host_report(&config).state.network, Network::Unmetered);
}

#[test]
fn no_network_says_what_is_missing() {
    let host = FakeHost::new();
    host.iface("eth0", "up", ARPHRD_ETHER, false);
    let r = read_host_report(&host.config());
    assert_eq!(r.state.network, Network::None);
    assert_eq!(
        r.readings.network.why,
        format!(
            "no default route in {}",
            host.path("proc/net/route").display()
        )
    );
    let down = FakeHost::new();
    down.iface("eth0", "down", ARPHRD_ETHER, false)
        .routes(&["eth0"]);
    let r = read_host_report(&down.config());
    assert_eq!(r.state.network, Network::None);
    assert_eq!(
        r.readings.network.why,
        "the default route goes through eth0, which is down"
    );
    // an override does not make a network
    let mut config = host.config();
    config.metered_override = Some(true);
    assert_eq!(read_host_report(&config).state.network, Network::None);
}
