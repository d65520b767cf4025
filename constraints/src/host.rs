//! The Linux host probe: device state read from sysfs and procfs, refreshed when the kernel says
//! something changed.
//!
//! - **Power**: `/sys/class/power_supply` (the root is configurable, so tests use a fake tree).
//!   Mains / USB supplies that are `online` mean AC power; a machine with no system battery counts
//!   as on AC (as systemd's `ConditionACPower` does). The battery level is the capacity of the
//!   system batteries (`scope` other than `Device`, which marks peripherals such as a mouse).
//! - **Network**: connected when a default route (`/proc/net/route`, `/proc/net/ipv6_route`) goes
//!   through an interface that is up and not loopback; metered when that interface is cellular,
//!   point-to-point or USB tethering (`wwan*`, `ppp*`, `usb*`, `rmnet*`, `wwp*`, or an ARPHRD of
//!   PPP / raw IP), or when the user says so.
//! - **Storage**: `statvfs` on the store's filesystem: low when free space is under both a
//!   percentage (default 10 %) and a size (default 1 GiB).
//! - **Idle**: a configurable source; the default is the 1-minute load average under a threshold.
//!
//! Each reading also says where each value came from and why ([`read_host_report`],
//! [`Probe::report`](crate::Probe::report)): the interface that carries the default route and
//! its link type, the sysfs file that said "on AC", free space against the thresholds, the load
//! average against its threshold, or the daemon's override (`--metered`, `--idle-source`).
//!
//! Change notifications come from netlink: kernel uevents (power supplies) and the route socket's
//! link, address and route groups. The probe uses them only as "look again" signals and re-reads
//! the files, so it parses no netlink messages. Storage and idle have no event source; they are
//! re-read on every refresh.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{DeviceReadings, DeviceReport, DeviceState, Network, Reading, Source};

/// Where the host probe reads from, and its thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// The power-supply class directory (default `/sys/class/power_supply`).
    pub power_supply_root: PathBuf,
    /// Where link state comes from. `None` (the default): the kernel, for this process's network
    /// namespace (`getifaddrs` flags), with link types from `/sys/class/net` where it shows them.
    /// `Some(dir)`: a sysfs-like tree (`<dir>/<iface>/operstate`, `type`) — for tests. (In a
    /// container or a fresh network namespace, `/sys/class/net` may show another namespace's
    /// links, so the default does not read state from it.)
    pub net_root: Option<PathBuf>,
    /// The procfs root (default `/proc`): `net/route`, `net/ipv6_route`, `loadavg`.
    pub proc_root: PathBuf,
    /// A path on the filesystem whose free space counts (the store's).
    pub storage_path: PathBuf,
    /// Storage is low below this percentage of free space…
    pub storage_low_percent: f64,
    /// …and below this many free bytes.
    pub storage_low_bytes: u64,
    /// How idleness is decided.
    pub idle: IdleSource,
    /// Treat every network as metered (`Some(true)`) or unmetered (`Some(false)`) regardless of
    /// its link type (the daemon's `--metered yes|no`; readings name that flag).
    pub metered_override: Option<bool>,
    /// How often storage and idleness (which have no event source) are re-read while a due job
    /// waits on them; never more often than once a minute (default: a minute).
    pub poll_every: std::time::Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            power_supply_root: PathBuf::from("/sys/class/power_supply"),
            net_root: None,
            proc_root: PathBuf::from("/proc"),
            storage_path: PathBuf::from("."),
            storage_low_percent: 10.0,
            storage_low_bytes: 1 << 30,
            idle: IdleSource::Auto { below: 0.5 },
            metered_override: None,
            poll_every: std::time::Duration::from_secs(60),
        }
    }
}

/// How the host probe decides the device is idle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IdleSource {
    /// logind's `IdleHint` while logind answers on the bus (see [`HostProbe::watch_services`]),
    /// else the 1-minute load average below `below` (the default).
    Auto {
        /// The load-average threshold when logind does not answer.
        below: f64,
    },
    /// Idle when the 1-minute load average is below `below`, whatever logind says (the daemon's
    /// `--idle-source load`).
    LoadAverage {
        /// The threshold.
        below: f64,
    },
    /// logind's `IdleHint` only; not idle while logind does not answer (the daemon's
    /// `--idle-source logind`).
    Logind,
    /// Never idle (the daemon's `--idle-source never`: jobs requiring idleness wait).
    Never,
    /// Always idle (the daemon's `--idle-source always`: a headless box).
    Always,
}

