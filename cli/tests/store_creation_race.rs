//! Several processes creating one store at once never lose an acknowledged job: 8 `backwork add`
//! processes race on a store path that does not exist yet (50 rounds), and a daemon starts
//! while CLI calls add jobs; afterwards every id a call printed is in the store. Creation links
//! a fully written file into place and never replaces one that appeared meanwhile.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_backwork");

fn cmd(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("BACKWORK_STORE", dir.join("data").join("store.redb"))
        .env("BACKWORK_SOCKET", dir.join("run").join("control.sock"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Starts `n` `backwork add` processes at once.
fn spawn_adds(n: usize, dir: &Path) -> Vec<Child> {
    (0..n)
        .map(|k| {
            cmd(&["add", "--in", "1h", "--", "true", &k.to_string()], dir)
                .spawn()
                .unwrap()
        })
        .collect()
}

/// The ids the finished `add`s printed (those that exited 0), and how many failed.
fn acknowledged(children: Vec<Child>) -> (BTreeSet<String>, Vec<String>) {
    let mut ids = BTreeSet::new();
    let mut failures = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
            assert!(!id.is_empty());
            ids.insert(id);
        } else {
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    (ids, failures)
}

fn listed(out: Output) -> BTreeSet<String> {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn eight_processes_creating_one_store_lose_nothing() {
    let mut acked = 0;
    for round in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let (ids, failures) = acknowledged(spawn_adds(8, dir.path()));
        // the CLI waits for the lock another call holds, so every call succeeds
        assert!(failures.is_empty(), "round {round}: {failures:?}");
        let found = listed(cmd(&["list", "--json"], dir.path()).output().unwrap());
        let lost: Vec<_> = ids.difference(&found).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but lost: {lost:?}"
        );
        assert_eq!(
            found.len(),
            ids.len(),
            "round {round}: nothing else appeared"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            ["store.redb"],
            "round {round}: no temporary file is left"
        );
        acked += ids.len();
    }
    assert_eq!(acked, 50 * 8);
}

#[test]
fn a_daemon_starting_while_cli_calls_add_loses_nothing() {
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let notify = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&notify).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let first = spawn_adds(4, dir.path());
        let mut daemon = cmd(&["daemon", "--device", "manual"], dir.path())
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let second = spawn_adds(4, dir.path());
        let mut buf = [0u8; 512];
        let ready = listener.recv(&mut buf).map(|n| buf[..n].to_vec());
        let (mut ids, mut failures) = acknowledged(first);
        let (more, more_failures) = acknowledged(second);
        ids.extend(more);
        failures.extend(more_failures);
        if ready.is_err() {
            let mut err = String::new();
            daemon
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("round {round}: the daemon did not get ready: {err}");
        }
        assert!(failures.is_empty(), "round {round}: {failures:?}");
        // through the daemon now: it holds the store
        let found = listed(cmd(&["list", "--json"], dir.path()).output().unwrap());
        let lost: Vec<_> = ids.difference(&found).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but lost: {lost:?}"
        );
        // and one more add goes through the daemon into the same file
        let out = cmd(&["add", "--in", "1h", "--", "true"], dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert!(daemon.wait().unwrap().success());
        let after = listed(cmd(&["list", "--json"], dir.path()).output().unwrap());
        assert_eq!(after.len(), ids.len() + 1, "round {round}");
    }
}
