//! The Linux host probe on fake sysfs / procfs trees: power (AC, battery, peripherals), network
//! (default routes, link types, the user's override), storage thresholds and idleness, and a
//! probe that notices a flipped tree on refresh.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::Path;

use backwork_constraints::host::{read_network, read_power, read_storage_low};
use backwork_constraints::{HostConfig, HostProbe, IdleSource, Network, Probe};

fn supply(root: &Path, name: &str, files: &[(&str, &str)]) {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    for (f, v) in files {
        fs::write(dir.join(f), format!("{v}\n")).unwrap();
    }
}

#[test]
fn power_from_a_fake_tree() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    assert_eq!(
        read_power(&root.join("missing")),
        (true, None),
        "no power class: on AC"
    );
    supply(root, "AC", &[("type", "Mains"), ("online", "1")]);
    supply(
        root,
        "BAT0",
        &[
            ("type", "Battery"),
            ("capacity", "80"),
            ("status", "Charging"),
        ],
    );
    supply(
        root,
        "hidpp_battery_0",
        &[("type", "Battery"), ("scope", "Device"), ("capacity", "5")],
    );
    assert_eq!(
        read_power(root),
        (true, Some(80)),
        "the mouse battery is ignored"
    );
    supply(root, "AC", &[("online", "0")]);
    supply(
        root,
        "BAT0",
        &[("capacity", "41"), ("status", "Discharging")],
    );
    assert_eq!(read_power(root), (false, Some(41)));
    fs::remove_dir_all(root.join("BAT0")).unwrap();
    assert_eq!(
        read_power(root),
        (true, None),
        "a machine without a battery counts as on AC"
    );
}

