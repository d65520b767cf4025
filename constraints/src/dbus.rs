//! The desktop's system services over D-Bus: NetworkManager, UPower and logind.
//!
//! On a desktop or a laptop the truth about the device lives in these services, not in interface
//! names and the load average: NetworkManager knows whether the primary connection is metered
//! (set by the user, or guessed from a phone's hotspot) and whether the internet is reachable
//! (a captive portal is not), UPower knows whether the machine runs on its battery, and logind
//! knows whether the user's sessions are idle. Embedded Linux often has none of them, so the
//! [`HostProbe`](crate::HostProbe) uses each service's values when that service answers on the
//! bus and its own sysfs / netlink / procfs reading otherwise — value by value, each
//! [`Reading`] naming the one it used.
//!
//! What is read (the services' D-Bus API documentation, cited at each constant):
//!
//! - **NetworkManager** (`org.freedesktop.NetworkManager`, object `/org/freedesktop/NetworkManager`):
//!   `Connectivity` (`NMConnectivityState`) and `Metered` (`NMMetered`: "equivalent to the
//!   metered property of the device associated with the primary connection"), and
//!   `PrimaryConnection`'s `Id` and `Type` to say which connection that is.
//! - **UPower** (`org.freedesktop.UPower`): `OnBattery` of `/org/freedesktop/UPower`, and the
//!   display device's (`/org/freedesktop/UPower/devices/DisplayDevice`) `IsPresent`, `Type`
//!   and `Percentage` — the composite battery a desktop shows.
//! - **logind** (`org.freedesktop.login1`): `IdleHint` of this user's object
//!   (`Manager.GetUser(uid)`, the user's sessions together), or of the manager (every session)
//!   when the user has none (a daemon running as a system user). logind sends
//!   `PropertiesChanged` for both whenever one session's hint changes (systemd's
//!   `session_set_idle_hint` notifies the session, its seat, its user and the manager).
//!
//! Nothing is polled (DESIGN §4): the watcher subscribes to `PropertiesChanged` under each
//! service's object tree and to `NameOwnerChanged` for the three names, and reads a service
//! again only when one of those signals arrives — a service that starts, stops or restarts is
//! picked up from its name's owner change. logind's `PrepareForSleep` signal (before a suspend,
//! and after the resume) is followed too ([`Probe::sleeping`](crate::Probe::sleeping)).

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use zbus::export::futures_core::Stream;
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, MatchRule, MessageStream};

use crate::{DeviceReport, Network, Reading, Source};

/// NetworkManager's bus name.
pub const NETWORK_MANAGER: &str = "org.freedesktop.NetworkManager";
/// UPower's bus name.
pub const UPOWER: &str = "org.freedesktop.UPower";
/// logind's bus name.
pub const LOGIND: &str = "org.freedesktop.login1";

const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const NM_ACTIVE_IFACE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const UPOWER_PATH: &str = "/org/freedesktop/UPower";
const UPOWER_DISPLAY: &str = "/org/freedesktop/UPower/devices/DisplayDevice";
const UPOWER_DEVICE_IFACE: &str = "org.freedesktop.UPower.Device";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER_IFACE: &str = "org.freedesktop.login1.Manager";
const LOGIND_USER_IFACE: &str = "org.freedesktop.login1.User";
/// Where logind's user objects live (`/org/freedesktop/login1/user/_UID`).
const LOGIND_USERS: &str = "/org/freedesktop/login1/user";
const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";

/// `NMConnectivityState` (NetworkManager's D-Bus API, "Types"): 0 `NM_CONNECTIVITY_UNKNOWN`
/// (checking is off or has not run), 1 `NM_CONNECTIVITY_NONE` (not connected), 2
/// `NM_CONNECTIVITY_PORTAL` (behind a captive portal), 3 `NM_CONNECTIVITY_LIMITED` (connected,
/// but the internet is not reachable), 4 `NM_CONNECTIVITY_FULL` (the internet is reachable).
pub mod connectivity {
    /// `NM_CONNECTIVITY_UNKNOWN`.
    pub const UNKNOWN: u32 = 0;
    /// `NM_CONNECTIVITY_NONE`.
    pub const NONE: u32 = 1;
    /// `NM_CONNECTIVITY_PORTAL`.
    pub const PORTAL: u32 = 2;
    /// `NM_CONNECTIVITY_LIMITED`.
    pub const LIMITED: u32 = 3;
    /// `NM_CONNECTIVITY_FULL`.
    pub const FULL: u32 = 4;
}

