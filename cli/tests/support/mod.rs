//! The harness the one-concern e2e tests share: the `backwork` binary against
//! `backwork daemon --device manual` on a temp store and socket (as in `e2e.rs`). The daemon says
//! when it is ready through `NOTIFY_SOCKET`, as it would to systemd.

#![allow(dead_code)] // each test file uses part of it

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_backwork");

/// Runs `backwork ARGS` with this store and socket.
pub fn backwork(args: &[&str], store: impl AsRef<Path>, socket: impl AsRef<Path>) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BACKWORK_STORE", store.as_ref())
        .env("BACKWORK_SOCKET", socket.as_ref())
        .env_remove("COLUMNS")
        .env_remove("BACKWORK_ANSWER_TIMEOUT")
        .output()
        .unwrap()
}

/// A daemon on its own store and socket in a temp dir.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// `backwork daemon --device manual ARGS`, started through `sh -c PREFIX; exec …` so a test
    /// can set limits (`ulimit -n 128`) on it alone.
    pub fn start_with(prefix: &str, args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let notify = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&notify).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let store = dir.path().join("store.redb");
        let socket = dir.path().join("run").join("control.sock");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{prefix}\nexec \"$0\" daemon --device manual \"$@\""
            ))
            .arg(BIN)
            .args(args)
            .env("BACKWORK_STORE", &store)
            .env("BACKWORK_SOCKET", &socket)
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            dir,
        };
        let mut buf = [0u8; 512];
        let n = listener
            .recv(&mut buf)
            .expect("the daemon sent no READY within 60 s");
        let msg = String::from_utf8_lossy(&buf[..n]);
        assert!(msg.contains("READY=1"), "{msg}");
        d
    }

    /// `backwork daemon --device manual`.
    pub fn start() -> Daemon {
        Daemon::start_with(":", &[])
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store.redb")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("control.sock")
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Runs `backwork ARGS` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        backwork(args, self.store(), self.socket())
    }

    /// Runs `backwork ARGS`, expects exit 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "backwork {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `backwork add ARGS`: the new job's id.
    pub fn add(&self, args: &[&str]) -> String {
        let mut all = vec!["add"];
        all.extend_from_slice(args);
        self.ok(&all).trim().to_string()
    }

    /// `show --json` of one job.
    pub fn record(&self, target: &str) -> Value {
        let text = self.ok(&["show", target, "--json"]);
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    }

    /// Waits until the job's record satisfies `cond` (a command run is a real process).
    pub fn wait_for(&self, target: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
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
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The job's state in a `show --json` record.
pub fn state(r: &Value) -> &str {
    r["job"]["state"].as_str().unwrap_or("?")
}
