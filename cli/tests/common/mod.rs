//! The harness the one-concern CLI tests share: the `backwork` binary against
//! `backwork daemon --device manual` on a temp store and socket (as in `e2e.rs`; the daemon says
//! when it is ready through `NOTIFY_SOCKET`, as it would to systemd), and a look at processes
//! through `/proc`.

#![allow(dead_code)] // each test file uses its own part

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

/// A copy, in `dir`, of the committed schema-2 store (`persistence/tests/fixtures/v2.redb`, made
/// by `persistence/examples/make_v2_fixture.rs`): eight jobs of every kind, as backwork wrote
/// them before schema 3.
pub fn v2_fixture(dir: &Path) -> PathBuf {
    let store = dir.join("v2.redb");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../persistence/tests/fixtures/v2.redb"),
        &store,
    )
    .unwrap();
    store
}

/// The short id `list` and the logs show for the id `backwork add` printed: the id's last 12
/// hex digits (the random part of a version-7 UUID, RFC 9562 §5.7).
pub fn short(id: &str) -> String {
    id.trim().replace('-', "")[20..].to_string()
}

/// A daemon on its own store and socket in a temp dir.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub args: Vec<String>,
    /// Shell lines run before the daemon is exec'd (`ulimit -n 128`).
    pub prefix: String,
    /// `manual` (the default), or `host` for the host probe.
    pub device: String,
    /// Variables set for the daemon (`BACKWORK_HOST_ROOT`).
    pub env: Vec<(String, PathBuf)>,
}

impl Daemon {
    /// Starts `backwork daemon --device manual ARGS` and waits for READY.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with(":", args)
    }

    /// The same, started through `sh -c 'PREFIX; exec …'` so a test can set limits
    /// (`ulimit -n 128`) on the daemon alone.
    pub fn start_with(prefix: &str, args: &[&str]) -> Daemon {
        let mut d = Daemon {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            args: args.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.to_string(),
            device: "manual".into(),
            env: Vec::new(),
        };
        d.launch();
        d
    }

    /// Starts `backwork daemon --device host ARGS` reading the fake host tree under `root`
    /// (`BACKWORK_HOST_ROOT`), and waits for READY.
    pub fn start_host(root: &Path, args: &[&str]) -> Daemon {
        let mut d = Daemon {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            args: args.iter().map(|s| s.to_string()).collect(),
            prefix: ":".into(),
            device: "host".into(),
            env: vec![("BACKWORK_HOST_ROOT".into(), root.to_path_buf())],
        };
        d.launch();
        d
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store.redb")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("control.sock")
    }

    /// A path in the test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the daemon (again) and waits for its READY notification, which comes after the
    /// recovery of runs a crash interrupted.
    pub fn launch(&mut self) {
        let notify = self.dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify);
        let listener = UnixDatagram::bind(&notify).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{}\nexec \"$0\" daemon --device {} \"$@\"",
                self.prefix, self.device
            ))
            .arg(BIN)
            .args(&self.args)
            .env("BACKWORK_STORE", self.store())
            .env("BACKWORK_SOCKET", self.socket())
            .env("NOTIFY_SOCKET", &notify)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .env_remove("BACKWORK_LOG")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path("daemon.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        self.child = Some(child);
        let mut buf = [0u8; 512];
        let n = listener
            .recv(&mut buf)
            .expect("the daemon sent no READY within 60 s");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    }

    /// What the daemon wrote to its standard error (its log), every launch so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Runs `backwork ARGS` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("BACKWORK_STORE", self.store())
            .env("BACKWORK_SOCKET", self.socket())
            .env_remove("COLUMNS")
            .env_remove("BACKWORK_ANSWER_TIMEOUT")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// `backwork add ARGS`: the new job's id.
    pub fn add(&self, args: &[&str]) -> String {
        let mut all = vec!["add"];
        all.extend_from_slice(args);
        self.ok(&all).trim().to_string()
    }

    /// Runs `backwork ARGS`, expects exit 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "backwork {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `show --json` of one job.
    pub fn record(&self, target: &str) -> Value {
        let text = self.ok(&["show", target, "--json"]);
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    }

    /// Waits until the job's record satisfies `cond` (command runs are real processes).
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

    /// SIGKILL (a stopped daemon is resumed first, so it can die), and collect its status.
    pub fn kill9(&mut self) {
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

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The job's state in a `show --json` record.
pub fn state(r: &Value) -> &str {
    r["job"]["state"].as_str().unwrap_or("?")
}

/// A process named by pid and start time (field 22 of `/proc/PID/stat`, proc(5)), so that a
/// reused pid is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub start_time: u64,
}

/// Fields 3 (state) and 22 (start time) of `/proc/PID/stat`, counted after the `)` that ends
/// the command name (which may hold spaces).
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some((rest[0].chars().next()?, rest[19].parse().ok()?))
}

impl Proc {
    /// The live process `pid`.
    pub fn of(pid: i32) -> Proc {
        let (_, start_time) = stat(pid).unwrap_or_else(|| panic!("no process {pid}"));
        Proc { pid, start_time }
    }

    /// True while this very process exists and has not exited (a zombie has).
    pub fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(st, t)| t == self.start_time && st != 'Z')
    }
}

/// Waits (bounded) until `path` holds at least `n` lines, and returns them.
pub fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} of {n} lines",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) until none of `procs` is alive; returns the survivors if some still are.
pub fn wait_gone(procs: &[Proc], within: Duration) -> Vec<Proc> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<Proc> = procs.iter().copied().filter(Proc::alive).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The containment tests' command (see `common/job.sh`): `sh job.sh DIR WHEN`, with the
/// script written into DIR.
pub fn job_argv(d: &Daemon, when: &str) -> Vec<String> {
    let script = d.path("job.sh");
    std::fs::write(&script, include_str!("job.sh")).unwrap();
    vec![
        "sh".into(),
        script.display().to_string(),
        d.dir.path().display().to_string(),
        when.into(),
    ]
}

/// The processes `job.sh` wrote to `DIR/pids`, by label (`gc` the setsid grandchild, `child`,
/// `sh`), once all three are there.
pub fn job_procs(d: &Daemon) -> std::collections::BTreeMap<String, Proc> {
    wait_lines(&d.path("pids"), 3)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                Proc {
                    pid: f[1].parse().unwrap(),
                    start_time: f[2].parse().unwrap(),
                },
            )
        })
        .collect()
}
