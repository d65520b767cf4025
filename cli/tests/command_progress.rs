//! A command job reports progress by writing lines to the descriptor `BACKWORK_PROGRESS_FD`
//! names (docs/cli.md, "Progress"), with nothing but the shell: `show`, `show --json`, `list`
//! and `list --json` carry the latest line while the run lasts, and nothing once it is over.
//! Guards against progress that never reaches a person, that outlives its run, and against a
//! command that floods the descriptor or writes an endless line making the daemon stall.

mod common;

use common::{Daemon, state};
use serde_json::{Value, json};

/// A script that writes `lines` to the progress descriptor one at a time, each after the test
/// creates the file `go.N` (N from 1), and exits after the last once `go.END` exists. Bounded:
/// it gives up after 60 s of waiting.
fn script(d: &Daemon, lines: &[&str]) -> String {
    let dir = d.dir.path().display();
    let mut s = String::from(
        "wait_for() { i=0; while [ ! -e \"$1\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; }\n",
    );
    s.push_str("echo \"fd=$BACKWORK_PROGRESS_FD\"\n");
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            s.push_str(&format!("wait_for {dir}/go.{n}\n"));
        }
        s.push_str(&format!(
            "printf '%s\\n' '{line}' >&\"$BACKWORK_PROGRESS_FD\"\n"
        ));
    }
    s.push_str(&format!("wait_for {dir}/go.END\n"));
    s
}

fn progress(r: &Value) -> &Value {
    &r["job"]["progress"]
}

#[test]
fn a_shell_script_reports_progress_that_show_and_list_carry_while_it_runs() {
    let d = Daemon::start(&[]);
    let body = script(
        &d,
        &[
            "40% compressing",
            r#"{"percent": 75, "file": "b.tar"}"#,
            "uploading",
        ],
    );
    d.add(&["--unique", "backup", "--", "sh", "-c", &body]);

    let r = d.wait_for("backup", "the first progress line", |r| {
        progress(r)["percent"].as_f64() == Some(40.0)
    });
    assert_eq!(state(&r), "running");
    let p = progress(&r);
    assert_eq!(p["value"], json!({"percent": 40, "message": "compressing"}));
    assert_eq!(p["message"], "compressing");
    assert_eq!(p["attempt"], 1);
    assert!(p["at"].is_string(), "{p}");
    let show = d.ok(&["show", "backup"]);
    let line = show
        .lines()
        .find(|l| l.starts_with("progress "))
        .unwrap_or_else(|| panic!("no progress line in show: {show}"));
    assert!(line.contains("40% compressing (reported"), "{line}");
    let list: Value = serde_json::from_str(d.ok(&["list", "--json"]).trim()).unwrap();
    assert_eq!(list["progress"]["percent"].as_f64(), Some(40.0), "{list}");
    let table = d.ok(&["list"]);
    assert!(table.contains("running 40%"), "{table}");

    // a JSON object is taken as it is; a later line replaces the earlier one
    std::fs::write(d.path("go.1"), "").unwrap();
    let r = d.wait_for("backup", "the JSON line", |r| {
        progress(r)["percent"].as_f64() == Some(75.0)
    });
    assert_eq!(
        progress(&r)["value"],
        json!({"percent": 75, "file": "b.tar"})
    );
    assert_eq!(progress(&r)["message"], Value::Null);

    // words alone are a message with no percentage
    std::fs::write(d.path("go.2"), "").unwrap();
    let r = d.wait_for("backup", "the message line", |r| {
        progress(r)["message"] == "uploading"
    });
    assert_eq!(progress(&r)["percent"], Value::Null);
    assert!(
        d.ok(&["show", "backup"])
            .contains("progress       uploading (reported")
    );

    std::fs::write(d.path("go.END"), "").unwrap();
    let r = d.wait_for("backup", "the run's end", |r| state(r) == "succeeded");
    assert_eq!(progress(&r), &Value::Null, "progress is gone with its run");
    assert!(!d.ok(&["show", "backup"]).contains("progress "));
    let stdout = r["job"]["runs"][0]["output"]["stdout"].as_str().unwrap();
    assert_eq!(
        stdout.trim(),
        "fd=3",
        "the descriptor is named in the environment"
    );
}

#[test]
fn a_flood_and_an_endless_line_do_not_stall_the_daemon() {
    let d = Daemon::start(&[]);
    let dir = d.dir.path().display();
    // 1 MiB without a newline, 20 000 short lines, then the line that counts
    let body = format!(
        "head -c 1048576 /dev/zero | tr '\\0' x >&\"$BACKWORK_PROGRESS_FD\"; echo >&\"$BACKWORK_PROGRESS_FD\"
         i=0; while [ $i -lt 20000 ]; do echo $((i % 100)) >&\"$BACKWORK_PROGRESS_FD\"; i=$((i+1)); done
         echo '55% after the flood' >&\"$BACKWORK_PROGRESS_FD\"
         i=0; while [ ! -e {dir}/go.END ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done"
    );
    d.add(&["--unique", "flood", "--", "sh", "-c", &body]);
    let r = d.wait_for("flood", "the last line after the flood", |r| {
        progress(r)["message"] == "after the flood"
    });
    assert_eq!(progress(&r)["percent"].as_f64(), Some(55.0));
    // the daemon answers other requests meanwhile, and the run ends normally
    d.ok(&["list"]);
    std::fs::write(d.path("go.END"), "").unwrap();
    d.wait_for("flood", "the run's end", |r| state(r) == "succeeded");
}

#[test]
fn run_wait_prints_each_progress_change_on_stderr() {
    use std::io::BufRead;
    let d = Daemon::start(&[]);
    let dir = d.dir.path().display();
    // each line waits until `run --wait` printed the one before, so none is coalesced away
    let body = format!(
        "echo '10% one' >&\"$BACKWORK_PROGRESS_FD\"
         i=0; while [ ! -e {dir}/go.1 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
         echo '60% two' >&\"$BACKWORK_PROGRESS_FD\"
         i=0; while [ ! -e {dir}/go.END ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done"
    );
    d.add(&["--unique", "job", "--in", "1h", "--", "sh", "-c", &body]);
    let mut wait = std::process::Command::new(common::BIN)
        .args(["run", "--wait", "job"])
        .env("BACKWORK_STORE", d.store())
        .env("BACKWORK_SOCKET", d.socket())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = wait.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut expect = |want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !seen.iter().any(|l: &String| l == want) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("`run --wait` did not print {want:?}: {seen:?}"),
            }
        }
    };
    expect("progress: 10% one");
    std::fs::write(d.path("go.1"), "").unwrap();
    expect("progress: 60% two");
    std::fs::write(d.path("go.END"), "").unwrap();
    let out = wait.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
