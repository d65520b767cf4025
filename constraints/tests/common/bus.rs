//! A private D-Bus with mocked system services, for the D-Bus probe's tests: a `dbus-daemon`
//! on a temporary configuration (its own socket in a temp dir, every name ownable), and
//! python-dbusmock's templates (`networkmanager`, `upower`, `logind`: the services' objects and
//! properties as their D-Bus APIs document them) started on it — real D-Bus, mocked services.
//!
//! The mocks are driven through their own D-Bus API: `org.freedesktop.DBus.Properties.Set`
//! (dbusmock sends `PropertiesChanged` for it, as the real services do for their properties),
//! `org.freedesktop.DBus.Mock.AddProperty` / `AddObject` for what a template leaves out, and
//! the templates' helpers (`SetupDisplayDevice`, `AddUser`).
//!
//! A machine without `dbus-daemon` or python-dbusmock cannot run these tests: they print
//! `skipped: <why>` and pass — unless `BACKWORK_REQUIRE_DBUS` is set (CI sets it, and
//! `.ci/run` installs both), where they fail.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::zvariant::Value;

/// The Python with the `dbus` module (Debian's python3-dbusmock installs for it), not a
/// virtualenv's or pyenv's `python3` on PATH.
pub const PYTHON: &str = "/usr/bin/python3";

/// How long a child process may take to come up (a bounded wait, not a schedule).
const STARTUP: Duration = Duration::from_secs(10);

