//! One reading of a job's options (issue 12, item 9): `backwork add`'s flags and a scenario's
//! `[[job]]` keys are the same words, read by the same code. Before, `--timeout never` worked on
//! the command line only, constraint names lived in two enums, and a scenario took `battery`
//! names the command line refused. Each case here is given to both front ends and must get the
//! same verdict: accepted by both, or refused by both with the same sentence, exit code 2.

mod common;

use std::process::Output;

use common::{BIN, backwork};

/// `backwork add FLAG VALUE -- true` on a fresh store, without a daemon.
fn add(flag: &str, value: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let flag = format!("--{flag}");
    let mut args = vec!["add", flag.as_str(), value];
    // catch-up and anchor need a periodic job to be meaningful
    if flag == "--catch-up" || flag == "--anchor" {
        args.extend(["--every", "6h"]);
    }
    args.extend(["--", "true"]);
    backwork(
        &args,
        dir.path().join("store.redb"),
        dir.path().join("sock"),
    )
}

/// `backwork simulate` of a one-job scenario whose `[[job]]` holds these lines.
fn simulate_job(lines: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        format!(
            "profile = \"desktop\"\nstart = \"2026-11-23T00:00:00Z\"\nduration = \"1h\"\n\n\
             [[job]]\nname = \"j\"\n{lines}"
        ),
    )
    .unwrap();
    std::process::Command::new(BIN)
        .arg("simulate")
        .arg(&path)
        .output()
        .unwrap()
}

/// `backwork simulate` of a one-job scenario with `KEY = "VALUE"` in its `[[job]]`.
fn simulate(key: &str, value: &str) -> Output {
    // catch-up and anchor need a periodic job to be meaningful
    let extra = if key == "catch_up" || key == "anchor" {
        "every = \"6h\"\n"
    } else {
        ""
    };
    simulate_job(&format!("{extra}{key} = {value:?}\n"))
}

/// The same with `KEY = ["VALUE"]`, for a list.
fn simulate_list(key: &str, value: &str) -> Output {
    simulate_job(&format!("{key} = [{value:?}]\n"))
}

