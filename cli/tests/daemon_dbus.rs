//! The daemon and `backwork device` with NetworkManager, UPower and logind answering on the
//! system bus — here a private `dbus-daemon` named by `DBUS_SYSTEM_BUS_ADDRESS`, with
//! python-dbusmock's templates (see `constraints/tests/common/bus.rs`) — over a fake kernel
//! tree in which the default route goes through Wi-Fi (unmetered by link type). Guards
//! against the daemon not asking the services, against missing their changes (a job that
//! requires an unmetered network waits while NetworkManager says metered, runs once it says
//! not metered, and is stopped — without penalty, its attempt not charged — when it says
//! metered again), against `device` not naming where each value came from, and against
//! starting work between logind's `PrepareForSleep(true)` and `PrepareForSleep(false)` (a run
//! started then would be frozen mid-way by the suspend).
//!
//! NetworkManager's `NMMetered` ("Types" in its D-Bus API): 1 yes, 2 no, 3 guess-yes.
#![cfg(target_os = "linux")]

mod common;

#[allow(dead_code)]
#[path = "../../constraints/tests/common/bus.rs"]
mod bus;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bus::PrivateBus;
use common::{BIN, Daemon, state};
use zbus::zvariant::Value;

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const UPOWER: &str = "org.freedesktop.UPower";
const LOGIND: &str = "org.freedesktop.login1";

const METERED_YES: u32 = 1;
const METERED_NO: u32 = 2;
const METERED_GUESS_YES: u32 = 3;

/// A laptop whose default route goes through wlan0 (ARPHRD_ETHER, a wireless link), load 3.
fn wifi_host(root: &Path) {
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, format!("{text}\n")).unwrap();
    };
    w("sys/class/net/wlan0/operstate", "up");
    w("sys/class/net/wlan0/type", "1");
    fs::create_dir_all(root.join("sys/class/net/wlan0/phy80211")).unwrap();
    w(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         wlan0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0",
    );
    w("proc/loadavg", "3.00 2.00 1.00 5/300 4242");
    fs::create_dir_all(root.join("sys/class/power_supply")).unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// NetworkManager with the primary connection "Phone hotspot" over Wi-Fi at `metered`.
async fn network_manager(bus: &PrivateBus, metered: u32) {
    bus.phone_hotspot(metered).await;
}

#[test]
fn an_unmetered_job_waits_runs_and_is_stopped_as_network_manager_says() {
    let rt = runtime();
    let Some(bus) = rt.block_on(PrivateBus::start(&[("networkmanager", NM, None)])) else {
        return;
    };
    rt.block_on(network_manager(&bus, METERED_GUESS_YES));
    let root = tempfile::tempdir().unwrap();
    wifi_host(root.path());
    let mut d = Daemon {
        child: None,
        dir: tempfile::tempdir().unwrap(),
        args: Vec::new(),
        prefix: ":".into(),
        device: "host".into(),
        env: vec![
            ("BACKWORK_HOST_ROOT".into(), root.path().to_path_buf()),
            ("DBUS_SYSTEM_BUS_ADDRESS".into(), bus.address.clone().into()),
        ],
    };
    d.launch();

    let device = d.ok(&["device"]);
    assert!(
        device.contains("network   metered    NetworkManager: connectivity full"),
        "{device}"
    );
    assert!(
        device.contains("\"Phone hotspot\" (802-11-wireless)"),
        "{device}"
    );

    let marker = d.path("ran");
    let script = format!("touch {}; exec sleep 60", marker.display());
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
    assert!(why.contains("source: NetworkManager:"), "{why}");
    assert!(!marker.exists(), "ran on a metered network");

    // the user says the hotspot is not metered: the job runs
    rt.block_on(bus.set(NM, NM_PATH, NM, "Metered", METERED_NO));
    d.wait_for("backup", "the run", |r| state(r) == "running");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }

    // metered again: the run is stopped, the job waits again, the attempt not charged
    rt.block_on(bus.set(NM, NM_PATH, NM, "Metered", METERED_YES));
    let r = d.wait_for("backup", "the stop", |r| {
        r["job"]["runs"]
            .as_array()
            .is_some_and(|runs| !runs.is_empty())
    });
    assert_eq!(
        r["job"]["runs"][0]["stop_reason"]["code"], "constraint_lost",
        "{r:#}"
    );
    assert_eq!(state(&r), "enqueued", "{r:#}");
    assert_eq!(
        r["job"]["attempt"], 0,
        "a lost constraint is no failure: {r:#}"
    );
}

