//! Idleness as logind says it, over D-Bus (against python-dbusmock's `logind` template on a
//! private bus): the `IdleHint` of this user's sessions (`org.freedesktop.login1.User`, found
//! with `Manager.GetUser(uid)`), or of every session (the manager's) when the user has none.
//! Guards against a busy compile counting as "not idle" while the user is away (the load
//! average), against missing the hint's change (logind's `PropertiesChanged`, no polling),
//! and against `--idle-source load` being overridden by logind.
#![cfg(target_os = "linux")]

mod common;

use backwork_constraints::{Bus, Constraints, HostConfig, HostProbe, IdleSource, Probe, Source};
use common::FakeHost;
use common::bus::{PrivateBus, until};

const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const USER: &str = "org.freedesktop.login1.User";

fn busy_host() -> FakeHost {
    let host = FakeHost::new();
    host.load("3.50"); // a compile: "not idle" by the load average
    host
}

fn probe(host: &FakeHost, idle: IdleSource) -> HostProbe {
    HostProbe::new(HostConfig {
        idle,
        ..host.config()
    })
}

/// logind with this user (the template's `GetUser` cannot build a path from a number, so it is
/// replaced by one that returns the user's object).
async fn logind_with_user() -> Option<(PrivateBus, String)> {
    let bus = PrivateBus::start(&[("logind", LOGIND, None)]).await?;
    let uid = nix::unistd::getuid().as_raw();
    let reply = bus
        .call(
            LOGIND,
            LOGIND_PATH,
            "org.freedesktop.DBus.Mock",
            "AddUser",
            &(uid, "tester", true),
        )
        .await;
    let user: String = reply.body().deserialize().unwrap();
    bus.call(
        LOGIND,
        LOGIND_PATH,
        "org.freedesktop.DBus.Mock",
        "AddMethod",
        &(
            MANAGER,
            "GetUser",
            "u",
            "o",
            format!("ret = dbus.ObjectPath('{user}')"),
        ),
    )
    .await;
    Some((bus, user))
}

#[tokio::test]
async fn the_users_idle_hint_decides() {
    let host = busy_host();
    let Some((bus, user)) = logind_with_user().await else {
        return;
    };
    let probe = probe(&host, IdleSource::Auto { below: 0.5 });
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .expect("the private bus answers");
    let mut rx = probe.subscribe();
    let wants = Constraints::none().device_idle();
    let state = until(&mut rx, "not idle", |s| !s.idle).await;
    assert_eq!(wants.check(&state).len(), 1);
    let reading = probe.report().unwrap().readings.idle;
    assert!(
        matches!(&reading.source, Source::Logind { object, .. } if *object == user),
        "{reading:?}"
    );

    // the user walks away (the load is still 3.5)
    bus.set(LOGIND, &user, USER, "IdleHint", true).await;
    let state = until(&mut rx, "idle", |s| s.idle).await;
    assert!(wants.check(&state).is_empty());
    assert!(
        probe
            .report()
            .unwrap()
            .readings
            .idle
            .why
            .contains("IdleHint")
    );

    bus.set(LOGIND, &user, USER, "IdleHint", false).await;
    until(&mut rx, "not idle again", |s| !s.idle).await;
    task.abort();
}

#[tokio::test]
async fn without_a_user_object_every_sessions_hint_decides() {
    let host = busy_host();
    let Some(bus) = PrivateBus::start(&[("logind", LOGIND, Some(r#"{"IdleHint": true}"#))]).await
    else {
        return;
    };
    let probe = probe(&host, IdleSource::Auto { below: 0.5 });
    let _task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let r = probe.report().unwrap();
    assert!(r.state.idle, "the manager's IdleHint");
    assert!(
        matches!(&r.readings.idle.source, Source::Logind { object, .. } if object == LOGIND_PATH),
        "{:?}",
        r.readings.idle
    );
}

#[tokio::test]
async fn idle_source_load_is_not_overridden_by_logind() {
    let host = busy_host();
    let Some(bus) = PrivateBus::start(&[("logind", LOGIND, Some(r#"{"IdleHint": true}"#))]).await
    else {
        return;
    };
    let probe = probe(&host, IdleSource::LoadAverage { below: 0.5 });
    let _task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let r = probe.report().unwrap();
    assert!(!r.state.idle, "load 3.5");
    assert!(matches!(r.readings.idle.source, Source::Kernel { .. }));
}

/// logind's `PrepareForSleep(true)` before a suspend and `(false)` after the resume
/// (`org.freedesktop.login1.Manager`, systemd-logind(8)'s D-Bus API) reach the probe's
/// `sleeping` channel as they are sent.
#[tokio::test]
async fn prepare_for_sleep_is_followed() {
    let host = busy_host();
    let Some(bus) = PrivateBus::start(&[("logind", LOGIND, None)]).await else {
        return;
    };
    let probe = probe(&host, IdleSource::Auto { below: 0.5 });
    let task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut sleeping = Probe::sleeping(&probe).expect("a host probe tells sleep");
    assert!(!*sleeping.borrow_and_update());
    for start in [true, false] {
        bus.call(
            LOGIND,
            LOGIND_PATH,
            "org.freedesktop.DBus.Mock",
            "EmitSignal",
            &(
                MANAGER,
                "PrepareForSleep",
                "b",
                vec![zbus::zvariant::Value::from(start)],
            ),
        )
        .await;
        tokio::time::timeout(std::time::Duration::from_secs(10), sleeping.changed())
            .await
            .expect("PrepareForSleep never arrived")
            .unwrap();
        assert_eq!(*sleeping.borrow_and_update(), start);
    }
    task.abort();
}

/// logind does not signal every change of `IdleHint` (a text session's hint is computed when
/// read, from its tty's last use: systemd's `session_get_idle_hint`): when a job starts waiting
/// on idleness, logind is asked at once rather than believed from its last signal.
#[tokio::test]
async fn logind_is_asked_again_when_a_job_starts_waiting_on_idle() {
    let host = busy_host();
    let Some(bus) = PrivateBus::start(&[("logind", LOGIND, None)]).await else {
        return;
    };
    // a way to change the manager's hint without a signal, as logind does for a tty session
    bus.call(
        LOGIND,
        LOGIND_PATH,
        "org.freedesktop.DBus.Mock",
        "AddMethod",
        &(
            MANAGER,
            "SilentlyIdle",
            "",
            "",
            format!("self.props['{MANAGER}']['IdleHint'] = True"),
        ),
    )
    .await;
    let probe = probe(&host, IdleSource::Auto { below: 0.5 });
    let _task = probe
        .watch_services(&Bus::Address(bus.address.clone()))
        .await
        .unwrap();
    let mut rx = probe.subscribe();
    until(&mut rx, "not idle", |s| !s.idle).await;
    bus.call(LOGIND, LOGIND_PATH, MANAGER, "SilentlyIdle", &())
        .await;
    // nobody waits on idleness yet: no signal came, the last value stands
    assert!(!probe.current().idle);
    probe.waiting_on(&[backwork_constraints::Constraint::DeviceIdle].into());
    until(&mut rx, "idle (asked again)", |s| s.idle).await;
    probe.waiting_on(&Default::default());
}