/// What the error says after the option's name (`--min-interval` on the command line,
/// `job `j`: min_interval:` in a scenario).
fn reason(out: &Output, prefix: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let at = err
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in {err:?}"));
    err[at + prefix.len()..]
        .trim_start_matches(':')
        .trim()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_command_line_and_a_scenario_accept_the_same_words() {
    // `never` and `none`: no time limit (systemd's `infinity`, in words); the constraint and
    // policy names are DESIGN §2's
    for (key, value) in [
        ("timeout", "never"),
        ("timeout", "none"),
        ("timeout", "90m"),
        ("requires", "battery-not-low"),
        ("requires", "unmetered"),
        ("catch_up", "skip"),
        ("anchor", "after-run"),
        ("min_interval", "1h 30m"),
        ("backoff", "linear:1m"),
        ("jitter", "5m"),
        ("in", "10m"),
    ] {
        let flag = key.replace('_', "-");
        let on_cli = add(&flag, value);
        assert!(
            on_cli.status.success(),
            "add --{flag} {value}: {}",
            String::from_utf8_lossy(&on_cli.stderr)
        );
        // a scenario's `requires` is a list
        let value_toml = if key == "requires" { "" } else { value };
        let in_scenario = if key == "requires" {
            simulate_list(key, value)
        } else {
            simulate(key, value_toml)
        };
        assert!(
            in_scenario.status.success(),
            "{key} = {value:?}: {}",
            String::from_utf8_lossy(&in_scenario.stderr)
        );
    }
}

#[test]
fn the_command_line_and_a_scenario_refuse_the_same_values_with_the_same_sentence() {
    for (key, value) in [
        ("timeout", "forever"),
        ("every", "6 hourz"),
        ("min_interval", "5 lightyears"),
        ("in", "soon"),
        ("backoff", "fibonacci:1s"),
        ("tz", "Mars/Olympus_Mons"),
    ] {
        let flag = key.replace('_', "-");
        let on_cli = if key == "tz" {
            let dir = tempfile::tempdir().unwrap();
            backwork(
                &["add", "--cron", "0 3 * * *", "--tz", value, "--", "true"],
                dir.path().join("store.redb"),
                dir.path().join("sock"),
            )
        } else {
            add(&flag, value)
        };
        assert_eq!(on_cli.status.code(), Some(2), "add --{flag} {value}");
        let in_scenario = if key == "tz" {
            simulate_job(&format!("cron = \"0 3 * * *\"\ntz = {value:?}\n"))
        } else {
            simulate(key, value)
        };
        assert_eq!(in_scenario.status.code(), Some(2), "{key} = {value:?}");
        let cli_reason = reason(&on_cli, &format!("--{flag}"));
        let scenario_reason = reason(&in_scenario, &format!("job `j`: {key}"));
        assert_eq!(cli_reason, scenario_reason, "{key} = {value:?}");
        assert!(
            cli_reason.contains(value),
            "the sentence quotes what was written: {cli_reason}"
        );
    }
}

/// A constraint name the core does not know is refused by the command line's parser, which
/// lists the words (clap's `possible values`, from the same table), and by a scenario, which
/// names them too.
#[test]
fn an_unknown_constraint_lists_the_known_ones_on_both_sides() {
    let on_cli = add("requires", "wifi");
    assert_eq!(on_cli.status.code(), Some(2));
    let in_scenario = simulate_list("requires", "wifi");
    assert_eq!(in_scenario.status.code(), Some(2));
    for out in [&on_cli, &in_scenario] {
        let err = String::from_utf8_lossy(&out.stderr);
        for word in [
            "network",
            "unmetered",
            "charging",
            "battery-not-low",
            "storage-not-low",
            "idle",
        ] {
            assert!(err.contains(word), "{word} missing from {err:?}");
        }
    }
}

/// `simulate` reads a scenario file, not a device: `/dev/zero` used to be read without end.
#[test]
fn simulate_reads_only_a_regular_file() {
    // a FIFO nobody writes to: opening it must not wait for a writer (it hung before)
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("scenario.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_str().unwrap().to_string();
    for path in ["/dev/zero", "/tmp", fifo.as_str()] {
        let out = std::process::Command::new(BIN)
            .args(["simulate", path])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{path}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
            "{out:?}"
        );
    }
}

/// `add --chain` reads a regular file, or standard input, of at most 1 MiB (the cap of the one
/// request a chain is sent in): a device, a directory or a FIFO is refused at once (it hung
/// reading /dev/zero), a larger input is refused with what to do; nothing is added.
#[test]
fn a_chain_file_is_a_regular_file_or_standard_input_of_at_most_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("nightly.chain");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_str().unwrap().to_string();
    let store = dir.path().join("store.redb");
    let socket = dir.path().join("control.sock");
    for path in ["/dev/zero", "/tmp", fifo.as_str()] {
        let out = std::process::Command::new(BIN)
            .args(["add", "--chain", path])
            .env("BACKWORK_STORE", &store)
            .env("BACKWORK_SOCKET", &socket)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{path}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
            "{out:?}"
        );
    }
    let mut child = std::process::Command::new(BIN)
        .args(["add", "--chain", "-"])
        .env("BACKWORK_STORE", &store)
        .env("BACKWORK_SOCKET", &socket)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        // (the CLI stops reading at the cap: a broken pipe after it is expected)
        let _ = stdin.write_all(&vec![b'#'; 2 << 20]);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at most 1 MiB"),
        "{out:?}"
    );
    assert!(
        !store.exists() || {
            let list = std::process::Command::new(BIN)
                .args(["list", "--json"])
                .env("BACKWORK_STORE", &store)
                .env("BACKWORK_SOCKET", &socket)
                .output()
                .unwrap();
            String::from_utf8_lossy(&list.stdout).trim() == "[]"
        }
    );
}
