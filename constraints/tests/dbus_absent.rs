//! No bus (embedded Linux): when the D-Bus cannot be reached, `watch_services` says so with a
//! typed error that tells what happens instead, and the probe keeps the kernel's readings —
//! every value's source a kernel file (or statvfs, or the assumed screen), none a service.
//! Guards against a machine without D-Bus losing its device state, or the daemon failing to
//! start there. Runs everywhere: it needs no dbus-daemon.
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::{Bus, DbusError, HostProbe, Network, Probe, Source};
use common::{ARPHRD_ETHER, FakeHost};

#[tokio::test]
async fn without_a_bus_the_kernel_decides_every_value() {
    let host = FakeHost::new();
    host.iface("eth0", "up", ARPHRD_ETHER, false)
        .routes(&["eth0"])
        .supply("AC", &[("type", "Mains"), ("online", "1")])
        .load("0.10");
    let probe = HostProbe::new(host.config());
    let before = probe.report().unwrap();
    let nowhere = format!("unix:path={}", host.path("no-such-bus").display());
    let err = probe
        .watch_services(&Bus::Address(nowhere))
        .await
        .expect_err("there is no bus there");
    assert!(matches!(err, DbusError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("from the kernel instead"), "{err}");
    let after = probe.report().unwrap();
    assert_eq!(after, before);
    assert_eq!(after.state.network, Network::Unmetered);
    let r = &after.readings;
    for reading in [&r.network, &r.charging, &r.battery, &r.idle] {
        assert!(
            matches!(reading.source, Source::Kernel { .. }),
            "{reading:?}"
        );
    }
    assert!(probe.services().network_manager.is_none());
}
