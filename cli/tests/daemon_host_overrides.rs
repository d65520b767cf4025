//! The daemon's overrides of the host probe: `--metered yes` makes a job that requires an
//! unmetered network wait on an Ethernet link, and `why` says the network is metered because
//! of the flag; `--metered no` lets it run on a cellular one; `--idle-source always` makes the
//! device idle whatever the load, and `device` names the flag; with `--device manual` the
//! overrides mean nothing and are a usage error that says why. The host is a fake tree
//! (`BACKWORK_HOST_ROOT`; link types are ARPHRD numbers, `include/uapi/linux/if_arp.h`; routes
//! as proc(5) shows `/proc/net/route`) (issue 12, item 8).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{BIN, Daemon, state};

/// A machine whose default route goes through `iface` (ARPHRD `arphrd`), its load average 3.
fn host(root: &Path, iface: &str, arphrd: &str) {
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, format!("{text}\n")).unwrap();
    };
    w(&format!("sys/class/net/{iface}/operstate"), "up");
    w(&format!("sys/class/net/{iface}/type"), arphrd);
    w(
        "proc/net/route",
        &format!(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             {iface}\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0"
        ),
    );
    w("proc/loadavg", "3.00 2.00 1.00 5/300 4242");
    fs::create_dir_all(root.join("sys/class/power_supply")).unwrap();
}

#[test]
fn metered_yes_makes_an_unmetered_job_wait_and_why_names_the_flag() {
    let root = tempfile::tempdir().unwrap();
    host(root.path(), "eth0", "1"); // ARPHRD_ETHER
    let d = Daemon::start_host(root.path(), &["--metered", "yes"]);
    let marker = d.path("ran");
    let script = format!("touch {}", marker.display());
    d.add(&[
        "--unique",
        "backup",
        "--requires",
        "unmetered",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let why = d.ok(&["why", "backup"]);
    assert!(
        why.contains("network: requires an unmetered network, the device is on a metered network"),
        "{why}"
    );
    assert!(
        why.contains("source: eth0 carries the default route (set by --metered yes)"),
        "{why}"
    );
    let device = d.ok(&["device"]);
    assert!(
        device.starts_with(
            "network   metered    eth0 carries the default route (set by --metered yes)\n"
        ),
        "{device}"
    );
    assert_eq!(state(&d.record("backup")), "enqueued");
    assert!(!marker.exists(), "the job ran on a metered network");
}

#[test]
fn metered_no_lets_an_unmetered_job_run_on_a_cellular_link() {
    let root = tempfile::tempdir().unwrap();
    host(root.path(), "wwan0", "65534"); // ARPHRD_NONE: a raw-IP modem
    let d = Daemon::start_host(root.path(), &["--metered", "no"]);
    d.add(&[
        "--unique",
        "backup",
        "--requires",
        "unmetered",
        "--",
        "true",
    ]);
    d.wait_for("backup", "the run", |r| state(r) == "succeeded");
    let device = d.ok(&["device"]);
    assert!(
        device.starts_with(
            "network   unmetered  wwan0 carries the default route (set by --metered no)\n"
        ),
        "{device}"
    );
}

#[test]
fn idle_source_always_is_idle_whatever_the_load() {
    let root = tempfile::tempdir().unwrap();
    host(root.path(), "eth0", "1");
    let d = Daemon::start_host(root.path(), &["--idle-source", "always"]);
    let device = d.ok(&["device"]);
    assert!(
        device.contains("\nidle      yes        set by --idle-source always\n"),
        "{device}"
    );
    d.add(&["--unique", "idle-job", "--requires", "idle", "--", "true"]);
    d.wait_for("idle-job", "the run", |r| state(r) == "succeeded");
}

#[test]
fn overrides_with_a_device_set_by_hand_are_a_usage_error_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["daemon", "--device", "manual", "--metered", "yes"])
        .env("BACKWORK_STORE", dir.path().join("store.redb"))
        .env("BACKWORK_SOCKET", dir.path().join("control.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--metered changes what the host probe reads, and with --device manual nothing is read"
        ),
        "{err}"
    );
    assert!(err.contains("backwork device set"), "{err}");
    assert!(
        !dir.path().join("store.redb").exists(),
        "the refused daemon made a store"
    );
}