#[test]
fn device_without_a_daemon_names_each_services_value() {
    let rt = runtime();
    let Some(bus) = rt.block_on(PrivateBus::start(&[
        ("networkmanager", NM, None),
        ("upower", UPOWER, Some(r#"{"OnBattery": true}"#)),
        ("logind", LOGIND, Some(r#"{"IdleHint": true}"#)),
    ])) else {
        return;
    };
    rt.block_on(async {
        network_manager(&bus, METERED_GUESS_YES).await;
        // a present battery (Type 2), discharging (State 2), at 10 %
        bus.call(
            UPOWER,
            "/org/freedesktop/UPower",
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
    });
    let root = tempfile::tempdir().unwrap();
    wifi_host(root.path());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("device")
        .env("BACKWORK_STORE", dir.path().join("store.redb"))
        .env("BACKWORK_SOCKET", dir.path().join("run/control.sock"))
        .env("BACKWORK_HOST_ROOT", root.path())
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "network   metered    NetworkManager: connectivity full (NM_CONNECTIVITY_FULL) over \"Phone hotspot\" (802-11-wireless), metered (NM_METERED_GUESS_YES, guessed)\n",
        "charging  no         UPower: OnBattery = true\n",
        "battery   10 %       UPower: the display device (a battery) at 10 %\n",
        // the template's GetUser cannot answer: every session's hint (the manager's)
        "idle      yes        logind: IdleHint of every session (this user has none) = true\n",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    let json = Command::new(BIN)
        .args(["device", "--json"])
        .env("BACKWORK_STORE", dir.path().join("store.redb"))
        .env("BACKWORK_SOCKET", dir.path().join("run/control.sock"))
        .env("BACKWORK_HOST_ROOT", root.path())
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&json.stdout);
    assert!(text.contains(r#""kind":"network_manager""#), "{text}");
    assert!(text.contains(r#""kind":"upower""#), "{text}");
    assert!(text.contains(r#""kind":"logind""#), "{text}");
}

/// logind's `PrepareForSleep(true)` (org.freedesktop.login1(5): sent "right before" a suspend,
/// and with `false` after the resume): from the signal on, nothing starts — not even a job the
/// user asked to run now — and `why` says so; at `PrepareForSleep(false)` it starts at once.
/// (The catch-up applied at the resume, which needs time to pass, is tested on the virtual
/// clock in `scheduler/tests/system_sleep.rs`.)
#[test]
fn nothing_starts_between_prepare_for_sleep_and_the_resume() {
    let rt = runtime();
    let Some(bus) = rt.block_on(PrivateBus::start(&[("logind", LOGIND, None)])) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    wifi_host(root.path());
    let mut d = Daemon {
        child: None,
        dir: tempfile::tempdir().unwrap(),
        args: Vec::new(),
        prefix: ":".into(),
        device: "host".into(),
        env: vec![
            ("BACKWORK_HOST_ROOT".into(), root.path().to_path_buf()),
            ("DBUS_SYSTEM_BUS_ADDRESS".into(), bus.address.clone().into()),
        ],
    };
    d.launch();
    let marker = d.path("ran");
    let script = format!("touch {}", marker.display());
    d.add(&["--unique", "sync", "--in", "1h", "--", "sh", "-c", &script]);

    let sleep = |start: bool| {
        rt.block_on(bus.call(
            LOGIND,
            "/org/freedesktop/login1",
            "org.freedesktop.DBus.Mock",
            "EmitSignal",
            &(
                "org.freedesktop.login1.Manager",
                "PrepareForSleep",
                "b",
                vec![Value::from(start)],
            ),
        ))
    };
    sleep(true);
    d.wait_for("sync", "the daemon taking the signal", |r| {
        r["reasons"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["type"] == "sleeping"))
    });
    let why = d.ok(&["why", "sync"]);
    assert!(why.contains("the machine is going to sleep"), "{why}");
    assert!(why.contains("nothing starts until it resumes"), "{why}");
    // "run now" is held too: the start it asks for is decided before `run` answers
    d.ok(&["run", "sync"]);
    let r = d.record("sync");
    assert_eq!(state(&r), "enqueued", "started while asleep: {r:#}");
    assert!(!marker.exists());

    sleep(false);
    d.wait_for("sync", "the run after the resume", |r| {
        state(r) == "succeeded"
    });
    assert!(marker.exists());
}
