//! The host probe's network detection, end to end, in a fresh network namespace: a child process
//! in its own namespace (`unshare --net`) starts with no network, brings up a veth link with a
//! default route, takes it down, then routes through a cellular-named link — and the probe, woken
//! only by route-netlink notifications, must see each change (unmetered, none, metered). No address is configured and no packet is sent. Needs root and the `unshare`
//! and `ip` tools; the test says plainly when it skips.
#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::Duration;

use backwork_constraints::{HostConfig, HostProbe, Network, Probe};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

async fn wait_for(probe: &HostProbe, want: Network) {
    let mut rx = probe.subscribe();
    tokio::time::timeout(Duration::from_secs(10), async {
        while rx.borrow_and_update().network != want {
            rx.changed().await.expect("probe alive");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the probe did not see the network become {want:?}"));
}

#[tokio::test]
#[ignore = "run by network_changes_in_a_fresh_namespace_are_noticed, inside `unshare --net`"]
async fn netns_child() {
    if std::env::var_os("BACKWORK_NETNS_CHILD").is_none() {
        return;
    }
    let probe = HostProbe::new(HostConfig::default());
    assert_eq!(
        probe.current().network,
        Network::None,
        "a fresh namespace has no network"
    );
    let _listening = probe.listen().expect("listen");
    // an Ethernet-like link (a veth pair) with a default route: unmetered
    ip(&[
        "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p",
    ]);
    ip(&["link", "set", "eth9p", "up"]);
    ip(&["link", "set", "eth9", "up"]);
    ip(&["route", "add", "default", "dev", "eth9"]);
    wait_for(&probe, Network::Unmetered).await;
    // the link goes down: no network
    ip(&["link", "set", "eth9", "down"]);
    wait_for(&probe, Network::None).await;
    // a cellular link carries the default route: metered
    ip(&[
        "link", "add", "wwan0", "type", "veth", "peer", "name", "wwan0p",
    ]);
    ip(&["link", "set", "wwan0p", "up"]);
    ip(&["link", "set", "wwan0", "up"]);
    ip(&["route", "add", "default", "dev", "wwan0"]);
    wait_for(&probe, Network::Metered).await;
    println!("netns-ok");
}

#[test]
fn network_changes_in_a_fresh_namespace_are_noticed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a fresh network namespace needs root");
        return;
    }
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if !have("unshare") || !have("ip") {
        eprintln!("skipped: the `unshare` and `ip` tools are needed (util-linux, iproute2)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .arg("--net")
        .arg(exe)
        .args(["--exact", "netns_child", "--ignored", "--nocapture"])
        .env("BACKWORK_NETNS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unshare failed") {
        eprintln!("skipped: this sandbox does not allow new network namespaces ({stderr})");
        return;
    }
    assert!(
        out.status.success() && stdout.contains("netns-ok"),
        "{stdout}\n{stderr}"
    );
}
