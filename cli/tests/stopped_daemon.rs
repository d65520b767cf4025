//! A stopped daemon. Guards against the CLI hanging forever on a daemon that accepts connections
//! but never answers (SIGSTOP, a wedged process): every call has a bounded wait and then fails
//! with a sentence that says what is wrong, exit 3 (DESIGN §7: store unavailable).

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use nix::sys::signal::{Signal, kill};

#[test]
fn a_stopped_daemon_gives_a_clear_error_within_the_bounded_wait() {
    let d = Daemon::start(&[]);
    d.add(&["--in", "1h", "--", "true"]);
    kill(nix::unistd::Pid::from_raw(d.pid()), Signal::SIGSTOP).unwrap();

    let started = Instant::now();
    let out = d.cli(&["list", "--answer-timeout", "2s"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: the daemon at {} did not answer within 2 s; is it stopped",
            d.socket().display()
        )),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );

    // With no flag the default bound (10 s) holds.
    let started = Instant::now();
    let out = d.cli(&["why", "anything"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not answer within 10 s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(20), "{took:?}");

    kill(nix::unistd::Pid::from_raw(d.pid()), Signal::SIGCONT).unwrap();
    assert!(d.ok(&["list"]).contains("true"));
}