/// A test that cannot run here: prints `skipped: <reason>` and returns `None` — or fails, when
/// `BACKWORK_REQUIRE_DBUS` says this machine must run it.
pub fn skip<T>(reason: impl std::fmt::Display) -> Option<T> {
    if std::env::var_os("BACKWORK_REQUIRE_DBUS").is_some_and(|v| !v.is_empty()) {
        panic!("BACKWORK_REQUIRE_DBUS is set, but this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// A private bus and the mocks started on it; dropping it stops them all.
pub struct PrivateBus {
    dir: tempfile::TempDir,
    daemon: Child,
    mocks: Vec<Child>,
    /// The bus's address (`unix:path=…`).
    pub address: String,
    /// A connection of the test's own, to drive the mocks.
    pub conn: zbus::Connection,
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        for child in self
            .mocks
            .iter_mut()
            .chain(std::iter::once(&mut self.daemon))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        dir.display()
    )
}

impl PrivateBus {
    /// Starts `dbus-daemon` and these dbusmock templates on it (each with its JSON parameters,
    /// or `None`), waiting until each template's name is owned. `None` (after printing why)
    /// when this machine cannot.
    pub async fn start(templates: &[(&str, &str, Option<&str>)]) -> Option<PrivateBus> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cfg = dir.path().join("bus.conf");
        fs::write(&cfg, config(dir.path())).expect("write the bus configuration");
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", cfg.display()))
            .args(["--nofork", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut daemon = match daemon {
            Ok(d) => d,
            Err(e) => return skip(format!("dbus-daemon could not be started ({e})")),
        };
        // the daemon prints its address once it listens
        let stdout = daemon.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = match rx.recv_timeout(STARTUP) {
            Ok(line) if !line.trim().is_empty() => line.trim().to_string(),
            _ => {
                let _ = daemon.kill();
                let _ = daemon.wait();
                return skip("dbus-daemon did not print its address");
            }
        };
        let conn = zbus::connection::Builder::address(address.as_str())
            .expect("the address dbus-daemon printed")
            .build()
            .await
            .expect("connect to the private bus");
        let mut bus = PrivateBus {
            dir,
            daemon,
            mocks: Vec::new(),
            address,
            conn,
        };
        match Command::new(PYTHON)
            .args(["-c", "import dbusmock"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {}
            _ => {
                return skip(format!(
                    "python-dbusmock is not installed for {PYTHON} (apt-get install python3-dbusmock)"
                ));
            }
        }
        for (template, name, params) in templates {
            bus.mock(template, name, *params).await;
        }
        Some(bus)
    }

    fn log(&self, template: &str) -> PathBuf {
        self.dir.path().join(format!("{template}.log"))
    }

    /// Starts dbusmock's `template` (which claims `name`) and waits until `name` is owned.
    pub async fn mock(&mut self, template: &str, name: &str, params: Option<&str>) {
        let log = fs::File::create(self.log(template)).expect("a log file");
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "dbusmock", "--template", template])
            // the templates are for the system bus: this one is it
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(p) = params {
            cmd.args(["--parameters", p]);
        }
        let child = cmd.spawn().expect("start dbusmock");
        self.mocks.push(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if self.has_owner(name).await {
                return;
            }
            let exited = self
                .mocks
                .last_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "dbusmock --template {template} did not claim {name}: {}",
                    fs::read_to_string(self.log(template)).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the mock that was started `index`-th, and waits until its name is released.
    pub async fn stop_mock(&mut self, index: usize, name: &str) {
        let child = &mut self.mocks[index];
        let _ = child.kill();
        let _ = child.wait();
        let deadline = Instant::now() + STARTUP;
        while self.has_owner(name).await {
            assert!(
                Instant::now() < deadline,
                "{name} still owned after its mock died"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn has_owner(&self, name: &str) -> bool {
        let Ok(name) = zbus::names::BusName::try_from(name) else {
            return false;
        };
        match zbus::fdo::DBusProxy::new(&self.conn).await {
            Ok(bus) => bus.name_has_owner(name).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Calls `iface.method(args)` on `path` of the service `name`; panics with the service's
    /// error (a test's own mistake).
    pub async fn call<B>(
        &self,
        name: &str,
        path: &str,
        iface: &str,
        method: &str,
        args: &B,
    ) -> zbus::Message
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(name), path, Some(iface), method, args)
            .await
            .unwrap_or_else(|e| panic!("{name} {path} {iface}.{method}: {e}"))
    }

    /// Sets a property with `org.freedesktop.DBus.Properties.Set`: dbusmock stores it and
    /// sends `PropertiesChanged`.
    pub async fn set<'a>(
        &self,
        name: &str,
        path: &str,
        iface: &str,
        prop: &str,
        value: impl Into<Value<'a>>,
    ) {
        let value: Value<'a> = value.into();
        self.call(
            name,
            path,
            "org.freedesktop.DBus.Properties",
            "Set",
            &(iface, prop, value),
        )
        .await;
    }

    /// Adds a property a template leaves out (`org.freedesktop.DBus.Mock.AddProperty`; no
    /// signal).
    pub async fn add_property<'a>(
        &self,
        name: &str,
        path: &str,
        iface: &str,
        prop: &str,
        value: impl Into<Value<'a>>,
    ) {
        let value: Value<'a> = value.into();
        self.call(
            name,
            path,
            "org.freedesktop.DBus.Mock",
            "AddProperty",
            &(iface, prop, value),
        )
        .await;
    }

    /// Adds an object with these properties and no methods (`org.freedesktop.DBus.Mock.AddObject`).
    pub async fn add_object(
        &self,
        name: &str,
        on: &str,
        path: &str,
        iface: &str,
        props: Vec<(&str, Value<'_>)>,
    ) {
        let props: std::collections::HashMap<&str, Value<'_>> = props.into_iter().collect();
        let methods: Vec<(&str, &str, &str, &str)> = Vec::new();
        self.call(
            name,
            on,
            "org.freedesktop.DBus.Mock",
            "AddObject",
            &(path, iface, props, methods),
        )
        .await;
    }
}

/// NetworkManager's bus name and manager object.
pub const NETWORK_MANAGER: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const NM_ACTIVE: &str = "/org/freedesktop/NetworkManager/ActiveConnection/1";

impl PrivateBus {
    /// Gives the running `networkmanager` mock a primary connection "Phone hotspot" over Wi-Fi,
    /// its `Metered` at `metered` (`NMMetered`: 1 yes, 2 no, 3 guess-yes…; the template has
    /// neither `Metered` nor `PrimaryConnection`: they are added).
    pub async fn phone_hotspot(&self, metered: u32) {
        self.add_object(
            NETWORK_MANAGER,
            NM_PATH,
            NM_ACTIVE,
            "org.freedesktop.NetworkManager.Connection.Active",
            vec![
                ("Id", Value::from("Phone hotspot")),
                ("Type", Value::from("802-11-wireless")),
            ],
        )
        .await;
        self.add_property(
            NETWORK_MANAGER,
            NM_PATH,
            NETWORK_MANAGER,
            "PrimaryConnection",
            zbus::zvariant::ObjectPath::try_from(NM_ACTIVE).expect("a valid object path"),
        )
        .await;
        self.add_property(
            NETWORK_MANAGER,
            NM_PATH,
            NETWORK_MANAGER,
            "Metered",
            metered,
        )
        .await;
    }
}

/// Waits (a bounded wait on a real process's signal, never a schedule) until the probe's
/// published state satisfies `pred`; panics naming what it last saw.
pub async fn until(
    rx: &mut tokio::sync::watch::Receiver<backwork_constraints::DeviceState>,
    what: &str,
    pred: impl Fn(&backwork_constraints::DeviceState) -> bool,
) -> backwork_constraints::DeviceState {
    let deadline = tokio::time::Instant::now() + STARTUP;
    loop {
        let now = *rx.borrow_and_update();
        if pred(&now) {
            return now;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!("the probe never published {what}; it last said {now:?}"),
        }
    }
}
