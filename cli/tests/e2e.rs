//! End-to-end: the `backwork` binary against `backwork daemon --device manual` on a temp store and
//! socket. The daemon says when it is ready through `NOTIFY_SOCKET`, as it would to systemd; tests
//! wait on real processes (a command run), never on a schedule's time.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_backwork");

/// Runs `backwork ARGS` with this store and socket.
fn backwork(args: &[&str], store: impl AsRef<Path>, socket: impl AsRef<Path>) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BACKWORK_STORE", store.as_ref())
        .env("BACKWORK_SOCKET", socket.as_ref())
        .env_remove("COLUMNS")
        .output()
        .unwrap()
}

/// A daemon on its own store and socket in a temp dir.
struct Daemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_with(&["--device", "manual"])
    }

    fn start_with(args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Daemon { child: None, dir };
        d.launch(args);
        d
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store.redb")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("control.sock")
    }

    /// Starts the daemon and waits for its READY notification.
    fn launch(&mut self, args: &[&str]) {
        let notify = self.dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify);
        let listener = UnixDatagram::bind(&notify).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let child = Command::new(BIN)
            .arg("daemon")
            .args(args)
            .env("BACKWORK_STORE", self.store())
            .env("BACKWORK_SOCKET", self.socket())
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let mut buf = [0u8; 512];
        let n = listener
            .recv(&mut buf)
            .expect("the daemon sent no READY within 60 s");
        let msg = String::from_utf8_lossy(&buf[..n]);
        assert!(msg.contains("READY=1"), "{msg}");
    }

    /// Runs `backwork ARGS` against this daemon.
    fn cli(&self, args: &[&str]) -> Output {
        backwork(args, self.store(), self.socket())
    }

    /// Runs `backwork ARGS`, expects exit 0, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "backwork {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn add(&self, args: &[&str]) -> String {
        let mut all = vec!["add"];
        all.extend_from_slice(args);
        self.ok(&all).trim().to_string()
    }

    /// `show --json` of one job.
    fn record(&self, target: &str) -> Value {
        let text = self.ok(&["show", target, "--json"]);
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    }

    /// Waits until the job's record satisfies `cond` (a command run is a real process).
    fn wait_for(&self, target: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.record(target);
            if cond(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {r:#}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn why(&self, target: &str) -> String {
        self.ok(&["why", target])
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn stop(&mut self, sig: nix::sys::signal::Signal) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn runs(r: &Value) -> u64 {
    r["job"]["runs_total"].as_u64().unwrap_or(0)
}

fn state(r: &Value) -> &str {
    r["job"]["state"].as_str().unwrap()
}

#[test]
fn a_charging_job_waits_on_battery_and_runs_on_ac_with_its_output_kept() {
    let d = Daemon::start();
    d.ok(&["device", "set", "charging=false", "battery=40"]);
    let id = d.add(&[
        "--requires",
        "charging",
        "--unique",
        "photos",
        "--",
        "sh",
        "-c",
        "echo uploaded; echo warn >&2",
    ]);
    // deferred, and it says why with the device's value
    let list = d.ok(&["list", "--json"]);
    let line: Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(line["id"], id.as_str());
    assert_eq!(line["state"], "enqueued");
    assert_eq!(line["waiting_on"][0]["type"], "constraint");
    let why = d.why("photos");
    assert!(
        why.contains("charging") && why.contains("battery (40 %)"),
        "{why}"
    );
    assert_eq!(runs(&d.record(&id)), 0);
    // on AC power it runs
    d.ok(&["device", "set", "charging=true"]);
    let r = d.wait_for("photos", "the run", |r| state(r) == "succeeded");
    let run = &r["job"]["runs"][0];
    assert_eq!(run["result"], "success");
    assert_eq!(run["output"]["exit_code"], 0);
    assert_eq!(run["output"]["stdout"], "uploaded\n");
    assert_eq!(run["output"]["stderr"], "warn\n");
    let show = d.ok(&["show", "photos"]);
    assert!(
        show.contains("| uploaded") && show.contains("exit 0"),
        "{show}"
    );
}

#[test]
fn list_json_lines_carry_the_documented_fields() {
    let d = Daemon::start();
    d.add(&["--every", "6h", "--tag", "sync", "--", "true"]);
    d.add(&["--in", "1h", "--unique", "later", "--", "true"]);
    let text = d.ok(&["list", "--json"]);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        for field in [
            "id",
            "name",
            "kind",
            "command",
            "schedule",
            "state",
            "next",
            "last",
            "result",
            "attempt",
            "runs",
            "tags",
            "waiting_on",
        ] {
            assert!(l.get(field).is_some(), "{field} missing in {l}");
        }
        assert_eq!(l["kind"], "command");
        assert_eq!(l["command"], serde_json::json!(["true"]));
    }
    let later = lines.iter().find(|l| l["name"] == "later").unwrap();
    assert_eq!(later["schedule"], "once in 1h");
    assert!(later["next"].is_string());
    assert_eq!(later["waiting_on"][0]["type"], "not_due");
    // filters
    let tagged = d.ok(&["list", "--json", "--tag", "sync"]);
    assert_eq!(tagged.lines().count(), 1);
    let none = d.ok(&["list", "--json", "--state", "failed"]);
    assert_eq!(none, "");
    // the table has the columns of DESIGN §7
    let table = d.ok(&["list"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "SCHEDULE",
            "STATE",
            "NEXT",
            "LEFT",
            "LAST",
            "RESULT",
            "WAITING ON"
        ]
    );
    assert!(
        table.contains("in 59m") || table.contains("in 1h"),
        "{table}"
    );
}

#[test]
fn why_names_each_reason_with_the_value_that_decides_it() {
    let d = Daemon::start();
    // not due until T
    d.add(&["--in", "1h", "--unique", "later", "--", "true"]);
    assert!(
        d.why("later").contains("not due until"),
        "{}",
        d.why("later")
    );
    // an unmet constraint with the device's value
    d.ok(&["device", "set", "battery=5", "charging=false"]);
    d.add(&[
        "--requires",
        "battery-not-low",
        "--unique",
        "low",
        "--",
        "true",
    ]);
    let why = d.why("low");
    assert!(
        why.contains("battery-not-low") && why.contains("5 %"),
        "{why}"
    );
    // backoff until T (attempt n)
    d.add(&["--unique", "flaky", "--", "sh", "-c", "exit 1"]);
    d.wait_for("flaky", "the first failed run", |r| {
        runs(r) == 1 && state(r) != "running"
    });
    let why = d.why("flaky");
    assert!(
        why.contains("backing off until") && why.contains("attempt 1 failed"),
        "{why}"
    );
    // min-interval until T
    d.add(&[
        "--every",
        "1s",
        "--min-interval",
        "1h",
        "--unique",
        "gated",
        "--",
        "true",
    ]);
    d.wait_for("gated", "the first run", |r| {
        runs(r) == 1 && state(r) != "running"
    });
    // the next period opens within a second; then only the minimum interval holds it
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let why = d.why("gated");
        if why.contains("minimum interval") && !why.contains("not due") {
            break;
        }
        assert!(Instant::now() < deadline, "{why}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // no worker registered for kind K: a job another app enqueued, added through the socket
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt.block_on(async {
        let mut c = backwork_control::Client::connect(&d.socket())
            .await
            .unwrap()
            .expect("the daemon answers");
        // in the protocol's own words, as a client in another language would send it
        let job: backwork_control::NewJob = serde_json::from_value(serde_json::json!({
            "kind": "upload",
            "schedule": {"type": "once"},
            "unique": {"name": "upload", "on_conflict": "keep"},
        }))
        .unwrap();
        c.call(&backwork_control::Request::Add { job })
            .await
            .unwrap()
    });
    assert!(
        matches!(reply, backwork_control::Response::Added { .. }),
        "{reply:?}"
    );
    let why = d.why("upload");
    assert!(
        why.contains("no worker registered for kind upload"),
        "{why}"
    );
    // finished or cancelled
    d.ok(&["cancel", "later"]);
    assert!(
        d.why("later").contains("finished: cancelled"),
        "{}",
        d.why("later")
    );
    // JSON reasons carry their type
    let j: Value = serde_json::from_str(d.ok(&["why", "low", "--json"]).trim()).unwrap();
    assert_eq!(j["reasons"][0]["type"], "constraint");
    assert_eq!(j["reasons"][0]["device"]["battery"], 5);
}

#[test]
fn run_ignore_constraints_runs_a_deferred_job() {
    let d = Daemon::start();
    d.ok(&["device", "set", "network=none"]);
    let id = d.add(&[
        "--requires",
        "network",
        "--in",
        "1h",
        "--",
        "echo",
        "forced",
    ]);
    // `run` skips the delay but not the constraint
    d.ok(&["run", &id]);
    let why = d.why(&id);
    assert!(why.contains("network") && !why.contains("not due"), "{why}");
    assert_eq!(runs(&d.record(&id)), 0);
    d.ok(&["run", &id, "--ignore-constraints"]);
    let r = d.wait_for(&id, "the forced run", |r| state(r) == "succeeded");
    assert_eq!(r["job"]["runs"][0]["output"]["stdout"], "forced\n");
}

#[test]
fn cancel_by_id_name_and_tag() {
    let d = Daemon::start();
    let by_id = d.add(&["--in", "1h", "--", "true"]);
    d.add(&["--in", "1h", "--unique", "named", "--", "true"]);
    let t1 = d.add(&["--in", "1h", "--tag", "batch", "--", "true"]);
    let t2 = d.add(&["--in", "1h", "--tag", "batch", "--", "true"]);
    let keep = d.add(&["--in", "1h", "--tag", "other", "--", "true"]);
    assert_eq!(d.ok(&["cancel", &by_id]).trim(), by_id);
    assert_eq!(d.ok(&["cancel", "named"]).lines().count(), 1);
    let tagged = d.ok(&["cancel", "--tag", "batch"]);
    assert!(tagged.contains(&t1) && tagged.contains(&t2), "{tagged}");
    for target in [by_id.as_str(), "named", &t1, &t2] {
        assert_eq!(state(&d.record(target)), "cancelled", "{target}");
    }
    assert_eq!(state(&d.record(&keep)), "enqueued");
    // nothing left to cancel with that tag: exit 1
    assert_eq!(d.cli(&["cancel", "--tag", "batch"]).status.code(), Some(1));
}

#[test]
fn kill_9_and_a_restart_keep_every_job_and_its_history() {
    let mut d = Daemon::start();
    let ran = d.add(&["--unique", "ran", "--", "sh", "-c", "echo before the kill"]);
    d.wait_for("ran", "the run", |r| state(r) == "succeeded");
    let waiting = d.add(&["--every", "6h", "--flex", "1h", "--tag", "t", "--", "true"]);
    let failing = d.add(&["--", "sh", "-c", "exit 7"]);
    d.wait_for(&failing, "the failed run", |r| {
        runs(r) == 1 && state(r) != "running"
    });
    let before: Vec<Value> = [&ran, &waiting, &failing]
        .iter()
        .map(|id| d.record(id)["job"].clone())
        .collect();
    d.kill9();
    d.launch(&["--device", "manual"]); // replaces the stale socket
    let after: Vec<Value> = [&ran, &waiting, &failing]
        .iter()
        .map(|id| d.record(id)["job"].clone())
        .collect();
    assert_eq!(
        before, after,
        "every record and its history survive kill -9"
    );
    assert_eq!(after[0]["runs"][0]["output"]["stdout"], "before the kill\n");
    assert_eq!(d.ok(&["list", "--all", "--json"]).lines().count(), 3);
    // SIGTERM and SIGINT are clean shutdowns
    assert!(d.stop(nix::sys::signal::Signal::SIGTERM).success());
    assert!(
        !d.socket().exists(),
        "the daemon removes its socket on shutdown"
    );
    d.launch(&["--device", "manual"]);
    assert_eq!(d.ok(&["list", "--all", "--json"]).lines().count(), 3);
    assert!(d.stop(nix::sys::signal::Signal::SIGINT).success());
    assert!(!d.socket().exists());
}

#[test]
fn exit_codes_zero_to_four() {
    let d = Daemon::start();
    // 0: ok
    assert_eq!(d.cli(&["list"]).status.code(), Some(0));
    // 1: nothing matched
    let out = d.cli(&["why", "no-such-job"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: no job has the name `no-such-job`"),
        "{err}"
    );
    // 2: usage, and invalid input
    assert_eq!(d.cli(&["add", "--bogus"]).status.code(), Some(2));
    let out = d.cli(&["add", "--in", "soon", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a duration"));
    let out = d.cli(&["add", "--every", "100ms", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "the daemon refuses it: {out:?}");
    // 3: the store is locked and nothing answers (another socket path), or missing
    let elsewhere = d.dir.path().join("elsewhere.sock");
    let out = backwork(&["list"], d.store(), &elsewhere);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let pid = d.child.as_ref().unwrap().id();
    assert!(err.contains(&format!("in use by process {pid}")), "{err}");
    let missing = d.dir.path().join("missing.redb");
    let out = backwork(&["list"], &missing, &elsewhere);
    assert_eq!(out.status.code(), Some(3));
    assert!(!missing.exists(), "listing does not create a store");
    // 4: a corrupt store
    let corrupt = d.dir.path().join("corrupt.redb");
    std::fs::write(&corrupt, vec![0xAB; 8192]).unwrap();
    let out = backwork(&["list"], &corrupt, &elsewhere);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        vec![0xAB; 8192],
        "left untouched"
    );
}

#[test]
fn without_a_daemon_the_cli_works_on_the_store_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        backwork(
            args,
            dir.path().join("store.redb"),
            dir.path().join("control.sock"),
        )
    };
    let out = run(&["add", "--unique", "offline", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no daemon is running"));
    let why = String::from_utf8(run(&["why", "offline"]).stdout).unwrap();
    assert!(why.contains("no daemon or app is serving"), "{why}");
    let out = run(&["device", "set", "charging=false"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn the_socket_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("control.sock");
    let notify = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" daemon --device manual", BIN])
        .env("BACKWORK_STORE", dir.path().join("store.redb"))
        .env("BACKWORK_SOCKET", &socket)
        .env("NOTIFY_SOCKET", &notify)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    listener.recv(&mut buf).expect("READY");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&dir.path().join("store.redb")), 0o600);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Sends one raw frame (`len` as the header, `body` as what follows) and reads one reply.
fn raw_exchange(stream: &mut UnixStream, len: u32, body: &[u8]) -> Option<Value> {
    stream.write_all(&len.to_be_bytes()).ok()?;
    stream.write_all(body).ok()?;
    read_frame(stream)
}

fn read_frame(stream: &mut UnixStream) -> Option<Value> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn ping(socket: &Path) -> Value {
    // a server that refuses the peer answers and hangs up, maybe before the request is written:
    // ignore write errors and read the answer
    let mut s = UnixStream::connect(socket).unwrap();
    let body = br#"{"op":"ping"}"#;
    let _ = s.write_all(&(body.len() as u32).to_be_bytes());
    let _ = s.write_all(body);
    read_frame(&mut s).expect("an answer")
}

#[test]
fn malformed_truncated_and_oversized_frames_get_errors_and_the_daemon_keeps_serving() {
    let d = Daemon::start();
    let socket = d.socket();
    // malformed JSON: an error, and the same connection keeps working
    let mut s = UnixStream::connect(&socket).unwrap();
    let bad = b"{not json";
    let reply = raw_exchange(&mut s, bad.len() as u32, bad).unwrap();
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["kind"], "invalid");
    let unknown = br#"{"op":"format_disk"}"#;
    let reply = raw_exchange(&mut s, unknown.len() as u32, unknown).unwrap();
    assert_eq!(reply["kind"], "invalid");
    let ok = br#"{"op":"ping"}"#;
    let reply = raw_exchange(&mut s, ok.len() as u32, ok).unwrap();
    assert_eq!(reply["type"], "pong");
    assert_eq!(reply["server"]["role"], "daemon");
    // oversized: an error naming the cap, then the connection closes
    let mut s = UnixStream::connect(&socket).unwrap();
    let reply = raw_exchange(&mut s, 64 << 20, b"").unwrap();
    assert_eq!(reply["type"], "error");
    assert!(
        reply["message"].as_str().unwrap().contains("over the cap"),
        "{reply}"
    );
    // truncated: the header promises more than comes before the client stops writing
    let mut s = UnixStream::connect(&socket).unwrap();
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(br#"{"op":"#).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(reply["type"], "error");
    assert!(
        reply["message"].as_str().unwrap().contains("truncated"),
        "{reply}"
    );
    // a client that hangs up mid-frame
    let mut s = UnixStream::connect(&socket).unwrap();
    s.write_all(&[0, 0]).unwrap();
    drop(s);
    // still serving
    assert_eq!(ping(&socket)["type"], "pong");
    assert_eq!(d.cli(&["list"]).status.code(), Some(0));
}

#[test]
fn a_symlinked_socket_path_is_refused_by_the_daemon_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let real = private.join("real.sock");
    let link = private.join("link.sock");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = backwork(
        &["daemon", "--device", "manual"],
        dir.path().join("store.redb"),
        &link,
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("symlink"), "{err}");
    let out = backwork(&["list"], dir.path().join("store.redb"), &link);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symlink"));
    assert!(!real.exists());
}

#[test]
fn a_socket_in_a_directory_other_users_may_enter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = backwork(
        &["daemon", "--device", "manual"],
        dir.path().join("store.redb"),
        shared.join("control.sock"),
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other users may enter it"), "{err}");
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the directory is left as it was");
}

#[test]
fn a_stale_socket_is_replaced_only_by_the_process_that_holds_the_store() {
    let mut d = Daemon::start();
    d.kill9();
    assert!(d.socket().exists(), "kill -9 leaves the socket behind");
    // another process holds the store (a daemon serving another socket)
    let holder = Daemon::start();
    let out = backwork(
        &["daemon", "--device", "manual"],
        holder.store(),
        d.socket(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by process"));
    assert!(
        d.socket().exists(),
        "the stale socket is left alone without the store's lock"
    );
    // with the store's lock, it is replaced
    d.launch(&["--device", "manual"]);
    assert_eq!(ping(&d.socket())["type"], "pong");
}

#[test]
fn completions_are_generated_for_each_shell() {
    // the registration of clap_complete's dynamic completion: the shell asks the binary
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("backwork") && text.contains("COMPLETE"),
            "{shell}: {text}"
        );
    }
    // which completes flags (fish's protocol: one `value<TAB>help` line per candidate)
    let out = Command::new(BIN)
        .args(["--", "backwork", "run", "--ig"])
        .env("COMPLETE", "fish")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("--ignore-constraints"), "{text}");
}

#[test]
fn a_live_daemons_socket_is_not_taken_over() {
    let d = Daemon::start();
    let other = tempfile::tempdir().unwrap();
    let out = backwork(
        &["daemon", "--device", "manual"],
        other.path().join("store.redb"),
        d.socket(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already answers"));
    assert_eq!(ping(&d.socket())["type"], "pong");
}

/// Run as `nobody` by the next test: connects to the socket in `BACKWORK_RAW_SOCKET` and prints
/// the reply to a ping.
#[test]
#[ignore = "run by a_client_of_another_user_is_refused"]
fn helper_raw_ping() {
    let Some(path) = std::env::var_os("BACKWORK_RAW_SOCKET") else {
        return;
    };
    println!("REPLY {}", ping(Path::new(&path)));
}

#[test]
fn a_client_of_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("SKIPPED: needs root and setpriv to run a client as another user");
        return;
    }
    let d = Daemon::start();
    // open the way for `nobody` (as a careless admin might), so only the peer check stands
    for p in [d.dir.path(), d.socket().parent().unwrap()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_raw_ping",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BACKWORK_RAW_SOCKET", d.socket())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied") && !stdout.contains("REPLY") {
        eprintln!("SKIPPED: `nobody` cannot execute the test binary here: {stderr}");
        return;
    }
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("REPLY ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no reply: {stdout}{stderr}"));
    let reply: Value = serde_json::from_str(line).unwrap();
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["kind"], "denied");
    // the command line refuses another user's socket before connecting
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            BIN,
            "list",
        ])
        .env("BACKWORK_SOCKET", d.socket())
        .env("BACKWORK_STORE", d.dir.path().join("nobody.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to uid 0"));
    // and the daemon still serves its owner
    assert_eq!(ping(&d.socket())["type"], "pong");
}

