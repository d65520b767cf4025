//! `backwork device` explains itself: each value with where it came from and why — the
//! interface that carries the default route and its link type, the sysfs file that said "on
//! AC", the load average against its threshold — with or without a daemon (without one it
//! probes the host itself, and needs no store), in text and in `--json`; a daemon started with
//! `--device manual` says every value was set by hand; at 80 columns no line is longer. The
//! host is a fake tree (`BACKWORK_HOST_ROOT`) in the kernel's formats: sysfs-class-power and
//! sysfs-class-net (`Documentation/ABI/testing/`), proc(5) for `/proc/net/route` and
//! `/proc/loadavg` (issue 12, item 8).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Daemon};
use serde_json::Value;

/// A laptop on AC with its battery at 81 % and charging, on Wi-Fi (ARPHRD_ETHER, 1, with a
/// `phy80211` link), its 1-minute load average 1.37.
fn laptop(root: &Path) {
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, format!("{text}\n")).unwrap();
    };
    w("sys/class/power_supply/AC/type", "Mains");
    w("sys/class/power_supply/AC/online", "1");
    w("sys/class/power_supply/BAT0/type", "Battery");
    w("sys/class/power_supply/BAT0/capacity", "81");
    w("sys/class/power_supply/BAT0/status", "Charging");
    w("sys/class/net/wlp2s0/operstate", "up");
    w("sys/class/net/wlp2s0/type", "1");
    fs::create_dir_all(root.join("sys/class/net/wlp2s0/phy80211")).unwrap();
    w(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         wlp2s0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0",
    );
    w("proc/loadavg", "1.37 0.80 0.50 2/300 4242");
}

/// `backwork ARGS` on a fresh account (no store, no daemon) reading the fake host.
fn fresh(home: &Path, root: &Path, columns: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("BACKWORK_HOST_ROOT", root);
    if let Some(c) = columns {
        cmd.env("COLUMNS", c);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn without_a_daemon_each_value_says_where_it_came_from() {
    let home = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    laptop(host.path());
    let root = host.path().display();
    let text = stdout(&fresh(home.path(), host.path(), None, &["device"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(
        lines[0],
        "network   unmetered  wlp2s0 carries the default route (wifi, ARPHRD 1)"
    );
    assert_eq!(
        lines[1],
        format!("charging  yes        {root}/sys/class/power_supply/AC/online = 1")
    );
    assert_eq!(
        lines[2],
        format!("battery   81 %       {root}/sys/class/power_supply/BAT0/capacity")
    );
    assert!(lines[3].starts_with("storage   ok"), "{text}");
    assert!(lines[3].ends_with("low under 10 % and 1 GiB"), "{text}");
    assert_eq!(
        lines[4],
        format!("idle      no         load average 1.37 ≥ 0.5 (1 min, {root}/proc/loadavg)")
    );
    assert_eq!(
        lines[5],
        "screen    on         a Linux machine has no screen-off state for background work"
    );
    assert_eq!(lines[6], "source    host");
    assert!(
        !home.path().join(".local").exists(),
        "device made a store's folder"
    );
}

#[test]
fn json_carries_each_source() {
    let home = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    laptop(host.path());
    let text = stdout(&fresh(
        home.path(),
        host.path(),
        None,
        &["device", "--json"],
    ));
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    // the state's fields stay where they were
    assert_eq!(v["network"], "unmetered");
    assert_eq!(v["battery"], 81);
    assert_eq!(v["source"], "host");
    let r = &v["readings"];
    assert_eq!(r["network"]["source"]["kind"], "kernel");
    let paths = r["network"]["source"]["paths"].as_array().unwrap();
    let route = host.path().join("proc/net/route");
    assert!(
        paths.iter().any(|p| p.as_str() == route.to_str()),
        "{paths:?}"
    );
    assert_eq!(
        r["network"]["why"],
        "wlp2s0 carries the default route (wifi, ARPHRD 1)"
    );
    let online = host.path().join("sys/class/power_supply/AC/online");
    assert_eq!(
        r["charging"]["source"]["paths"],
        serde_json::json!([online.to_str().unwrap()])
    );
    assert_eq!(r["storage"]["source"]["kind"], "statvfs");
    assert_eq!(r["idle"]["source"]["kind"], "kernel");
    assert_eq!(r["screen"]["source"]["kind"], "assumed");
}

#[test]
fn at_80_columns_no_line_is_longer() {
    let home = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    laptop(host.path());
    let text = stdout(&fresh(home.path(), host.path(), Some("80"), &["device"]));
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    // the storage line (free space on a temp dir, and both thresholds) is longer whole; at 80
    // columns it continues under its column
    let whole = stdout(&fresh(home.path(), host.path(), None, &["device"]));
    assert!(whole.lines().any(|l| l.chars().count() > 80), "{whole}");
    assert!(
        text.lines().any(|l| l.starts_with(&" ".repeat(21))),
        "{text}"
    );
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        whole.split_whitespace().collect::<Vec<_>>(),
        "wrapping lost or changed words"
    );
}

#[test]
fn a_daemon_with_the_device_set_by_hand_says_so_for_each_value() {
    let d = Daemon::start(&[]);
    d.ok(&["device", "set", "network=metered", "idle=true"]);
    let text = d.ok(&["device"]);
    let by_hand: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with("set by hand (backwork device set)"))
        .collect();
    assert_eq!(by_hand.len(), 6, "{text}");
    assert!(
        text.starts_with("network   metered    set by hand"),
        "{text}"
    );
    assert!(text.ends_with("source    manual\n"), "{text}");
    let v: Value = serde_json::from_str(d.ok(&["device", "--json"]).trim()).unwrap();
    for key in [
        "network", "charging", "battery", "storage", "idle", "screen",
    ] {
        assert_eq!(v["readings"][key]["source"]["kind"], "manual", "{key}: {v}");
    }
}
