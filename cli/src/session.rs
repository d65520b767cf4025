//! How a verb reaches the queue: through the control socket when a daemon or an app serves it,
//! else by opening the store itself and answering with the same dispatcher.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backwork_control::{Client, Context, Request, Response, ServerInfo, dispatch};
use backwork_persistence::{OpenMode, RedbStore, default_store_path};
use backwork_scheduler::core::{AllowAll, Scheduler};
use backwork_scheduler::{Config, JobRequest, Runtime, RuntimeError, StoreError};

use crate::args::IdleChoice;
use crate::error::CliError;

/// The payload cap of command jobs, for the daemon and the command line's local mode alike:
/// they carry their environment in, and up to 8 KiB of output tails out.
pub const PAYLOAD_CAP: usize = 64 * 1024;

/// The store path: `--store`, `BACKWORK_STORE`, or the default.
pub fn store_path(flag: Option<&Path>) -> Result<PathBuf, CliError> {
    match flag {
        Some(p) => Ok(p.to_path_buf()),
        None => default_store_path().map_err(CliError::from),
    }
}

/// Checks that the server on `socket` serves the store `named` by hand (`--store` or
/// `BACKWORK_STORE`): a verb never acts on another store than the one it was told. A server
/// that does not say its store (an app's) is taken at its word.
async fn same_store(client: &mut Client, named: &Path, socket: &Path) -> Result<(), CliError> {
    let Response::Pong { server } = client.call(&Request::Ping).await? else {
        return Ok(());
    };
    let Some(serving) = server.store else {
        return Ok(());
    };
    // (a name relative to this directory is shown whole: the server's is)
    let named = std::path::absolute(named).unwrap_or_else(|_| named.to_path_buf());
    let same = match (std::fs::metadata(&named), std::fs::metadata(&serving)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => named == serving,
    };
    if same {
        return Ok(());
    }
    Err(CliError::invalid(format!(
        "the {} on the control socket {} (process {}) serves the job store {}, not {}, which --store or BACKWORK_STORE names; leave the store out to use that {}, or give the socket of the process that serves {} with --socket",
        server.role,
        socket.display(),
        server.pid,
        serving.display(),
        named.display(),
        server.role,
        named.display()
    )))
}

/// A session on `client`, once the server is known to serve the store named by hand, if one
/// was (see [`same_store`]).
async fn remote_session(
    mut client: Client,
    store: Option<&Path>,
    socket: &Path,
) -> Result<Session, CliError> {
    if let Some(named) = store {
        same_store(&mut client, named, socket).await?;
    }
    Ok(Session {
        backend: Backend::Remote(client),
    })
}

/// The daemon's overrides of what the host probe reads (`--metered`, `--idle-source`,
/// `--idle-load-below`); the default reads everything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostOverrides {
    /// `Some(true)`: every network is metered; `Some(false)`: none is; `None`: by link type.
    pub metered: Option<bool>,
    /// How idleness is decided.
    pub idle: IdleChoice,
    /// The load average under which the device is idle, with [`IdleChoice::Load`].
    pub idle_load_below: f64,
}

impl Default for HostOverrides {
    fn default() -> Self {
        HostOverrides {
            metered: None,
            idle: IdleChoice::Auto,
            idle_load_below: 0.5,
        }
    }
}

/// The variable that points the host probe at a fake tree: it reads `DIR/sys/class/power_supply`,
/// `DIR/sys/class/net` and `DIR/proc` instead of the machine's (for tests and demos).
pub const HOST_ROOT_VAR: &str = "BACKWORK_HOST_ROOT";

/// The device probe of a process that reads the machine's state; free space is that of the
/// store's filesystem (of its nearest existing folder, before the store is made).
#[cfg(target_os = "linux")]
pub fn host_probe(store: &Path, overrides: HostOverrides) -> backwork_constraints::HostProbe {
    use backwork_constraints::{HostConfig, IdleSource};
    let folder = store
        .ancestors()
        .skip(1)
        .find(|p| !p.as_os_str().is_empty() && p.is_dir())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut config = HostConfig {
        storage_path: folder,
        metered_override: overrides.metered,
        idle: match overrides.idle {
            IdleChoice::Auto => IdleSource::Auto {
                below: overrides.idle_load_below,
            },
            IdleChoice::Logind => IdleSource::Logind,
            IdleChoice::Load => IdleSource::LoadAverage {
                below: overrides.idle_load_below,
            },
            IdleChoice::Never => IdleSource::Never,
            IdleChoice::Always => IdleSource::Always,
        },
        ..Default::default()
    };
    if let Some(root) = std::env::var_os(HOST_ROOT_VAR).filter(|r| !r.is_empty()) {
        let root = PathBuf::from(root);
        config.power_supply_root = root.join("sys/class/power_supply");
        config.net_root = Some(root.join("sys/class/net"));
        config.proc_root = root.join("proc");
    }
    backwork_constraints::HostProbe::new(config)
}