#[test]
fn the_time_limit_kills_a_process_group_that_ignores_sigterm() {
    let d = Daemon::start_with(&["--device", "manual", "--grace", "1s"]);
    let pids = d.dir.path().join("pids");
    let script = format!(
        "trap '' TERM; sleep 300 & echo $$ $! > {}; wait",
        pids.display()
    );
    let id = d.add(&[
        "--timeout",
        "1s",
        "--max-attempts",
        "1",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let r = d.wait_for(&id, "the run to be stopped", |r| {
        runs(r) == 1 && state(r) != "running"
    });
    let run = &r["job"]["runs"][0];
    assert_eq!(run["result"], "stopped", "{run:#}");
    assert_eq!(run["stop_reason"]["code"], "timeout");
    assert_eq!(
        run["output"]["signal"], 9,
        "SIGTERM was ignored, so SIGKILL ended it"
    );
    assert_eq!(
        state(&r),
        "failed",
        "one attempt allowed, and it was charged"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    for pid in text.split_whitespace() {
        let pid: i32 = pid.parse().unwrap();
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')));
        assert!(gone, "process {pid} of the group survived");
    }
}

/// An OS-emulation policy that defers every start until a fixed instant ("quiet hours").
#[derive(Debug)]
struct QuietHours {
    until: backwork_scheduler::Time,
}

impl backwork_scheduler::Policy for QuietHours {
    fn before_start(
        &mut self,
        now: backwork_scheduler::Time,
        _job: backwork_scheduler::PolicyJob<'_>,
        _cx: backwork_scheduler::PolicyContext<'_>,
    ) -> backwork_scheduler::Decision {
        if now < self.until {
            backwork_scheduler::Decision::Defer {
                until: self.until,
                reason: backwork_scheduler::PolicyReason::new(
                    "quiet_hours",
                    backwork_scheduler::HoldKind::Spacing,
                    "quiet hours",
                ),
            }
        } else {
            backwork_scheduler::Decision::Allow
        }
    }
}

/// An app that embeds backwork enables the control socket with one builder call; the command line
/// then inspects its queue, including a profile's deferral.
#[test]
fn the_cli_inspects_an_embedding_apps_queue_and_names_a_profile_window() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("app.sock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let until = chrono::Utc::now() + chrono::TimeDelta::hours(2);
    let (runtime, id) = rt.block_on(async {
        let runtime = backwork_scheduler::Runtime::builder()
            .policy(QuietHours { until })
            .worker(
                "upload",
                backwork_scheduler::worker_fn(|_| async {
                    backwork_scheduler::WorkResult::success()
                }),
            )
            .service(backwork_control::ControlSocket::new(&socket).role("photo app"))
            .start()
            .await
            .unwrap();
        let id = runtime
            .enqueue(
                backwork_scheduler::JobRequest::once("upload")
                    .unique("upload-photos", backwork_scheduler::ConflictPolicy::Keep),
            )
            .await
            .unwrap();
        (runtime, id)
    });
    let cli = |args: &[&str]| {
        let out = backwork(args, dir.path().join("unused.redb"), &socket);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let why = cli(&["why", "upload-photos"]);
    assert!(why.contains("profile: quiet hours until"), "{why}");
    let line: Value = serde_json::from_str(cli(&["list", "--json"]).trim()).unwrap();
    assert_eq!(line["id"], id.to_string());
    assert_eq!(line["waiting_on"][0]["type"], "policy");
    assert_eq!(line["waiting_on"][0]["reason"]["message"], "quiet hours");
    assert_eq!(line["waiting_on"][0]["reason"]["code"], "quiet_hours");
    assert!(
        line["next"].is_string(),
        "the profile's deferral is a time gate: {line}"
    );
    let pong = ping(&socket);
    assert_eq!(pong["server"]["role"], "photo app");
    rt.block_on(runtime.shutdown(Duration::from_secs(1)))
        .unwrap();
    assert!(!socket.exists(), "the socket goes with the runtime");
}

#[test]
fn the_daemon_runs_with_the_android_profile() {
    let d = Daemon::start_with(&["--device", "manual", "--profile", "android"]);
    let out = d.cli(&["add", "--every", "5m", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("15m"),
        "WorkManager's minimum: {err}"
    );
    let line: Value = serde_json::from_str(d.ok(&["list", "--json"]).trim()).unwrap();
    // raised to WorkManager's minimum, and placed by WorkManager's timing (DESIGN §6)
    assert_eq!(line["schedule"], "every 15m after-run");
    // its numbers are overridable; a wrong one is a clear error
    let bad = backwork(
        &[
            "daemon",
            "--profile",
            "android",
            "--set",
            "deep_idle_after=soon",
        ],
        d.dir.path().join("other.redb"),
        d.dir.path().join("other").join("s.sock"),
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("android overrides"), "{err}");
    // the desktop profile's batching window too
    let mut off = Daemon::start_with(&["--device", "manual", "--set", "batch_window=0s"]);
    let id = off.add(&["--in", "100ms", "--", "true"]);
    off.wait_for(&id, "the run", |r| state(r) == "succeeded");
    let r = off.record(&id);
    let due = r["job"]["not_before"].as_str().unwrap().to_string();
    let started = r["job"]["last_started"].as_str().unwrap().to_string();
    let ms = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    };
    assert!(
        ms(&started) - ms(&due) < 1000,
        "no batching delay: due {due}, started {started}"
    );
    off.kill9();
}
