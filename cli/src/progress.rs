//! How a command job reports its progress: lines written to a file descriptor the daemon
//! passes (`BACKWORK_PROGRESS_FD`, always 3), each the command's latest progress.
//!
//! The daemon makes a pipe for each run; its write end is the command's descriptor 3 (through
//! the supervisor), and `BACKWORK_PROGRESS_FD=3` says so, so a plain shell script needs no tool:
//!
//! ```sh
//! echo "40% uploading a.jpg" >&"$BACKWORK_PROGRESS_FD"
//! ```
//!
//! Each line replaces the one before, as systemd's `STATUS=` (sd_notify(3): "the service
//! state", free-form, the latest one shown by `systemctl status`) and WorkManager's
//! `setProgress` do. A line is one of:
//!
//! - a percentage, with or without `%`, alone: `40`, `40%`, `12.5%` → `{"percent": 40}`;
//! - a percentage with `%` and a message: `40% uploading a.jpg` →
//!   `{"percent": 40, "message": "uploading a.jpg"}`;
//! - a JSON object: `{"percent": 40, "file": "a.jpg"}`, taken as it is;
//! - anything else, a message: `uploading a.jpg` → `{"message": "uploading a.jpg"}` (so is a
//!   number outside 0–100, or a line that starts with `{` but is not a JSON object).
//!
//! Blank lines are ignored. A line is at most [`MAX_LINE`] bytes (`PIPE_BUF`, so a line
//! written in one `write` is never interleaved with another process's, pipe(7)); the rest of a
//! longer line, up to its newline, is dropped. Bytes that are not UTF-8 are replaced. Nothing a
//! command writes there can block or stop the daemon: the daemon reads the pipe as fast as it
//! is written, keeps only the last complete line, and tells the scheduler at most every
//! [`REPORT_GAP`] (the last line always gets through). A command that never writes to the
//! descriptor loses nothing; one that closes it is not told anything either.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

/// The variable that names the progress descriptor in a command's environment.
pub const PROGRESS_FD_ENV: &str = "BACKWORK_PROGRESS_FD";

/// The descriptor a command writes its progress to (the first one after stdin, stdout and
/// stderr, as systemd's socket activation passes its first socket, `SD_LISTEN_FDS_START`).
pub const PROGRESS_FD: i32 = 3;

/// The longest progress line kept, in bytes: `PIPE_BUF` on Linux (pipe(7): writes of at most
/// this many bytes to a pipe are atomic).
pub const MAX_LINE: usize = 4096;

/// The shortest time between two reports of one run to the scheduler; a command that writes
/// faster has its lines coalesced (the latest wins).
pub const REPORT_GAP: Duration = Duration::from_millis(50);

/// `fd` itself if it is above the standard descriptors (0–2), else a close-on-exec duplicate
/// that is (`F_DUPFD_CLOEXEC` from 3, fcntl(2)).
pub fn above_stdio(fd: std::os::fd::OwnedFd) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let dup = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(PROGRESS_FD))?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) returned a new descriptor that nothing else owns
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(dup) })
}

/// In the supervisor's child between fork and exec: puts the pipe's write end `fd` at
/// [`PROGRESS_FD`], open across exec. Only async-signal-safe calls (dup2(2), fcntl(2)).
pub fn install(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::{BorrowedFd, IntoRawFd};
    // SAFETY: the parent keeps `fd` open until the spawn has returned
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    if fd == PROGRESS_FD {
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))?;
    } else {
        // SAFETY: whatever this process had at PROGRESS_FD was close-on-exec (the daemon opens
        // everything so) and nothing in it runs to close it again: the duplicate is released
        // to the command as a raw descriptor
        let dup = unsafe { nix::unistd::dup2_raw(borrowed, PROGRESS_FD) }?;
        let _ = dup.into_raw_fd();
    }
    Ok(())
}

/// What one progress line says, or `None` for a blank line.
pub fn parse_line(line: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.starts_with('{')
        && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text)
    {
        return Some(Value::Object(o));
    }
    let mut out = Map::new();
    let percent = |s: &str| -> Option<f64> {
        // digits with at most one point (no sign, exponent, `inf` or `nan`)
        let ok = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && s.bytes().filter(|b| *b == b'.').count() <= 1
            && s.bytes().next().is_some_and(|b| b.is_ascii_digit());
        ok.then(|| s.parse::<f64>().ok())
            .flatten()
            .filter(|p| (0.0..=100.0).contains(p))
    };
    let number = |p: f64| {
        if p.fract() == 0.0 {
            Value::from(p as u64)
        } else {
            Value::from(p)
        }
    };
    let (head, rest) = match text.split_once(char::is_whitespace) {
        Some((h, r)) => (h, Some(r.trim_start())),
        None => (text, None),
    };
    let found = match (head.strip_suffix('%'), rest) {
        (Some(p), _) => percent(p),    // `40%`, `40% uploading`
        (None, None) => percent(head), // `40`
        (None, Some(_)) => None,       // `3 files left`
    };
    match found {
        Some(p) => {
            out.insert("percent".into(), number(p));
            if let Some(m) = rest.filter(|m| !m.is_empty()) {
                out.insert("message".into(), Value::from(m));
            }
        }
        None => {
            out.insert("message".into(), Value::from(text));
        }
    }
    Some(Value::Object(out))
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    /// In a line that ran over the bound: drop bytes up to its newline.
    skipping: bool,
}

