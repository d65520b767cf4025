//! The environment variables a user sets once in a shell profile (`BACKWORK_STORE`,
//! `BACKWORK_SOCKET`, `BACKWORK_ANSWER_TIMEOUT`) behave like the flags they stand for, and an
//! empty one is unset (as `FOO= cmd` means in POSIX shells): before issue 12, an empty
//! `BACKWORK_ANSWER_TIMEOUT` made every verb fail, and with `BACKWORK_STORE` set a usage error
//! printed `Usage: backwork add --store <PATH> …`, as if `--store` were required.

mod common;

use std::process::{Command, Output};

use common::BIN;

fn run(home: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_usage_error_does_not_show_the_store_as_required_when_the_variable_is_set() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("s.redb");
    let out = run(
        home.path(),
        &[("BACKWORK_STORE", store.to_str().unwrap())],
        &["add"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let usage = err.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(!usage.contains("--store"), "{usage}");
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &[
            ("BACKWORK_ANSWER_TIMEOUT", ""),
            ("BACKWORK_STORE", ""),
            ("BACKWORK_SOCKET", ""),
        ],
        &["list"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no jobs\n");
}

#[test]
fn the_store_variable_is_the_store_and_a_bad_timeout_variable_is_named() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("elsewhere.redb");
    let env = [("BACKWORK_STORE", store.to_str().unwrap())];
    let out = run(home.path(), &env, &["add", "--in", "1h", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert!(store.exists(), "the job went to BACKWORK_STORE");
    let out = run(home.path(), &env, &["list"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "{out:?}"
    );
    // the flag wins over the variable (a store named but missing is an error, not "no jobs")
    let other = home.path().join("other.redb");
    let out = run(
        home.path(),
        &env,
        &["list", "--store", other.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("other.redb"),
        "{out:?}"
    );
    assert!(!other.exists(), "list creates no store");

    let out = run(
        home.path(),
        &[("BACKWORK_ANSWER_TIMEOUT", "soon")],
        &["list"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BACKWORK_ANSWER_TIMEOUT"),
        "{out:?}"
    );
}