fn net_tree(root: &Path, ifaces: &[(&str, &str, &str)], default_via: &[&str]) -> HostConfig {
    let sys = root.join("sys");
    let proc_ = root.join("proc");
    fs::create_dir_all(proc_.join("net")).unwrap();
    for (name, state, ty) in ifaces {
        let d = sys.join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("operstate"), format!("{state}\n")).unwrap();
        fs::write(d.join("type"), format!("{ty}\n")).unwrap();
    }
    let mut route = String::from(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
    );
    for i in default_via {
        route.push_str(&format!(
            "{i}\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        ));
    }
    route.push_str("eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n");
    fs::write(proc_.join("net/route"), route).unwrap();
    HostConfig {
        net_root: Some(sys),
        proc_root: proc_,
        ..HostConfig::default()
    }
}

#[test]
fn network_from_routes_and_link_types() {
    let t = tempfile::tempdir().unwrap();
    let ifaces = [
        ("lo", "unknown", "772"),
        ("eth0", "up", "1"),
        ("wwan0", "up", "65534"),
    ];
    let cfg = net_tree(&t.path().join("a"), &ifaces, &["eth0"]);
    assert_eq!(read_network(&cfg), Network::Unmetered);
    let cfg = net_tree(&t.path().join("b"), &ifaces, &["wwan0"]);
    assert_eq!(read_network(&cfg), Network::Metered, "cellular is metered");
    let cfg = net_tree(&t.path().join("c"), &ifaces, &[]);
    assert_eq!(
        read_network(&cfg),
        Network::None,
        "no default route: no network"
    );
    let down = [("eth0", "down", "1")];
    let cfg = net_tree(&t.path().join("d"), &down, &["eth0"]);
    assert_eq!(
        read_network(&cfg),
        Network::None,
        "a default route over a downed link"
    );
    let mut cfg = net_tree(&t.path().join("e"), &ifaces, &["eth0"]);
    cfg.metered_override = Some(true);
    assert_eq!(
        read_network(&cfg),
        Network::Metered,
        "the user marked it metered"
    );
    let tether = [("usb0", "up", "1")];
    let cfg = net_tree(&t.path().join("f"), &tether, &["usb0"]);
    assert_eq!(
        read_network(&cfg),
        Network::Metered,
        "USB tethering is metered"
    );
}

#[test]
fn storage_thresholds_need_both_to_be_low() {
    let t = tempfile::tempdir().unwrap();
    assert!(read_storage_low(t.path(), 101.0, u64::MAX).unwrap());
    assert!(!read_storage_low(t.path(), 0.0, u64::MAX).unwrap());
    assert!(!read_storage_low(t.path(), 101.0, 0).unwrap());
    assert!(read_storage_low(&t.path().join("missing"), 10.0, 1).is_err());
}

#[test]
fn a_probe_notices_a_flipped_tree_on_refresh() {
    let t = tempfile::tempdir().unwrap();
    let power = t.path().join("power");
    supply(&power, "AC", &[("type", "Mains"), ("online", "1")]);
    supply(
        &power,
        "BAT0",
        &[("type", "Battery"), ("capacity", "90"), ("status", "Full")],
    );
    fs::create_dir_all(t.path().join("proc")).unwrap();
    fs::write(t.path().join("proc/loadavg"), "0.10 0.20 0.30 1/100 42\n").unwrap();
    let probe = HostProbe::new(HostConfig {
        power_supply_root: power.clone(),
        proc_root: t.path().join("proc"),
        net_root: Some(t.path().join("net")),
        storage_path: t.path().to_path_buf(),
        idle: IdleSource::LoadAverage { below: 0.5 },
        ..HostConfig::default()
    });
    let mut rx = probe.subscribe();
    let s = *rx.borrow_and_update();
    assert!(s.charging);
    assert_eq!(s.battery, Some(90));
    assert!(s.idle);
    assert_eq!(s.network, Network::None);

    probe.refresh();
    assert!(
        !rx.has_changed().unwrap(),
        "nothing changed: no notification"
    );

    supply(&power, "AC", &[("online", "0")]);
    supply(
        &power,
        "BAT0",
        &[("capacity", "12"), ("status", "Discharging")],
    );
    fs::write(t.path().join("proc/loadavg"), "3.50 0.20 0.30 1/100 42\n").unwrap();
    probe.refresh();
    assert!(rx.has_changed().unwrap());
    let s = *rx.borrow_and_update();
    assert!(!s.charging);
    assert_eq!(s.battery, Some(12));
    assert!(!s.battery_not_low());
    assert!(!s.idle);
}

#[tokio::test]
async fn the_probe_listens_for_kernel_notifications() {
    let probe = HostProbe::new(HostConfig::default());
    match probe.listen() {
        Ok(task) => task.abort(),
        Err(e) => eprintln!("skipped: netlink sockets are not available here ({e})"),
    }
}

#[test]
fn listening_outside_a_runtime_is_an_error_not_a_panic() {
    let probe = HostProbe::new(HostConfig::default());
    let err = probe.listen().unwrap_err();
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn storage_and_idle_are_polled_only_while_a_job_waits_on_them() {
    use backwork_constraints::Constraint;
    use std::collections::BTreeSet;
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("proc")).unwrap();
    let loadavg = t.path().join("proc/loadavg");
    fs::write(&loadavg, "2.00 0 0 1/1 1\n").unwrap();
    let probe = HostProbe::new(HostConfig {
        proc_root: t.path().join("proc"),
        storage_path: t.path().to_path_buf(),
        ..HostConfig::default()
    });
    let mut rx = probe.subscribe();
    assert!(!rx.borrow_and_update().idle);

    // nobody waits on idleness: a change is not noticed, however long we wait
    fs::write(&loadavg, "0.10 0 0 1/1 1\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    assert!(!probe.is_polling());
    assert!(!rx.has_changed().unwrap());

    // a job waits on idleness: read at once, then once a minute
    probe.waiting_on(&BTreeSet::from([Constraint::DeviceIdle]));
    assert!(probe.is_polling());
    assert!(rx.borrow_and_update().idle, "read as soon as it is wanted");
    fs::write(&loadavg, "3.00 0 0 1/1 1\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    assert!(
        !rx.has_changed().unwrap(),
        "not more often than once a minute"
    );
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    assert!(rx.has_changed().unwrap());
    assert!(!rx.borrow_and_update().idle);

    // nobody waits any more: the poll stops
    probe.waiting_on(&BTreeSet::new());
    assert!(!probe.is_polling());
    fs::write(&loadavg, "0.10 0 0 1/1 1\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    assert!(!rx.has_changed().unwrap());
}