/// `NMMetered` (NetworkManager's D-Bus API, "Types"): 0 `NM_METERED_UNKNOWN`, 1
/// `NM_METERED_YES` (set by the user), 2 `NM_METERED_NO` (set by the user), 3
/// `NM_METERED_GUESS_YES` (guessed, e.g. from a phone's hotspot announcing it), 4
/// `NM_METERED_GUESS_NO` (guessed).
pub mod metered {
    /// `NM_METERED_UNKNOWN`.
    pub const UNKNOWN: u32 = 0;
    /// `NM_METERED_YES`.
    pub const YES: u32 = 1;
    /// `NM_METERED_NO`.
    pub const NO: u32 = 2;
    /// `NM_METERED_GUESS_YES`.
    pub const GUESS_YES: u32 = 3;
    /// `NM_METERED_GUESS_NO`.
    pub const GUESS_NO: u32 = 4;
}

/// UPower's `Device.Type` of a battery (`UP_DEVICE_KIND_BATTERY`, UPower's D-Bus API).
const UPOWER_KIND_BATTERY: u32 = 2;

/// UPower's `Device.Type` of an uninterruptible power supply (`UP_DEVICE_KIND_UPS`).
const UPOWER_KIND_UPS: u32 = 3;

/// Which bus the services are asked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket), where the three
    /// services live.
    System,
    /// A bus at this D-Bus address (`unix:path=…`): a private bus with mocked services in tests.
    Address(String),
}

/// Why the services could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    /// The bus did not accept a connection.
    #[error(
        "could not connect to the D-Bus {bus}: {source}; the device state comes from the kernel instead (start dbus, or ignore this on a machine without it)"
    )]
    Connect {
        /// Which bus.
        bus: String,
        /// What zbus said.
        source: zbus::Error,
    },
    /// The bus did not answer in time.
    #[error(
        "the D-Bus {bus} did not answer within {secs} s; the device state comes from the kernel instead"
    )]
    Timeout {
        /// Which bus.
        bus: String,
        /// The limit.
        secs: u64,
    },
    /// The bus refused a signal subscription.
    #[error("could not subscribe to {what} on the D-Bus: {source}; changes will not be seen")]
    Subscribe {
        /// The subscription.
        what: String,
        /// What zbus said.
        source: zbus::Error,
    },
}

/// NetworkManager's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkManagerValues {
    /// `Connectivity` ([`connectivity`]).
    pub connectivity: u32,
    /// `Metered` ([`metered`]).
    pub metered: u32,
    /// The primary connection, for people: `"Phone" (802-11-wireless)`; `None` when there is
    /// none (`/`) or it could not be read.
    pub primary: Option<String>,
}

/// UPower's values.
#[derive(Debug, Clone, PartialEq)]
pub struct UPowerValues {
    /// `OnBattery`.
    pub on_battery: bool,
    /// The display device's `Percentage`, when it is a present battery or UPS.
    pub percentage: Option<f64>,
    /// The display device is a UPS (`Type` 3, `UP_DEVICE_KIND_UPS`), not a battery.
    pub ups: bool,
}

/// logind's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogindValues {
    /// `IdleHint`.
    pub idle_hint: bool,
    /// The object read: this user's (`/org/freedesktop/login1/user/_1000`) or the manager's.
    pub object: String,
    /// Whose idleness that is, for people: `user 1000's sessions`, `every session`.
    pub whose: String,
}

/// What the services said, each `None` while that service does not answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Services {
    /// NetworkManager's values.
    pub network_manager: Option<NetworkManagerValues>,
    /// UPower's values.
    pub upower: Option<UPowerValues>,
    /// logind's values.
    pub logind: Option<LogindValues>,
}

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// NetworkManager.
    NetworkManager,
    /// UPower.
    UPower,
    /// logind.
    Logind,
}

impl Service {
    /// Every service, in the order they are read.
    pub const ALL: [Service; 3] = [Service::NetworkManager, Service::UPower, Service::Logind];

    /// The service's bus name.
    pub fn bus_name(self) -> &'static str {
        match self {
            Service::NetworkManager => NETWORK_MANAGER,
            Service::UPower => UPOWER,
            Service::Logind => LOGIND,
        }
    }
}