/// The bus where NetworkManager, UPower and logind are asked: the system bus — except when
/// [`HOST_ROOT_VAR`] points the probe at a fake tree, where the machine's own services would
/// mix with the fake values, so they are asked only on a bus named by hand
/// (`DBUS_SYSTEM_BUS_ADDRESS`, e.g. a private bus with mocked services).
#[cfg(target_os = "linux")]
pub fn services_bus() -> Option<backwork_constraints::Bus> {
    let fake = std::env::var_os(HOST_ROOT_VAR).is_some_and(|r| !r.is_empty());
    let named = std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some_and(|a| !a.is_empty());
    (!fake || named).then_some(backwork_constraints::Bus::System)
}

/// [`host_probe`] with what the D-Bus system services say right now (read once, not followed):
/// for a process that answers one question (`backwork device` with no daemon).
#[cfg(target_os = "linux")]
pub async fn host_probe_now(
    store: &Path,
    overrides: HostOverrides,
) -> backwork_constraints::HostProbe {
    let probe = host_probe(store, overrides);
    if let Some(bus) = services_bus()
        && let Err(e) = probe.read_services(&bus).await
    {
        tracing::debug!(error = %e, "no D-Bus system services");
    }
    probe
}

/// The device probe of a process that reads the machine's state (elsewhere: a healthy machine).
#[cfg(not(target_os = "linux"))]
pub async fn host_probe_now(
    store: &Path,
    overrides: HostOverrides,
) -> backwork_constraints::ManualProbe {
    host_probe(store, overrides)
}

/// The device probe of a process that reads the machine's state (elsewhere: a healthy machine).
#[cfg(not(target_os = "linux"))]
pub fn host_probe(_store: &Path, _overrides: HostOverrides) -> backwork_constraints::ManualProbe {
    backwork_constraints::ManualProbe::new()
}

/// How long a process waits for a store another process holds before it gives up: a CLI call
/// that runs beside another one without a daemon, or a daemon starting while CLI calls work on
/// the store, waits this long for the lock (DESIGN §7).
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Opens the store at `path`, waiting up to `wait` while another process holds it; `give_up`
/// is asked between tries (the CLI stops waiting when a server starts answering).
pub async fn open_store(
    path: &Path,
    mode: OpenMode,
    wait: Duration,
    mut give_up: impl AsyncFnMut() -> bool,
) -> Result<Option<RedbStore>, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let path = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || RedbStore::open(&path, mode))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        match opened {
            Err(StoreError::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(25));
                if give_up().await {
                    return Ok(None);
                }
            }
            other => return other.map(Some),
        }
    }
}

enum Backend {
    Remote(Client),
    Local { runtime: Runtime, ctx: Context },
}

/// How long a command line that runs the queue itself (no daemon answers) keeps finished jobs:
/// a century, i.e. it never drops them on its own. Only the daemon knows its `--retention`; a
/// `list` or `show` run while it is down must not drop, with some other retention, the jobs the
/// daemon keeps. `prune` still drops them when asked ([`LOCAL_PRUNE_AGE`]).
const LOCAL_RETENTION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The age past which `prune` without `--older-than` drops finished jobs when no daemon answers:
/// the default of `daemon --retention` (1 day), since the daemon's own is not known.
pub const LOCAL_PRUNE_AGE: Duration = Duration::from_secs(86_400);

/// The core's configuration when the command line runs the queue itself.
fn local_config() -> Config {
    Config {
        payload_cap: PAYLOAD_CAP,
        retention: LOCAL_RETENTION,
        ..Config::default()
    }
}

/// A connection to the queue for one command.
pub struct Session {
    backend: Backend,
}