impl IdleSource {
    /// The daemon's flag that chose this source, when it is an override (`--idle-source
    /// always`); `None` for the load average.
    fn flag(&self) -> Option<&'static str> {
        match self {
            IdleSource::Auto { .. } | IdleSource::LoadAverage { .. } => None,
            IdleSource::Logind => Some("--idle-source logind"),
            IdleSource::Never => Some("--idle-source never"),
            IdleSource::Always => Some("--idle-source always"),
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn kernel(paths: impl IntoIterator<Item = PathBuf>) -> Source {
    Source::Kernel {
        paths: paths.into_iter().collect(),
    }
}

/// What a machine without a system battery counts as, and why.
const NO_BATTERY: &str = "no system battery: counts as on AC, as systemd's ConditionACPower";

/// Power as the power-supply tree under `root` says (see the kernel's
/// `Documentation/ABI/testing/sysfs-class-power`), with the reading of each value.
struct Power {
    on_ac: bool,
    battery: Option<u8>,
    charging_why: Reading,
    battery_why: Reading,
}

/// A machine without a system battery: on AC, no level; `why` says what was found instead.
fn without_battery(root: &Path, why: String) -> Power {
    Power {
        on_ac: true,
        battery: None,
        charging_why: Reading::new(kernel([root.to_path_buf()]), NO_BATTERY),
        battery_why: Reading::new(kernel([root.to_path_buf()]), why),
    }
}

fn explain_power(root: &Path) -> Power {
    let Ok(entries) = fs::read_dir(root) else {
        // no power-supply class at all: a machine without a battery
        return without_battery(root, format!("no power supplies under {}", root.display()));
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    // (supply, online)
    let mut mains: Vec<(PathBuf, bool)> = Vec::new();
    // (supply, capacity if it reads as a percentage, status): a system battery whose capacity
    // does not read is still a battery (the machine is not "without a battery")
    let mut batteries: Vec<(PathBuf, Option<u8>, String)> = Vec::new();
    let mut peripherals: Vec<String> = Vec::new();
    for dir in dirs {
        let kind = read_trimmed(&dir.join("type")).unwrap_or_default();
        let peripheral = read_trimmed(&dir.join("scope")).is_some_and(|s| s == "Device");
        match kind.as_str() {
            "Mains" | "USB" | "USB_C" | "USB_PD" => {
                let online = read_trimmed(&dir.join("online")).is_some_and(|v| v == "1");
                mains.push((dir, online));
            }
            "Battery" if peripheral => peripherals.push(name_of(&dir)),
            "Battery" => {
                let capacity = read_trimmed(&dir.join("capacity"))
                    .and_then(|v| v.parse::<u8>().ok())
                    .map(|c| c.min(100));
                let status = read_trimmed(&dir.join("status")).unwrap_or_default();
                batteries.push((dir, capacity, status));
            }
            _ => {}
        }
    }
    let ignored = if peripherals.is_empty() {
        String::new()
    } else {
        format!(
            "; {} ignored (a device's own battery)",
            peripherals.join(", ")
        )
    };
    if batteries.is_empty() {
        return without_battery(
            root,
            format!("no system battery under {}{ignored}", root.display()),
        );
    }
    let readable: Vec<u8> = batteries.iter().filter_map(|(_, c, _)| *c).collect();
    let battery = if readable.is_empty() {
        None
    } else {
        let sum: u32 = readable.iter().map(|c| u32::from(*c)).sum();
        u8::try_from(sum / readable.len() as u32).ok()
    };
    let battery_why = match batteries.as_slice() {
        _ if readable.is_empty() => Reading::new(
            kernel(batteries.iter().map(|(d, _, _)| d.join("capacity"))),
            format!(
                "{}: not a percentage, so the level is unknown{ignored}",
                batteries
                    .iter()
                    .map(|(d, _, _)| d.join("capacity").display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        [(dir, _, _)] => Reading::new(
            kernel([dir.join("capacity")]),
            format!("{}{ignored}", dir.join("capacity").display()),
        ),
        many => Reading::new(
            kernel(many.iter().map(|(d, _, _)| d.join("capacity"))),
            format!(
                "mean capacity of {}{ignored}",
                many.iter()
                    .map(|(d, c, _)| match c {
                        Some(c) => format!("{} {c} %", name_of(d)),
                        None => format!("{} unknown", name_of(d)),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    };
    let charging_battery = batteries
        .iter()
        .find(|(_, _, status)| status == "Charging" || status == "Full");
    let status_reading = |(dir, _, status): &(PathBuf, Option<u8>, String)| {
        Reading::new(
            kernel([dir.join("status")]),
            format!("{} = {status}", dir.join("status").display()),
        )
    };
    let (on_ac, charging_why) = if let Some((dir, _)) = mains.iter().find(|(_, online)| *online) {
        (
            true,
            Reading::new(
                kernel([dir.join("online")]),
                format!("{} = 1", dir.join("online").display()),
            ),
        )
    } else if let Some(b) = charging_battery {
        (true, status_reading(b))
    } else {
        match mains.as_slice() {
            [] => (false, status_reading(&batteries[0])),
            [(dir, _)] => (
                false,
                Reading::new(
                    kernel([dir.join("online")]),
                    format!("{} = 0", dir.join("online").display()),
                ),
            ),
            many => (
                false,
                Reading::new(
                    kernel(many.iter().map(|(d, _)| d.join("online"))),
                    format!(
                        "no mains or USB supply online ({}: online = 0)",
                        many.iter()
                            .map(|(d, _)| name_of(d))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            ),
        }
    };
    Power {
        on_ac,
        battery,
        charging_why,
        battery_why,
    }
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Power as the power-supply tree under `root` says: (on AC, battery percent).
pub fn read_power(root: &Path) -> (bool, Option<u8>) {
    let p = explain_power(root);
    (p.on_ac, p.battery)
}

/// Interfaces with the metric of their default route.
type Routes = Vec<(String, u32)>;

/// The interfaces that carry a default route, with the route's metric, from `/proc/net/route`
/// (metric in decimal, column 7) and `/proc/net/ipv6_route` (in hex, column 6) — proc(5) — and
/// the files that exist. An interface with several default routes keeps its lowest metric.
fn default_route_interfaces(proc_root: &Path) -> (Routes, Vec<PathBuf>) {
    let mut out: Vec<(String, u32)> = Vec::new();
    let mut read = Vec::new();
    let v4_path = proc_root.join("net/route");
    if let Ok(v4) = fs::read_to_string(&v4_path) {
        read.push(v4_path);
        for line in v4.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask …; a default route has
            // destination 0 and mask 0
            if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" {
                out.push((f[0].to_string(), f[6].parse().unwrap_or(u32::MAX)));
            }
        }
    }
    let v6_path = proc_root.join("net/ipv6_route");
    if let Ok(v6) = fs::read_to_string(&v6_path) {
        read.push(v6_path);
        for line in v6.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // dest destlen src srclen nexthop metric refcnt use flags iface
            if f.len() >= 10 && f[0].chars().all(|c| c == '0') && f[1] == "00" && f[9] != "lo" {
                let metric = u32::from_str_radix(f[5], 16).unwrap_or(u32::MAX);
                out.push((f[9].to_string(), metric));
            }
        }
    }
    out.sort();
    out.dedup_by(|later, first| later.0 == first.0);
    (out, read)
}

fn interface_up(net_root: Option<&Path>, iface: &str) -> bool {
    if iface == "lo" {
        return false;
    }
    match net_root {
        // "up", and "unknown" (tunnels and PPP often report it while working), count as up
        Some(root) => {
            let dir = root.join(iface);
            dir.exists()
                && !matches!(
                    read_trimmed(&dir.join("operstate")).as_deref(),
                    Some("down") | Some("lowerlayerdown") | Some("notpresent")
                )
        }
        None => {
            use nix::net::if_::InterfaceFlags;
            nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
                addrs.any(|a| {
                    a.interface_name == iface
                        && a.flags
                            .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING)
                        && !a.flags.contains(InterfaceFlags::IFF_LOOPBACK)
                })
            })
        }
    }
}

/// What kind of link an interface is, as far as metering goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    Wifi,
    Ethernet,
    Cellular,
    PointToPoint,
    UsbTethering,
    Other,
}

impl LinkKind {
    fn metered(self) -> bool {
        matches!(
            self,
            LinkKind::Cellular | LinkKind::PointToPoint | LinkKind::UsbTethering
        )
    }

    fn name(self) -> &'static str {
        match self {
            LinkKind::Wifi => "wifi",
            LinkKind::Ethernet => "ethernet",
            LinkKind::Cellular => "cellular",
            LinkKind::PointToPoint => "point-to-point",
            LinkKind::UsbTethering => "USB tethering",
            LinkKind::Other => "other link type",
        }
    }
}

/// One interface's link: its kind, its ARPHRD type (`/sys/class/net/<iface>/type`, see the
/// kernel's `Documentation/ABI/testing/sysfs-class-net` and `include/uapi/linux/if_arp.h`), and
/// the type file.
struct Link {
    kind: LinkKind,
    arphrd: Option<u16>,
    type_path: PathBuf,
}

impl Link {
    /// `wifi, ARPHRD 1`
    fn describe(&self) -> String {
        match self.arphrd {
            Some(t) => format!("{}, ARPHRD {t}", self.kind.name()),
            None => self.kind.name().to_string(),
        }
    }
}

fn link(net_root: Option<&Path>, iface: &str) -> Link {
    let net_root = net_root.unwrap_or(Path::new("/sys/class/net"));
    let dir = net_root.join(iface);
    let type_path = dir.join("type");
    let arphrd = read_trimmed(&type_path).and_then(|t| t.parse::<u16>().ok());
    const CELLULAR_PREFIXES: [&str; 4] = ["wwan", "wwp", "rmnet", "ccmni"];
    let kind = if CELLULAR_PREFIXES.iter().any(|p| iface.starts_with(p)) {
        LinkKind::Cellular
    } else if iface.starts_with("ppp") {
        LinkKind::PointToPoint
    } else if iface.starts_with("usb") {
        LinkKind::UsbTethering
    } else {
        match arphrd {
            // ARPHRD_PPP
            Some(512) => LinkKind::PointToPoint,
            // ARPHRD_RAWIP (cellular modems), ARPHRD_NONE (wwan raw-ip)
            Some(519) | Some(65534) => LinkKind::Cellular,
            // cfg80211 devices have a phy80211 link, wireless-extensions ones a wireless folder
            _ if dir.join("phy80211").exists()
                || dir.join("wireless").exists()
                || iface.starts_with("wl") =>
            {
                LinkKind::Wifi
            }
            // ARPHRD_ETHER
            Some(1) => LinkKind::Ethernet,
            _ => LinkKind::Other,
        }
    };
    Link {
        kind,
        arphrd,
        type_path,
    }
}

/// True when `iface` is a cellular, point-to-point or tethered link (by name, or by the link type
/// under `net_root`, default `/sys/class/net`).
pub fn metered_interface(net_root: Option<&Path>, iface: &str) -> bool {
    link(net_root, iface).kind.metered()
}

fn explain_network(config: &HostConfig) -> (Network, Reading) {
    let (routed, route_files) = default_route_interfaces(&config.proc_root);
    let (up, down): (Routes, Routes) = routed
        .into_iter()
        .partition(|(i, _)| interface_up(config.net_root.as_deref(), i));
    let down: Vec<String> = down.into_iter().map(|(i, _)| i).collect();
    // the kernel sends through the default route of the lowest metric: that link is the one
    // traffic takes (a phone tethered at metric 0 beside Wi-Fi at 600 is what is used)
    let lowest = up.iter().map(|(_, m)| *m).min().unwrap_or(u32::MAX);
    let (up, standby): (Routes, Routes) = up.into_iter().partition(|(_, m)| *m == lowest);
    let up: Vec<String> = up.into_iter().map(|(i, _)| i).collect();
    let standby: Vec<String> = standby.into_iter().map(|(i, _)| i).collect();
    if up.is_empty() {
        let why = match down.as_slice() {
            [] if route_files.is_empty() => format!(
                "no route table under {}",
                config.proc_root.join("net").display()
            ),
            [] => format!(
                "no default route in {}",
                route_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            [one] => format!("the default route goes through {one}, which is down"),
            many => format!(
                "the default routes go through {}, which are down",
                many.join(", ")
            ),
        };
        return (Network::None, Reading::new(kernel(route_files), why));
    }
    let links: Vec<(String, Link)> = up
        .into_iter()
        .map(|i| {
            let l = link(config.net_root.as_deref(), &i);
            (i, l)
        })
        .collect();
    let names: Vec<&str> = links.iter().map(|(i, _)| i.as_str()).collect();
    let mut carries = match names.as_slice() {
        [one] => format!("{one} carries the default route"),
        many => format!("{} carry the default route", many.join(", ")),
    };
    if !standby.is_empty() {
        let _ = write!(
            carries,
            " (lowest metric; {} behind it)",
            standby.join(", ")
        );
    }
    let (metered, reading) = match config.metered_override {
        Some(m) => {
            let flag = format!("--metered {}", if m { "yes" } else { "no" });
            let why = format!("{carries} (set by {flag})");
            (m, Reading::new(Source::Flag { flag }, why))
        }
        None => {
            let metered = links.iter().all(|(_, l)| l.kind.metered());
            let kinds = match links.as_slice() {
                [(_, l)] => l.describe(),
                many => many
                    .iter()
                    .map(|(i, l)| format!("{i}: {}", l.describe()))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let mut paths = route_files;
            paths.extend(links.iter().map(|(_, l)| l.type_path.clone()));
            (
                metered,
                Reading::new(kernel(paths), format!("{carries} ({kinds})")),
            )
        }
    };
    let network = if metered {
        Network::Metered
    } else {
        Network::Unmetered
    };
    (network, reading)
}

/// The network as routes and links say.
pub fn read_network(config: &HostConfig) -> Network {
    explain_network(config).0
}

/// `bytes` in binary units for people: `41 GiB`, `3.5 GiB`, `512 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn explain_storage(path: &Path, low_percent: f64, low_bytes: u64) -> io::Result<(bool, String)> {
    fn to_u64<T: TryInto<u64>>(v: T) -> u64 {
        v.try_into().unwrap_or(u64::MAX)
    }
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let unit = to_u64(st.fragment_size()).max(1);
    let free = to_u64(st.blocks_available()).saturating_mul(unit);
    let total = to_u64(st.blocks()).saturating_mul(unit);
    let percent = if total == 0 {
        100.0
    } else {
        free as f64 * 100.0 / total as f64
    };
    let low = percent < low_percent && free < low_bytes;
    let why = format!(
        "{} free of {} ({percent:.0} %) on {}; low under {low_percent} % and {}",
        human_bytes(free),
        human_bytes(total),
        path.display(),
        human_bytes(low_bytes)
    );
    Ok((low, why))
}

/// True when free space on `path`'s filesystem is below both thresholds.
pub fn read_storage_low(path: &Path, low_percent: f64, low_bytes: u64) -> io::Result<bool> {
    explain_storage(path, low_percent, low_bytes).map(|(low, _)| low)
}

fn explain_idle(config: &HostConfig) -> (bool, Reading) {
    let below = match config.idle {
        IdleSource::Auto { below } | IdleSource::LoadAverage { below } => below,
        IdleSource::Logind => {
            // replaced by logind's IdleHint while logind answers
            return (
                false,
                Reading::new(
                    Source::Flag {
                        flag: "--idle-source logind".into(),
                    },
                    "logind does not answer on the bus: counts as not idle (set by --idle-source logind)",
                ),
            );
        }
        other => {
            let flag = other.flag().unwrap_or_default().to_string();
            let why = format!("set by {flag}");
            return (
                other == IdleSource::Always,
                Reading::new(Source::Flag { flag }, why),
            );
        }
    };
    // /proc/loadavg: the 1, 5 and 15 minute load averages first (proc(5))
    let path = config.proc_root.join("loadavg");
    let first = read_trimmed(&path)
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .and_then(|v| v.parse::<f64>().ok().map(|load| (v, load)))
        // a load average is a count of runnable tasks: never negative, never NaN
        .filter(|(_, load)| load.is_finite() && *load >= 0.0);
    let source = kernel([path.clone()]);
    match first {
        Some((text, load)) => {
            let idle = load < below;
            let cmp = if idle { "<" } else { "≥" };
            let why = format!(
                "load average {text} {cmp} {below} (1 min, {})",
                path.display()
            );
            (idle, Reading::new(source, why))
        }
        None => (
            false,
            Reading::new(
                source,
                format!("{} could not be read: counts as not idle", path.display()),
            ),
        ),
    }
}

/// Idleness from the configured source.
pub fn read_idle(config: &HostConfig) -> bool {
    explain_idle(config).0
}

/// The whole device state, read now, with where each value came from.
pub fn read_host_report(config: &HostConfig) -> DeviceReport {
    let power = explain_power(&config.power_supply_root);
    let (network, network_why) = explain_network(config);
    let storage_source = Source::Statvfs {
        path: config.storage_path.clone(),
    };
    let (storage_low, storage_why) = match explain_storage(
        &config.storage_path,
        config.storage_low_percent,
        config.storage_low_bytes,
    ) {
        Ok((low, why)) => (low, Reading::new(storage_source, why)),
        Err(e) => (
            false,
            Reading::new(
                storage_source,
                format!(
                    "free space on {} unknown ({e}): counts as not low",
                    config.storage_path.display()
                ),
            ),
        ),
    };
    let (idle, idle_why) = explain_idle(config);
    DeviceReport {
        state: DeviceState {
            network,
            charging: power.on_ac,
            battery: power.battery,
            storage_low,
            idle,
            // a Linux box has no notion of "screen off" that background work should wait for
            screen_on: true,
            moving: false,
        },
        readings: DeviceReadings {
            network: network_why,
            charging: power.charging_why,
            battery: power.battery_why,
            storage: storage_why,
            idle: idle_why,
            screen: Reading::new(
                Source::Assumed,
                "a Linux machine has no screen-off state for background work",
            ),
        },
    }
}

/// The whole device state, read now.
pub fn read_host(config: &HostConfig) -> DeviceState {
    read_host_report(config).state
}

/// A probe of the real host: reads the state at once, and re-reads it whenever the kernel reports
/// a power-supply, link, address or route change (after [`HostProbe::listen`]). Clones share one
/// state.
#[derive(Debug, Clone)]
pub struct HostProbe {
    config: std::sync::Arc<HostConfig>,
    tx: std::sync::Arc<tokio::sync::watch::Sender<DeviceState>>,
    /// The last reading with its explanations; the state is sent while it is locked, so it
    /// always explains the state last sent.
    report: std::sync::Arc<std::sync::Mutex<DeviceReport>>,
    /// The poll of storage and idleness, running only while a due job waits on them.
    poll: std::sync::Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// What NetworkManager, UPower and logind last said (each `None` while it does not
    /// answer); laid over the kernel's reading at every refresh.
    services: std::sync::Arc<std::sync::Mutex<crate::dbus::Services>>,
    /// `true` between logind's `PrepareForSleep(true)` and `PrepareForSleep(false)`.
    sleeping: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// The services to read again, while [`HostProbe::watch_services`] follows them.
    pending: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Pending>>>>,
}

/// The services whose values may have changed since the reader last looked (one bit each),
/// and a wake-up for it: marking never waits, however many signals come.
#[derive(Debug, Default)]
struct Pending {
    bits: std::sync::Mutex<u8>,
    wake: tokio::sync::Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl Pending {
    fn bit(service: crate::dbus::Service) -> u8 {
        match service {
            crate::dbus::Service::NetworkManager => 1,
            crate::dbus::Service::UPower => 2,
            crate::dbus::Service::Logind => 4,
        }
    }

    fn mark(&self, service: crate::dbus::Service) {
        *self
            .bits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) |= Self::bit(service);
        // (a permit is kept when the reader is busy: nothing marked is missed)
        self.wake.notify_one();
    }

    fn take(&self) -> u8 {
        std::mem::take(
            &mut *self
                .bits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Whether logind may decide idleness under `idle` (and so is worth asking again).
fn logind_decides(idle: &IdleSource) -> bool {
    matches!(idle, IdleSource::Auto { .. } | IdleSource::Logind)
}

/// How long after a service did not answer in time it is asked again.
const STALLED_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the services [`Pending`] names, each burst of changes once, until it is closed.
async fn read_changed(
    probe: HostProbe,
    conn: zbus::Connection,
    mut services: crate::dbus::Services,
    pending: std::sync::Arc<Pending>,
) {
    loop {
        pending.wake.notified().await;
        let bits = pending.take();
        for service in crate::dbus::Service::ALL {
            if bits & Pending::bit(service) != 0
                && !crate::dbus::read(&conn, service, &mut services).await
            {
                // stalled: its last values stand, and it is asked again in a while (only
                // while it does not answer)
                let pending = pending.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(STALLED_RETRY).await;
                    pending.mark(service);
                });
            }
        }
        if pending.is_closed() {
            return;
        }
        if bits != 0 {
            probe.set_services(services.clone());
        }
    }
}

/// Aborts its task when dropped (the reader goes when the signal task is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl HostProbe {
    /// A probe reading the host as `config` says; reads the state now.
    pub fn new(config: HostConfig) -> Self {
        let report = read_host_report(&config);
        let (tx, _) = tokio::sync::watch::channel(report.state);
        HostProbe {
            config: std::sync::Arc::new(config),
            tx: std::sync::Arc::new(tx),
            report: std::sync::Arc::new(std::sync::Mutex::new(report)),
            poll: std::sync::Arc::default(),
            services: std::sync::Arc::default(),
            sleeping: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
            pending: std::sync::Arc::default(),
        }
    }

    /// What the D-Bus services last said (all `None` before [`HostProbe::watch_services`] or
    /// [`HostProbe::read_services`], or while none answers).
    pub fn services(&self) -> crate::dbus::Services {
        self.services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_services(&self, services: crate::dbus::Services) {
        *self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = services;
        self.refresh();
    }

    /// Asks NetworkManager, UPower and logind on `bus` once (no listening): for a one-off
    /// reading such as `backwork device` without a daemon. Each service that answers gives its
    /// values; the others stay the kernel's.
    pub async fn read_services(&self, bus: &crate::dbus::Bus) -> Result<(), crate::DbusError> {
        let conn = crate::dbus::connect(bus).await?;
        self.set_services(crate::dbus::read_all(&conn).await);
        Ok(())
    }

    /// Connects to `bus`, reads NetworkManager, UPower and logind, and keeps their values up
    /// to date on a tokio task: a service is read again only when it signals a property change
    /// or its name changes owner (it started, stopped or restarted) — nothing is polled, except
    /// logind's `IdleHint` while a due job waits on idleness (see [`Probe::waiting_on`](crate::Probe::waiting_on)). Each
    /// value comes from its service while that service answers, else from the kernel. Returns
    /// once the first reading is published; abort the task to stop listening.
    ///
    /// Signals are taken as they arrive and the reads happen on a task of their own, one per
    /// burst of signals: zbus keeps at most 64 unread messages per subscription and then stops
    /// reading the connection — method replies included — so a reader that waited on its
    /// calls while a burst (a Wi-Fi scan's access points) filled the queue would time out and
    /// lose the service's values.
    pub async fn watch_services(
        &self,
        bus: &crate::dbus::Bus,
    ) -> Result<tokio::task::JoinHandle<()>, crate::DbusError> {
        use crate::dbus::{Change, Service};
        let conn = crate::dbus::connect(bus).await?;
        // subscribed before the first reading, so no change falls between the two
        let mut changes = crate::dbus::subscribe(&conn).await?;
        let services = crate::dbus::read_all(&conn).await;
        self.set_services(services.clone());
        let pending = std::sync::Arc::new(Pending::default());
        *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(pending.clone());
        let reader = tokio::spawn(read_changed(
            self.clone(),
            conn.clone(),
            services,
            pending.clone(),
        ));
        let probe = self.clone();
        Ok(tokio::spawn(async move {
            let reader = AbortOnDrop(reader);
            while let Some(change) = changes.next().await {
                match change {
                    Change::Service(service) => pending.mark(service),
                    Change::Owner(service) => {
                        // a logind that went away mid-sleep never sends the `false` that
                        // its `true` promised: a new one starts awake
                        if service == Service::Logind {
                            probe.set_sleeping(false);
                        }
                        pending.mark(service);
                    }
                    Change::PrepareForSleep(start) => probe.set_sleeping(start),
                }
            }
            pending.close();
            drop(reader);
            *probe
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            probe.set_sleeping(false);
            tracing::warn!("the D-Bus connection closed; device values come from the kernel");
            probe.set_services(crate::dbus::Services::default());
        }))
    }

    /// Says whether the machine is about to sleep; subscribers hear of changes only.
    fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.send_if_modified(|cur| {
            let changed = *cur != sleeping;
            *cur = sleeping;
            changed
        });
    }

    /// True while the probe polls storage and idleness (a due job waits on them).
    pub fn is_polling(&self) -> bool {
        self.poll.lock().map(|p| p.is_some()).unwrap_or(false)
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Reads the host again and tells subscribers if anything changed. Returns the new state.
    pub fn refresh(&self) -> DeviceState {
        // read without the lock (a reader of the report never waits on the files), publish
        // the report and the state under it, so the last reading wins for both
        let mut fresh = read_host_report(&self.config);
        let services = self.services();
        let idle = match self.config.idle {
            IdleSource::Auto { .. } => crate::dbus::IdleUse::LogindFirst,
            IdleSource::Logind => crate::dbus::IdleUse::LogindOnly,
            _ => crate::dbus::IdleUse::Never,
        };
        crate::dbus::overlay(&mut fresh, &services, self.config.metered_override, idle);
        let mut report = self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *report = fresh;
        let next = report.state;
        self.tx.send_if_modified(|cur| {
            let changed = *cur != next;
            *cur = next;
            changed
        });
        next
    }

    /// Starts listening for kernel change notifications (power-supply uevents; link, address and
    /// route changes) on a tokio task, refreshing after each burst. Needs a tokio runtime with IO.
    /// Dropping the returned handle does not stop the task; abort it to stop listening.
    pub fn listen(&self) -> io::Result<tokio::task::JoinHandle<()>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("HostProbe::listen must be called inside a tokio runtime")
        })?;
        let uevents = netlink::subscribe(netlink::Kind::Uevent)?;
        let routes = netlink::subscribe(netlink::Kind::Route)?;
        let probe = self.clone();
        Ok(runtime.spawn(async move {
            loop {
                let woke = tokio::select! {
                    r = netlink::wait(&uevents) => r,
                    r = netlink::wait(&routes) => r,
                };
                if let Err(e) = woke {
                    tracing::warn!(error = %e, "host probe stopped listening for changes");
                    return;
                }
                probe.refresh();
            }
        }))
    }
}

impl crate::Probe for HostProbe {
    fn subscribe(&self) -> tokio::sync::watch::Receiver<DeviceState> {
        self.tx.subscribe()
    }

    /// The last reading, each value with the file, interface or override it came from.
    fn report(&self) -> Option<DeviceReport> {
        Some(
            self.report
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    /// `true` from logind's `PrepareForSleep(true)` (the machine is about to suspend or
    /// hibernate) until its `PrepareForSleep(false)` (it resumed), while
    /// [`HostProbe::watch_services`] follows logind; always `false` without logind.
    fn sleeping(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        Some(self.sleeping.subscribe())
    }

    /// Storage and idleness have no event source: when a due job starts waiting on them, read
    /// them at once, then every [`HostConfig::poll_every`] (at least a minute) until no job
    /// waits on them any more.
    fn waiting_on(&self, waiting: &std::collections::BTreeSet<crate::Constraint>) {
        use crate::Constraint;
        // logind signals most changes of IdleHint, but not all: a text session's hint is
        // computed when it is read, from its tty's last access (systemd's
        // `session_get_idle_hint`), and changes with no signal — so while a job waits on
        // idleness, logind is asked again at each poll, as the load average is read again
        let wanted = waiting.contains(&Constraint::StorageNotLow)
            || waiting.contains(&Constraint::DeviceIdle);
        let Ok(mut poll) = self.poll.lock() else {
            return;
        };
        match (wanted, poll.is_some()) {
            (true, false) => {
                self.refresh();
                // logind too, at once, as the load average and the disk are read now
                if waiting.contains(&Constraint::DeviceIdle)
                    && logind_decides(&self.config.idle)
                    && let Some(p) = self
                        .pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .as_ref()
                {
                    p.mark(crate::dbus::Service::Logind);
                }
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let probe = self.clone();
                    let every = self
                        .config
                        .poll_every
                        .max(std::time::Duration::from_secs(60));
                    *poll = Some(runtime.spawn(async move {
                        loop {
                            tokio::time::sleep(every).await;
                            let pending = probe
                                .pending
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .clone();
                            match pending {
                                // the reader asks logind, then refreshes
                                Some(p) if logind_decides(&probe.config.idle) => {
                                    p.mark(crate::dbus::Service::Logind)
                                }
                                _ => {
                                    probe.refresh();
                                }
                            }
                        }
                    }));
                }
            }
            (false, true) => {
                if let Some(task) = poll.take() {
                    task.abort();
                }
            }
            _ => {}
        }
    }
}

mod netlink {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};

    use nix::errno::Errno;
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    pub enum Kind {
        Uevent,
        Route,
    }

    pub struct Sock(OwnedFd);

    impl AsRawFd for Sock {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }

    // RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
    const ROUTE_GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x100 | 0x400;
    // the kernel's uevent multicast group
    const UEVENT_GROUP: u32 = 1;

    pub fn subscribe(kind: Kind) -> io::Result<AsyncFd<Sock>> {
        let (proto, groups) = match kind {
            Kind::Uevent => (SockProtocol::NetlinkKObjectUEvent, UEVENT_GROUP),
            Kind::Route => (SockProtocol::NetlinkRoute, ROUTE_GROUPS),
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            proto,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        // tokio panics when its runtime has no IO driver; report that as an error instead.
        let registered = std::panic::catch_unwind(|| {
            // SAFETY: `Sock` owns the socket, which stays open with the same descriptor for as
            // long as the `AsyncFd` holds it.
            unsafe { AsyncFd::register_with_interest(Sock(fd), Interest::READABLE) }
        });
        match registered {
            Ok(Ok(fd)) => Ok(fd),
            Ok(Err(e)) => Err(e.into_parts().1),
            Err(_) => Err(io::Error::other("the tokio runtime has no IO driver")),
        }
    }

    /// Waits for at least one notification, then drains every queued one.
    pub async fn wait(fd: &AsyncFd<Sock>) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let mut ready = fd.readable().await?;
            let mut got = false;
            loop {
                match recv(ready.get_inner().as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Ok(_) => got = true,
                    Err(Errno::EAGAIN) => {
                        ready.clear_ready();
                        break;
                    }
                    Err(Errno::EINTR) => {}
                    // the kernel dropped notifications: look again all the same
                    Err(Errno::ENOBUFS) => got = true,
                    Err(e) => return Err(e.into()),
                }
            }
            if got {
                return Ok(());
            }
        }
    }
}
