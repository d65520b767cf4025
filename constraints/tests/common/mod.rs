//! Fake sysfs and procfs trees for the host probe (its roots are configurable), written in the
//! formats the kernel documents:
//!
//! - `/sys/class/power_supply/<supply>/{type,online,capacity,status,scope}`:
//!   `Documentation/ABI/testing/sysfs-class-power` (type `Mains`, `USB`, `Battery`; online
//!   `0`/`1`; capacity 0–100; status `Charging`, `Discharging`, `Full`, …; scope `System` or
//!   `Device`, the latter for a peripheral's own battery).
//! - `/sys/class/net/<iface>/{operstate,type}`: `Documentation/ABI/testing/sysfs-class-net`
//!   (type is the ARPHRD number of `include/uapi/linux/if_arp.h`); a wireless (cfg80211)
//!   interface has a `phy80211` link.
//! - `/proc/net/route` and `/proc/loadavg`: proc(5) (route: a header line, then `Iface
//!   Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT` with addresses in hex; a
//!   default route has destination and mask 0. loadavg: the 1, 5 and 15 minute load averages,
//!   runnable/total tasks, the last pid).

#![allow(dead_code)] // each test file uses its own part

#[cfg(target_os = "linux")]
pub mod bus;

use std::fs;
use std::path::{Path, PathBuf};

use backwork_constraints::{HostConfig, IdleSource};

/// ARPHRD_ETHER (`include/uapi/linux/if_arp.h`): Ethernet, and Wi-Fi.
pub const ARPHRD_ETHER: &str = "1";
/// ARPHRD_PPP.
pub const ARPHRD_PPP: &str = "512";
/// ARPHRD_NONE (0xFFFE): raw-IP WWAN modems.
pub const ARPHRD_NONE: &str = "65534";

/// A fake host under a temp dir: `sys/class/power_supply`, `sys/class/net`, `proc`.
pub struct FakeHost {
    pub dir: tempfile::TempDir,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        let host = FakeHost {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(host.power()).unwrap();
        fs::create_dir_all(host.net()).unwrap();
        fs::create_dir_all(host.proc_().join("net")).unwrap();
        host.routes(&[]);
        host
    }

    pub fn power(&self) -> PathBuf {
        self.dir.path().join("sys/class/power_supply")
    }

    pub fn net(&self) -> PathBuf {
        self.dir.path().join("sys/class/net")
    }

    pub fn proc_(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    /// Writes attributes of a power supply (one value per file, newline-terminated, as sysfs).
    pub fn supply(&self, name: &str, attrs: &[(&str, &str)]) -> &Self {
        let dir = self.power().join(name);
        fs::create_dir_all(&dir).unwrap();
        for (f, v) in attrs {
            fs::write(dir.join(f), format!("{v}\n")).unwrap();
        }
        self
    }

    /// An interface with its operstate and ARPHRD type; `wireless` adds the `phy80211` entry.
    pub fn iface(&self, name: &str, operstate: &str, arphrd: &str, wireless: bool) -> &Self {
        let dir = self.net().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("operstate"), format!("{operstate}\n")).unwrap();
        fs::write(dir.join("type"), format!("{arphrd}\n")).unwrap();
        if wireless {
            fs::create_dir_all(dir.join("phy80211")).unwrap();
        }
        self
    }

    /// `/proc/net/route` with a default route through each of `default_via`, and a local
    /// 192.168.2.0/24 route through eth0 that is not a default route.
    pub fn routes(&self, default_via: &[&str]) -> &Self {
        let with_metrics: Vec<(&str, u32)> = default_via.iter().map(|i| (*i, 100)).collect();
        self.routes_with_metrics(&with_metrics)
    }

    /// `/proc/net/route` with a default route through each of these interfaces, at these
    /// metrics (proc(5): column 7, decimal).
    pub fn routes_with_metrics(&self, default_via: &[(&str, u32)]) -> &Self {
        let mut route = String::from(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
        );
        for (i, metric) in default_via {
            route.push_str(&format!(
                "{i}\t00000000\t0102A8C0\t0003\t0\t0\t{metric}\t00000000\t0\t0\t0\n"
            ));
        }
        route.push_str("eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n");
        fs::write(self.proc_().join("net/route"), route).unwrap();
        self
    }

    /// `/proc/loadavg` with this 1-minute load average.
    pub fn load(&self, one_minute: &str) -> &Self {
        fs::write(
            self.proc_().join("loadavg"),
            format!("{one_minute} 0.20 0.30 1/100 42\n"),
        )
        .unwrap();
        self
    }

    /// The probe's configuration for this tree (storage: the temp dir's filesystem).
    pub fn config(&self) -> HostConfig {
        HostConfig {
            power_supply_root: self.power(),
            net_root: Some(self.net()),
            proc_root: self.proc_(),
            storage_path: self.dir.path().to_path_buf(),
            idle: IdleSource::LoadAverage { below: 0.5 },
            ..HostConfig::default()
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// The paths of a kernel source, or a panic naming what it was.
pub fn kernel_paths(source: &backwork_constraints::Source) -> &[PathBuf] {
    match source {
        backwork_constraints::Source::Kernel { paths } => paths,
        other => panic!("expected files the kernel exports, got {other:?}"),
    }
}

pub fn has(paths: &[PathBuf], p: &Path) -> bool {
    paths.iter().any(|x| x == p)
}