/// How long one connection attempt or one property read may take: a wedged service must not
/// hold the daemon's start.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to `bus`.
pub async fn connect(bus: &Bus) -> Result<Connection, DbusError> {
    let name = match bus {
        Bus::System => "system bus".to_string(),
        Bus::Address(a) => format!("bus at {a}"),
    };
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    }
    .map_err(|source| DbusError::Connect {
        bus: name.clone(),
        source,
    })?;
    let built = tokio::time::timeout(CALL_TIMEOUT, builder.method_timeout(CALL_TIMEOUT).build())
        .await
        .map_err(|_| DbusError::Timeout {
            bus: name.clone(),
            secs: CALL_TIMEOUT.as_secs(),
        })?;
    built.map_err(|source| DbusError::Connect { bus: name, source })
}

/// One property, read with `org.freedesktop.DBus.Properties.Get`.
async fn get<T>(
    conn: &Connection,
    service: &str,
    path: &str,
    iface: &str,
    name: &str,
) -> zbus::Result<T>
where
    T: TryFrom<OwnedValue>,
    T::Error: Into<zbus::Error>,
{
    let reply = conn
        .call_method(
            Some(service),
            path,
            Some(PROPERTIES_IFACE),
            "Get",
            &(iface, name),
        )
        .await?;
    let value: OwnedValue = reply.body().deserialize()?;
    T::try_from(value).map_err(Into::into)
}

async fn read_network_manager(conn: &Connection) -> zbus::Result<NetworkManagerValues> {
    let connectivity = get(
        conn,
        NETWORK_MANAGER,
        NM_PATH,
        NETWORK_MANAGER,
        "Connectivity",
    )
    .await?;
    // `Metered` came with NetworkManager 1.2; older ones do not say
    let metered = match get(conn, NETWORK_MANAGER, NM_PATH, NETWORK_MANAGER, "Metered").await {
        Ok(m) => m,
        // no answer in time is not "unknown": the last values stand (see `read`)
        Err(e) if timed_out(&e) => return Err(e),
        Err(_) => metered::UNKNOWN,
    };
    let primary = match get::<OwnedObjectPath>(
        conn,
        NETWORK_MANAGER,
        NM_PATH,
        NETWORK_MANAGER,
        "PrimaryConnection",
    )
    .await
    {
        Ok(path) if path.as_str() != "/" => {
            let id = get::<String>(conn, NETWORK_MANAGER, path.as_str(), NM_ACTIVE_IFACE, "Id")
                .await
                .ok();
            let kind = get::<String>(
                conn,
                NETWORK_MANAGER,
                path.as_str(),
                NM_ACTIVE_IFACE,
                "Type",
            )
            .await
            .ok();
            match (id, kind) {
                (Some(id), Some(kind)) => Some(format!("{id:?} ({kind})")),
                (Some(id), None) => Some(format!("{id:?}")),
                _ => Some(path.as_str().to_string()),
            }
        }
        _ => None,
    };
    Ok(NetworkManagerValues {
        connectivity,
        metered,
        primary,
    })
}

async fn read_upower(conn: &Connection) -> zbus::Result<UPowerValues> {
    let on_battery = get(conn, UPOWER, UPOWER_PATH, UPOWER, "OnBattery").await?;
    let present = get::<bool>(
        conn,
        UPOWER,
        UPOWER_DISPLAY,
        UPOWER_DEVICE_IFACE,
        "IsPresent",
    )
    .await
    .unwrap_or(false);
    let kind = get::<u32>(conn, UPOWER, UPOWER_DISPLAY, UPOWER_DEVICE_IFACE, "Type")
        .await
        .unwrap_or(0);
    let ups = kind == UPOWER_KIND_UPS;
    // a UPS's charge is what the machine runs on when OnBattery says so, as a laptop's is
    let percentage = if present && (kind == UPOWER_KIND_BATTERY || ups) {
        get::<f64>(
            conn,
            UPOWER,
            UPOWER_DISPLAY,
            UPOWER_DEVICE_IFACE,
            "Percentage",
        )
        .await
        .ok()
        .filter(|p| p.is_finite())
    } else {
        None
    };
    Ok(UPowerValues {
        on_battery,
        percentage,
        ups,
    })
}

