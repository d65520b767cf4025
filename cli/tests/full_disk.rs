//! A full disk under a running daemon: `list` and `device` keep answering, `add` fails within a
//! few seconds with "disk full" (exit 3), nothing acknowledged is lost, and a write refused with
//! "disk full" is never applied later, once space is back. The store lives on a small tmpfs the
//! test mounts; where mounting is not allowed (not root, no CAP_SYS_ADMIN) the test says so and
//! the same behaviour is covered with an injected ENOSPC in
//! `persistence/tests/full_disk_runtime.rs`.

use std::collections::BTreeSet;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_backwork");

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .ok()?;
        out.status.success().then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The daemon; stopped (SIGTERM) when dropped, before the tmpfs goes.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

fn cli(args: &[&str], store: &Path, socket: &Path) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .env("BACKWORK_STORE", store)
        .env("BACKWORK_SOCKET", socket)
        .output()
        .unwrap();
    (out, start.elapsed())
}

fn ids(out: &Output) -> BTreeSet<String> {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_full_disk_under_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("mnt"), "256k") else {
        eprintln!(
            "skipped: mounting a tmpfs is not allowed here; persistence/tests/full_disk_runtime.rs covers this with an injected ENOSPC"
        );
        return;
    };
    let store = fs.0.join("store.redb");
    let socket = dir.path().join("run").join("control.sock");
    let notify = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let _daemon = Daemon(
        Command::new(BIN)
            .args(["daemon", "--device", "manual"])
            .env("BACKWORK_STORE", &store)
            .env("BACKWORK_SOCKET", &socket)
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 256];
    listener.recv(&mut buf).expect("the daemon got ready");

    // fill the file system with jobs until an add is refused
    let padding = "x".repeat(400);
    let mut acked = BTreeSet::new();
    let refused = loop {
        assert!(acked.len() < 5000, "the disk never filled");
        let (out, took) = cli(
            &["add", "--in", "1h", "--", "echo", &padding],
            &store,
            &socket,
        );
        if out.status.success() {
            acked.insert(String::from_utf8_lossy(&out.stdout).trim().to_string());
        } else {
            break (out, took);
        }
    };
    let (out, took) = refused;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is full; free some space"), "{err}");
    assert!(took < Duration::from_secs(5), "the refusal took {took:?}");
    assert!(acked.len() > 10, "only {} jobs fit", acked.len());
    eprintln!("{} jobs filled the file system", acked.len());

    // reads answer, with everything acknowledged; writes keep failing fast
    for _ in 0..3 {
        let (out, took) = cli(&["list", "--json"], &store, &socket);
        assert!(took < Duration::from_secs(5), "list took {took:?}");
        assert_eq!(ids(&out), acked, "list shows exactly what was acknowledged");
        let (out, took) = cli(&["device"], &store, &socket);
        assert!(
            out.status.success() && took < Duration::from_secs(5),
            "{out:?}"
        );
        let (out, took) = cli(&["add", "--in", "1h", "--", "true"], &store, &socket);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("is full"));
        assert!(took < Duration::from_secs(5), "the refusal took {took:?}");
    }

    // space comes back: writes work again within the retry pause (at most 10 s)
    fs.resize("4m");
    let deadline = Instant::now() + Duration::from_secs(30);
    let new = loop {
        let (out, _) = cli(&["add", "--in", "1h", "--", "true"], &store, &socket);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "writes did not come back: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, _) = cli(&["list", "--json"], &store, &socket);
    let mut expected = acked.clone();
    expected.insert(new);
    assert_eq!(
        ids(&out),
        expected,
        "the acknowledged jobs and the new one; none of the refused adds"
    );
}
