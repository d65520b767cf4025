//! A fresh account (an empty `HOME`, no daemon): `list` says "no jobs" and exits 0, `device`
//! reads the host without a store, and neither creates anything (they used to exit 3, "no job
//! store", while `add` silently made one; a missing store named with `--store` still is an
//! error, as a typo would be). Without a daemon, eight `add` calls at once all
//! succeed: each waits its turn for the store's lock (issue 12, item 5).

mod common;

use std::process::{Command, Output};

use common::BIN;

fn fresh(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .output()
        .unwrap()
}

#[test]
fn list_and_device_answer_on_a_fresh_account_and_create_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = fresh(home.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no jobs\n");
    let out = fresh(home.path(), &["device"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("source"),
        "{out:?}"
    );
    let out = fresh(home.path(), &["show", "backup"]);
    assert_eq!(out.status.code(), Some(1), "not found: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no job store yet"),
        "{out:?}"
    );
    assert!(
        !home.path().join(".local").exists(),
        "a read made the store's folder"
    );
}

#[test]
fn eight_adds_at_once_without_a_daemon_all_succeed() {
    let home = tempfile::tempdir().unwrap();
    let out = fresh(home.path(), &["add", "--in", "1h", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    let spawned: Vec<_> = (0..8)
        .map(|_| {
            Command::new(BIN)
                .args(["add", "--in", "1h", "--", "true"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", home.path())
                .env("XDG_RUNTIME_DIR", home.path().join("run"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in spawned {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let out = fresh(home.path(), &["list", "--json"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    for id in ids {
        assert!(listed.contains(&id), "{id} lost: {listed}");
    }
}

/// A daemon told `--store NAME` with a bare file name, in a directory without a store yet,
/// creates the store and its run directory there and serves (it used to create the store and
/// then stop with "could not use the run directory NAME.runs: No such file or directory": it
/// fsynced the run directory's parent, "", instead of ".").
#[test]
fn a_new_store_named_by_a_relative_path_is_created_and_served() {
    let d = common::Daemon::start_with(
        r#"cd "$(dirname "$BACKWORK_STORE")""#,
        &["--store", "relative.redb"],
    );
    assert!(d.path("relative.redb").is_file());
    assert!(d.path("relative.redb.runs").is_dir());
    // the daemon, started in its directory with a bare name, says which store it serves by
    // its whole path: the verb naming that path is served
    let out = common::backwork(&["list"], d.path("relative.redb"), d.socket());
    assert!(out.status.success(), "{out:?}");
}