async fn read_logind(conn: &Connection) -> zbus::Result<LogindValues> {
    let uid = nix::unistd::getuid().as_raw();
    let user: zbus::Result<OwnedObjectPath> = async {
        let reply = conn
            .call_method(
                Some(LOGIND),
                LOGIND_PATH,
                Some(LOGIND_MANAGER_IFACE),
                "GetUser",
                &(uid,),
            )
            .await?;
        reply.body().deserialize()
    }
    .await;
    if let Ok(user) = user
        && let Ok(idle_hint) = get(conn, LOGIND, user.as_str(), LOGIND_USER_IFACE, "IdleHint").await
    {
        return Ok(LogindValues {
            idle_hint,
            object: user.as_str().to_string(),
            whose: format!("user {uid}'s sessions"),
        });
    }
    let idle_hint = get(conn, LOGIND, LOGIND_PATH, LOGIND_MANAGER_IFACE, "IdleHint").await?;
    Ok(LogindValues {
        idle_hint,
        object: LOGIND_PATH.to_string(),
        whose: "every session (this user has none)".to_string(),
    })
}

/// True when `name` has an owner on the bus: asked first, so that reading a service never
/// starts it (D-Bus activation of an installed but stopped UPower, say).
async fn has_owner(conn: &Connection, name: &str) -> zbus::Result<bool> {
    let Ok(name) = zbus::names::BusName::try_from(name) else {
        return Ok(false);
    };
    let bus = zbus::fdo::DBusProxy::new(conn).await?;
    Ok(bus.name_has_owner(name).await?)
}

/// Whether `err` is a call that got no answer in time (the service or the bus is stalled),
/// rather than an answer saying no.
fn timed_out(err: &zbus::Error) -> bool {
    match err {
        zbus::Error::InputOutput(e) => e.kind() == std::io::ErrorKind::TimedOut,
        zbus::Error::FDO(e) => matches!(
            **e,
            zbus::fdo::Error::TimedOut(_) | zbus::fdo::Error::NoReply(_)
        ),
        _ => false,
    }
}

/// Reads `service` again into `services`. A service that is not running, or answers with an
/// error, becomes `None`; one that does not answer in time keeps its last values (a service
/// stalled for a moment has not gone: its name is still owned) and `false` is returned, so that
/// the caller asks again later.
pub async fn read(conn: &Connection, service: Service, services: &mut Services) -> bool {
    let owned = match has_owner(conn, service.bus_name()).await {
        Ok(owned) => owned,
        Err(e) if timed_out(&e) => return false,
        Err(_) => false,
    };
    if !owned {
        match service {
            Service::NetworkManager => services.network_manager = None,
            Service::UPower => services.upower = None,
            Service::Logind => services.logind = None,
        }
        return true;
    }
    fn keep<T>(slot: &mut Option<T>, read: zbus::Result<T>) -> bool {
        match read {
            Ok(v) => {
                *slot = Some(v);
                true
            }
            Err(e) if timed_out(&e) => false,
            Err(_) => {
                *slot = None;
                true
            }
        }
    }
    match service {
        Service::NetworkManager => keep(
            &mut services.network_manager,
            read_network_manager(conn).await,
        ),
        Service::UPower => keep(&mut services.upower, read_upower(conn).await),
        Service::Logind => keep(&mut services.logind, read_logind(conn).await),
    }
}

/// Reads every service.
pub async fn read_all(conn: &Connection) -> Services {
    let mut services = Services::default();
    for s in Service::ALL {
        let _ = read(conn, s, &mut services).await;
    }
    services
}

/// The signals that say a service's values may have changed: `PropertiesChanged` of the
/// objects and interfaces read (sent by the service itself), and the owner changes of the
/// three names. Each stream is subscribed (its match rule added on the bus) before this
/// returns, so nothing sent after it is missed.
///
/// A signal counts only when its sender is the service's current owner (its unique name, asked
/// with `GetNameOwner` and followed through `NameOwnerChanged`): the bus applies the match
/// rules' `sender` to broadcast signals only, and any client may send a signal addressed to
/// this connection alone (system.conf allows `send_type="signal"`), which zbus does not check
/// against a well-known name either (`MatchRule::matches`, "Caveats").
pub struct Changes {
    properties: Vec<(Service, MessageStream)>,
    owners: Vec<(Service, MessageStream)>,
    sleep: MessageStream,
    /// The unique name that owns each service's name now, in [`Service::ALL`]'s order.
    owner: [Option<String>; 3],
}

impl Service {
    fn index(self) -> usize {
        match self {
            Service::NetworkManager => 0,
            Service::UPower => 1,
            Service::Logind => 2,
        }
    }
}

