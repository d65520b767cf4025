//! A flood of idle clients on the control socket. Guards against the failure of issue 9: ~20 000
//! clients that send half a frame and wait made the daemon run out of file descriptors, every
//! CLI call hang, and a job that came due fail for good with EMFILE. Now the daemon serves at
//! most `--max-connections` at once (a quarter of its descriptor limit at most); a connection
//! beyond that displaces the one that has waited longest for a request, or is answered "busy"
//! and closed at once; and a connection whose frame is not complete within `--frame-timeout` is
//! dropped.
//!
//! The daemon runs with `ulimit -n 128` and the test holds 1 000 half-sent connections open —
//! far more descriptors than the daemon has — while a command job comes due.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Daemon, state};

/// Reads one length-delimited frame (4-byte big-endian length, as the protocol documents), or
/// `None` at end of stream.
fn read_frame(s: &mut UnixStream) -> Option<serde_json::Value> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

#[test]
fn half_sent_connections_beyond_the_cap_neither_fail_a_job_nor_block_other_clients() {
    const HELD: usize = 1_000;
    const CAP: usize = 16;
    let d = Daemon::start_with(
        "ulimit -n 128",
        &["--max-connections", "16", "--frame-timeout", "2s"],
    );
    let marker = d.dir.path().join("ran");
    let id = d.add(&[
        "--in",
        "2s",
        "--accurate",
        "--",
        "sh",
        "-c",
        &format!("echo ok > '{}'", marker.display()),
    ]);

    // Each client announces a 100-byte request and sends 10 bytes of it, then waits.
    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        let mut s = UnixStream::connect(d.socket()).expect("connect to the daemon");
        // The daemon may already have answered "busy" and closed: then the write fails.
        let _ = s.write_all(&[
            0, 0, 0, 100, b'{', b'"', b'o', b'p', b'"', b':', b'"', b'p', b'i', b'n',
        ]);
        held.push(s);
    }

    // The daemon holds at most the cap (and the few it is displacing) in descriptors, whatever
    // the flood: its fds stay well under its limit of 128, so job starts find theirs.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    assert!(
        fds < 64,
        "the daemon holds {fds} descriptors under the flood"
    );

    // Other clients are served while the flood is held: a new connection displaces the one that
    // has waited longest for a request and takes the next free slot — within one frame timeout
    // (2 s here) at worst, behind connections of the flood that displaced others before it.
    let started = Instant::now();
    let listed = d.ok(&["list", "--all"]);
    assert!(listed.contains(&common::short(&id)), "{listed}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "list took {:?} under the flood",
        started.elapsed()
    );

    // The job that came due meanwhile ran and succeeded: the daemon had descriptors to spare.
    let r = d.wait_for(&id, "the job to finish", |r| {
        matches!(state(r), "succeeded" | "failed")
    });
    assert_eq!(state(&r), "succeeded", "{r:#}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ok\n");

    // Every held connection got an answer and was closed: "busy" when displaced or beyond the
    // cap, the frame-timeout error for those that held a slot to the end.
    let (mut busy, mut late) = (0, 0);
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let frame = read_frame(&mut s).expect("every held connection gets an answer");
        assert_eq!(frame["type"], "error", "{frame}");
        match frame["kind"].as_str() {
            Some("busy") => busy += 1,
            Some("invalid") => {
                assert!(
                    frame["message"]
                        .as_str()
                        .unwrap()
                        .contains("no whole request arrived within 2s"),
                    "{frame}"
                );
                late += 1;
            }
            other => panic!("unexpected answer {other:?}: {frame}"),
        }
        assert!(read_frame(&mut s).is_none(), "the connection is closed");
    }
    // every one was answered: displaced or refused ("busy"), or timed out in a slot
    assert_eq!(busy + late, HELD);
    assert!(
        late >= 1 && busy >= HELD - 4 * CAP,
        "{busy} busy, {late} timed out"
    );
}