impl Lines {
    /// Takes `bytes`; returns the lines they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (piece, false),
            };
            if !self.skipping {
                let room = MAX_LINE - self.buf.len();
                self.buf.extend_from_slice(&body[..body.len().min(room)]);
                if body.len() > room {
                    // over the bound: what is kept counts as the line; the rest goes
                    done.push(std::mem::take(&mut self.buf));
                    self.skipping = true;
                }
            }
            if ends {
                if self.skipping {
                    self.skipping = false;
                } else {
                    done.push(std::mem::take(&mut self.buf));
                }
            }
        }
        done
    }
}

/// Reads progress lines from `pipe` until it ends, and hands the latest to `report`, at most
/// every [`REPORT_GAP`] (the last one always).
pub async fn follow(
    mut pipe: tokio::net::unix::pipe::Receiver,
    mut report: impl FnMut(Value) + Send,
) {
    let mut lines = Lines::default();
    let mut latest: Option<Value> = None;
    let mut next = tokio::time::Instant::now();
    let mut chunk = vec![0u8; 8192];
    loop {
        let read = if latest.is_some() {
            tokio::time::timeout_at(next, pipe.read(&mut chunk))
                .await
                .ok()
        } else {
            Some(pipe.read(&mut chunk).await)
        };
        match read {
            None => {} // time to report what is there
            Some(Ok(0) | Err(_)) => {
                if let Some(v) = latest.take() {
                    report(v);
                }
                return;
            }
            Some(Ok(n)) => {
                for line in lines.push(&chunk[..n]) {
                    if let Some(v) = parse_line(&line) {
                        latest = Some(v);
                    }
                }
            }
        }
        let now = tokio::time::Instant::now();
        if now >= next
            && let Some(v) = latest.take()
        {
            report(v);
            next = now + REPORT_GAP;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_is_a_percentage_a_message_or_an_object() {
        let p = |s: &str| parse_line(s.as_bytes());
        assert_eq!(p("40"), Some(json!({"percent": 40})));
        assert_eq!(p("40%"), Some(json!({"percent": 40})));
        assert_eq!(p("  12.5%  "), Some(json!({"percent": 12.5})));
        assert_eq!(p("0"), Some(json!({"percent": 0})));
        assert_eq!(p("100%"), Some(json!({"percent": 100})));
        assert_eq!(
            p("40% uploading a.jpg"),
            Some(json!({"percent": 40, "message": "uploading a.jpg"}))
        );
        // a number followed by words without `%` is a message ("3 files left")
        assert_eq!(p("3 files left"), Some(json!({"message": "3 files left"})));
        // outside 0–100, signed, or not a plain number: a message
        for s in ["150%", "-5", "1e2", "nan", "inf%", ".5", "4.2.1"] {
            assert_eq!(p(s), Some(json!({"message": s})), "{s}");
        }
        assert_eq!(
            p(r#"{"percent": 40, "file": "a.jpg"}"#),
            Some(json!({"percent": 40, "file": "a.jpg"}))
        );
        assert_eq!(p("{not json"), Some(json!({"message": "{not json"})));
        assert_eq!(p("   "), None);
        assert_eq!(p(""), None);
        assert_eq!(p("caf\u{e9}"), Some(json!({"message": "café"})));
        assert_eq!(
            parse_line(b"bad \xff byte"),
            Some(json!({"message": "bad \u{fffd} byte"}))
        );
    }

    /// (Only the case that leaves things as they are is tested in process: closing a standard
    /// descriptor here would race with the other tests' files.)
    #[test]
    fn a_pipe_end_above_the_standard_descriptors_is_kept() {
        use std::os::fd::AsRawFd;
        let (_r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let kept = w.as_raw_fd();
        assert!(kept > 2);
        assert_eq!(above_stdio(w).unwrap().as_raw_fd(), kept);
    }

    #[test]
    fn lines_are_split_across_chunks_and_bounded() {
        let mut l = Lines::default();
        assert!(l.push(b"10").is_empty());
        assert_eq!(l.push(b"%\n20%\n3"), [b"10%".to_vec(), b"20%".to_vec()]);
        assert_eq!(l.push(b"0\n"), [b"30".to_vec()]);
        // a line over the bound keeps its first MAX_LINE bytes; the rest, to its newline, goes
        let mut long = vec![b'a'; MAX_LINE + 10];
        long.extend_from_slice(b"bbb\n50\n");
        let got = l.push(&long);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], vec![b'a'; MAX_LINE]);
        assert_eq!(got[1], b"50");
        // the bound holds across chunks too
        for _ in 0..10 {
            assert!(l.push(&[b'x'; MAX_LINE / 4]).len() <= 1);
        }
        assert_eq!(
            l.push(b"\n60\n").last().map(Vec::as_slice),
            Some(&b"60"[..])
        );
        assert!(l.buf.len() <= MAX_LINE);
    }
}