/// The unique name that owns `name` now, if any.
async fn owner_of(conn: &Connection, name: &str) -> Option<String> {
    let name = zbus::names::BusName::try_from(name).ok()?;
    let bus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    tokio::time::timeout(CALL_TIMEOUT, bus.get_name_owner(name))
        .await
        .ok()?
        .ok()
        .map(|n| n.to_string())
}

/// Whether `msg` was sent by `owner`.
fn sent_by(msg: &zbus::Message, owner: &Option<String>) -> bool {
    match (msg.header().sender(), owner) {
        (Some(sender), Some(owner)) => sender.as_str() == owner,
        _ => false,
    }
}

/// What a signal said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A service's values may have changed (it signalled a property change).
    Service(Service),
    /// A service's name changed owner: it started, stopped or restarted.
    Owner(Service),
    /// logind's `PrepareForSleep`: `true` just before the machine suspends or hibernates,
    /// `false` once it has resumed.
    PrepareForSleep(bool),
}

/// Subscribes to the changes of the three services.
pub async fn subscribe(conn: &Connection) -> Result<Changes, DbusError> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |source| DbusError::Subscribe { what, source }
    };
    // Only the objects and interfaces read, each from its service alone: any client may
    // send a signal on the system bus (system.conf allows `send_type="signal"`), and a busy
    // tree (a Wi-Fi scan changes every access point) must not wake the daemon.
    // (the user objects as a namespace: their paths are logind's to choose, and the user's is
    // known only once read)
    let watched: [(Service, &str, bool, &str); 5] = [
        (Service::NetworkManager, NM_PATH, false, NETWORK_MANAGER),
        (Service::UPower, UPOWER_PATH, false, UPOWER),
        (Service::UPower, UPOWER_DISPLAY, false, UPOWER_DEVICE_IFACE),
        (Service::Logind, LOGIND_PATH, false, LOGIND_MANAGER_IFACE),
        (Service::Logind, LOGIND_USERS, true, LOGIND_USER_IFACE),
    ];
    let mut properties = Vec::new();
    for (s, path, namespace, iface) in watched {
        let what = format!("{iface} property changes on {path}");
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(s.bus_name())
            .and_then(|b| b.interface(PROPERTIES_IFACE))
            .and_then(|b| b.member("PropertiesChanged"))
            .and_then(|b| {
                if namespace {
                    b.path_namespace(path)
                } else {
                    b.path(path)
                }
            })
            .and_then(|b| b.arg(0, iface))
            .map_err(fail(&what))?
            .build();
        let stream = MessageStream::for_match_rule(rule, conn, None)
            .await
            .map_err(fail(&what))?;
        properties.push((s, stream));
    }
    // the owner changes of the three names only, not of every client that comes and goes
    let mut owners = Vec::new();
    for s in Service::ALL {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender("org.freedesktop.DBus")
            .and_then(|b| b.interface("org.freedesktop.DBus"))
            .and_then(|b| b.member("NameOwnerChanged"))
            .and_then(|b| b.arg(0, s.bus_name()))
            .map_err(fail("owner changes"))?
            .build();
        owners.push((
            s,
            MessageStream::for_match_rule(rule, conn, None)
                .await
                .map_err(fail("owner changes"))?,
        ));
    }
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(Service::Logind.bus_name())
        .and_then(|b| b.interface(LOGIND_MANAGER_IFACE))
        .and_then(|b| b.member("PrepareForSleep"))
        .and_then(|b| b.path(LOGIND_PATH))
        .map_err(fail("logind's PrepareForSleep"))?
        .build();
    let sleep = MessageStream::for_match_rule(rule, conn, None)
        .await
        .map_err(fail("logind's PrepareForSleep"))?;
    // asked after the owner changes are subscribed: a change in between is seen by both
    let mut owner: [Option<String>; 3] = Default::default();
    for s in Service::ALL {
        owner[s.index()] = owner_of(conn, s.bus_name()).await;
    }
    Ok(Changes {
        properties,
        owners,
        sleep,
        owner,
    })
}

