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
//! Change notifications come from netlink: kernel uevents (power supplies) and the route socket's
//! link, address and route groups. The probe uses them only as "look again" signals and re-reads
//! the files, so it parses no netlink messages. Storage and idle have no event source; they are
//! re-read on every refresh.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{DeviceState, Network};

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
    /// its link type.
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
            idle: IdleSource::LoadAverage { below: 0.5 },
            metered_override: None,
            poll_every: std::time::Duration::from_secs(60),
        }
    }
}

/// How the host probe decides the device is idle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IdleSource {
    /// Idle when the 1-minute load average is below `below`.
    LoadAverage {
        /// The threshold.
        below: f64,
    },
    /// Never idle (jobs requiring idleness wait for a manual override).
    Never,
    /// Always idle (a headless box).
    Always,
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Power as the power-supply tree under `root` says: (on AC, battery percent).
pub fn read_power(root: &Path) -> (bool, Option<u8>) {
    let Ok(entries) = fs::read_dir(root) else {
        return (true, None); // no power-supply class at all: a machine without a battery
    };
    let mut mains_online = false;
    let mut mains_seen = false;
    let mut capacities = Vec::new();
    let mut charging_battery = false;
    for entry in entries.flatten() {
        let dir = entry.path();
        let kind = read_trimmed(&dir.join("type")).unwrap_or_default();
        let peripheral = read_trimmed(&dir.join("scope")).is_some_and(|s| s == "Device");
        match kind.as_str() {
            "Mains" | "USB" | "USB_C" | "USB_PD" => {
                mains_seen = true;
                if read_trimmed(&dir.join("online")).is_some_and(|v| v == "1") {
                    mains_online = true;
                }
            }
            "Battery" if !peripheral => {
                if let Some(c) =
                    read_trimmed(&dir.join("capacity")).and_then(|v| v.parse::<u8>().ok())
                {
                    capacities.push(c.min(100));
                }
                let status = read_trimmed(&dir.join("status")).unwrap_or_default();
                if status == "Charging" || status == "Full" {
                    charging_battery = true;
                }
            }
            _ => {}
        }
    }
    let battery = if capacities.is_empty() {
        None
    } else {
        let sum: u32 = capacities.iter().map(|&c| u32::from(c)).sum();
        u8::try_from(sum / capacities.len() as u32).ok()
    };
    let on_ac = match (battery, mains_seen) {
        (None, _) => true,
        (Some(_), true) => mains_online || charging_battery,
        (Some(_), false) => charging_battery,
    };
    (on_ac, battery)
}

/// The interfaces that carry a default route, from `/proc/net/route` and `/proc/net/ipv6_route`.
fn default_route_interfaces(proc_root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(v4) = fs::read_to_string(proc_root.join("net/route")) {
        for line in v4.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags …; a default route has destination 0 and mask 0
            if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" {
                out.push(f[0].to_string());
            }
        }
    }
    if let Ok(v6) = fs::read_to_string(proc_root.join("net/ipv6_route")) {
        for line in v6.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // dest destlen src srclen nexthop metric refcnt use flags iface
            if f.len() >= 10 && f[0].chars().all(|c| c == '0') && f[1] == "00" && f[9] != "lo" {
                out.push(f[9].to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
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

/// True when `iface` is a cellular, point-to-point or tethered link (by name, or by the link type
/// under `net_root`, default `/sys/class/net`).
pub fn metered_interface(net_root: Option<&Path>, iface: &str) -> bool {
    let net_root = net_root.unwrap_or(Path::new("/sys/class/net"));
    const METERED_PREFIXES: [&str; 6] = ["wwan", "wwp", "ppp", "usb", "rmnet", "ccmni"];
    if METERED_PREFIXES.iter().any(|p| iface.starts_with(p)) {
        return true;
    }
    // ARPHRD_PPP = 512, ARPHRD_RAWIP = 519 (cellular modems), ARPHRD_NONE = 65534 (wwan raw-ip)
    matches!(
        read_trimmed(&net_root.join(iface).join("type")).as_deref(),
        Some("512") | Some("519") | Some("65534")
    )
}

/// The network as routes and links say.
pub fn read_network(config: &HostConfig) -> Network {
    let ifaces: Vec<String> = default_route_interfaces(&config.proc_root)
        .into_iter()
        .filter(|i| interface_up(config.net_root.as_deref(), i))
        .collect();
    if ifaces.is_empty() {
        return Network::None;
    }
    let metered = match config.metered_override {
        Some(m) => m,
        None => ifaces
            .iter()
            .all(|i| metered_interface(config.net_root.as_deref(), i)),
    };
    if metered {
        Network::Metered
    } else {
        Network::Unmetered
    }
}

/// True when free space on `path`'s filesystem is below both thresholds.
pub fn read_storage_low(path: &Path, low_percent: f64, low_bytes: u64) -> io::Result<bool> {
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
    Ok(percent < low_percent && free < low_bytes)
}

/// Idleness from the configured source.
pub fn read_idle(config: &HostConfig) -> bool {
    match config.idle {
        IdleSource::Always => true,
        IdleSource::Never => false,
        IdleSource::LoadAverage { below } => read_trimmed(&config.proc_root.join("loadavg"))
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .is_some_and(|load| load < below),
    }
}

/// The whole device state, read now.
pub fn read_host(config: &HostConfig) -> DeviceState {
    let (charging, battery) = read_power(&config.power_supply_root);
    DeviceState {
        network: read_network(config),
        charging,
        battery,
        storage_low: read_storage_low(
            &config.storage_path,
            config.storage_low_percent,
            config.storage_low_bytes,
        )
        .unwrap_or(false),
        idle: read_idle(config),
        // a Linux box has no notion of "screen off" that background work should wait for
        screen_on: true,
    }
}

/// A probe of the real host: reads the state at once, and re-reads it whenever the kernel reports
/// a power-supply, link, address or route change (after [`HostProbe::listen`]). Clones share one
/// state.
#[derive(Debug, Clone)]
pub struct HostProbe {
    config: std::sync::Arc<HostConfig>,
    tx: std::sync::Arc<tokio::sync::watch::Sender<DeviceState>>,
    /// The poll of storage and idleness, running only while a due job waits on them.
    poll: std::sync::Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl HostProbe {
    /// A probe reading the host as `config` says; reads the state now.
    pub fn new(config: HostConfig) -> Self {
        let state = read_host(&config);
        let (tx, _) = tokio::sync::watch::channel(state);
        HostProbe {
            config: std::sync::Arc::new(config),
            tx: std::sync::Arc::new(tx),
            poll: std::sync::Arc::default(),
        }
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
        let next = read_host(&self.config);
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

    /// Storage and idleness have no event source: when a due job starts waiting on them, read
    /// them at once, then every [`HostConfig::poll_every`] (at least a minute) until no job
    /// waits on them any more.
    fn waiting_on(&self, waiting: &std::collections::BTreeSet<crate::Constraint>) {
        use crate::Constraint;
        let wanted = waiting.contains(&Constraint::StorageNotLow)
            || waiting.contains(&Constraint::DeviceIdle);
        let Ok(mut poll) = self.poll.lock() else {
            return;
        };
        match (wanted, poll.is_some()) {
            (true, false) => {
                self.refresh();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let probe = self.clone();
                    let every = self
                        .config
                        .poll_every
                        .max(std::time::Duration::from_secs(60));
                    *poll = Some(runtime.spawn(async move {
                        loop {
                            tokio::time::sleep(every).await;
                            probe.refresh();
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
