//! `backwork daemon`: the scheduler with the command worker, the control socket, systemd
//! readiness and clean shutdown on SIGTERM or SIGINT.

use std::path::Path;

use backwork_constraints::ManualProbe;
use backwork_control::{COMMAND_KIND, ControlSocket};
use backwork_persistence::OpenMode;
use backwork_scheduler::{Runtime, RuntimeError};
use tokio::signal::unix::{SignalKind, signal};

use crate::args::{DaemonArgs, DeviceSource, IdleChoice, Metered, Profile};
use crate::command::CommandWorker;
use crate::error::CliError;
use crate::runs::RunDir;
use crate::session::{HostOverrides, LOCK_WAIT, PAYLOAD_CAP, host_probe, open_store, store_path};

/// Tells systemd (`Type=notify`) about the daemon's state through `sd-notify`, when
/// `NOTIFY_SOCKET` names a socket; failures are logged, never fatal. The variable is kept (the
/// watchdog and `STOPPING=1` need it later); command jobs never see it (their environment is
/// their own, see `command.rs`).
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

/// With `WatchdogSec=` in the unit, pings systemd's watchdog at half its interval — each time
/// only after the scheduler has answered a request, so a wedged scheduler gets the daemon
/// restarted (`Restart=on-failure`) rather than pinged forever.
fn spawn_watchdog(handle: backwork_scheduler::RuntimeHandle) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = std::time::Duration::from_micros(usec) / 2;
    tracing::debug!(every = %humantime::format_duration(every), "pinging systemd's watchdog");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match tokio::time::timeout(every, handle.device()).await {
                Ok(Ok(_)) => notify(&[sd_notify::NotifyState::Watchdog]),
                Ok(Err(_)) => return, // the runtime stopped
                Err(_) => tracing::warn!(
                    "the scheduler did not answer within the watchdog's half interval; not pinging systemd"
                ),
            }
        }
    });
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(store: Option<&Path>, socket: &Path, args: &DaemonArgs) -> Result<(), CliError> {
    let mut overrides = toml::Table::new();
    for kv in &args.overrides {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(CliError::invalid(format!(
                "--set {kv:?} is not KEY=VALUE; write it like --set deep_idle_after=30m"
            )));
        };
        // a TOML value if it is one (numbers, booleans), else text (durations)
        let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.to_string()));
        overrides.insert(k.trim().to_string(), value);
    }
    let profile = backwork_profiles::Profile::with_overrides(
        match args.profile {
            Profile::Desktop => "desktop",
            Profile::Android => "android",
            Profile::Ios => "ios",
        },
        &overrides,
    )
    .map_err(|e| CliError::invalid(e.to_string()))?;
    let overrides = host_overrides(args)?;
    let path = store_path(store)?;
    // the store's lock first: only its holder may replace a stale socket
    // (a CLI call working on the store without a daemon holds it briefly: wait for it)
    let opened = open_store(&path, OpenMode::CreateIfMissing, LOCK_WAIT, async || false)
        .await?
        .ok_or_else(|| {
            CliError::unavailable(format!(
                "the job store {} could not be opened; try again",
                path.display()
            ))
        })?;
    // the worker escalates to SIGKILL a little before the runtime would drop the run, so the
    // run's output is still recorded
    let worker_grace = args.grace.mul_f64(0.8);
    // with the store's lock held and before any run starts: stop what a crash left running
    let runs = RunDir::beside(&path).map_err(|e| CliError::unavailable(e.to_string()))?;
    let interrupted = {
        let runs = runs.clone();
        tokio::task::spawn_blocking(move || runs.recover(worker_grace))
            .await
            .map_err(|e| {
                CliError::unavailable(format!("recovery of the runs in flight failed: {e}"))
            })?
            .map_err(|e| CliError::unavailable(e.to_string()))?
    };
    let control = ControlSocket::new(socket)
        .role("daemon")
        .store_path(&path)
        .allow_root(args.allow_root)
        .max_connections(connection_cap(args.max_connections))
        .frame_timeout(args.frame_timeout);
    let builder = Runtime::builder()
        .log_zone(crate::time::local_zone())
        .store(opened)
        .config(backwork_scheduler::Config {
            grace: args.grace,
            retention: args.retention,
            max_concurrent: args.max_concurrent.max(1),
            payload_cap: PAYLOAD_CAP,
            ..profile.config
        })
        .policy(profile.policy)
        .interrupted(interrupted)
        .worker(COMMAND_KIND, CommandWorker::new(worker_grace).run_dir(runs));
    let (builder, control) = match args.device {
        DeviceSource::Manual => {
            let probe = ManualProbe::new();
            (builder.probe(probe.clone()), control.manual_device(probe))
        }
        DeviceSource::Host => {
            let probe = host_probe(&path, overrides);
            #[cfg(target_os = "linux")]
            if let Err(e) = probe.listen() {
                tracing::warn!(error = %e, "not listening for device changes; the state is read when jobs wait on it");
            }
            #[cfg(target_os = "linux")]
            watch_services(&probe).await;
            (builder.probe(probe), control)
        }
    };
    let runtime = builder
        .service(control)
        .start()
        .await
        .map_err(|e| match e {
            RuntimeError::Service { .. } => CliError::unavailable(e.to_string()),
            other => other.into(),
        })?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::unavailable(format!("could not watch for SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| CliError::unavailable(format!("could not watch for SIGINT: {e}")))?;
    tracing::info!(
        store = %path.display(),
        socket = %socket.display(),
        device = match args.device {
            DeviceSource::Host => "host",
            DeviceSource::Manual => "manual",
        },
        "backwork daemon ready"
    );
    let status = format!("serving {} on {}", path.display(), socket.display());
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    spawn_watchdog(runtime.handle());
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = which, "shutting down");
    notify(&[sd_notify::NotifyState::Stopping]);
    runtime.shutdown(args.grace).await?;
    tracing::info!("backwork daemon stopped");
    Ok(())
}