impl Changes {
    /// Waits for the next signal and says what it concerns; `None` when the connection
    /// closed.
    pub async fn next(&mut self) -> Option<Change> {
        poll_fn(|cx| {
            use std::task::Poll;
            // owner changes first: a logind that restarts and at once announces a sleep must
            // be seen to restart before its announcement is taken
            for (service, stream) in &mut self.owners {
                loop {
                    match Pin::new(&mut *stream).poll_next(cx) {
                        Poll::Ready(Some(Ok(msg))) => {
                            let args: Result<(String, String, String), _> =
                                msg.body().deserialize();
                            if let Ok((_, _, new)) = args {
                                self.owner[service.index()] = (!new.is_empty()).then_some(new);
                            }
                            return Poll::Ready(Some(Change::Owner(*service)));
                        }
                        Poll::Ready(Some(Err(_))) => {}
                        Poll::Ready(None) => return Poll::Ready(None),
                        Poll::Pending => break,
                    }
                }
            }
            let logind = &self.owner[Service::Logind.index()];
            loop {
                match Pin::new(&mut self.sleep).poll_next(cx) {
                    Poll::Ready(Some(Ok(msg))) => {
                        if !sent_by(&msg, logind) {
                            continue;
                        }
                        if let Ok(start) = msg.body().deserialize::<bool>() {
                            return Poll::Ready(Some(Change::PrepareForSleep(start)));
                        }
                    }
                    Poll::Ready(Some(Err(_))) => {}
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => break,
                }
            }
            let mut closed = 0;
            for (service, stream) in &mut self.properties {
                loop {
                    match Pin::new(&mut *stream).poll_next(cx) {
                        Poll::Ready(Some(Ok(msg))) => {
                            if sent_by(&msg, &self.owner[service.index()]) {
                                return Poll::Ready(Some(Change::Service(*service)));
                            }
                        }
                        Poll::Ready(Some(Err(_))) => continue,
                        Poll::Ready(None) => {
                            closed += 1;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if closed == self.properties.len() {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

fn network_manager_source(properties: &[&str]) -> Source {
    Source::NetworkManager {
        object: NM_PATH.to_string(),
        properties: properties.iter().map(|p| p.to_string()).collect(),
    }
}

fn connectivity_name(c: u32) -> &'static str {
    match c {
        connectivity::NONE => "none (NM_CONNECTIVITY_NONE)",
        connectivity::PORTAL => "portal (NM_CONNECTIVITY_PORTAL: a captive portal)",
        connectivity::LIMITED => "limited (NM_CONNECTIVITY_LIMITED: the internet is not reachable)",
        connectivity::FULL => "full (NM_CONNECTIVITY_FULL)",
        connectivity::UNKNOWN => "unknown (NM_CONNECTIVITY_UNKNOWN)",
        _ => "unknown (a value NetworkManager does not document)",
    }
}

fn metered_name(m: u32) -> Option<(bool, &'static str)> {
    match m {
        metered::YES => Some((true, "metered (NM_METERED_YES, set by the user)")),
        metered::GUESS_YES => Some((true, "metered (NM_METERED_GUESS_YES, guessed)")),
        metered::NO => Some((false, "not metered (NM_METERED_NO, set by the user)")),
        metered::GUESS_NO => Some((false, "not metered (NM_METERED_GUESS_NO, guessed)")),
        _ => None,
    }
}

/// Replaces the values of `report` (the kernel's reading) by what the services said, value by
/// value, where they said it. `metered_override` is the daemon's `--metered`, which wins over
/// NetworkManager's `Metered` as it wins over the link type; `idle` says whether logind may
/// decide idleness.
pub(crate) fn overlay(
    report: &mut DeviceReport,
    services: &Services,
    metered_override: Option<bool>,
    idle: IdleUse,
) {
    if let Some(nm) = &services.network_manager {
        overlay_network(report, nm, metered_override);
    }
    if let Some(up) = &services.upower {
        report.state.charging = !up.on_battery;
        report.readings.charging = Reading::new(
            Source::UPower {
                object: UPOWER_PATH.to_string(),
                properties: vec!["OnBattery".into()],
            },
            format!("UPower: OnBattery = {}", up.on_battery),
        );
        let display = || Source::UPower {
            object: UPOWER_DISPLAY.to_string(),
            properties: vec!["IsPresent".into(), "Type".into(), "Percentage".into()],
        };
        match up.percentage {
            Some(p) => {
                // down, as a level: 14.5 % is not yet the 15 % battery-not-low asks for
                let level = p.floor().clamp(0.0, 100.0) as u8;
                report.state.battery = Some(level);
                report.readings.battery = Reading::new(
                    display(),
                    format!(
                        "UPower: the display device (a {}) at {p} %",
                        if up.ups { "UPS" } else { "battery" }
                    ),
                );
            }
            // UPower sees no battery but the kernel reads one: the kernel's reading stands
            // (a battery UPower does not show cannot be ignored for battery-not-low)
            None if report.state.battery.is_some() => {}
            None => {
                report.state.battery = None;
                report.readings.battery = Reading::new(
                    display(),
                    "UPower: no battery (the display device is not a present battery)",
                );
            }
        }
    }
    match (idle, &services.logind) {
        (IdleUse::LogindFirst | IdleUse::LogindOnly, Some(l)) => {
            report.state.idle = l.idle_hint;
            report.readings.idle = Reading::new(
                Source::Logind {
                    object: l.object.clone(),
                    properties: vec!["IdleHint".into()],
                },
                format!("logind: IdleHint of {} = {}", l.whose, l.idle_hint),
            );
        }
        (IdleUse::LogindOnly, None) => {
            report.state.idle = false;
            report.readings.idle = Reading::new(
                Source::Flag {
                    flag: "--idle-source logind".into(),
                },
                "logind does not answer on the bus: counts as not idle (set by --idle-source logind)",
            );
        }
        _ => {}
    }
}

/// Whether logind decides idleness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleUse {
    /// logind when it answers, else the kernel's reading.
    LogindFirst,
    /// logind only; not idle while it does not answer.
    LogindOnly,
    /// Never logind (a flag chose another source).
    Never,
}

fn overlay_network(
    report: &mut DeviceReport,
    nm: &NetworkManagerValues,
    metered_override: Option<bool>,
) {
    let over = match &nm.primary {
        Some(p) => format!(" over {p}"),
        None => String::new(),
    };
    let kernel_network = report.state.network;
    let kernel_why = report.readings.network.why.clone();
    let conn = connectivity_name(nm.connectivity);
    // connected: NetworkManager's connectivity when it knows it, else the kernel's routes
    let connected = match nm.connectivity {
        connectivity::FULL => true,
        connectivity::NONE | connectivity::PORTAL | connectivity::LIMITED => false,
        _ => {
            // NM_CONNECTIVITY_UNKNOWN: keep the kernel's reading, and say NetworkManager
            // could not tell
            if kernel_network == Network::None {
                report.readings.network.why =
                    format!("{kernel_why}; NetworkManager: connectivity {conn}");
                return;
            }
            true
        }
    };
    if !connected {
        report.state.network = Network::None;
        report.readings.network = Reading::new(
            network_manager_source(&["Connectivity"]),
            format!("NetworkManager: connectivity {conn}{over}: counts as not connected"),
        );
        return;
    }
    let (metered, reading) = match (metered_override, metered_name(nm.metered)) {
        (Some(m), _) => {
            let flag = format!("--metered {}", if m { "yes" } else { "no" });
            let why = format!("NetworkManager: connectivity {conn}{over} (set by {flag})");
            (m, Reading::new(Source::Flag { flag }, why))
        }
        (None, Some((m, says))) => (
            m,
            Reading::new(
                network_manager_source(&["Connectivity", "Metered", "PrimaryConnection"]),
                format!("NetworkManager: connectivity {conn}{over}, {says}"),
            ),
        ),
        // NM_METERED_UNKNOWN (or a value the API does not document): the link type decides,
        // as without NetworkManager
        (None, None) => {
            let unknown = if nm.metered == metered::UNKNOWN {
                "metered unknown (NM_METERED_UNKNOWN)".to_string()
            } else {
                format!(
                    "metered {} (a value NetworkManager does not document)",
                    nm.metered
                )
            };
            match kernel_network {
                Network::None => (
                    false,
                    Reading::new(
                        network_manager_source(&["Connectivity", "Metered"]),
                        format!(
                            "NetworkManager: connectivity {conn}{over}, {unknown} and no default route to judge the link by: counts as unmetered"
                        ),
                    ),
                ),
                other => (
                    other == Network::Metered,
                    Reading::new(
                        report.readings.network.source.clone(),
                        format!(
                            "{kernel_why}; NetworkManager: connectivity {conn}{over}, {unknown}, so the link type decides"
                        ),
                    ),
                ),
            }
        }
    };
    report.state.network = if metered {
        Network::Metered
    } else {
        Network::Unmetered
    };
    report.readings.network = reading;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceReadings, DeviceState};

    fn kernel_report(network: Network) -> DeviceReport {
        DeviceReport {
            state: DeviceState {
                network,
                ..DeviceState::default()
            },
            readings: DeviceReadings::manual(),
        }
    }

    fn network_with(connectivity: u32, metered: u32, kernel: Network) -> Network {
        let mut r = kernel_report(kernel);
        let services = Services {
            network_manager: Some(NetworkManagerValues {
                connectivity,
                metered,
                primary: None,
            }),
            ..Services::default()
        };
        overlay(&mut r, &services, None, IdleUse::Never);
        r.state.network
    }

    /// NetworkManager's D-Bus API, "Types": NMConnectivityState 0 unknown, 1 none, 2 portal,
    /// 3 limited, 4 full; NMMetered 0 unknown, 1 yes, 2 no, 3 guess-yes, 4 guess-no.
    #[test]
    fn network_manager_values_as_its_documentation_defines_them() {
        use Network::*;
        // (connectivity, metered, the kernel's reading) → the network
        let table = [
            (4, 1, Unmetered, Metered),
            (4, 3, Unmetered, Metered),
            (4, 2, Metered, Unmetered),
            (4, 4, Metered, Unmetered),
            (4, 0, Metered, Metered), // metered unknown: the link type decides
            (4, 0, Unmetered, Unmetered), // likewise
            (4, 0, None, Unmetered),  // full connectivity, no route seen: not metered
            (1, 2, Unmetered, None),
            (2, 2, Unmetered, None),
            (3, 2, Unmetered, None),
            (0, 1, Unmetered, Metered), // connectivity unknown: the routes say connected
            (0, 1, None, None),         // …or not
        ];
        for (c, m, kernel, want) in table {
            assert_eq!(
                network_with(c, m, kernel),
                want,
                "connectivity {c}, metered {m}, kernel {kernel:?}"
            );
        }
    }

    #[test]
    fn metered_override_wins_over_network_manager() {
        let mut r = kernel_report(Network::Unmetered);
        let services = Services {
            network_manager: Some(NetworkManagerValues {
                connectivity: connectivity::FULL,
                metered: metered::NO,
                primary: None,
            }),
            ..Services::default()
        };
        overlay(&mut r, &services, Some(true), IdleUse::Never);
        assert_eq!(r.state.network, Network::Metered);
        assert_eq!(
            r.readings.network.source,
            Source::Flag {
                flag: "--metered yes".into()
            }
        );
    }

    /// UPower without a present battery does not hide one the kernel reads (a laptop at 5 %
    /// must not pass battery-not-low because UPower shows nothing); a UPS counts as the battery.
    #[test]
    fn upower_without_a_battery_leaves_the_kernels_and_a_ups_counts() {
        let mut r = kernel_report(Network::Unmetered);
        r.state.battery = Some(5);
        let none = |ups| Services {
            upower: Some(UPowerValues {
                on_battery: true,
                percentage: None,
                ups,
            }),
            ..Services::default()
        };
        overlay(&mut r, &none(false), None, IdleUse::Never);
        assert_eq!(r.state.battery, Some(5));
        let mut r = kernel_report(Network::Unmetered);
        r.state.battery = None;
        overlay(&mut r, &none(false), None, IdleUse::Never);
        assert_eq!(r.state.battery, None);
        assert!(r.readings.battery.why.contains("UPower: no battery"));
        let mut r = kernel_report(Network::Unmetered);
        let ups = Services {
            upower: Some(UPowerValues {
                on_battery: true,
                percentage: Some(40.0),
                ups: true,
            }),
            ..Services::default()
        };
        overlay(&mut r, &ups, None, IdleUse::Never);
        assert_eq!(r.state.battery, Some(40));
        assert!(
            r.readings.battery.why.contains("a UPS"),
            "{}",
            r.readings.battery.why
        );
    }

    #[test]
    fn upower_percentage_floors_and_clamps() {
        // a level below 15 % must not read as 15 % (battery-not-low's threshold)
        for (p, want) in [(9.6, 9u8), (100.4, 100), (-1.0, 0), (14.9, 14), (15.0, 15)] {
            let mut r = kernel_report(Network::Unmetered);
            let services = Services {
                upower: Some(UPowerValues {
                    on_battery: true,
                    percentage: Some(p),
                    ups: false,
                }),
                ..Services::default()
            };
            overlay(&mut r, &services, None, IdleUse::Never);
            assert_eq!(r.state.battery, Some(want), "{p}");
            assert!(!r.state.charging);
        }
    }
}