impl Session {
    /// Connects to the server on `socket`, without falling back to the store: `None` when no
    /// server answers (`device` then probes the machine itself; it needs no store, even one
    /// another process holds). A store named by hand must be the server's, as for [`Session::open`].
    pub async fn remote(
        socket: &Path,
        store: Option<&Path>,
        timeout: Duration,
    ) -> Result<Option<Session>, CliError> {
        match Client::connect_within(socket, timeout).await? {
            Some(client) => remote_session(client, store, socket).await.map(Some),
            None => Ok(None),
        }
    }

    /// Connects to the server on `socket`; if none answers, opens the store at `store`,
    /// creating it only for `create`, a request the core accepts (one it refuses creates
    /// nothing). `None`: no server answers and the default store does not exist yet (a fresh
    /// account; a missing store given with `--store` is an error).
    /// A server that accepts but does not answer within `timeout` (for the connection and then
    /// for each call) is an error (exit 3), never a hang.
    pub async fn open(
        socket: &Path,
        store: Option<&Path>,
        create: Option<&JobRequest>,
        timeout: Duration,
    ) -> Result<Option<Session>, CliError> {
        if let Some(client) = Client::connect_within(socket, timeout).await? {
            return remote_session(client, store, socket).await.map(Some);
        }
        let path = store_path(store)?;
        if let Some(request) = create
            && !path.exists()
        {
            let mut core = Scheduler::new(local_config(), Box::new(AllowAll));
            if let Err(e) = core.check_request(chrono::Utc::now(), request) {
                let Response::Error { kind, message } =
                    backwork_control::error_response(&RuntimeError::Rejected(e))
                else {
                    return Err(CliError::invalid("the request was refused"));
                };
                return Err(CliError::new(kind, message));
            }
        }
        let mode = if create.is_some() {
            OpenMode::CreateIfMissing
        } else {
            OpenMode::MustExist
        };
        let mut client = None;
        let opened = open_store(&path, mode, LOCK_WAIT, async || {
            // a daemon that started meanwhile holds the store for good: talk to it
            client = Client::connect(socket).await.ok().flatten();
            client.is_some()
        })
        .await;
        if let Some(client) = client {
            return remote_session(client, store, socket).await.map(Some);
        }
        let opened = match opened {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(CliError::unavailable(format!(
                    "the job store {} could not be opened; try again",
                    path.display()
                )));
            }
            Err(StoreError::Locked { path, holder }) => {
                return Err(CliError::unavailable(format!(
                    "the job store {path} is in use by {} and nothing answers on the control socket {}; if it is a backwork daemon or app, give its socket with --socket, otherwise stop it and try again",
                    holder.as_deref().unwrap_or("another process"),
                    socket.display()
                )));
            }
            // the default store not made yet is a fresh account; a path given by hand that
            // does not exist is more likely a typo, and says so
            Err(StoreError::Missing { .. }) if create.is_none() && store.is_none() => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let runtime = Runtime::builder()
            .store(opened)
            .probe(host_probe_now(&path, HostOverrides::default()).await)
            .config(local_config())
            .start()
            .await?;
        let ctx = Context {
            info: ServerInfo {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").into(),
                role: "local".into(),
                device: "host".into(),
                store: Some(path),
            },
            manual: None,
        };
        Ok(Some(Session {
            backend: Backend::Local { runtime, ctx },
        }))
    }

    /// True when no server answered and the store was opened directly.
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local { .. })
    }

    /// Sends one request; a [`Response::Error`] becomes a [`CliError`] with its exit code.
    pub async fn call(&mut self, request: Request) -> Result<Response, CliError> {
        let response = match &mut self.backend {
            Backend::Remote(client) => client.call(&request).await?,
            Backend::Local { runtime, ctx } => {
                // the queue's own retention is the daemon's: `prune` says which age it drops
                let request = match request {
                    Request::Prune { older_than: None } => Request::Prune {
                        older_than: Some(LOCAL_PRUNE_AGE),
                    },
                    other => other,
                };
                dispatch(&runtime.handle(), ctx, request).await
            }
        };
        match response {
            Response::Error { kind, message } => Err(CliError::new(kind, message)),
            other => Ok(other),
        }
    }

    /// Closes the session; a local store is written and closed cleanly.
    pub async fn close(self) -> Result<(), CliError> {
        if let Backend::Local { runtime, .. } = self.backend {
            runtime.shutdown(Duration::ZERO).await?;
        }
        Ok(())
    }
}