/// NetworkManager, UPower and logind on the system bus, followed for as long as the daemon
/// runs (see [`crate::session::services_bus`]); without them the kernel's readings stand.
#[cfg(target_os = "linux")]
async fn watch_services(probe: &backwork_constraints::HostProbe) {
    let Some(bus) = crate::session::services_bus() else {
        return;
    };
    match probe.watch_services(&bus).await {
        Ok(_task) => {
            let s = probe.services();
            tracing::info!(
                network_manager = s.network_manager.is_some(),
                upower = s.upower.is_some(),
                logind = s.logind.is_some(),
                "following the D-Bus system services (values of those that answer come from them)"
            );
        }
        Err(e) => tracing::info!(error = %e, "no D-Bus system services"),
    }
}

/// What `--metered`, `--idle-source` and `--idle-load-below` change in the host probe; they
/// mean nothing to a device set by hand, so they are refused with `--device manual`.
fn host_overrides(args: &DaemonArgs) -> Result<HostOverrides, CliError> {
    if args.device == DeviceSource::Manual {
        let given: Vec<&str> = [
            args.metered.map(|_| "--metered"),
            args.idle_source.map(|_| "--idle-source"),
            args.idle_load_below.map(|_| "--idle-load-below"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !given.is_empty() {
            return Err(CliError::invalid(format!(
                "{} {} what the host probe reads, and with --device manual nothing is read: every value is set by hand; set the values with `backwork device set` (e.g. network=metered, idle=false), or drop --device manual",
                given.join(" and "),
                if given.len() == 1 {
                    "changes"
                } else {
                    "change"
                }
            )));
        }
    }
    let idle = args.idle_source.unwrap_or(IdleChoice::Auto);
    if args.idle_load_below.is_some() && !matches!(idle, IdleChoice::Load | IdleChoice::Auto) {
        return Err(CliError::invalid(
            "--idle-load-below sets the threshold of --idle-source load (and of auto without logind); drop one of them",
        ));
    }
    Ok(HostOverrides {
        metered: match args.metered.unwrap_or(Metered::Auto) {
            Metered::Auto => None,
            Metered::Yes => Some(true),
            Metered::No => Some(false),
        },
        idle,
        idle_load_below: args
            .idle_load_below
            .unwrap_or(HostOverrides::default().idle_load_below),
    })
}

/// The control socket's connection cap within the process's file-descriptor limit: connections
/// may use at most a quarter of the soft limit, so that a flood of clients never leaves job
/// starts without descriptors (DESIGN §10). (The limit is not raised: commands inherit it, and
/// programs built on `select(2)` need it at 1024.)
fn connection_cap(asked: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return asked;
    };
    let cap = usize::try_from(soft / 4).unwrap_or(usize::MAX).max(1);
    if cap < asked {
        tracing::info!(
            asked,
            cap,
            "control socket: connections capped at a quarter of the file-descriptor limit"
        );
    }
    asked.min(cap)
}
